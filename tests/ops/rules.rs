//! The Prometheus side: rule files and scrape configs pass `promtool check`, the promtool unit
//! tests pass and cover every alert on both sides of its threshold, and the alerts carry the
//! deployment guide's thresholds, a severity and a summary naming mode and node.

use std::collections::BTreeSet;

use crate::support::{RULE_FILES, alerts, files_in, promtool_ok, recordings, yaml};

/// The comparison an alert's expression ends with and its threshold; none for `absent()`.
type Comparison = Option<(&'static str, f64)>;

/// The guide's alert thresholds, and the failover alerts of docs/design.md: alert, final
/// comparison, `for`.
const GUIDE: &[(&str, Comparison, &str)] = &[
    ("CaplabCircuitBreakerOpen", Some((">", 0.0)), "1m"),
    ("CaplabStalenessHigh", Some((">", 1000.0)), "30s"),
    ("CaplabErrorRateHigh", Some((">", 0.05)), "1m"),
    ("CaplabLatencyP99High", Some((">", 0.5)), "2m"),
    ("CaplabConnectionFailuresHigh", Some((">", 0.1)), "30s"),
    ("CaplabAppDown", Some(("==", 0.0)), "1m"),
    ("CaplabAppMissing", None, "1m"),
    ("CaplabFailoverHappened", Some((">", 0.0)), "0s"),
    ("CaplabSplitBrain", Some((">", 1.0)), "15s"),
    ("CaplabPrimaryDataLoss", Some((">", 0.0)), "0s"),
];

/// The comparison an alert expression ends with, e.g. `... > 0.05` gives (">", 0.05).
pub fn final_comparison(expr: &str) -> (String, f64) {
    let tokens: Vec<&str> = expr.split_whitespace().collect();
    let n = tokens.len();
    assert!(n >= 3, "`{expr}` does not end with a comparison");
    let value = tokens[n - 1]
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("`{expr}` does not end with a number"));
    (tokens[n - 2].to_string(), value)
}

#[test]
fn rule_files_pass_promtool_check() {
    let out = promtool_ok(&["check", "rules", RULE_FILES[0], RULE_FILES[1]]);
    assert!(
        out.contains("SUCCESS"),
        "unexpected promtool output:\n{out}"
    );
}

#[test]
fn scrape_configs_pass_promtool_check() {
    for config in [
        "prometheus/prometheus.yml",
        "prometheus/prometheus-local.yml",
        "prometheus/prometheus-kubernetes.yml",
    ] {
        promtool_ok(&["check", "config", config]);
    }
}

#[test]
fn scrape_configs_scrape_both_personalities_with_their_mode_and_load_the_rules() {
    for (config, cp_target, ap_target) in [
        ("prometheus/prometheus.yml", "app_cp:5001", "app_ap:5002"),
        (
            "prometheus/prometheus-local.yml",
            "127.0.0.1:5001",
            "127.0.0.1:5002",
        ),
        (
            "prometheus/prometheus-kubernetes.yml",
            "app-cp-metrics:5001",
            "app-ap-metrics:5002",
        ),
    ] {
        let doc = yaml(config);
        let files: Vec<&str> = doc["rule_files"]
            .as_vec()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        let want: Vec<&str> = RULE_FILES
            .iter()
            .map(|f| f.trim_start_matches("prometheus/"))
            .collect();
        assert_eq!(files, want, "{config}: rule_files");
        for (job, mode, target) in [("app_cp", "cp", cp_target), ("app_ap", "ap", ap_target)] {
            let jobs = doc["scrape_configs"].as_vec().unwrap();
            let j = jobs
                .iter()
                .find(|j| j["job_name"].as_str() == Some(job))
                .unwrap_or_else(|| {
                    panic!("{config}: no job {job} (CaplabAppDown selects it by name)")
                });
            // Where the job looks: a DNS name and port, or static targets.
            let mut targets = Vec::new();
            for sd in j["dns_sd_configs"].as_vec().into_iter().flatten() {
                for name in sd["names"].as_vec().unwrap() {
                    targets.push(format!(
                        "{}:{}",
                        name.as_str().unwrap(),
                        sd["port"].as_i64().unwrap()
                    ));
                }
            }
            for sc in j["static_configs"].as_vec().into_iter().flatten() {
                for t in sc["targets"].as_vec().unwrap() {
                    targets.push(t.as_str().unwrap().to_string());
                }
            }
            assert_eq!(targets, [target], "{config}: targets of {job}");
            assert_eq!(
                j["honor_labels"].as_bool(),
                Some(true),
                "{config}: {job} must honor the app's labels"
            );
            let sets_mode = j["relabel_configs"]
                .as_vec()
                .into_iter()
                .flatten()
                .any(|r| {
                    r["target_label"].as_str() == Some("mode")
                        && r["replacement"].as_str() == Some(mode)
                });
            assert!(
                sets_mode,
                "{config}: {job} must give its series mode=\"{mode}\""
            );
        }
    }
}

