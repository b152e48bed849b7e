//! The lab console without a browser: `caplab lab up` starts it as a part of the lab
//! (recorded in `lab.json`, stopped by `lab down`), it serves the page and its assets, its
//! event stream sends the last minute then a tick at least twice a second, every open page
//! gets the same tick from one poll of the apps, and its controls act on the real lab.

mod common;

use std::time::{Duration, Instant};

use common::console::{ConsoleLab, SseReader, text};
use serde_json::Value;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// `app_requests_total{operation="metrics"}` of an app, read from its own `/metrics`.
async fn metrics_requests(app_url: &str) -> f64 {
    let body = client()
        .get(format!("{app_url}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    body.lines()
        .filter(|l| l.starts_with("app_requests_total{") && l.contains("operation=\"metrics\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

async fn control(url: &str, body: Value) -> (u16, Value) {
    let resp = client()
        .post(format!("{url}/api/control"))
        .json(&body)
        .send()
        .await
        .expect("POST /api/control");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Reads ticks until `pred` holds for one (or `timeout` passes); returns that tick.
async fn tick_where(
    sse: &mut SseReader,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let tick = sse.next_tick(left).await?;
        if pred(&tick) {
            return Some(tick);
        }
    }
    None
}

fn link<'a>(tick: &'a Value, name: &str) -> &'a Value {
    tick["links"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["name"] == name))
        .unwrap_or(&Value::Null)
}

fn node_process(tick: &Value, name: &str) -> String {
    tick["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == name))
        .and_then(|n| n["process"].as_str())
        .unwrap_or("?")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_up_serves_the_console_and_its_event_stream() {
    let lab = ConsoleLab::up();
    let url = lab.url.clone();
    assert!(
        lab.up_output.contains(&format!("The lab console: {url}")),
        "{}",
        lab.up_output
    );
    assert!(lab.up_output.contains("console "), "{}", lab.up_output);
    assert_eq!(lab.record.console_url.as_deref(), Some(url.as_str()));
    let console = lab
        .record
        .processes
        .iter()
        .find(|p| p.name == "console")
        .expect("the console is recorded in lab.json")
        .clone();
    assert!(console.is_running());

    // The page and its vendored chart library come from the binary.
    let http = client();
    let page = http.get(&url).send().await.expect("GET /");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("caplab lab console") && html.contains("uPlot.iife.min.js"));
    for asset in [
        "/assets/console.js",
        "/assets/console.css",
        "/assets/uplot/uPlot.iife.min.js",
        "/assets/uplot/LICENSE",
    ] {
        let r = http
            .get(format!("{url}{asset}"))
            .send()
            .await
            .expect("asset");
        assert_eq!(r.status(), 200, "{asset}");
        assert!(
            !r.text().await.expect("body").is_empty(),
            "{asset} is empty"
        );
    }
    // Another site's page in the same browser cannot drive it.
    let rebound = http
        .get(format!("{url}/api/state"))
        .header("Host", "evil.example:80")
        .send()
        .await
        .expect("GET");
    assert_eq!(rebound.status(), 403);
    let form = http
        .post(format!("{url}/api/control"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("action=reset")
        .send()
        .await
        .expect("POST");
    assert_eq!(form.status(), 415);
    let (status, body) = control(
        &url,
        serde_json::json!({"action": "cut", "link": "replication"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("cluster_g1"),
        "{body}"
    );

    // The stream: the last minute first, then ticks, at least twice a second.
    let mut sse = SseReader::open(&format!("{url}/events")).await;
    let first = sse
        .next(Duration::from_secs(5))
        .await
        .expect("a first event");
    assert_eq!(first.event, "history", "{}", first.data);
    let history: Value = serde_json::from_str(&first.data).expect("history JSON");
    assert!(history["points"].is_array(), "{history}");
    assert_eq!(history["tick_ms"], 500);
    let tick = sse.next_tick(Duration::from_secs(5)).await.expect("a tick");
    assert_eq!(tick["apps"][0]["mode"], "cp");
    assert_eq!(tick["apps"][1]["mode"], "ap");
    let names: Vec<&str> = tick["links"]
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(names, ["g1", "g2", "cluster_g1", "cluster_g2", "sentinels"]);
    assert!(
        tick["links"]
            .as_array()
            .expect("links")
            .iter()
            .all(|l| l["enabled"] == true)
    );
    assert_eq!(node_process(&tick, "g1"), "running");
    assert_eq!(node_process(&tick, "g2"), "running");
    assert_eq!(tick["loopback"], true);
    let started = Instant::now();
    let mut seqs = vec![tick["seq"].as_u64().expect("seq")];
    while started.elapsed() < Duration::from_secs(3) {
        if let Some(t) = sse.next_tick(Duration::from_secs(2)).await {
            seqs.push(t["seq"].as_u64().expect("seq"));
        }
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(
        seqs.len() >= 5,
        "{} ticks in 3 s (expected about 7 at 2 a second)",
        seqs.len()
    );
    let tick = sse.next_tick(Duration::from_secs(5)).await.expect("a tick");
    assert_eq!(tick["apps"][0]["up"], true, "{}", tick["apps"][0]);
    assert_eq!(tick["apps"][0]["primary"], "g1");
    assert_eq!(tick["sentinel_primary"], "g1");
    assert!(
        tick["apps"][0]["rates"]["requests_per_s"].is_number(),
        "{}",
        tick["apps"][0]
    );

    // Six open pages, one poll: the apps see one /metrics request per tick (plus this
    // test's two), not one per page.
    let mut pages = Vec::new();
    for _ in 0..5 {
        let mut page = SseReader::open(&format!("{url}/events")).await;
        page.next(Duration::from_secs(5)).await.expect("history");
        pages.push(page);
    }
    let before = metrics_requests(&lab.record.cp_url()).await;
    let window = Instant::now();
    let mut last_seq = Vec::new();
    while window.elapsed() < Duration::from_secs(3) {
        let t = sse.next_tick(Duration::from_secs(2)).await.expect("tick");
        let seq = t["seq"].as_u64();
        for page in &mut pages {
            // Every page gets the same ticks.
            let mine = tick_where(page, Duration::from_secs(3), |p| p["seq"].as_u64() >= seq)
                .await
                .expect("the page's tick");
            assert_eq!(mine["seq"].as_u64(), seq);
        }
        last_seq.push(seq);
    }
    let after = metrics_requests(&lab.record.cp_url()).await;
    let seconds = window.elapsed().as_secs_f64();
    let polls = after - before - 1.0;
    assert!(
        polls <= seconds * 2.0 + 3.0,
        "{polls} /metrics requests in {seconds:.1} s with six pages open: the console polls per page"
    );
    assert!(
        polls >= 2.0,
        "{polls} polls in {seconds:.1} s: the console does not poll"
    );
    drop(pages);

    // A cut through the control API shows in the next ticks as a fault with its window, and
    // is logged.
    let (status, entry) = control(
        &url,
        serde_json::json!({"action": "cut", "link": "cluster_g2"}),
    )
    .await;
    assert_eq!(status, 200, "{entry}");
    assert_eq!(entry["action"], "cut cluster_g2");
    let cut = tick_where(&mut sse, Duration::from_secs(5), |t| {
        link(t, "cluster_g2")["enabled"] == false
    })
    .await
    .expect("the cut shows");
    let windows = cut["windows"].as_array().expect("windows");
    assert!(
        windows
            .iter()
            .any(|w| w["label"] == "cluster_g2 cut" && w["to_ms"].is_null()),
        "{windows:?}"
    );
    assert!(
        cut["log"]
            .as_array()
            .expect("log")
            .iter()
            .any(|e| e["action"] == "cut cluster_g2"),
        "{}",
        cut["log"]
    );
    let (status, _) = control(
        &url,
        serde_json::json!({"action": "heal", "link": "cluster_g2"}),
    )
    .await;
    assert_eq!(status, 200);
    let healed = tick_where(&mut sse, Duration::from_secs(5), |t| {
        link(t, "cluster_g2")["enabled"] == true
    })
    .await
    .expect("the heal shows");
    assert!(
        healed["windows"]
            .as_array()
            .expect("windows")
            .iter()
            .any(|w| w["label"] == "cluster_g2 cut" && w["to_ms"].is_u64()),
        "{}",
        healed["windows"]
    );

    // `lab down` stops the console too (first), and its port is free again.
    let down = lab.down();
    assert!(down.status.success(), "{}", text(&down));
    assert!(text(&down).contains("stopped 9 of 9"), "{}", text(&down));
    assert!(!console.is_running(), "the console survived lab down");
    assert!(
        sse.next_tick(Duration::from_secs(3)).await.is_none(),
        "the event stream outlived the console"
    );
    let port = lab
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    caplab::lab::ports::ensure_free("console", port).expect("the console's port is free");
    common::lab::assert_ports_free(&lab.ports, "after lab down");
}
