//! [`LabPassword`]: the password of a lab's Redis nodes and sentinels, new at each `caplab lab
//! up`, kept in `<dir>/redis.password` (mode 0600) and nowhere else: not in `lab.json`, not on
//! a command line, not in a log.
//!
//! Beside the data path: the apps read the file themselves (`--redis-password-file`); every
//! connection the lab makes to a node or a sentinel (probes, `lab status`, failovers, node
//! restarts, the console) takes its URL from [`auth_url`]. A lab directory without the file
//! (a lab started before labs had a password) is reached without one.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::error::LabError;

/// The file in the lab's directory that holds the password.
pub const PASSWORD_FILE: &str = "redis.password";

/// A lab's Redis password. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct LabPassword(String);

impl fmt::Debug for LabPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LabPassword(<hidden>)")
    }
}

impl LabPassword {
    /// 32 random bytes in hex: no character a Redis config line or a URL would need quoted.
    pub fn generate() -> LabPassword {
        let bytes: [u8; 32] = rand::random();
        LabPassword(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The password itself, for a Redis config or a URL; never show it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Where a lab in `dir` keeps its password.
    pub fn file(dir: &Path) -> PathBuf {
        dir.join(PASSWORD_FILE)
    }

    /// Writes the password to `dir/redis.password`, readable by its owner only (0600, also
    /// when the file was already there with another mode). Returns the file.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, LabError> {
        let path = LabPassword::file(dir);
        let file_err = |e: std::io::Error| LabError::File {
            path: path.clone(),
            reason: e.to_string(),
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(file_err)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(file_err)?;
        file.write_all(self.0.as_bytes()).map_err(file_err)?;
        file.sync_all().map_err(file_err)?;
        Ok(path)
    }

    /// The password of the lab in `dir`; `None` when it has no password file (a lab started
    /// before labs had one). An empty or unreadable file is an error.
    pub fn read(dir: &Path) -> Result<Option<LabPassword>, LabError> {
        let path = LabPassword::file(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().is_empty() => Err(LabError::File {
                path,
                reason: "the lab's Redis password file is empty".into(),
            }),
            Ok(text) => Ok(Some(LabPassword(text.trim().to_string()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LabError::File {
                path,
                reason: e.to_string(),
            }),
        }
    }
}

/// The URL to connect to a lab node or sentinel on `port`: `redis://:<password>@127.0.0.1:<port>`
/// with a password, `redis://127.0.0.1:<port>` without. Never show it.
pub fn auth_url(password: Option<&LabPassword>, port: u16) -> String {
    match password {
        Some(password) => format!("redis://:{}@127.0.0.1:{port}", password.expose()),
        None => format!("redis://127.0.0.1:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_owner_only_and_read_back() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("caplab-password-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        assert_eq!(LabPassword::read(&dir)?, None);
        let password = LabPassword::generate();
        assert_eq!(password.expose().len(), 64);
        assert_ne!(password, LabPassword::generate());
        let path = password.write(&dir)?;
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(LabPassword::read(&dir)?, Some(password.clone()));
        assert!(!format!("{password:?}").contains(password.expose()));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn urls_carry_the_password_only_when_there_is_one() {
        let password = LabPassword("abc".into());
        assert_eq!(auth_url(Some(&password), 7), "redis://:abc@127.0.0.1:7");
        assert_eq!(auth_url(None, 7), "redis://127.0.0.1:7");
    }
}
