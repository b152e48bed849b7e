//! The heartbeat loops: write `now_ms` to the primary between two reads of its offset, then
//! read the replica's processed offset.
//!
//! Data path: beside it, feeding [`Staleness`]. Both loops ask [`Nodes`] at each beat which
//! node is the primary now, so after a failover the beat goes to the new primary and the other
//! node, the deposed one included, is read as the replica: its staleness then grows from the
//! last time it was known to hold everything. The writer sends `ROLE`, the beat's `SET` and
//! `ROLE` again in one pipeline: the acknowledged beat is the primary's observation, the offset
//! the first `ROLE` answered goes into the offset timeline with the time the pipeline was sent,
//! and the second says what a replica must reach to hold the beat. It beats every
//! `HEARTBEAT_INTERVAL_MS`, and every [`BEHIND_INTERVAL`] while the last read found the replica
//! behind (the beats are then what keeps the measure within that of a steady delay); a read
//! that finds it behind cuts the writer's wait short. After each
//! beat it wakes the reader, which asks the replica for its processed offset (`ROLE`) and
//! compares it with the timeline; reading right after the beat is what makes a caught-up
//! replica read within a few round trips instead of within an interval. A replica that lacked
//! the beat is read again every [`BEHIND_INTERVAL`], each time after a fresh `ROLE` sample of
//! the primary, until it holds the beat or is behind: right after a beat a replica a whole
//! interval behind looks caught up (the beat before has just arrived), 10 ms later it is seen
//! lacking a beat that old. A caught-up replica costs one pipeline to the primary and one
//! `ROLE` to the replica per beat. Two loops,
//! so a hung replica (each read waiting the network timeout) never slows the beat written to
//! the primary: wake-ups that come while a read is out fold into one. Both go through the
//! nodes' breakers like any call: their failures count, and while a breaker is open they fail
//! fast and staleness keeps growing. A `SET` refused with `READONLY` (the node is a replica now)
//! asks the primary tracker to poll the sentinels at once.
//!
//! In CP a replica read is also evidence for the `replication` breaker: a replica that holds
//! every write taken before a time after the breaker's last failure shows replication
//! streaming again.

use std::time::Duration;

use std::sync::Arc;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::Staleness;
use crate::metrics::Metrics;
use crate::node::{Breaker, NodeId};
use crate::primary::Nodes;
use crate::time::unix_ms;

/// The heartbeat's period while the replica is behind. A steady replication delay L reads
/// between L minus this and L, because the heartbeat is the write that keeps the replica's
/// oldest missing write young; at rest the longer `HEARTBEAT_INTERVAL_MS` costs less.
pub const BEHIND_INTERVAL: Duration = Duration::from_millis(10);

/// The heartbeat key of an instance.
pub fn heartbeat_key(instance_id: &str) -> String {
    format!("caplab:heartbeat:{instance_id}")
}

/// How the two loops wake each other.
#[derive(Debug, Default)]
pub struct Wakeups {
    /// The writer beat (or failed to): the reader reads.
    beaten: Notify,
    /// The reader found the replica behind: a writer waiting out a long period beats now.
    behind: Notify,
}

/// One instance's heartbeat over its two nodes.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// This instance's key.
    pub key: String,
    /// Beat period.
    pub interval: Duration,
    /// The nodes: the believed primary is written to, the other read from.
    pub nodes: Nodes,
    /// Where observations go.
    pub staleness: Staleness,
    /// Where `data_staleness_ms` goes.
    pub metrics: Metrics,
    /// CP's `replication` breaker: a beat that reached the replica is evidence for it.
    pub replication: Option<Breaker>,
}

