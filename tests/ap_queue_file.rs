//! AP's queue file against real processes: a `caplab serve --mode ap` child with writes queued
//! (g1 unreachable through its proxy) is killed with SIGKILL and started again on the same
//! file; every write answered 202 is applied, or superseded by a newer write and counted. A
//! second instance on the same file is refused.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::app::{raw_client, raw_value, request};
use common::proxy::TestProxy;
use common::raw::sample;
use common::redis::RedisPair;
use common::serve::{ServeProcess, command, spawn_serve};

fn env(routes: &common::proxy::NodeRoutes, queue: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_G1_URL", format!("redis://{}", routes.g1)),
        ("REDIS_G2_URL", format!("redis://{}", routes.g2)),
        ("AP_QUEUE_FILE", queue.display().to_string()),
        ("NETWORK_TIMEOUT_SEC", "0.3".into()),
        ("HEARTBEAT_INTERVAL_MS", "50".into()),
        ("BREAKER_OPEN_MS", "200".into()),
        ("BREAKER_MAX_OPEN_MS", "400".into()),
        ("CP_WAIT_TIMEOUT_MS", "100".into()),
    ]
}

async fn metrics(app: &ServeProcess) -> String {
    request(app.addr, "GET", "/metrics", None).await.text
}

#[tokio::test]
async fn every_202_survives_kill_9_and_is_applied_after_restart() {
    let pair = RedisPair::start().await;
    let proxy = TestProxy::start();
    let routes = proxy.front_nodes(&pair).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("ap_queue.journal");
    proxy.set_enabled("g1", false).await;

    let mut ap = spawn_serve("ap", &env(&routes, &queue));
    ap.wait_listening(Duration::from_secs(20)).await;
    // 60 writes over 20 keys, 3 each: the newest per key is what the drain must leave.
    let mut newest = HashMap::new();
    for i in 0..60 {
        let (key, value) = (format!("k{}", i % 20), format!("v{i}"));
        let w = request(ap.addr, "POST", &format!("/write/{key}/{value}"), None).await;
        assert_eq!(w.status, 202, "{w:?}");
        assert_eq!(w.json["durability"], "fsynced", "{w:?}");
        assert!(
            w.json["promise"]
                .as_str()
                .unwrap()
                .contains("survives a crash of this app"),
            "{w:?}"
        );
        newest.insert(key, value);
    }

    // A second instance on the same file is refused with a clear error.
    let port = caplab::lab::ports::free_port().unwrap();
    let out = command("ap", port, &env(&routes, &queue)).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second instance started: {stderr}");
    assert!(stderr.contains("in use by another process"), "{stderr}");

    ap.kill_9();

    // Meanwhile someone writes k0 directly on g1, newer than the queued writes of k0.
    {
        use fred::interfaces::{ClientLike, HashesInterface};
        let g1 = raw_client(&pair.g1.url()).await;
        let now = caplab::time::unix_ms().to_string();
        let _: () = g1
            .hset(
                "caplab:kv:k0",
                [
                    ("value", "direct"),
                    ("version", "1000"),
                    ("ts", now.as_str()),
                    ("wid", "direct"),
                ],
            )
            .await
            .unwrap();
        let _ = g1.quit().await;
    }
    newest.insert("k0".into(), "direct".into());
    proxy.set_enabled("g1", true).await;

    let mut ap = spawn_serve("ap", &env(&routes, &queue));
    ap.wait_listening(Duration::from_secs(20)).await;
    assert_eq!(
        sample(&metrics(&ap).await, r#"ap_queue_replayed_total{mode="ap"}"#),
        60.0
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let depth =
            request(ap.addr, "GET", "/replication", None).await.json["ap_queue_depth"].as_u64();
        if depth == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replayed queue never drained: {depth:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (key, value) in &newest {
        assert_eq!(
            raw_value(&pair.g1.url(), key).await.as_deref(),
            Some(value.as_str()),
            "{key}"
        );
    }
    let text = metrics(&ap).await;
    let drained = sample(
        &text,
        r#"write_outcomes_total{mode="ap",outcome="drained"}"#,
    );
    let superseded = sample(
        &text,
        r#"write_outcomes_total{mode="ap",outcome="superseded"}"#,
    );
    assert_eq!(
        (drained, superseded),
        (57.0, 3.0),
        "k0's three queued writes lose to the direct one"
    );
    // Drained: the file is compacted to empty.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::metadata(&queue).unwrap().len() > 0 {
        assert!(
            Instant::now() < deadline,
            "the queue file was not compacted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_torn_tail_is_cut_counted_and_the_rest_replayed() {
    let pair = RedisPair::start().await;
    let proxy = TestProxy::start();
    let routes = proxy.front_nodes(&pair).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("ap_queue.journal");
    proxy.set_enabled("g1", false).await;
    let mut ap = spawn_serve("ap", &env(&routes, &queue));
    ap.wait_listening(Duration::from_secs(20)).await;
    for i in 0..5 {
        let w = request(ap.addr, "POST", &format!("/write/t{i}/v{i}"), None).await;
        assert_eq!(w.status, 202, "{w:?}");
    }
    ap.kill_9();
    // A record cut by the crash: a frame header that promises more bytes than follow.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&queue)
            .unwrap();
        f.write_all(&[200, 0, 0, 0, 9, 9, 9, 9, 1, 2, 3]).unwrap();
    }
    proxy.set_enabled("g1", true).await;
    let mut ap = spawn_serve("ap", &env(&routes, &queue));
    ap.wait_listening(Duration::from_secs(20)).await;
    let text = metrics(&ap).await;
    assert_eq!(
        sample(&text, r#"ap_queue_file_corrupt_total{mode="ap"}"#),
        1.0
    );
    assert_eq!(sample(&text, r#"ap_queue_replayed_total{mode="ap"}"#), 5.0);
    let deadline = Instant::now() + Duration::from_secs(15);
    for i in 0..5 {
        while raw_value(&pair.g1.url(), &format!("t{i}")).await.is_none() {
            assert!(Instant::now() < deadline, "t{i} was never applied");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(
        aside.len(),
        1,
        "the cut tail is kept aside for the operator"
    );
    assert_eq!(
        std::fs::read(aside[0].path()).unwrap(),
        vec![200, 0, 0, 0, 9, 9, 9, 9, 1, 2, 3]
    );
}
