//! A split brain run by the scenario runner against real sentinels (`down cluster_g1` while
//! the apps still reach g1; docs/design.md, "Topology"), then the final state read from both
//! nodes directly, not through the apps. The AP writes the checker reports lost are exactly the
//! acknowledged writes that final state does not reflect, each named with the node that took
//! it (the deposed g1); the same run shows CP lost none, stayed linearizable and acknowledged
//! nothing while no second copy could be made.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use caplab::check::Validity;
use caplab::config::Mode;
use caplab::scenario::{Endpoints, NoLab, RunOptions, run_scenario, validate_str};
use common::app::{TestApp, raw_value};
use common::failover::{FailoverApps, wait_cp_acknowledges};
use serde_json::Value;

const SPLIT_BRAIN: &str = r#"name = "short-split-brain"
targets = ["cp", "ap"]

[workload]
rate = 60
duration = "7s"
read_ratio = 0.5
# Many keys: a write the deposed primary took is rarely written again after the switch.
keys = 300
clients = 8
seed = 21
timeout = "2s"
settle = "500ms"

[[phase]]
name = "before"
at = "0s"

[[phase]]
name = "split"
at = "1500ms"

[[step]]
at = "1500ms"
action = "down"
proxy = "cluster_g1"

[[step]]
at = "5s"
action = "up"
proxy = "cluster_g1"

[[threshold]]
target = "ap"
metric = "lost_writes"
min = 1
lesson = "AP loses what the deposed primary acknowledged"

[[threshold]]
target = "cp"
metric = "lost_writes"
max = 0
lesson = "CP loses nothing"
"#;

/// One write of the history: its value, times (ns) and how it ended.
struct Write {
    value: String,
    invoke: u64,
    complete: Option<u64>,
    ok: bool,
}

