//! Which node is primary now, asked two ways: the sentinels (`SENTINEL MASTER caplab`, the
//! address they watch mapped back to a node by its `cluster_*` proxy) and each node itself
//! (the `role` of `INFO replication`). Shown by `caplab lab status`, used by [`super::Lab`].
//!
//! Beside the data path: the apps learn the primary on their own; this is the lab's view, to
//! show a failover and flag a split brain (two nodes that both say primary) or a disagreement
//! between the sentinels and the nodes.

use std::fmt;

use super::node_action::LabNode;
use super::options::LabPorts;
use super::password::{LabPassword, auth_url};
use super::redis_node::{info_field, info_replication};
use super::sentinel::{SentinelView, sentinel_view};

/// What a node says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeRole {
    /// `role:master`, with this many connected replicas.
    Primary {
        /// `connected_slaves`.
        replicas: u32,
    },
    /// `role:slave`, replicating from `master` (host, port).
    Replica {
        /// Where it replicates from.
        master: (String, u16),
        /// `master_link_status:up`.
        link_up: bool,
    },
}

/// One node's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    /// Which node.
    pub node: LabNode,
    /// Its role, or why it could not be asked.
    pub role: Result<NodeRole, String>,
}

/// One sentinel's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelState {
    /// `s1`, `s2` or `s3`.
    pub name: &'static str,
    /// Its port.
    pub port: u16,
    /// What it says of the primary, or why it could not be asked.
    pub view: Result<SentinelView, String>,
}

/// Both views of the primary, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryReport {
    /// The ports the lab runs on (to map addresses back to nodes).
    pub ports: LabPorts,
    /// Every sentinel, in order.
    pub sentinels: Vec<SentinelState>,
    /// g1 and g2.
    pub nodes: Vec<NodeState>,
}

/// The node a `cluster_*` proxy port stands for.
pub fn node_at(ports: &LabPorts, port: u16) -> Option<LabNode> {
    if port == ports.proxy_cluster_g1 {
        Some(LabNode::G1)
    } else if port == ports.proxy_cluster_g2 {
        Some(LabNode::G2)
    } else {
        None
    }
}

/// What a node says of itself, through its own port (not a proxy), authenticating with the
/// lab's password when it has one.
pub async fn node_role(
    ports: &LabPorts,
    password: Option<&LabPassword>,
    node: LabNode,
) -> Result<NodeRole, String> {
    let port = match node {
        LabNode::G1 => ports.redis_g1,
        LabNode::G2 => ports.redis_g2,
    };
    let info = info_replication(&auth_url(password, port))
        .await
        .map_err(|e| e.to_string())?;
    parse_role(&info)
}

fn parse_role(info: &str) -> Result<NodeRole, String> {
    match info_field(info, "role") {
        Some("master") => Ok(NodeRole::Primary {
            replicas: info_field(info, "connected_slaves")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
        }),
        Some("slave") => {
            let host = info_field(info, "master_host").unwrap_or("?").to_string();
            let port = info_field(info, "master_port")
                .and_then(|p| p.parse().ok())
                .ok_or("a replica without a master_port")?;
            Ok(NodeRole::Replica {
                master: (host, port),
                link_up: info_field(info, "master_link_status") == Some("up"),
            })
        }
        other => Err(format!("INFO replication gives role {other:?}")),
    }
}

/// The sentinels' primary: the node at the address of the newest configuration (highest
/// `config-epoch`) any answering sentinel reports, which is the one every sentinel converges
/// to. `None` when no sentinel answers or the address is not a `cluster_*` proxy.
pub async fn primary_by_sentinels(
    ports: &LabPorts,
    password: Option<&LabPassword>,
) -> (Option<LabNode>, Vec<SentinelState>) {
    let mut states = Vec::new();
    for (name, port) in ports.sentinels() {
        let view = sentinel_view(&auth_url(password, port))
            .await
            .map_err(|e| e.to_string());
        states.push(SentinelState { name, port, view });
    }
    (newest(ports, &states), states)
}

/// The node the newest configuration among the sentinels' answers `states` names (see
/// [`primary_by_sentinels`]), for a caller that asked them itself.
pub fn newest(ports: &LabPorts, states: &[SentinelState]) -> Option<LabNode> {
    states
        .iter()
        .filter_map(|s| s.view.as_ref().ok())
        .max_by_key(|v| v.config_epoch)
        .and_then(|v| node_at(ports, v.addr.1))
}

