//! The sentinel harness against real Redis Sentinel: the proxy layout of docs/design.md
//! produces a promotion when the primary is isolated from the cluster (and the isolated
//! primary's lone write is thrown away when it rejoins), and no promotion when both cluster
//! links are cut (a plain replication cut).

mod common;

use std::time::Duration;

use caplab::lab::redis_node::{info_field, info_replication};
use common::app::raw_client;
use common::proxy::TestProxy;
use common::sentinels::{FailoverPair, PROMOTION_WITHIN, REJOIN_WITHIN};
use fred::interfaces::KeysInterface;

async fn set(url: &str, key: &str, value: &str) {
    let client = raw_client(url).await;
    let () = client
        .set(key, value, None, None, false)
        .await
        .expect("SET");
}

async fn get(url: &str, key: &str) -> Option<String> {
    let client = raw_client(url).await;
    client.get(key).await.expect("GET")
}

/// The node's role, or "?" while it does not answer (a node that is starting, or a probe that
/// timed out on a loaded machine): the callers wait for a role within a deadline.
async fn role(url: &str) -> String {
    match info_replication(url).await {
        Ok(info) => info_field(&info, "role").unwrap_or("?").to_string(),
        Err(_) => "?".to_string(),
    }
}

async fn wait_role(url: &str, want: &str, within: Duration) {
    let start = std::time::Instant::now();
    while role(url).await != want {
        assert!(start.elapsed() < within, "{url} never became {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn isolating_the_primary_promotes_the_replica_and_loses_the_lone_write() {
    let proxy = TestProxy::start();
    let pair = FailoverPair::start(&proxy).await;
    set(&pair.g1.url(), "before", "1").await;
    let start = std::time::Instant::now();
    while get(&pair.g2.url(), "before").await.as_deref() != Some("1") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "g2 never got the write"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    proxy.set_enabled("cluster_g1", false).await;
    let took = pair
        .wait_primary_at(pair.cluster_g2, PROMOTION_WITHIN)
        .await;
    eprintln!("promotion seen by s1 {took:?} after the cut");
    wait_role(&pair.g2.url(), "master", Duration::from_secs(5)).await;
    // The isolated g1 still takes writes from whoever reaches it: split brain.
    assert_eq!(role(&pair.g1.url()).await, "master");
    set(&pair.g1.url(), "lost", "1").await;
    assert_eq!(pair.view().await.config_epoch, 1);

    proxy.set_enabled("cluster_g1", true).await;
    wait_role(&pair.g1.url(), "slave", REJOIN_WITHIN).await;
    pair.g1
        .wait_link_up(Duration::from_secs(15))
        .await
        .expect("g1 follows g2");
    assert_eq!(get(&pair.g1.url(), "before").await.as_deref(), Some("1"));
    assert_eq!(
        get(&pair.g1.url(), "lost").await,
        None,
        "the lone write survived the rejoin"
    );
    // Replication now flows the other way, through cluster_g2.
    let info = info_replication(&pair.g1.url()).await.unwrap();
    assert_eq!(
        info_field(&info, "master_port"),
        Some(pair.cluster_g2.to_string().as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cutting_both_cluster_links_stops_replication_without_a_promotion() {
    let proxy = TestProxy::start();
    let pair = FailoverPair::start(&proxy).await;
    // The replica's link first, so no sentinel ever sees the primary down while it still
    // reaches the replica.
    proxy.set_enabled("cluster_g2", false).await;
    proxy.set_enabled("cluster_g1", false).await;
    set(&pair.g1.url(), "during", "1").await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(role(&pair.g2.url()).await, "slave", "g2 was promoted");
    assert_eq!(get(&pair.g2.url(), "during").await, None);
    // Heal the primary's link first.
    proxy.set_enabled("cluster_g1", true).await;
    proxy.set_enabled("cluster_g2", true).await;
    pair.g2
        .wait_link_up(Duration::from_secs(15))
        .await
        .expect("g2 links up again");
    let start = std::time::Instant::now();
    while get(&pair.g2.url(), "during").await.as_deref() != Some("1") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "g2 never caught up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(role(&pair.g1.url()).await, "master");
    assert_eq!(pair.view().await.addr.1, pair.cluster_g1);
    assert_eq!(pair.view().await.config_epoch, 0);
}
