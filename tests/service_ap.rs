//! AP's promises over a real primary/replica pair, with process faults.

mod common;

use std::sync::Arc;
use std::time::Duration;

use caplab::config::Mode;
use caplab::metrics::Metrics;
use caplab::mode::ap::Ap;
use caplab::node::{NodeId, ScriptReply, WriteRequest};
use caplab::primary::Nodes;
use caplab::staleness::Staleness;
use common::app::{TestApp, connect_node, detach_replica, raw_value, streaming_pair, test_config};

#[tokio::test]
async fn write_is_unreplicated_200_and_reads_come_from_the_replica() {
    let pair = streaming_pair().await;
    let app = TestApp::over(Mode::Ap, &pair).await;
    let w = app.post("/write/k/v").await;
    assert_eq!(w.status, 200, "{w:?}");
    assert_eq!(
        (
            w.json["replicated"].as_bool(),
            w.json["mode"].as_str(),
            w.json["outcome"].as_str()
        ),
        (Some(false), Some("ap"), Some("ok"))
    );
    let r = app
        .wait_for("/read/k", Duration::from_secs(5), |r| r.status == 200)
        .await;
    assert_eq!(
        (
            r.json["value"].as_str(),
            r.json["node"].as_str(),
            r.json["stale"].as_bool()
        ),
        (Some("v"), Some("g2"), Some(false)),
        "{r:?}"
    );
    assert!(r.json["staleness_ms"].as_u64().unwrap() < 500, "{r:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn keeps_answering_with_g1_gone_and_drains_its_queue_when_g1_returns() {
    let mut pair = streaming_pair().await;
    let app = TestApp::over(Mode::Ap, &pair).await;
    assert_eq!(app.post("/write/old/1").await.status, 200);
    app.wait_for("/read/old", Duration::from_secs(5), |r| r.status == 200)
        .await;

    pair.g1.kill().unwrap();
    for i in 0..3 {
        let w = app.post(&format!("/write/q{i}/queued-{i}")).await;
        assert_eq!(w.status, 202, "{w:?}");
        assert_eq!(
            (w.json["queued"].as_bool(), w.json["outcome"].as_str()),
            (Some(true), Some("queued"))
        );
    }
    // Reads keep working from the replica.
    let r = app.get("/read/old").await;
    assert_eq!(
        (r.status, r.json["node"].as_str()),
        (200, Some("g2")),
        "{r:?}"
    );
    let rep = app.get("/replication").await;
    assert_eq!(rep.json["ap_queue_depth"].as_u64(), Some(3), "{rep:?}");
    assert!(
        app.get("/ready").await.json["ready"].as_bool().unwrap(),
        "AP serves with g2 alone"
    );

    pair.g1.restart().await.unwrap();
    app.wait_for("/replication", Duration::from_secs(10), |r| {
        r.json["ap_queue_depth"] == 0
    })
    .await;
    for i in 0..3 {
        assert_eq!(
            raw_value(&pair.g1.url(), &format!("q{i}")).await,
            Some(format!("queued-{i}"))
        );
    }
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.contains(r#"write_outcomes_total{mode="ap",outcome="queued"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"write_outcomes_total{mode="ap",outcome="drained"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ap_write_queue_depth{mode="ap"} 0"#),
        "{metrics}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn drain_counts_superseded_writes_and_never_applies_one_twice() {
    let pair = streaming_pair().await;
    let metrics = Metrics::new(Mode::Ap).unwrap();
    let config = test_config(Mode::Ap, &pair);
    let g1 = connect_node(NodeId::G1, &pair, &config, &metrics).await;
    let g2 = connect_node(NodeId::G2, &pair, &config, &metrics).await;
    let ap = Arc::new(Ap::new(
        Nodes::fixed(g1.clone(), g2),
        10,
        Staleness::new(config.heartbeat_interval),
        config.max_staleness,
        metrics.clone(),
    ));

    // Queued while g1 was away: an old write to `s` and a write to `t`.
    let old = WriteRequest::new("s".into(), "old".into());
    let t = WriteRequest::new("t".into(), "t1".into());
    ap.queue().push(old.clone()).await.unwrap();
    ap.queue().push(t.clone()).await.unwrap();
    // Meanwhile a newer write to `s` landed directly.
    let mut newer = WriteRequest::new("s".into(), "newer".into());
    newer.written_at_ms = old.written_at_ms + 1000;
    g1.write(&newer).await.unwrap();
    // And `t`'s write had in fact landed once already (an attempt that timed out).
    assert!(matches!(
        g1.apply_if_newer(&t).await.unwrap(),
        ScriptReply::Applied { .. }
    ));

    let report = ap.drain().await;
    assert_eq!(
        (report.applied, report.superseded, report.remaining),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(
        raw_value(&pair.g1.url(), "s").await.as_deref(),
        Some("newer"),
        "the newer write survives"
    );
    assert!(
        matches!(
            g1.apply_if_newer(&t).await.unwrap(),
            ScriptReply::AlreadyApplied { .. }
        ),
        "same write id"
    );
    let text = metrics.encode().unwrap();
    assert!(
        text.contains(r#"write_outcomes_total{mode="ap",outcome="superseded"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"write_outcomes_total{mode="ap",outcome="drained"} 1"#),
        "{text}"
    );
    g1.quit().await;
}

#[tokio::test]
async fn reads_fall_back_to_g1_when_the_replica_is_killed() {
    let mut pair = streaming_pair().await;
    let app = TestApp::over(Mode::Ap, &pair).await;
    assert_eq!(app.post("/write/f/1").await.status, 200);
    pair.g2.kill().unwrap();
    let r = app.get("/read/f").await;
    assert_eq!(
        (r.status, r.json["node"].as_str(), r.json["value"].as_str()),
        (200, Some("g1"), Some("1")),
        "{r:?}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_paused_replica_grows_stale_and_reads_move_to_g1() {
    let pair = streaming_pair().await;
    let app = TestApp::over(Mode::Ap, &pair).await;
    assert_eq!(app.post("/write/s/1").await.status, 200);
    app.wait_for("/read/s", Duration::from_secs(5), |r| {
        r.json["node"] == "g2"
    })
    .await;

    pair.g2.pause().unwrap();
    let first = app
        .wait_for("/replication", Duration::from_secs(5), |r| {
            r.json["staleness_ms"]["g2"].as_u64() > Some(600)
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = app.get("/replication").await;
    let (a, b) = (
        first.json["staleness_ms"]["g2"].as_u64().unwrap(),
        later.json["staleness_ms"]["g2"].as_u64().unwrap(),
    );
    assert!(
        b >= a + 250,
        "g2 staleness keeps growing while paused: {a} then {b}"
    );
    assert!(
        later.json["staleness_ms"]["g1"].as_u64().unwrap() < 500,
        "{later:?}"
    );
    let metrics = app.get("/metrics").await.text;
    let line = metrics
        .lines()
        .find(|l| l.starts_with(r#"data_staleness_ms{mode="ap",node="g2"}"#))
        .unwrap();
    let exported: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(exported > 500.0, "{line}");

    // Bounded staleness: g2 is past MAX_STALENESS_MS, so the read goes to g1 and is fresh.
    let r = app.get("/read/s").await;
    assert_eq!(
        (r.status, r.json["node"].as_str(), r.json["stale"].as_bool()),
        (200, Some("g1"), Some(false)),
        "{r:?}"
    );
    pair.g2.resume().unwrap();
    app.shutdown().await;
}

#[tokio::test]
async fn the_only_answer_left_is_served_marked_stale() {
    let mut pair = streaming_pair().await;
    let app = TestApp::over(Mode::Ap, &pair).await;
    assert_eq!(app.post("/write/z/1").await.status, 200);
    app.wait_for("/read/z", Duration::from_secs(5), |r| {
        r.json["node"] == "g2"
    })
    .await;
    // Cut replication: g2 stops receiving heartbeats, then g1 goes away.
    detach_replica(&pair.g2.url()).await;
    app.wait_for("/replication", Duration::from_secs(5), |r| {
        r.json["staleness_ms"]["g2"].as_u64() > Some(600)
    })
    .await;
    pair.g1.kill().unwrap();
    let r = app.get("/read/z").await;
    assert_eq!(
        (r.status, r.json["node"].as_str(), r.json["stale"].as_bool()),
        (200, Some("g2"), Some(true)),
        "{r:?}"
    );
    assert!(r.json["staleness_ms"].as_u64().unwrap() > 500);
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.contains(r#"stale_reads_total{mode="ap",node="g2"} 1"#),
        "{metrics}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_full_queue_answers_503_and_shutdown_reports_what_it_could_not_drain() {
    let mut pair = streaming_pair().await;
    let mut config = test_config(Mode::Ap, &pair);
    config.ap_queue_capacity = 2;
    config.shutdown_grace = Duration::from_millis(500);
    let app = TestApp::start(config).await;
    pair.g1.kill().unwrap();
    assert_eq!(app.post("/write/a/1").await.status, 202);
    assert_eq!(app.post("/write/b/2").await.status, 202);
    let full = app.post("/write/c/3").await;
    assert_eq!(full.status, 503, "{full:?}");
    assert!(
        full.json["error"]
            .as_str()
            .unwrap()
            .contains("queue is full"),
        "{full:?}"
    );
    assert_eq!(full.json["outcome"].as_str(), Some("rejected"));
    assert!(full.headers.contains_key("retry-after"));
    let report = app.shutdown().await;
    assert_eq!(report.undrained_writes, 2, "{report:?}");
}

#[tokio::test]
async fn writes_report_the_primary_offset_and_replica_reads_report_theirs() {
    // What read-your-writes tokens build on: the offset from ROLE right after a write, and
    // the replica's processed offset asked before its data read.
    let pair = streaming_pair().await;
    let metrics = Metrics::new(Mode::Ap).unwrap();
    let config = test_config(Mode::Ap, &pair);
    let g1 = connect_node(NodeId::G1, &pair, &config, &metrics).await;
    let g2 = connect_node(NodeId::G2, &pair, &config, &metrics).await;
    let first = g1
        .write(&WriteRequest::new("o".into(), "1".into()))
        .await
        .unwrap();
    let second = g1
        .write(&WriteRequest::new("o".into(), "2".into()))
        .await
        .unwrap();
    assert!(
        second.primary_offset > first.primary_offset,
        "{first:?} {second:?}"
    );
    assert!(second.version > first.version && second.replicas_acked.is_none());
    assert!(g1.role().await.unwrap().primary);
    let on_g1 = g1.read_observed("o", false).await.unwrap();
    assert_eq!(on_g1.offset_before, None, "no ROLE before a primary read");
    assert!(on_g1.offset_after >= second.primary_offset, "{on_g1:?}");
    assert_eq!(on_g1.record.unwrap().value, "2");

    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let read = g2.read_observed("o", true).await.unwrap();
        let before = read.offset_before.unwrap();
        assert!(read.offset_after >= before, "{read:?}");
        if before >= second.primary_offset {
            assert_eq!(
                read.record.unwrap().value,
                "2",
                "a replica past the write's offset holds the write"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "g2 never caught up: {read:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    g1.quit().await;
    g2.quit().await;
}
