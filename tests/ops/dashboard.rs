//! The Grafana side: the dashboards are valid JSON whose every panel has a query, every query
//! parses as PromQL (promtool), CP and AP panels repeat over the `mode` variable, threshold
//! lines sit where the alerts fire, and the provisioning points at the data source the
//! dashboards use.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::rules::final_comparison;
use crate::support::{
    alerts, dashboard, dashboard_files, dashboard_queries, panel_title, panels, promtool_parse,
    substitute_grafana_vars, yaml,
};

const DATASOURCE_UID: &str = "caplab-prometheus";

fn is_row(p: &Value) -> bool {
    p["type"].as_str() == Some("row")
}

fn repeats_horizontally(p: &Value) -> bool {
    p["repeat"].is_string() && p["repeatDirection"].as_str() != Some("v")
}

#[test]
fn dashboards_are_valid_and_every_panel_has_a_query() {
    for file in dashboard_files() {
        let d = dashboard(&file);
        for key in ["uid", "title"] {
            assert!(
                d[key].as_str().is_some_and(|s| !s.is_empty()),
                "{file}: no {key}"
            );
        }
        let panels = panels(&d);
        assert!(panels.len() > 1, "{file}: no panels");
        let mut ids = BTreeSet::new();
        // Grid cells taken, to find overlapping panels; a horizontal repeat fills its row.
        let mut cells = BTreeSet::new();
        for p in panels {
            let title = panel_title(p);
            let id = p["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("{file}: panel \"{title}\" has no id"));
            assert!(ids.insert(id), "{file}: panel id {id} used twice");
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_i64(),
                g["y"].as_i64(),
                g["w"].as_i64(),
                g["h"].as_i64(),
            );
            let (Some(x), Some(y), Some(w), Some(h)) = (x, y, w, h) else {
                panic!("{file}: panel \"{title}\" has no complete gridPos");
            };
            assert!(
                w > 0 && h > 0 && x >= 0 && x + w <= 24,
                "{file}: panel \"{title}\" is outside the 24-column grid"
            );
            let (x, w) = if repeats_horizontally(p) {
                (0, 24)
            } else {
                (x, w)
            };
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(
                        cells.insert((cx, cy)),
                        "{file}: panel \"{title}\" overlaps another at ({cx}, {cy})"
                    );
                }
            }
            if is_row(p) {
                continue;
            }
            assert!(
                p["type"].as_str().is_some_and(|t| !t.is_empty()),
                "{file}: panel \"{title}\" has no type"
            );
            assert!(p["title"].is_string(), "{file}: panel {id} has no title");
            assert_eq!(
                p["datasource"]["uid"].as_str(),
                Some("${datasource}"),
                "{file}: panel \"{title}\" must use the dashboard's data source variable"
            );
            let targets = p["targets"].as_array().filter(|t| !t.is_empty());
            let targets =
                targets.unwrap_or_else(|| panic!("{file}: panel \"{title}\" has no query"));
            let mut refs = BTreeSet::new();
            for t in targets {
                let r = t["refId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{file}: a query of \"{title}\" has no refId"));
                assert!(refs.insert(r), "{file}: \"{title}\" has refId {r} twice");
                assert!(
                    t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                    "{file}: query {r} of panel \"{title}\" has no PromQL expression"
                );
            }
        }
    }
}

#[test]
fn every_dashboard_query_parses_as_promql() {
    let mut exprs = Vec::new();
    for file in dashboard_files() {
        for q in dashboard_queries(&file, &dashboard(&file)) {
            exprs.push((q.place.clone(), substitute_grafana_vars(&q)));
        }
    }
    assert!(
        exprs.len() >= 10,
        "only {} queries found in the dashboards",
        exprs.len()
    );
    let run = promtool_parse(&exprs);
    assert!(
        run.ok,
        "a dashboard query is not valid PromQL:\n{}",
        run.output
    );

    // The check itself catches a broken query (an unclosed parenthesis).
    let broken = promtool_parse(&[(
        "broken on purpose".into(),
        "sum(rate(app_requests_total[1m])".into(),
    )]);
    assert!(
        !broken.ok,
        "promtool accepted a broken query, so the check above proves nothing"
    );
}

