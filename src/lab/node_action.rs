//! The Redis nodes of the local lab and what a scenario's node steps may do to them.
//!
//! Shared vocabulary between the lab (which owns the `redis-server` processes) and the
//! scenario runner (whose timeline says "kill g2 at 10 s, restart it at 20 s"). Network faults
//! are not here: they go through Toxiproxy ([`crate::faults`]); these act on the processes.

use std::fmt;
use std::str::FromStr;

/// One Redis node of the topology. The names name nodes, not roles: after a failover `g2`
/// is the primary and `g1` its replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabNode {
    /// Node g1, the primary at start.
    G1,
    /// Node g2, the replica at start.
    G2,
}

/// What a node step does to a Redis process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeAction {
    /// SIGKILL: the process dies at once, with no chance to save.
    Kill,
    /// SIGSTOP: the process freezes; its sockets stay open and silent.
    Stop,
    /// SIGCONT: a stopped process resumes.
    Continue,
    /// Start the node again on the same port and data directory (after a kill), or stop it
    /// gracefully and start it again (while it runs).
    Restart,
}

impl LabNode {
    /// The name used in the design, the proxies and scenario files.
    pub fn name(self) -> &'static str {
        match self {
            LabNode::G1 => "g1",
            LabNode::G2 => "g2",
        }
    }

    /// The other node of the pair.
    pub fn other(self) -> LabNode {
        match self {
            LabNode::G1 => LabNode::G2,
            LabNode::G2 => LabNode::G1,
        }
    }
}

impl NodeAction {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            NodeAction::Kill => "kill",
            NodeAction::Stop => "stop",
            NodeAction::Continue => "continue",
            NodeAction::Restart => "restart",
        }
    }
}

impl fmt::Display for LabNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for NodeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A node or action name that is not one of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}` (expected one of: {expected})")]
pub struct UnknownName {
    what: &'static str,
    given: String,
    expected: &'static str,
}

impl FromStr for LabNode {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "g1" => Ok(LabNode::G1),
            "g2" => Ok(LabNode::G2),
            _ => Err(UnknownName {
                what: "node",
                given: s.to_owned(),
                expected: "g1, g2",
            }),
        }
    }
}

impl FromStr for NodeAction {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "kill" => Ok(NodeAction::Kill),
            "stop" => Ok(NodeAction::Stop),
            "continue" => Ok(NodeAction::Continue),
            "restart" => Ok(NodeAction::Restart),
            _ => Err(UnknownName {
                what: "node action",
                given: s.to_owned(),
                expected: "kill, stop, continue, restart",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for node in [LabNode::G1, LabNode::G2] {
            assert_eq!(node.name().parse::<LabNode>(), Ok(node));
        }
        for action in [
            NodeAction::Kill,
            NodeAction::Stop,
            NodeAction::Continue,
            NodeAction::Restart,
        ] {
            assert_eq!(action.name().parse::<NodeAction>(), Ok(action));
        }
    }

    #[test]
    fn unknown_names_are_refused_with_the_expected_ones() {
        let err = "g3".parse::<LabNode>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown node `g3` (expected one of: g1, g2)")
        );
        assert!("pause".parse::<NodeAction>().is_err());
    }
}
