//! Scenario files: every shipped scenario validates, and broken files are refused with errors
//! that name the file, the line and the field.

use std::path::Path;

use caplab::scenario::spec::StepAction;
use caplab::scenario::{FileErrors, validate_str};

const GOOD: &str = r#"name = "t"
description = "a test"
targets = ["cp", "ap"]

[workload]
rate = 10
duration = "10s"
keys = 5

[[phase]]
name = "before"
at = "0s"

[[phase]]
name = "during"
at = "2s"

[[step]]
at = "2s"
action = "toxic"
proxy = "cluster_g1"
toxic = "latency"
latency = 100
jitter = 10

[[step]]
at = "5s"
action = "heal"

[[threshold]]
target = "cp"
phase = "during"
metric = "availability"
min = 0.5
lesson = "a lesson"
"#;

/// The single problem of `text`, as (line, field, message).
fn problem(text: &str) -> (usize, String, String) {
    match validate_str("broken.toml", text) {
        Ok(_) => panic!("accepted a broken file:\n{text}"),
        Err(FileErrors::Invalid(problems)) => {
            let p = &problems[0];
            let shown = p.to_string();
            assert!(
                shown.starts_with(&format!("broken.toml:{}: ", p.line)),
                "{shown}"
            );
            (p.line, p.field.clone(), p.message.clone())
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle} not in the text"))
}

#[test]
fn the_benchmark_scenarios_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            caplab::scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert_eq!(n, 3, "benches/scenarios holds the three lab-rate scenarios");
}

#[test]
fn every_shipped_scenario_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let s = caplab::scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!s.thresholds.is_empty(), "{} has no thresholds", s.name);
            assert!(s.thresholds.iter().all(|t| !t.lesson.is_empty()));
            assert!(
                s.workload.duration.as_secs() <= 60,
                "{} is long ({:?})",
                s.name,
                s.workload.duration
            );
            names.push(s.name);
        }
    }
    names.sort();
    for required in [
        "baseline",
        "blackhole-g2",
        "failover-split-brain",
        "flaky-link",
        "load-test",
        "primary-crash-failover",
        "primary-partition",
        "replica-crash",
        "replica-slow",
        "replication-partition",
        "split-brain-apps-blind",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "missing {required}: {names:?}"
        );
    }
}

#[test]
fn the_good_file_validates_into_what_it_says() {
    let s = validate_str("good.toml", GOOD).unwrap();
    assert_eq!(s.steps.len(), 2);
    assert_eq!(s.steps[0].line, line_of(GOOD, "[[step]]") + 1);
    assert_eq!(s.phases.len(), 2);
    assert_eq!(s.phase_at(std::time::Duration::from_secs(3)), "during");
    assert_eq!(s.last_heal(), Some(std::time::Duration::from_secs(5)));
}

#[test]
fn unknown_field_names_line_and_field() {
    let text = GOOD.replace("keys = 5", "keys = 5\nkeyz = 6");
    let (line, field, message) = problem(&text);
    assert_eq!(line, line_of(&text, "keyz"));
    assert_eq!(field, "keyz");
    assert!(message.contains("unknown field"), "{message}");
}

#[test]
fn wrong_type_names_line_and_field() {
    let text = GOOD.replace("rate = 10", "rate = \"ten\"");
    let (line, field, _) = problem(&text);
    assert_eq!((line, field.as_str()), (line_of(&text, "\"ten\""), "rate"));
}

#[test]
fn bad_offset_names_line_and_field() {
    let text = GOOD.replace("at = \"5s\"", "at = \"50s\"");
    let (line, field, message) = problem(&text);
    assert_eq!(line, line_of(&text, "50s"));
    assert_eq!(field, "step[1].at");
    assert!(message.contains("after the end of the load"), "{message}");

    let text = GOOD.replace("at = \"5s\"", "at = \"soon\"");
    let (line, field, message) = problem(&text);
    assert_eq!(
        (line, field.as_str()),
        (line_of(&text, "soon"), "step[1].at")
    );
    assert!(message.contains("bad duration"), "{message}");
}

#[test]
fn unknown_proxy_and_toxic_name_line_and_field() {
    let text = GOOD.replace("proxy = \"cluster_g1\"", "proxy = \"g3\"");
    let (line, field, message) = problem(&text);
    assert_eq!(
        (line, field.as_str()),
        (line_of(&text, "g3"), "step[0].proxy")
    );
    assert!(
        message.contains("g1, g2, cluster_g1, cluster_g2, sentinels"),
        "{message}"
    );

    let text = GOOD.replace("toxic = \"latency\"", "toxic = \"lag\"");
    let (line, field, message) = problem(&text);
    assert_eq!(
        (line, field.as_str()),
        (line_of(&text, "\"lag\""), "step[0].toxic")
    );
    assert!(message.contains("unknown toxic"), "{message}");

    // An attribute of another toxic type.
    let text = GOOD.replace("jitter = 10", "jitter = 10\nbytes = 5");
    let (line, field, _) = problem(&text);
    assert_eq!(
        (line, field.as_str()),
        (line_of(&text, "bytes = 5"), "step[0].bytes")
    );
}

#[test]
fn the_retired_replication_proxy_is_refused_with_the_migration() {
    let text = GOOD.replace("proxy = \"cluster_g1\"", "proxy = \"replication\"");
    let (line, field, message) = problem(&text);
    assert_eq!(
        (line, field.as_str()),
        (line_of(&text, "\"replication\""), "step[0].proxy")
    );
    for needle in [
        "`replication` no longer exists",
        "`cluster_g1`",
        "`down cluster_g2` then `down cluster_g1`",
        "heal `cluster_g1` first",
        "below the sentinels' 1000 ms down-after",
    ] {
        assert!(message.contains(needle), "lacks {needle:?}: {message}");
    }
    // The binary says the same, with the file and line.
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.toml");
    std::fs::write(&old, &text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args(["scenario", "validate"])
        .arg(&old)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "old.toml:{line}: step[0].proxy: the proxy `replication`"
        )),
        "{stderr}"
    );
}

