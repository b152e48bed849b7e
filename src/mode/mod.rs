//! The mode policies: what CP and AP do with a read or a write.
//!
//! Data path: second layer, between the HTTP handlers and the node clients. [`Personality`]
//! is CP or AP; each takes a validated key (and value) and decides which node to ask and what
//! its answer means. "Primary" and "replica" are roles this instance believes the nodes have
//! when it sends ([`crate::primary::Nodes`]): g1 at start, g2 after a failover.
//!
//! - [`cp::Cp`] writes on the primary and waits for one replica (`WAIT 1`) on a dedicated
//!   connection, reads from the primary only, fenced by a replicated write, and refuses (503)
//!   rather than risk a stale, unreplicated or deposed answer.
//! - [`ap::Ap`] writes on the primary without waiting, queues the write when the primary is
//!   away, reads from the replica (falling back to the primary, or preferring it when the
//!   replica is too stale) and says how stale it is.
//!
//! A compare-and-set ([`cas`]) goes to the believed primary under both: CP with `WAIT` like a
//! write, AP without, and never queued.
//!
//! A read that carries a session token goes through [`session`] instead: AP serves from the
//! replica only if it has processed the session's offset, CP reads the primary as always; both
//! report the offset they observed so the handler can raise the token.

use crate::config::Mode;
use crate::node::{Breaker, Record};
use crate::session::{SessionId, SessionOutcome, SessionRead};

pub mod ap;
pub mod cas;
pub mod cp;
pub mod error;
pub mod queue;
pub mod session;

pub use cas::CasOutcome;
pub use error::ServiceError;

/// What a write produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The version the primary assigned (`None` while queued).
    pub version: Option<u64>,
    /// The node that stored it (`None` while queued).
    pub node: Option<&'static str>,
    /// Whether a replica confirmed it (CP).
    pub replicated: bool,
    /// Whether it waits in the AP queue.
    pub queued: bool,
    /// The primary's replication offset right after the write (read-your-writes tokens).
    pub primary_offset: Option<u64>,
    /// AP, queued: what the 202 promises about the write's survival.
    pub durability: Option<queue::Durability>,
}

/// What a read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAnswer {
    /// The record, or `None` if the node does not hold the key.
    pub record: Option<Record>,
    /// The node that answered.
    pub node: &'static str,
    /// That node's measured staleness.
    pub staleness_ms: u64,
    /// Whether that staleness exceeds `MAX_STALENESS_MS`.
    pub stale: bool,
    /// AP: the answer is a write of this session still in the queue (`node` is `queue`, the
    /// record has no version yet: it says 0).
    pub queued: bool,
    /// For a read that carried a session token: whether it honours the session, and the
    /// offset it observed. `None` for a read without a token.
    pub session: Option<SessionOutcome>,
}

/// One personality.
#[derive(Debug)]
pub enum Personality {
    /// Consistency over availability.
    Cp(Box<cp::Cp>),
    /// Availability over consistency (shared with its drain task).
    Ap(std::sync::Arc<ap::Ap>),
}

impl Personality {
    /// Which one.
    pub fn mode(&self) -> Mode {
        match self {
            Personality::Cp(_) => Mode::Cp,
            Personality::Ap(_) => Mode::Ap,
        }
    }

    /// Writes `value` to `key`.
    pub async fn write(&self, key: &str, value: &str) -> Result<Written, ServiceError> {
        self.write_in(key, value, None).await
    }

    /// Writes `value` to `key` for `session` (AP remembers it on a queued write).
    pub async fn write_in(
        &self,
        key: &str,
        value: &str,
        session: Option<SessionId>,
    ) -> Result<Written, ServiceError> {
        match self {
            Personality::Cp(cp) => cp.write(key, value).await,
            Personality::Ap(ap) => ap.write_in(key, value, session).await,
        }
    }

    /// Reads `key`.
    pub async fn read(&self, key: &str) -> Result<ReadAnswer, ServiceError> {
        match self {
            Personality::Cp(cp) => cp.read(key).await,
            Personality::Ap(ap) => ap.read(key).await,
        }
    }

    /// Reads `key` for a session: the answer says whether it honours the session.
    pub async fn read_in(
        &self,
        key: &str,
        session: SessionRead,
    ) -> Result<ReadAnswer, ServiceError> {
        match self {
            Personality::Cp(cp) => cp.read_in(key, session).await,
            Personality::Ap(ap) => ap.read_in(key, session).await,
        }
    }

    /// CP's `replication` breaker (AP has none).
    pub fn replication_breaker(&self) -> Option<&Breaker> {
        match self {
            Personality::Cp(cp) => Some(cp.replication_breaker()),
            Personality::Ap(_) => None,
        }
    }

    /// AP's write-behind queue depth (0 for CP, which has none).
    pub fn queue_depth(&self) -> usize {
        match self {
            Personality::Cp(_) => 0,
            Personality::Ap(ap) => ap.queue().len(),
        }
    }
}

/// The audit line of every write (`WRITE`, target `audit`: `AUDIT_LOG` routes it); keys are
/// fine in logs, never in metric labels.
pub(crate) fn audit_write(
    mode: Mode,
    key: &str,
    value_bytes: usize,
    version: Option<u64>,
    outcome: &str,
    node: Option<&str>,
) {
    tracing::info!(
        target: crate::logging::AUDIT_TARGET,
        mode = mode.as_str(),
        key,
        value_bytes,
        version,
        outcome,
        node,
        "WRITE"
    );
}
