//! The `caplab` command line.
//!
//! One subcommand per job; each subcommand's flags are defined by the module that does the job
//! (so `check` owns [`crate::check::CheckArgs`], and so on) and `main.rs` only dispatches.
//! Flags fall back to environment variables where the design names one; a flag wins over the
//! environment, the environment over the default. Nothing outside clap reads the environment.

use clap::{Parser, Subcommand};

use std::path::PathBuf;

use crate::logging::{AuditLog, LogFormat, LogLevel, LogSettings, Rotation};

/// caplab: CP and AP side by side over a real Redis primary/replica pair, with partitions,
/// a load generator and a history checker.
#[derive(Debug, Parser)]
#[command(name = "caplab", version, about, long_about = None)]
pub struct Cli {
    /// Log level: trace, debug, info, warn (or WARNING), error (or CRITICAL), or a tracing
    /// filter such as `info,caplab=debug`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: LogLevel,

    /// Log format: `pretty` for people, `json` for log aggregation.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,

    /// Write the log to this file instead of stderr, rotated by size.
    #[arg(long, env = "LOG_FILE", value_name = "LOG_FILE", global = true)]
    pub log_file: Option<PathBuf>,

    /// Where the `WRITE` audit events go: `log` (with the other logs, at any LOG_LEVEL),
    /// `off`, `stderr`, or a file of their own, rotated like LOG_FILE.
    #[arg(
        long,
        env = "AUDIT_LOG",
        value_name = "AUDIT_LOG",
        default_value = "log",
        global = true
    )]
    pub audit_log: AuditLog,

    /// A log file is rotated once it passes this many bytes.
    #[arg(long, env = "LOG_FILE_MAX_BYTES", value_name = "LOG_FILE_MAX_BYTES",
          default_value_t = crate::logging::rotating::DEFAULT_MAX_BYTES,
          value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub log_file_max_bytes: u64,

    /// Log files kept per log, the current one included.
    #[arg(long, env = "LOG_FILE_COUNT", value_name = "LOG_FILE_COUNT",
          default_value_t = crate::logging::rotating::DEFAULT_FILE_COUNT as u64,
          value_parser = clap::value_parser!(u64).range(1..=1000), global = true)]
    pub log_file_count: u64,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Where and how to log, as the global flags say.
    pub fn log_settings(&self) -> LogSettings {
        LogSettings {
            level: self.log_level.clone(),
            format: self.log_format,
            file: self.log_file.clone(),
            audit: self.audit_log.clone(),
            rotation: Rotation {
                max_bytes: self.log_file_max_bytes,
                files: usize::try_from(self.log_file_count).unwrap_or(usize::MAX),
            },
        }
    }
}

/// What `caplab` can do.
// Parsed once at start and matched once: boxing `serve`'s many flags would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one personality (CP or AP) over the Redis pair until SIGTERM or Ctrl-C.
    Serve(crate::config::ServeArgs),
    /// Check a recorded history (JSON Lines) for linearizability, stale reads, lost writes and
    /// session violations. Exit 0 valid, 1 invalid, 2 unknown or error.
    Check(crate::check::CheckArgs),
    /// Run the embedded Toxiproxy-compatible server.
    Proxy(crate::proxy::ProxyArgs),
    /// Start, inspect or stop the local lab (two redis-server processes, the proxy, both apps).
    Lab(crate::lab::LabArgs),
    /// Lab up, a short partition against both personalities, a side-by-side table, lab down.
    Demo(crate::lab::DemoArgs),
    /// Run, list or validate scenario files.
    Scenario(crate::scenario::ScenarioArgs),
    /// Serve the lab console (a live web page with controls) for a running lab; `caplab lab
    /// up` starts one.
    Console(crate::console::ConsoleArgs),
}
