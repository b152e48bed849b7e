//! The `caplab` command line.
//!
//! One subcommand per job; each subcommand's flags are defined by the module that does the job
//! (so `check` owns [`crate::check::CheckArgs`], and so on) and `main.rs` only dispatches.
//! Flags fall back to environment variables where the design names one; a flag wins over the
//! environment, the environment over the default. Nothing outside clap reads the environment.

use clap::{Parser, Subcommand};

use crate::logging::{LogFormat, LogLevel};

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

    #[command(subcommand)]
    pub command: Command,
}

/// What `caplab` can do.
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
}
