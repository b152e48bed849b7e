//! The whole docs/design.md topology in-process, for the scenario runner's tests: a real Redis
//! primary and replica (g2 replicating through the embedded proxy's `cluster_g1` proxy, with
//! `cluster_g2` in front of g2; no sentinels, so nothing fails over), proxies `g1` and `g2`
//! in front of them, and CP and AP apps on port 0 talking to the nodes
//! through those proxies, with [`test_config`]'s short breaker settings but a 400 ms WAIT and
//! 800 ms network timeout. Everything stops when the [`Topology`] is shut down or dropped.

use std::time::{Duration, Instant};

use caplab::config::Mode;
use caplab::lab::{LabNode, NodeAction};
use caplab::scenario::{Endpoints, LabControl};

use super::app::{TestApp, test_config};
use super::proxy::TestProxy;
use super::redis::RedisPair;

/// Proxy, nodes and both apps.
pub struct Topology {
    pub proxy: TestProxy,
    pub pair: RedisPair,
    pub cp: TestApp,
    pub ap: TestApp,
}

impl Topology {
    /// Starts everything and waits until CP can confirm a write (the replica streams).
    pub async fn start() -> Topology {
        let proxy = TestProxy::start();
        let pair = proxy.replication_pair().await;
        let routes = proxy.front_nodes(&pair).await;
        let app = |mode| {
            let mut c = test_config(mode, &pair);
            routes.apply(&mut c);
            // Looser than test_config's: a loaded machine must not turn a healthy
            // baseline write into an indeterminate one (the runs assert none before a fault).
            c.cp_wait_timeout = Duration::from_millis(400);
            c.network_timeout = Duration::from_millis(800);
            c
        };
        let cp = TestApp::start(app(Mode::Cp)).await;
        let ap = TestApp::start(app(Mode::Ap)).await;
        // Right after the first sync a WAIT may count 0 replicas for up to a second.
        let deadline = Instant::now() + Duration::from_secs(15);
        while cp.put("/kv/topology-ready", b"1").await.status != 200 {
            assert!(Instant::now() < deadline, "CP never confirmed a write");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Topology {
            proxy,
            pair,
            cp,
            ap,
        }
    }

    /// Where the runner finds it.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            cp: format!("http://{}", self.cp.addr),
            ap: format!("http://{}", self.ap.addr),
            toxiproxy: self.proxy.api(),
        }
    }

    /// Stops both apps (the nodes and the proxy stop when dropped).
    pub async fn shutdown(self) {
        let Topology {
            proxy,
            pair,
            cp,
            ap,
        } = self;
        cp.shutdown().await;
        ap.shutdown().await;
        drop(pair);
        drop(proxy);
    }
}

/// A [`LabControl`] over the topology's own Redis processes.
pub struct PairLab<'a> {
    pub pair: &'a mut RedisPair,
    /// Every action applied, in order.
    pub applied: Vec<(LabNode, NodeAction)>,
}

impl LabControl for PairLab<'_> {
    async fn node_action(&mut self, node: LabNode, action: NodeAction) -> Result<(), String> {
        let n = match node {
            LabNode::G1 => &mut self.pair.g1,
            LabNode::G2 => &mut self.pair.g2,
        };
        let r = match action {
            NodeAction::Kill => n.kill(),
            NodeAction::Stop => n.pause(),
            NodeAction::Continue => n.resume(),
            NodeAction::Restart => n.restart().await,
        };
        r.map_err(|e| e.to_string())?;
        self.applied.push((node, action));
        Ok(())
    }
}
