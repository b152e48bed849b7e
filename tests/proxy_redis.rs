//! Real Redis traffic through the embedded proxy: a client through `g1` with latency and while
//! disabled, and g2's own replication through a `cluster_g1` proxy.

mod common;

use std::time::{Duration, Instant};

use caplab::lab::redis_node::{info_field, info_replication};
use common::proxy::TestProxy;
use common::redis::RedisPair;
use fred::prelude::{ClientLike, Config, KeysInterface};
use fred::types::Builder;
use serde_json::json;

/// A fred client with one attempt per command, short timeouts and no reconnection.
async fn client(addr: &str) -> fred::prelude::Client {
    let config = Config::from_url(&format!("redis://{addr}")).unwrap();
    let c = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(2);
            c.max_command_attempts = 1;
        })
        .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(2))
        .build()
        .unwrap();
    c.init().await.expect("connect through the proxy");
    c
}

async fn timed_get(c: &fred::prelude::Client, key: &str) -> (Option<String>, Duration) {
    let start = Instant::now();
    let v: Option<String> = c.get(key).await.expect("GET");
    (v, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_through_the_proxy_with_latency_and_disabled() {
    let pair = RedisPair::start().await;
    let p = TestProxy::start();
    let listen = p
        .create("g1", &format!("127.0.0.1:{}", pair.g1.port()))
        .await;

    let c = client(&listen).await;
    let _: () = c.set("k", "v", None, None, false).await.unwrap();
    let (v, fast) = timed_get(&c, "k").await;
    assert_eq!(v.as_deref(), Some("v"));
    assert!(fast < Duration::from_millis(100), "{fast:?}");

    p.toxic(
        "g1",
        json!({"type": "latency", "attributes": {"latency": 150}}),
    )
    .await;
    let (v, slow) = timed_get(&c, "k").await;
    assert_eq!(v.as_deref(), Some("v"));
    assert!(
        slow >= Duration::from_millis(145) && slow < Duration::from_millis(700),
        "{slow:?}"
    );
    p.remove_toxic("g1", "latency_downstream").await;
    let (_, fast) = timed_get(&c, "k").await;
    assert!(fast < Duration::from_millis(100), "{fast:?}");

    // Disabled: the open connection is closed and commands fail; nothing new connects.
    p.set_enabled("g1", false).await;
    let start = Instant::now();
    let failed: Result<Option<String>, _> = c.get("k").await;
    assert!(failed.is_err(), "{failed:?}");
    assert!(start.elapsed() < Duration::from_secs(3));
    let _ = c.quit().await;
    let refused = tokio::net::TcpStream::connect(&listen).await;
    assert!(refused.is_err());

    p.set_enabled("g1", true).await;
    let c = client(&listen).await;
    let (v, _) = timed_get(&c, "k").await;
    assert_eq!(v.as_deref(), Some("v"));
    let _ = c.quit().await;
}

/// Polls g2 until `key` has `value`; returns how long it took.
async fn replicated(
    g2: &fred::prelude::Client,
    key: &str,
    value: &str,
    within: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        let v: Option<String> = g2.get(key).await.unwrap();
        if v.as_deref() == Some(value) {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_through_the_proxy_slows_and_cuts() {
    let p = TestProxy::start();
    let pair = p.replication_pair().await;
    let g1 = client(&format!("127.0.0.1:{}", pair.g1.port())).await;
    let g2 = client(&format!("127.0.0.1:{}", pair.g2.port())).await;

    // Right after a full sync Redis may hold the stream until the replica's first ACK (up to
    // a second): wait for a first write to arrive before timing anything.
    let _: () = g1.set("a", "1", None, None, false).await.unwrap();
    let took = replicated(&g2, "a", "1", Duration::from_secs(5)).await;
    assert!(took.is_some(), "replication through the proxy works");

    // g1 -> g2 is the proxy's downstream (g2 is its client).
    p.toxic(
        "cluster_g1",
        json!({"type": "latency", "attributes": {"latency": 300}}),
    )
    .await;
    // Let a replication ping through the new chain so the timing below is the write's own.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _: () = g1.set("b", "2", None, None, false).await.unwrap();
    let took = replicated(&g2, "b", "2", Duration::from_secs(3))
        .await
        .expect("b replicates");
    assert!(
        took >= Duration::from_millis(280) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    p.remove_toxic("cluster_g1", "latency_downstream").await;

    // A hard cut: the replica notices at once and serves stale data.
    p.set_enabled("cluster_g1", false).await;
    let start = Instant::now();
    loop {
        let info = info_replication(&pair.g2.url()).await.unwrap();
        if info_field(&info, "master_link_status") == Some("down") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "link still up: {info}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _: () = g1.set("c", "3", None, None, false).await.unwrap();
    assert!(
        replicated(&g2, "c", "3", Duration::from_millis(500))
            .await
            .is_none()
    );

    p.set_enabled("cluster_g1", true).await;
    pair.g2.wait_link_up(Duration::from_secs(15)).await.unwrap();
    assert!(
        replicated(&g2, "c", "3", Duration::from_secs(3))
            .await
            .is_some()
    );
    let _ = g1.quit().await;
    let _ = g2.quit().await;
}
