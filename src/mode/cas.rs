//! Compare-and-set under each personality.
//!
//! Data path: second layer, beside the write policies of `cp` and `ap`. A cas compares the
//! key's current value on the believed primary and, if it matches, writes the new one there,
//! atomically (`node::cas`). The answer is [`CasOutcome::Applied`], [`CasOutcome::Mismatch`]
//! (definitely not applied), or a [`ServiceError`] with the write's `outcome`.
//!
//! - **CP**: the script, `ROLE` and `WAIT 1` in one pipeline on a dedicated connection, behind
//!   the `replication` breaker, like a write. Applied and confirmed by a replica: `Applied`.
//!   Applied but no replica confirmed, or the answer never came: `indeterminate` (it may have
//!   applied and may still appear). Refused before anything was applied (breaker open, not
//!   connected, `READONLY`): `failed`. A mismatch is answered whatever `WAIT` said (nothing
//!   was written) and tells the breaker nothing.
//! - **AP**: the script and `ROLE` on the primary, without `WAIT` (`replicated: false`). A cas
//!   is never queued: its comparison needs the value the primary holds now, so while the
//!   primary is unreachable it answers `failed` (nothing was sent) or `indeterminate` (sent,
//!   no answer: it may have applied). docs/design.md says what AP can and cannot promise.

use crate::config::Mode;
use crate::metrics::Metrics;
use crate::node::{CasAck, CasReply, CasRequest, Certainty, Node, NodeError};

use super::ap::Ap;
use super::cp::Cp;
use super::{Personality, ServiceError, Written, audit_write};

/// What a cas that got an answer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// The key held the expected value; the new one is stored (CP: and a replica confirmed).
    Applied(Written),
    /// The key did not hold the expected value: nothing was written.
    Mismatch {
        /// The node that compared.
        node: &'static str,
        /// The value it held when it compared (`None`: absent). Not a read the service
        /// vouches for (CP does not fence it): a hint for the client's next attempt.
        current: Option<String>,
        /// Its version (`None`: absent).
        version: Option<u64>,
        /// The node's replication offset right after the comparison.
        primary_offset: u64,
    },
}

impl CasOutcome {
    /// `ok` or `mismatch`, as the body and `cas_outcomes_total` say it.
    pub fn outcome(&self) -> &'static str {
        match self {
            CasOutcome::Applied(_) => "ok",
            CasOutcome::Mismatch { .. } => "mismatch",
        }
    }
}

impl Personality {
    /// Compare-and-set of `key` from `expected` (`None`: absent) to `new`.
    pub async fn cas(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
    ) -> Result<CasOutcome, ServiceError> {
        let cas = CasRequest::new(
            key.to_string(),
            expected.map(str::to_string),
            new.to_string(),
        );
        let (mode, metrics, result) = match self {
            Personality::Cp(cp) => (Mode::Cp, &cp.metrics, cp_cas(cp, &cas).await),
            Personality::Ap(ap) => (Mode::Ap, &ap.metrics, ap_cas(ap, &cas).await),
        };
        record(mode, metrics, &cas, &result);
        result
    }
}

/// Counts and audits a cas (its audit line is a `WRITE` whose outcome says `cas_...`).
fn record(
    mode: Mode,
    metrics: &Metrics,
    cas: &CasRequest,
    result: &Result<CasOutcome, ServiceError>,
) {
    let (outcome, version, node) = match result {
        Ok(CasOutcome::Applied(w)) => ("ok", w.version, w.node),
        Ok(CasOutcome::Mismatch { node, .. }) => ("mismatch", None, Some(*node)),
        Err(e @ ServiceError::WriteIndeterminate { version, .. }) => {
            (e.outcome(), *version, e.node())
        }
        Err(e) => (e.outcome(), None, e.node()),
    };
    metrics.cas_outcome(outcome);
    let audited = match outcome {
        "ok" => "cas_ok",
        "mismatch" => "cas_mismatch",
        "indeterminate" => "cas_indeterminate",
        _ => "cas_failed",
    };
    audit_write(mode, &cas.key, cas.new.len(), version, audited, node);
}

/// A failure of the cas pipeline: `failed` when nothing was applied, else `indeterminate`.
fn node_failure(node: &'static str, e: NodeError) -> ServiceError {
    match e.certainty() {
        Certainty::Definite => ServiceError::WriteFailed { node, error: e },
        Certainty::Indefinite => ServiceError::WriteIndeterminate {
            node,
            version: None,
            detail: e.to_string(),
        },
    }
}

fn mismatch(node: &Node, ack: CasAck, current: Option<String>, version: Option<u64>) -> CasOutcome {
    CasOutcome::Mismatch {
        node: node.name(),
        current,
        version,
        primary_offset: ack.primary_offset,
    }
}

async fn cp_cas(cp: &Cp, cas: &CasRequest) -> Result<CasOutcome, ServiceError> {
    let primary = cp.nodes.primary().clone();
    let node = primary.name();
    let replication = cp
        .replication_breaker()
        .permit()
        .map_err(|r| ServiceError::WriteFailed {
            node,
            error: NodeError::rejected(r),
        })?;
    let pool = cp.pool(primary.id());
    let ack = match pool.cas_and_wait(cas).await {
        Ok(ack) => ack,
        // No evidence about replication either way: the replication permit is dropped.
        Err(e) => {
            cp.nodes.noticed(&e);
            return Err(node_failure(node, e));
        }
    };
    let version = match ack.reply {
        CasReply::Applied { version } => version,
        CasReply::Mismatch {
            ref current,
            version,
        } => {
            let current = current.clone();
            return Ok(mismatch(&primary, ack, current, version));
        }
    };
    if ack.replicas_acked.unwrap_or(0) >= 1 {
        replication.success();
        return Ok(CasOutcome::Applied(Written {
            version: Some(version),
            node: Some(node),
            replicated: true,
            queued: false,
            durability: None,
            primary_offset: Some(ack.primary_offset),
        }));
    }
    replication.failure();
    Err(ServiceError::WriteIndeterminate {
        node,
        version: Some(version),
        detail: format!(
            "{node} applied the cas as version {version} but WAIT 1 counted no replica within {} ms",
            pool.wait_timeout().as_millis()
        ),
    })
}

async fn ap_cas(ap: &Ap, cas: &CasRequest) -> Result<CasOutcome, ServiceError> {
    let primary = ap.nodes.primary();
    let node = primary.name();
    let ack = match primary.cas(cas).await {
        Ok(ack) => ack,
        Err(e) => {
            ap.nodes.noticed(&e);
            return Err(node_failure(node, e));
        }
    };
    Ok(match ack.reply {
        CasReply::Applied { version } => CasOutcome::Applied(Written {
            version: Some(version),
            node: Some(node),
            replicated: false,
            queued: false,
            durability: None,
            primary_offset: Some(ack.primary_offset),
        }),
        CasReply::Mismatch {
            ref current,
            version,
        } => {
            let current = current.clone();
            mismatch(primary, ack, current, version)
        }
    })
}
