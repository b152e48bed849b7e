//! Replication lag and link status, polled from `INFO replication` on both nodes.
//!
//! Data path: beside it. Every `REPLICATION_POLL_MS` the poller asks g1 for its
//! `master_repl_offset` and g2 for `slave_repl_offset` and `master_link_status`; lag in bytes
//! is their difference. Link status alone misses a silent partition (the replica says `up`
//! until `repl-timeout`), which is why staleness comes from the heartbeat; the lag and link
//! are shown beside it on `GET /replication` and as `replication_lag_bytes` and
//! `replication_link_up`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{MissedTickBehavior, interval};

use crate::lab::redis_node::info_field;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::time::unix_ms;

/// What the last poll saw. `None` where a node did not answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplicationSnapshot {
    /// g2's `master_link_status` (`up` or `down`), or `None` if g2 did not answer.
    pub link_status: Option<String>,
    /// g1's `master_repl_offset`.
    pub primary_offset: Option<u64>,
    /// g2's `slave_repl_offset`.
    pub replica_offset: Option<u64>,
    /// `primary_offset - replica_offset` when both answered in the same poll.
    pub lag_bytes: Option<u64>,
    /// g2's `master_last_io_seconds_ago`.
    pub last_io_seconds_ago: Option<i64>,
    /// When this snapshot was taken, Unix ms.
    pub polled_at_unix_ms: Option<u64>,
}

impl ReplicationSnapshot {
    /// Builds a snapshot from the two INFO texts (either may be missing).
    pub fn from_info(
        primary: Option<&str>,
        replica: Option<&str>,
        now_ms: u64,
    ) -> ReplicationSnapshot {
        let number = |info: Option<&str>, field: &str| {
            info.and_then(|t| info_field(t, field))
                .and_then(|v| v.parse::<u64>().ok())
        };
        let primary_offset = number(primary, "master_repl_offset");
        let replica_offset = number(replica, "slave_repl_offset");
        ReplicationSnapshot {
            link_status: replica
                .and_then(|t| info_field(t, "master_link_status"))
                .map(str::to_string),
            primary_offset,
            replica_offset,
            lag_bytes: primary_offset
                .zip(replica_offset)
                .map(|(p, r)| p.saturating_sub(r)),
            last_io_seconds_ago: replica
                .and_then(|t| info_field(t, "master_last_io_seconds_ago"))
                .and_then(|v| v.parse().ok()),
            polled_at_unix_ms: Some(now_ms),
        }
    }
}

/// The latest snapshot, shared between the poller and the HTTP handlers.
#[derive(Debug, Clone, Default)]
pub struct ReplicationStatus(Arc<Mutex<ReplicationSnapshot>>);

impl ReplicationStatus {
    /// The latest snapshot.
    pub fn snapshot(&self) -> ReplicationSnapshot {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn set(&self, snapshot: ReplicationSnapshot) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = snapshot;
        }
    }

    /// Polls both nodes every `period`, forever.
    pub async fn run_poller(self, g1: Node, g2: Node, metrics: Metrics, period: Duration) {
        let mut ticks = interval(period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let (primary, replica) = tokio::join!(g1.info_replication(), g2.info_replication());
            let snap = ReplicationSnapshot::from_info(
                primary.ok().as_deref(),
                replica.ok().as_deref(),
                unix_ms(),
            );
            let mode = metrics.mode();
            if let Some(lag) = snap.lag_bytes {
                metrics
                    .replication_lag
                    .with_label_values(&[mode])
                    .set(i64::try_from(lag).unwrap_or(i64::MAX));
            }
            let up = snap.link_status.as_deref() == Some("up");
            metrics
                .replication_link_up
                .with_label_values(&[mode])
                .set(i64::from(up));
            self.set(snap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_and_link_come_from_both_infos() {
        let g1 = "# Replication\r\nrole:master\r\nmaster_repl_offset:1500\r\n";
        let g2 = "role:slave\r\nmaster_link_status:up\r\nmaster_last_io_seconds_ago:0\r\nslave_repl_offset:1200\r\n";
        let s = ReplicationSnapshot::from_info(Some(g1), Some(g2), 7);
        assert_eq!(s.lag_bytes, Some(300));
        assert_eq!(s.link_status.as_deref(), Some("up"));
        assert_eq!(s.last_io_seconds_ago, Some(0));
        let s = ReplicationSnapshot::from_info(Some(g1), None, 7);
        assert_eq!(
            (s.lag_bytes, s.link_status, s.primary_offset),
            (None, None, Some(1500))
        );
    }
}
