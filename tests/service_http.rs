//! The HTTP contract of both personalities: bad input, status endpoints, metrics, the `serve`
//! command as a real process (config errors, SIGTERM) and graceful shutdown.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use caplab::config::Mode;
use caplab::lab::ports::free_port;
use caplab::metrics::{ALL_NAMES, SENTINELS_REACHABLE};
use common::app::{TestApp, request, streaming_pair, test_config};

#[tokio::test]
async fn bad_input_gets_a_4xx_json_error_naming_the_problem() {
    let pair = streaming_pair().await;
    let mut config = test_config(Mode::Cp, &pair);
    config.limits.max_key_bytes = 16;
    config.limits.max_value_bytes = 32;
    let app = TestApp::start(config).await;
    let long_key = "k".repeat(17);
    let big = "v".repeat(33);
    /// Method, path, body, expected status, what the error must say.
    type Case<'a> = (&'a str, String, Option<Vec<u8>>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("GET", "/read/".into(), None, 400, "key is empty"),
        ("POST", "/write//v".into(), None, 400, "key is empty"),
        ("POST", "/write/k/".into(), None, 400, "value is empty"),
        ("PUT", "/kv/k".into(), Some(vec![]), 400, "value is empty"),
        (
            "GET",
            format!("/read/{long_key}"),
            None,
            400,
            "longer than the limit of 16",
        ),
        (
            "POST",
            format!("/write/k/{big}"),
            None,
            413,
            "larger than the limit of 32",
        ),
        (
            "PUT",
            "/kv/k".into(),
            Some(big.clone().into_bytes()),
            413,
            "MAX_VALUE_BYTES",
        ),
        (
            "PUT",
            "/kv/k".into(),
            Some(vec![b'v'; 5000]),
            413,
            "MAX_VALUE_BYTES",
        ),
        ("GET", "/read/%FF%FE".into(), None, 400, "invalid encoding"),
        ("PUT", "/kv/k".into(), Some(vec![0xff, 0xfe]), 400, "UTF-8"),
        ("GET", "/read/a%0Ab".into(), None, 400, "control character"),
        (
            "GET",
            "/nowhere".into(),
            None,
            404,
            "no route for GET /nowhere",
        ),
        ("DELETE", "/read/k".into(), None, 405, "not allowed"),
    ];
    for (method, path, body, status, needle) in cases {
        let reply = request(app.addr, method, &path, body).await;
        assert_eq!(reply.status, status, "{method} {path}: {reply:?}");
        let error = reply.json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no JSON error: {reply:?}"));
        assert!(
            error.contains(needle),
            "{method} {path}: {error:?} lacks {needle:?}"
        );
        assert!(
            reply.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
    }
    // Nothing bad was stored.
    assert_eq!(app.get("/read/k").await.status, 404);
    app.shutdown().await;
}

#[tokio::test]
async fn put_and_get_kv_carry_values_a_path_cannot() {
    let pair = streaming_pair().await;
    for mode in [Mode::Cp, Mode::Ap] {
        let app = TestApp::over(mode, &pair).await;
        let value = "a/b?c d ✓ {\"json\": true}\nsecond line";
        let put = app.put("/kv/some%20key", value.as_bytes()).await;
        assert_eq!(put.status, 200, "{put:?}");
        assert_eq!(put.json["key"].as_str(), Some("some key"));
        let got = app
            .wait_for("/kv/some%20key", Duration::from_secs(5), |r| {
                r.status == 200
            })
            .await;
        assert_eq!(got.json["value"].as_str(), Some(value), "{got:?}");
        assert!(
            got.json["version"].as_u64().is_some() && got.json["written_at_ms"].as_u64().is_some()
        );
        let missing = app.get("/read/never-written").await;
        assert_eq!(missing.status, 404, "{missing:?}");
        assert_eq!(missing.json["error"].as_str(), Some("key not found"));
        assert!(missing.json["node"].is_string() && missing.json["staleness_ms"].is_u64());
        app.shutdown().await;
    }
}

