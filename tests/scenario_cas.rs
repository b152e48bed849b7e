//! Jepsen's register workload (`cas_ratio`) run by the scenario runner against both modes
//! through the two-step replication cut, on the in-process topology (real Redis nodes, the
//! embedded proxy, CP and AP apps), with the checker judging the recorded history: CP's
//! read/write/cas history must be linearizable.

mod common;

use std::time::Duration;

use caplab::check::{CheckOptions, History, OpKind, Validity, check_history};
use caplab::scenario::{RunOptions, run_scenario, validate_str};
use common::topology::{PairLab, Topology};

/// `scenarios/register-cas.toml`, shortened to seconds.
const REGISTER_CAS: &str = r#"name = "register-cas-short"
description = "read/write/cas register mix through a replication cut"
targets = ["cp", "ap"]

[workload]
rate = 40
duration = "7s"
read_ratio = 0.4
cas_ratio = 0.3
keys = 2
clients = 6
seed = 16
timeout = "2s"
settle = "500ms"

[[phase]]
name = "baseline"
at = "0s"

[[phase]]
name = "cut"
at = "2s"

[[phase]]
name = "recovery"
at = "5s"

[[step]]
at = "2s"
action = "down"
proxy = "cluster_g2"

[[step]]
at = "2s"
action = "down"
proxy = "cluster_g1"

[[step]]
at = "5s"
action = "up"
proxy = "cluster_g1"

[[step]]
at = "5s"
action = "up"
proxy = "cluster_g2"

[[threshold]]
target = "cp"
metric = "linearizable"
equals = true
lesson = "CP's read/write/cas history is linearizable through the cut"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_register_mix_through_a_replication_cut_keeps_cp_linearizable() {
    let mut topo = Topology::start().await;
    let scenario = validate_str("register-cas-short.toml", REGISTER_CAS).unwrap();
    let endpoints = topo.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out: dir.path().to_path_buf(),
        progress: false,
        check_timeout: Duration::from_secs(60),
    };
    let mut lab = PairLab {
        pair: &mut topo.pair,
        applied: Vec::new(),
    };
    let outcome = run_scenario(&scenario, &endpoints, &mut lab, &opts)
        .await
        .expect("the run happens");

    let text = std::fs::read_to_string(dir.path().join("history.jsonl")).unwrap();
    let history = History::parse(text.as_bytes()).expect("a well-formed history");
    for mode in ["cp", "ap"] {
        let cas: Vec<_> = history
            .ops
            .iter()
            .filter(|o| o.f == OpKind::Cas && history.key_name(o.key).starts_with(mode))
            .collect();
        assert!(cas.len() > 20, "{mode}: {} cas operations", cas.len());
    }
    // Both outcomes a cas has when it gets an answer: applied, and did not match (409).
    for needle in [r#""type":"ok","f":"cas""#, r#""type":"fail","f":"cas""#] {
        assert!(text.contains(needle), "no {needle} in the history");
    }
    let cp = check_history(
        &history,
        &CheckOptions {
            mode: Some("cp".into()),
            final_phase: Some("final".into()),
            ..CheckOptions::default()
        },
    );
    assert_eq!(
        cp.linearizability.valid,
        Validity::Valid,
        "{:?}",
        cp.linearizability
    );
    // CP did feel the cut: some operations were refused or left unknown.
    let cut_events = text
        .lines()
        .filter(|l| l.contains(r#""mode":"cp""#) && l.contains(r#""phase":"cut""#))
        .filter(|l| l.contains(r#""type":"fail""#) || l.contains(r#""type":"info""#))
        .count();
    assert!(cut_events > 0, "CP refused nothing during the cut");
    let failed: Vec<_> = outcome
        .report
        .thresholds
        .iter()
        .filter(|t| !t.passed)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(outcome.exit_code, 0);
    // AP's verdict is whatever it is (the cut-off replica answers its reads); it is judged.
    let ap = check_history(
        &history,
        &CheckOptions {
            mode: Some("ap".into()),
            final_phase: Some("final".into()),
            ..CheckOptions::default()
        },
    );
    assert_ne!(ap.linearizability.valid, Validity::Unknown, "AP was judged");
    eprintln!(
        "AP register mix: linearizable = {:?}",
        ap.linearizability.valid
    );
    topo.shutdown().await;
}
