//! The apps follow Sentinel's promotions, against real sentinels through the proxy
//! (docs/design.md, "Following the primary", "CP"): when the primary is killed both CP and AP
//! move to the promoted node, AP's writes land there at once, and CP refuses writes until the
//! old primary has rejoined as a replica of the new one, then takes them again without waiting
//! out its breaker's backoff. And the read fence: a CP instance cut off from the sentinels,
//! still reading the deposed primary, refuses to serve it, where the unfenced one serves a
//! value the new primary has already replaced.

mod common;

use std::time::{Duration, Instant};

use caplab::config::Mode;
use caplab::node::BreakerSettings;
use common::app::{TestApp, raw_value};
use common::failover::{
    FailoverApps, ms, role, wait_believes, wait_cp_acknowledges, wait_rejoined,
};
use common::sentinels::{PROMOTION_WITHIN, REJOIN_WITHIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_moves_both_apps_and_cp_writes_return_after_the_rejoin() {
    let mut lab = FailoverApps::start().await;
    let sentinels = lab.pair.sentinels_addr.clone();
    let mut cp_config = lab.config(Mode::Cp, &sentinels);
    // The service's own breaker timings: a backoff that doubles up to 30 s, which would keep
    // CP refusing long after the rejoin if only its half-open trials could close it.
    cp_config.breaker = BreakerSettings {
        failure_threshold: 3,
        open_interval: Duration::from_secs(1),
        max_open_interval: Duration::from_secs(30),
    };
    let cp = TestApp::start(cp_config).await;
    let ap = TestApp::start(lab.config(Mode::Ap, &sentinels)).await;
    wait_cp_acknowledges(&cp, Duration::from_secs(10)).await;
    for app in [&cp, &ap] {
        let r = app.get("/replication").await.json;
        assert_eq!(r["primary"], "g1", "{r}");
        assert_eq!(r["following"]["source"], "sentinels", "{r}");
        assert_eq!(r["following"]["sentinels_reachable"], true, "{r}");
    }

    let killed = Instant::now();
    lab.pair.g1.kill().unwrap();
    let promoted = lab.wait_promotion(PROMOTION_WITHIN).await;
    let (cp_moved, ap_moved) = tokio::join!(
        wait_believes(&cp, "g2", Duration::from_secs(10)),
        wait_believes(&ap, "g2", Duration::from_secs(10))
    );
    eprintln!(
        "promotion seen by s1 {} ms after the kill; CP believes g2 {} ms and AP {} ms after that",
        ms(killed, promoted),
        ms(promoted, cp_moved),
        ms(promoted, ap_moved)
    );
    for moved in [cp_moved, ap_moved] {
        assert!(
            ms(promoted, moved) <= 2000,
            "an app followed the promotion {} ms late",
            ms(promoted, moved)
        );
    }

    // AP writes land on the new primary at once.
    let w = ap.post("/write/after-kill/ap").await;
    assert_eq!(
        (w.status, w.json["node"].as_str()),
        (200, Some("g2")),
        "{w:?}"
    );
    assert_eq!(
        raw_value(&lab.pair.g2.url(), "after-kill").await.as_deref(),
        Some("ap")
    );
    let metrics = ap.get("/metrics").await.text;
    for line in [
        r#"failovers_seen_total{mode="ap"} 1"#,
        r#"primary_node{mode="ap",node="g2"} 1"#,
        r#"primary_node{mode="ap",node="g1"} 0"#,
        r#"redis_node_is_primary{mode="ap",node="g2"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }

    // CP has no second copy to make: every write is refused, on g2, until g1 is back as a
    // replica of g2. g1 restarts empty and as a primary: Sentinel turns it into a replica.
    let mut refused = 0;
    let refusing_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < refusing_until {
        let w = cp.post(&format!("/write/gap/{refused}")).await;
        assert_eq!(
            (w.status, w.json["node"].as_str()),
            (503, Some("g2")),
            "{w:?}"
        );
        refused += 1;
    }
    lab.pair.g1.restart().await.unwrap();
    let restarted = Instant::now();
    let mut attempts = 0;
    let rejoined = loop {
        let w = cp.post(&format!("/write/rejoin/{attempts}")).await;
        attempts += 1;
        if role(&lab.pair.g1.url()).await == "slave" {
            break wait_rejoined(&lab.pair.g1.url(), Duration::from_secs(15)).await;
        }
        assert_eq!(w.status, 503, "CP took a write before g1 rejoined: {w:?}");
        assert!(
            restarted.elapsed() < REJOIN_WITHIN,
            "g1 was never turned into a replica"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let accepted = loop {
        let w = cp.post("/write/after-rejoin/cp").await;
        if w.status == 200 {
            assert_eq!(w.json["node"], "g2", "{w:?}");
            break Instant::now();
        }
        assert!(
            rejoined.elapsed() < Duration::from_secs(10),
            "CP never took a write again: {w:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "CP refused {} writes; g1 restarted {} ms after the promotion and rejoined {} ms later; \
         CP took a write {} ms after the rejoin",
        refused + attempts,
        ms(promoted, restarted),
        ms(restarted, rejoined),
        ms(rejoined, accepted)
    );
    assert!(
        ms(rejoined, accepted) <= 2500,
        "CP took {} ms after the rejoin to accept a write again",
        ms(rejoined, accepted)
    );
    assert_eq!(
        raw_value(&lab.pair.g1.url(), "after-rejoin")
            .await
            .as_deref(),
        Some("cp"),
        "an acknowledged CP write is on the replica"
    );
    let read = cp.get("/read/after-kill").await;
    assert_eq!(
        (
            read.status,
            read.json["node"].as_str(),
            read.json["value"].as_str()
        ),
        (200, Some("g2"), Some("ap")),
        "{read:?}"
    );
    cp.shutdown().await;
    ap.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fence_refuses_a_deposed_primary_that_an_unfenced_read_would_serve() {
    let lab = FailoverApps::start().await;
    let own_way = lab.sentinel_proxy("sentinels_cp").await;
    let fenced = TestApp::start(lab.config(Mode::Cp, &own_way)).await;
    let mut unfenced_config = lab.config(Mode::Cp, &own_way);
    unfenced_config.cp_read_fence = false;
    let unfenced = TestApp::start(unfenced_config).await;
    let ap = TestApp::start(lab.config(Mode::Ap, &lab.pair.sentinels_addr)).await;
    wait_cp_acknowledges(&fenced, Duration::from_secs(10)).await;
    let w = fenced.post("/write/fenced-key/old").await;
    assert_eq!(w.status, 200, "{w:?}");
    let r = fenced.get("/read/fenced-key").await;
    assert_eq!(
        (r.status, r.json["value"].as_str()),
        (200, Some("old")),
        "{r:?}"
    );

    // Both CP instances lose the sentinels, then g1 loses the cluster: g2 is promoted, AP
    // follows it and writes a new value there; the CP instances keep believing g1.
    lab.proxy.set_enabled("sentinels_cp", false).await;
    lab.proxy.set_enabled("cluster_g1", false).await;
    lab.wait_promotion(PROMOTION_WITHIN).await;
    wait_believes(&ap, "g2", Duration::from_secs(5)).await;
    let w = ap.post("/write/fenced-key/new").await;
    assert_eq!(
        (w.status, w.json["node"].as_str()),
        (200, Some("g2")),
        "{w:?}"
    );

    for app in [&fenced, &unfenced] {
        let r = app.get("/replication").await.json;
        assert_eq!(r["primary"], "g1", "{r}");
        assert_eq!(r["following"]["sentinels_reachable"], false, "{r}");
        assert_eq!(r["roles"]["g1"], "primary", "g1 still says so: {r}");
    }
    let stale = unfenced.get("/read/fenced-key").await;
    assert_eq!(
        (
            stale.status,
            stale.json["value"].as_str(),
            stale.json["node"].as_str()
        ),
        (200, Some("old"), Some("g1")),
        "without the fence CP serves the deposed primary's value: {stale:?}"
    );
    let refused = fenced.get("/read/fenced-key").await;
    assert_eq!(
        refused.status, 503,
        "the fence let a stale read through: {refused:?}"
    );
    assert_eq!(refused.json["outcome"], "failed", "{refused:?}");
    assert!(
        refused.text.contains("fence"),
        "the refusal says why: {refused:?}"
    );
    // Writes on the deposed primary are not acknowledged either.
    let w = fenced.post("/write/fenced-key/lost").await;
    assert_eq!(w.status, 503, "{w:?}");
    let metrics = ap.get("/metrics").await.text;
    for line in [
        r#"redis_node_is_primary{mode="ap",node="g1"} 1"#,
        r#"redis_node_is_primary{mode="ap",node="g2"} 1"#,
    ] {
        assert!(
            metrics.contains(line),
            "split brain not visible: {line}\n{metrics}"
        );
    }
    let metrics = fenced.get("/metrics").await.text;
    assert!(
        metrics.contains(r#"sentinels_reachable{mode="cp"} 0"#),
        "{metrics}"
    );
    for app in [fenced, unfenced, ap] {
        app.shutdown().await;
    }
}
