//! Staleness tracking: how old is the newest data each node may lack?
//!
//! Data path: beside it. The [`heartbeat`] writes `now_ms` to this instance's heartbeat key on
//! the believed primary every `HEARTBEAT_INTERVAL_MS`, between two `ROLE`s in the same
//! pipeline, and right after each beat reads the other node's processed offset (`ROLE`).
//! [`Staleness`] turns those into each node's staleness: the primary's offsets against time
//! ([`timeline`]) say up to when the replica holds everything, and it keeps growing once reads
//! stop, so it shows a node that is unreachable or whose replication is cut, even when its link
//! still says `up`. The AP policy reads it to pick a node and to mark an answer `stale`;
//! `data_staleness_ms{node}` exports it. [`replication`] polls `INFO replication` for the lag
//! in bytes, the replica's link status and each node's own role.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::node::NodeId;
use crate::time::unix_ms;

pub mod heartbeat;
pub mod replication;
pub mod timeline;

pub use heartbeat::{Heartbeat, Wakeups, heartbeat_key};
pub use replication::{NodeRoles, ReplicationSnapshot, ReplicationStatus};
use timeline::OffsetTimeline;

/// A read is overdue this many heartbeat intervals after the last one: a beat late by a
/// scheduler stall on a loaded machine must not add its lateness to a caught-up replica.
pub const OVERDUE_AFTER_INTERVALS: u64 = 2;

/// A node is behind when its read shows it may lack a write taken more than this long before.
pub const BEHIND_AFTER_MS: u64 = 10;

/// What the heartbeat has seen on each node. Cloning shares it.
///
/// A node's staleness is the age of the oldest write the primary took that the node may lack:
/// at each read, the time of the read minus the newest time as of which the node is known to
/// hold every write ("holds as of"). For the primary that time is when its beat was sent (it
/// took the beat, so it holds everything). For the replica it comes from offsets: the newest
/// beat whose `ROLE`, sent before the beat's `SET`, answered an offset the replica's processed
/// offset has reached ([`OffsetTimeline::holds_as_of`]). The measure is an upper bound: the
/// replica may hold more than that sample proves, never less. A node caught up at its last read
/// keeps that measure until the next read is overdue; a node behind at its last read, and any
/// node once a read is overdue (it hangs, refuses, or its breaker is open), grows with the
/// clock, one millisecond per millisecond. The method and its error bound are in
/// docs/decisions.md.
#[derive(Debug, Clone)]
pub struct Staleness(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    started_ms: u64,
    interval_ms: u64,
    holds_as_of: [AtomicU64; 2],
    /// Whether the last read found the node lacking a write taken before the newest sample.
    behind: [AtomicBool; 2],
    last_read: [AtomicU64; 2],
    measured: [AtomicU64; 2],
    /// The believed primary's offsets against time.
    primary: Mutex<PrimarySamples>,
}

/// What the heartbeat learnt of one primary's replication stream.
#[derive(Debug, Default)]
struct PrimarySamples {
    /// The node the samples are of.
    of: Option<NodeId>,
    /// Its offsets against time.
    timeline: OffsetTimeline,
    /// Its offset just after the last beat it took: a replica below it lacks that beat.
    beat_offset: Option<u64>,
}

fn slot(node: NodeId) -> usize {
    node.index()
}

impl Staleness {
    /// Nothing seen yet: staleness counts from now until the first heartbeat. `interval` is the
    /// heartbeat period (a read [`OVERDUE_AFTER_INTERVALS`] of them late is overdue).
    pub fn new(interval: Duration) -> Staleness {
        Staleness::starting_at(unix_ms(), interval)
    }

    fn starting_at(started_ms: u64, interval: Duration) -> Staleness {
        let zero = || [AtomicU64::new(0), AtomicU64::new(0)];
        Staleness(Arc::new(Inner {
            started_ms,
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            holds_as_of: zero(),
            behind: [AtomicBool::new(false), AtomicBool::new(false)],
            last_read: zero(),
            measured: zero(),
            primary: Mutex::new(PrimarySamples::default()),
        }))
    }