#[test]
fn promtool_unit_tests_pass() {
    let tests = files_in("prometheus/tests", ".test.yml");
    assert!(
        !tests.is_empty(),
        "no promtool unit tests in prometheus/tests"
    );
    let mut args = vec!["test", "rules"];
    args.extend(tests.iter().map(String::as_str));
    let out = promtool_ok(&args);
    assert_eq!(
        out.matches("SUCCESS").count(),
        tests.len(),
        "not every test file reported SUCCESS:\n{out}"
    );
}

#[test]
fn unit_tests_cover_every_alert_firing_and_not_firing_and_every_recording_rule() {
    let mut fires = BTreeSet::new();
    let mut silent = BTreeSet::new();
    let mut exprs = String::new();
    for file in files_in("prometheus/tests", ".test.yml") {
        let doc = yaml(&file);
        let loaded: Vec<&str> = doc["rule_files"]
            .as_vec()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        let want: Vec<String> = RULE_FILES
            .iter()
            .map(|f| format!("../{}", f.trim_start_matches("prometheus/")))
            .collect();
        assert_eq!(
            loaded, want,
            "{file}: must load the rule files as Prometheus does"
        );
        let order: Vec<&str> = doc["group_eval_order"]
            .as_vec()
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_str())
            .collect();
        assert_eq!(
            order,
            ["caplab_recording", "caplab_alerts"],
            "{file}: group_eval_order"
        );
        for t in doc["tests"].as_vec().unwrap() {
            for a in t["alert_rule_test"].as_vec().into_iter().flatten() {
                let name = a["alertname"].as_str().unwrap().to_string();
                match a["exp_alerts"].as_vec() {
                    Some(v) if !v.is_empty() => fires.insert(name),
                    _ => silent.insert(name),
                };
            }
            for e in t["promql_expr_test"].as_vec().into_iter().flatten() {
                exprs.push_str(e["expr"].as_str().unwrap());
                exprs.push('\n');
            }
        }
    }
    for a in alerts() {
        let name = a.name().to_string();
        assert!(fires.contains(&name), "no unit test shows {name} firing");
        assert!(
            silent.contains(&name),
            "no unit test shows {name} not firing (below the threshold or before `for`)"
        );
    }
    for r in recordings() {
        assert!(
            exprs.contains(r.name()),
            "no promql_expr_test checks the value of recording rule {}",
            r.name()
        );
    }
}

#[test]
fn alerts_carry_the_guides_thresholds() {
    let alerts = alerts();
    let names: BTreeSet<&str> = alerts.iter().map(|a| a.name()).collect();
    let guide: BTreeSet<&str> = GUIDE.iter().map(|g| g.0).collect();
    assert_eq!(names, guide, "alerts.yml and the guide's list differ");
    for (name, comparison, for_) in GUIDE {
        let a = alerts.iter().find(|a| a.name() == *name).unwrap();
        if let Some((op, threshold)) = comparison {
            let (got_op, got) = final_comparison(&a.expr);
            assert_eq!(
                (got_op.as_str(), got),
                (*op, *threshold),
                "{name}: threshold of `{}`",
                a.expr
            );
        }
        assert_eq!(a.for_.as_deref(), Some(*for_), "{name}: `for`");
    }
}

#[test]
fn alerts_have_severity_and_a_summary_naming_mode_and_node() {
    for a in alerts() {
        let name = a.name();
        let severity = a
            .labels
            .get("severity")
            .unwrap_or_else(|| panic!("{name}: no severity label"));
        let known = ["critical", "warning"];
        assert!(
            known.contains(&severity.as_str())
                || (severity.contains("{{") && known.iter().all(|k| severity.contains(k))),
            "{name}: severity `{severity}` is not critical or warning"
        );
        let summary = a
            .annotations
            .get("summary")
            .unwrap_or_else(|| panic!("{name}: no summary"));
        assert!(
            summary.contains("{{ $labels.mode }}"),
            "{name}: the summary must name the mode: {summary}"
        );
        assert!(
            summary.contains("{{ $labels.node }}") || summary.contains("(all nodes)"),
            "{name}: the summary must name the node, or say it covers all nodes: {summary}"
        );
        assert!(
            a.annotations.contains_key("description"),
            "{name}: no description"
        );
        assert!(
            a.annotations.contains_key("runbook_url"),
            "{name}: no runbook_url"
        );
    }
}
