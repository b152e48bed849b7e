//! The mode policies: what CP and AP do with a read or a write.
//!
//! Data path: second layer, between the HTTP handlers and the node clients. [`Personality`]
//! is CP or AP; each takes a validated key (and value) and decides which node to ask and what
//! its answer means:
//!
//! - [`cp::Cp`] writes on g1 and waits for one replica (`WAIT 1`) on a dedicated connection,
//!   reads from g1 only, and refuses (503) rather than risk a stale or unreplicated answer.
//! - [`ap::Ap`] writes on g1 without waiting, queues the write when g1 is away, reads from g2
//!   (falling back to g1, or preferring g1 when g2 is too stale) and says how stale it is.

use crate::config::Mode;
use crate::node::{Breaker, Record};

pub mod ap;
pub mod cp;
pub mod error;
pub mod queue;

pub use error::ServiceError;

/// What a write produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The version g1 assigned (`None` while queued).
    pub version: Option<u64>,
    /// The node that stored it (`None` while queued).
    pub node: Option<&'static str>,
    /// Whether a replica confirmed it (CP).
    pub replicated: bool,
    /// Whether it waits in the AP queue.
    pub queued: bool,
    /// The primary's replication offset right after the write (read-your-writes tokens).
    pub primary_offset: Option<u64>,
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
}

/// One personality.
#[derive(Debug)]
pub enum Personality {
    /// Consistency over availability.
    Cp(cp::Cp),
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
        match self {
            Personality::Cp(cp) => cp.write(key, value).await,
            Personality::Ap(ap) => ap.write(key, value).await,
        }
    }

    /// Reads `key`.
    pub async fn read(&self, key: &str) -> Result<ReadAnswer, ServiceError> {
        match self {
            Personality::Cp(cp) => cp.read(key).await,
            Personality::Ap(ap) => ap.read(key).await,
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

/// The audit line of every write (`WRITE`); keys are fine in logs, never in metric labels.
pub(crate) fn audit_write(
    mode: Mode,
    key: &str,
    value_bytes: usize,
    version: Option<u64>,
    outcome: &str,
    node: Option<&str>,
) {
    tracing::info!(
        mode = mode.as_str(),
        key,
        value_bytes,
        version,
        outcome,
        node,
        "WRITE"
    );
}
