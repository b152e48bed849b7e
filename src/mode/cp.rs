//! CP: consistency over availability.
//!
//! Data path: second layer. A write goes to g1 on a dedicated connection as the script, `ROLE`
//! and `WAIT 1 <CP_WAIT_TIMEOUT_MS>` in one pipeline. One replica confirmed: done. No replica
//! confirmed, or g1's answer never came: `indeterminate` (Redis does not roll the write back;
//! it may still appear). Refused before anything was sent (g1's breaker open, not connected):
//! `failed`. The `replication` breaker counts unconfirmed `WAIT`s; once open, writes are
//! refused at once (`failed`, definite) instead of creating more indeterminate ones, and a
//! half-open trial write probes again. Reads go to g1 only, never to the replica.

use crate::config::Mode;
use crate::metrics::Metrics;
use crate::node::{Breaker, Certainty, Node, NodeError, NodeId, WaitPool, WriteRequest};
use crate::staleness::Staleness;

use super::{ReadAnswer, ServiceError, Written, audit_write};

/// The CP policy.
#[derive(Debug)]
pub struct Cp {
    pub(super) g1: Node,
    pool: WaitPool,
    replication: Breaker,
    pub(super) staleness: Staleness,
    pub(super) metrics: Metrics,
}

impl Cp {
    /// CP over g1 with its dedicated WAIT connections.
    pub fn new(
        g1: Node,
        pool: WaitPool,
        replication: Breaker,
        staleness: Staleness,
        metrics: Metrics,
    ) -> Cp {
        Cp {
            g1,
            pool,
            replication,
            staleness,
            metrics,
        }
    }

    /// The `replication` breaker.
    pub fn replication_breaker(&self) -> &Breaker {
        &self.replication
    }

    /// The dedicated WAIT connections.
    pub fn pool(&self) -> &WaitPool {
        &self.pool
    }

    /// Writes on g1 and waits for one replica.
    pub async fn write(&self, key: &str, value: &str) -> Result<Written, ServiceError> {
        let write = WriteRequest::new(key.to_string(), value.to_string());
        let result = self.write_and_wait(&write).await;
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
            Some("g1"),
        );
        result
    }

    async fn write_and_wait(&self, write: &WriteRequest) -> Result<Written, ServiceError> {
        let replication = self
            .replication
            .permit()
            .map_err(|r| ServiceError::WriteFailed(NodeError::rejected(r)))?;
        let ack = match self.pool.write_and_wait(write).await {
            Ok(ack) => ack,
            // No evidence about replication either way: the replication permit is dropped.
            Err(e) => {
                return Err(match e.certainty() {
                    Certainty::Definite => ServiceError::WriteFailed(e),
                    Certainty::Indefinite => ServiceError::WriteIndeterminate {
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
                node: Some("g1"),
                replicated: true,
                queued: false,
                primary_offset: Some(ack.primary_offset),
            });
        }
        replication.failure();
        Err(ServiceError::WriteIndeterminate {
            version: Some(ack.version),
            detail: format!(
                "g1 stored version {} but WAIT 1 counted no replica within {} ms",
                ack.version,
                self.pool.wait_timeout().as_millis()
            ),
        })
    }

    /// Reads from g1 only.
    pub async fn read(&self, key: &str) -> Result<ReadAnswer, ServiceError> {
        match self.g1.read_record(key).await {
            Ok(record) => Ok(ReadAnswer {
                record,
                node: "g1",
                staleness_ms: self.staleness.staleness_ms(NodeId::G1),
                stale: false,
                queued: false,
                session: None,
            }),
            Err(e) => Err(ServiceError::ReadUnavailable(format!(
                "CP reads only from g1, and {e}"
            ))),
        }
    }
}
