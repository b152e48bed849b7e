//! `caplab check` as a user runs it: the built binary on the example histories in
//! `examples/histories/`, checking exit statuses 0 (valid), 1 (invalid), 2 (unknown or
//! error), the malformed-line message and the `--json` report.

mod common;

use common::check::{caplab_check, example, text};

#[test]
fn valid_history_exits_0_with_a_summary() {
    let out = caplab_check(&[example("valid.jsonl").to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("linearizability (register model): valid"),
        "{stdout}"
    );
    assert!(stdout.contains("stale reads: 0 of 5 ok reads"), "{stdout}");
    assert!(stdout.contains("verdict: valid (exit 0)"), "{stdout}");
}

#[test]
fn non_linearizable_history_exits_1_and_names_the_read() {
    let out = caplab_check(&[example("non-linearizable.jsonl").to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("INVALID"), "{stdout}");
    assert!(
        stdout.contains(r#"key "k1": cannot linearize the read of "k1" returned "v-0-1" (index 6"#),
        "{stdout}"
    );
    assert!(stdout.contains("stale reads: 2 of 5 ok reads"), "{stdout}");
    assert!(
        stdout.contains("how stale, how often: under 100 ms 40.00% of reads, 100 ms to 1 s 0.00%"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 read-your-writes and 1 monotonic-read"),
        "{stdout}"
    );
}

#[test]
fn json_report_is_machine_readable() {
    let out = caplab_check(&[
        "--json",
        example("non-linearizable.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["valid"], serde_json::json!(false));
    assert_eq!(v["linearizability"]["valid"], serde_json::json!(false));
    assert_eq!(v["linearizability"]["failures"][0]["op"]["index"], 6);
    assert_eq!(v["stale_reads"]["count"], 2);
    assert_eq!(v["stale_reads"]["age_ms"]["max"], 29.0);
    assert_eq!(v["stale_reads"]["by_age"][0]["age"], "under 100 ms");
    assert_eq!(v["stale_reads"]["by_age"][0]["stale"], 2);
    assert_eq!(v["stale_reads"]["by_age"][0]["share_of_reads"], 0.4);
    assert_eq!(v["stale_reads"]["by_age"][1]["stale"], 0);
    assert_eq!(v["sessions"]["read_your_writes"], 1);
    assert_eq!(v["availability"]["by_phase"][1]["name"], "partition");

    let out = caplab_check(&["--json", example("valid.jsonl").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], serde_json::json!(true));
    assert_eq!(v["lost_writes"]["final_phase"], "final");
}

#[test]
fn malformed_history_exits_2_naming_each_line() {
    let out = caplab_check(&[example("malformed.jsonl").to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing is checked: {}",
        text(&out.stdout)
    );
    assert!(
        stderr.contains(
            "malformed.jsonl: the history is malformed (2 problems); nothing was checked"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("line 3: missing field `time`"), "{stderr}");
    assert!(
        stderr.contains(r#"line 4: "ok" for process 0 with no outstanding invoke"#),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("line 3").count(),
        1,
        "reported once: {stderr}"
    );
}

#[test]
fn unfinished_search_exits_2_as_unknown() {
    let out = caplab_check(&[
        "--max-memory-mib",
        "0",
        example("valid.jsonl").to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("verdict: unknown"), "{stdout}");
    assert!(
        stdout.contains("search unfinished (the memo reached --max-memory-mib) for keys: k1"),
        "{stdout}"
    );
}

#[test]
fn missing_file_and_bad_flags_exit_2() {
    let out = caplab_check(&["/nonexistent/history.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read the history"),
        "{}",
        text(&out.stderr)
    );
    let out = caplab_check(&[
        "--timeout",
        "soon",
        example("valid.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--timeout"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn mode_filter_and_final_phase_flags() {
    let path = example("non-linearizable.jsonl");
    let out = caplab_check(&["--mode", "cp", "--timeout", "5s", path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    // No operation of mode cp: nothing to contradict.
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("0 operations") && stdout.contains("(mode cp only)"),
        "{stdout}"
    );
    let out = caplab_check(&[
        "--json",
        "--final-phase",
        "partition",
        path.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["lost_writes"]["final_phase"], "partition");
    // The last read in "partition" returned the overwritten v-0-1: v-0-2 is lost there.
    assert_eq!(v["lost_writes"]["count"], 1);
}

#[test]
fn reads_standard_input_with_a_dash() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args(["check", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run caplab");
    let text = std::fs::read(example("valid.jsonl")).unwrap();
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["history"]["events"], 16);
}
