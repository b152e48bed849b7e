//! What one tick of the console sees, as the page receives it: each app's figures, each link
//! and node, the faults in force, the control log, the traffic switch and the scenario run.
//!
//! Beside the data path: built once per tick by [`super::poller`] from what the apps, the
//! proxy API, `/proc` and the sentinels said, serialized once, and sent to every open page.
//! [`Point`] is the part the charts plot; the last minute of points is replayed to a page when
//! it connects ([`super::history`]).

use serde::Serialize;

use super::prom::Rates;
use crate::lab::recorded::NodeProcess;

/// One app (CP or AP) at one tick.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AppView {
    /// `cp` or `ap`.
    pub mode: &'static str,
    /// Its base URL.
    pub url: String,
    /// Whether its status endpoints answered this tick.
    pub up: bool,
    /// What failed, when one did not.
    pub error: Option<String>,
    /// Requests per second, availability, p50/p99 and stale reads since the last tick.
    pub rates: Option<Rates>,
    /// `stale_reads_total` since the app started.
    pub stale_reads_total: Option<f64>,
    /// The node it believes is primary (`/replication`'s `primary`).
    pub primary: Option<String>,
    /// Whether it reaches a sentinel.
    pub sentinels_reachable: Option<bool>,
    /// `data_staleness_ms` of g1 and g2.
    pub staleness_ms: [Option<f64>; 2],
    /// Primary offset minus replica offset.
    pub lag_bytes: Option<u64>,
    /// The replica's link status as the app last saw it.
    pub link_status: Option<String>,
    /// Writes waiting in AP's queue.
    pub queue_depth: Option<u64>,
    /// What each node said of its own role (`primary`, `replica`, null).
    pub roles: serde_json::Value,
    /// Its breakers: `g1`, `g2` and (CP) `replication`.
    pub breakers: Vec<BreakerView>,
}

/// One circuit breaker.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BreakerView {
    /// `g1`, `g2` or `replication`.
    pub name: String,
    /// `closed`, `half_open` or `open`.
    pub state: String,
    /// 0 closed, 1 half-open, 2 open.
    pub state_code: u8,
    /// Transitions since the app started.
    pub transitions: u64,
    /// When it last changed state, Unix ms.
    pub last_transition_unix_ms: Option<u64>,
}

/// One of the five proxies.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LinkView {
    /// `g1`, `g2`, `cluster_g1`, `cluster_g2`, `sentinels`.
    pub name: &'static str,
    /// What it carries, as the README says.
    pub carries: &'static str,
    /// Whether it accepts connections (false: cut).
    pub enabled: bool,
    /// Its toxics, described (`latency 300 ms downstream`).
    pub toxics: Vec<String>,
}

/// One Redis node.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeView {
    /// `g1` or `g2`.
    pub name: &'static str,
    /// Its process: running, stopped or down.
    pub process: NodeProcess,
}

/// A fault in force: a cut or slowed link, a stopped or killed node.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fault {
    /// The proxy or node.
    pub subject: String,
    /// What it is (`cluster_g1 cut`, `g2 stopped`).
    pub label: String,
}

/// A shaded interval of the charts: a fault from when it was first seen to when it was last
/// seen (`to_ms` null while it lasts).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Window {
    /// The proxy or node.
    pub subject: String,
    /// What it was.
    pub label: String,
    /// First seen, Unix ms.
    pub from_ms: u64,
    /// Gone since, Unix ms; `None` while it lasts.
    pub to_ms: Option<u64>,
}

/// An instant marked on the charts: the primary changed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Marker {
    /// When, Unix ms.
    pub t_ms: u64,
    /// What (`primary g1 -> g2`).
    pub label: String,
}

/// One line of the control log.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogEntry {
    /// Increasing number.
    pub seq: u64,
    /// When it finished, Unix ms.
    pub t_ms: u64,
    /// What was asked (`cut cluster_g1`), and by whom when not the page (`scenario: ...`).
    pub action: String,
    /// Whether it was done.
    pub ok: bool,
    /// What happened, or why not.
    pub detail: String,
    /// How long it took, ms.
    pub took_ms: u64,
}

