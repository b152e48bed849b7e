//! AP: availability over consistency.
//!
//! Data path: second layer. A write goes to g1 without `WAIT` (the script and `ROLE` in one
//! pipeline) and answers `replicated: false`. If g1 cannot take it (unreachable, timed out,
//! breaker open) the write joins the bounded write-behind [`WriteQueue`] and answers 202; a full
//! queue answers 503. The drain applies queued writes when g1 is back, each only if no newer
//! write (by writer timestamp) landed meanwhile; superseded ones are counted, not silently
//! dropped. A write whose earlier attempt timed out but landed is recognised by its write id,
//! so a drain never applies a write twice.
//!
//! A read goes to g2 (the replica, "nearest") by default; to g1 when g2 fails or its breaker is
//! open, or first to g1 when g2's staleness exceeds `MAX_STALENESS_MS` and g1's breaker is not
//! open (bounded staleness). An answer staler than the bound is still served, with
//! `stale: true`: availability wins, and the answer says so.

use std::time::Duration;

use crate::config::Mode;
use crate::metrics::Metrics;
use crate::node::{BreakerState, Node, NodeError, NodeId, ScriptReply, WriteRequest};
use crate::session::SessionId;
use crate::staleness::Staleness;

use super::queue::WriteQueue;
use super::{ReadAnswer, ServiceError, Written, audit_write};

/// The AP policy.
#[derive(Debug)]
pub struct Ap {
    pub(super) g1: Node,
    pub(super) g2: Node,
    pub(super) queue: WriteQueue,
    staleness: Staleness,
    max_staleness: Duration,
    pub(super) metrics: Metrics,
}

/// What one pass of the drain did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Queued writes applied on g1.
    pub applied: usize,
    /// Queued writes not applied because a newer write held the key.
    pub superseded: usize,
    /// Queued writes g1 refused with an error reply (dropped and logged).
    pub refused: usize,
    /// Writes still queued after the pass.
    pub remaining: usize,
}

impl Ap {
    /// AP over both nodes with a queue of `queue_capacity`.
    pub fn new(
        g1: Node,
        g2: Node,
        queue_capacity: usize,
        staleness: Staleness,
        max_staleness: Duration,
        metrics: Metrics,
    ) -> Ap {
        let depth = metrics.ap_queue_depth.with_label_values(&[metrics.mode()]);
        Ap {
            g1,
            g2,
            queue: WriteQueue::new(queue_capacity, depth),
            staleness,
            max_staleness,
            metrics,
        }
    }

    /// The write-behind queue.
    pub fn queue(&self) -> &WriteQueue {
        &self.queue
    }

    /// Writes on g1 without waiting for the replica; queues the write if g1 is away.
    pub async fn write(&self, key: &str, value: &str) -> Result<Written, ServiceError> {
        self.write_in(key, value, None).await
    }

    /// [`write`](Ap::write) for `session`: a queued write remembers it, so the session can
    /// read it back from the queue.
    pub async fn write_in(
        &self,
        key: &str,
        value: &str,
        session: Option<SessionId>,
    ) -> Result<Written, ServiceError> {
        let write = WriteRequest::new(key.to_string(), value.to_string());
        let error = match self.g1.write(&write).await {
            Ok(ack) => {
                self.record(&write, "ok", Some(ack.version));
                return Ok(Written {
                    version: Some(ack.version),
                    node: Some("g1"),
                    replicated: false,
                    queued: false,
                    primary_offset: Some(ack.primary_offset),
                });
            }
            Err(e) => e,
        };
        if let NodeError::Redis { .. } = error {
            // g1 answered and refused: queueing would only refuse again later.
            self.record(&write, "failed", None);
            return Err(ServiceError::WriteFailed(error));
        }
        match self.queue.push_for(write.clone(), session) {
            Ok(depth) => {
                tracing::debug!(key = write.key, depth, reason = %error, "AP write queued");
                self.record(&write, "queued", None);
                Ok(Written {
                    version: None,
                    node: None,
                    replicated: false,
                    queued: true,
                    primary_offset: None,
                })
            }
            Err(full) => {
                self.record(&write, "rejected", None);
                Err(ServiceError::QueueFull {
                    capacity: full.capacity,
                })
            }
        }
    }

