//! Prometheus metrics: one owned registry per app, every metric name defined once, here.
//!
//! This sits beside the whole data path: the HTTP layer counts requests and latencies, the
//! node clients count connection failures, the breakers set their state and count transitions,
//! the mode policies count write outcomes and stale reads, the heartbeat sets staleness and
//! replication lag, the primary tracker counts the failovers it follows and the replication
//! poll sets what each node says of its own role. The names and the first labels are fixed by docs/design.md (the deployment
//! guide's five plus the others). Labels carry only small closed sets (mode, node, operation,
//! status, outcome, target state), never keys or values.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `app_requests_total` | counter | mode, operation, status |
//! | `app_request_latency_seconds` | histogram | mode, operation |
//! | `circuit_breaker_state` | gauge (0 closed, 1 half-open, 2 open) | mode, node |
//! | `circuit_breaker_transitions_total` | counter | mode, node, to |
//! | `data_staleness_ms` | gauge | mode, node |
//! | `db_connection_failures_total` | counter | mode, node |
//! | `write_outcomes_total` | counter | mode, outcome |
//! | `cas_outcomes_total` | counter | mode, outcome (`ok`, `mismatch`, `failed`, `indeterminate`) |
//! | `replication_lag_bytes` | gauge | mode |
//! | `replication_link_up` | gauge (1 up, 0 down or unknown) | mode |
//! | `ap_write_queue_depth` | gauge | mode |
//! | `ap_queue_replayed_total` | counter (queued writes read back from the queue file at start) | mode |
//! | `ap_queue_file_corrupt_total` | counter (bad tails cut from the queue file at start) | mode |
//! | `primary_data_loss_total` | counter (the believed primary's version counter went back) | mode |
//! | `primary_data_loss_unacknowledged` | gauge (1 while a loss waits for `POST /admin/ack-data-loss`) | mode |
//! | `session_guarantee_violations_total` | counter | mode |
//! | `session_ryw_fallbacks_total` | counter | mode |
//! | `stale_reads_total` | counter | mode, node |
//! | `failovers_seen_total` | counter | mode |
//! | `primary_node` | gauge (1 for the node this instance believes is primary) | mode, node |
//! | `redis_node_is_primary` | gauge (1 when the node itself says it is a primary) | mode, node |
//! | `sentinels_reachable` | gauge (1 when the last poll reached a sentinel; only with sentinels) | mode |
//! | `http_connections_open` | gauge | mode, slot (`regular`, `reserved`) |
//! | `http_connections_rejected_total` | counter | mode, reason (`limit`: answered 503; `overload`: closed unanswered) |
//! | `http_connection_timeouts_total` | counter | mode, phase (`header`, `idle`, `tls_handshake`) |
//! | `rate_limited_total` | counter | mode |

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use std::sync::Arc;

use crate::config::Mode;
use crate::node::NodeId;

