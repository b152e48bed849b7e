//! `caplab serve`: build one personality, serve it, and shut it down gracefully.
//!
//! Data path: the top. [`start`] validates the [`Config`], connects the node clients (in the
//! background: a node that is down at start is a node that is down, not a crash), and, with
//! `SENTINEL_URLS`, the sentinel clients, asking them once which node is the primary before it
//! serves. It builds the shared state and the router, starts the background tasks (primary
//! tracker, heartbeat writer and reader, the nodes' probes, replication poller, primary
//! data-loss watch, AP queue drain) and serves on the
//! listener it is given, so tests and the lab can start an app on port 0 in-process. [`RunningApp::shutdown`] stops accepting, lets
//! in-flight requests finish (bounded by `SHUTDOWN_GRACE_SEC`), stops the background tasks,
//! gives AP's queue a last chance to drain and reports how many writes it could not.
//!
//! | module | what |
//! |---|---|
//! | [`state`] | [`AppState`]: the shared handles every handler and task sees |
//! | [`server`] | the accept loop: connection cap and reserve, timeouts, HTTPS, graceful stop |
//! | [`conn_service`] | one connection's service: reserved-slot and rate-limit checks, then the router |
//! | [`activity`] | what a connection is doing (idle, reading headers, in a request), for its timeouts |
//! | [`watched_io`] | the socket as hyper sees it: reads recorded, hyper's bare error answers made JSON |
//! | [`tls`] | the rustls configuration from `TLS_CERT_FILE`/`TLS_KEY_FILE`, self-signed pairs |
//! | [`memory`] | giving freed memory back to the OS after a burst of connections |
//! | [`fd_limit`] | the open-file limit raised to fit `MAX_CONNECTIONS` |

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::{Config, ConfigError, Mode, ServeArgs};
use crate::http::rate_limit::AddressLimiter;
use crate::metrics::Metrics;
use crate::mode::queue::{QueueFile, QueueFileError, WriteQueue};
use crate::mode::{Personality, ap::Ap, cp::Cp};
use crate::node::{Breaker, Node, NodeId, WaitPool, fence_key};
use crate::primary::{Belief, DataLossState, DataLossWatch, Nodes, SentinelClients, Tracker};
use crate::staleness::{Heartbeat, ReplicationStatus, Staleness, Wakeups, heartbeat_key};
use server::{Server, Stop};

/// How long a start waits for its first connections (at least the network timeout): long
/// enough for a loaded machine, short enough that a node that is down does not hold the start.
const STARTUP_CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

pub mod activity;
pub mod conn_service;
pub mod fd_limit;
pub mod memory;
pub mod server;
pub mod state;
pub mod tls;
pub mod watched_io;

pub use state::{AppState, Shared};

/// Why the service could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(ConfigError),
    /// The listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The metrics registry refused a metric (a duplicate name: a bug).
    #[error("cannot register metrics: {0}")]
    Metrics(prometheus::Error),
    /// A Redis client could not be built from its URL.
    #[error("cannot set up the Redis client for {node}: {source}")]
    Redis {
        /// `g1`, `g2` or `sentinels`.
        node: &'static str,
        /// What fred said.
        source: fred::error::Error,
    },
    /// The server stopped with an I/O error.
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    /// Waiting for the termination signals failed.
    #[error("cannot listen for SIGTERM: {0}")]
    Signal(std::io::Error),
    /// AP's queue file could not be opened (or another instance holds it).
    #[error("cannot use the AP queue file: {0}")]
    QueueFile(QueueFileError),
    /// The HTTPS certificate or key could not be used.
    #[error("cannot serve HTTPS: {0}")]
    Tls(tls::TlsError),
}

// The errors carry their cause in their message, so they do not also report it as a
// `source()`: printing the chain would say it twice.
impl From<ConfigError> for AppError {
    fn from(e: ConfigError) -> Self {
        AppError::Config(e)
    }
}

impl From<prometheus::Error> for AppError {
    fn from(e: prometheus::Error) -> Self {
        AppError::Metrics(e)
    }
}

