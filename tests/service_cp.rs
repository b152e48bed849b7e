//! CP's promises over a real primary/replica pair, with process faults: SIGSTOP for a hang,
//! SIGKILL for a refusal, restart.

mod common;

use std::time::Duration;

use caplab::config::Mode;
use common::app::{TestApp, detach_replica, raw_client, raw_value, streaming_pair, test_config};

#[tokio::test]
async fn acknowledged_write_is_on_both_nodes() {
    let pair = streaming_pair().await;
    let app = TestApp::over(Mode::Cp, &pair).await;
    let reply = app.post("/write/alpha/one").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let j = &reply.json;
    assert_eq!(
        (j["key"].as_str(), j["value"].as_str(), j["mode"].as_str()),
        (Some("alpha"), Some("one"), Some("cp"))
    );
    assert_eq!(
        (
            j["replicated"].as_bool(),
            j["outcome"].as_str(),
            j["node"].as_str()
        ),
        (Some(true), Some("ok"), Some("g1"))
    );
    assert!(j["version"].as_u64().unwrap() >= 1);
    // WAIT confirmed it, so the replica holds it right now, without waiting.
    assert_eq!(
        raw_value(&pair.g2.url(), "alpha").await.as_deref(),
        Some("one")
    );
    assert_eq!(
        raw_value(&pair.g1.url(), "alpha").await.as_deref(),
        Some("one")
    );

    let second = app.post("/write/alpha/two").await;
    assert!(
        second.json["version"].as_u64() > j["version"].as_u64(),
        "versions grow"
    );
    let read = app.get("/read/alpha").await;
    assert_eq!(
        (
            read.status,
            read.json["value"].as_str(),
            read.json["node"].as_str()
        ),
        (200, Some("two"), Some("g1"))
    );
    app.shutdown().await;
}

