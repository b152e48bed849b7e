//! The pt-heartbeat loops: write `now_ms` to the primary, read it back from the replica.
//!
//! Data path: beside it, feeding [`Staleness`]. Both loops ask [`Nodes`] at each beat which
//! node is the primary now, so after a failover the beat goes to the new primary and is read
//! back from the other node, the deposed one included: its staleness then grows from the last
//! beat it received. Two independent loops, so a hung replica (each read waiting the network
//! timeout) never slows the beat written to the primary, and the other way round. Both go
//! through the nodes' breakers like any call: their failures count, and while a breaker is
//! open they fail fast and staleness keeps growing. A successful `SET` on the primary is the
//! primary's observation (it then holds that beat); the value read from the replica is the
//! replica's, and in CP it is also evidence for the `replication` breaker: a beat written after
//! the breaker's last failure that reached the replica shows replication streaming again. A `SET` refused with `READONLY` (the node is a replica now) asks the primary
//! tracker to poll the sentinels at once.

use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior, interval, interval_at};

use super::Staleness;
use crate::metrics::Metrics;
use crate::node::{Breaker, NodeId};
use crate::primary::Nodes;
use crate::time::unix_ms;

/// The heartbeat key of an instance.
pub fn heartbeat_key(instance_id: &str) -> String {
    format!("caplab:heartbeat:{instance_id}")
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
    /// Writes a beat to the primary every interval, forever.
    pub async fn run_writer(self) {
        let mut ticks = interval(self.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = unix_ms();
            let primary = self.nodes.primary();
            match primary.set_heartbeat(&self.key, now).await {
                Ok(()) => self.staleness.observe(primary.id(), now, unix_ms()),
                Err(e) => self.nodes.noticed(&e),
            }
            self.export(primary.id());
        }
    }

    /// Reads the beat back from the replica every interval, forever, half an interval out of phase with
    /// the writer: read in step with the writes, it would always find the newest beat a whole
    /// interval old (the one being written has not replicated yet), so the measure would sit at
    /// the top of the `delay .. delay + interval` band instead of in its middle.
    pub async fn run_reader(self) {
        let mut ticks = interval_at(Instant::now() + self.interval / 2, self.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let replica = self.nodes.replica();
            if let Ok(Some(beat)) = replica.get_heartbeat(&self.key).await {
                self.staleness.observe(replica.id(), beat, unix_ms());
                // Data the primary took at `beat` is on the replica: replication works as of
                // then (the breaker ignores it unless that is after its last failure).
                if let Some(breaker) = &self.replication {
                    breaker.evidence(beat);
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
