//! The tracker: asks the sentinels which node is the primary, and moves the belief.
//!
//! Beside the data path, one task per app instance (only when `SENTINEL_URLS` is set). Every
//! `SENTINEL_POLL_MS`, or at once when a policy saw a node answer `READONLY`, it asks
//! `SENTINEL MASTER <name>` ([`SentinelClients`]) and matches the reported `runid` to a node by
//! the nodes' own `run_id` (`INFO server`, through the app's own g1 and g2 clients), so no
//! address has to be translated between what the sentinels see (the `cluster_*` proxies) and
//! what the app reaches (the `g1`/`g2` proxies). Right after a promotion the sentinels report
//! the new primary's address without its `runid`; the tracker then takes the `runid` the
//! sentinels gave that address while it was a replica (`SENTINEL REPLICAS`, remembered from
//! every poll). Run ids are cached; an id that matches neither
//! sends the tracker back to the nodes. With two nodes, a primary that is not g1 is g2 even
//! when g2 cannot be reached, and the other way round.
//!
//! A change of belief is logged (`PRIMARY_SWITCH`, with from, to and the epoch), counted
//! (`failovers_seen_total`) and shown (`primary_node`). The first answer only sets the belief
//! (`PRIMARY_LEARNED`). With no sentinel reachable the belief stays what it was, the
//! instance logs `SENTINELS_UNREACHABLE` once and `sentinels_reachable` goes to 0.

use std::collections::HashMap;
use std::time::Duration;

use super::sentinels::{Addr, Answer, Asked, SentinelClients};
use super::{Belief, Nodes};
use crate::metrics::Metrics;
use crate::node::NodeId;

/// The node whose cached run id is exactly `reported`, if any.
fn cached(reported: &str, known: &[Option<String>; 2]) -> Option<NodeId> {
    if reported.is_empty() {
        return None;
    }
    NodeId::BOTH
        .into_iter()
        .find(|id| known[id.index()].as_deref() == Some(reported))
}

/// Which node `reported` is, given the run ids the nodes just gave (`None`: no answer). A
/// match names the node; otherwise, if exactly one node answered, the primary is the other
/// one (there are two nodes). Nothing is concluded from an empty id, or when both answered
/// and neither matches (a primary outside the pair: a misconfiguration).
pub fn identify(reported: &str, fresh: [Option<&str>; 2]) -> Option<NodeId> {
    if reported.is_empty() {
        return None;
    }
    let [g1, g2] = fresh;
    match (g1, g2) {
        (Some(id), _) if id == reported => Some(NodeId::G1),
        (_, Some(id)) if id == reported => Some(NodeId::G2),
        (Some(_), None) => Some(NodeId::G2),
        (None, Some(_)) => Some(NodeId::G1),
        _ => None,
    }
}

/// The polling task of one app instance.
#[derive(Debug)]
pub struct Tracker {
    nodes: Nodes,
    sentinels: SentinelClients,
    poll: Duration,
    metrics: Metrics,
    run_ids: [Option<String>; 2],
    /// The last non-empty `runid` the sentinels gave each address.
    addresses: HashMap<Addr, String>,
    newest_epoch: u64,
    learned: bool,
}

impl Tracker {
    /// A tracker moving `nodes`' belief from what `sentinels` say, every `poll`.
    pub fn new(
        nodes: Nodes,
        sentinels: SentinelClients,
        poll: Duration,
        metrics: Metrics,
    ) -> Tracker {
        metrics.believe_primary(nodes.belief().primary());
        Tracker {
            nodes,
            sentinels,
            poll,
            metrics,
            run_ids: [None, None],
            addresses: HashMap::new(),
            newest_epoch: 0,
            learned: false,
        }
    }

    fn belief(&self) -> &Belief {
        self.nodes.belief()
    }

    /// Polls forever: every interval, and at once when asked.
    pub async fn run(mut self) {
        loop {
            self.poll_once().await;
            tokio::select! {
                _ = tokio::time::sleep(self.poll) => {}
                _ = self.nodes.belief().asked_again() => {}
            }
        }
    }

