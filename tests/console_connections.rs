//! The connections the console's tick keeps: a real sentinel asked again and again over one
//! connection, which follows the sentinel through a kill and a restart on the same port; and
//! the proxy API's listing read over a keep-alive HTTP client, the same as the fault driver
//! reads it.

mod common;

use std::time::Duration;

use caplab::console::connections::{KeptSentinel, proxies};
use caplab::faults::FaultDriver;
use caplab::lab::ports::free_port;
use caplab::lab::redis_node::info_field;
use caplab::lab::sentinel::{Sentinel, SentinelSpec};
use common::proxy::TestProxy;
use fred::prelude::*;
use fred::types::InfoKind;

/// `total_connections_received` of the sentinel at `url`, read over a connection of its own
/// (which counts too).
async fn connections_received(url: &str) -> u64 {
    let client = Client::new(Config::from_url(url).expect("url"), None, None, None);
    client.init().await.expect("connect");
    let info: String = client
        .info(Some(InfoKind::Stats))
        .await
        .expect("INFO stats");
    let _ = client.quit().await;
    info_field(&info, "total_connections_received")
        .and_then(|n| n.parse().ok())
        .expect("total_connections_received")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_sentinel_connection_is_reused_and_follows_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let primary = common::redis::start_primary(dir.path()).await;
    let port = free_port().expect("free port");
    let spec = SentinelSpec::new(
        "s1",
        port,
        &dir.path().join("s1"),
        "127.0.0.1",
        primary.port(),
    );
    let mut sentinel = Sentinel::start(spec).await.expect("start a sentinel");
    let mut kept = KeptSentinel::new("s1", port, None);
    assert!(!kept.connected());

    // Ten asks, one connection: the sentinel counts this test's two INFO connections and
    // the kept one (a connection per ask would be twelve).
    let before = connections_received(&sentinel.url()).await;
    for _ in 0..10 {
        let view = kept.ask().await.expect("SENTINEL MASTER");
        assert_eq!(view.addr.1, primary.port());
    }
    let after = connections_received(&sentinel.url()).await;
    assert!(
        after - before <= 3,
        "{} connections for ten asks: the connection is not kept",
        after - before
    );
    assert!(kept.connected());

    // Killed: the ask fails and the connection is dropped.
    sentinel.kill().expect("kill the sentinel");
    let failed = kept.state().await;
    assert!(failed.view.is_err(), "{failed:?}");
    assert!(!kept.connected());
    // Restarted on its port: the next ask connects again.
    sentinel.restart().await.expect("restart the sentinel");
    let view = kept.ask().await.expect("asked again after the restart");
    assert_eq!(view.addr.1, primary.port());
    assert!(kept.connected());

    // Killed and restarted between two asks: the kept connection is stale; at most one ask
    // fails on it, and the next one connects afresh.
    sentinel.restart().await.expect("restart the sentinel");
    let first = kept.ask().await;
    let view = match first {
        Ok(view) => view,
        Err(_) => kept.ask().await.expect("the ask after a stale connection"),
    };
    assert_eq!(view.addr.1, primary.port());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_listing_over_keep_alive_is_the_fault_drivers() {
    let proxy = TestProxy::start();
    proxy.create("g1", "127.0.0.1:9").await;
    proxy.create("cluster_g1", "127.0.0.1:9").await;
    proxy.set_enabled("cluster_g1", false).await;
    proxy
        .toxic(
            "g1",
            serde_json::json!({"type": "latency", "stream": "downstream", "attributes": {"latency": 300}}),
        )
        .await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let api = proxy.api();
    let driver = FaultDriver::new(&api).expect("driver");
    for _ in 0..3 {
        let kept = proxies(&http, &api).await.expect("the listing");
        let fresh = driver.proxies().await.expect("the driver's listing");
        assert_eq!(kept, fresh);
        assert_eq!(kept.len(), 2);
        assert!(!kept["cluster_g1"].enabled);
        assert_eq!(kept["g1"].toxics.len(), 1);
    }
    let nowhere = format!("127.0.0.1:{}", free_port().expect("free port"));
    let err = proxies(&http, &nowhere).await.expect_err("nothing listens");
    assert!(err.contains("does not answer"), "{err}");
}
