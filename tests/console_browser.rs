//! The lab console in a real browser, as a student uses it: headless Chromium opens the page
//! on a lab started by `caplab lab up`, switches the built-in traffic on, cuts replication
//! from the page (the two-step cut), and within seconds sees AP's staleness of g2 rise in the
//! chart's data, CP's availability drop and CP's replication breaker leave CLOSED; heals, and
//! sees it recover. Screenshots go to `target/console-test/browser/` for review.

mod common;

use std::time::{Duration, Instant};

use common::browser::Browser;
use common::console::ConsoleLab;
use fantoccini::{Client, Locator};
use serde_json::Value;

/// Evaluates `expr` (a JavaScript expression) in the page.
async fn js(client: &Client, expr: &str) -> Value {
    client
        .execute(&format!("return ({expr});"), vec![])
        .await
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// Polls `expr` until `pred` holds, or fails after `timeout` with `what` and the last value.
async fn wait_js(
    client: &Client,
    expr: &str,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let v = js(client, expr).await;
        if pred(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {timeout:?}; last value {v}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    let path = ConsoleLab::artefacts("browser").join(name);
    std::fs::write(&path, png).expect("write screenshot");
    eprintln!("screenshot: {}", path.display());
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// The newest non-null value of series `s` of a chart, as uPlot holds it.
fn newest(app: &str, chart: &str, s: usize) -> String {
    format!(
        "(() => {{ const d = window.caplab.chartData('{app}', '{chart}'); if (!d) return null; \
         const ys = d[{s}].filter((v) => v !== null); return ys.length ? ys[ys.length - 1] : null; }})()"
    )
}

/// The lowest value of series `s` of a chart over its last `n` points.
fn lowest_recent(app: &str, chart: &str, s: usize, n: usize) -> String {
    format!(
        "(() => {{ const d = window.caplab.chartData('{app}', '{chart}'); if (!d) return null; \
         const ys = d[{s}].slice(-{n}).filter((v) => v !== null); return ys.length ? Math.min(...ys) : null; }})()"
    )
}

/// A three-second replication cut (the two-step cut, as the shipped replication-partition
/// does it) with thresholds CP and AP pass even on a loaded machine, where a step can land a
/// fraction of a second after its phase begins.
const SHORT_SCENARIO: &str = r#"
name = "short-partition"
description = "Replication cut for three seconds: CP refuses writes, AP keeps answering."
targets = ["cp", "ap"]

[workload]
rate = 40
duration = "6s"
read_ratio = 0.5
keys = 10
clients = 4
seed = 3
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
at = "5s"

[[step]]
at = "2s"
action = "down"
proxy = "cluster_g2"

[[step]]
at = "2s"
action = "down"
proxy = "cluster_g1"

[[step]]
at = "5s"
action = "up"
proxy = "cluster_g1"

[[step]]
at = "5s"
action = "up"
proxy = "cluster_g2"

[[threshold]]
target = "cp"
phase = "partition"
metric = "write_availability"
max = 0.75
lesson = "CP refuses writes it cannot replicate"

[[threshold]]
target = "ap"
phase = "partition"
metric = "availability"
min = 0.9
lesson = "AP keeps answering"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_cuts_replication_from_the_page_and_sees_cp_and_ap_answer() {
    let scenarios = tempfile::tempdir().expect("scenarios dir");
    std::fs::write(
        scenarios.path().join("short-partition.toml"),
        SHORT_SCENARIO,
    )
    .expect("write scenario");
    let lab = ConsoleLab::up_with_scenarios(scenarios.path());
    let browser = Browser::start(1600, 2300).await;
    let c = &browser.client;
    c.goto(&lab.url).await.expect("open the console");
    wait_js(
        c,
        "document.querySelector('#conn').textContent",
        Duration::from_secs(10),
        "the page connects",
        |v| v == "live",
    )
    .await;
    wait_js(
        c,
        "window.caplab.last() !== null",
        Duration::from_secs(10),
        "a first tick",
        |v| v == true,
    )
    .await;

    // Traffic on from the page; the charts move.
    click(c, "#traffic").await;
    wait_js(
        c,
        "window.caplab.last().traffic.on",
        Duration::from_secs(5),
        "traffic on",
        |v| v == true,
    )
    .await;
    wait_js(
        c,
        &newest("cp", "throughput", 1),
        Duration::from_secs(10),
        "CP requests/s in the chart",
        |v| v.as_f64().is_some_and(|r| r > 5.0),
    )
    .await;
    wait_js(
        c,
        &newest("ap", "throughput", 1),
        Duration::from_secs(10),
        "AP requests/s in the chart",
        |v| v.as_f64().is_some_and(|r| r > 5.0),
    )
    .await;
    // "Try it": write through CP, read back through AP with the session token.
    click(c, "#try-write-cp").await;
    wait_js(
        c,
        "document.querySelector('#try-answer').textContent",
        Duration::from_secs(5),
        "the write's answer",
        |v| {
            v.as_str().is_some_and(|t| {
                t.contains("PUT /kv/greeting via CP")
                    && t.contains("version")
                    && t.contains("a new one")
            })
        },
    )
    .await;
    click(c, "#try-read-ap").await;
    wait_js(
        c,
        "document.querySelector('#try-answer').textContent",
        Duration::from_secs(5),
        "the read's answer",
        |v| {
            v.as_str().is_some_and(|t| {
                t.contains("GET /kv/greeting via AP")
                    && t.contains("session_guarantee: true")
                    && t.contains("session token: sent")
            })
        },
    )
    .await;
    // Before the cut: CP fully available, g2 fresh, the replication breaker closed.
    let before_staleness = js(c, &newest("ap", "staleness", 2))
        .await
        .as_f64()
        .unwrap_or(f64::MAX);
    assert!(
        before_staleness < 2_000.0,
        "g2 already stale before the cut: {before_staleness} ms"
    );
    assert_eq!(
        js(
            c,
            "document.querySelector('#breaker-cp-replication').dataset.state"
        )
        .await,
        "closed"
    );
    screenshot(c, "01-traffic-on.png").await;

    // The two-step cut, from the page.
    click(c, "#cut-replication").await;
    wait_js(
        c,
        "window.caplab.last().links.filter((l) => !l.enabled).map((l) => l.name).sort().join(',')",
        Duration::from_secs(5),
        "both cluster links shown cut",
        |v| v == "cluster_g1,cluster_g2",
    )
    .await;
    let cut_at = Instant::now();
    // AP keeps answering, and the chart shows g2 growing stale.
    let stale = wait_js(
        c,
        &newest("ap", "staleness", 2),
        Duration::from_secs(15),
        "AP's g2 staleness rises",
        |v| v.as_f64().is_some_and(|ms| ms > 3_000.0),
    )
    .await;
    // CP refuses: its availability in the chart drops, its replication breaker leaves CLOSED.
    let cp_avail = wait_js(
        c,
        &lowest_recent("cp", "throughput", 2, 20),
        Duration::from_secs(15),
        "CP availability drops",
        |v| v.as_f64().is_some_and(|a| a < 90.0),
    )
    .await;
    let breaker = wait_js(
        c,
        "document.querySelector('#breaker-cp-replication').dataset.state",
        Duration::from_secs(15),
        "CP's replication breaker leaves closed",
        |v| v != "closed",
    )
    .await;
    wait_js(
        c,
        &newest("cp", "breakers", 3),
        Duration::from_secs(5),
        "the breaker chart shows it",
        |v| v.as_f64().is_some_and(|s| s >= 1.0),
    )
    .await;
    let ap_avail = js(c, &lowest_recent("ap", "throughput", 2, 6)).await;
    eprintln!(
        "{:.1} s after the cut: AP g2 staleness {stale} ms, CP availability {cp_avail} %, CP replication breaker {breaker}, AP availability {ap_avail} %",
        cut_at.elapsed().as_secs_f64()
    );
    assert!(
        ap_avail.as_f64().is_some_and(|a| a > 90.0),
        "AP should keep answering during a replication cut: {ap_avail}"
    );
    // The cut shows as shaded fault windows and in the log.
    let windows = js(c, "window.caplab.last().windows.filter((w) => w.to_ms === null).map((w) => w.label).join(',')").await;
    assert!(
        windows.as_str().unwrap_or("").contains("cluster_g1 cut"),
        "{windows}"
    );
    let log = js(c, "document.querySelector('#log').textContent").await;
    assert!(
        log.as_str().unwrap_or("").contains("cut replication"),
        "{log}"
    );
    let topo = js(
        c,
        "document.querySelector('#topo-link-cluster_g1').getAttribute('class')",
    )
    .await;
    assert!(topo.as_str().unwrap_or("").contains("cut"), "{topo}");
    screenshot(c, "02-replication-cut.png").await;

    // Heal from the page: replication returns, the breaker closes, CP answers again.
    click(c, "#heal-replication").await;
    wait_js(
        c,
        "window.caplab.last().links.every((l) => l.enabled)",
        Duration::from_secs(5),
        "links healed",
        |v| v == true,
    )
    .await;
    wait_js(
        c,
        &newest("ap", "staleness", 2),
        Duration::from_secs(20),
        "g2 fresh again",
        |v| v.as_f64().is_some_and(|ms| ms < 1_500.0),
    )
    .await;
    wait_js(
        c,
        "document.querySelector('#breaker-cp-replication').dataset.state",
        Duration::from_secs(30),
        "CP's replication breaker closes again",
        |v| v == "closed",
    )
    .await;
    wait_js(
        c,
        &lowest_recent("cp", "throughput", 2, 4),
        Duration::from_secs(20),
        "CP fully available again",
        |v| v.as_f64().is_some_and(|a| a >= 99.0),
    )
    .await;
    let closed = js(c, "window.caplab.last().windows.some((w) => w.label === 'cluster_g1 cut' && w.to_ms !== null)").await;
    assert_eq!(closed, true, "the fault window closed");
    screenshot(c, "03-healed.png").await;

    // A scenario from the page: pick it, run it, follow it, read its verdict and lessons,
    // open its report.
    c.find(Locator::Css("#scenario-file"))
        .await
        .expect("the scenario list")
        .select_by_value("short-partition.toml")
        .await
        .expect("pick the scenario");
    click(c, "#scenario-run").await;
    wait_js(
        c,
        "window.caplab.last().scenario.running",
        Duration::from_secs(5),
        "the run starts",
        |v| v == true,
    )
    .await;
    let refused = js(
        c,
        "(async () => (await fetch('/api/control', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({action: 'reset'})})).status)()",
    )
    .await;
    assert_eq!(refused, 409, "a control while a scenario drives the lab");
    let verdict = wait_js(
        c,
        "document.querySelector('#scenario-verdict') && document.querySelector('#scenario-verdict').textContent",
        Duration::from_secs(40),
        "the scenario's verdict",
        |v| v.as_str().is_some_and(|t| !t.is_empty()),
    )
    .await;
    assert_eq!(
        verdict,
        "PASSED",
        "{}",
        js(c, "document.querySelector('#scenario-status').textContent").await
    );
    let lessons = js(c, "document.querySelector('#scenario-status').textContent").await;
    for lesson in [
        "CP refuses writes it cannot replicate",
        "AP keeps answering",
    ] {
        assert!(lessons.as_str().unwrap_or("").contains(lesson), "{lessons}");
    }
    let log = js(c, "document.querySelector('#log').textContent").await;
    assert!(
        log.as_str()
            .unwrap_or("")
            .contains("scenario short-partition"),
        "{log}"
    );
    // Each of its proxy steps is a line of the control log, with its time, as the page's
    // own controls are: the cuts 3 s (5 s - 2 s in the file) before the heals.
    let steps = js(
        c,
        "window.caplab.last().log.filter((e) => e.action.startsWith('scenario: ')).map((e) => [e.action, e.ok, e.t_ms])",
    )
    .await;
    let steps: Vec<(String, bool, u64)> = serde_json::from_value(steps).expect("log lines");
    let actions: Vec<&str> = steps.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "scenario: cluster_g2 down",
            "scenario: cluster_g1 down",
            "scenario: cluster_g1 up",
            "scenario: cluster_g2 up"
        ],
        "{steps:?}"
    );
    assert!(steps.iter().all(|s| s.1), "{steps:?}");
    let between = steps[2].2.saturating_sub(steps[1].2);
    assert!(
        (2_000..=8_000).contains(&between),
        "the heal logged {between} ms after the cut (3 s apart in the scenario): {steps:?}"
    );
    assert!(
        log.as_str()
            .unwrap_or("")
            .contains("scenario: cluster_g1 down"),
        "{log}"
    );
    screenshot(c, "04-scenario.png").await;
    click(c, "#scenario-report").await;
    let windows = c.windows().await.expect("windows");
    assert_eq!(windows.len(), 2, "the report opens in a tab");
    c.switch_to_window(windows[1].clone())
        .await
        .expect("switch");
    wait_js(
        c,
        "document.title",
        Duration::from_secs(10),
        "the report loads",
        |v| {
            v.as_str()
                .is_some_and(|t| t.contains("short-partition") && t.contains("PASSED"))
        },
    )
    .await;
    screenshot(c, "05-report.png").await;

    browser.close().await;
    let down = lab.down();
    assert!(down.status.success());
}