#[test]
fn a_failover_step_validates_and_takes_no_proxy_or_node() {
    let text = GOOD.replace(
        "[[step]]\nat = \"5s\"",
        "[[step]]\nat = \"3s\"\naction = \"failover\"\n\n[[step]]\nat = \"5s\"",
    );
    let s = validate_str("failover.toml", &text).unwrap();
    assert_eq!(s.steps.len(), 3);
    assert_eq!(s.steps[1].action, StepAction::Failover);
    assert!(s.has_node_steps(), "a failover needs the local lab");
    assert!(!s.steps[1].action.heals());

    let text = text.replace(
        "action = \"failover\"",
        "action = \"failover\"\nnode = \"g2\"",
    );
    let (line, field, message) = problem(&text);
    assert_eq!(
        (line, field.as_str()),
        (line_of(&text, "node = \"g2\""), "step[1].node")
    );
    assert!(
        message.contains("does not apply to a `failover` step"),
        "{message}"
    );
}

#[test]
fn toml_syntax_error_names_the_line() {
    let text = GOOD.replace("keys = 5", "keys = = 5");
    let (line, _, _) = problem(&text);
    assert_eq!(line, line_of(&text, "keys = = 5"));
}

#[test]
fn threshold_problems_name_line_and_field() {
    let text = GOOD.replace("metric = \"availability\"", "metric = \"uptime\"");
    let (line, field, message) = problem(&text);
    assert_eq!(
        (line, field.as_str()),
        (line_of(&text, "uptime"), "threshold[0].metric")
    );
    assert!(
        message.contains("availability"),
        "lists the metrics: {message}"
    );

    let text = GOOD.replace("phase = \"during\"", "phase = \"later\"");
    let (line, field, _) = problem(&text);
    assert_eq!(
        (line, field.as_str()),
        (line_of(&text, "later"), "threshold[0].phase")
    );

    let text = GOOD.replace("lesson = \"a lesson\"", "lesson = \"\"");
    let (_, field, _) = problem(&text);
    assert_eq!(field, "threshold[0].lesson");

    let text = GOOD.replace("min = 0.5", "equals = true");
    let (_, field, _) = problem(&text);
    assert_eq!(field, "threshold[0].equals");
}

#[test]
fn the_binary_validates_and_reports_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        GOOD.replace("proxy = \"cluster_g1\"", "proxy = \"g3\""),
    )
    .unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, GOOD).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args(["scenario", "validate"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = line_of(
        &GOOD.replace("proxy = \"cluster_g1\"", "proxy = \"g3\""),
        "g3",
    );
    assert!(
        stderr.contains(&format!("bad.toml:{line}: step[0].proxy")),
        "{stderr}"
    );
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args(["scenario", "validate"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
}

#[test]
fn the_binary_lists_the_shipped_scenarios() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args(["scenario", "list"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().count() >= 8, "{text}");
    assert!(!text.contains("INVALID"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("replica-crash")),
        "{text}"
    );
}

#[test]
fn failover_metrics_are_whole_run_and_need_a_fault_step() {
    let threshold = |metric: &str, extra: &str| {
        format!(
            "{GOOD}\n[[threshold]]\ntarget = \"cp\"\nmetric = \"{metric}\"\nmax = 1000\n{extra}lesson = \"l\"\n"
        )
    };
    for metric in ["read_recovery_ms", "acked_writes_without_replica"] {
        let s = validate_str("ok.toml", &threshold(metric, "")).unwrap();
        assert_eq!(s.thresholds.last().unwrap().metric.name(), metric);
        let (_, field, message) = problem(&threshold(metric, "phase = \"during\"\n"));
        assert!(field.ends_with(".phase"), "{field}: {message}");
        assert!(message.contains("whole run"), "{message}");
        // Without a fault step (only the heal) there is nothing to measure.
        let no_fault = threshold(metric, "").replace(
            "[[step]]\nat = \"2s\"\naction = \"toxic\"\nproxy = \"cluster_g1\"\ntoxic = \"latency\"\nlatency = 100\njitter = 10\n",
            "",
        );
        let (_, field, message) = problem(&no_fault);
        assert!(field.ends_with(".metric"), "{field}: {message}");
        assert!(message.contains("needs a fault step"), "{message}");
    }
}

#[test]
fn cas_ratio_is_a_share_that_leaves_room_for_reads() {
    let ok = GOOD.replace("keys = 5", "keys = 5\nread_ratio = 0.5\ncas_ratio = 0.25");
    let s = validate_str("ok.toml", &ok).expect("a register mix validates");
    assert_eq!((s.workload.read_ratio, s.workload.cas_ratio), (0.5, 0.25));
    let text = GOOD.replace("keys = 5", "keys = 5\nread_ratio = 0.5\ncas_ratio = 0.75");
    let (line, field, message) = problem(&text);
    assert_eq!(
        (line, field.as_str()),
        (line_of(&text, "cas_ratio"), "workload.cas_ratio")
    );
    assert!(message.contains("at most 1"), "{message}");
    let text = GOOD.replace("keys = 5", "keys = 5\ncas_ratio = -0.1");
    let (_, field, message) = problem(&text);
    assert_eq!(field, "workload.cas_ratio");
    assert!(message.contains("outside"), "{message}");
}