    /// One round: ask the sentinels, identify the node, move the belief.
    pub async fn poll_once(&mut self) {
        let Answer {
            from,
            view,
            replicas,
        } = match self.sentinels.ask(self.newest_epoch).await {
            Asked::Answer(answer) => answer,
            Asked::Behind { epoch } => {
                self.reachable(true);
                tracing::debug!(
                    epoch,
                    newest = self.newest_epoch,
                    "sentinels answered with an older configuration epoch; belief kept"
                );
                return;
            }
            Asked::Unreachable(failures) => {
                if self.reachable(false) {
                    tracing::warn!(
                        mode = self.metrics.mode(),
                        primary = self.belief().primary().as_str(),
                        errors = failures.join("; "),
                        "SENTINELS_UNREACHABLE: keeping the primary last learned"
                    );
                }
                return;
            }
        };
        if !self.reachable(true) {
            tracing::info!(
                mode = self.metrics.mode(),
                sentinel = from,
                "SENTINELS_REACHABLE"
            );
        }
        self.newest_epoch = self.newest_epoch.max(view.config_epoch);
        for (addr, run_id) in replicas
            .into_iter()
            .chain([(view.addr.clone(), view.run_id)])
        {
            if !run_id.is_empty() {
                self.addresses.insert(addr, run_id);
            }
        }
        let reported = self.addresses.get(&view.addr).cloned().unwrap_or_default();
        let Some(node) = self.identify(&reported).await else {
            tracing::debug!(
                run_id = reported,
                sentinel = from,
                "the reported primary is not identified yet; belief kept"
            );
            return;
        };
        self.take(node, view.config_epoch, &from);
    }

    /// Records reachability; returns what it was before.
    fn reachable(&self, reachable: bool) -> bool {
        self.metrics.set_sentinels_reachable(reachable);
        self.belief().set_reachable(reachable)
    }

    async fn identify(&mut self, reported: &str) -> Option<NodeId> {
        if let Some(node) = cached(reported, &self.run_ids) {
            return Some(node);
        }
        if reported.is_empty() {
            return None;
        }
        let (g1, g2) = tokio::join!(self.nodes.g1().run_id(), self.nodes.g2().run_id());
        let fresh = [g1.ok(), g2.ok()];
        for id in NodeId::BOTH {
            if let Some(run_id) = &fresh[id.index()] {
                self.run_ids[id.index()] = Some(run_id.clone());
            }
        }
        identify(reported, [fresh[0].as_deref(), fresh[1].as_deref()])
    }

    fn take(&mut self, node: NodeId, epoch: u64, from: &str) {
        let mode = self.metrics.mode();
        let changed = self.belief().take(node, epoch);
        self.metrics.believe_primary(node);
        if !self.learned {
            self.learned = true;
            tracing::info!(
                mode,
                primary = node.as_str(),
                epoch,
                sentinel = from,
                "PRIMARY_LEARNED"
            );
            return;
        }
        if let Some(previous) = changed {
            self.belief().count_switch();
            self.metrics.failover_seen();
            tracing::warn!(
                mode,
                from = previous.as_str(),
                to = node.as_str(),
                epoch,
                sentinel = from,
                "PRIMARY_SWITCH"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_id_names_its_node() {
        assert_eq!(identify("b", [Some("a"), Some("b")]), Some(NodeId::G2));
        assert_eq!(identify("a", [Some("a"), Some("b")]), Some(NodeId::G1));
    }

    #[test]
    fn with_one_node_silent_a_primary_that_is_not_the_other_is_it() {
        assert_eq!(identify("x", [Some("a"), None]), Some(NodeId::G2));
        assert_eq!(identify("x", [None, Some("b")]), Some(NodeId::G1));
        assert_eq!(identify("b", [None, Some("b")]), Some(NodeId::G2));
    }

    #[test]
    fn nothing_is_concluded_without_an_id_or_from_a_stranger() {
        assert_eq!(identify("", [Some("a"), None]), None, "empty runid");
        assert_eq!(identify("x", [None, None]), None, "no node answered");
        assert_eq!(identify("x", [Some("a"), Some("b")]), None, "a third node");
    }

    #[test]
    fn the_cache_only_ever_matches_exactly() {
        let known = [Some("a".to_string()), None];
        assert_eq!(cached("a", &known), Some(NodeId::G1));
        assert_eq!(cached("x", &known), None, "no inference from a cache");
        assert_eq!(cached("", &[Some(String::new()), None]), None);
    }
}
