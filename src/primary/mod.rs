//! Following the primary: which node each app instance believes is the primary, and how it
//! learns of a promotion.
//!
//! Data path: between the mode policies and the node clients. Every layer that sends something
//! asks [`Nodes`] for the believed primary (or the replica, the other node) at the moment it
//! sends: CP's writes and fenced reads, AP's writes, reads and queue drain, session reads,
//! heartbeats and the replication poll. `g1` and `g2` name nodes, never roles
//! (docs/design.md, "Following the primary").
//!
//! | module | what it is |
//! |---|---|
//! | [`belief`] | [`Belief`]: the believed primary (an atomic), sentinel reachability, the epoch |
//! | [`sentinels`] | [`SentinelClients`]: the connections to the sentinels, `SENTINEL MASTER` |
//! | [`tracker`] | [`Tracker`]: the polling task that matches the sentinels' `runid` to a node |
//! | [`data_loss`] | [`DataLossWatch`]: a primary that comes back without its data, `/ready` held false |
//!
//! Without sentinels (`SENTINEL_URLS` empty) there is no tracker and g1 is the primary, always.

use crate::node::{Node, NodeError, NodeId};

pub mod belief;
pub mod data_loss;
pub mod sentinels;
pub mod tracker;

pub use belief::{Belief, BeliefSnapshot};
pub use data_loss::{DataLossPolicy, DataLossState, DataLossWatch};
pub use sentinels::SentinelClients;
pub use tracker::Tracker;

/// The two nodes and the belief of which one is the primary. Cloning shares them.
#[derive(Debug, Clone)]
pub struct Nodes {
    nodes: [Node; 2],
    belief: Belief,
}

impl Nodes {
    /// g1 and g2, with `belief` saying which is the primary.
    pub fn new(g1: Node, g2: Node, belief: Belief) -> Nodes {
        Nodes {
            nodes: [g1, g2],
            belief,
        }
    }

    /// g1 and g2 without sentinels: g1 is the primary, always.
    pub fn fixed(g1: Node, g2: Node) -> Nodes {
        Nodes::new(g1, g2, Belief::fixed())
    }

    /// One node by name.
    pub fn get(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    /// g1.
    pub fn g1(&self) -> &Node {
        self.get(NodeId::G1)
    }

    /// g2.
    pub fn g2(&self) -> &Node {
        self.get(NodeId::G2)
    }

    /// Both nodes, g1 first.
    pub fn both(&self) -> &[Node; 2] {
        &self.nodes
    }

    /// The node believed to be the primary now.
    pub fn primary(&self) -> &Node {
        self.get(self.belief.primary())
    }

    /// The other node: the replica, as far as this instance knows.
    pub fn replica(&self) -> &Node {
        self.get(self.belief.primary().other())
    }

    /// The belief.
    pub fn belief(&self) -> &Belief {
        &self.belief
    }

    /// Looks at a failed call: a node that answered `READONLY` is a replica now, so the
    /// sentinels are asked again at once rather than at the next poll.
    pub fn noticed(&self, error: &NodeError) {
        if error.is_not_primary() {
            tracing::info!(
                node = error.node(),
                believed = self.belief.primary().as_str(),
                "a node answered READONLY: asking the sentinels again"
            );
            self.belief.ask_again();
        }
    }
}
