//! A real Redis primary and replica on free loopback ports, in a temporary directory, set up
//! as docs/design.md says. Both processes die with the [`RedisPair`] (SIGKILL by pid).

use std::time::Duration;

use caplab::lab::ports::free_port;
use caplab::lab::redis_node::{RedisNode, RedisNodeSpec};

/// g1 (primary) and g2 (its replica), already linked.
pub struct RedisPair {
    pub g1: RedisNode,
    pub g2: RedisNode,
    /// Kept so the data directories live as long as the nodes.
    pub dir: tempfile::TempDir,
}

/// Starts a primary on a free port, retrying if another process took the port first.
pub async fn start_primary(dir: &std::path::Path) -> RedisNode {
    let mut last = None;
    for _ in 0..5 {
        let port = free_port().expect("free port");
        match RedisNode::start(RedisNodeSpec::primary("g1", port, &dir.join("g1"))).await {
            Ok(node) => return node,
            Err(e) => last = Some(e),
        }
    }
    panic!("could not start redis g1: {last:?}")
}

/// Starts a replica of `upstream_port` on a free port, retrying on a port race.
pub async fn start_replica(dir: &std::path::Path, upstream_port: u16) -> RedisNode {
    let mut last = None;
    for _ in 0..5 {
        let port = free_port().expect("free port");
        let spec = RedisNodeSpec::replica("g2", port, &dir.join("g2"), "127.0.0.1", upstream_port);
        match RedisNode::start(spec).await {
            Ok(node) => return node,
            Err(e) => last = Some(e),
        }
    }
    panic!("could not start redis g2: {last:?}")
}

impl RedisPair {
    /// g1, and g2 replicating straight from g1; waits for the link to be up.
    pub async fn start() -> RedisPair {
        let dir = tempfile::tempdir().expect("tempdir");
        let g1 = start_primary(dir.path()).await;
        let g2 = start_replica(dir.path(), g1.port()).await;
        g2.wait_link_up(Duration::from_secs(10))
            .await
            .expect("replica link up");
        RedisPair { g1, g2, dir }
    }

    /// g1, and g2 replicating from `upstream_port` (a proxy in front of g1). The caller
    /// decides when the link must be up (see [`RedisNode::wait_link_up`]).
    pub async fn start_via(upstream: impl FnOnce(u16) -> u16) -> RedisPair {
        let dir = tempfile::tempdir().expect("tempdir");
        let g1 = start_primary(dir.path()).await;
        let port = upstream(g1.port());
        let g2 = start_replica(dir.path(), port).await;
        RedisPair { g1, g2, dir }
    }
}
