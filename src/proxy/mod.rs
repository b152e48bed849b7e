//! `caplab proxy` (issue 4): an embedded Toxiproxy-compatible server.
//!
//! Not built yet: `run` reports that plainly instead of pretending.

use std::process::ExitCode;

/// `caplab proxy`
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// Address of the HTTP API.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the HTTP API.
    #[arg(long, default_value_t = 8474)]
    pub port: u16,
}

/// The proxy is not built yet.
#[derive(Debug, thiserror::Error)]
#[error("`caplab proxy` is not built yet (issue 4)")]
pub struct NotBuilt;

/// Runs the proxy server until Ctrl-C.
pub async fn run(_args: ProxyArgs) -> Result<ExitCode, NotBuilt> {
    Err(NotBuilt)
}