impl PrimaryReport {
    /// Asks the three sentinels and both nodes, with the lab's password when it has one.
    pub async fn probe(ports: &LabPorts, password: Option<&LabPassword>) -> PrimaryReport {
        let (_, sentinels) = primary_by_sentinels(ports, password).await;
        let mut nodes = Vec::new();
        for node in [LabNode::G1, LabNode::G2] {
            nodes.push(NodeState {
                node,
                role: node_role(ports, password, node).await,
            });
        }
        PrimaryReport {
            ports: *ports,
            sentinels,
            nodes,
        }
    }

    /// The primary according to the sentinels (see [`primary_by_sentinels`]).
    pub fn by_sentinels(&self) -> Option<LabNode> {
        newest(&self.ports, &self.sentinels)
    }

    /// The nodes that say they are primary.
    pub fn claimants(&self) -> Vec<LabNode> {
        self.nodes
            .iter()
            .filter(|n| matches!(n.role, Ok(NodeRole::Primary { .. })))
            .map(|n| n.node)
            .collect()
    }

    /// What is wrong, if anything: a split brain, no primary, or the sentinels and the nodes
    /// naming different primaries.
    pub fn problem(&self) -> Option<String> {
        let claimants = self.claimants();
        let sentinels = self.by_sentinels();
        let said = match sentinels {
            Some(node) => format!("the sentinels say {node}"),
            None => "the sentinels name no node".to_string(),
        };
        match (claimants.as_slice(), sentinels) {
            ([a, b], _) => Some(format!(
                "SPLIT BRAIN: {a} and {b} both say they are primary ({said})"
            )),
            ([], _) => Some(format!("no node says it is primary ({said})")),
            ([one], Some(node)) if *one == node => None,
            ([one], _) => Some(format!("{said}, but {one} says it is the primary")),
            _ => Some(format!("{} nodes say primary ({said})", claimants.len())),
        }
    }

    /// The detail of one sentinel, for a status line.
    pub fn sentinel_detail(&self, state: &SentinelState) -> (bool, String) {
        match &state.view {
            Ok(view) => {
                let primary = match node_at(&self.ports, view.addr.1) {
                    Some(node) => node.to_string(),
                    None => format!("{}:{}", view.addr.0, view.addr.1),
                };
                (
                    view.other_sentinels >= 2,
                    format!(
                        "primary {primary} (epoch {}, flags {}), sees {} other sentinels, {} replica(s)",
                        view.config_epoch, view.flags, view.other_sentinels, view.replicas
                    ),
                )
            }
            Err(e) => (false, e.clone()),
        }
    }

    /// The detail of one node, for a status line: healthy when it is a primary, or a
    /// replica whose link is up.
    pub fn node_detail(&self, node: LabNode) -> (bool, String) {
        let Some(state) = self.nodes.iter().find(|n| n.node == node) else {
            return (false, "not asked".to_string());
        };
        match &state.role {
            Ok(NodeRole::Primary { replicas }) => {
                (true, format!("role master, {replicas} replica(s)"))
            }
            Ok(NodeRole::Replica { master, link_up }) => {
                let of = match node_at(&self.ports, master.1) {
                    Some(n) => format!("{n} through cluster_{n}"),
                    None => format!("{}:{}", master.0, master.1),
                };
                let link = if *link_up { "up" } else { "down" };
                (*link_up, format!("role slave of {of}, link {link}"))
            }
            Err(e) => (false, e.clone()),
        }
    }
}

