//! Staleness accuracy (docs/design.md, "Staleness"): a caught-up replica reads under 5 ms, and
//! under a replication delay of L ms (a latency toxic on the `cluster_g1` proxy, the
//! replication link) g2's reported staleness has its median within 10 ms of L and stays above
//! L minus one heartbeat interval. A real primary and replica, the replication link through
//! `caplab proxy` (no sentinels: with sentinels watching that link, a long delay would be a
//! failover), an AP app with the default heartbeat (100 ms, 10 ms while the replica is behind).
//! And what the heartbeat asks of the two nodes at rest, counted in their `INFO commandstats`.

mod common;

use std::time::{Duration, Instant};

use caplab::config::{Config, Mode};
use common::app::{TestApp, raw_client};
use common::proxy::TestProxy;
use common::redis::RedisPair;
use fred::interfaces::ClientLike;
use fred::types::InfoKind;
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

    // 70 ms: under the 100 ms interval, a replica read right after a beat holds every beat
    // before it and lacks only the one just written, so it looks caught up; only the second
    // read, half an interval later, sees that beat missing and speeds the heartbeat up.
    for delay in [70u64, 100, 400] {
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

/// How many times `command` ran on the node at `url`, from `INFO commandstats`.
async fn calls(url: &str, command: &str) -> u64 {
    let info: String = raw_client(url)
        .await
        .info(Some(InfoKind::CommandStats))
        .await
        .expect("INFO commandstats");
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_rest_each_beat_costs_one_pipeline_to_the_primary_and_one_role_to_the_replica() {
    let pair = RedisPair::start().await;
    let (g1, g2) = (pair.g1.url(), pair.g2.url());
    let mut config = Config::new(Mode::Ap, &g1, &g2);
    config.port = 0;
    let app = TestApp::start(config).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = (
        calls(&g1, "set").await,
        calls(&g1, "role").await,
        calls(&g2, "role").await,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = (
        calls(&g1, "set").await,
        calls(&g1, "role").await,
        calls(&g2, "role").await,
    );
    app.shutdown().await;
    // Nothing else writes at rest: each SET on g1 is a beat, one every 100 ms (every 10 ms
    // for a while should a loaded machine leave g2 10 ms late in applying one).
    let beats = after.0 - before.0;
    let (g1_roles, g2_roles) = (after.1 - before.1, after.2 - before.2);
    eprintln!("{beats} beats, ROLE: {g1_roles} on g1, {g2_roles} on g2");
    assert!(beats >= 10, "{beats} beats in 2 s at a 100 ms interval");
    // Per beat: the two ROLEs around the SET on g1 and one ROLE on g2. A replica that lacks
    // the beat when read (a loaded machine can schedule g2 late) costs a second read with a
    // fresh ROLE of g1 half an interval later: some may, most must not. Reading g1 before
    // each read and every half interval would be 4 and 2.
    assert!(
        g2_roles as f64 <= 1.5 * beats as f64,
        "{g2_roles} ROLEs on g2 for {beats} beats"
    );
    assert!(
        g1_roles as f64 <= 2.5 * beats as f64,
        "{g1_roles} ROLEs on g1 for {beats} beats"
    );
    // The counters are read one after the other, so a beat may fall between two of them.
    assert!(
        g1_roles + 2 >= 2 * beats && g2_roles + 1 >= beats,
        "every beat is read: {g1_roles} ROLEs on g1, {g2_roles} on g2, {beats} beats"
    );
}
