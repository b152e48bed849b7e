//! CP: consistency over availability.
//!
//! Data path: second layer. Everything goes to the node this instance believes is the primary
//! at the moment it is sent ([`Nodes::primary`]), on that node's dedicated connections.
//!
//! - **Write**: the script, `ROLE` and `WAIT 1 <CP_WAIT_TIMEOUT_MS>` in one pipeline. One
//!   replica confirmed: done. No replica confirmed, or the answer never came: `indeterminate`
//!   (Redis does not roll the write back; it may still appear). Refused before anything was
//!   applied (breaker open, not connected, the node answered `READONLY` because it is a
//!   replica now): `failed`. The `replication` breaker counts unconfirmed `WAIT`s; once open,
//!   writes are refused at once (`failed`, definite) instead of creating more indeterminate
//!   ones, and a half-open trial probes again (or the replication poll closes it when the
//!   primary has a replica again).
//! - **Read**: from the believed primary only, fenced (`CP_READ_FENCE=on`): the data read,
//!   then a fence round on the same node that started after the data came back: a write of
//!   this instance's fence key and `WAIT 1` ([`crate::node::fence`], shared by concurrent
//!   reads). It is served only if the node took the fence write as a primary and a replica
//!   confirmed it; otherwise 503. A fence no replica confirmed counts on the `replication`
//!   breaker like an unconfirmed write, so while it is open reads are refused at once too.
//!   `CP_READ_FENCE=off` reads the primary unfenced.
//!
//! A node that answers `READONLY` makes the primary tracker ask the sentinels at once.

use crate::config::Mode;
use crate::metrics::Metrics;
use crate::node::{
    Breaker, Certainty, Fence, Node, NodeError, NodeId, ObservedRead, WaitPool, WriteRequest,
};
use crate::primary::Nodes;
use crate::staleness::Staleness;

use super::{ReadAnswer, ServiceError, Written, audit_write};

/// The CP policy.
#[derive(Debug)]
pub struct Cp {
    pub(super) nodes: Nodes,
    pools: [WaitPool; 2],
    replication: Breaker,
    fences: Option<[Fence; 2]>,
    pub(super) staleness: Staleness,
    pub(super) metrics: Metrics,
}

impl Cp {
    /// CP over `nodes`, with each node's dedicated WAIT connections (`pools`, g1's first), and
    /// reads fenced with `fence_key` (`None`: `CP_READ_FENCE=off`).
    pub fn new(
        nodes: Nodes,
        pools: [WaitPool; 2],
        replication: Breaker,
        fence_key: Option<String>,
        staleness: Staleness,
        metrics: Metrics,
    ) -> Cp {
        let fences = fence_key.map(|key| {
            let [g1, g2] = &pools;
            [Fence::new(g1.clone(), &key), Fence::new(g2.clone(), &key)]
        });
        Cp {
            nodes,
            pools,
            replication,
            fences,
            staleness,
            metrics,
        }
    }

    /// The `replication` breaker.
    pub fn replication_breaker(&self) -> &Breaker {
        &self.replication
    }

    /// The dedicated WAIT connections of `node`.
    pub fn pool(&self, node: NodeId) -> &WaitPool {
        &self.pools[node.index()]
    }

    /// Writes on the believed primary and waits for one replica.
    pub async fn write(&self, key: &str, value: &str) -> Result<Written, ServiceError> {
        let write = WriteRequest::new(key.to_string(), value.to_string());
        let primary = self.nodes.primary().clone();
        let result = self.write_and_wait(&primary, &write).await;
        let (outcome, version) = match &result {
            Ok(w) => ("ok", w.version),
            Err(e @ ServiceError::WriteIndeterminate { version, .. }) => (e.outcome(), *version),
            Err(e) => (e.outcome(), None),
        };
        self.metrics.write_outcome(outcome);
        audit_write(
            Mode::Cp,
            &write.key,
            write.value.len(),
            version,
            outcome,
            Some(primary.name()),
        );
        result
    }

