//! Staleness tracking: how old is the newest data each node is known to hold?
//!
//! Data path: beside it. The [`heartbeat`] writes `now_ms` to this instance's heartbeat key on
//! g1 every `HEARTBEAT_INTERVAL_MS` and reads it back from g2 (pt-heartbeat style);
//! [`Staleness`] keeps the newest heartbeat seen on each node, and a node's staleness is now
//! minus that, so it keeps growing while the node is unreachable or its replication is cut,
//! even when its link still says `up`. The AP policy reads it to pick a node and to mark an
//! answer `stale`; `data_staleness_ms{node}` exports it. [`replication`] polls
//! `INFO replication` for the lag in bytes and g2's link status.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::node::NodeId;
use crate::time::unix_ms;

pub mod heartbeat;
pub mod replication;

pub use heartbeat::{Heartbeat, heartbeat_key};
pub use replication::{ReplicationSnapshot, ReplicationStatus};

/// The newest heartbeat seen on each node. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Staleness(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    started_ms: u64,
    newest: [AtomicU64; 2],
}

fn slot(node: NodeId) -> usize {
    match node {
        NodeId::G1 => 0,
        NodeId::G2 => 1,
    }
}

impl Staleness {
    /// Nothing seen yet: staleness counts from now until the first heartbeat.
    pub fn new() -> Staleness {
        Staleness::starting_at(unix_ms())
    }

    fn starting_at(started_ms: u64) -> Staleness {
        Staleness(Arc::new(Inner {
            started_ms,
            newest: [AtomicU64::new(0), AtomicU64::new(0)],
        }))
    }

    /// Records that `node` holds the heartbeat written at `beat_ms` (older ones are ignored).
    pub fn observe(&self, node: NodeId, beat_ms: u64) {
        self.0.newest[slot(node)].fetch_max(beat_ms, Ordering::Relaxed);
    }

    /// The newest heartbeat seen on `node`, if any.
    pub fn newest_ms(&self, node: NodeId) -> Option<u64> {
        match self.0.newest[slot(node)].load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms),
        }
    }

    /// How stale `node` is at `now_ms`: now minus the newest heartbeat seen there (or minus the
    /// start, before the first one).
    pub fn staleness_at(&self, node: NodeId, now_ms: u64) -> u64 {
        let since = self.newest_ms(node).unwrap_or(self.0.started_ms);
        now_ms.saturating_sub(since)
    }

    /// How stale `node` is now.
    pub fn staleness_ms(&self, node: NodeId) -> u64 {
        self.staleness_at(node, unix_ms())
    }
}

impl Default for Staleness {
    fn default() -> Self {
        Staleness::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness_is_now_minus_the_newest_beat_and_keeps_growing() {
        let s = Staleness::starting_at(1_000);
        assert_eq!(
            s.staleness_at(NodeId::G2, 1_250),
            250,
            "counts from start before any beat"
        );
        s.observe(NodeId::G2, 1_300);
        s.observe(NodeId::G2, 1_200); // an older beat read late does not go back in time
        assert_eq!(s.newest_ms(NodeId::G2), Some(1_300));
        assert_eq!(s.staleness_at(NodeId::G2, 1_340), 40);
        assert_eq!(
            s.staleness_at(NodeId::G2, 9_300),
            8_000,
            "unreachable: grows"
        );
        assert_eq!(s.newest_ms(NodeId::G1), None);
        assert_eq!(
            s.staleness_at(NodeId::G2, 1_000),
            0,
            "clock before beat: zero, not negative"
        );
    }
}