/// The built-in traffic.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TrafficView {
    /// Whether the loops run.
    pub on: bool,
    /// Client loops per personality.
    pub workers: usize,
    /// Per personality (cp, ap): operations the loops finished since the last tick, per
    /// second, and reads the client itself found stale (an older version than a write it saw
    /// acknowledged before the read began) since the switch was turned on.
    pub ops_per_s: [f64; 2],
    /// Stale reads the client saw, cp and ap.
    pub client_stale_reads: [u64; 2],
}

/// The scenario run started from the page, if any.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScenarioView {
    /// Whether one runs now.
    pub running: bool,
    /// Its name.
    pub name: Option<String>,
    /// When it started, Unix ms.
    pub started_ms: Option<u64>,
    /// Load and settle time, ms (progress is elapsed over this, then "checking").
    pub planned_ms: Option<u64>,
    /// `load`, `checking`, `passed`, `failed` or `error`.
    pub stage: Option<String>,
    /// Each threshold: what, measured, whether it holds, its lesson.
    pub thresholds: Vec<ThresholdView>,
    /// Why it could not run.
    pub error: Option<String>,
    /// Where its report.html is served.
    pub report: Option<String>,
}

/// One threshold's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdView {
    /// The threshold, as `caplab scenario run` prints it.
    pub threshold: String,
    /// What was measured.
    pub measured: Option<f64>,
    /// Whether it holds.
    pub passed: bool,
    /// The lesson it shows.
    pub lesson: String,
}

/// The charts' figures of one app at one tick.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct PointApp {
    /// Requests per second.
    pub rps: Option<f64>,
    /// Availability, 0 to 1.
    pub avail: Option<f64>,
    /// p50 ms.
    pub p50: Option<f64>,
    /// p99 ms.
    pub p99: Option<f64>,
    /// Stale reads per second.
    pub stale: Option<f64>,
    /// `data_staleness_ms` of g1.
    pub st_g1: Option<f64>,
    /// `data_staleness_ms` of g2.
    pub st_g2: Option<f64>,
    /// Replication lag, bytes.
    pub lag: Option<f64>,
    /// AP queue depth.
    pub queue: Option<f64>,
    /// Breaker states (0, 1, 2) of g1, g2 and replication.
    pub br: [Option<u8>; 3],
}

/// The charts' figures of one tick.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Point {
    /// Unix ms.
    pub t_ms: u64,
    /// CP, then AP.
    pub apps: [PointApp; 2],
}

impl PointApp {
    /// The charted figures of one app view.
    pub fn of(app: &AppView) -> PointApp {
        let breaker = |name: &str| {
            app.breakers
                .iter()
                .find(|b| b.name == name)
                .map(|b| b.state_code)
        };
        PointApp {
            rps: app.rates.map(|r| r.requests_per_s),
            avail: app.rates.and_then(|r| r.availability),
            p50: app.rates.and_then(|r| r.p50_ms),
            p99: app.rates.and_then(|r| r.p99_ms),
            stale: app.rates.map(|r| r.stale_reads_per_s),
            st_g1: app.staleness_ms[0],
            st_g2: app.staleness_ms[1],
            lag: app.lag_bytes.map(|b| b as f64),
            queue: app.queue_depth.map(|q| q as f64),
            br: [breaker("g1"), breaker("g2"), breaker("replication")],
        }
    }
}

/// Everything one tick sends to the pages.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Tick number since the console started.
    pub seq: u64,
    /// Unix ms.
    pub t_ms: u64,
    /// The lab's directory.
    pub lab_dir: String,
    /// The address the console listens on, and whether that is loopback only.
    pub listen: String,
    /// Whether only this machine can reach the console.
    pub loopback: bool,
    /// CP and AP.
    pub apps: [AppView; 2],
    /// The five links.
    pub links: Vec<LinkView>,
    /// Why the proxy API did not answer, if it did not.
    pub proxy_error: Option<String>,
    /// g1 and g2.
    pub nodes: Vec<NodeView>,
    /// The primary the sentinels name (newest configuration), asked every other tick.
    pub sentinel_primary: Option<String>,
    /// The faults in force now.
    pub faults: Vec<Fault>,
    /// Fault windows of the last minute.
    pub windows: Vec<Window>,
    /// Primary changes of the last minute.
    pub markers: Vec<Marker>,
    /// The newest control log lines, newest last.
    pub log: Vec<LogEntry>,
    /// The built-in traffic.
    pub traffic: TrafficView,
    /// The scenario run from the page.
    pub scenario: ScenarioView,
    /// This tick's chart figures.
    pub point: Point,
}
