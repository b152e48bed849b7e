//! Reads that carry a session token: read-your-writes and monotonic reads, in both modes.
//!
//! Data path: second layer, in place of the plain read when the handler verified a token.
//!
//! "Primary" and "replica" are the roles this instance believes the nodes have when it sends
//! (after a failover g2 is the primary); a failover keeps offsets growing (the promoted
//! replica continues the old primary's), so tokens stay meaningful across it.
//!
//! - **AP** asks the nodes in the usual order (the replica, or the primary first when the
//!   replica is too stale), and an answer counts only if the node's offset, taken with `ROLE`
//!   before the data read in the same pipeline, has reached the token's: a replica behind the
//!   session sends the read to the primary (`session_ryw_fallbacks_total`). If the primary
//!   cannot answer either (or is itself behind), the replica's answer is still served
//!   (availability wins) with `session_guarantee: false`, counted in
//!   `session_guarantee_violations_total`. A key this session wrote that still waits in the
//!   queue is served from the queue, unless a node holds a newer write of it (by writer
//!   timestamp, the drain's rule). The offset is asked before the read on both nodes, so a
//!   belief that lags a failover cannot make a replica's answer count as a primary's.
//! - **CP** reads the primary as always (fenced unless `CP_READ_FENCE=off`); the guarantee
//!   holds whenever it answers, unless the primary's own offset is below the token's (it lost
//!   history the session saw: a restart without persistence, or a promotion of a replica that
//!   had not received it), which both modes report as `session_guarantee: false`.
//!
//! Either way the answer carries the serving node's offset taken after the read, which the
//! handler folds into the token: the next read of the session, on any instance, needs a node
//! at least that far along.

use crate::node::{ObservedRead, Record, WriteRequest};
use crate::session::{SessionOutcome, SessionRead};

use super::ap::Ap;
use super::cp::Cp;
use super::{ReadAnswer, ServiceError};

/// A routed read before the queue is consulted.
struct Routed {
    answer: ReadAnswer,
    guarantee: bool,
    observed: u64,
}

impl Ap {
    /// Reads `key` for `session`; the answer's `session` says whether the guarantee held.
    pub async fn read_in(
        &self,
        key: &str,
        session: SessionRead,
    ) -> Result<ReadAnswer, ServiceError> {
        let queued = self.queue.lookup_for(key, session.id);
        let routed = self.route(key, session.min_offset).await;
        let (mut answer, guarantee, observed) = match (queued, routed) {
            (Some(write), Ok(r)) if !newer_than(r.answer.record.as_ref(), &write) => {
                (from_queue(write), true, Some(r.observed))
            }
            (Some(write), Err(_)) => (from_queue(write), true, None),
            (_, Ok(r)) => (r.answer, r.guarantee, Some(r.observed)),
            (None, Err(e)) => return Err(e),
        };
        if !guarantee {
            self.metrics
                .session_violations
                .with_label_values(&[self.metrics.mode()])
                .inc();
            tracing::debug!(key, min_offset = session.min_offset, session = %session.id,
                "SESSION_GUARANTEE_VIOLATION: the primary unreachable and the replica behind the session");
        }
        answer.session = Some(SessionOutcome {
            guarantee,
            observed_offset: observed,
        });
        Ok(answer)
    }

    /// Asks the nodes in order. A node that has not reached `min_offset` by its offset before
    /// the read (a replica behind, or a primary that lost part of its history) is kept only as
    /// the answer of last resort, the primary's first.
    async fn route(&self, key: &str, min_offset: u64) -> Result<Routed, ServiceError> {
        let mut behind: Option<(&crate::node::Node, ObservedRead)> = None;
        let mut failures = Vec::with_capacity(2);
        let primary = self.nodes.belief().primary();
        for (i, node) in self.order().into_iter().enumerate() {
            let replica = node.id() != primary;
            match node.read_observed(key, true).await {
                Ok(read) => {
                    let reached = read.offset_before.unwrap_or(read.offset_after);
                    if reached >= min_offset {
                        return Ok(Routed {
                            answer: self.answer(node, read.record),
                            guarantee: true,
                            observed: read.offset_after,
                        });
                    }
                    if replica && i == 0 {
                        self.metrics
                            .session_ryw_fallbacks
                            .with_label_values(&[self.metrics.mode()])
                            .inc();
                    }
                    if behind.is_none() || !replica {
                        behind = Some((node, read));
                    }
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        match behind {
            Some((node, read)) => Ok(Routed {
                answer: self.answer(node, read.record),
                guarantee: false,
                observed: read.offset_after,
            }),
            None => Err(ServiceError::ReadUnavailable(failures.join("; "))),
        }
    }
}

/// Whether the node's record is at least as new as the queued write (or is that write).
fn newer_than(record: Option<&Record>, queued: &WriteRequest) -> bool {
    record.is_some_and(|r| r.written_at_ms >= queued.written_at_ms || r.write_id == queued.write_id)
}

fn from_queue(write: WriteRequest) -> ReadAnswer {
    ReadAnswer {
        record: Some(Record {
            value: write.value,
            // A queued write has no version until the primary assigns one; the body says null.
            version: 0,
            written_at_ms: write.written_at_ms,
            write_id: write.write_id,
        }),
        node: "queue",
        staleness_ms: 0,
        stale: false,
        queued: true,
        session: None,
    }
}

impl Cp {
    /// Reads `key` from the believed primary with its offset after the read. The guarantee
    /// holds whenever CP answers, unless that offset is below the token's: the primary lacks
    /// part of the history the session saw (a restart without persistence). CP still answers
    /// what the primary holds (refusing would not bring the data back), says
    /// `session_guarantee: false` and counts it.
    pub async fn read_in(
        &self,
        key: &str,
        session: SessionRead,
    ) -> Result<ReadAnswer, ServiceError> {
        let (node, read) = self.read_primary(key, true).await?;
        let guarantee = read.offset_after >= session.min_offset;
        if !guarantee {
            self.metrics
                .session_violations
                .with_label_values(&[self.metrics.mode()])
                .inc();
        }
        let mut answer = self.answer(node, read.record);
        answer.session = Some(SessionOutcome {
            guarantee,
            observed_offset: Some(read.offset_after),
        });
        Ok(answer)
    }
}
