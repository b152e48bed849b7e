//! Logging set-up, shared by every subcommand.
//!
//! Logs go to stderr through `tracing`, either human-readable (`pretty`) or one JSON object per
//! line (`json`). Events an operator greps for are named in the message (`DB_CONNECT_FAILURE`,
//! `CIRCUIT_BREAKER_STATE_CHANGE`, `WRITE`, `PARTITION`, `HEAL`). The level comes from
//! `--log-level` / `LOG_LEVEL`; the deployment guide's Python-style names (`WARNING`,
//! `CRITICAL`) are accepted beside tracing's own.

use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// A validated log level or tracing filter directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLevel(String);

/// A log level that is neither a known level name nor a valid tracing filter.
#[derive(Debug, thiserror::Error)]
#[error(
    "LOG_LEVEL {given:?} is not a level (trace, debug, info, warn, error) or a tracing filter: {reason}"
)]
pub struct LogLevelError {
    given: String,
    reason: String,
}

impl FromStr for LogLevel {
    type Err = LogLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let directive = match s.trim().to_ascii_lowercase().as_str() {
            "trace" => "trace".to_string(),
            "debug" => "debug".to_string(),
            "info" => "info".to_string(),
            "warn" | "warning" => "warn".to_string(),
            "error" | "critical" | "fatal" => "error".to_string(),
            "off" => "off".to_string(),
            _ => s.trim().to_string(),
        };
        EnvFilter::try_new(&directive).map_err(|e| LogLevelError {
            given: s.to_string(),
            reason: e.to_string(),
        })?;
        Ok(LogLevel(directive))
    }
}

impl LogLevel {
    /// The tracing filter directive this level stands for.
    pub fn directive(&self) -> &str {
        &self.0
    }
}

/// Installs the global subscriber. Calling it twice is harmless (the second call is ignored),
/// so tests that start several services in one process can call it freely.
pub fn init(level: &LogLevel, format: LogFormat) {
    // The directive was validated in `from_str`; fall back to `info` rather than panic.
    let filter = EnvFilter::try_new(level.directive()).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn guide_level_names_are_accepted() -> TestResult {
        assert_eq!(LogLevel::from_str("WARNING")?.directive(), "warn");
        assert_eq!(LogLevel::from_str("ERROR")?.directive(), "error");
        assert_eq!(LogLevel::from_str("critical")?.directive(), "error");
        assert_eq!(
            LogLevel::from_str("info,caplab=debug")?.directive(),
            "info,caplab=debug"
        );
        Ok(())
    }

    #[test]
    fn nonsense_is_refused_with_the_setting_named() -> TestResult {
        let Err(err) = LogLevel::from_str("loud=[[[") else {
            return Err("expected a nonsense level to be refused".into());
        };
        let err = err.to_string();
        assert!(err.contains("LOG_LEVEL"), "{err}");
        Ok(())
    }
}
