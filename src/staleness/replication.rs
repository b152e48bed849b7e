//! Replication lag, link status and each node's own role, polled from `INFO replication` on
//! both nodes.
//!
//! Data path: beside it. Every `REPLICATION_POLL_MS` the poller asks both nodes for `INFO
//! replication` and reads it by role, as this instance believes the roles are: the believed
//! primary's `master_repl_offset` and `connected_slaves`, the other node's `slave_repl_offset`
//! and `master_link_status`; lag in bytes is the primary's offset minus the replica's. Link
//! status alone misses a silent partition (the replica says `up` until `repl-timeout`), which
//! is why staleness comes from the heartbeat; the lag and link are shown beside it on `GET
//! /replication` and as `replication_lag_bytes` and `replication_link_up`.
//!
//! Each node's `role` is what the node says of itself, whatever the belief:
//! `redis_node_is_primary{node}` is 1 for a node that says `master`, so two nodes saying it at
//! once (a split brain) is visible. And when the believed primary regains a replica (a poll
//! sees `connected_slaves` above zero after one that did not), that is evidence for CP's
//! `replication` breaker ([`Breaker::evidence`]): if open, it turns half-open at once and the
//! next write or fenced read is its trial, so its backoff never keeps CP refusing writes the
//! pair can take again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::{MissedTickBehavior, interval};

use crate::lab::redis_node::info_field;
use crate::metrics::Metrics;
use crate::node::{Breaker, BreakerState, NodeId};
use crate::primary::Nodes;
use crate::time::unix_ms;

/// What each node says it is: `primary`, `replica`, or `None` when it did not answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeRoles {
    /// g1's own role.
    pub g1: Option<&'static str>,
    /// g2's own role.
    pub g2: Option<&'static str>,
}

impl NodeRoles {
    /// One node's role.
    pub fn of(&self, node: NodeId) -> Option<&'static str> {
        match node {
            NodeId::G1 => self.g1,
            NodeId::G2 => self.g2,
        }
    }
}

/// What the last poll saw. `None` where a node did not answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplicationSnapshot {
    /// The node believed to be the primary when the poll was made.
    pub primary: Option<&'static str>,
    /// What each node said of its own role.
    pub roles: NodeRoles,
    /// The replica's `master_link_status` (`up` or `down`), or `None` if it did not answer as a
    /// replica.
    pub link_status: Option<String>,
    /// The primary's `master_repl_offset`.
    pub primary_offset: Option<u64>,
    /// The primary's `connected_slaves`.
    pub primary_replicas: Option<u64>,
    /// The replica's `slave_repl_offset`.
    pub replica_offset: Option<u64>,
    /// `primary_offset - replica_offset` when both answered in the same poll.
    pub lag_bytes: Option<u64>,
    /// The replica's `master_last_io_seconds_ago`.
    pub last_io_seconds_ago: Option<i64>,
    /// When this snapshot was taken, Unix ms.
    pub polled_at_unix_ms: Option<u64>,
}

fn role_of(info: &str) -> Option<&'static str> {
    match info_field(info, "role") {
        Some("master") => Some("primary"),
        Some("slave") => Some("replica"),
        _ => None,
    }
}

impl ReplicationSnapshot {
    /// Builds a snapshot from both nodes' INFO texts (either may be missing), reading the
    /// `primary` node's as the primary's and the other's as the replica's.
    pub fn from_info(
        primary: NodeId,
        infos: [Option<&str>; 2],
        now_ms: u64,
    ) -> ReplicationSnapshot {
        let number = |info: Option<&str>, field: &str| {
            info.and_then(|t| info_field(t, field))
                .and_then(|v| v.parse::<u64>().ok())
        };
        let p = infos[primary.index()];
        let r = infos[primary.other().index()];
        let primary_offset = number(p, "master_repl_offset");
        let replica_offset = number(r, "slave_repl_offset");
        ReplicationSnapshot {
            primary: Some(primary.as_str()),
            roles: NodeRoles {
                g1: infos[0].and_then(role_of),
                g2: infos[1].and_then(role_of),
            },
            link_status: r
                .and_then(|t| info_field(t, "master_link_status"))
                .map(str::to_string),
            primary_offset,
            primary_replicas: number(p, "connected_slaves"),
            replica_offset,
            lag_bytes: primary_offset
                .zip(replica_offset)
                .map(|(p, r)| p.saturating_sub(r)),
            last_io_seconds_ago: r
                .and_then(|t| info_field(t, "master_last_io_seconds_ago"))
                .and_then(|v| v.parse().ok()),
            polled_at_unix_ms: Some(now_ms),
        }
    }
}

/// The latest snapshot, shared between the poller and the HTTP handlers.
#[derive(Debug, Clone, Default)]
pub struct ReplicationStatus(Arc<Mutex<ReplicationSnapshot>>);