/// `app_requests_total`
pub const REQUESTS_TOTAL: &str = "app_requests_total";
/// `app_request_latency_seconds`
pub const REQUEST_LATENCY: &str = "app_request_latency_seconds";
/// `circuit_breaker_state`
pub const BREAKER_STATE: &str = "circuit_breaker_state";
/// `circuit_breaker_transitions_total`
pub const BREAKER_TRANSITIONS: &str = "circuit_breaker_transitions_total";
/// `data_staleness_ms`
pub const DATA_STALENESS: &str = "data_staleness_ms";
/// `db_connection_failures_total`
pub const DB_CONNECTION_FAILURES: &str = "db_connection_failures_total";
/// `write_outcomes_total`
pub const WRITE_OUTCOMES: &str = "write_outcomes_total";
/// `cas_outcomes_total`
pub const CAS_OUTCOMES: &str = "cas_outcomes_total";
/// `replication_lag_bytes`
pub const REPLICATION_LAG: &str = "replication_lag_bytes";
/// `replication_link_up`
pub const REPLICATION_LINK_UP: &str = "replication_link_up";
/// `ap_write_queue_depth`
pub const AP_QUEUE_DEPTH: &str = "ap_write_queue_depth";
/// `ap_queue_replayed_total`
pub const AP_QUEUE_REPLAYED: &str = "ap_queue_replayed_total";
/// `ap_queue_file_corrupt_total`
pub const AP_QUEUE_FILE_CORRUPT: &str = "ap_queue_file_corrupt_total";
/// `primary_data_loss_total`
pub const PRIMARY_DATA_LOSS: &str = "primary_data_loss_total";
/// `primary_data_loss_unacknowledged`
pub const PRIMARY_DATA_LOSS_UNACKNOWLEDGED: &str = "primary_data_loss_unacknowledged";
/// `session_guarantee_violations_total`
pub const SESSION_VIOLATIONS: &str = "session_guarantee_violations_total";
/// `session_ryw_fallbacks_total`
pub const SESSION_RYW_FALLBACKS: &str = "session_ryw_fallbacks_total";
/// `stale_reads_total`
pub const STALE_READS: &str = "stale_reads_total";
/// `failovers_seen_total`
pub const FAILOVERS_SEEN: &str = "failovers_seen_total";
/// `primary_node`
pub const PRIMARY_NODE: &str = "primary_node";
/// `redis_node_is_primary`
pub const NODE_IS_PRIMARY: &str = "redis_node_is_primary";
/// `sentinels_reachable`
pub const SENTINELS_REACHABLE: &str = "sentinels_reachable";

/// `http_connections_open`
pub const HTTP_CONNECTIONS_OPEN: &str = "http_connections_open";
/// `http_connections_rejected_total`
pub const HTTP_CONNECTIONS_REJECTED: &str = "http_connections_rejected_total";
/// `http_connection_timeouts_total`
pub const HTTP_CONNECTION_TIMEOUTS: &str = "http_connection_timeouts_total";
/// `rate_limited_total`
pub const RATE_LIMITED: &str = "rate_limited_total";

/// Every metric name this module defines, in the order of the table above.
pub const ALL_NAMES: &[&str] = &[
    REQUESTS_TOTAL,
    REQUEST_LATENCY,
    BREAKER_STATE,
    BREAKER_TRANSITIONS,
    DATA_STALENESS,
    DB_CONNECTION_FAILURES,
    WRITE_OUTCOMES,
    CAS_OUTCOMES,
    REPLICATION_LAG,
    REPLICATION_LINK_UP,
    AP_QUEUE_DEPTH,
    AP_QUEUE_REPLAYED,
    AP_QUEUE_FILE_CORRUPT,
    PRIMARY_DATA_LOSS,
    PRIMARY_DATA_LOSS_UNACKNOWLEDGED,
    SESSION_VIOLATIONS,
    SESSION_RYW_FALLBACKS,
    STALE_READS,
    FAILOVERS_SEEN,
    PRIMARY_NODE,
    NODE_IS_PRIMARY,
    SENTINELS_REACHABLE,
    HTTP_CONNECTIONS_OPEN,
    HTTP_CONNECTIONS_REJECTED,
    HTTP_CONNECTION_TIMEOUTS,
    RATE_LIMITED,
];

