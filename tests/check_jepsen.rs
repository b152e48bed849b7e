//! Jepsen's formats in and out, as a user runs them: the same compare-and-set histories
//! written by hand as caplab JSON Lines, Jepsen EDN (one `#jepsen.history.Op` per line with
//! `jepsen.independent` tuples; Knossos's vector of maps) and `jepsen.util` log lines
//! (`examples/histories/cas-*`) get the same verdict; `--export edn` read back gives the
//! same report; malformed Jepsen input gets line-numbered errors; `--html` writes a
//! self-contained page naming the operation that could not be placed.

mod common;

use caplab::check::generate::{GenConfig, corrupt_read, generate};
use caplab::check::{
    CheckOptions, Event, EventType, History, HistoryFormat, Validity, check_history,
};
use common::check::{caplab_check, example, text};

fn json(args: &[&str]) -> serde_json::Value {
    let out = caplab_check(args);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)))
}

/// A report section without what depends on the file's layout or the machine: lines,
/// times (a log's clock is positions), ages, timings and memo figures.
fn normal(mut v: serde_json::Value) -> serde_json::Value {
    match &mut v {
        serde_json::Value::Object(o) => {
            for k in [
                "line",
                "invoke_ns",
                "complete_ns",
                "elapsed_ms",
                "age_ms",
                "memo_entries",
                "memo_peak_bytes",
            ] {
                o.remove(k);
            }
            for x in o.values_mut() {
                *x = normal(x.take());
            }
        }
        serde_json::Value::Array(a) => {
            for x in a.iter_mut() {
                *x = normal(x.take());
            }
        }
        _ => {}
    }
    v
}

#[test]
fn the_same_history_in_every_format_gets_the_same_verdict() {
    for (name, valid) in [("cas-valid", true), ("cas-invalid", false)] {
        let jsonl = example(&format!("{name}.jsonl"));
        let reference = json(&["--json", jsonl.to_str().unwrap()]);
        assert_eq!(
            reference["valid"],
            serde_json::json!(valid),
            "{reference:#}"
        );
        for ext in ["edn", "log"] {
            let path = example(&format!("{name}.{ext}"));
            let r = json(&["--json", path.to_str().unwrap()]);
            for field in ["valid", "linearizability", "stale_reads", "lost_writes"] {
                assert_eq!(
                    normal(r[field].clone()),
                    normal(reference[field].clone()),
                    "{name}.{ext}: {field}"
                );
            }
            assert_eq!(
                r["history"]["ops"], reference["history"]["ops"],
                "{name}.{ext}"
            );
        }
    }
    // The invalid one: the second cas, which expected a value already replaced.
    let r = json(&["--json", example("cas-invalid.log").to_str().unwrap()]);
    let f = &r["linearizability"]["failures"][0];
    assert_eq!(f["op"]["f"], "cas");
    assert_eq!(f["op"]["expected"], "1");
    assert_eq!(f["op"]["index"], 7);
    assert_eq!(f["register_then"], "2");
}