/// The AP writes of `history.jsonl`, per key, and the `node` of every `ok` completion.
fn writes_and_nodes(history: &str, mode: &str) -> (BTreeMap<String, Vec<Write>>, Vec<Value>) {
    let mut open: BTreeMap<u64, Value> = BTreeMap::new();
    let mut writes: BTreeMap<String, Vec<Write>> = BTreeMap::new();
    let mut ok_completions = Vec::new();
    for line in history.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        if e["mode"] != mode {
            continue;
        }
        let process = e["process"].as_u64().unwrap();
        if e["type"] == "invoke" {
            open.insert(process, e);
            continue;
        }
        let invoke = open.remove(&process).unwrap();
        if e["type"] == "ok" {
            ok_completions.push(e.clone());
        }
        if e["f"] == "write" && e["type"] != "fail" {
            writes
                .entry(e["key"].as_str().unwrap().to_string())
                .or_default()
                .push(Write {
                    value: invoke["value"].as_str().unwrap().to_string(),
                    invoke: invoke["time"].as_u64().unwrap(),
                    complete: (e["type"] == "ok").then(|| e["time"].as_u64().unwrap()),
                    ok: e["type"] == "ok",
                });
        }
    }
    (writes, ok_completions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_brain_lost_writes_are_exactly_the_acknowledged_writes_missing_on_both_nodes() {
    let started = Instant::now();
    let lab = FailoverApps::start().await;
    let sentinels = lab.pair.sentinels_addr.clone();
    let cp = TestApp::start(lab.config(Mode::Cp, &sentinels)).await;
    let ap = TestApp::start(lab.config(Mode::Ap, &sentinels)).await;
    wait_cp_acknowledges(&cp, Duration::from_secs(10)).await;

    let scenario = validate_str("split.toml", SPLIT_BRAIN).unwrap();
    let endpoints = Endpoints {
        cp: format!("http://{}", cp.addr),
        ap: format!("http://{}", ap.addr),
        toxiproxy: lab.proxy.api(),
    };
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out: dir.path().to_path_buf(),
        progress: false,
        check_timeout: Duration::from_secs(20),
    };
    let outcome = run_scenario(&scenario, &endpoints, &mut NoLab, &opts)
        .await
        .expect("the run happens");
    let report = &outcome.report;
    let settled = report.settled.clone().expect("final reads were made");
    assert!(settled.settled, "the pair never settled: {settled:?}");
    assert_eq!(settled.primary.as_deref(), Some("g2"));
    eprintln!(
        "run {:.1} s; the pair was whole {:.0} ms after the settle",
        report.elapsed_ms / 1000.0,
        settled.waited_ms
    );

    // The final state, from both nodes directly: they agree (g1 is g2's replica again).
    let history = std::fs::read_to_string(dir.path().join("history.jsonl")).unwrap();
    let (writes, ap_oks) = writes_and_nodes(&history, "ap");
    let mut final_state: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for key in writes.keys() {
        let on_g2 = raw_value(&lab.pair.g2.url(), key).await;
        let on_g1 = raw_value(&lab.pair.g1.url(), key).await;
        assert_eq!(on_g1, on_g2, "g1 and g2 disagree on {key}");
        final_state.insert(key, on_g2);
    }

    // The acknowledged writes the final state does not reflect. Values are unique, so the
    // final value names the one write it came from; an acknowledged write is missing when it
    // is not that write and began after that write had certainly finished (so no order of
    // the two can end with the final value).
    let mut missing: BTreeSet<(String, String)> = BTreeSet::new();
    for (key, ws) in &writes {
        let last = final_state[key.as_str()].as_deref();
        let reach = match last {
            None => None,
            Some(v) => {
                let w = ws
                    .iter()
                    .find(|w| w.value == v)
                    .expect("a write of the final value");
                Some(w.complete.unwrap_or(u64::MAX))
            }
        };
        for w in ws.iter().filter(|w| w.ok && Some(w.value.as_str()) != last) {
            if reach.is_none_or(|end| end < w.invoke) {
                missing.insert((key.clone(), w.value.clone()));
            }
        }
    }

    let ap_report = &report.targets[1];
    assert_eq!(ap_report.target.as_str(), "ap");
    let lost = &ap_report.check.lost_writes.lost;
    let reported: BTreeSet<(String, String)> = lost
        .iter()
        .map(|l| (l.key.clone(), l.value.clone().unwrap()))
        .collect();
    eprintln!(
        "AP: {} acknowledged writes lost, {} missing on the nodes",
        reported.len(),
        missing.len()
    );
    assert!(!missing.is_empty(), "the split brain lost nothing");
    assert_eq!(reported, missing);
    assert_eq!(lost.len(), reported.len(), "each lost write once");
    // Each was taken by the deposed g1, after the cut.
    let cut_ms = report.steps[0].applied_ms;
    for l in lost {
        assert_eq!(l.node.as_deref(), Some("g1"), "{l:?}");
        assert!(
            l.acknowledged_ms >= cut_ms - 50.0,
            "{l:?} before the cut at {cut_ms}"
        );
    }
    // The runner recorded the node of every ok completion.
    assert!(
        ap_oks.iter().all(|e| e["node"].is_string()),
        "an ok completion without a node"
    );

    // CP: nothing lost, linearizable, nothing acknowledged without a second copy, and it
    // read from g2 once g1 was its replica.
    let cp_report = &report.targets[0];
    assert_eq!(cp_report.check.lost_writes.writes_lost, 0);
    assert!(cp_report.check.lost_writes.keys_verified > 0);
    assert_eq!(cp_report.check.linearizability.valid, Validity::Valid);
    let f = &cp_report.failover;
    assert_eq!(f.to.as_deref(), Some("g2"), "{f:?}");
    assert_eq!(f.acked_writes_without_replica, Some(0), "{f:?}");
    assert!(
        outcome.report.thresholds.iter().all(|t| t.passed),
        "{:#?}",
        outcome.report.thresholds
    );
    cp.shutdown().await;
    ap.shutdown().await;
    eprintln!("test took {:.1} s", started.elapsed().as_secs_f64());
}
