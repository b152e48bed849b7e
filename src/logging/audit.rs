//! `AUDIT_LOG`: where the audit trail goes. Every write (CP or AP, whatever its outcome) is one
//! `WRITE` event on the [`AUDIT_TARGET`] target, with its key, value size, version, outcome,
//! node and the event's timestamp.
//!
//! Beside the data path: the mode policies emit the events, [`super::init`] routes them.
//!
//! | `AUDIT_LOG` | the `WRITE` events go |
//! |---|---|
//! | `log` (default) | with the other logs (stderr or `LOG_FILE`), whatever `LOG_LEVEL` says |
//! | `off` | nowhere |
//! | `stderr` | to stderr, apart from a `LOG_FILE` |
//! | a path | to that file alone, rotated like `LOG_FILE` (`LOG_FILE_MAX_BYTES`, `LOG_FILE_COUNT`) |

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The tracing target of the audit events (a filter can name it: `LOG_LEVEL=info,audit=off`).
pub const AUDIT_TARGET: &str = "audit";

/// Where the audit events go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AuditLog {
    /// With the main log.
    #[default]
    Log,
    /// Nowhere.
    Off,
    /// To stderr.
    Stderr,
    /// To their own rotated file.
    File(PathBuf),
}

/// An empty `AUDIT_LOG`.
#[derive(Debug, thiserror::Error)]
#[error("AUDIT_LOG must be log, off, stderr or a file path, got an empty value")]
pub struct AuditLogError;

impl FromStr for AuditLog {
    type Err = AuditLogError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        Ok(match trimmed.to_ascii_lowercase().as_str() {
            "" => return Err(AuditLogError),
            "log" => AuditLog::Log,
            "off" | "none" => AuditLog::Off,
            "stderr" => AuditLog::Stderr,
            _ => AuditLog::File(PathBuf::from(trimmed)),
        })
    }
}

impl fmt::Display for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditLog::Log => f.write_str("log"),
            AuditLog::Off => f.write_str("off"),
            AuditLog::Stderr => f.write_str("stderr"),
            AuditLog::File(path) => write!(f, "{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_paths() -> Result<(), AuditLogError> {
        assert_eq!(AuditLog::from_str("LOG")?, AuditLog::Log);
        assert_eq!(AuditLog::from_str("off")?, AuditLog::Off);
        assert_eq!(AuditLog::from_str(" stderr ")?, AuditLog::Stderr);
        assert_eq!(
            AuditLog::from_str("/var/log/caplab/audit.log")?,
            AuditLog::File("/var/log/caplab/audit.log".into())
        );
        assert!(AuditLog::from_str("  ").is_err());
        Ok(())
    }
}
