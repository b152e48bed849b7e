//! One list of every metric name the rules and dashboards read, `prometheus/metric-names.txt`,
//! kept true both ways. A test against a running lab can then check that every `caplab` name
//! in it is on the apps' /metrics.

use std::collections::{BTreeMap, BTreeSet};

use crate::promql::metric_names;
use crate::support::{
    all_rules, dashboard, dashboard_files, dashboard_queries, read, recordings,
    substitute_grafana_vars,
};

const LIST: &str = "prometheus/metric-names.txt";

/// docs/design.md's metrics (the histogram by the series the rules read) and the sessions issue's.
const DESIGN_METRICS: &[&str] = &[
    "app_requests_total",
    "app_request_latency_seconds_bucket",
    "circuit_breaker_state",
    "data_staleness_ms",
    "db_connection_failures_total",
    "circuit_breaker_transitions_total",
    "write_outcomes_total",
    "replication_lag_bytes",
    "ap_write_queue_depth",
    "session_guarantee_violations_total",
    "stale_reads_total",
    "session_ryw_fallbacks_total",
    "failovers_seen_total",
    "primary_node",
    "redis_node_is_primary",
];

/// metric-names.txt: name to source.
pub fn listed() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (n, line) in read(LIST).lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 2, "{LIST}:{}: want `<name> <source>`", n + 1);
        assert!(
            ["caplab", "caplab-sentinels", "toxiproxy", "prometheus"].contains(&fields[1]),
            "{LIST}:{}: unknown source {}",
            n + 1,
            fields[1]
        );
        assert!(
            !fields[0].contains(':'),
            "{LIST}:{}: recording rules are not listed",
            n + 1
        );
        let dup = out.insert(fields[0].to_string(), fields[1].to_string());
        assert!(dup.is_none(), "{LIST}: {} listed twice", fields[0]);
    }
    out
}

/// Name to where it is used, over every rule and dashboard query.
fn used() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in all_rules() {
        for n in metric_names(&r.expr) {
            out.entry(n)
                .or_default()
                .insert(format!("{} rule {}", r.file, r.name()));
        }
    }
    for file in dashboard_files() {
        for q in dashboard_queries(&file, &dashboard(&file)) {
            for n in metric_names(&substitute_grafana_vars(&q)) {
                out.entry(n).or_default().insert(q.place.clone());
            }
        }
    }
    out
}

#[test]
fn every_metric_name_used_is_listed_and_every_listed_name_is_used() {
    let listed = listed();
    let used = used();
    let recorded: BTreeSet<String> = recordings().iter().map(|r| r.name().to_string()).collect();
    for (name, places) in &used {
        if name.contains(':') {
            assert!(
                recorded.contains(name),
                "{name} is not a recording rule of prometheus/rules (used by {places:?})"
            );
        } else {
            assert!(
                listed.contains_key(name),
                "{name} is used but not in {LIST} (used by {places:?})"
            );
        }
    }
    for name in listed.keys() {
        assert!(
            used.contains_key(name),
            "{name} is in {LIST} but no rule or dashboard uses it"
        );
    }
}

#[test]
fn every_recording_rule_is_used_by_an_alert_or_a_dashboard() {
    let used = used();
    for r in recordings() {
        let users: Vec<&String> = used
            .get(r.name())
            .into_iter()
            .flatten()
            .filter(|place| !place.ends_with(&format!("rule {}", r.name())))
            .collect();
        assert!(
            !users.is_empty(),
            "recording rule {} is used by nothing",
            r.name()
        );
    }
}

#[test]
fn every_design_metric_is_shown_or_alerted_on_and_listed_as_caplab() {
    let listed = listed();
    for m in DESIGN_METRICS {
        assert_eq!(
            listed.get(*m).map(String::as_str),
            Some("caplab"),
            "{m} must be listed as a caplab metric in {LIST}"
        );
    }
}
