//! `caplab scenario run --lab`: the runner starts a private local lab (`caplab::lab::Lab`), runs
//! a scenario with node steps against it, and takes it down.

use std::time::Duration;

use serde_json::Value;

const CRASH: &str = r#"name = "lab-crash"
targets = ["cp", "ap"]
[workload]
rate = 30
duration = "6s"
keys = 6
timeout = "2s"
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
max = 0.3
lesson = "without a replica CP refuses writes"
[[threshold]]
target = "ap"
phase = "down"
metric = "availability"
min = 0.9
lesson = "AP answers from the primary"
"#;

/// Runs `scenario` with `caplab scenario run --lab` into a temporary directory, expects exit 0
/// and returns the report and the run's output directory (kept alive by the returned guard).
async fn run_with_lab(scenario: &str) -> (Value, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.toml");
    std::fs::write(&file, scenario).unwrap();
    let out = dir.path().join("out");
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_caplab"))
            .args(["scenario", "run"])
            .arg(&file)
            .arg("--lab")
            .arg("--out")
            .arg(&out)
            .arg("--no-progress")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the run ends")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    (report, out, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_runs_node_steps_and_goes_down() {
    let (report, out, _dir) = run_with_lab(CRASH).await;
    let steps = report["steps"].as_array().unwrap();
    let done: Vec<&str> = steps
        .iter()
        .map(|s| s["description"].as_str().unwrap())
        .collect();
    assert_eq!(done, ["kill g2", "restart g2"]);
    assert!(steps.iter().all(|s| s["error"].is_null()), "{steps:?}");
    // CP really lost its replica: writes refused while g2 was down.
    let cp = &report["targets"][0];
    let phase = |name: &str| {
        let p = cp["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap();
        (
            p["fail"].as_u64().unwrap() + p["info"].as_u64().unwrap(),
            p.clone(),
        )
    };
    let (errors_before, before) = phase("before");
    assert_eq!(errors_before, 0, "CP refused before the fault: {before}");
    let (errors_down, down) = phase("down");
    assert!(
        errors_down > 0,
        "CP refused nothing without its replica: {down}"
    );
    // The lab is down: its record is gone and its apps no longer answer.
    assert!(!out.join("lab").join("lab.json").exists());
    let cp_url = report["endpoints"]["cp"].as_str().unwrap();
    let answer = reqwest::Client::new()
        .get(format!("{cp_url}/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(answer.is_err(), "the lab's CP still answers at {cp_url}");
}

const PRIMARY_CRASH: &str = r#"name = "lab-primary-crash"
targets = ["cp", "ap"]
[workload]
rate = 40
duration = "18s"
keys = 20
timeout = "2s"
settle = "500ms"
[[phase]]
name = "before"
at = "0s"
[[phase]]
name = "crash"
at = "1s"
[[step]]
at = "1s"
action = "kill"
node = "g1"
[[step]]
at = "5s"
action = "restart"
node = "g1"
[[threshold]]
target = "cp"
metric = "lost_writes"
max = 0
lesson = "CP loses nothing it acknowledged"
[[threshold]]
target = "cp"
metric = "linearizable"
equals = true
lesson = "CP stays linearizable"
[[threshold]]
target = "cp"
metric = "acked_writes_without_replica"
max = 0
lesson = "CP acknowledges nothing until the old primary has rejoined"
[[threshold]]
target = "cp"
metric = "read_recovery_ms"
max = 1500
lesson = "CP reads are back on the new primary within about a second of the pair being whole"
"#;

/// A killed primary through `caplab scenario run --lab`: the sentinels promote g2, both apps
/// move to it, CP takes writes again once the restarted g1 is g2's replica, and loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_primary_crash_moves_both_apps_and_cp_writes_return() {
    let (report, _out, _dir) = run_with_lab(PRIMARY_CRASH).await;
    for target in report["targets"].as_array().unwrap() {
        let f = &target["failover"];
        assert_eq!(
            (f["from"].as_str(), f["to"].as_str()),
            (Some("g1"), Some("g2")),
            "{} did not move to g2: {f}",
            target["target"]
        );
        assert!(f["first_ok_write_ms"].is_number(), "{f}");
    }
    let cp = &report["targets"][0]["failover"];
    let (whole, write) = (
        cp["whole_again_ms"].as_f64().unwrap(),
        cp["first_ok_write_ms"].as_f64().unwrap(),
    );
    assert!(
        write >= whole,
        "CP wrote on g2 at {write} ms, before g1 rejoined at {whole} ms"
    );
    eprintln!("CP: {cp}");
    assert!(report["settled"]["settled"].as_bool().unwrap());
}
