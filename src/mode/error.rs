//! Errors of the mode-policy layer: what a CP or AP decision means for the request.
//!
//! Data path: second layer. The policies turn [`NodeError`]s into these; the HTTP layer maps
//! them to statuses in one place (`http::error`). A CP write failure says whether the write
//! certainly did not happen (`failed`) or might still appear (`indeterminate`).

use crate::node::NodeError;

/// Why a personality could not answer a request the way it promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// CP: the write may be on the primary (and may still reach the replica) but no replica
    /// confirmed it. Redis does not roll it back: it may appear later.
    #[error("the write was not confirmed by a replica and may still appear: {detail}")]
    WriteIndeterminate {
        /// The node it was sent to.
        node: &'static str,
        /// The version that node assigned, if its answer arrived.
        version: Option<u64>,
        /// What happened.
        detail: String,
    },
    /// The write certainly did not happen.
    #[error("the write was not applied: {error}")]
    WriteFailed {
        /// The node it was meant for (the believed primary).
        node: &'static str,
        /// Why it was refused.
        error: NodeError,
    },
    /// AP: the primary is away and the write-behind queue is full.
    #[error(
        "the primary is unreachable and the write-behind queue is full ({capacity} writes waiting)"
    )]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// AP: the primary is away and the queue file could not record the write, so it was not
    /// queued (definite: it will not be applied).
    #[error("the primary is unreachable and the write could not be queued: {0}")]
    QueueFile(String),
    /// No node this personality may read from can answer.
    #[error("no node can serve this read: {0}")]
    ReadUnavailable(String),
}

impl ServiceError {
    /// The `outcome` of a failed write, as the HTTP body and `write_outcomes_total` say it.
    pub fn outcome(&self) -> &'static str {
        match self {
            ServiceError::WriteIndeterminate { .. } => "indeterminate",
            ServiceError::WriteFailed { .. } | ServiceError::ReadUnavailable(_) => "failed",
            ServiceError::QueueFull { .. } | ServiceError::QueueFile(_) => "rejected",
        }
    }

    /// The node a failed write was sent to, when it was sent to one.
    pub fn node(&self) -> Option<&'static str> {
        match self {
            ServiceError::WriteIndeterminate { node, .. }
            | ServiceError::WriteFailed { node, .. } => Some(node),
            ServiceError::QueueFull { .. }
            | ServiceError::QueueFile(_)
            | ServiceError::ReadUnavailable(_) => None,
        }
    }
}