impl fmt::Display for PrimaryReport {
    /// One line: the primary now and, when there is one, what is wrong.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let epoch = self
            .sentinels
            .iter()
            .filter_map(|s| s.view.as_ref().ok())
            .map(|v| v.config_epoch)
            .max();
        match (self.by_sentinels(), epoch) {
            (Some(node), Some(epoch)) => write!(
                f,
                "primary now: {node} (the sentinels, config epoch {epoch}"
            )?,
            _ => write!(f, "primary now: unknown (the sentinels name no node")?,
        }
        let roles: Vec<String> = self
            .nodes
            .iter()
            .map(|n| match &n.role {
                Ok(NodeRole::Primary { .. }) => format!("{} says master", n.node),
                Ok(NodeRole::Replica { .. }) => format!("{} says replica", n.node),
                Err(_) => format!("{} does not answer", n.node),
            })
            .collect();
        write!(f, "; {})", roles.join(", "))?;
        if let Some(problem) = self.problem() {
            write!(f, "\nWARNING: {problem}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(port: u16, epoch: u64) -> SentinelView {
        SentinelView {
            addr: ("127.0.0.1".into(), port),
            run_id: "x".into(),
            config_epoch: epoch,
            flags: "master".into(),
            other_sentinels: 2,
            replicas: 1,
        }
    }

    fn report(
        views: [Result<SentinelView, String>; 3],
        roles: [Result<NodeRole, String>; 2],
    ) -> PrimaryReport {
        let ports = LabPorts::default();
        let sentinels = ports
            .sentinels()
            .into_iter()
            .zip(views)
            .map(|((name, port), view)| SentinelState { name, port, view })
            .collect();
        let nodes = [LabNode::G1, LabNode::G2]
            .into_iter()
            .zip(roles)
            .map(|(node, role)| NodeState { node, role })
            .collect();
        PrimaryReport {
            ports,
            sentinels,
            nodes,
        }
    }

    fn replica_of(port: u16) -> Result<NodeRole, String> {
        Ok(NodeRole::Replica {
            master: ("127.0.0.1".into(), port),
            link_up: true,
        })
    }

    const PRIMARY: Result<NodeRole, String> = Ok(NodeRole::Primary { replicas: 1 });

    #[test]
    fn the_newest_configuration_names_the_primary() {
        let p = LabPorts::default();
        let (c1, c2) = (p.proxy_cluster_g1, p.proxy_cluster_g2);
        let r = report(
            [Ok(view(c1, 0)), Ok(view(c2, 1)), Err("down".into())],
            [replica_of(c2), PRIMARY],
        );
        assert_eq!(r.by_sentinels(), Some(LabNode::G2));
        assert_eq!(r.problem(), None);
        let line = r.to_string();
        assert!(
            line.starts_with(
                "primary now: g2 (the sentinels, config epoch 1; g1 says replica, g2 says master)"
            ),
            "{line}"
        );
        assert!(
            r.node_detail(LabNode::G1)
                .1
                .contains("slave of g2 through cluster_g2")
        );
    }

    #[test]
    fn two_primaries_are_a_split_brain() {
        let p = LabPorts::default();
        let r = report(
            [
                Ok(view(p.proxy_cluster_g2, 1)),
                Ok(view(p.proxy_cluster_g2, 1)),
                Ok(view(p.proxy_cluster_g2, 1)),
            ],
            [PRIMARY, PRIMARY],
        );
        let problem = r.problem().unwrap_or_default();
        assert!(problem.contains("SPLIT BRAIN: g1 and g2"), "{problem}");
        assert!(r.to_string().contains("WARNING: SPLIT BRAIN"));
    }

    #[test]
    fn the_sentinels_and_the_nodes_can_disagree() {
        let p = LabPorts::default();
        let r = report(
            [
                Ok(view(p.proxy_cluster_g2, 1)),
                Err("x".into()),
                Err("x".into()),
            ],
            [PRIMARY, replica_of(p.proxy_cluster_g1)],
        );
        assert_eq!(
            r.problem().as_deref(),
            Some("the sentinels say g2, but g1 says it is the primary")
        );
        let none = report(
            [Err("x".into()), Err("x".into()), Err("x".into())],
            [replica_of(1), Err("gone".into())],
        );
        assert_eq!(none.by_sentinels(), None);
        assert!(
            none.problem()
                .unwrap_or_default()
                .starts_with("no node says")
        );
    }

    #[test]
    fn roles_are_read_from_info_replication() {
        let primary = "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n";
        assert_eq!(parse_role(primary), Ok(NodeRole::Primary { replicas: 1 }));
        let replica = "role:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:26382\r\nmaster_link_status:down\r\n";
        assert_eq!(
            parse_role(replica),
            Ok(NodeRole::Replica {
                master: ("127.0.0.1".into(), 26382),
                link_up: false
            })
        );
        assert!(parse_role("role:sentinel").is_err());
    }
}
