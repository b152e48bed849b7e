//! The scenario runner end to end, against the whole topology built in-process
//! (`common::topology`): real Redis nodes, the embedded Toxiproxy-compatible server, CP and
//! AP apps. The binary is run as a user runs it; node steps go through a test `LabControl`.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use caplab::check::{CheckOptions, History, Validity, check_history};
use caplab::lab::{LabNode, NodeAction};
use caplab::scenario::{RunOptions, run_scenario, validate_str};
use common::topology::{PairLab, Topology};
use serde_json::Value;

const PARTITION: &str = r#"name = "short-partition"
description = "replication cut for 2 s"
targets = ["cp", "ap"]

[workload]
rate = 40
duration = "6s"
read_ratio = 0.5
keys = 8
clients = 8
session_clients = 2
seed = 11
timeout = "2s"
settle = "500ms"

[[phase]]
name = "baseline"
at = "0s"

[[phase]]
name = "partition"
at = "2s"

[[phase]]
name = "recovery"
at = "4s"

[[step]]
at = "2s"
action = "down"
proxy = "cluster_g1"

[[step]]
at = "4s"
action = "up"
proxy = "cluster_g1"

[[threshold]]
target = "cp"
phase = "baseline"
metric = "availability"
min = 0.99
lesson = "before the partition CP answers"

[[threshold]]
target = "cp"
phase = "partition"
metric = "write_availability"
max = 0.25
lesson = "CP refuses writes it cannot replicate"

[[threshold]]
target = "cp"
metric = "linearizable"
equals = true
lesson = "CP stays linearizable"

[[threshold]]
target = "ap"
phase = "partition"
metric = "availability"
min = 0.95
lesson = "AP keeps answering"
"#;

