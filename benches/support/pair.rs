//! g1 and g2 as two real redis-server processes on free ports under `dir`, g2 replicating from
//! g1 directly (no proxy), the link up.

use std::path::Path;
use std::time::Duration;

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
