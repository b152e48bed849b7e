//! Read-your-writes and monotonic reads through AP, over a real primary and replica whose
//! replication link crosses `caplab proxy` (docs/design.md, "Read-your-writes sessions").
//!
//! A latency toxic on the `cluster_g1` proxy (the replication link) makes g2 lag on purpose. The tests show both
//! sides in the same run: the session always reads its own writes while tokenless readers get
//! stale answers from g2 (so the lag was real); a session's reads never go back across two AP
//! instances sharing `SECRET_KEY`; and with g1 gone and g2 behind, AP still answers, says
//! `session_guarantee: false` and counts it, while a write of the session still in the queue
//! is served from the queue; and a primary restarted without its data is noticed (its offset
//! is below the session's) and reported the same way, in both modes.

mod common;

use std::time::{Duration, Instant};

use caplab::config::{Mode, SecretKey};
use caplab::session::{Keyring, SessionToken};
use caplab::time::unix_ms;
use common::app::{Reply, TestApp, streaming_pair, test_config};
use common::proxy::TestProxy;
use common::redis::RedisPair;
use serde_json::json;

const KEY: &str = "session-ryw-test-key-0123456789abcdef";
const LAG_MS: u64 = 300;

fn ap_config(pair: &RedisPair, max_staleness: Duration) -> caplab::config::Config {
    let mut config = test_config(Mode::Ap, pair);
    config.secret_key = SecretKey::from(KEY);
    config.max_staleness = max_staleness;
    config
}

fn decode(token: &str) -> SessionToken {
    Keyring::new(&SecretKey::from(KEY), None)
        .verify(token, unix_ms())
        .expect("signed with KEY")
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
}

/// Adds the replication lag and waits until g2's measured staleness shows it.
async fn lag_replication(proxy: &TestProxy, app: &TestApp) {
    proxy
        .toxic(
            "cluster_g1",
            json!({"type": "latency", "attributes": {"latency": LAG_MS}}),
        )
        .await;
    app.wait_for("/replication", Duration::from_secs(10), |r| {
        r.json["staleness_ms"]["g2"]
            .as_u64()
            .is_some_and(|ms| ms >= LAG_MS - 50)
    })
    .await;
}