/// Latency buckets, in seconds: sub-millisecond resolution for fail-fast answers up to the
/// network timeouts a partition produces.
const LATENCY_BUCKETS: &[f64] = &[
    0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The metrics of one app instance and the registry that owns them.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    mode: Mode,
    /// `app_requests_total{mode,operation,status}`
    pub requests: IntCounterVec,
    /// `app_request_latency_seconds{mode,operation}`
    pub latency: HistogramVec,
    /// `circuit_breaker_state{mode,node}`
    pub breaker_state: IntGaugeVec,
    /// `circuit_breaker_transitions_total{mode,node,to}`
    pub breaker_transitions: IntCounterVec,
    /// `data_staleness_ms{mode,node}`
    pub staleness: GaugeVec,
    /// `db_connection_failures_total{mode,node}`
    pub db_failures: IntCounterVec,
    /// `write_outcomes_total{mode,outcome}`
    pub write_outcomes: IntCounterVec,
    /// `cas_outcomes_total{mode,outcome}`
    pub cas_outcomes: IntCounterVec,
    /// `replication_lag_bytes{mode}`
    pub replication_lag: IntGaugeVec,
    /// `replication_link_up{mode}`
    pub replication_link_up: IntGaugeVec,
    /// `ap_write_queue_depth{mode}`
    pub ap_queue_depth: IntGaugeVec,
    /// `ap_queue_replayed_total{mode}`
    pub ap_queue_replayed: IntCounterVec,
    /// `ap_queue_file_corrupt_total{mode}`
    pub ap_queue_file_corrupt: IntCounterVec,
    /// `primary_data_loss_total{mode}`
    pub primary_data_loss: IntCounterVec,
    /// `primary_data_loss_unacknowledged{mode}`
    pub primary_data_loss_unacknowledged: IntGaugeVec,
    /// `session_guarantee_violations_total{mode}`
    pub session_violations: IntCounterVec,
    /// `session_ryw_fallbacks_total{mode}`
    pub session_ryw_fallbacks: IntCounterVec,
    /// `stale_reads_total{mode,node}`
    pub stale_reads: IntCounterVec,
    /// `failovers_seen_total{mode}`
    pub failovers_seen: IntCounterVec,
    /// `primary_node{mode,node}`
    pub primary_node: IntGaugeVec,
    /// `redis_node_is_primary{mode,node}`
    pub node_is_primary: IntGaugeVec,
    /// `sentinels_reachable{mode}`
    pub sentinels_reachable: IntGaugeVec,
    /// The HTTP server's own metrics.
    pub server: Arc<ServerMetrics>,
}

/// The HTTP server's metrics (connections, timeouts, the rate limit), behind one `Arc` so the
/// handles every part of the app clones stay small.
#[derive(Debug)]
pub struct ServerMetrics {
    /// `http_connections_open{mode,slot}`
    pub connections_open: IntGaugeVec,
    /// `http_connections_rejected_total{mode,reason}`
    pub connections_rejected: IntCounterVec,
    /// `http_connection_timeouts_total{mode,phase}`
    pub connection_timeouts: IntCounterVec,
    /// `rate_limited_total{mode}`
    pub rate_limited: IntCounterVec,
}