    fn primary(&self) -> std::sync::MutexGuard<'_, PrimarySamples> {
        // A poisoned lock only means a panic elsewhere mid-update; the samples are intact.
        self.0.primary.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The samples of `primary`: a new primary starts them again.
    fn samples_of(&self, primary: NodeId) -> std::sync::MutexGuard<'_, PrimarySamples> {
        let mut guard = self.primary();
        if guard.of != Some(primary) {
            guard.timeline.clear();
            guard.beat_offset = None;
            guard.of = Some(primary);
        }
        guard
    }

    /// Records that a read of `node` at `read_ms` showed it holds every write taken before
    /// `holds_ms` (for the primary: its acknowledged beat, sent at `holds_ms`).
    pub fn observe(&self, node: NodeId, holds_ms: u64, read_ms: u64) {
        let i = slot(node);
        let newest = self.0.holds_as_of[i]
            .fetch_max(holds_ms, Ordering::Relaxed)
            .max(holds_ms);
        self.0.measured[i].store(read_ms.saturating_sub(newest), Ordering::Relaxed);
        self.0.last_read[i].fetch_max(read_ms, Ordering::Relaxed);
    }

    /// Records the primary's offset `offset` from a `ROLE` sent to `primary` at `sent_ms`
    /// (before the beat's write). A new primary starts a new timeline.
    pub fn record_primary_offset(&self, primary: NodeId, sent_ms: u64, offset: u64) {
        self.samples_of(primary).timeline.record(sent_ms, offset);
    }

    /// Records a beat `primary` took, sent at `sent_ms`: its offset `before` it (a sample, as
    /// [`record_primary_offset`](Staleness::record_primary_offset)) and `after` it (what a
    /// replica must reach to hold the beat).
    pub fn record_beat(&self, primary: NodeId, sent_ms: u64, before: u64, after: u64) {
        let mut samples = self.samples_of(primary);
        samples.timeline.record(sent_ms, before);
        samples.beat_offset = Some(after);
    }

    /// Whether `replica`, whose processed offset is `offset`, lacks the last beat the primary
    /// took (false when no beat is known, or `replica` is the node the samples are of).
    pub fn lacks_last_beat(&self, replica: NodeId, offset: u64) -> bool {
        let samples = self.primary();
        samples.of != Some(replica) && samples.beat_offset.is_some_and(|beat| offset < beat)
    }

    /// Records that `replica`, read at `read_ms`, had processed the primary's stream up to
    /// `offset`. Returns the time as of which it is now known to hold every write, if this read
    /// showed one (a replica behind every sample kept shows none, and its staleness grows).
    pub fn observe_replica(&self, replica: NodeId, offset: u64, read_ms: u64) -> Option<u64> {
        let (holds, newest) = {
            let samples = self.primary();
            if samples.of == Some(replica) {
                // The node read as the replica is the one the timeline is of: not comparable.
                (None, None)
            } else {
                (
                    samples.timeline.holds_as_of(offset),
                    samples.timeline.newest_sent(),
                )
            }
        };
        let i = slot(replica);
        // Behind: lacking a write taken more than [`BEHIND_AFTER_MS`] before this read. A write
        // still in flight for a round trip is not lag worth the faster beat.
        let behind = match (holds, newest) {
            (Some(h), Some(n)) => h < n && read_ms.saturating_sub(h) > BEHIND_AFTER_MS,
            _ => true,
        };
        self.0.behind[i].store(behind, Ordering::Relaxed);
        let known = self.0.holds_as_of[i].load(Ordering::Relaxed);
        let holds_ms = holds.unwrap_or(known);
        if holds_ms == 0 {
            // Never known to hold anything: it stays stale since the start, and overdue.
            return None;
        }
        self.observe(replica, holds_ms, read_ms);
        holds
    }

    /// Whether the last read of `node` found it lacking a write (or could not tell): the
    /// heartbeat then beats faster, and its staleness grows between reads.
    pub fn is_behind(&self, node: NodeId) -> bool {
        self.0.behind[slot(node)].load(Ordering::Relaxed)
    }

    /// The newest time as of which `node` is known to hold every write, if any.
    pub fn holds_as_of_ms(&self, node: NodeId) -> Option<u64> {
        match self.0.holds_as_of[slot(node)].load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms),
        }
    }

    /// How stale `node` is at `now_ms`: the last measure, plus the time since that read when it
    /// found the node behind, else the time by which the next read is overdue,
    /// [`OVERDUE_AFTER_INTERVALS`] intervals after the last one (before the first read: the
    /// time since start).
    pub fn staleness_at(&self, node: NodeId, now_ms: u64) -> u64 {
        let i = slot(node);
        let last_read = self.0.last_read[i].load(Ordering::Relaxed);
        if last_read == 0 {
            return now_ms.saturating_sub(self.0.started_ms);
        }
        let since_read = now_ms.saturating_sub(last_read);
        let overdue = if self.0.behind[i].load(Ordering::Relaxed) {
            // Behind at the last read, so still behind now as far as anyone knows: the oldest
            // write it lacked keeps ageing.
            since_read
        } else {
            since_read.saturating_sub(self.0.interval_ms.saturating_mul(OVERDUE_AFTER_INTERVALS))
        };
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
        assert_eq!(s.holds_as_of_ms(NodeId::G2), Some(1_300));
        assert_eq!(s.staleness_at(NodeId::G2, 1_340), 40);
        assert_eq!(
            s.staleness_at(NodeId::G2, 1_540),
            40,
            "stands until the next read is overdue"
        );
        assert_eq!(
            s.staleness_at(NodeId::G2, 2_540),
            1_040,
            "overdue: grows with the clock"
        );
        // An older beat read late does not go back in time.
        s.observe(NodeId::G2, 1_200, 1_450);
        assert_eq!(
            (
                s.holds_as_of_ms(NodeId::G2),
                s.staleness_at(NodeId::G2, 1_450)
            ),
            (Some(1_300), 150)
        );
        // g1: the acknowledged write is the read; it stays at zero while beats keep coming.
        s.observe(NodeId::G1, 2_000, 2_000);
        assert_eq!(s.staleness_at(NodeId::G1, 2_090), 0);
    }

    /// Beats every 10 ms from t = 1_000 (each beat's 100 bytes between two `ROLE`s), a
    /// replication delay of `delay` ms, and a replica read 1 ms after each beat:
    /// what it reports, next to the true age of the oldest beat the replica lacks (0 when it
    /// lacks none).
    fn simulate(delay: u64) -> Vec<(u64, u64)> {
        let s = Staleness::starting_at(0, Duration::from_millis(10));
        let beat = |k: u64| 1_000 + 10 * k;
        let mut seen = Vec::new();
        for k in 0..300u64 {
            s.record_beat(NodeId::G1, beat(k), 100 * k, 100 * (k + 1));
            let read = beat(k) + 1;
            // Beats j with beat(j) + delay <= read have reached the replica.
            let arrived = (0..=k).filter(|&j| beat(j) + delay <= read).count() as u64;
            s.observe_replica(NodeId::G2, 100 * arrived, read);
            let truth = if arrived > k { 0 } else { read - beat(arrived) };
            if k > delay / 10 + 2 {
                seen.push((s.staleness_at(NodeId::G2, read), truth));
            }
        }
        seen
    }

    #[test]
    fn a_caught_up_replica_reads_within_a_millisecond() {
        for (got, truth) in simulate(0) {
            assert_eq!((got, truth), (1, 0), "the replica holds every beat");
        }
    }

    #[test]
    fn a_delay_of_l_is_reported_as_the_oldest_missing_write_never_less() {
        for delay in [100, 400, 2_000] {
            for (got, truth) in simulate(delay) {
                assert!(
                    got >= truth,
                    "delay {delay}: reported {got} below the truth {truth}"
                );
                assert!(
                    got <= truth + 1,
                    "delay {delay}: reported {got}, truth {truth}"
                );
                assert!(
                    (delay - 10..=delay).contains(&got),
                    "delay {delay}: {got} not within one beat below it"
                );
            }
        }
    }

    #[test]
    fn a_replica_below_the_offset_after_a_beat_lacks_it() {
        let s = Staleness::starting_at(0, Duration::from_millis(100));
        assert!(!s.lacks_last_beat(NodeId::G2, 0), "no beat known yet");
        s.record_beat(NodeId::G1, 1_000, 500, 560);
        assert!(
            s.lacks_last_beat(NodeId::G2, 500),
            "holds what came before the beat, not the beat"
        );
        assert!(!s.lacks_last_beat(NodeId::G2, 560));
        // Read right after the beat, lacking only the beat in flight: it holds everything
        // taken before the beat was sent, and is not behind.
        assert_eq!(s.observe_replica(NodeId::G2, 500, 1_001), Some(1_000));
        assert!(!s.is_behind(NodeId::G2));
        assert!(
            !s.lacks_last_beat(NodeId::G1, 0),
            "g1 took the beat: it is not read as a replica of itself"
        );
        // A new primary: only its own beats count.
        s.record_beat(NodeId::G2, 2_000, 900, 960);
        assert!(!s.lacks_last_beat(NodeId::G2, 0));
        assert!(s.lacks_last_beat(NodeId::G1, 900));
        assert!(!s.lacks_last_beat(NodeId::G1, 960));
    }

    #[test]
    fn a_replica_behind_every_sample_or_read_as_the_primary_keeps_growing() {
        let s = Staleness::starting_at(0, Duration::from_millis(10));
        s.record_primary_offset(NodeId::G1, 1_000, 500);
        assert_eq!(s.observe_replica(NodeId::G2, 500, 1_001), Some(1_000));
        s.record_primary_offset(NodeId::G1, 1_010, 600);
        // The replica is stuck at 500 while samples move on and roll out: it still holds
        // everything as of 1_000, no more.
        assert_eq!(s.observe_replica(NodeId::G2, 500, 1_500), Some(1_000));
        assert_eq!(s.staleness_at(NodeId::G2, 1_500), 500);
        assert!(s.is_behind(NodeId::G2));
        assert_eq!(
            s.staleness_at(NodeId::G2, 1_505),
            505,
            "behind at its last read: it keeps ageing until the next"
        );
        // Caught up again: the measure stands between reads.
        s.record_primary_offset(NodeId::G1, 1_520, 600);
        assert_eq!(s.observe_replica(NodeId::G2, 600, 1_521), Some(1_520));
        assert!(!s.is_behind(NodeId::G2));
        assert_eq!(s.staleness_at(NodeId::G2, 1_531), 1);
        // A failover: g2 is the primary now, its timeline starts again.
        s.record_primary_offset(NodeId::G2, 2_000, 700);
        assert_eq!(
            s.observe_replica(NodeId::G2, 700, 2_001),
            None,
            "g2 is the primary"
        );
        assert_eq!(
            s.observe_replica(NodeId::G1, 100, 2_001),
            None,
            "g1 behind the new samples"
        );
        assert_eq!(
            s.staleness_at(NodeId::G1, 2_001),
            2_001,
            "never known to hold anything"
        );
    }
}
