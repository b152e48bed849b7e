//! Staleness accuracy (docs/design.md, "Staleness"): a caught-up replica reads under 5 ms, and
//! under a replication delay of L ms (a latency toxic on the `cluster_g1` proxy, the
//! replication link) g2's reported staleness has its median within 10 ms of L and stays above
//! L minus one heartbeat interval. A real primary and replica, the replication link through
//! `caplab proxy` (no sentinels: with sentinels watching that link, a long delay would be a
//! failover), an AP app with the default heartbeat (100 ms, 10 ms while the replica is behind).

mod common;

use std::time::{Duration, Instant};

use caplab::config::{Config, Mode};
use common::app::TestApp;
use common::proxy::TestProxy;
use serde_json::json;

/// g2's staleness as `/replication` reports it, ms.
async fn g2_staleness(app: &TestApp) -> Option<u64> {
    let reply = app.get("/replication").await;
    reply.json["staleness_ms"]["g2"].as_u64()
}

/// Samples g2's staleness every 20 ms for `window`, sorted.
async fn sample(app: &TestApp, window: Duration) -> Vec<u64> {
    let end = Instant::now() + window;
    let mut samples = Vec::new();
    while Instant::now() < end {
        if let Some(ms) = g2_staleness(app).await {
            samples.push(ms);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    samples.sort_unstable();
    samples
}

fn median(sorted: &[u64]) -> u64 {
    sorted[sorted.len() / 2]
}

/// The share of `sorted` at or above `floor`.
fn share_at_least(sorted: &[u64], floor: u64) -> f64 {
    sorted.iter().filter(|&&ms| ms >= floor).count() as f64 / sorted.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g2_staleness_is_exact_at_rest_and_follows_a_replication_delay() {
    let proxy = TestProxy::start();
    let pair = proxy.replication_pair().await;
    let mut config = Config::new(Mode::Ap, &pair.g1.url(), &pair.g2.url());
    config.port = 0;
    config.max_staleness = Duration::from_secs(5);
    assert_eq!(
        config.heartbeat_interval,
        Duration::from_millis(100),
        "the default heartbeat (every 10 ms while the replica is behind)"
    );
    let app = TestApp::start(config).await;

    // At rest the replica holds every beat within two round trips: under 5 ms. That bound is
    // the reads' round trips, which a loaded 2-core machine stretches now and then (a task
    // woken late, measured up to 16 ms at a load average of 7.5, and a quarter of the samples
    // at 5 to 11 ms while the suite ran beside a build): the median and two samples in three,
    // not all, must be under it. (A reading of the newest beat sits anywhere
    // in the 100 ms interval: median about 50.)
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let rest = sample(&app, Duration::from_secs(2)).await;
    assert!(
        rest.len() >= 30,
        "/replication reports g2's staleness: {rest:?}"
    );
    assert!(
        share_at_least(&rest, 5) <= 1.0 / 3.0 && median(&rest) < 5,
        "g2 staleness at rest: {} samples, max {} ms: {rest:?}",
        rest.len(),
        rest[rest.len() - 1]
    );

    for delay in [100u64, 400] {
        // g1 -> g2 is the proxy's downstream (g2 is its client).
        proxy
            .toxic(
                "cluster_g1",
                json!({"type": "latency", "attributes": {"latency": delay}}),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(delay + 1000)).await;
        let lagging = sample(&app, Duration::from_secs(2)).await;
        proxy.remove_toxic("cluster_g1", "latency_downstream").await;
        let m = median(&lagging);
        eprintln!(
            "delay {delay} ms: median {m} ms, min {} ms, max {} ms ({} samples)",
            lagging[0],
            lagging[lagging.len() - 1],
            lagging.len()
        );
        assert!(
            (delay - 10..=delay + 10).contains(&m),
            "median g2 staleness {m} ms with a {delay} ms delay: {lagging:?}"
        );
        // Below the delay only by the age of the newest beats still in flight: one interval.
        // A loaded machine can space two beats wider; most samples, not all, must hold it.
        let floor = delay - 10;
        assert!(
            share_at_least(&lagging, floor) >= 0.9,
            "under {floor} ms too often with a {delay} ms delay: {lagging:?}"
        );
        assert!(
            lagging[0] + 40 >= delay,
            "a sample far below the {delay} ms delay: {lagging:?}"
        );
        tokio::time::sleep(Duration::from_millis(delay + 500)).await;
    }

    // The delay removed, staleness is back under 5 ms.
    let after = sample(&app, Duration::from_secs(1)).await;
    assert!(
        median(&after) < 5,
        "g2 staleness after the delay: {after:?}"
    );

    app.shutdown().await;
}
