//! The harness itself: a real primary/replica pair replicates, and the process controls work.

mod common;

use std::time::Duration;

use caplab::lab::redis_node::{info_field, info_replication, ping};
use common::redis::RedisPair;

#[tokio::test]
async fn pair_replicates_and_processes_can_be_paused_and_killed() {
    let mut pair = RedisPair::start().await;
    let info = info_replication(&pair.g2.url()).await.unwrap();
    assert_eq!(info_field(&info, "role"), Some("slave"));
    assert_eq!(info_field(&info, "master_link_status"), Some("up"));
    let info = info_replication(&pair.g1.url()).await.unwrap();
    assert_eq!(info_field(&info, "role"), Some("master"));
    assert_eq!(info_field(&info, "connected_slaves"), Some("1"));

    // A paused node does not answer; a resumed one does.
    pair.g2.pause().unwrap();
    assert!(ping(&pair.g2.url()).await.is_err());
    pair.g2.resume().unwrap();
    ping(&pair.g2.url()).await.unwrap();

    // A killed node refuses; a restarted one comes back as a replica and links up again.
    let old_pid = pair.g2.pid().unwrap();
    pair.g2.kill().unwrap();
    assert!(pair.g2.pid().is_none());
    assert!(ping(&pair.g2.url()).await.is_err());
    pair.g2.restart().await.unwrap();
    assert_ne!(pair.g2.pid().unwrap(), old_pid);
    pair.g2.wait_link_up(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn dropping_the_pair_kills_its_processes() {
    let pair = RedisPair::start().await;
    let pids = [pair.g1.pid().unwrap(), pair.g2.pid().unwrap()];
    drop(pair);
    for pid in pids {
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        assert!(!alive, "redis pid {pid} still runs after drop");
    }
}
