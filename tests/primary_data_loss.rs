//! A primary that comes back empty, against real processes: g1 killed and started again
//! without its data (no persistence), the replica resynchronised to empty. The app sees the
//! primary's version counter go back, counts it, and holds `/ready` at 503 until an operator
//! acknowledges from loopback. A Sentinel failover (g2 promoted, g1 back empty as a replica) is
//! not flagged.

mod common;

use std::time::{Duration, Instant};

use caplab::config::Mode;
use common::app::{TestApp, test_config};
use common::failover::{FailoverApps, wait_believes, wait_rejoined};
use common::raw::sample;
use common::redis::RedisPair;
use common::sentinels::{PROMOTION_WITHIN, REJOIN_WITHIN};

async fn losses(app: &TestApp) -> (f64, f64) {
    let text = app.get("/metrics").await.text;
    (
        sample(&text, r#"primary_data_loss_total{mode="ap"}"#),
        sample(&text, r#"primary_data_loss_unacknowledged{mode="ap"}"#),
    )
}

async fn wait_ready(app: &TestApp, status: u16, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let r = app.get("/ready").await;
        if r.status == status {
            return r.json;
        }
        assert!(
            Instant::now() < deadline,
            "/ready never answered {status}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_restarted_primary_holds_ready_until_acknowledged() {
    let mut pair = RedisPair::start().await;
    let app = TestApp::start(test_config(Mode::Ap, &pair)).await;
    for i in 0..20 {
        assert_eq!(app.post(&format!("/write/k{i}/v{i}")).await.status, 200);
    }
    wait_ready(&app, 200, Duration::from_secs(5)).await;
    // Let the watch see the counter at 20 (it polls every REPLICATION_POLL_MS, 100 ms here).
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(losses(&app).await, (0.0, 0.0));

    pair.g1.restart().await.unwrap(); // same port, no persistence: empty
    let body = wait_ready(&app, 503, Duration::from_secs(10)).await;
    let loss = &body["primary_data_loss"];
    assert_eq!(loss["after"]["node"], "g1", "{body}");
    assert_eq!(loss["before"]["version"], 20, "{body}");
    assert_eq!(loss["restarted"], true, "{body}");
    assert_eq!(losses(&app).await, (1.0, 1.0));
    // Still refused a while later: only an acknowledgement lifts it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.get("/ready").await.status, 503);

    let ack = app.post("/admin/ack-data-loss").await;
    assert_eq!(ack.status, 200, "{ack:?}");
    assert_eq!(ack.json["acknowledged"]["after"]["node"], "g1", "{ack:?}");
    wait_ready(&app, 200, Duration::from_secs(5)).await;
    assert_eq!(losses(&app).await, (1.0, 0.0));
    // Writes go on from the new, empty history without a new alarm.
    assert_eq!(app.post("/write/after/1").await.status, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(losses(&app).await, (1.0, 0.0));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serve_policy_counts_but_keeps_ready() {
    let mut pair = RedisPair::start().await;
    let mut config = test_config(Mode::Ap, &pair);
    config.on_primary_data_loss = caplab::primary::DataLossPolicy::Serve;
    let app = TestApp::start(config).await;
    assert_eq!(app.post("/write/k/v").await.status, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    pair.g1.restart().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while losses(&app).await.0 < 1.0 {
        assert!(Instant::now() < deadline, "the loss was never counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(losses(&app).await, (1.0, 0.0));
    wait_ready(&app, 200, Duration::from_secs(5)).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_is_not_a_data_loss() {
    let mut lab = FailoverApps::start().await;
    let sentinels = lab.pair.sentinels_addr.clone();
    let app = TestApp::start(lab.config(Mode::Ap, &sentinels)).await;
    for i in 0..20 {
        assert_eq!(app.post(&format!("/write/k{i}/v{i}")).await.status, 200);
    }
    // g1 cut from g2 and the sentinels (cluster_g1): 10 more AP writes land on g1 only, so g2
    // will be promoted with a version counter 10 behind what the app last saw on g1 (AP's
    // promise: acknowledged by *a* primary). A rule comparing counters across the failover
    // would call that a data loss; the watch starts a new baseline on the promoted node.
    lab.proxy.set_enabled("cluster_g1", false).await;
    for i in 20..30 {
        assert_eq!(app.post(&format!("/write/k{i}/v{i}")).await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(400)).await;

    lab.pair.g1.kill().unwrap();
    lab.wait_promotion(PROMOTION_WITHIN).await;
    wait_believes(&app, "g2", Duration::from_secs(10)).await;
    // g1 comes back empty from its config file; Sentinel makes it a replica of g2.
    lab.proxy.set_enabled("cluster_g1", true).await;
    lab.pair.g1.restart().await.unwrap();
    wait_rejoined(&lab.pair.g1.url(), REJOIN_WITHIN).await;
    for i in 0..5 {
        assert_eq!(app.post(&format!("/write/n{i}/v")).await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(losses(&app).await, (0.0, 0.0));
    wait_ready(&app, 200, Duration::from_secs(5)).await;
    app.shutdown().await;
}