    async fn write_and_wait(
        &self,
        primary: &Node,
        write: &WriteRequest,
    ) -> Result<Written, ServiceError> {
        let node = primary.name();
        let replication = self
            .replication
            .permit()
            .map_err(|r| ServiceError::WriteFailed {
                node,
                error: NodeError::rejected(r),
            })?;
        let pool = self.pool(primary.id());
        let ack = match pool.write_and_wait(write).await {
            Ok(ack) => ack,
            // No evidence about replication either way: the replication permit is dropped.
            Err(e) => {
                self.nodes.noticed(&e);
                return Err(match e.certainty() {
                    Certainty::Definite => ServiceError::WriteFailed { node, error: e },
                    Certainty::Indefinite => ServiceError::WriteIndeterminate {
                        node,
                        version: None,
                        detail: e.to_string(),
                    },
                });
            }
        };
        if ack.replicas_acked.unwrap_or(0) >= 1 {
            replication.success();
            return Ok(Written {
                version: Some(ack.version),
                node: Some(node),
                replicated: true,
                queued: false,
                primary_offset: Some(ack.primary_offset),
                durability: None,
            });
        }
        replication.failure();
        Err(ServiceError::WriteIndeterminate {
            node,
            version: Some(ack.version),
            detail: format!(
                "{node} stored version {} but WAIT 1 counted no replica within {} ms",
                ack.version,
                pool.wait_timeout().as_millis()
            ),
        })
    }

    /// Reads from the believed primary only, fenced unless `CP_READ_FENCE=off`.
    pub async fn read(&self, key: &str) -> Result<ReadAnswer, ServiceError> {
        let (node, read) = self.read_primary(key, false).await?;
        Ok(self.answer(node, read.record))
    }

    /// The believed primary's record of `key` and its offset after the read. Fenced: the
    /// fence's own offset; unfenced: a `ROLE` after the read when `with_offset` (sessions),
    /// else none (0).
    pub(super) async fn read_primary(
        &self,
        key: &str,
        with_offset: bool,
    ) -> Result<(&Node, ObservedRead), ServiceError> {
        let primary = self.nodes.primary();
        let unavailable = |e: &dyn std::fmt::Display| {
            ServiceError::ReadUnavailable(format!(
                "CP reads only from the primary ({}), and {e}",
                primary.name()
            ))
        };
        let Some(fences) = &self.fences else {
            let read = if with_offset {
                primary.read_observed(key, false).await
            } else {
                primary.read_record(key).await.map(|record| ObservedRead {
                    record,
                    offset_before: None,
                    offset_after: 0,
                })
            };
            return read.map(|r| (primary, r)).map_err(|e| unavailable(&e));
        };
        let replication = self
            .replication
            .permit()
            .map_err(|r| unavailable(&NodeError::rejected(r)))?;
        let fence = &fences[primary.id().index()];
        let fenced = match primary.read_record(key).await {
            Ok(record) => fence.after_read().await.map(|proof| (record, proof)),
            Err(e) => Err(e),
        };
        let (record, proof) = match fenced {
            Ok(fenced) => fenced,
            Err(e) => {
                self.nodes.noticed(&e);
                return Err(unavailable(&e));
            }
        };
        if proof.replicas_acked == 0 {
            replication.failure();
            return Err(unavailable(&format_args!(
                "the read fence was not confirmed: WAIT 1 counted no replica within {} ms, so \
                 {} cannot prove it is still the primary",
                fence.pool().wait_timeout().as_millis(),
                primary.name()
            )));
        }
        replication.success();
        let read = ObservedRead {
            record,
            offset_before: None,
            offset_after: proof.offset_after,
        };
        Ok((primary, read))
    }

    pub(super) fn answer(&self, node: &Node, record: Option<crate::node::Record>) -> ReadAnswer {
        ReadAnswer {
            record,
            node: node.name(),
            staleness_ms: self.staleness.staleness_ms(node.id()),
            stale: false,
            queued: false,
            session: None,
        }
    }
}
