//! The metric names the alert rules and the dashboard read, against live apps: every name
//! `prometheus/metric-names.txt` marks as served by caplab appears on the `/metrics` of a CP
//! and of an AP app from their first scrape, before any request (a series that never moved is
//! a zero, not an absence, or an alert on it could never fire and a panel would stay empty).

mod common;

use caplab::config::Mode;
use common::app::{TestApp, streaming_pair};

/// The `caplab`-sourced names of `prometheus/metric-names.txt`.
fn caplab_names() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/prometheus/metric-names.txt");
    let text = std::fs::read_to_string(path).expect("prometheus/metric-names.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some(name), Some("caplab")) => Some(name.to_string()),
                _ => None,
            }
        })
        .collect()
}

/// The metric names of the samples in a Prometheus text exposition.
fn exposed(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_caplab_metric_name_is_on_both_apps_from_the_first_scrape() {
    let names = caplab_names();
    assert!(
        names.len() >= 10 && names.iter().any(|n| n == "session_ryw_fallbacks_total"),
        "the list was read: {names:?}"
    );
    let pair = streaming_pair().await;
    for mode in [Mode::Cp, Mode::Ap] {
        let app = TestApp::over(mode, &pair).await;
        let text = app.get("/metrics").await.text;
        let seen = exposed(&text);
        let missing: Vec<&String> = names.iter().filter(|n| !seen.contains(*n)).collect();
        assert!(
            missing.is_empty(),
            "{mode}: missing from the first /metrics: {missing:?}\n{text}"
        );
        for name in &names {
            let labelled = format!(r#"{name}{{mode="{mode}""#);
            assert!(text.contains(&labelled), "{mode}: {name} has no mode label");
        }
        app.shutdown().await;
    }
}
