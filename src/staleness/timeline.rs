//! The primary's replication offset against time: what a replica's offset says about how old
//! the newest data it lacks can be.
//!
//! Data path: beside it, inside [`super::Staleness`]. Each heartbeat asks the primary for
//! `ROLE` right before its `SET`, in one pipeline sent at `sent_ms`: the offset `O` it answers
//! counts every byte of every write the primary took before `sent_ms` (the `ROLE` ran after
//! them). So a node whose processed offset is at least `O` holds every write the primary took
//! before `sent_ms`. [`OffsetTimeline::holds_as_of`] finds the newest such sample for a
//! replica's offset: the replica is known to hold everything written before that time, and its
//! staleness is the time since then.
//!
//! Offsets only grow within one replication history; a later sample with a lower offset drops
//! every sample above it (a primary restarted empty, or simply a `ROLE` that ran before the
//! last one's but was sent after it).

use std::collections::VecDeque;

/// Samples kept: at the default 10 ms heartbeat, the last 80 s or so. A replica further
/// behind than the oldest sample is known to hold nothing newer than what was last measured.
pub const SAMPLES_KEPT: usize = 8192;

/// `(sent_ms, offset)` samples of one primary, oldest first, offsets non-decreasing.
#[derive(Debug, Default)]
pub struct OffsetTimeline {
    samples: VecDeque<(u64, u64)>,
}

impl OffsetTimeline {
    /// Records that a `ROLE` sent to the primary at `sent_ms` answered `offset`. Samples come
    /// from two tasks, so they can arrive out of order; a sample no later and no lower than
    /// another says less than it and is dropped, which keeps both columns non-decreasing (and
    /// drops a whole old history when a lower offset arrives later: a new one began).
    pub fn record(&mut self, sent_ms: u64, offset: u64) {
        if let Some(&(last_ms, last_offset)) = self.samples.back() {
            if sent_ms < last_ms {
                // Overtaken by a later sample; keeping it would need an insertion for a sample
                // whose only use is a replica between the two offsets. Dropping it can only
                // make a measure older, never younger.
                return;
            }
            if offset < last_offset {
                while self.samples.back().is_some_and(|&(_, o)| o > offset) {
                    self.samples.pop_back();
                }
            }
        }
        if self.samples.len() == SAMPLES_KEPT {
            self.samples.pop_front();
        }
        self.samples.push_back((sent_ms, offset));
    }

    /// Forgets every sample (the primary changed).
    pub fn clear(&mut self) {
        self.samples.clear();
    }

    /// The `sent_ms` of the newest sample, if any.
    pub fn newest_sent(&self) -> Option<u64> {
        self.samples.back().map(|&(sent_ms, _)| sent_ms)
    }

    /// The newest time before which the primary had written nothing that a node whose processed
    /// offset is `offset` lacks: the `sent_ms` of the newest sample whose offset is at most
    /// `offset`. `None` when every sample is above it (or there is none).
    pub fn holds_as_of(&self, offset: u64) -> Option<u64> {
        // Offsets are non-decreasing: the samples at or below `offset` are a prefix.
        let at_or_below = self.samples.partition_point(|&(_, o)| o <= offset);
        at_or_below
            .checked_sub(1)
            .and_then(|i| self.samples.get(i))
            .map(|&(sent_ms, _)| sent_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_holds_everything_written_before_the_newest_sample_it_has_reached() {
        let mut t = OffsetTimeline::default();
        assert_eq!(t.holds_as_of(1_000), None, "no sample yet");
        // Beats every 10 ms, each adding 100 bytes after its ROLE.
        for i in 0..10u64 {
            t.record(1_000 + 10 * i, 5_000 + 100 * i);
        }
        assert_eq!(t.holds_as_of(4_999), None, "behind the oldest sample");
        assert_eq!(t.holds_as_of(5_000), Some(1_000));
        assert_eq!(t.holds_as_of(5_099), Some(1_000), "part of the next beat");
        assert_eq!(t.holds_as_of(5_450), Some(1_040));
        assert_eq!(t.holds_as_of(5_900), Some(1_090), "caught up with the last");
        assert_eq!(t.holds_as_of(u64::MAX), Some(1_090));
    }

    #[test]
    fn equal_offsets_give_the_newest_time() {
        // Nothing written between samples: a replica at that offset holds it all as of the last.
        let mut t = OffsetTimeline::default();
        t.record(1_000, 700);
        t.record(1_010, 700);
        t.record(1_020, 700);
        assert_eq!(t.holds_as_of(700), Some(1_020));
    }

    #[test]
    fn late_answers_are_dropped_and_a_lower_offset_drops_what_it_supersedes() {
        let mut t = OffsetTimeline::default();
        t.record(1_000, 900);
        t.record(1_010, 950);
        t.record(1_005, 960);
        assert_eq!(
            t.holds_as_of(960),
            Some(1_010),
            "the overtaken answer was dropped"
        );
        // A later sample with a lower offset (its ROLE ran before the last one's): the last
        // says less than it, the one before stays.
        t.record(1_012, 940);
        assert_eq!(t.holds_as_of(945), Some(1_012));
        assert_eq!(t.holds_as_of(939), Some(1_000));
        // A new history far below: only it is left.
        t.record(1_020, 10);
        assert_eq!(t.holds_as_of(950), Some(1_020));
        assert_eq!(t.holds_as_of(9), None);
    }

    #[test]
    fn the_oldest_samples_go_first() {
        let mut t = OffsetTimeline::default();
        for i in 0..(SAMPLES_KEPT as u64 + 5) {
            t.record(i, i);
        }
        assert_eq!(t.holds_as_of(4), None);
        assert_eq!(t.holds_as_of(5), Some(5));
    }
}