fn token_of(reply: &Reply) -> String {
    reply
        .session_token()
        .unwrap_or_else(|| panic!("no token: {reply:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_reads_its_writes_while_tokenless_readers_see_the_lag() {
    const ITERATIONS: usize = 50;
    let proxy = TestProxy::start();
    let pair = proxy.replication_pair().await;
    // A loose staleness bound keeps tokenless reads on the lagging g2.
    let app = TestApp::start(ap_config(&pair, Duration::from_secs(5))).await;
    lag_replication(&proxy, &app).await;

    let mut token: Option<String> = None;
    let mut stale_tokenless = 0;
    let mut session_nodes = Vec::new();
    for i in 0..ITERATIONS {
        let headers: Vec<(&str, &str)> = token
            .as_deref()
            .map(|t| vec![("x-session-token", t)])
            .unwrap_or_default();
        let w = app.post_with(&format!("/write/ryw/{i}"), &headers).await;
        assert_eq!(w.status, 200, "{w:?}");
        let t = token_of(&w);
        let r = app
            .get_with("/read/ryw", &[("x-session-token", t.as_str())])
            .await;
        assert_eq!(
            (r.status, r.json["value"].as_str()),
            (200, Some(i.to_string().as_str())),
            "iteration {i}: the session must read its own write: {r:?}"
        );
        assert_eq!(r.json["session_guarantee"].as_bool(), Some(true), "{r:?}");
        session_nodes.push(r.json["node"].as_str().unwrap_or("?").to_string());
        let plain = app.get("/read/ryw").await;
        if plain.json["value"].as_str() != Some(i.to_string().as_str()) {
            stale_tokenless += 1;
        }
        token = Some(token_of(&r));
    }
    eprintln!(
        "{ITERATIONS} iterations: session reads all fresh (served by g1 {} times), \
         tokenless reads stale {stale_tokenless} times",
        session_nodes.iter().filter(|n| *n == "g1").count()
    );
    assert!(
        stale_tokenless >= ITERATIONS / 2,
        "with a {LAG_MS} ms replication lag most tokenless reads should be stale, got \
         {stale_tokenless} of {ITERATIONS}"
    );
    let metrics = app.get("/metrics").await.text;
    let fallbacks = metric(&metrics, r#"session_ryw_fallbacks_total{mode="ap"}"#);
    assert!(
        fallbacks >= (ITERATIONS / 2) as u64,
        "reads went to g1 for the session: {fallbacks}"
    );
    assert_eq!(
        metric(&metrics, r#"session_guarantee_violations_total{mode="ap"}"#),
        0
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_stay_monotonic_across_two_ap_instances() {
    const ROUNDS: usize = 10;
    let proxy = TestProxy::start();
    let pair = proxy.replication_pair().await;
    // A reads g1 (a tight bound: the lagging g2 is too stale for it), B reads g2 (loose).
    let a = TestApp::start(ap_config(&pair, Duration::from_millis(150))).await;
    let b = TestApp::start(ap_config(&pair, Duration::from_secs(5))).await;
    lag_replication(&proxy, &a).await;

    // The session starts with a write of its own, elsewhere.
    let w = a.post("/write/mono-own/1").await;
    let mut token = token_of(&w);
    let mut would_have_gone_back = 0;
    for round in 0..ROUNDS {
        // Someone else writes; the session sees it through A (which reads g1)...
        let value = format!("new-{round}");
        assert_eq!(a.post(&format!("/write/mono/{value}")).await.status, 200);
        let seen = a
            .get_with("/read/mono", &[("x-session-token", token.as_str())])
            .await;
        assert_eq!(
            seen.json["value"].as_str(),
            Some(value.as_str()),
            "{seen:?}"
        );
        assert_eq!(seen.json["node"].as_str(), Some("g1"), "{seen:?}");
        let raised = token_of(&seen);
        assert!(decode(&raised).min_offset > decode(&token).min_offset);
        token = raised;
        // ... then reads through B, which would answer the older value from g2 without it.
        let plain = b.get("/read/mono").await;
        if plain.json["value"].as_str() != Some(value.as_str()) {
            would_have_gone_back += 1;
        }
        let next = b
            .get_with("/read/mono", &[("x-session-token", token.as_str())])
            .await;
        assert_eq!(
            next.json["value"].as_str(),
            Some(value.as_str()),
            "round {round}: the session went back in time on the other instance: {next:?}"
        );
        assert_eq!(next.json["session_guarantee"].as_bool(), Some(true));
        assert_eq!(decode(&token_of(&next)).session, decode(&token).session);
        token = token_of(&next);
    }
    assert!(
        would_have_gone_back >= ROUNDS / 2,
        "B's tokenless reads should mostly be behind, got {would_have_gone_back} of {ROUNDS}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_g1_gone_and_g2_behind_ap_answers_without_the_guarantee() {
    let proxy = TestProxy::start();
    let mut pair = proxy.replication_pair().await;
    let app = TestApp::start(ap_config(&pair, Duration::from_secs(5))).await;
    let w = app.post("/write/gone/old").await;
    let token = token_of(&w);
    app.wait_for("/read/gone", Duration::from_secs(5), |r| {
        r.json["value"] == "old" && r.json["node"] == "g2"
    })
    .await;

    // Cut replication, write again in the session: g2 never gets it.
    proxy.set_enabled("cluster_g1", false).await;
    let w = app
        .post_with("/write/gone/new", &[("x-session-token", token.as_str())])
        .await;
    assert_eq!(w.status, 200, "{w:?}");
    let token = token_of(&w);
    let header = [("x-session-token", token.as_str())];
    let r = app.get_with("/read/gone", &header).await;
    assert_eq!(
        (
            r.json["value"].as_str(),
            r.json["session_guarantee"].as_bool()
        ),
        (Some("new"), Some(true)),
        "g1 still answers: {r:?}"
    );

    // g1 goes away: only the lagging g2 is left.
    pair.g1.kill().expect("kill g1");
    let r = app.get_with("/read/gone", &header).await;
    assert_eq!(r.status, 200, "AP still answers: {r:?}");
    assert_eq!(
        (
            r.json["value"].as_str(),
            r.json["node"].as_str(),
            r.json["session_guarantee"].as_bool()
        ),
        (Some("old"), Some("g2"), Some(false)),
        "{r:?}"
    );
    assert!(r.session_token().is_some());
    let metrics = app.get("/metrics").await.text;
    assert!(metric(&metrics, r#"session_guarantee_violations_total{mode="ap"}"#) >= 1);

    // A write of the session now queues, and the session reads it back from the queue.
    let q = app.post_with("/write/gone/queued", &header).await;
    assert_eq!(q.status, 202, "{q:?}");
    let token = token_of(&q);
    let header = [("x-session-token", token.as_str())];
    let r = app.get_with("/read/gone", &header).await;
    assert_eq!(
        (
            r.status,
            r.json["value"].as_str(),
            r.json["node"].as_str(),
            r.json["queued"].as_bool(),
            r.json["session_guarantee"].as_bool()
        ),
        (200, Some("queued"), Some("queue"), Some(true), Some(true)),
        "{r:?}"
    );
    assert!(r.json["version"].is_null(), "{r:?}");
    // Another session, or none, does not see this instance's queue.
    let plain = app.get("/read/gone").await;
    assert_eq!(plain.json["value"].as_str(), Some("old"), "{plain:?}");
    let other = app.post("/write/other-key/x").await;
    let other_token = token_of(&other);
    let r = app
        .get_with("/read/gone", &[("x-session-token", other_token.as_str())])
        .await;
    assert_eq!(r.json["value"].as_str(), Some("old"), "{r:?}");
    let started = Instant::now();
    let report = app.shutdown().await;
    eprintln!(
        "shutdown with g1 gone took {:?}: {report:?}",
        started.elapsed()
    );
}

/// Polls a session read until `done` holds (or panics after 10 s).
async fn session_read_until(
    app: &TestApp,
    path: &str,
    token: &str,
    done: impl Fn(&Reply) -> bool,
) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.get_with(path, &[("x-session-token", token)]).await;
        if done(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_restarted_without_its_data_is_reported_in_both_modes() {
    let mut pair = streaming_pair().await;
    let ap = TestApp::start(ap_config(&pair, Duration::from_secs(5))).await;
    let mut cp_config = test_config(Mode::Cp, &pair);
    cp_config.secret_key = SecretKey::from(KEY);
    let cp = TestApp::start(cp_config).await;
    // Large writes move g1's offset far past what it reaches again within this test.
    let big = vec![b'x'; 60_000];
    for i in 0..3 {
        assert_eq!(ap.put(&format!("/kv/big-{i}"), &big).await.status, 200);
    }
    let w = ap.post("/write/lost/v").await;
    let token = token_of(&w);
    assert!(decode(&token).min_offset > 180_000);
    for app in [&ap, &cp] {
        let r = session_read_until(app, "/read/lost", &token, |r| r.status == 200).await;
        assert_eq!(r.json["session_guarantee"].as_bool(), Some(true), "{r:?}");
    }

    // g1 restarts empty (no persistence); g2 resyncs from it and empties too.
    pair.g1.restart().await.expect("restart g1");
    pair.g2
        .wait_link_up(Duration::from_secs(10))
        .await
        .expect("g2 back");
    let r = session_read_until(&ap, "/read/lost", &token, |r| r.json["node"] == "g1").await;
    assert_eq!(
        (r.status, r.json["session_guarantee"].as_bool()),
        (404, Some(false)),
        "AP: the write the session saw is gone, and the answer says so: {r:?}"
    );
    let r = session_read_until(&cp, "/read/lost", &token, |r| r.status != 503).await;
    assert_eq!(
        (r.status, r.json["session_guarantee"].as_bool()),
        (404, Some(false)),
        "CP: {r:?}"
    );
    for (app, mode) in [(&ap, "ap"), (&cp, "cp")] {
        let metrics = app.get("/metrics").await.text;
        let series = format!(r#"session_guarantee_violations_total{{mode="{mode}"}}"#);
        assert!(metric(&metrics, &series) >= 1, "{mode}");
    }
    // A new session on the new history is honoured again.
    let fresh = token_of(&ap.post("/write/lost/again").await);
    let r = session_read_until(&ap, "/read/lost", &fresh, |r| r.status == 200).await;
    assert_eq!(
        (
            r.json["value"].as_str(),
            r.json["session_guarantee"].as_bool()
        ),
        (Some("again"), Some(true)),
        "{r:?}"
    );
    ap.shutdown().await;
    cp.shutdown().await;
}