#[tokio::test]
async fn metrics_breakers_replication_health_and_ready_have_their_shapes() {
    let pair = streaming_pair().await;
    for (mode, breakers) in [
        (Mode::Cp, vec!["g1", "g2", "replication"]),
        (Mode::Ap, vec!["g1", "g2"]),
    ] {
        let app = TestApp::over(mode, &pair).await;
        assert_eq!(
            app.post("/write/secret-key-name/secret-value").await.status,
            200
        );
        let _ = app.get("/read/secret-key-name").await;

        let metrics = app.get("/metrics").await;
        assert_eq!(metrics.status, 200);
        assert!(
            metrics.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        // sentinels_reachable is exported only by an app that has sentinels to reach.
        for name in ALL_NAMES.iter().filter(|n| **n != SENTINELS_REACHABLE) {
            assert!(
                metrics.text.contains(&format!("# TYPE {name} ")),
                "{mode}: {name} missing"
            );
        }
        let m = mode.as_str();
        for needle in [
            format!(r#"app_requests_total{{mode="{m}",operation="write",status="200"}} 1"#),
            format!(r#"app_request_latency_seconds_count{{mode="{m}",operation="read"}} 1"#),
            format!(r#"circuit_breaker_state{{mode="{m}",node="g1"}} 0"#),
            format!(r#"write_outcomes_total{{mode="{m}",outcome="ok"}} 1"#),
        ] {
            assert!(metrics.text.contains(&needle), "{mode}: {needle} missing");
        }
        assert!(
            !metrics.text.contains("secret-key-name") && !metrics.text.contains("secret-value"),
            "labels never carry keys or values"
        );

        let cb = app.get("/circuit-breaker").await.json;
        assert_eq!(cb["mode"].as_str(), Some(m));
        let names: Vec<&str> = cb["breakers"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names.len(), breakers.len(), "{cb}");
        for name in &breakers {
            let b = &cb["breakers"][name];
            assert_eq!(
                (
                    b["state"].as_str(),
                    b["state_code"].as_u64(),
                    b["consecutive_failures"].as_u64()
                ),
                (Some("closed"), Some(0), Some(0)),
                "{cb}"
            );
            assert_eq!(b["failure_threshold"].as_u64(), Some(3));
            assert!(
                b.get("last_transition_unix_ms").is_some() && b["transitions"].is_u64(),
                "{cb}"
            );
        }

        let rep = app
            .wait_for("/replication", Duration::from_secs(5), |r| {
                r.json["lag_bytes"].is_u64()
            })
            .await
            .json;
        assert_eq!(rep["link_status"].as_str(), Some("up"), "{rep}");
        assert!(
            rep["staleness_ms"]["g1"].is_u64() && rep["staleness_ms"]["g2"].as_u64() < Some(500),
            "{rep}"
        );
        assert_eq!(rep["ap_queue_depth"].as_u64(), Some(0));
        // The two offsets come from two INFO calls a moment apart; the lag is clamped at 0.
        assert!(
            rep["poll"]["primary_offset"].is_u64() && rep["poll"]["replica_offset"].is_u64(),
            "{rep}"
        );

        let health = app.get("/health").await;
        assert_eq!(
            (
                health.status,
                health.json["status"].as_str(),
                health.json["mode"].as_str()
            ),
            (200, Some("ok"), Some(m))
        );
        let ready = app.get("/ready").await;
        assert_eq!(
            (
                ready.status,
                ready.json["nodes"]["g1"]["connected"].as_bool()
            ),
            (200, Some(true)),
            "{ready:?}"
        );
        app.shutdown().await;
    }
}

#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_request_finish() {
    let pair = streaming_pair().await;
    let mut config = test_config(Mode::Cp, &pair);
    config.network_timeout = Duration::from_millis(800);
    config.cp_wait_timeout = Duration::from_millis(100);
    let app = TestApp::start(config).await;
    assert_eq!(app.post("/write/g/1").await.status, 200);
    pair.g1.pause().unwrap();
    let addr = app.addr;
    let in_flight = tokio::spawn(async move { request(addr, "GET", "/read/g", None).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let report = app.shutdown().await;
    pair.g1.resume().unwrap();
    let reply = in_flight.await.unwrap();
    assert_eq!(
        reply.status, 503,
        "the request got its answer (g1 timed out): {reply:?}"
    );
    assert!(reply.elapsed >= Duration::from_millis(700), "{reply:?}");
    assert!(
        !report.cut_short && started.elapsed() < Duration::from_secs(3),
        "{report:?}"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no new connections after shutdown"
    );
}

fn caplab() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_caplab"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

#[test]
fn serve_refuses_invalid_settings_naming_them() {
    for (var, value) in [
        ("NETWORK_TIMEOUT_SEC", "0"),
        ("PORT", "99999"),
        ("BREAKER_FAILURE_THRESHOLD", "0"),
        ("REDIS_G1_URL", "http://nope"),
    ] {
        let out = caplab()
            .args(["serve", "--mode", "cp"])
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(var), "{var}={value}: {stderr}");
    }
    let out = caplab()
        .args(["serve", "--mode", "ap"])
        .env("ENVIRONMENT", "production")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SECRET_KEY"));
}

#[tokio::test]
async fn serve_as_a_process_answers_and_stops_on_sigterm() {
    let pair = streaming_pair().await;
    let port = free_port().unwrap();
    let mut child = caplab()
        .args(["serve", "--mode", "ap", "--log-format", "json"])
        .env("PORT", port.to_string())
        .env("REDIS_G1_URL", pair.g1.url())
        .env("REDIS_G2_URL", pair.g2.url())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "caplab serve never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let w = request(addr, "POST", "/write/p/1", None).await;
    assert_eq!(
        (w.status, w.json["mode"].as_str()),
        (200, Some("ap")),
        "{w:?}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut logs = String::new();
        use std::io::Read;
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .unwrap();
        (status, logs)
    })
    .await
    .unwrap();
    assert_eq!(status.0.code(), Some(0), "{}", status.1);
    for event in ["SERVE_START", "\"WRITE\"", "SIGTERM received", "SERVE_STOP"] {
        assert!(status.1.contains(event), "{event} not logged: {}", status.1);
    }
}