/// The poller's memory between two polls: whether the believed primary had a replica.
#[derive(Debug, Default)]
struct Regained {
    primary: Option<NodeId>,
    had_replica: bool,
}

impl Regained {
    /// Whether this poll shows the believed primary with a replica where the last one did not.
    fn regained(&mut self, snap: &ReplicationSnapshot, primary: NodeId) -> bool {
        if self.primary != Some(primary) {
            self.primary = Some(primary);
            self.had_replica = false;
        }
        let has = snap.primary_replicas.is_some_and(|n| n >= 1);
        let regained = has && !self.had_replica;
        self.had_replica = has;
        regained
    }
}

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

    /// Polls both nodes every `period`, forever. `replication` is CP's breaker, told when
    /// the believed primary regains a replica.
    pub async fn run_poller(
        self,
        nodes: Nodes,
        metrics: Metrics,
        period: Duration,
        replication: Option<Breaker>,
    ) {
        let mut ticks = interval(period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut memory = Regained::default();
        loop {
            ticks.tick().await;
            let (g1, g2) =
                tokio::join!(nodes.g1().info_replication(), nodes.g2().info_replication());
            let (g1, g2) = (g1.ok(), g2.ok());
            let primary = nodes.belief().primary();
            let snap =
                ReplicationSnapshot::from_info(primary, [g1.as_deref(), g2.as_deref()], unix_ms());
            self.export(&snap, &metrics);
            if memory.regained(&snap, primary)
                && let Some(breaker) = &replication
                && breaker.state() == BreakerState::Open
            {
                tracing::info!(
                    mode = metrics.mode(),
                    primary = primary.as_str(),
                    "the primary has a replica again: the next replication call is a trial"
                );
                breaker.evidence(snap.polled_at_unix_ms.unwrap_or_else(unix_ms));
            }
            self.set(snap);
        }
    }

    fn export(&self, snap: &ReplicationSnapshot, metrics: &Metrics) {
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
        for node in NodeId::BOTH {
            let role = snap.roles.of(node);
            metrics.set_node_is_primary(node, role.map(|r| r == "primary"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str =
        "# Replication\r\nrole:master\r\nconnected_slaves:1\r\nmaster_repl_offset:1500\r\n";
    const SLAVE: &str = "role:slave\r\nmaster_link_status:up\r\nmaster_last_io_seconds_ago:0\r\nslave_repl_offset:1200\r\n";

    #[test]
    fn lag_and_link_come_from_both_infos_by_role() {
        let s = ReplicationSnapshot::from_info(NodeId::G1, [Some(MASTER), Some(SLAVE)], 7);
        assert_eq!(s.lag_bytes, Some(300));
        assert_eq!(s.link_status.as_deref(), Some("up"));
        assert_eq!(s.last_io_seconds_ago, Some(0));
        assert_eq!(s.primary_replicas, Some(1));
        assert_eq!(
            s.roles,
            NodeRoles {
                g1: Some("primary"),
                g2: Some("replica")
            }
        );
        let s = ReplicationSnapshot::from_info(NodeId::G1, [Some(MASTER), None], 7);
        assert_eq!(
            (s.lag_bytes, s.link_status, s.primary_offset),
            (None, None, Some(1500))
        );
        assert_eq!(s.roles.g2, None);
    }

    #[test]
    fn after_a_failover_g2_is_read_as_the_primary() {
        let s = ReplicationSnapshot::from_info(NodeId::G2, [Some(SLAVE), Some(MASTER)], 7);
        assert_eq!((s.primary, s.lag_bytes), (Some("g2"), Some(300)));
        assert_eq!(s.link_status.as_deref(), Some("up"));
        // Both saying primary (split brain): no replica offset, so no lag; both roles shown.
        let s = ReplicationSnapshot::from_info(NodeId::G2, [Some(MASTER), Some(MASTER)], 7);
        assert_eq!((s.lag_bytes, s.link_status), (None, None));
        assert_eq!((s.roles.g1, s.roles.g2), (Some("primary"), Some("primary")));
    }

    #[test]
    fn a_replica_is_regained_once_per_return_and_per_primary() {
        let mut memory = Regained::default();
        let with = |replicas| ReplicationSnapshot {
            primary_replicas: replicas,
            ..ReplicationSnapshot::default()
        };
        assert!(memory.regained(&with(Some(1)), NodeId::G1), "first sight");
        assert!(!memory.regained(&with(Some(1)), NodeId::G1), "still there");
        assert!(!memory.regained(&with(Some(0)), NodeId::G1), "lost");
        assert!(!memory.regained(&with(None), NodeId::G1), "no answer");
        assert!(memory.regained(&with(Some(1)), NodeId::G1), "back");
        assert!(
            !memory.regained(&with(Some(0)), NodeId::G2),
            "new primary alone"
        );
        assert!(
            memory.regained(&with(Some(1)), NodeId::G2),
            "its replica joined"
        );
    }
}
