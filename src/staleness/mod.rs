//! Staleness tracking: how old is the newest data each node is known to hold?
//!
//! Data path: beside it. The [`heartbeat`] writes `now_ms` to this instance's heartbeat key on
//! the believed primary every `HEARTBEAT_INTERVAL_MS` and reads it back from the other node
//! (pt-heartbeat style);
//! [`Staleness`] measures each node's delay at each read and keeps it growing once reads stop,
//! so it shows a node that is unreachable or whose replication is cut, even when its link
//! still says `up`. The AP policy reads it to pick a node and to mark an
//! answer `stale`; `data_staleness_ms{node}` exports it. [`replication`] polls
//! `INFO replication` for the lag in bytes, the replica's link status and each node's own role.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::node::NodeId;
use crate::time::unix_ms;

pub mod heartbeat;
pub mod replication;

pub use heartbeat::{Heartbeat, heartbeat_key};
pub use replication::{NodeRoles, ReplicationSnapshot, ReplicationStatus};

/// What the heartbeat has seen on each node. Cloning shares it.
///
/// As pt-heartbeat does, a node's staleness is measured when its heartbeat is read: the time
/// of the read minus the newest beat it returned. Between reads that measure stands, so it
/// sits within one interval of the true replication delay (a beat is at most one interval
/// old when written over). Once a read is overdue (the node hangs, refuses, or its breaker is
/// open) the staleness grows with the clock, one millisecond per millisecond, so an
/// unreachable node's value keeps growing.
#[derive(Debug, Clone)]
pub struct Staleness(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    started_ms: u64,
    interval_ms: u64,
    newest_beat: [AtomicU64; 2],
    last_read: [AtomicU64; 2],
    measured: [AtomicU64; 2],
}

fn slot(node: NodeId) -> usize {
    node.index()
}

impl Staleness {
    /// Nothing seen yet: staleness counts from now until the first heartbeat. `interval` is the
    /// heartbeat period (a read later than that is overdue).
    pub fn new(interval: Duration) -> Staleness {
        Staleness::starting_at(unix_ms(), interval)
    }

    fn starting_at(started_ms: u64, interval: Duration) -> Staleness {
        let zero = || [AtomicU64::new(0), AtomicU64::new(0)];
        Staleness(Arc::new(Inner {
            started_ms,
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            newest_beat: zero(),
            last_read: zero(),
            measured: zero(),
        }))
    }

    /// Records that a read of `node` at `read_ms` returned the beat written at `beat_ms`.
    pub fn observe(&self, node: NodeId, beat_ms: u64, read_ms: u64) {
        let i = slot(node);
        let newest = self.0.newest_beat[i]
            .fetch_max(beat_ms, Ordering::Relaxed)
            .max(beat_ms);
        self.0.measured[i].store(read_ms.saturating_sub(newest), Ordering::Relaxed);
        self.0.last_read[i].fetch_max(read_ms, Ordering::Relaxed);
    }

    /// The newest heartbeat seen on `node`, if any.
    pub fn newest_ms(&self, node: NodeId) -> Option<u64> {
        match self.0.newest_beat[slot(node)].load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms),
        }
    }

    /// How stale `node` is at `now_ms`: the last measure, plus the time by which the next read
    /// is overdue (before the first read: the time since start).
    pub fn staleness_at(&self, node: NodeId, now_ms: u64) -> u64 {
        let i = slot(node);
        let last_read = self.0.last_read[i].load(Ordering::Relaxed);
        if last_read == 0 {
            return now_ms.saturating_sub(self.0.started_ms);
        }
        let overdue = now_ms
            .saturating_sub(last_read)
            .saturating_sub(self.0.interval_ms);
        self.0.measured[i]
            .load(Ordering::Relaxed)
            .saturating_add(overdue)
    }

    /// How stale `node` is now.
    pub fn staleness_ms(&self, node: NodeId) -> u64 {
        self.staleness_at(node, unix_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness_is_the_measured_delay_and_grows_once_a_read_is_overdue() {
        let s = Staleness::starting_at(1_000, Duration::from_millis(100));
        assert_eq!(
            s.staleness_at(NodeId::G2, 1_250),
            250,
            "counts from start before any beat"
        );
        // A read at 1_340 returns the beat written at 1_300: 40 ms behind.
        s.observe(NodeId::G2, 1_300, 1_340);
        assert_eq!(s.newest_ms(NodeId::G2), Some(1_300));
        assert_eq!(s.staleness_at(NodeId::G2, 1_340), 40);
        assert_eq!(
            s.staleness_at(NodeId::G2, 1_440),
            40,
            "stands until the next read is due"
        );
        assert_eq!(
            s.staleness_at(NodeId::G2, 2_440),
            1_040,
            "overdue: grows with the clock"
        );
        // An older beat read late does not go back in time.
        s.observe(NodeId::G2, 1_200, 1_450);
        assert_eq!(
            (s.newest_ms(NodeId::G2), s.staleness_at(NodeId::G2, 1_450)),
            (Some(1_300), 150)
        );
        // g1: the acknowledged write is the read; it stays at zero while beats keep coming.
        s.observe(NodeId::G1, 2_000, 2_000);
        assert_eq!(s.staleness_at(NodeId::G1, 2_090), 0);
    }

    #[test]
    fn a_delay_of_l_is_reported_within_one_interval() {
        // Replication delay L = 250 ms, beats every 100 ms, reads every 100 ms (offset 30 ms).
        let s = Staleness::starting_at(0, Duration::from_millis(100));
        for read in (1_030..3_000).step_by(100) {
            let newest_visible = ((read - 250) / 100) * 100;
            s.observe(NodeId::G2, newest_visible, read);
            for now in [read, read + 50, read + 99] {
                let got = s.staleness_at(NodeId::G2, now);
                assert!((250..=350).contains(&got), "at {now}: {got}");
            }
        }
    }
}