#[test]
fn panels_that_use_mode_repeat_over_cp_and_ap() {
    for file in dashboard_files() {
        let d = dashboard(&file);
        let vars = d["templating"]["list"].as_array().unwrap();
        let mode = vars
            .iter()
            .find(|v| v["name"] == "mode")
            .unwrap_or_else(|| panic!("{file}: no `mode` variable"));
        let values: Vec<&str> = mode["query"]
            .as_str()
            .unwrap()
            .split(',')
            .map(str::trim)
            .collect();
        assert_eq!(values, ["cp", "ap"], "{file}: the mode variable offers");
        assert_eq!(
            mode["includeAll"], true,
            "{file}: `mode` must include All so both repeat by default"
        );
        let mut side_by_side = 0;
        for p in panels(&d) {
            let uses_mode = p["targets"].as_array().into_iter().flatten().any(|t| {
                t["expr"]
                    .as_str()
                    .is_some_and(|e| e.contains("$mode") || e.contains("${mode}"))
            });
            if uses_mode {
                assert_eq!(
                    p["repeat"],
                    "mode",
                    "{file}: \"{}\" uses $mode but does not repeat over it",
                    panel_title(p)
                );
                assert_eq!(
                    p["repeatDirection"],
                    "h",
                    "{file}: \"{}\" must repeat side by side",
                    panel_title(p)
                );
                side_by_side += 1;
            }
        }
        assert!(
            side_by_side >= 8,
            "{file}: only {side_by_side} CP | AP panels"
        );
    }
}

#[test]
fn threshold_lines_match_the_alerts() {
    let alerts = alerts();
    // Panel title prefix, alert whose threshold the panel draws.
    let pairs = [
        ("Error ratio", "CaplabErrorRateHigh"),
        ("Latency p50 / p99", "CaplabLatencyP99High"),
        (
            "Staleness per node vs MAX_STALENESS_MS",
            "CaplabStalenessHigh",
        ),
        (
            "Connection failures per request",
            "CaplabConnectionFailuresHigh",
        ),
    ];
    for file in dashboard_files() {
        let d = dashboard(&file);
        for (prefix, alert) in pairs {
            let p = panels(&d)
                .into_iter()
                .find(|p| panel_title(p).starts_with(prefix))
                .unwrap_or_else(|| panic!("{file}: no panel \"{prefix}...\""));
            let a = alerts.iter().find(|a| a.name() == alert).unwrap();
            let (_, threshold) = final_comparison(&a.expr);
            let defaults = &p["fieldConfig"]["defaults"];
            let steps = defaults["thresholds"]["steps"].as_array().unwrap();
            let line = steps.last().and_then(|s| s["value"].as_f64());
            assert_eq!(
                line,
                Some(threshold),
                "{file}: \"{prefix}\" draws its line elsewhere than {alert} fires"
            );
            assert_ne!(
                defaults["custom"]["thresholdsStyle"]["mode"]
                    .as_str()
                    .unwrap_or("off"),
                "off",
                "{file}: \"{prefix}\" does not draw its threshold"
            );
        }
    }
}

#[test]
fn fault_windows_are_an_annotation_layer() {
    for file in dashboard_files() {
        let d = dashboard(&file);
        let list = d["annotations"]["list"].as_array().unwrap();
        let faults = list.iter().find(|a| {
            let tags: Vec<&str> = a["target"]["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str())
                .collect();
            a["target"]["type"] == "tags" && tags.contains(&"caplab") && tags.contains(&"fault")
        });
        let faults =
            faults.unwrap_or_else(|| panic!("{file}: no annotation layer for tags caplab + fault"));
        assert_eq!(
            faults["enable"], true,
            "{file}: fault windows are off by default"
        );
    }
}

#[test]
fn provisioning_points_at_the_dashboards_and_their_data_source() {
    let ds = yaml("grafana/provisioning/datasources/prometheus.yml");
    let ds = &ds["datasources"][0];
    assert_eq!(ds["uid"].as_str(), Some(DATASOURCE_UID));
    assert_eq!(ds["type"].as_str(), Some("prometheus"));
    assert_eq!(
        ds["url"].as_str(),
        Some("http://prometheus:9090"),
        "the compose service is `prometheus`"
    );
    let prov = yaml("grafana/provisioning/dashboards/caplab.yml");
    assert_eq!(
        prov["providers"][0]["options"]["path"].as_str(),
        Some("/var/lib/grafana/dashboards")
    );
    for file in dashboard_files() {
        let d = dashboard(&file);
        let var = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "datasource")
            .cloned();
        let var = var.unwrap_or_else(|| panic!("{file}: no `datasource` variable"));
        assert_eq!(var["query"], "prometheus");
        assert_eq!(
            var["current"]["value"], DATASOURCE_UID,
            "{file}: default data source"
        );
    }
}
