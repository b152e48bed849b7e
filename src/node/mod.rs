//! The node layer: how the service talks to one Redis node.
//!
//! Data path: third layer, under the mode policies and over Redis. Each node (`g1`, `g2`) is a
//! [`Node`]: a fred client with explicit timeouts, one attempt and fail-fast while
//! disconnected, behind its own [`Breaker`]. Every failure becomes a [`NodeError`] marked
//! definite or indefinite (a node that answers `READONLY` is a replica now:
//! [`NodeError::NotPrimary`]). Which node is the primary is not this layer's business: the
//! policies ask [`crate::primary`] and then call the node it names.
//!
//! | module | what it is |
//! |---|---|
//! | [`client`] | [`Node`]: the fred client behind its breaker; reads, heartbeats, INFO, ROLE |
//! | [`breaker`] | [`Breaker`]: failsafe's state machine with state, counts, logs and evidence-driven trials |
//! | [`probe`] | a node's `PING` while its breaker is open: evidence that it is back |
//! | [`error`] | [`NodeError`], each marked definite or indefinite |
//! | [`record`] | the stored format and its Lua script |
//! | [`mod@write`] | the write path that runs the script (AP alone, CP with `ROLE` and `WAIT`) |
//! | [`cas`] | compare-and-set: its script, and the same pipelines as a write |
//! | [`wait_pool`] | [`WaitPool`]: CP's dedicated connections to one node, for `WAIT` |
//! | [`fence`] | [`Fence`]: CP's read fence, rounds of fence write + `WAIT` shared by reads |
//! | [`role`] | [`Role`]: a node's `ROLE` (primary or replica, offset) |
//! | [`session_read`] | a session's read bracketed by `ROLE` offsets |

pub mod breaker;
pub mod cas;
pub mod client;
pub mod error;
pub mod fence;
pub mod probe;
pub mod record;
pub mod role;
pub mod session_read;
pub mod wait_pool;
pub mod write;

/// Which Redis node. The names are nodes, never roles: g1 is the primary at start, and after
/// a failover g2 is (docs/design.md, "Topology"); which one is primary now is
/// [`crate::primary::Belief`]'s to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeId {
    /// The node that is primary at start.
    G1,
    /// The node that is the replica at start.
    G2,
}

impl NodeId {
    /// Both nodes, g1 first.
    pub const BOTH: [NodeId; 2] = [NodeId::G1, NodeId::G2];

    /// `g1` or `g2`, as in metric labels, JSON bodies and proxy names.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeId::G1 => "g1",
            NodeId::G2 => "g2",
        }
    }

    /// The other node of the pair.
    pub fn other(self) -> NodeId {
        match self {
            NodeId::G1 => NodeId::G2,
            NodeId::G2 => NodeId::G1,
        }
    }

    /// 0 for g1, 1 for g2: the index of per-node arrays.
    pub fn index(self) -> usize {
        match self {
            NodeId::G1 => 0,
            NodeId::G2 => 1,
        }
    }
}

pub use breaker::{Breaker, BreakerSettings, BreakerSnapshot, BreakerState};
pub use cas::{CasAck, CasReply, CasRequest};
pub use client::{BeatOffsets, Node, WriteAck};
pub use error::{Certainty, NodeError};
pub use fence::{Fence, FenceProof, fence_key};
pub use record::{Record, ScriptReply, WriteRequest};
pub use role::Role;
pub use session_read::ObservedRead;
pub use wait_pool::WaitPool;
