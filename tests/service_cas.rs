//! Compare-and-set on both personalities over a real primary/replica pair, the apps talking to
//! the nodes through the embedded proxy (tests/common/topology.rs): applied, mismatched,
//! expected-absent, CP indeterminate with the replication link cut, AP with the primary
//! unreachable, and a node that is a replica refusing a cas.

mod common;

use std::time::Duration;

use caplab::config::Mode;
use caplab::metrics::Metrics;
use caplab::node::{CasRequest, NodeError, NodeId};
use common::app::{
    Reply, TestApp, connect_node, raw_value, request_with, streaming_pair, test_config,
};
use common::topology::Topology;

async fn cas_body(app: &TestApp, key: &str, body: &str) -> Reply {
    request_with(
        app.addr,
        "POST",
        &format!("/cas/{key}"),
        Some(body.as_bytes().to_vec()),
        &[],
    )
    .await
}

#[tokio::test]
async fn cas_applies_mismatches_and_expects_absent_on_both_modes() {
    let t = Topology::start().await;
    for (mode, app) in [("cp", &t.cp), ("ap", &t.ap)] {
        let key = format!("{mode}-reg");
        // Expected absent: only the body form can say it.
        let created = cas_body(app, &key, r#"{"expected": null, "new": "1"}"#).await;
        assert_eq!(created.status, 200, "{created:?}");
        let j = &created.json;
        assert_eq!(
            (
                j["outcome"].as_str(),
                j["value"].as_str(),
                j["expected"].as_str()
            ),
            (Some("ok"), Some("1"), None),
            "{created:?}"
        );
        assert_eq!(j["replicated"].as_bool(), Some(mode == "cp"), "{created:?}");
        assert_eq!(j["node"].as_str(), Some("g1"));
        let v1 = j["version"].as_u64().expect("a version");
        assert!(created.session_token().is_some(), "a cas answers a token");

        let again = cas_body(app, &key, r#"{"expected": null, "new": "9"}"#).await;
        assert_eq!(again.status, 409, "{again:?}");
        assert_eq!(
            (
                again.json["outcome"].as_str(),
                again.json["current"].as_str()
            ),
            (Some("mismatch"), Some("1")),
            "{again:?}"
        );
        assert!(again.session_token().is_some());

        // The path form: 1 -> 2 applies with a newer version, 1 -> 3 then does not.
        let swapped = app.post(&format!("/cas/{key}/1/2")).await;
        assert_eq!(swapped.status, 200, "{swapped:?}");
        assert!(swapped.json["version"].as_u64() > Some(v1), "{swapped:?}");
        let stale = app.post(&format!("/cas/{key}/1/3")).await;
        assert_eq!(stale.status, 409, "{stale:?}");
        assert_eq!(stale.json["current"].as_str(), Some("2"), "{stale:?}");
        assert_eq!(
            stale.json["current_version"].as_u64(),
            swapped.json["version"].as_u64()
        );
        assert_eq!(
            raw_value(&t.pair.g1.url(), &key).await.as_deref(),
            Some("2")
        );
        // The record is a write's: a plain read returns it, with the cas's version.
        let read = app.get(&format!("/kv/{key}")).await;
        let read = if mode == "ap" {
            app.wait_for(&format!("/kv/{key}"), Duration::from_secs(5), |r| {
                r.json["value"] == "2"
            })
            .await
        } else {
            read
        };
        assert_eq!(read.json["version"], swapped.json["version"], "{read:?}");
        // Expecting a value of a key that is absent is a mismatch with `current: null`.
        let none = app.post(&format!("/cas/{mode}-never/a/b")).await;
        assert_eq!(none.status, 409, "{none:?}");
        assert!(none.json["current"].is_null(), "{none:?}");

        let bad = cas_body(app, &key, r#"{"new": "1"}"#).await;
        assert_eq!(
            (bad.status, bad.json["code"].as_str()),
            (400, Some("invalid_body")),
            "{bad:?}"
        );
        let metrics = app.get("/metrics").await.text;
        for (outcome, n) in [("ok", 2), ("mismatch", 3)] {
            let line = format!(r#"cas_outcomes_total{{mode="{mode}",outcome="{outcome}"}} {n}"#);
            assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
        }
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("app_requests_total") && l.contains(r#"operation="cas""#)),
            "{metrics}"
        );
    }
    t.shutdown().await;
}

#[tokio::test]
async fn cp_cas_with_the_replication_link_cut_is_indeterminate_and_may_appear() {
    let t = Topology::start().await;
    assert_eq!(t.cp.post("/cas/cut/x/y").await.status, 409);
    // g2 replicates through `cluster_g1`: disabled, no replica can confirm.
    t.proxy.set_enabled("cluster_g1", false).await;
    let reply = cas_body(&t.cp, "cut", r#"{"expected": null, "new": "x"}"#).await;
    t.proxy.set_enabled("cluster_g1", true).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(
        (
            reply.json["outcome"].as_str(),
            reply.json["replicated"].as_bool()
        ),
        (Some("indeterminate"), Some(false)),
        "{reply:?}"
    );
    assert!(reply.json["version"].as_u64().is_some(), "{reply:?}");
    assert!(
        reply.json["error"].as_str().unwrap_or("").contains("WAIT"),
        "{reply:?}"
    );
    // Not rolled back: it applied on g1, and a later cas sees it.
    assert_eq!(
        raw_value(&t.pair.g1.url(), "cut").await.as_deref(),
        Some("x")
    );

    // Unconfirmed cas operations count on the replication breaker like writes; once it is
    // open a cas is refused before it is sent: failed, and not applied.
    t.proxy.set_enabled("cluster_g1", false).await;
    let mut indeterminate = 1;
    let mut held = "x".to_string();
    for i in 0..10 {
        let r = t.cp.post(&format!("/cas/cut/{held}/n{i}")).await;
        match r.json["outcome"].as_str() {
            Some("indeterminate") => {
                indeterminate += 1;
                held = format!("n{i}");
            }
            Some("failed") => break,
            other => panic!("cas {i}: {other:?} {r:?}"),
        }
    }
    assert_eq!(t.cp.breaker_state("replication").await, "open");
    let before = raw_value(&t.pair.g1.url(), "cut").await;
    let refused = t.cp.post(&format!("/cas/cut/{held}/never")).await;
    assert_eq!(
        (refused.status, refused.json["outcome"].as_str()),
        (503, Some("failed")),
        "{refused:?}"
    );
    assert_eq!(
        raw_value(&t.pair.g1.url(), "cut").await,
        before,
        "not applied"
    );
    t.proxy.set_enabled("cluster_g1", true).await;
    let metrics = t.cp.get("/metrics").await.text;
    let line =
        format!(r#"cas_outcomes_total{{mode="cp",outcome="indeterminate"}} {indeterminate}"#);
    assert!(metrics.contains(&line), "{line}:\n{metrics}");
    t.shutdown().await;
}

#[tokio::test]
async fn ap_cas_with_the_primary_unreachable_fails_and_is_never_queued() {
    let t = Topology::start().await;
    assert_eq!(t.ap.post("/write/apk/0").await.status, 200);
    t.proxy.set_enabled("g1", false).await;
    // A write queues (202); a cas is refused: its comparison needs the primary's value.
    assert_eq!(t.ap.post("/write/other/1").await.status, 202);
    let reply = t.ap.post("/cas/apk/0/1").await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.json["queued"].as_bool(), Some(false), "{reply:?}");
    assert_eq!(reply.json["outcome"].as_str(), Some("failed"), "{reply:?}");
    let rep = t.ap.get("/replication").await;
    assert_eq!(
        rep.json["ap_queue_depth"].as_u64(),
        Some(1),
        "only the write: {rep:?}"
    );
    t.proxy.set_enabled("g1", true).await;
    t.ap.wait_for("/replication", Duration::from_secs(10), |r| {
        r.json["ap_queue_depth"] == 0
    })
    .await;
    assert_eq!(
        raw_value(&t.pair.g1.url(), "apk").await.as_deref(),
        Some("0")
    );
    t.shutdown().await;
}

#[tokio::test]
async fn a_replica_refuses_a_cas_as_not_primary_whether_or_not_it_matches() {
    let pair = streaming_pair().await;
    let app = TestApp::over(Mode::Cp, &pair).await;
    assert_eq!(app.post("/write/r/a").await.status, 200);
    app.shutdown().await;
    let metrics = Metrics::new(Mode::Cp).unwrap();
    let config = test_config(Mode::Cp, &pair);
    let g2 = connect_node(NodeId::G2, &pair, &config, &metrics).await;
    for expected in [Some("a"), Some("zz"), None] {
        let cas = CasRequest::new("r".into(), expected.map(str::to_string), "b".into());
        let got = g2.cas(&cas).await;
        assert!(
            matches!(got, Err(NodeError::NotPrimary { node: "g2" })),
            "expected {expected:?}: {got:?}"
        );
    }
    assert_eq!(raw_value(&pair.g2.url(), "r").await.as_deref(), Some("a"));
    g2.quit().await;
}
