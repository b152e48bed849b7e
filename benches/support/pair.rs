//! g1 and g2 as two real redis-server processes on free ports under `dir`, g2 replicating from
//! g1 directly or through the `cluster_g1` proxy, the link up.

use std::path::Path;
use std::time::Duration;

use caplab::faults::{CLUSTER_G1, FaultDriver, ProxySpec};
use caplab::lab::ports::free_port;
use caplab::lab::redis_node::{RedisNode, RedisNodeSpec};

use super::Failure;

/// Starts the pair and waits (up to `link_within`) until g2's replication link is up.
pub async fn direct_pair(
    dir: &Path,
    link_within: Duration,
) -> Result<(RedisNode, RedisNode), Failure> {
    let g1 = RedisNode::start(RedisNodeSpec::primary("g1", free_port()?, &dir.join("g1"))).await?;
    let g2 = RedisNode::start(RedisNodeSpec::replica(
        "g2",
        free_port()?,
        &dir.join("g2"),
        "127.0.0.1",
        g1.port(),
    ))
    .await?;
    g2.wait_link_up(link_within).await?;
    Ok((g1, g2))
}

/// The pair with g2 replicating through a `cluster_g1` proxy of `faults` (the lab's link that
/// a replication cut or delay acts on); waits up to 15 s for the link.
pub async fn pair_through_cluster_proxy(
    dir: &Path,
    faults: &FaultDriver,
) -> Result<(RedisNode, RedisNode), Failure> {
    let g1 = RedisNode::start(RedisNodeSpec::primary("g1", free_port()?, &dir.join("g1"))).await?;
    let cluster = free_port()?;
    let listen = |port: u16| format!("127.0.0.1:{port}");
    faults
        .ensure_proxies(&[ProxySpec::new(
            CLUSTER_G1,
            &listen(cluster),
            &listen(g1.port()),
        )])
        .await?;
    let g2 = RedisNode::start(RedisNodeSpec::replica(
        "g2",
        free_port()?,
        &dir.join("g2"),
        "127.0.0.1",
        cluster,
    ))
    .await?;
    g2.wait_link_up(Duration::from_secs(15)).await?;
    Ok((g1, g2))
}
