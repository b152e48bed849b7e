//! Logging set-up, shared by every subcommand.
//!
//! Logs go through `tracing` to stderr, or to a file rotated by size (`LOG_FILE`), either
//! human-readable (`pretty`) or one JSON object per line (`json`). Events an operator greps for
//! are named in the message (`DB_CONNECT_FAILURE`, `CIRCUIT_BREAKER_STATE_CHANGE`, `WRITE`,
//! `PARTITION`, `HEAL`). The level comes from `--log-level` / `LOG_LEVEL`; the deployment
//! guide's Python-style names (`WARNING`, `CRITICAL`) are accepted beside tracing's own.
//!
//! The audit trail, one `WRITE` event per write, has its own target ([`AUDIT_TARGET`]) and its
//! own switch, `AUDIT_LOG` ([`audit`]): with the other logs (the default), off, on stderr, or in
//! its own rotated file. It does not follow `LOG_LEVEL`: the guide asks for `WARNING` in
//! production and for every write to be logged, so the audit events pass at any level unless
//! the level names `audit` itself or `AUDIT_LOG=off`.
//!
//! | module | what |
//! |---|---|
//! | [`audit`] | `AUDIT_LOG`: where the `WRITE` audit events go |
//! | [`rotating`] | log files rotated by size (`LOG_FILE_MAX_BYTES`, `LOG_FILE_COUNT`) |

use std::path::PathBuf;
use std::str::FromStr;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

pub mod audit;
pub mod rotating;

pub use audit::{AUDIT_TARGET, AuditLog};
pub use rotating::{LogFileError, Rotation};

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

/// Where and how every log line goes.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// The level or filter of the main log.
    pub level: LogLevel,
    /// Pretty or JSON (both logs).
    pub format: LogFormat,
    /// The main log's file; stderr when `None`.
    pub file: Option<PathBuf>,
    /// Where the audit events go.
    pub audit: AuditLog,
    /// How log files rotate.
    pub rotation: Rotation,
}

impl LogSettings {
    /// Stderr at `level` in `format`, audit events with them, as before any file is set.
    pub fn stderr(level: LogLevel, format: LogFormat) -> LogSettings {
        LogSettings {
            level,
            format,
            file: None,
            audit: AuditLog::Log,
            rotation: Rotation::default(),
        }
    }
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn writer_for(
    setting: &'static str,
    file: Option<&std::path::Path>,
    rotation: Rotation,
) -> Result<BoxMakeWriter, LogFileError> {
    Ok(match file {
        None => BoxMakeWriter::new(std::io::stderr),
        Some(path) => BoxMakeWriter::new(rotating::open(setting, path, rotation)?),
    })
}

fn fmt_layer<F>(writer: BoxMakeWriter, format: LogFormat, filter: F) -> BoxedLayer
where
    F: tracing_subscriber::layer::Filter<Registry> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Pretty => layer.with_filter(filter).boxed(),
        LogFormat::Json => layer.json().flatten_event(true).with_filter(filter).boxed(),
    }
}

/// The main log's filter: `level`, with the audit target let through at `info` when the audit
/// events go with the main log (and the level does not name the target itself), or shut out
/// when they go elsewhere or nowhere.
fn main_filter(level: &LogLevel, audit: &AuditLog) -> EnvFilter {
    let directive = level.directive();
    let names_audit = directive
        .split(',')
        .any(|d| d.trim().starts_with(AUDIT_TARGET));
    let full = match audit {
        AuditLog::Log if names_audit => directive.to_string(),
        AuditLog::Log => format!("{directive},{AUDIT_TARGET}=info"),
        _ => format!("{directive},{AUDIT_TARGET}=off"),
    };
    // The directive was validated in `from_str`; fall back to `info` rather than panic.
    EnvFilter::try_new(&full).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the global subscriber. Calling it twice is harmless (the second call is ignored),
/// so tests that start several services in one process can call it freely. A log file that
/// cannot be opened is an error naming its setting.
pub fn init(settings: &LogSettings) -> Result<(), LogFileError> {
    let main = fmt_layer(
        writer_for("LOG_FILE", settings.file.as_deref(), settings.rotation)?,
        settings.format,
        main_filter(&settings.level, &settings.audit),
    );
    let audit_writer = match &settings.audit {
        AuditLog::Log | AuditLog::Off => None,
        AuditLog::Stderr => Some(writer_for("AUDIT_LOG", None, settings.rotation)?),
        AuditLog::File(path) => Some(writer_for("AUDIT_LOG", Some(path), settings.rotation)?),
    };
    let audit = audit_writer.map(|writer| {
        let only_audit = Targets::new().with_target(AUDIT_TARGET, tracing::Level::INFO);
        fmt_layer(writer, settings.format, only_audit)
    });
    let layers: Vec<BoxedLayer> = std::iter::once(main).chain(audit).collect();
    let _ = Registry::default().with(layers).try_init();
    Ok(())
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
