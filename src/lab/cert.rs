//! `caplab lab cert`: a self-signed certificate and key for trying the apps over HTTPS.
//!
//! Beside the data path: this only writes two files. The pair is for a laptop or a test, not
//! for production (clients must be told to trust this very certificate); the apps read it
//! through `TLS_CERT_FILE` and `TLS_KEY_FILE` like any other pair.

use std::path::PathBuf;
use std::process::ExitCode;

use super::error::LabError;
use crate::app::tls::generate_self_signed;

/// `caplab lab cert`
#[derive(Debug, clap::Args)]
pub struct CertArgs {
    /// Where to write `cert.pem` and `key.pem` (the key readable by its owner only).
    #[arg(long, default_value = ".caplab/tls")]
    dir: PathBuf,
    /// A DNS name or IP address the certificate is for (repeat for several).
    #[arg(long = "name", value_name = "NAME", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()])]
    names: Vec<String>,
}

/// Writes the pair and says how to use it.
pub fn run(args: CertArgs) -> Result<ExitCode, LabError> {
    let pair = generate_self_signed(&args.dir, &args.names).map_err(|e| LabError::File {
        path: args.dir.clone(),
        reason: e.to_string(),
    })?;
    println!("wrote {} and {}", pair.cert.display(), pair.key.display());
    println!("serve HTTPS with:");
    println!(
        "  TLS_CERT_FILE={} TLS_KEY_FILE={} caplab serve --mode cp",
        pair.cert.display(),
        pair.key.display()
    );
    println!("and trust it in the client:");
    println!(
        "  curl --cacert {} https://localhost:5001/health",
        pair.cert.display()
    );
    Ok(ExitCode::SUCCESS)
}
