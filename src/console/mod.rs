//! `caplab console`: the lab console, a live web page served by the lab itself, where a
//! student cuts links, stops nodes and forces failovers and watches CP and AP answer.
//!
//! Where it sits: outside the data path, beside the lab, as its observer and its hands. Once
//! per tick ([`poller`], 500 ms) it reads each app's `/metrics`, `/replication` and
//! `/circuit-breaker`, the proxy API's proxies, each node's process state from `/proc` and
//! (every other tick) the sentinels' primary, over connections it keeps ([`connections`]),
//! builds one [`snapshot::Snapshot`] and sends it
//! to every open page over server-sent events: the apps see one reader however many pages are
//! open. Controls go through the fault driver and the lab's [`crate::lab::RecordedLab`], the
//! same ones the scenario runner uses; scenarios run in-process against the lab.
//!
//! | module | what |
//! |---|---|
//! | [`server`] | the HTTP routes: the page and its assets, `/events` (SSE), the control API, reports |
//! | [`poller`] | the tick: polls the lab once, builds and publishes the snapshot |
//! | [`connections`] | what the tick keeps open: a connection per sentinel, the proxy API over keep-alive |
//! | [`prom`] | the apps' Prometheus text: request rates, availability, p50/p99 from histogram deltas |
//! | [`snapshot`] | what a tick sends the pages |
//! | [`history`] | the last minute: chart points, fault windows, primary changes; the control log |
//! | [`control`] | cut/heal/latency on the five links, node actions, failover, reset |
//! | [`traffic`] | the built-in traffic switch (the demo's client loops) |
//! | [`try_it`] | the "try it" pane: one write or read relayed to CP or AP |
//! | [`scenarios`] | shipped scenarios run against this lab, their verdicts and reports |
//!
//! `caplab lab up` starts it as a process of the lab (recorded in `lab.json`, stopped by `lab
//! down`); `caplab demo --console` serves it in-process after the demo.

pub mod connections;
pub mod control;
pub mod history;
pub mod poller;
pub mod prom;
pub mod scenarios;
pub mod server;
pub mod snapshot;
pub mod traffic;
pub mod try_it;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::faults::FaultDriver;
use crate::lab::{LabError, LabPassword, LabRecord, RecordedLab};

pub use server::router;

/// Where the console listens unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// How often the console polls the lab and updates the pages.
pub const TICK: Duration = Duration::from_millis(500);

/// `caplab console`
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleArgs {
    /// The lab's directory (its `lab.json` says where everything runs).
    #[arg(long, default_value = ".caplab")]
    pub lab_dir: PathBuf,
    /// Address to serve the page on. Loopback by default: the console has no login, and its
    /// controls stop and start the lab's processes.
    #[arg(long, env = "CAPLAB_CONSOLE_ADDR", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// The scenario files offered on the page.
    #[arg(long, default_value = "scenarios")]
    pub scenarios: PathBuf,
}

/// Why the console could not run.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The lab is not recorded there, or its record is unreadable.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// The address could not be bound.
    #[error("the console cannot listen on {addr}: {source}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("the console stopped serving: {0}")]
    Serve(std::io::Error),
    /// The lab's proxy API address is invalid.
    #[error("the lab's proxy API: {0}")]
    Faults(#[from] crate::faults::FaultError),
}

/// What the handlers and the poller share. Cheap handles only; no lock is held across an
/// `.await` except [`Shared::control_slot`], which serializes the lab's controls on purpose.
pub struct Shared {
    /// The lab as recorded now (node pids change at restarts).
    pub record: Mutex<LabRecord>,
    /// The lab's proxy API.
    pub faults: FaultDriver,
    /// HTTP client for the apps and the proxy API (loopback, short timeouts, keep-alive).
    pub http: reqwest::Client,
    /// The last minute and the control log.
    pub history: Mutex<history::History>,
    /// The newest tick, serialized, for every page.
    pub latest: watch::Sender<Arc<str>>,
    /// Set when the console stops: every event stream ends.
    pub stopping: watch::Sender<bool>,
    /// One control at a time (a node restart or a failover takes seconds).
    pub control_slot: tokio::sync::Mutex<()>,
    /// The built-in traffic.
    pub traffic: Mutex<traffic::Traffic>,
    /// The scenario run from the page.
    pub scenario: Mutex<scenarios::ScenarioState>,
    /// Where the shipped scenarios are.
    pub scenarios_dir: PathBuf,
    /// Where runs started from the page write their reports.
    pub runs_dir: PathBuf,
    /// The address the console listens on.
    pub listen: SocketAddr,
    /// The lab's Redis password (`None`: a lab without one), for the sentinels and nodes.
    pub redis_password: Option<LabPassword>,
}

