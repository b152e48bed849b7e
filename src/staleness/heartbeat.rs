//! The pt-heartbeat loops: write `now_ms` to g1, read it back from g2.
//!
//! Data path: beside it, feeding [`Staleness`]. Two independent loops, so a hung g2 (each read
//! waiting the network timeout) never slows the beat written to g1, and the other way round.
//! Both go through the nodes' breakers like any call: their failures count, and while a breaker
//! is open they fail fast and staleness keeps growing. A successful `SET` on g1 is g1's
//! observation (g1 then holds that beat); the value read from g2 is g2's.

use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior, interval, interval_at};

use super::Staleness;
use crate::metrics::Metrics;
use crate::node::{Node, NodeId};
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
    /// The primary, written to.
    pub g1: Node,
    /// The replica, read from.
    pub g2: Node,
    /// Where observations go.
    pub staleness: Staleness,
    /// Where `data_staleness_ms` goes.
    pub metrics: Metrics,
}

impl Heartbeat {
    /// Writes a beat to g1 every interval, forever.
    pub async fn run_writer(self) {
        let mut ticks = interval(self.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = unix_ms();
            if self.g1.set_heartbeat(&self.key, now).await.is_ok() {
                self.staleness.observe(NodeId::G1, now, unix_ms());
            }
            self.export(NodeId::G1);
        }
    }

    /// Reads the beat back from g2 every interval, forever, half an interval out of phase with
    /// the writer: read in step with the writes, it would always find the newest beat a whole
    /// interval old (the one being written has not replicated yet), so the measure would sit at
    /// the top of the `delay .. delay + interval` band instead of in its middle.
    pub async fn run_reader(self) {
        let mut ticks = interval_at(Instant::now() + self.interval / 2, self.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Ok(Some(beat)) = self.g2.get_heartbeat(&self.key).await {
                self.staleness.observe(NodeId::G2, beat, unix_ms());
            }
            self.export(NodeId::G2);
        }
    }

    fn export(&self, node: NodeId) {
        self.metrics
            .set_staleness(node.as_str(), self.staleness.staleness_ms(node));
    }
}
