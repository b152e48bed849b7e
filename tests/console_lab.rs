//! The lab console without a browser: `caplab lab up` starts it as a part of the lab
//! (recorded in `lab.json`, stopped by `lab down`), it serves the page and its assets, its
//! event stream sends the last minute then a tick at least twice a second, every open page
//! gets the same tick from one poll of the apps, and its controls act on the real lab.

mod common;

use std::time::{Duration, Instant};

use common::console::{ConsoleLab, SseReader, text};
use common::sentinels::REJOIN_WITHIN;
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

/// `POST /api/control` that must succeed; returns the control log's entry for it.
async fn control_ok(url: &str, body: Value) -> Value {
    let (status, entry) = control(url, body).await;
    assert_eq!(status, 200, "{entry}");
    entry
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

    // `lab status` checks it like any other part.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args(["lab", "status", "--dir", &lab.dir.display().to_string()])
        .output()
        .expect("lab status");
    let out = text(&status);
    let line = out
        .lines()
        .find(|l| l.starts_with("console "))
        .unwrap_or_else(|| panic!("no console line:\n{out}"));
    assert!(line.contains(&url) && line.contains("ok"), "{out}");

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
            // Every page keeps up with the ticks (a page too slow for one skips to the newest).
            tick_where(page, Duration::from_secs(3), |p| p["seq"].as_u64() >= seq)
                .await
                .expect("the page's tick");
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
    let entry = control_ok(
        &url,
        serde_json::json!({"action": "cut", "link": "cluster_g2"}),
    )
    .await;
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
    control_ok(
        &url,
        serde_json::json!({"action": "heal", "link": "cluster_g2"}),
    )
    .await;
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

    // "Try it": a write through CP answers a version and a session token; a read through AP
    // with that token is served read-your-writes.
    let relay = |body: Value| {
        let url = url.clone();
        async move {
            let resp = client()
                .post(format!("{url}/api/try"))
                .json(&body)
                .send()
                .await
                .expect("POST /api/try");
            (
                resp.status().as_u16(),
                resp.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, wrote) = relay(
        serde_json::json!({"via": "cp", "op": "write", "key": "a key/with ?", "value": "v1"}),
    )
    .await;
    assert_eq!(status, 200, "{wrote}");
    assert_eq!(wrote["status"], 200, "{wrote}");
    assert_eq!(wrote["request"], "PUT /kv/a%20key%2Fwith%20%3F");
    let version = wrote["body"]["version"].as_u64().expect("a version");
    let token = wrote["session_token"]
        .as_str()
        .expect("a session token")
        .to_string();
    assert_eq!(wrote["sent_token"], false);
    let (_, read) = relay(
        serde_json::json!({"via": "ap", "op": "read", "key": "a key/with ?", "token": token}),
    )
    .await;
    assert_eq!(read["status"], 200, "{read}");
    assert_eq!(read["body"]["value"], "v1", "{read}");
    assert_eq!(read["body"]["version"].as_u64(), Some(version), "{read}");
    assert_eq!(read["body"]["session_guarantee"], true, "{read}");
    assert_eq!(read["body"]["stale"], false, "{read}");
    assert_eq!(read["sent_token"], true);
    let (_, forged) = relay(
        serde_json::json!({"via": "cp", "op": "read", "key": "a key/with ?", "token": "forged"}),
    )
    .await;
    assert_eq!(forged["status"], 401, "{forged}");
    let (status, bad) = relay(serde_json::json!({"via": "both", "op": "read", "key": "k"})).await;
    assert_eq!(status, 400, "{bad}");

    // `lab down` stops the console too (first), and its port is free again.
    let down = lab.down();
    assert!(down.status.success(), "{}", text(&down));
    assert!(text(&down).contains("stopped 9 of 9"), "{}", text(&down));
    assert!(!console.is_running(), "the console survived lab down");
    // Ticks sent before the console stopped may still be buffered; then the stream ends.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sse.ended() && Instant::now() < deadline {
        sse.next(Duration::from_secs(1)).await;
    }
    assert!(sse.ended(), "the event stream outlived the console");
    let port = lab
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    common::lab::assert_port_free("console", port, "the console's port is free");
    common::lab::assert_ports_free(&lab.ports, "after lab down");
}

/// The redis node's recorded process in `lab.json` now.
fn recorded(lab: &ConsoleLab, name: &str) -> caplab::lab::process::ProcessRecord {
    caplab::lab::LabRecord::read(&lab.dir)
        .expect("read")
        .expect("lab.json")
        .processes
        .into_iter()
        .find(|p| p.name == name)
        .expect("recorded")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_controls_a_failover_and_reset_act_on_the_detached_lab() {
    let lab = ConsoleLab::up();
    let url = lab.url.clone();
    let mut sse = SseReader::open(&format!("{url}/events")).await;
    let g2_at_start = recorded(&lab, "redis g2");

    // Freeze and resume g2: the tick shows it, and it is a fault while it lasts.
    control_ok(
        &url,
        serde_json::json!({"action": "node", "node": "g2", "op": "stop"}),
    )
    .await;
    let t = tick_where(&mut sse, Duration::from_secs(5), |t| {
        node_process(t, "g2") == "stopped"
    })
    .await
    .expect("g2 shown stopped");
    assert!(
        t["faults"]
            .as_array()
            .expect("faults")
            .iter()
            .any(|f| f["label"] == "node g2 stopped"),
        "{}",
        t["faults"]
    );
    control_ok(
        &url,
        serde_json::json!({"action": "node", "node": "g2", "op": "continue"}),
    )
    .await;
    tick_where(&mut sse, Duration::from_secs(5), |t| {
        node_process(t, "g2") == "running"
    })
    .await
    .expect("g2 running again");

    // Kill it: down. Restart it: a new process from its own config file, recorded in
    // lab.json, back as g1's replica.
    control_ok(
        &url,
        serde_json::json!({"action": "node", "node": "g2", "op": "kill"}),
    )
    .await;
    tick_where(&mut sse, Duration::from_secs(5), |t| {
        node_process(t, "g2") == "down"
    })
    .await
    .expect("g2 shown down");
    assert!(!g2_at_start.is_running());
    control_ok(
        &url,
        serde_json::json!({"action": "node", "node": "g2", "op": "restart"}),
    )
    .await;
    let g2_now = recorded(&lab, "redis g2");
    assert_ne!(g2_now.pid, g2_at_start.pid);
    assert!(g2_now.is_running());
    assert!(
        recorded(&lab, "console").is_running(),
        "lab.json lost the console"
    );
    tick_where(&mut sse, Duration::from_secs(20), |t| {
        node_process(t, "g2") == "running"
            && t["apps"][0]["link_status"] == "up"
            && t["apps"][0]["roles"]["g2"] == "replica"
    })
    .await
    .expect("g2 back as a replica with its link up");

    // A failover from the page: the sentinels promote g2, the apps follow, and the change of
    // primary is marked on the charts.
    // The sentinels notice the restarted replica on their own schedule (they refuse with
    // NOGOODSLAVE until then, and the control reports that refusal): try until they accept.
    let deadline = Instant::now() + REJOIN_WITHIN;
    let entry = loop {
        let (status, entry) = control(&url, serde_json::json!({"action": "failover"})).await;
        if status == 200 {
            break entry;
        }
        assert_eq!(status, 502, "{entry}");
        assert!(
            entry["error"]
                .as_str()
                .unwrap_or("")
                .contains("NOGOODSLAVE"),
            "{entry}"
        );
        assert!(
            Instant::now() < deadline,
            "the sentinels never accepted a failover: {entry}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        entry["detail"]
            .as_str()
            .unwrap_or("")
            .contains("promoted g2"),
        "{entry}"
    );
    let t = tick_where(&mut sse, Duration::from_secs(20), |t| {
        t["sentinel_primary"] == "g2"
            && t["apps"][0]["primary"] == "g2"
            && t["apps"][1]["primary"] == "g2"
    })
    .await
    .expect("the apps follow the promotion");
    assert!(
        t["markers"]
            .as_array()
            .expect("markers")
            .iter()
            .any(|m| m["label"] == "primary g1 -> g2"),
        "{}",
        t["markers"]
    );
    // Reset everything: a cut link and a killed node come back.
    control_ok(
        &url,
        serde_json::json!({"action": "latency", "link": "g1", "ms": 200}),
    )
    .await;
    control_ok(
        &url,
        serde_json::json!({"action": "cut", "link": "sentinels"}),
    )
    .await;
    control_ok(
        &url,
        serde_json::json!({"action": "node", "node": "g1", "op": "kill"}),
    )
    .await;
    let t = tick_where(&mut sse, Duration::from_secs(5), |t| {
        node_process(t, "g1") == "down"
    })
    .await
    .expect("g1 down");
    assert!(
        link(&t, "g1")["toxics"][0]
            .as_str()
            .unwrap_or("")
            .starts_with("latency 200 ms"),
        "{}",
        link(&t, "g1")
    );
    let (status, entry) = control(&url, serde_json::json!({"action": "reset"})).await;
    assert_eq!(status, 200, "{entry}");
    assert!(
        entry["detail"]
            .as_str()
            .unwrap_or("")
            .contains("restart g1"),
        "{entry}"
    );
    let t = tick_where(&mut sse, Duration::from_secs(20), |t| {
        node_process(t, "g1") == "running" && t["faults"].as_array().is_some_and(|f| f.is_empty())
    })
    .await
    .expect("everything back after reset");
    assert!(
        t["links"]
            .as_array()
            .expect("links")
            .iter()
            .all(|l| l["enabled"] == true && l["toxics"].as_array().is_some_and(|x| x.is_empty()))
    );

    // `lab down` stops the processes the console started too.
    let record = caplab::lab::LabRecord::read(&lab.dir)
        .expect("read")
        .expect("lab.json");
    let down = lab.down();
    assert!(down.status.success(), "{}", text(&down));
    assert!(text(&down).contains("stopped 9 of 9"), "{}", text(&down));
    common::lab::assert_processes_gone(&record);
    common::lab::assert_ports_free(&lab.ports, "after lab down");
}

#[test]
fn a_taken_console_port_stops_up_before_anything_starts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("lab");
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let port = held.local_addr().expect("addr").port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args([
            "lab",
            "up",
            "--dir",
            &dir.display().to_string(),
            "--console-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .output()
        .expect("run caplab");
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains(&format!(
            "port {port} for the console (--console-addr, or off) is already in use"
        )),
        "{msg}"
    );
    assert!(
        !dir.join("g1").exists(),
        "the lab started before the port was checked"
    );
    assert!(caplab::lab::LabRecord::read(&dir).expect("read").is_none());
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args([
            "lab",
            "up",
            "--dir",
            &dir.display().to_string(),
            "--console-addr",
            "nowhere",
        ])
        .output()
        .expect("run caplab");
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("expected ip:port"), "{}", text(&bad));
}
