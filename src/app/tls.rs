//! HTTPS: the rustls server configuration from `TLS_CERT_FILE` and `TLS_KEY_FILE`, and a
//! self-signed pair for trying it (`caplab lab cert`).
//!
//! Data path: under the HTTP handler, at the socket: with a certificate configured, each
//! accepted connection is a TLS handshake (bounded by `HTTP_HEADER_READ_TIMEOUT_SEC`) before
//! hyper sees it. TLS 1.2 and 1.3 with rustls' safe defaults and the `ring` provider; ALPN
//! offers `http/1.1` only, the one protocol the server speaks. The files are read once, at
//! start: a missing, unreadable or mismatched pair stops the start with a message naming the
//! setting and the file. Certificate rotation is a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

use crate::config::TlsFiles;

/// Why HTTPS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable or holds no certificate.
    #[error("TLS_CERT_FILE {path}: {reason}")]
    Cert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file is missing, unreadable or holds no private key.
    #[error("TLS_KEY_FILE {path}: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the pair (a key that does not match the certificate, say).
    #[error("TLS_CERT_FILE and TLS_KEY_FILE are not a usable pair: {0}")]
    Pair(String),
    /// Writing a generated pair failed.
    #[error("cannot write {path}: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        reason: String,
    },
    /// rcgen could not make a certificate.
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
}

/// The acceptor for `files`.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let cert_err = |reason: String| TlsError::Cert {
        path: files.cert.clone(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_err("holds no PEM certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Pair(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Pair(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A generated pair, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedPair {
    /// The certificate (PEM); give it to clients as the one to trust.
    pub cert: PathBuf,
    /// The private key (PEM, mode 0600).
    pub key: PathBuf,
}

/// Writes a self-signed certificate for `names` (DNS names or IP addresses) and its key to
/// `dir/cert.pem` and `dir/key.pem`. For trying HTTPS only: clients must be told to trust
/// this very certificate.
pub fn generate_self_signed(dir: &Path, names: &[String]) -> Result<GeneratedPair, TlsError> {
    let generated = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let write_err = |path: &Path, e: std::io::Error| TlsError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, generated.cert.pem()).map_err(|e| write_err(&cert, e))?;
    write_private(&key, generated.key_pair.serialize_pem().as_bytes())
        .map_err(|e| write_err(&key, e))?;
    Ok(GeneratedPair { cert, key })
}

/// Writes `bytes` to a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn a_generated_pair_loads_and_a_broken_one_is_named() -> TestResult {
        let dir = tempfile::tempdir()?;
        let pair = generate_self_signed(dir.path(), &["localhost".into(), "127.0.0.1".into()])?;
        let files = TlsFiles {
            cert: pair.cert.clone(),
            key: pair.key.clone(),
        };
        acceptor(&files)?;
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&pair.key)?.permissions().mode() & 0o777,
            0o600
        );
        let swapped = TlsFiles {
            cert: pair.key.clone(),
            key: pair.cert.clone(),
        };
        let Err(e) = acceptor(&swapped) else {
            return Err("a swapped pair was accepted".into());
        };
        assert!(e.to_string().contains("TLS_CERT_FILE"), "{e}");
        let missing = TlsFiles {
            cert: dir.path().join("nope.pem"),
            key: pair.key,
        };
        let Err(e) = acceptor(&missing) else {
            return Err("a missing certificate was accepted".into());
        };
        assert!(e.to_string().contains("nope.pem"), "{e}");
        Ok(())
    }
}
