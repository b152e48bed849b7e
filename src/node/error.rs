//! Errors of the node-client layer, each marked definite or indefinite.
//!
//! Data path: a fred error or a breaker refusal becomes a [`NodeError`] here, in one place; the
//! mode policies above decide what it means for the request (CP: `failed` or `indeterminate`;
//! AP: queue the write or read the other node). Jepsen's rule: a failure is *definite* only
//! when the operation certainly did not happen (refused before anything was sent, or the server
//! rejected it); a timeout or a connection lost after sending is *indefinite*.

use std::time::Duration;

use fred::error::{Error as FredError, ErrorKind};

use super::breaker::{BreakerState, Rejected};

/// Whether a failed operation certainly did not take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certainty {
    /// It did not happen.
    Definite,
    /// It may have happened, or may still happen.
    Indefinite,
}

/// Why a call to a Redis node did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The node's breaker is open (or half-open with its trial under way): nothing was sent.
    #[error("circuit breaker {node} is {}: failing fast without calling it", state.as_str())]
    BreakerOpen {
        /// The breaker.
        node: &'static str,
        /// Its state.
        state: BreakerState,
    },
    /// The client has no connection to the node (refused, or reconnecting): nothing was sent.
    #[error(
        "{node} is not connected (connection refused or reconnecting); nothing was sent ({detail})"
    )]
    NotConnected {
        /// The node.
        node: &'static str,
        /// What fred said.
        detail: String,
    },
    /// Every dedicated CP write connection stayed busy: nothing was sent.
    #[error(
        "no dedicated write connection to {node} came free within {waited:?}; nothing was sent"
    )]
    PoolExhausted {
        /// The node.
        node: &'static str,
        /// How long the write waited.
        waited: Duration,
    },
    /// No answer within the network timeout: the command may have run.
    #[error("{node} did not answer within {timeout:?}")]
    Timeout {
        /// The node.
        node: &'static str,
        /// The timeout.
        timeout: Duration,
    },
    /// The connection broke while the command was out: it may have run.
    #[error("the connection to {node} was lost: {detail}")]
    ConnectionLost {
        /// The node.
        node: &'static str,
        /// What fred said.
        detail: String,
    },
    /// The node answered `READONLY`: it is a replica now (a failover made another node the
    /// primary), so the write was refused and nothing was applied.
    #[error("{node} is a replica now and refused the write (READONLY); nothing was applied")]
    NotPrimary {
        /// The node.
        node: &'static str,
    },
    /// The node answered with an error reply: it refused the command.
    #[error("{node} refused the command: {detail}")]
    Redis {
        /// The node.
        node: &'static str,
        /// The error reply.
        detail: String,
    },
    /// The node answered something this client does not understand.
    #[error("unexpected answer from {node}: {detail}")]
    Protocol {
        /// The node.
        node: &'static str,
        /// What was wrong with it.
        detail: String,
    },
}

impl NodeError {
    /// Translates a fred error from a call to `node` made with `timeout`.
    pub fn from_fred(node: &'static str, timeout: Duration, error: &FredError) -> NodeError {
        match error.kind() {
            // fred answers `Canceled` from its fail-fast check, before the command is queued.
            ErrorKind::Canceled => NodeError::NotConnected {
                node,
                detail: error.details().to_string(),
            },
            ErrorKind::Timeout => NodeError::Timeout { node, timeout },
            ErrorKind::IO => NodeError::ConnectionLost {
                node,
                detail: error.details().to_string(),
            },
            ErrorKind::Protocol | ErrorKind::Parse | ErrorKind::NotFound => NodeError::Protocol {
                node,
                detail: error.details().to_string(),
            },
            _ if error.details().starts_with("READONLY") => NodeError::NotPrimary { node },
            _ => NodeError::Redis {
                node,
                detail: error.details().to_string(),
            },
        }
    }

    /// The node the failure is about (`g1`, `g2`).
    pub fn node(&self) -> &'static str {
        match self {
            NodeError::BreakerOpen { node, .. }
            | NodeError::NotConnected { node, .. }
            | NodeError::PoolExhausted { node, .. }
            | NodeError::Timeout { node, .. }
            | NodeError::ConnectionLost { node, .. }
            | NodeError::NotPrimary { node }
            | NodeError::Redis { node, .. }
            | NodeError::Protocol { node, .. } => node,
        }
    }

    /// A breaker refusal.
    pub fn rejected(rejected: Rejected) -> NodeError {
        NodeError::BreakerOpen {
            node: rejected.name,
            state: rejected.state,
        }
    }

    /// Whether the command certainly did not run.
    pub fn certainty(&self) -> Certainty {
        match self {
            NodeError::BreakerOpen { .. }
            | NodeError::NotConnected { .. }
            | NodeError::PoolExhausted { .. }
            | NodeError::NotPrimary { .. }
            | NodeError::Redis { .. } => Certainty::Definite,
            NodeError::Timeout { .. }
            | NodeError::ConnectionLost { .. }
            | NodeError::Protocol { .. } => Certainty::Indefinite,
        }
    }

    /// Whether this failure says the node is unreachable (counted by the breaker and by
    /// `db_connection_failures_total`). A refusal by the breaker itself is not counted again,
    /// nor is an error reply (the node answered).
    pub fn is_connectivity(&self) -> bool {
        matches!(
            self,
            NodeError::NotConnected { .. }
                | NodeError::Timeout { .. }
                | NodeError::ConnectionLost { .. }
        )
    }

    /// Whether the node said it is a replica now (`READONLY`).
    pub fn is_not_primary(&self) -> bool {
        matches!(self, NodeError::NotPrimary { .. })
    }

    /// Whether the server said its script cache does not hold our script.
    pub fn is_noscript(&self) -> bool {
        matches!(self, NodeError::Redis { detail, .. } if detail.starts_with("NOSCRIPT"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(100);

    #[test]
    fn fred_kinds_map_to_definite_or_indefinite() {
        let cases = [
            (ErrorKind::Canceled, Certainty::Definite, true),
            (ErrorKind::Timeout, Certainty::Indefinite, true),
            (ErrorKind::IO, Certainty::Indefinite, true),
            (ErrorKind::Unknown, Certainty::Definite, false), // an -ERR reply
            (ErrorKind::Parse, Certainty::Indefinite, false),
        ];
        for (kind, certainty, connectivity) in cases {
            let err = NodeError::from_fred("g1", T, &FredError::new(kind.clone(), "x"));
            assert_eq!(err.certainty(), certainty, "{kind:?}");
            assert_eq!(err.is_connectivity(), connectivity, "{kind:?}");
        }
    }

    #[test]
    fn readonly_is_a_definite_not_primary_for_the_node_that_said_it() {
        let err = NodeError::from_fred(
            "g1",
            T,
            &FredError::new(
                ErrorKind::Unknown,
                "READONLY You can't write against a read only replica. script: 1f, on @user_script:1.",
            ),
        );
        assert_eq!(err, NodeError::NotPrimary { node: "g1" });
        assert!(err.is_not_primary());
        assert_eq!(err.certainty(), Certainty::Definite);
        assert!(!err.is_connectivity());
        assert_eq!(err.node(), "g1");
        assert!(err.to_string().contains("replica now"), "{err}");
    }

    #[test]
    fn noscript_is_recognised() {
        let err = NodeError::from_fred(
            "g1",
            T,
            &FredError::new(ErrorKind::Unknown, "NOSCRIPT No matching script."),
        );
        assert!(err.is_noscript());
        assert!(err.to_string().contains("g1 refused"));
    }
}
