//! Errors of the mode-policy layer: what a CP or AP decision means for the request.
//!
//! Data path: second layer. The policies turn [`NodeError`]s into these; the HTTP layer maps
//! them to statuses in one place (`http::error`). A CP write failure says whether the write
//! certainly did not happen (`failed`) or might still appear (`indeterminate`).

use crate::node::NodeError;

/// Why a personality could not answer a request the way it promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// CP: the write may be on g1 (and may still reach g2) but no replica confirmed it.
    /// Redis does not roll it back: it may appear later.
    #[error("the write was not confirmed by a replica and may still appear: {detail}")]
    WriteIndeterminate {
        /// The version g1 assigned, if its answer arrived.
        version: Option<u64>,
        /// What happened.
        detail: String,
    },
    /// The write certainly did not happen.
    #[error("the write was not applied: {0}")]
    WriteFailed(NodeError),
    /// AP: g1 is away and the write-behind queue is full.
    #[error("g1 is unreachable and the write-behind queue is full ({capacity} writes waiting)")]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// No node this personality may read from can answer.
    #[error("no node can serve this read: {0}")]
    ReadUnavailable(String),
}

impl ServiceError {
    /// The `outcome` of a failed write, as the HTTP body and `write_outcomes_total` say it.
    pub fn outcome(&self) -> &'static str {
        match self {
            ServiceError::WriteIndeterminate { .. } => "indeterminate",
            ServiceError::WriteFailed(_) | ServiceError::ReadUnavailable(_) => "failed",
            ServiceError::QueueFull { .. } => "rejected",
        }
    }
}