    fn record(&self, write: &WriteRequest, outcome: &str, version: Option<u64>) {
        self.metrics.write_outcome(outcome);
        let node = version.map(|_| "g1");
        audit_write(
            Mode::Ap,
            &write.key,
            write.value.len(),
            version,
            outcome,
            node,
        );
    }

    /// The order to ask the nodes in: g2 first, unless it is too stale and g1 is usable.
    pub(super) fn order(&self) -> [&Node; 2] {
        let g2_too_stale = self.staleness.staleness_ms(NodeId::G2) > self.max_ms();
        let g1_usable = self.g1.breaker().state() != BreakerState::Open;
        if g2_too_stale && g1_usable {
            [&self.g1, &self.g2]
        } else {
            [&self.g2, &self.g1]
        }
    }

    /// Reads from the replica, or the primary when the replica fails or is too stale.
    pub async fn read(&self, key: &str) -> Result<ReadAnswer, ServiceError> {
        let order = self.order();
        let mut failures = Vec::with_capacity(2);
        for node in order {
            match node.read_record(key).await {
                Ok(record) => return Ok(self.answer(node, record)),
                Err(e) => failures.push(e.to_string()),
            }
        }
        Err(ServiceError::ReadUnavailable(failures.join("; ")))
    }

    fn max_ms(&self) -> u64 {
        u64::try_from(self.max_staleness.as_millis()).unwrap_or(u64::MAX)
    }

    pub(super) fn answer(&self, node: &Node, record: Option<crate::node::Record>) -> ReadAnswer {
        let staleness_ms = self.staleness.staleness_ms(node.id());
        let stale = staleness_ms > self.max_ms();
        if stale {
            self.metrics
                .stale_reads
                .with_label_values(&[self.metrics.mode(), node.name()])
                .inc();
        }
        ReadAnswer {
            record,
            node: node.name(),
            staleness_ms,
            stale,
            queued: false,
            session: None,
        }
    }

    /// Applies queued writes in order until the queue is empty or g1 fails; a failed entry
    /// stays at the front for the next pass.
    pub async fn drain(&self) -> DrainReport {
        let mut report = DrainReport::default();
        while let Some(write) = self.queue.front() {
            let (outcome, version) = match self.g1.apply_if_newer(&write).await {
                Ok(ScriptReply::Applied { version } | ScriptReply::AlreadyApplied { version }) => {
                    report.applied += 1;
                    ("drained", Some(version))
                }
                Ok(ScriptReply::Superseded { version }) => {
                    report.superseded += 1;
                    ("superseded", Some(version))
                }
                Err(NodeError::Redis { detail, .. }) => {
                    tracing::warn!(
                        key = write.key,
                        error = detail,
                        "AP queued write refused by g1; dropped"
                    );
                    report.refused += 1;
                    ("failed", None)
                }
                Err(_) => break,
            };
            self.queue.pop_if(&write.write_id);
            self.record(&write, outcome, version);
        }
        report.remaining = self.queue.len();
        report
    }

    /// Drains every `period` while there is something queued, forever.
    pub async fn run_drainer(self: std::sync::Arc<Self>, period: Duration) {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if !self.queue.is_empty() {
                let report = self.drain().await;
                if report.applied + report.superseded + report.refused > 0 {
                    tracing::info!(
                        applied = report.applied,
                        superseded = report.superseded,
                        refused = report.refused,
                        remaining = report.remaining,
                        "AP queue drained"
                    );
                }
            }
        }
    }

    /// At shutdown: drains until the queue is empty or `limit` passes, then counts and logs
    /// what is left (those writes are lost). Returns how many could not be drained.
    pub async fn final_drain(&self, limit: Duration, retry: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.queue.is_empty() && tokio::time::Instant::now() < deadline {
            if self.drain().await.remaining > 0 {
                tokio::time::sleep(
                    retry.min(deadline.saturating_duration_since(tokio::time::Instant::now())),
                )
                .await;
            }
        }
        let left = self.queue.len();
        if left > 0 {
            for _ in 0..left {
                self.metrics.write_outcome("lost_on_shutdown");
            }
            tracing::warn!(
                undrained = left,
                "AP_QUEUE_UNDRAINED: queued writes could not reach g1 before shutdown and are lost"
            );
        }
        left
    }
}