/// What a graceful shutdown left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// AP: queued writes that could not be drained to the primary (lost). CP: always 0.
    pub undrained_writes: usize,
    /// Whether in-flight requests were still running when the grace period ended.
    pub cut_short: bool,
}

/// A personality serving on its listener.
#[derive(Debug)]
pub struct RunningApp {
    addr: SocketAddr,
    state: AppState,
    stop: watch::Sender<Stop>,
    server: JoinHandle<std::io::Result<()>>,
    tasks: JoinSet<()>,
    ap: Option<Arc<Ap>>,
    pools: Vec<WaitPool>,
    sentinels: Option<SentinelClients>,
}

/// AP's write-behind queue: in memory, or backed by `AP_QUEUE_FILE`, replayed (what it held
/// is counted and logged; a bad tail is cut, counted and logged at ERROR).
fn ap_queue(config: &Config, metrics: &Metrics) -> Result<WriteQueue, AppError> {
    let mode = metrics.mode();
    let depth = metrics.ap_queue_depth.with_label_values(&[mode]);
    let Some(path) = &config.ap_queue_file else {
        return Ok(WriteQueue::new(config.ap_queue_capacity, depth));
    };
    let (file, replay) =
        QueueFile::open(path, config.ap_queue_fsync).map_err(AppError::QueueFile)?;
    if let Some(tail) = &replay.bad_tail {
        metrics
            .ap_queue_file_corrupt
            .with_label_values(&[mode])
            .inc();
        tracing::error!(
            file = %path.display(),
            offset = tail.offset,
            bytes = tail.bytes,
            reason = tail.reason,
            saved_to = tail.saved_to.as_ref().map(|p| p.display().to_string()),
            "AP_QUEUE_FILE_CORRUPT: the queue file's tail was cut off; the records before it are replayed"
        );
    }
    let replayed = replay.writes.len();
    metrics
        .ap_queue_replayed
        .with_label_values(&[mode])
        .inc_by(replayed as u64);
    tracing::info!(
        file = %path.display(),
        replayed,
        fsync = config.ap_queue_fsync,
        "AP_QUEUE_FILE_OPEN: queued writes replayed from the queue file"
    );
    Ok(WriteQueue::with_file(
        config.ap_queue_capacity,
        depth,
        file,
        replay.writes,
    ))
}

/// Binds the configured `host:port`.
pub async fn bind(config: &Config) -> Result<TcpListener, AppError> {
    let addr = format!("{}:{}", config.host, config.port);
    TcpListener::bind(&addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })
}