impl Metrics {
    /// Creates and registers every metric for an app running `mode`.
    pub fn new(mode: Mode) -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(metric.clone()))?;
                Ok(metric)
            };
        let gauge =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec, prometheus::Error> {
                let metric = IntGaugeVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(metric.clone()))?;
                Ok(metric)
            };
        let requests = counter(
            REQUESTS_TOTAL,
            "HTTP requests answered, by operation and status",
            &["mode", "operation", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(REQUEST_LATENCY, "HTTP request latency in seconds")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["mode", "operation"],
        )?;
        registry.register(Box::new(latency.clone()))?;
        let breaker_state = gauge(
            BREAKER_STATE,
            "Circuit breaker state: 0 closed, 1 half-open, 2 open",
            &["mode", "node"],
        )?;
        let breaker_transitions = counter(
            BREAKER_TRANSITIONS,
            "Circuit breaker state changes, by the state entered",
            &["mode", "node", "to"],
        )?;
        let staleness = GaugeVec::new(
            Opts::new(
                DATA_STALENESS,
                "Milliseconds since the newest heartbeat seen on the node",
            ),
            &["mode", "node"],
        )?;
        registry.register(Box::new(staleness.clone()))?;
        let db_failures = counter(
            DB_CONNECTION_FAILURES,
            "Redis calls that timed out, lost or could not get a connection",
            &["mode", "node"],
        )?;
        let write_outcomes = counter(
            WRITE_OUTCOMES,
            "Writes by outcome (ok, indeterminate, failed, queued, rejected, drained, superseded, lost_on_shutdown)",
            &["mode", "outcome"],
        )?;
        let cas_outcomes = counter(
            CAS_OUTCOMES,
            "Compare-and-set requests by outcome (ok, mismatch, failed, indeterminate)",
            &["mode", "outcome"],
        )?;
        let replication_lag = gauge(
            REPLICATION_LAG,
            "Primary replication offset minus the replica's, in bytes",
            &["mode"],
        )?;
        let replication_link_up = gauge(
            REPLICATION_LINK_UP,
            "1 when the replica reports master_link_status:up",
            &["mode"],
        )?;
        let ap_queue_depth = gauge(
            AP_QUEUE_DEPTH,
            "Writes waiting in the AP write-behind queue",
            &["mode"],
        )?;
        let ap_queue_replayed = counter(
            AP_QUEUE_REPLAYED,
            "Queued writes read back from AP_QUEUE_FILE at start (then drained like any queued write)",
            &["mode"],
        )?;
        let ap_queue_file_corrupt = counter(
            AP_QUEUE_FILE_CORRUPT,
            "Bad tails (cut short or failing their checksum) cut from AP_QUEUE_FILE at start",
            &["mode"],
        )?;
        let primary_data_loss = counter(
            PRIMARY_DATA_LOSS,
            "Times the believed primary's version counter went back (records lost: PRIMARY_DATA_LOSS)",
            &["mode"],
        )?;
        let primary_data_loss_unacknowledged = gauge(
            PRIMARY_DATA_LOSS_UNACKNOWLEDGED,
            "1 while a primary data loss waits for POST /admin/ack-data-loss (/ready is 503 meanwhile)",
            &["mode"],
        )?;
        let session_violations = counter(
            SESSION_VIOLATIONS,
            "Reads answered without the session's read-your-writes guarantee",
            &["mode"],
        )?;
        let session_ryw_fallbacks = counter(
            SESSION_RYW_FALLBACKS,
            "AP session reads sent to g1 because g2 had not processed the session's offset",
            &["mode"],
        )?;
        let stale_reads = counter(
            STALE_READS,
            "Reads served with stale: true (staleness above MAX_STALENESS_MS)",
            &["mode", "node"],
        )?;
        let connections_open = gauge(
            HTTP_CONNECTIONS_OPEN,
            "HTTP connections open, on a regular slot or on one reserved for the status endpoints",
            &["mode", "slot"],
        )?;
        let connections_rejected = counter(
            HTTP_CONNECTIONS_REJECTED,
            "Connections refused at MAX_CONNECTIONS (limit: answered 503; overload: closed unanswered)",
            &["mode", "reason"],
        )?;
        let connection_timeouts = counter(
            HTTP_CONNECTION_TIMEOUTS,
            "Connections closed by a timeout (header read, idle keep-alive, TLS handshake)",
            &["mode", "phase"],
        )?;
        let rate_limited = counter(
            RATE_LIMITED,
            "Requests refused with 429 by the per-address rate limit",
            &["mode"],
        )?;

        let failovers_seen = counter(
            FAILOVERS_SEEN,
            "Switches of the believed primary this instance made after the sentinels reported a failover",
            &["mode"],
        )?;
        let primary_node = gauge(
            PRIMARY_NODE,
            "1 for the node this instance believes is the primary, 0 for the other",
            &["mode", "node"],
        )?;
        let node_is_primary = gauge(
            NODE_IS_PRIMARY,
            "1 when the node says it is a primary (INFO replication role:master); 0 for a replica or a node that did not answer",
            &["mode", "node"],
        )?;
        let sentinels_reachable = gauge(
            SENTINELS_REACHABLE,
            "1 when the last poll reached a sentinel, 0 when none answered (only with SENTINEL_URLS)",
            &["mode"],
        )?;

        let metrics = Metrics {
            registry,
            mode,
            requests,
            latency,
            breaker_state,
            breaker_transitions,
            staleness,
            db_failures,
            write_outcomes,
            cas_outcomes,
            replication_lag,
            replication_link_up,
            ap_queue_depth,
            ap_queue_replayed,
            ap_queue_file_corrupt,
            primary_data_loss,
            primary_data_loss_unacknowledged,
            session_violations,
            session_ryw_fallbacks,
            stale_reads,
            failovers_seen,
            primary_node,
            node_is_primary,
            sentinels_reachable,
            server: Arc::new(ServerMetrics {
                connections_open,
                connections_rejected,
                connection_timeouts,
                rate_limited,
            }),
        };
        metrics.touch_defaults();
        Ok(metrics)
    }

    /// Creates the series every dashboard expects, so they are on `/metrics` before the first
    /// event (a counter that never moved is still a zero, not an absence).
    fn touch_defaults(&self) {
        let m = self.mode.as_str();
        self.replication_lag.with_label_values(&[m]).set(0);
        self.replication_link_up.with_label_values(&[m]).set(0);
        self.ap_queue_depth.with_label_values(&[m]).set(0);
        self.ap_queue_replayed.with_label_values(&[m]);
        self.ap_queue_file_corrupt.with_label_values(&[m]);
        self.primary_data_loss.with_label_values(&[m]);
        self.primary_data_loss_unacknowledged
            .with_label_values(&[m])
            .set(0);
        self.session_violations.with_label_values(&[m]);
        self.session_ryw_fallbacks.with_label_values(&[m]);
        self.failovers_seen.with_label_values(&[m]);
        for node in ["g1", "g2"] {
            self.db_failures.with_label_values(&[m, node]);
            self.stale_reads.with_label_values(&[m, node]);
            self.node_is_primary.with_label_values(&[m, node]).set(0);
        }
        // g1 is the primary until the sentinels say otherwise.
        self.believe_primary(NodeId::G1);
        // The request series the dashboard and the alerts rate(), and each outcome this mode
        // can produce, at zero (tests/ops_live.rs checks every name is there before use).
        let server = &self.server;
        for slot in ["regular", "reserved"] {
            server.connections_open.with_label_values(&[m, slot]).set(0);
        }
        for reason in ["limit", "overload"] {
            server.connections_rejected.with_label_values(&[m, reason]);
        }
        for phase in ["header", "idle", "tls_handshake"] {
            server.connection_timeouts.with_label_values(&[m, phase]);
        }
        server.rate_limited.with_label_values(&[m]);
        for operation in ["read", "write"] {
            self.requests.with_label_values(&[m, operation, "200"]);
            self.latency.with_label_values(&[m, operation]);
        }
        let outcomes: &[&str] = match self.mode {
            Mode::Cp => &["ok", "indeterminate", "failed"],
            Mode::Ap => &[
                "ok",
                "failed",
                "queued",
                "rejected",
                "drained",
                "superseded",
                "lost_on_shutdown",
            ],
        };
        for outcome in outcomes {
            self.write_outcomes.with_label_values(&[m, outcome]);
        }
        for outcome in ["ok", "mismatch", "failed", "indeterminate"] {
            self.cas_outcomes.with_label_values(&[m, outcome]);
        }
    }

    /// The mode label value.
    pub fn mode(&self) -> &'static str {
        self.mode.as_str()
    }

    /// Counts one write outcome.
    pub fn write_outcome(&self, outcome: &str) {
        self.write_outcomes
            .with_label_values(&[self.mode(), outcome])
            .inc();
    }

    /// Counts one compare-and-set by outcome.
    pub fn cas_outcome(&self, outcome: &str) {
        self.cas_outcomes
            .with_label_values(&[self.mode(), outcome])
            .inc();
    }

    /// Sets the measured staleness of a node.
    pub fn set_staleness(&self, node: &str, ms: u64) {
        self.staleness
            .with_label_values(&[self.mode(), node])
            .set(ms as f64);
    }

    /// Sets `primary_node`: 1 for `primary`, 0 for the other node.
    pub fn believe_primary(&self, primary: NodeId) {
        for node in NodeId::BOTH {
            self.primary_node
                .with_label_values(&[self.mode(), node.as_str()])
                .set(i64::from(node == primary));
        }
    }

    /// Counts one switch of the believed primary.
    pub fn failover_seen(&self) {
        self.failovers_seen.with_label_values(&[self.mode()]).inc();
    }

    /// Sets `sentinels_reachable`.
    pub fn set_sentinels_reachable(&self, reachable: bool) {
        self.sentinels_reachable
            .with_label_values(&[self.mode()])
            .set(i64::from(reachable));
    }

    /// Sets `redis_node_is_primary` for `node` from what it said of itself (`None`: it did not
    /// answer, which counts as not claiming to be a primary).
    pub fn set_node_is_primary(&self, node: NodeId, says_primary: Option<bool>) {
        self.node_is_primary
            .with_label_values(&[self.mode(), node.as_str()])
            .set(i64::from(says_primary == Some(true)));
    }

    /// Counts a failed call to a node.
    pub fn db_failure(&self, node: &str) {
        self.db_failures
            .with_label_values(&[self.mode(), node])
            .inc();
    }

    /// Counts one request and its latency.
    pub fn observe_request(&self, operation: &str, status: u16, seconds: f64) {
        let mode = self.mode();
        self.requests
            .with_label_values(&[mode, operation, status_label(status)])
            .inc();
        self.latency
            .with_label_values(&[mode, operation])
            .observe(seconds);
    }

    /// Everything registered, in the Prometheus text format.
    pub fn encode(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// A status code as a label without allocating for the common ones.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        202 => "202",
        400 => "400",
        401 => "401",
        404 => "404",
        405 => "405",
        408 => "408",
        413 => "413",
        414 => "414",
        429 => "429",
        431 => "431",
        503 => "503",
        500 => "500",
        s if s < 300 => "2xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn every_name_is_exported_once_with_its_mode() -> TestResult {
        let metrics = Metrics::new(Mode::Ap)?;
        metrics.observe_request("read", 200, 0.001);
        metrics.write_outcome("ok");
        metrics.set_staleness("g2", 12);
        metrics
            .breaker_state
            .with_label_values(&["ap", "g1"])
            .set(0);
        metrics
            .breaker_transitions
            .with_label_values(&["ap", "g1", "open"])
            .inc();
        metrics.set_sentinels_reachable(true);
        let text = metrics.encode()?;
        for name in ALL_NAMES {
            let help = format!("# HELP {name} ");
            assert_eq!(text.matches(&help).count(), 1, "{name} in:\n{text}");
        }
        assert!(text.contains(r#"app_requests_total{mode="ap",operation="read",status="200"} 1"#));
        assert!(text.contains(r#"data_staleness_ms{mode="ap",node="g2"} 12"#));
        Ok(())
    }

    #[test]
    fn the_primary_series_start_at_g1_and_follow_a_switch() -> TestResult {
        let metrics = Metrics::new(Mode::Cp)?;
        let text = metrics.encode()?;
        for line in [
            r#"primary_node{mode="cp",node="g1"} 1"#,
            r#"primary_node{mode="cp",node="g2"} 0"#,
            r#"failovers_seen_total{mode="cp"} 0"#,
            r#"redis_node_is_primary{mode="cp",node="g1"} 0"#,
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        assert!(
            !text.contains("sentinels_reachable{"),
            "only with sentinels"
        );
        metrics.believe_primary(NodeId::G2);
        metrics.failover_seen();
        metrics.set_node_is_primary(NodeId::G2, Some(true));
        let text = metrics.encode()?;
        for line in [
            r#"primary_node{mode="cp",node="g1"} 0"#,
            r#"primary_node{mode="cp",node="g2"} 1"#,
            r#"failovers_seen_total{mode="cp"} 1"#,
            r#"redis_node_is_primary{mode="cp",node="g2"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        Ok(())
    }

    #[test]
    fn two_apps_in_one_process_have_their_own_registries() -> TestResult {
        let a = Metrics::new(Mode::Cp)?;
        let b = Metrics::new(Mode::Cp)?;
        a.write_outcome("ok");
        assert!(
            a.encode()?
                .contains(r#"write_outcomes_total{mode="cp",outcome="ok"} 1"#)
        );
        assert!(!b.encode()?.contains(r#"outcome="ok"} 1"#));
        Ok(())
    }
}