impl Shared {
    /// A recorded lab for acting on its nodes, as recorded now.
    pub fn recorded_lab(&self) -> RecordedLab {
        RecordedLab::from_record(self.record_now(), self.redis_password.clone())
    }

    /// The record as it stands.
    pub fn record_now(&self) -> LabRecord {
        match self.record.lock() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Keeps `record` as the lab's record (after a restart gave a node a new pid).
    pub fn set_record(&self, record: LabRecord) {
        match self.record.lock() {
            Ok(mut r) => *r = record,
            Err(poisoned) => *poisoned.into_inner() = record,
        }
    }
}

/// A console serving in this process. Dropping it stops it.
pub struct RunningConsole {
    /// Where it listens (the real port when asked for port 0).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningConsole {
    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the handlers share (for tests that look inside).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops serving, ends every event stream and the built-in traffic.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        let _ = self.shared.stopping.send(true);
        traffic::switch(&self.shared, false);
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for RunningConsole {
    fn drop(&mut self) {
        let _ = self.shared.stopping.send(true);
        traffic::switch(&self.shared, false);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts a console for the lab recorded in `lab_dir` on `addr` (port 0: a free one).
pub async fn start(
    lab_dir: &std::path::Path,
    addr: SocketAddr,
    scenarios_dir: PathBuf,
) -> Result<RunningConsole, ConsoleError> {
    let lab = RecordedLab::open(lab_dir)?;
    let record = lab.record().clone();
    let faults = FaultDriver::new(&record.toxiproxy_url)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ConsoleError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ConsoleError::Bind { addr, source })?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(800))
        .build()
        // ok: building fails only if the TLS backend cannot start.
        .unwrap_or_default();
    let runs_dir = record.dir.join("console-runs");
    let (latest, _) = watch::channel(Arc::<str>::from(""));
    let (stopping, _) = watch::channel(false);
    let shared = Arc::new(Shared {
        record: Mutex::new(record),
        faults,
        http,
        history: Mutex::new(history::History::default()),
        latest,
        stopping,
        control_slot: tokio::sync::Mutex::new(()),
        traffic: Mutex::new(traffic::Traffic::default()),
        scenario: Mutex::new(scenarios::ScenarioState::default()),
        scenarios_dir,
        runs_dir,
        listen: addr,
        redis_password: lab.password().cloned(),
    });
    let poll = tokio::spawn(poller::run(shared.clone()));
    let app = router(shared.clone());
    let mut stop = shared.stopping.subscribe();
    let serve = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "the console stopped serving");
        }
    });
    Ok(RunningConsole {
        addr,
        shared,
        tasks: vec![poll, serve],
    })
}

/// Serves the console until `until` resolves.
pub async fn serve_until(
    lab_dir: &std::path::Path,
    addr: SocketAddr,
    scenarios_dir: PathBuf,
    until: impl Future<Output = ()>,
) -> Result<(), ConsoleError> {
    let console = start(lab_dir, addr, scenarios_dir).await?;
    if !console.addr.ip().is_loopback() {
        tracing::warn!(
            addr = %console.addr,
            "the console listens beyond loopback: anyone who reaches it can stop the lab's processes (it has no login)"
        );
    }
    tracing::info!(url = %console.url(), "the lab console serves");
    until.await;
    console.stop().await;
    Ok(())
}

/// `caplab console`: serves until Ctrl-C or SIGTERM.
pub async fn run(args: ConsoleArgs) -> Result<ExitCode, ConsoleError> {
    let mut interrupt = crate::lab::command::Interrupt::listen();
    let scenarios = std::path::absolute(&args.scenarios).unwrap_or(args.scenarios.clone());
    serve_until(&args.lab_dir, args.addr, scenarios, async move {
        interrupt.recv().await;
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