/// Runs the binary against `topo` with `file`; returns (exit code, stdout, stderr).
async fn run_binary(
    topo_args: &[String],
    file: &Path,
    out: &Path,
) -> (Option<i32>, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args(["scenario", "run"])
        .arg(file)
        .args(topo_args)
        .arg("--out")
        .arg(out)
        .arg("--no-progress")
        .kill_on_drop(true)
        .output()
        .await
        .expect("run caplab");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// Run options for an in-process run: reports into `out`, no progress bar.
fn quiet_options(out: &std::path::Path, check_timeout: Duration) -> RunOptions {
    RunOptions {
        out: out.to_path_buf(),
        progress: false,
        check_timeout,
    }
}

fn topo_args(topo: &Topology) -> Vec<String> {
    let e = topo.endpoints();
    vec![
        "--cp".into(),
        e.cp,
        "--ap".into(),
        e.ap,
        "--toxiproxy".into(),
        e.toxiproxy,
    ]
}

/// Every proxy enabled and without toxics.
async fn assert_proxies_clean(topo: &Topology) {
    let proxies = topo.proxy.call("GET", "/proxies", None).await.body;
    for name in ["g1", "g2", "cluster_g1", "cluster_g2"] {
        let p = &proxies[name];
        assert_eq!(p["enabled"], true, "{name} left disabled: {p}");
        assert_eq!(
            p["toxics"].as_array().map(Vec::len),
            Some(0),
            "{name} left with toxics: {p}"
        );
    }
}

fn phase<'a>(target: &'a Value, name: &str) -> &'a Value {
    target["phases"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no phase {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_partition_runs_checks_and_reports() {
    let topo = Topology::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("partition.toml");
    std::fs::write(&file, PARTITION).unwrap();
    let out = dir.path().join("out");
    let (code, stdout, stderr) = run_binary(&topo_args(&topo), &file, &out).await;
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("PASSED"), "{stdout}");
    assert_proxies_clean(&topo).await;

    // The history is valid input for the checker, and CP's part is linearizable.
    let text = std::fs::read_to_string(out.join("history.jsonl")).unwrap();
    let history = History::parse(text.as_bytes()).expect("a well-formed history");
    let cp = check_history(
        &history,
        &CheckOptions {
            mode: Some("cp".into()),
            final_phase: Some("final".into()),
            ..CheckOptions::default()
        },
    );
    assert_eq!(cp.linearizability.valid, Validity::Valid);
    assert!(text.contains(r#""phase":"partition""#) && text.contains(r#""phase":"final""#));
    assert!(
        text.contains(r#""session":"ap-s0""#),
        "session clients are named"
    );

    // The report: phases, the fault really happened (CP errors during it, none before).
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["passed"], true);
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    for s in steps {
        assert!(s["error"].is_null(), "{s}");
        let late = s["applied_ms"].as_f64().unwrap() - s["planned_ms"].as_f64().unwrap();
        assert!(
            (0.0..1000.0).contains(&late),
            "step applied {late} ms after plan"
        );
    }
    let cp_report = &report["targets"][0];
    assert_eq!(cp_report["target"], "cp");
    let before = phase(cp_report, "baseline");
    assert_eq!(
        before["fail"].as_u64().unwrap() + before["info"].as_u64().unwrap(),
        0
    );
    let during = phase(cp_report, "partition");
    assert!(
        during["fail"].as_u64().unwrap() + during["info"].as_u64().unwrap() > 0,
        "CP refused nothing during the partition: {during}"
    );
    let sent = cp_report["sent"].as_u64().unwrap();
    let scheduled = cp_report["scheduled"].as_u64().unwrap();
    assert_eq!(scheduled, 240);
    assert_eq!(sent + cp_report["dropped"].as_u64().unwrap(), scheduled);
    assert!(report["fault_windows"].as_array().unwrap().len() == 1);

    // The fault window as a Grafana region annotation, in Unix ms inside the run.
    let annotations = std::fs::read_to_string(out.join("grafana-annotations.jsonl")).unwrap();
    let lines: Vec<Value> = annotations
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{annotations}");
    let started = report["started_unix_ms"].as_u64().unwrap();
    let window = &report["fault_windows"][0];
    let (time, end) = (
        lines[0]["time"].as_u64().unwrap(),
        lines[0]["timeEnd"].as_u64().unwrap(),
    );
    assert_eq!(
        time,
        started + window["from_ms"].as_f64().unwrap().round() as u64
    );
    assert!(end > time && end <= started + report["elapsed_ms"].as_f64().unwrap() as u64 + 1);
    let tags: Vec<&str> = lines[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        tags.contains(&"caplab") && tags.contains(&"fault") && tags.contains(&"cluster_g1"),
        "{tags:?}"
    );

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("CP refuses writes it cannot replicate"),
        "lessons in the summary"
    );

    // report.html is self-contained and each plot holds the recorded series.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for external in ["<script", "<link", " src=", "@import", "url("] {
        assert!(
            !html.contains(external),
            "report.html references {external}"
        );
    }
    let series_len = cp_report["series"].as_array().unwrap().len();
    assert!(series_len >= 5);
    for plot in ["latency", "throughput", "errors"] {
        let tag = format!("data-plot=\"{plot}\" data-points=\"{series_len}\"");
        assert!(html.contains(&tag), "missing {tag}");
    }
    assert!(html.matches("<svg").count() >= 10, "five plots per target");
    assert!(html.matches("<polyline").count() >= 6, "lines drawn");
    // AP answered from the cut-off replica: not linearizable, and the page draws why, next
    // to how stale its reads were; CP gets no such picture.
    let ap = &report["targets"][1];
    assert_eq!(ap["target"], "ap");
    assert_eq!(
        ap["check"]["linearizability"]["valid"], false,
        "{}",
        ap["check"]
    );
    assert!(html.contains("<h3>Why AP is not linearizable</h3>"));
    assert!(html.contains("data-stuck=\"true\""));
    assert!(!html.contains("Why CP is not linearizable"));
    assert!(html.contains("How stale, how often: under 100 ms"));
    assert_eq!(
        ap["check"]["stale_reads"]["by_age"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert!(md.contains("(`report.html` draws why)"), "{md}");
    topo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_threshold_exits_1_and_a_missing_toxiproxy_exits_2() {
    let topo = Topology::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strict.toml");
    // No fault, yet CP must be unavailable: that cannot hold.
    let strict = r#"name = "impossible"
targets = ["cp"]
[workload]
rate = 20
duration = "2s"
keys = 4
final_reads = false
[[threshold]]
target = "cp"
metric = "availability"
max = 0.5
lesson = "this threshold must fail"
"#;
    std::fs::write(&file, strict).unwrap();
    let (code, stdout, stderr) = run_binary(&topo_args(&topo), &file, &dir.path().join("a")).await;
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("FAIL availability[cp] <= 0.5 = 1.0000"),
        "{stdout}"
    );

    // Toxiproxy unreachable: exit 2, and the message names it.
    let closed = caplab::lab::ports::free_port().unwrap();
    let mut args = topo_args(&topo);
    args[5] = format!("127.0.0.1:{closed}");
    let (code, _, stderr) = run_binary(&args, &file, &dir.path().join("b")).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("Toxiproxy") && stderr.contains(&closed.to_string()),
        "{stderr}"
    );
    topo.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_target_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "name = \"x\"\ntargets = [\"cp\"]\n[workload]\nrate = 1\nduration = \"1s\"\nkeys = 1\n",
    )
    .unwrap();
    let closed = caplab::lab::ports::free_port().unwrap();
    let url = format!("http://127.0.0.1:{closed}");
    let args = vec![
        "--cp".to_string(),
        url.clone(),
        "--toxiproxy".into(),
        "127.0.0.1:1".into(),
    ];
    let (code, _, stderr) = run_binary(&args, &file, &dir.path().join("o")).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach CP at {url}")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_fault_resets_the_proxies_and_exits_2() {
    let topo = Topology::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("long.toml");
    let long = r#"name = "long-fault"
targets = ["cp", "ap"]
[workload]
rate = 20
duration = "30s"
keys = 4
[[step]]
at = "1s"
action = "toxic"
proxy = "g2"
toxic = "latency"
latency = 200
[[step]]
at = "1s"
action = "down"
proxy = "cluster_g1"
[[step]]
at = "29s"
action = "heal"
[[threshold]]
target = "cp"
metric = "availability"
min = 0.0
lesson = "never reached"
"#;
    std::fs::write(&file, long).unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args(["scenario", "run"])
        .arg(&file)
        .args(topo_args(&topo))
        .arg("--out")
        .arg(dir.path().join("o"))
        .arg("--no-progress")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap() as i32;
    // Wait until the fault is in place.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = topo
            .proxy
            .call("GET", "/proxies/cluster_g1", None)
            .await
            .body;
        if p["enabled"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "the fault never happened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the runner stops after SIGINT")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGINT") && stderr.contains("was reset"),
        "{stderr}"
    );
    assert_proxies_clean(&topo).await;
    topo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_steps_kill_and_restart_through_lab_control() {
    let mut topo = Topology::start().await;
    let endpoints = topo.endpoints();
    let scenario = validate_str(
        "crash.toml",
        r#"name = "crash"
targets = ["cp"]
[workload]
rate = 30
duration = "6s"
keys = 6
timeout = "1s"
settle = "1s"
[[phase]]
name = "before"
at = "0s"
[[phase]]
name = "down"
at = "2s"
[[phase]]
name = "after"
at = "4s"
[[step]]
at = "2s"
action = "kill"
node = "g2"
[[step]]
at = "4s"
action = "restart"
node = "g2"
[[threshold]]
target = "cp"
phase = "down"
metric = "write_availability"
max = 0.25
lesson = "without a replica CP refuses writes"
[[threshold]]
target = "cp"
phase = "down"
metric = "read_availability"
max = 0.25
lesson = "without a replica CP cannot fence a read (prove it is still the primary), so it refuses reads too"
[[threshold]]
target = "cp"
metric = "linearizable"
equals = true
lesson = "CP stays linearizable"
"#,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = quiet_options(dir.path(), Duration::from_secs(30));
    let g2_pid = topo.pair.g2.pid();
    let mut lab = PairLab {
        pair: &mut topo.pair,
        applied: Vec::new(),
    };
    let outcome = run_scenario(&scenario, &endpoints, &mut lab, &opts)
        .await
        .expect("the run happens");
    assert_eq!(
        lab.applied,
        vec![
            (LabNode::G2, NodeAction::Kill),
            (LabNode::G2, NodeAction::Restart)
        ]
    );
    assert_ne!(topo.pair.g2.pid(), g2_pid, "g2 is a new process");
    let failed: Vec<_> = outcome
        .report
        .thresholds
        .iter()
        .filter(|t| !t.passed)
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(outcome.exit_code, 0);
    let steps = &outcome.report.steps;
    assert_eq!(steps.len(), 2);
    assert!(steps.iter().all(|s| s.error.is_none()));
    topo.shutdown().await;
}

/// A lab whose every node action fails.
struct BrokenLab;

impl caplab::scenario::LabControl for BrokenLab {
    async fn node_action(&mut self, node: LabNode, action: NodeAction) -> Result<(), String> {
        Err(format!("no {node} to {action} here"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_stops_the_run_and_resets_the_proxies() {
    let topo = Topology::start().await;
    let scenario = validate_str(
        "broken-step.toml",
        r#"name = "broken-step"
targets = ["cp"]
[workload]
rate = 20
duration = "5s"
keys = 4
[[step]]
at = "500ms"
action = "down"
proxy = "cluster_g1"
[[step]]
at = "1s"
action = "kill"
node = "g2"
[[threshold]]
target = "cp"
metric = "availability"
min = 0.0
lesson = "never evaluated"
"#,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = quiet_options(dir.path(), Duration::from_secs(5));
    let started = Instant::now();
    let err = run_scenario(&scenario, &topo.endpoints(), &mut BrokenLab, &opts)
        .await
        .expect_err("a failed step is an error");
    let text = err.to_string();
    assert!(
        text.contains("line 12") && text.contains("no g2 to kill here"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the run stopped at the failed step"
    );
    assert_proxies_clean(&topo).await;
    topo.shutdown().await;
}