#[test]
fn format_is_detected_or_forced() {
    let log = example("cas-valid.log");
    let out = caplab_check(&["--format", "jepsen-log", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Read as JSON Lines, a log is malformed line by line.
    let out = caplab_check(&["--format", "jsonl", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("line 1: expected value"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn export_to_edn_reads_back_with_the_same_report() {
    let cfg = GenConfig {
        ops: 600,
        keys: 4,
        processes: 6,
        cas_ratio: 0.4,
        distinct_values: Some(3),
        info_ratio: 0.05,
        fail_ratio: 0.05,
        sessions: true,
        phases: vec!["warmup".into(), "partition".into()],
        final_reads: true,
        seed: 11,
        ..GenConfig::default()
    };
    let mut events = generate(&cfg);
    corrupt_read(&mut events, 40, Some("never-written".into()));
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("h.jsonl");
    std::fs::write(&jsonl, caplab::check::generate::to_jsonl(&events)).unwrap();
    let out = caplab_check(&["--export", "edn", jsonl.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let edn = text(&out.stdout);
    assert!(edn.starts_with("{:index 0, :time "), "{}", &edn[..200]);
    let original = History::from_events(&events).unwrap();
    let back = History::read(edn.as_bytes(), HistoryFormat::Auto).unwrap();
    let opts = CheckOptions {
        timeout: None,
        ..CheckOptions::default()
    };
    let (a, b) = (check_history(&original, &opts), check_history(&back, &opts));
    assert_eq!(b.valid, a.valid);
    assert_eq!(a.valid, Validity::Invalid, "the corrupted read is caught");
    assert_eq!(b.linearizability.failures, a.linearizability.failures);
    assert_eq!(b.stale_reads, a.stale_reads);
    assert_eq!(b.lost_writes, a.lost_writes);
    assert_eq!(b.sessions, a.sessions);
    assert_eq!(b.availability, a.availability);
    // And the EDN exported back to JSON Lines is the original, event for event, except
    // that a `fail` or `info` completion's value is not kept (Jepsen's may be anything).
    let edn_path = dir.path().join("h.edn");
    std::fs::write(&edn_path, &edn).unwrap();
    let out = caplab_check(&["--export", "jsonl", edn_path.to_str().unwrap()]);
    let again: Vec<Event> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kept = |e: &Event| {
        let mut e = e.clone();
        if matches!(e.kind, EventType::Fail | EventType::Info) {
            (e.value, e.expected) = (None, None);
        }
        e
    };
    assert_eq!(again.len(), events.len());
    for (x, y) in again.iter().zip(&events) {
        assert_eq!(*x, kept(y));
    }
}

#[test]
fn malformed_jepsen_input_names_each_line() {
    let dir = tempfile::tempdir().unwrap();
    let edn = dir.path().join("history.edn");
    std::fs::write(
        &edn,
        concat!(
            "{:index 0, :time 1, :type :invoke, :process 0, :f :cas, :value [1 2]}\n",
            "{:index 1, :time 2, :type :ok, :process 0, :f :cas, :value [1 2]\n",
            "{:index 2, :time 3, :type :invoke, :process 1, :f :add, :value 3}\n",
            "{:index 3, :time 4, :type :invoke, :process 2, :f :write, :value [1 2 3]}\n",
            "{:index 4, :time 5, :type :invoke, :process 3, :f :cas, :value [nil]}\n",
        ),
    )
    .unwrap();
    let out = caplab_check(&[edn.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    for expected in [
        "line 2: incomplete form",
        "line 3: :f :add is not in the register model",
        "line 4: a write's value must be one value",
        "line 5: a cas's value is [expected new]",
    ] {
        assert!(stderr.contains(expected), "{expected}:\n{stderr}");
    }
    let log = dir.path().join("jepsen.log");
    std::fs::write(
        &log,
        "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t[1\nINFO  jepsen.util - 1\t:begin\t:read\tnil\n",
    )
    .unwrap();
    let out = caplab_check(&[log.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 2: cannot read the value"), "{stderr}");
    assert!(stderr.contains("line 3: :type :begin is not"), "{stderr}");
}

#[test]
fn html_page_is_self_contained_and_names_the_stuck_operation() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("why.html");
    let out = caplab_check(&[
        "--html",
        page.to_str().unwrap(),
        example("cas-invalid.edn").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    for external in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "href='http",
        "<script",
        "url(",
    ] {
        assert!(!html.contains(external), "{external} in the page");
    }
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg"), "an inline picture");
    // The stuck operation: its bar is marked, its text is there, with the register's value.
    assert!(
        html.contains("data-index=\"7\" data-stuck=\"true\""),
        "{html}"
    );
    assert!(
        html.contains("cas of &quot;register&quot; from &quot;1&quot; to &quot;3&quot; (index 7")
    );
    assert!(html.contains("the register held 2"), "{html}");
    // The prefix: three operations numbered in order.
    for n in ["#1 w 1", "#2 cas 1→2", "#3 r 2"] {
        assert!(html.contains(n), "{n}");
    }
    // A valid history still gets a page, saying there is nothing to draw.
    let out = caplab_check(&[
        "--html",
        page.to_str().unwrap(),
        example("cas-valid.log").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Every key is linearizable"), "{html}");
    assert!(!html.contains("data-stuck"));
}

#[test]
fn html_marks_stale_reads_and_lost_writes_on_the_failing_key() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("why.html");
    let out = caplab_check(&[
        "--html",
        page.to_str().unwrap(),
        example("non-linearizable.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let html = std::fs::read_to_string(&page).unwrap();
    // The example's two stale reads (9 and 29 ms old), drawn on the timeline.
    assert!(html.contains("stale, 9.0 ms old"), "{html}");
    assert!(html.contains("stale, 29.0 ms old"), "{html}");
    assert!(html.contains("2 stale reads and 0 lost acknowledged writes on this key"));
}