/// Starts a personality on `listener` (port 0 is fine: see [`RunningApp::local_addr`]).
pub async fn start(config: Config, listener: TcpListener) -> Result<RunningApp, AppError> {
    config.validate()?;
    let tls = match &config.server.tls {
        Some(files) => Some(tls::acceptor(files).map_err(AppError::Tls)?),
        None => None,
    };
    let addr = listener.local_addr().map_err(|source| AppError::Bind {
        addr: format!("{}:{}", config.host, config.port),
        source,
    })?;
    let metrics = Metrics::new(config.mode)?;
    let connect = |id: NodeId, url: &str| {
        let password = config.redis_password.as_ref();
        Node::connect_with(
            id,
            url,
            password,
            config.network_timeout,
            config.breaker,
            &metrics,
        )
        .map_err(|source| AppError::Redis {
            node: id.as_str(),
            source,
        })
    };
    let g1 = connect(NodeId::G1, &config.g1_url)?;
    let g2 = connect(NodeId::G2, &config.g2_url)?;
    let staleness = Staleness::new(config.heartbeat_interval);
    let belief = if config.sentinel_urls.is_empty() {
        Belief::fixed()
    } else {
        Belief::following_sentinels()
    };
    let nodes = Nodes::new(g1.clone(), g2.clone(), belief);

    let (personality, ap, pools) = match config.mode {
        Mode::Cp => {
            let pool = |node: &Node, url: &str| {
                WaitPool::connect(node, url, config.cp_wait_pool_size, config.cp_wait_timeout)
                    .map_err(|source| AppError::Redis {
                        node: node.name(),
                        source,
                    })
            };
            let pools = [pool(&g1, &config.g1_url)?, pool(&g2, &config.g2_url)?];
            let replication = Breaker::new("replication", config.breaker, &metrics);
            let fence = config.cp_read_fence.then(|| fence_key(&config.instance_id));
            let cp = Cp::new(
                nodes.clone(),
                pools.clone(),
                replication,
                fence,
                staleness.clone(),
                metrics.clone(),
            );
            (Personality::Cp(Box::new(cp)), None, pools.to_vec())
        }
        Mode::Ap => {
            let queue = ap_queue(&config, &metrics)?;
            let ap = Arc::new(Ap::with_queue(
                nodes.clone(),
                queue,
                staleness.clone(),
                config.max_staleness,
                metrics.clone(),
            ));
            (Personality::Ap(ap.clone()), Some(ap), Vec::new())
        }
    };
    let sentinels = if config.sentinel_urls.is_empty() {
        None
    } else {
        let clients = SentinelClients::connect(
            &config.sentinel_urls,
            &config.sentinel_master,
            config.redis_password.as_ref(),
            config.network_timeout,
        )
        .map_err(|source| AppError::Redis {
            node: "sentinels",
            source,
        })?;
        Some(clients)
    };

    // Give the first connections a moment, so the first requests do not fail fast for nothing;
    // a node that does not come stays down and the breakers take it from there.
    let first_wait = config.network_timeout.max(STARTUP_CONNECT_WAIT);
    let pools_up = async {
        for pool in &pools {
            pool.wait_connected(first_wait).await;
        }
    };
    let (up1, up2, _) = tokio::join!(
        g1.wait_connected(first_wait),
        g2.wait_connected(first_wait),
        pools_up
    );
    for (node, up) in [(&g1, up1), (&g2, up2)] {
        if !up {
            tracing::warn!(
                node = node.name(),
                mode = config.mode.as_str(),
                "DB_CONNECT_FAILURE: not connected at start; reconnecting in the background"
            );
        }
    }
    // Ask the sentinels once before serving, so the first requests go to the primary they
    // name (bounded: sentinels that do not answer leave g1, and the tracker keeps asking).
    let tracker = match &sentinels {
        Some(clients) => {
            let mut tracker = Tracker::new(
                nodes.clone(),
                clients.clone(),
                config.sentinel_poll,
                metrics.clone(),
            );
            let first = async {
                clients.wait_connected(first_wait).await;
                tracker.poll_once().await;
            };
            let _ = tokio::time::timeout(first_wait, first).await;
            Some(tracker)
        }
        None => None,
    };

    let replication = ReplicationStatus::default();
    let state: AppState = Arc::new(Shared {
        config: config.clone(),
        metrics: metrics.clone(),
        nodes: nodes.clone(),
        personality,
        staleness: staleness.clone(),
        replication: replication.clone(),
        sessions: crate::session::Sessions::from_config(&config),
        data_loss: DataLossState::default(),
    });

    let mut tasks = JoinSet::new();
    if let Some(tracker) = tracker {
        tasks.spawn(tracker.run());
    }
    let replication_breaker = state.personality.replication_breaker().cloned();
    let heartbeat = Heartbeat {
        key: heartbeat_key(&config.instance_id),
        interval: config.heartbeat_interval,
        nodes: nodes.clone(),
        staleness,
        metrics: metrics.clone(),
        replication: replication_breaker.clone(),
    };
    let wakeups = Arc::new(Wakeups::default());
    tasks.spawn(heartbeat.clone().run_writer(wakeups.clone()));
    tasks.spawn(heartbeat.run_reader(wakeups));
    for node in nodes.both() {
        tasks.spawn(node.clone().run_probe());
    }
    tasks.spawn(
        DataLossWatch {
            nodes: nodes.clone(),
            state: state.data_loss.clone(),
            policy: config.on_primary_data_loss,
            metrics: metrics.clone(),
            period: config.replication_poll,
        }
        .run(),
    );
    tasks.spawn(replication.run_poller(
        nodes,
        metrics,
        config.replication_poll,
        replication_breaker,
    ));
    if let Some(ap) = &ap {
        tasks.spawn(
            ap.clone()
                .run_drainer(drain_period(config.heartbeat_interval)),
        );
    }

    let limiter = AddressLimiter::new(config.server.rate_limit).map(Arc::new);
    if let Some(limiter) = &limiter {
        tasks.spawn(crate::http::rate_limit::forget_idle_periodically(
            limiter.clone(),
        ));
    }
    let count = Arc::new(memory::ConnectionCount::default());
    tasks.spawn(memory::trim_after_bursts(count.clone()));
    let (stop, stopped) = watch::channel(Stop::Running);
    let server = Server {
        count,
        shared: conn_service::ConnShared {
            service: crate::http::service(state.clone()),
            metrics: state.metrics.clone(),
            limiter,
            max_connections: config.server.max_connections,
        },
        settings: config.server.clone(),
        tls,
    };
    let server = tokio::spawn(server::serve(listener, server, stopped));
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(mode = config.mode.as_str(), %addr, scheme, instance_id = config.instance_id, "SERVE_START");
    Ok(RunningApp {
        addr,
        state,
        stop,
        server,
        tasks,
        ap,
        pools,
        sentinels,
    })
}

