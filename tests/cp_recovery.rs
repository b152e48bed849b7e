//! CP's recovery after replication comes back (docs/design.md, "Circuit breakers"): whatever
//! the outage lasted, CP accepts writes within a second of replication being able to confirm
//! them again. A real primary and replica, g2 replicating from g1 through the `cluster_g1` proxy
//! of an embedded `caplab proxy` (no sentinels), a CP app with the service's default settings
//! (breaker threshold 5, open 1 s doubling to 30 s, `CP_WAIT_TIMEOUT_MS` 500, heartbeat
//! 100 ms, replication poll 500 ms), and a client writing every 100 ms through the outage, so
//! the breaker opens and its backoff grows (with the backoff alone, the 5 s outage heals 0.5 s
//! into a 2 s open interval and the 30 s one 10 s into a 16 s one).
//!
//! A stopped replica is the silent cut: its connection to the primary stays open, so the
//! primary still counts it as connected and nothing but a trial shows it is back; a cut link
//! closes that connection, and the primary regaining its replica shows it.
//!
//! A stopped primary opens the `g1` breaker instead; its node probe is what shows g1 back.
//!
//! "Replication can confirm again" is measured, not assumed: from the heal on, a raw `SET` +
//! `WAIT 1 20` on g1 every 10 ms; the first one a replica confirms is the moment CP could.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use caplab::config::{Config, Mode};
use common::app::{TestApp, raw_client};
use common::proxy::TestProxy;
use common::redis::RedisPair;
use fred::interfaces::{ClientLike, KeysInterface, ServerInterface};

/// The bound: CP's first accepted write after replication can confirm writes again.
const WITHIN: Duration = Duration::from_secs(1);

/// Whether a raw `SET` + `WAIT 1 20` on `g1` is confirmed by a replica now.
async fn replication_confirms(g1: &fred::clients::Client) -> bool {
    let set: Result<(), _> = g1.set("test:recovery:probe", "1", None, None, false).await;
    if set.is_err() {
        return false;
    }
    let acked: Result<i64, _> = g1.wait(1, 20).await;
    matches!(acked, Ok(n) if n >= 1)
}

async fn wait_streaming(pair: &RedisPair) {
    let g1 = raw_client(&pair.g1.url()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !replication_confirms(&g1).await {
        assert!(
            Instant::now() < deadline,
            "the primary never streamed to the replica"
        );
    }
    let _ = g1.quit().await;
}

/// How the replica goes away.
#[derive(Debug, Clone, Copy)]
enum Outage {
    /// `cluster_g1` disabled: the replication link cut (the lab's `down cluster_g1`).
    LinkCut,
    /// g2's process stopped (SIGSTOP): its connection stays open, nothing answers.
    ReplicaStopped,
    /// g1's process stopped: the app's calls to g1 time out and its `g1` breaker opens.
    PrimaryStopped,
}

impl Outage {
    /// The breaker this outage opens.
    fn breaker(self) -> &'static str {
        match self {
            Outage::LinkCut | Outage::ReplicaStopped => "replication",
            Outage::PrimaryStopped => "g1",
        }
    }
}

/// Runs `outage` for `length` under a client writing every 100 ms, heals it, and returns (when
/// replication confirmed a raw write again, when CP first answered a write 200), both measured
/// from the heal.
async fn recovery_after(outage: Outage, length: Duration) -> (Duration, Duration) {
    let proxy = TestProxy::start();
    let pair = proxy.replication_pair().await;
    wait_streaming(&pair).await;
    let mut config = Config::new(Mode::Cp, &pair.g1.url(), &pair.g2.url());
    config.port = 0;
    let app = Arc::new(TestApp::start(config).await);
    assert_eq!(app.post("/write/rec/before").await.status, 200);
    let g1 = raw_client(&pair.g1.url()).await;

    let healed_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..1 {
        let (app, healed_at, stop) = (app.clone(), healed_at.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let reply = app.post(&format!("/write/rec{w}/{i}")).await;
                let healed = *healed_at.lock().unwrap();
                if let (200, Some(healed)) = (reply.status, healed) {
                    return Some(healed.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None
        }));
    }

    match outage {
        Outage::LinkCut => proxy.set_enabled("cluster_g1", false).await,
        Outage::ReplicaStopped => pair.g2.pause().unwrap(),
        Outage::PrimaryStopped => pair.g1.pause().unwrap(),
    }
    tokio::time::sleep(length).await;
    let cb = app.get("/circuit-breaker").await.json;
    assert_ne!(
        cb["breakers"][outage.breaker()]["state"].as_str(),
        Some("closed"),
        "the outage opened the {} breaker (open, or half-open with a trial out): {cb}",
        outage.breaker()
    );
    match outage {
        Outage::LinkCut => proxy.set_enabled("cluster_g1", true).await,
        Outage::ReplicaStopped => pair.g2.resume().unwrap(),
        Outage::PrimaryStopped => pair.g1.resume().unwrap(),
    }
    let healed = Instant::now();
    *healed_at.lock().unwrap() = Some(healed);

    while !replication_confirms(&g1).await {
        assert!(
            healed.elapsed() < Duration::from_secs(30),
            "replication never confirmed a write after the heal"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ready = healed.elapsed();
    let _ = g1.quit().await;

    let deadline = Instant::now() + Duration::from_secs(45);
    let mut first: Option<Duration> = None;
    let mut unfinished = Vec::new();
    for mut writer in writers {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, &mut writer).await {
            Ok(Ok(Some(at))) => first = Some(first.map_or(at, |f| f.min(at))),
            Ok(_) => {}
            Err(_) => unfinished.push(writer),
        }
    }
    stop.store(true, Ordering::SeqCst);
    for writer in unfinished {
        let _ = writer.await;
    }
    let first = first.expect("CP accepted a write after the heal");
    eprintln!(
        "{outage:?} for {length:?}: replication confirms {ready:?} after the heal, CP accepts a write {first:?} after it"
    );
    Arc::into_inner(app).expect("writers done").shutdown().await;
    (ready, first)
}

fn assert_recovered(outage: Outage, length: Duration, (ready, first): (Duration, Duration)) {
    assert!(
        first <= ready + WITHIN,
        "{outage:?} for {length:?}: CP accepted its first write {first:?} after the heal, but \
         replication confirmed writes {ready:?} after it (bound: {WITHIN:?} after that)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cp_writes_again_within_a_second_of_a_5s_replica_stop() {
    let length = Duration::from_secs(5);
    let r = recovery_after(Outage::ReplicaStopped, length).await;
    assert_recovered(Outage::ReplicaStopped, length, r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cp_writes_again_within_a_second_of_a_30s_replica_stop() {
    let length = Duration::from_secs(30);
    let r = recovery_after(Outage::ReplicaStopped, length).await;
    assert_recovered(Outage::ReplicaStopped, length, r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cp_writes_again_within_a_second_of_a_5s_link_cut() {
    let length = Duration::from_secs(5);
    let r = recovery_after(Outage::LinkCut, length).await;
    assert_recovered(Outage::LinkCut, length, r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cp_writes_again_within_a_second_of_a_15s_primary_stop() {
    // The g1 breaker: opened by timeouts within about a second, its backoff alone would let
    // the trial after the heal out 4 s later (open 1, 2, 4, 8 s, each after a 1 s timeout).
    let length = Duration::from_secs(15);
    let r = recovery_after(Outage::PrimaryStopped, length).await;
    assert_recovered(Outage::PrimaryStopped, length, r);
}
