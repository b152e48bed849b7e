//! `caplab proxy`: an embedded Toxiproxy-compatible server, for machines without
//! Docker or Go. Same HTTP API and status codes as Toxiproxy 2.x, same toxic semantics.
//!
//! It sits between the parts of the lab: every app-to-node byte (`g1`, `g2`), every
//! sentinel-to-node byte and the replication stream (`cluster_g1`, `cluster_g2`) and the apps'
//! questions to the sentinels (`sentinels`) cross one of its proxies, and every network fault
//! of a scenario is a toxic on, or the disabling of, one of them.
//!
//! | module | what |
//! |---|---|
//! | [`server`] | [`ProxyServer::start`] / [`RunningProxy`]: the server as a library |
//! | [`api`] | HTTP routes and handlers |
//! | [`error`] | [`ApiError`], the one mapping of errors to statuses and bodies |
//! | [`input`] | request bodies read as Toxiproxy's Go decoder reads them |
//! | [`model`] | the wire model: proxies, toxics, typed [`ToxicKind`] (shared with [`crate::faults`]) |
//! | [`control`] | the task that owns the registry and runs operations one at a time |
//! | [`registry`] | every proxy, and the API's operations on them |
//! | [`entry`] | one proxy: addresses, listener, toxics and their `watch` channels |
//! | [`listener`] | accept loop and live connections of a proxy |
//! | [`connection`] | one client: dial upstream, two links, close together |
//! | [`link`] | one direction: plain copy without toxics, stage chain with them |
//! | [`signal`] | lock-free wake-ups of live connections (toxic changes, stop) |
//! | [`toxics`] | the toxics as stages ([`toxics::shape`], [`toxics::cut`]) |
//! | [`populate`] | `--config populate.json` |
//! | [`addr`] | addresses split, resolved and worded as Go's `net` package does |
//! | [`upstream`] | where proxies may forward (loopback only unless allowed) and the dial |
//! | [`metrics`] | the proxy's registry: bytes per proxy and direction, process metrics |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

pub mod addr;
pub mod api;
pub mod connection;
pub mod control;
pub mod entry;
pub mod error;
pub mod input;
pub mod link;
pub mod listener;
pub mod metrics;
pub mod model;
pub mod populate;
pub mod registry;
pub mod server;
pub mod signal;
pub mod toxics;
pub mod upstream;

pub use error::{ApiError, ErrorBody};
pub use model::{ProxyJson, Stream, ToxicJson, ToxicKind};
pub use server::{ProxyOptions, ProxyServer, RunningProxy};

/// `caplab proxy`
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// Address of the HTTP API (loopback by default: the API has no authentication).
    #[arg(long, env = "PROXY_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the HTTP API (0 picks a free one and prints it).
    #[arg(long, env = "PROXY_PORT", default_value_t = 8474)]
    pub port: u16,
    /// Proxies to create at start: a JSON array in the format of `POST /populate`.
    #[arg(long, value_name = "populate.json")]
    pub config: Option<PathBuf>,
    /// Serve bytes per proxy and direction on /metrics (Toxiproxy's -proxy-metrics); on
    /// unless `--proxy-metrics=false`.
    #[arg(
        long,
        env = "PROXY_METRICS",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
    )]
    pub proxy_metrics: bool,
    /// Serve the process's CPU, memory, threads and file descriptors on /metrics
    /// (Toxiproxy's -runtime-metrics).
    #[arg(
        long,
        env = "PROXY_RUNTIME_METRICS",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value_t = false,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
    )]
    pub runtime_metrics: bool,
    /// Let proxies forward to addresses outside loopback (127.0.0.0/8, ::1); without it,
    /// creating such a proxy is refused with a 403.
    #[arg(
        long,
        env = "PROXY_ALLOW_REMOTE_UPSTREAMS",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value_t = false,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
    )]
    pub allow_remote_upstreams: bool,
}

impl ProxyArgs {
    /// The server options these flags ask for.
    pub fn options(&self) -> ProxyOptions {
        ProxyOptions {
            metrics: metrics::MetricsOptions {
                proxy: self.proxy_metrics,
                runtime: self.runtime_metrics,
            },
            upstreams: upstream::UpstreamPolicy {
                allow_remote: self.allow_remote_upstreams,
            },
        }
    }
}

/// Why the proxy server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// `--host` did not resolve.
    #[error("cannot resolve the API address {host}:{port}: {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// What resolution said.
        reason: String,
    },
    /// The API address could not be bound.
    #[error(
        "cannot listen on {addr} for the proxy API: {error}; is another Toxiproxy running? choose another --port"
    )]
    Bind {
        /// The address.
        addr: String,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The `--config` file could not be read.
    #[error("cannot read the proxy config {}: {error}", path.display())]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The `--config` file could not be applied.
    #[error("proxy config {}: {error}", path.display())]
    ConfigApply {
        /// The file.
        path: PathBuf,
        /// What populate said.
        error: ApiError,
    },
    /// The metrics registry could not be built.
    #[error("cannot set up the proxy metrics: {0}")]
    Metrics(prometheus::Error),
    /// Waiting for Ctrl-C or SIGTERM failed.
    #[error("cannot wait for a stop signal: {0}")]
    Signal(std::io::Error),
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, ProxyError> {
    let fail = |reason: String| ProxyError::Resolve {
        host: host.to_string(),
        port,
        reason,
    };
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| fail(e.to_string()))?;
    addrs.next().ok_or_else(|| fail("no address".into()))
}

async fn stop_signal() -> Result<(), ProxyError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(ProxyError::Signal)?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map_err(ProxyError::Signal),
        _ = term.recv() => Ok(()),
    }
}

/// Runs the proxy server until Ctrl-C or SIGTERM.
pub async fn run(args: ProxyArgs) -> Result<ExitCode, ProxyError> {
    let addr = resolve(&args.host, args.port).await?;
    if !upstream::is_loopback(addr.ip()) {
        tracing::warn!(api = %addr, "the proxy API has no authentication and listens outside loopback: anyone who reaches it can create proxies");
    }
    let options = args.options();
    if options.upstreams.allow_remote {
        tracing::warn!("proxies may forward outside loopback (--allow-remote-upstreams)");
    }
    let server = ProxyServer::start_with(addr, options).await?;
    if let Some(path) = &args.config {
        let created = populate::from_file(&server, path).await?;
        tracing::info!(proxies = created.len(), config = %path.display(), "populated proxies from the config");
    }
    tracing::info!(api = %server.api_url(), "caplab proxy: Toxiproxy-compatible API listening");
    println!("caplab proxy API on {}", server.api_url());
    stop_signal().await?;
    tracing::info!("stopping the proxy server");
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