impl RunningApp {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The shared state (tests and the lab inspect breakers, staleness, the queue).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops gracefully: no new connections, in-flight requests finish (up to the grace
    /// period), background tasks stop, AP drains what it can, connections close.
    pub async fn shutdown(mut self) -> Result<ShutdownReport, AppError> {
        let config = &self.state.config;
        let grace = config.shutdown_grace;
        let started = tokio::time::Instant::now();
        let _ = self.stop.send(Stop::Graceful);
        let cut_short = match tokio::time::timeout(grace, &mut self.server).await {
            Ok(Ok(Ok(()))) => false,
            Ok(Ok(Err(e))) => return Err(AppError::Serve(e)),
            Ok(Err(_join)) => false,
            Err(_elapsed) => {
                tracing::warn!(
                    grace_sec = grace.as_secs_f64(),
                    "in-flight requests still running after the grace period; closing"
                );
                let _ = self.stop.send(Stop::Now);
                if tokio::time::timeout(FORCED_CLOSE_WAIT, &mut self.server)
                    .await
                    .is_err()
                {
                    self.server.abort();
                }
                true
            }
        };
        self.tasks.shutdown().await;
        let undrained_writes = match &self.ap {
            Some(ap) => {
                let left = grace.saturating_sub(started.elapsed());
                ap.final_drain(left, drain_period(config.heartbeat_interval))
                    .await
            }
            None => 0,
        };
        let limit = config.network_timeout;
        for node in self.state.nodes.both() {
            let _ = tokio::time::timeout(limit, node.quit()).await;
        }
        for pool in &self.pools {
            let _ = tokio::time::timeout(limit, pool.quit()).await;
        }
        if let Some(sentinels) = &self.sentinels {
            let _ = tokio::time::timeout(limit, sentinels.quit()).await;
        }
        tracing::info!(
            mode = config.mode.as_str(),
            undrained_writes,
            cut_short,
            "SERVE_STOP"
        );
        Ok(ShutdownReport {
            undrained_writes,
            cut_short,
        })
    }
}

/// How long connections get to close once the grace period is over.
const FORCED_CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// `caplab serve`: runs until SIGTERM or Ctrl-C, then shuts down gracefully.
pub async fn serve(args: ServeArgs) -> Result<ExitCode, AppError> {
    let config = args.into_config()?;
    fd_limit::ensure_fd_limit(&config);
    let listener = bind(&config).await?;
    let app = start(config, listener).await?;
    wait_for_termination().await?;
    // Undrained AP writes are logged (AP_QUEUE_UNDRAINED) and counted; the stop itself worked.
    app.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_termination() -> Result<(), AppError> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(AppError::Signal)?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received"),
    }
    Ok(())
}

/// How often AP's queue drain looks for work: the heartbeat's period, but never more often
/// than every 100 ms (a short heartbeat is for staleness, not for a queue that only fills
/// while the primary is away).
fn drain_period(heartbeat: std::time::Duration) -> std::time::Duration {
    heartbeat.max(std::time::Duration::from_millis(100))
}
