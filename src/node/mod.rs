//! The node layer: how the service talks to one Redis node.
//!
//! Data path: third layer, under the mode policies and over Redis. Each node (`g1`, `g2`) is a
//! [`Node`]: a fred client with explicit timeouts, one attempt and fail-fast while
//! disconnected, behind its own [`Breaker`]. Every failure becomes a [`NodeError`] marked
//! definite or indefinite. [`record`] is the stored format and its Lua script, [`mod@write`] the
//! write path that runs it; [`WaitPool`] is
//! CP's set of dedicated write + `WAIT` connections; [`Role`] reads replication offsets, and
//! [`session_read`] brackets a session's read with them.

pub mod breaker;
pub mod client;
pub mod error;
pub mod record;
pub mod role;
pub mod session_read;
pub mod wait_pool;
pub mod write;

/// Which Redis node: the primary `g1` or the replica `g2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeId {
    /// The primary.
    G1,
    /// The replica.
    G2,
}

impl NodeId {
    /// `g1` or `g2`, as in metric labels, JSON bodies and proxy names.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeId::G1 => "g1",
            NodeId::G2 => "g2",
        }
    }
}

pub use breaker::{Breaker, BreakerSettings, BreakerSnapshot, BreakerState};
pub use client::{Node, WriteAck};
pub use error::{Certainty, NodeError};
pub use record::{Record, ScriptReply, WriteRequest};
pub use role::Role;
pub use session_read::ObservedRead;
pub use wait_pool::WaitPool;
