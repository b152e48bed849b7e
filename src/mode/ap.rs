//! AP: availability over consistency.
//!
//! Data path: second layer. "Primary" and "replica" below are the roles this instance believes
//! the nodes have at the moment it sends ([`Nodes`]); after a failover g2 is the primary.
//!
//! A write goes to the primary without `WAIT` (the script and `ROLE` in one pipeline) and
//! answers `replicated: false`. If the primary cannot take it (unreachable, timed out, breaker
//! open, or it answered `READONLY` because a failover made it a replica) the write joins the
//! bounded write-behind [`WriteQueue`] and answers 202; a full queue answers 503. The drain
//! applies queued writes to whichever node is the primary when it drains, each only if no newer
//! write (by writer timestamp) landed meanwhile; superseded ones are counted, not silently
//! dropped. A write whose earlier attempt timed out but landed is recognised by its write id,
//! so a drain never applies a write twice.
//!
//! A read goes to the replica ("nearest") by default; to the primary when the replica fails or
//! its breaker is open, or first to the primary when the replica's staleness exceeds
//! `MAX_STALENESS_MS` and the primary's breaker is not open (bounded staleness). An answer
//! staler than the bound is still served, with `stale: true`: availability wins, and the
//! answer says so.

use std::time::Duration;

use crate::config::Mode;
use crate::metrics::Metrics;
use crate::node::{BreakerState, Node, NodeError, ScriptReply, WriteRequest};
use crate::primary::Nodes;
use crate::session::SessionId;
use crate::staleness::Staleness;

use super::queue::{QueueError, WriteQueue};
use super::{ReadAnswer, ServiceError, Written, audit_write};

/// The AP policy.
#[derive(Debug)]
pub struct Ap {
    pub(super) nodes: Nodes,
    pub(super) queue: WriteQueue,
    staleness: Staleness,
    max_staleness: Duration,
    pub(super) metrics: Metrics,
}

/// What one pass of the drain did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Queued writes applied on the primary.
    pub applied: usize,
    /// Queued writes not applied because a newer write held the key.
    pub superseded: usize,
    /// Queued writes the primary refused with an error reply (dropped and logged).
    pub refused: usize,
    /// Writes still queued after the pass.
    pub remaining: usize,
}

impl Ap {
    /// AP over both nodes with an in-memory queue of `queue_capacity`.
    pub fn new(
        nodes: Nodes,
        queue_capacity: usize,
        staleness: Staleness,
        max_staleness: Duration,
        metrics: Metrics,
    ) -> Ap {
        let depth = metrics.ap_queue_depth.with_label_values(&[metrics.mode()]);
        let queue = WriteQueue::new(queue_capacity, depth);
        Ap::with_queue(nodes, queue, staleness, max_staleness, metrics)
    }

    /// AP over both nodes with `queue` (one backed by the queue file, say).
    pub fn with_queue(
        nodes: Nodes,
        queue: WriteQueue,
        staleness: Staleness,
        max_staleness: Duration,
        metrics: Metrics,
    ) -> Ap {
        Ap {
            nodes,
            queue,
            staleness,
            max_staleness,
            metrics,
        }
    }

    /// The write-behind queue.
    pub fn queue(&self) -> &WriteQueue {
        &self.queue
    }

    /// Writes on the primary without waiting for the replica; queues the write if the primary
    /// is away.
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
        let primary = self.nodes.primary();
        let error = match primary.write(&write).await {
            Ok(ack) => {
                self.record(&write, "ok", Some((primary.name(), ack.version)));
                return Ok(Written {
                    version: Some(ack.version),
                    node: Some(primary.name()),
                    replicated: false,
                    queued: false,
                    primary_offset: Some(ack.primary_offset),
                    durability: None,
                });
            }
            Err(e) => e,
        };
        // A node that is a replica now applied nothing: the write waits for the primary the
        // tracker is asked to find at once.
        self.nodes.noticed(&error);
        if let NodeError::Redis { .. } = error {
            // The primary answered and refused: queueing would only refuse again later.
            self.record(&write, "failed", None);
            return Err(ServiceError::WriteFailed {
                node: primary.name(),
                error,
            });
        }
        match self.queue.push_for(write.clone(), session).await {
            Ok(depth) => {
                tracing::debug!(key = write.key, depth, reason = %error, "AP write queued");
                self.record(&write, "queued", None);
                Ok(Written {
                    version: None,
                    node: None,
                    replicated: false,
                    queued: true,
                    primary_offset: None,
                    durability: Some(self.queue.durability()),
                })
            }
            Err(refused) => {
                self.record(&write, "rejected", None);
                Err(match refused {
                    QueueError::Full { capacity } => ServiceError::QueueFull { capacity },
                    QueueError::File(detail) => ServiceError::QueueFile(detail),
                })
            }
        }
    }

    /// Counts and audits a write; `stored` is the node and version that took it.
    fn record(&self, write: &WriteRequest, outcome: &str, stored: Option<(&str, u64)>) {
        self.metrics.write_outcome(outcome);
        audit_write(
            Mode::Ap,
            &write.key,
            write.value.len(),
            stored.map(|(_, version)| version),
            outcome,
            stored.map(|(node, _)| node),
        );
    }

    /// The order to ask the nodes in: the replica first, unless it is too stale and the
    /// primary is usable.
    pub(super) fn order(&self) -> [&Node; 2] {
        let (primary, replica) = (self.nodes.primary(), self.nodes.replica());
        let replica_too_stale = self.staleness.staleness_ms(replica.id()) > self.max_ms();
        let primary_usable = primary.breaker().state() != BreakerState::Open;
        if replica_too_stale && primary_usable {
            [primary, replica]
        } else {
            [replica, primary]
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

    /// Applies queued writes in order, each to whichever node is the primary when it is sent,
    /// until the queue is empty or the primary fails; a failed entry stays at the front for
    /// the next pass.
    pub async fn drain(&self) -> DrainReport {
        let mut report = DrainReport::default();
        while let Some(write) = self.queue.front() {
            let primary = self.nodes.primary();
            let node = primary.name();
            let (outcome, stored) = match primary.apply_if_newer(&write).await {
                Ok(ScriptReply::Applied { version } | ScriptReply::AlreadyApplied { version }) => {
                    report.applied += 1;
                    ("drained", Some((node, version)))
                }
                Ok(ScriptReply::Superseded { version }) => {
                    report.superseded += 1;
                    ("superseded", Some((node, version)))
                }
                Err(NodeError::Redis { detail, .. }) => {
                    tracing::warn!(
                        key = write.key,
                        node,
                        error = detail,
                        "AP queued write refused by the primary; dropped"
                    );
                    report.refused += 1;
                    ("failed", None)
                }
                Err(e) => {
                    // Unreachable, or a replica now (READONLY): kept for the next pass.
                    self.nodes.noticed(&e);
                    break;
                }
            };
            self.queue.pop_if(&write.write_id);
            self.record(&write, outcome, stored);
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
                "AP_QUEUE_UNDRAINED: queued writes could not reach the primary before shutdown and are lost"
            );
        }
        left
    }
}