impl Heartbeat {
    /// Writes a beat to the primary every interval (every [`BEHIND_INTERVAL`] while the replica
    /// is behind, from the read that finds it so), forever, waking the reader after each.
    pub async fn run_writer(self, wakeups: Arc<Wakeups>) {
        let mut next = Instant::now();
        loop {
            let sent = unix_ms();
            let primary = self.nodes.primary();
            match primary.set_heartbeat(&self.key, sent).await {
                Ok(beat) => {
                    self.staleness
                        .record_beat(primary.id(), sent, beat.before, beat.after);
                    self.staleness.observe(primary.id(), sent, unix_ms());
                }
                Err(e) => self.nodes.noticed(&e),
            }
            self.export(primary.id());
            wakeups.beaten.notify_one();
            // Listening before looking: a read that finds the replica behind after the look
            // wakes this wait.
            let speed_up = wakeups.behind.notified();
            tokio::pin!(speed_up);
            speed_up.as_mut().enable();
            let behind = self.staleness.is_behind(primary.id().other());
            let period = if behind {
                self.interval.min(BEHIND_INTERVAL)
            } else {
                self.interval
            };
            // The next beat one period after this one was due, or now if that has passed (a
            // slow beat is not followed by a burst).
            next = (next + period).max(Instant::now());
            if behind {
                tokio::time::sleep_until(next).await;
            } else if tokio::time::timeout_at(next, speed_up).await.is_ok() {
                // Found behind since this beat: the fast rate starts now, not an interval later
                // (a delay shorter than the interval would otherwise be over, and the replica
                // caught up again, before the next beat looked).
                next = Instant::now();
            }
        }
    }

    /// Reads the replica's processed offset after each beat, forever; every [`BEHIND_INTERVAL`]
    /// while it lacks the last beat or is behind, and at least every interval and a half
    /// should the beats stall.
    pub async fn run_reader(self, wakeups: Arc<Wakeups>) {
        // Whether the last read found the replica lacking the last beat.
        let mut lacked_beat = false;
        loop {
            // Behind at the last read: read again within the short period even before the
            // writer has switched to it, so a brief lag does not age for a whole interval.
            let behind = self.staleness.is_behind(self.nodes.replica().id());
            // Lacking the last beat: read again within the short period until it holds it or is
            // behind. Right after a beat a replica a whole interval behind looks caught up (the
            // beat before has just arrived); a read 10 ms later sees it lacking a beat that old.
            // A caught-up replica, which holds the beat as soon as it is read, is read once per
            // beat.
            let wait = if behind || lacked_beat {
                self.interval.min(BEHIND_INTERVAL)
            } else {
                self.interval + self.interval / 2
            };
            let after_beat = tokio::time::timeout(wait, wakeups.beaten.notified())
                .await
                .is_ok();
            let (primary, replica) = (self.nodes.primary(), self.nodes.replica());
            if !after_beat {
                // No beat since the last read: a fresh sample of the primary's offset first. It
                // counts the last beat, so a replica that lacks beats shows it even when the
                // beats are as far apart as the delay (compared only with the offset before the
                // beat, a 100 ms delay at a 100 ms period looks caught up: nothing older is
                // missing). Right after a beat the writer's sample is as fresh.
                let sent = unix_ms();
                if let Ok(role) = primary.role().await
                    && role.primary
                {
                    self.staleness
                        .record_primary_offset(primary.id(), sent, role.offset);
                }
            }
            lacked_beat = false;
            if let Ok(role) = replica.role().await {
                let read = unix_ms();
                // A node that says it is a primary is not replicating from the believed one: it
                // shows nothing, and its staleness grows.
                let holds = if role.primary {
                    None
                } else {
                    lacked_beat = self.staleness.lacks_last_beat(replica.id(), role.offset);
                    self.staleness
                        .observe_replica(replica.id(), role.offset, read)
                };
                if self.staleness.is_behind(replica.id()) {
                    wakeups.behind.notify_waiters();
                }
                if let (Some(holds), Some(breaker)) = (holds, &self.replication) {
                    breaker.evidence(holds);
                }
            }
            self.export(replica.id());
        }
    }

    fn export(&self, node: NodeId) {
        self.metrics
            .set_staleness(node.as_str(), self.staleness.staleness_ms(node));
    }
}