#[tokio::test]
async fn write_with_replica_stopped_is_indeterminate_and_stays_on_g1() {
    let pair = streaming_pair().await;
    let app = TestApp::over(Mode::Cp, &pair).await;
    pair.g2.pause().unwrap();
    let reply = app.post("/write/k/v1").await;
    pair.g2.resume().unwrap();
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(
        reply.json["outcome"].as_str(),
        Some("indeterminate"),
        "{reply:?}"
    );
    assert_eq!(reply.json["replicated"].as_bool(), Some(false));
    assert!(
        reply.json["version"].as_u64().is_some(),
        "g1 answered with its version: {reply:?}"
    );
    assert!(
        reply.json["error"].as_str().unwrap().contains("WAIT"),
        "{reply:?}"
    );
    assert_eq!(
        reply
            .headers
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    // Redis does not roll it back: the value is on g1 (and reaches g2 once it runs again).
    assert_eq!(raw_value(&pair.g1.url(), "k").await.as_deref(), Some("v1"));
    app.shutdown().await;
}

#[tokio::test]
async fn replication_breaker_opens_then_writes_fail_definitely_and_recover() {
    let pair = streaming_pair().await;
    let app = TestApp::over(Mode::Cp, &pair).await;
    pair.g2.pause().unwrap();
    for i in 0..3 {
        let reply = app.post(&format!("/write/r/{i}")).await;
        assert_eq!(
            reply.json["outcome"].as_str(),
            Some("indeterminate"),
            "{reply:?}"
        );
    }
    assert_eq!(app.breaker_state("replication").await, "open");
    // Now a write is refused before it is sent: definite, fast, and not on g1.
    let refused = app.post("/write/r/never").await;
    assert_eq!(
        (refused.status, refused.json["outcome"].as_str()),
        (503, Some("failed")),
        "{refused:?}"
    );
    assert!(
        refused.json["error"]
            .as_str()
            .unwrap()
            .contains("replication"),
        "{refused:?}"
    );
    assert!(
        refused.elapsed < Duration::from_millis(100),
        "took {:?}",
        refused.elapsed
    );
    assert_eq!(raw_value(&pair.g1.url(), "r").await.as_deref(), Some("2"));

    // Replica back: after the open interval a half-open trial write succeeds and closes it.
    pair.g2.resume().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let trial = app.post("/write/r/after").await;
    assert_eq!(
        (trial.status, trial.json["outcome"].as_str()),
        (200, Some("ok")),
        "{trial:?}"
    );
    assert_eq!(app.breaker_state("replication").await, "closed");
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.contains(r#"write_outcomes_total{mode="cp",outcome="indeterminate"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"write_outcomes_total{mode="cp",outcome="failed"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"circuit_breaker_transitions_total{mode="cp",node="replication",to="open"} 1"#
        ),
        "{metrics}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn reads_never_come_from_the_replica() {
    let mut pair = streaming_pair().await;
    let app = TestApp::over(Mode::Cp, &pair).await;
    let mut config = test_config(Mode::Cp, &pair);
    config.cp_read_fence = false;
    let unfenced = TestApp::start(config).await;
    assert_eq!(app.post("/write/x/primary").await.status, 200);
    // Detach g2 and give it a different value for the same key.
    detach_replica(&pair.g2.url()).await;
    let g2 = raw_client(&pair.g2.url()).await;
    use fred::interfaces::{ClientLike, HashesInterface};
    let _: () = g2
        .hset(
            "caplab:kv:x",
            [("value", "replica"), ("version", "999"), ("ts", "1")],
        )
        .await
        .unwrap();
    // Unfenced, CP reads g1's value; fenced, g1 has no replica to confirm the read, so CP
    // refuses: neither answers g2's.
    let read = unfenced.get("/read/x").await;
    assert_eq!(
        (read.json["value"].as_str(), read.json["node"].as_str()),
        (Some("primary"), Some("g1")),
        "{read:?}"
    );
    let read = app.get("/read/x").await;
    assert_eq!(read.status, 503, "{read:?}");
    assert!(
        read.json["error"].as_str().unwrap().contains("fence"),
        "{read:?}"
    );

    // With g1 gone, CP refuses rather than answer from g2, which is up and holds the key.
    pair.g1.kill().unwrap();
    for app in [&app, &unfenced] {
        let read = app.get("/read/x").await;
        assert_eq!(read.status, 503, "{read:?}");
        assert_eq!(read.json["outcome"].as_str(), Some("failed"));
        assert!(read.headers.contains_key("retry-after"));
        let ready = app.get("/ready").await;
        assert_eq!(
            (ready.status, ready.json["ready"].as_bool()),
            (503, Some(false)),
            "{ready:?}"
        );
    }
    let _ = g2.quit().await;
    unfenced.shutdown().await;
    app.shutdown().await;
}

#[tokio::test]
async fn killed_primary_fails_writes_definitely_and_a_restart_recovers() {
    let mut pair = streaming_pair().await;
    let app = TestApp::over(Mode::Cp, &pair).await;
    assert_eq!(app.post("/write/a/1").await.status, 200);
    pair.g1.kill().unwrap();
    // Once the app has seen the connection close, nothing can be sent: a definite failure.
    // (A write racing the close may sit in the client until it times out: indeterminate.)
    app.wait_for("/ready", Duration::from_secs(5), |r| {
        r.json["nodes"]["g1"]["connected"] == false
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reply = app.post("/write/a/2").await;
    assert_eq!(
        (reply.status, reply.json["outcome"].as_str()),
        (503, Some("failed")),
        "{reply:?}"
    );
    assert!(
        reply.elapsed < Duration::from_millis(250),
        "a refused node fails fast: {:?}",
        reply.elapsed
    );

    // A fresh g1 (same port, empty, its script cache gone): writes work again once the
    // connection and the breaker recover, and the script is reloaded after NOSCRIPT.
    pair.g1.restart().await.unwrap();
    pair.g2.wait_link_up(Duration::from_secs(10)).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = app.post("/write/a/3").await;
        if reply.status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "CP never recovered: {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(raw_value(&pair.g2.url(), "a").await.as_deref(), Some("3"));
    app.shutdown().await;
}

#[tokio::test]
async fn g1_breaker_opens_after_threshold_and_then_requests_fail_fast() {
    let pair = streaming_pair().await;
    let mut config = test_config(Mode::Cp, &pair);
    config.network_timeout = Duration::from_secs(1);
    config.cp_wait_timeout = Duration::from_millis(200);
    config.breaker.open_interval = Duration::from_secs(5);
    config.breaker.max_open_interval = Duration::from_secs(5);
    // A slow heartbeat, so it is the requests that trip the breaker here.
    config.heartbeat_interval = Duration::from_secs(60);
    config.replication_poll = Duration::from_secs(60);
    let app = TestApp::start(config).await;
    assert_eq!(app.post("/write/b/1").await.status, 200);

    pair.g1.pause().unwrap();
    // Each read to the hung g1 costs the timeout until the breaker opens. The heartbeat may
    // add a failure of its own (it beats every 10 ms while the replica looks behind), so the
    // breaker can open after fewer than three reads; once it has, a read fails fast.
    let mut slow = Vec::new();
    for _ in 0..3 {
        let reply = app.get("/read/b").await;
        assert_eq!(reply.status, 503, "{reply:?}");
        if reply.elapsed >= Duration::from_millis(900) {
            slow.push(reply.elapsed);
            continue;
        }
        assert!(
            !slow.is_empty()
                && reply.json["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("circuit breaker g1 is open")),
            "hung g1 costs the timeout until the breaker opens: {slow:?} then {reply:?}"
        );
        break;
    }
    let cb = app.get("/circuit-breaker").await.json;
    assert_eq!(cb["breakers"]["g1"]["state"].as_str(), Some("open"), "{cb}");
    assert!(
        cb["breakers"]["g1"]["consecutive_failures"].as_u64() >= Some(3),
        "{cb}"
    );
    assert!(
        cb["breakers"]["g1"]["last_transition_unix_ms"]
            .as_u64()
            .is_some(),
        "{cb}"
    );

    for path in ["/read/b", "/write/b/2"] {
        let reply = if path.starts_with("/read") {
            app.get(path).await
        } else {
            app.post(path).await
        };
        assert_eq!(reply.status, 503, "{reply:?}");
        assert!(
            reply.json["error"]
                .as_str()
                .unwrap()
                .contains("circuit breaker g1 is open"),
            "{reply:?}"
        );
        assert!(
            reply.elapsed < Duration::from_millis(150),
            "{path} with the breaker open took {:?}",
            reply.elapsed
        );
    }
    let write = app.post("/write/b/3").await;
    assert_eq!(
        write.json["outcome"].as_str(),
        Some("failed"),
        "breaker open = definite: {write:?}"
    );
    let metrics = app.get("/metrics").await.text;
    // Resumed only now: g1's probe would see it answer at once and make the breaker half-open.
    pair.g1.resume().unwrap();
    assert!(
        metrics.contains(r#"circuit_breaker_state{mode="cp",node="g1"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"db_connection_failures_total{mode="cp",node="g1"} 3"#),
        "{metrics}"
    );
    app.shutdown().await;
}
