//! Where `caplab proxy` follows Toxiproxy's finer behaviour, over real sockets: populate keeps a
//! proxy whose listen address is spelled differently but resolves the same, every response
//! carries an `X-Toxiproxy-Request-Id`, a bind failure reads as Go's, and upstreams outside
//! loopback are refused unless the server allows them (the API itself binds loopback).

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use caplab::lab::ports::free_port;
use caplab::proxy::ProxyOptions;
use caplab::proxy::upstream::UpstreamPolicy;
use common::proxy::{Answer, TestProxy, connect, echo_server, round_trip};
use serde_json::{Value, json};

fn error_of(a: &Answer) -> String {
    a.body["error"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn populate_keeps_a_proxy_whose_listen_resolves_the_same() {
    let p = TestProxy::start();
    let upstream = echo_server().await;
    let (one_port, two_port) = (free_port().unwrap(), free_port().unwrap());

    // `one` listens on localhost:P with a latency toxic and an open connection; `two` is
    // disabled.
    for (name, port) in [("one", one_port), ("two", two_port)] {
        let body =
            json!({"name": name, "listen": format!("localhost:{port}"), "upstream": upstream});
        let a = p.call("POST", "/proxies", Some(&body.to_string())).await;
        assert_eq!(a.status, 201, "{a:?}");
        assert_eq!(
            a.body["listen"],
            format!("127.0.0.1:{port}"),
            "stored resolved"
        );
    }
    p.toxic(
        "one",
        json!({"name": "slow", "type": "latency", "attributes": {"latency": 150}}),
    )
    .await;
    let mut open = connect(&format!("127.0.0.1:{one_port}")).await;
    assert!(round_trip(&mut open, b"before").await >= Duration::from_millis(145));
    p.set_enabled("two", false).await;

    // The same proxies, spelled the other way round: 127.0.0.1 where they said localhost.
    let same = json!([
        {"name": "one", "listen": format!("127.0.0.1:{one_port}"), "upstream": upstream},
        {"name": "two", "listen": format!("localhost:{two_port}"), "upstream": upstream, "enabled": true},
    ]);
    let a = p.call("POST", "/populate", Some(&same.to_string())).await;
    assert_eq!(a.status, 201, "{a:?}");
    let one = p.call("GET", "/proxies/one", None).await.body;
    assert_eq!(one["toxics"][0]["name"], "slow", "toxic kept: {one}");
    assert_eq!(one["enabled"], true);
    let two = p.call("GET", "/proxies/two", None).await.body;
    assert_eq!(two["enabled"], false, "disabled state kept: {two}");
    // The connection opened before is still served, still through the toxic.
    let rtt = round_trip(&mut open, b"after").await;
    assert!(rtt >= Duration::from_millis(145), "{rtt:?}");

    // An update that spells the listen address differently keeps the proxy too.
    let patch = json!({"listen": format!("localhost:{one_port}")}).to_string();
    let a = p.call("PATCH", "/proxies/one", Some(&patch)).await;
    assert_eq!(a.status, 200, "{a:?}");
    round_trip(&mut open, b"patched").await;

    // Another port is another proxy: replaced, toxic gone, connection cut. The upstream is
    // compared as text, as Toxiproxy compares it.
    let moved = json!([{"name": "one", "listen": "127.0.0.1:0", "upstream": upstream}]);
    let a = p.call("POST", "/populate", Some(&moved.to_string())).await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.body["proxies"][0]["toxics"], json!([]), "{a:?}");
    let (_, ended) = common::proxy::read_to_end(&mut open, Duration::from_secs(5)).await;
    assert!(ended.is_ok(), "the old connection is closed: {ended:?}");
}

/// An xid as Toxiproxy's middleware prints it: 20 characters of base32hex, lower case.
fn is_xid(id: &str) -> bool {
    id.len() == 20
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_has_a_request_id() {
    let p = TestProxy::start();
    let upstream = echo_server().await;
    let created = json!({"name": "g1", "listen": "127.0.0.1:0", "upstream": upstream}).to_string();
    let toxic = json!({"type": "latency", "attributes": {"latency": 1}}).to_string();
    let calls: Vec<(&str, &str, Option<&str>, u16)> = vec![
        ("POST", "/proxies", Some(&created), 201),
        ("GET", "/proxies", None, 200),
        ("GET", "/proxies/g1", None, 200),
        ("POST", "/proxies/g1/toxics", Some(&toxic), 200),
        ("DELETE", "/proxies/g1/toxics/latency_downstream", None, 204),
        ("POST", "/proxies", Some(&created), 409),
        ("GET", "/proxies/nope", None, 404),
        ("POST", "/populate", Some("[]"), 201),
        ("POST", "/reset", None, 204),
        ("GET", "/version", None, 200),
        ("GET", "/metrics", None, 200),
        ("GET", "/no/such/route", None, 404),
        ("PUT", "/proxies", None, 405),
    ];
    let mut ids = HashSet::new();
    for (method, path, body, status) in calls {
        let a = p.call(method, path, body).await;
        assert_eq!(a.status, status, "{method} {path}: {a:?}");
        let id = a
            .headers
            .get("x-toxiproxy-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{method} {path}: no request id: {a:?}"))
            .to_string();
        assert!(is_xid(&id), "{method} {path}: {id:?} is not an xid");
        assert!(ids.insert(id), "{method} {path}: request id repeated");
    }
    // Even a refused browser gets one.
    let browser = reqwest::Client::new()
        .get(format!("http://{}/proxies", p.api()))
        .header("User-Agent", "Mozilla/5.0")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status().as_u16(), 403);
    assert!(browser.headers().contains_key("x-toxiproxy-request-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_failures_read_like_toxiproxys() {
    let p = TestProxy::start();
    let upstream = echo_server().await;
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let busy = format!("127.0.0.1:{port}: bind: address already in use");

    // Asked as localhost, reported as the resolved address, in Go's words.
    let body = json!({"name": "busy", "listen": format!("localhost:{port}"), "upstream": upstream});
    let a = p.call("POST", "/proxies", Some(&body.to_string())).await;
    assert_eq!(a.status, 500, "{a:?}");
    assert_eq!(error_of(&a), format!("listen tcp {busy}"));
    assert_eq!(a.body["status"], 500);

    let no_port = json!({"name": "x", "listen": "localhost", "upstream": upstream});
    let a = p.call("POST", "/proxies", Some(&no_port.to_string())).await;
    assert_eq!(
        (a.status, error_of(&a).as_str()),
        (
            500,
            "listen tcp: address localhost: missing port in address"
        )
    );
    let bad_port = json!({"name": "x", "listen": "127.0.0.1:70000", "upstream": upstream});
    let a = p
        .call("POST", "/proxies", Some(&bad_port.to_string()))
        .await;
    assert_eq!(error_of(&a), "listen tcp: address 70000: invalid port");

    // The same text from populate (with what was done before it) and from an update.
    let ok = json!({"name": "ok", "listen": "127.0.0.1:0", "upstream": upstream});
    let list = json!([ok, body]);
    let a = p.call("POST", "/populate", Some(&list.to_string())).await;
    assert_eq!(a.status, 500, "{a:?}");
    assert_eq!(error_of(&a), format!("listen tcp {busy}"));
    assert_eq!(a.body["proxies"][0]["name"], "ok");
    let patch = json!({"listen": format!("localhost:{port}")}).to_string();
    let a = p.call("PATCH", "/proxies/ok", Some(&patch)).await;
    assert_eq!(a.status, 500, "{a:?}");
    assert_eq!(error_of(&a), format!("listen tcp {busy}"));
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_outside_loopback_are_refused_unless_allowed() {
    // Nothing here ever connects to 169.254.169.254: creating a proxy does not dial.
    let metadata = "169.254.169.254:80";
    let p = TestProxy::start();
    let local = echo_server().await;

    let body = json!({"name": "meta", "listen": "127.0.0.1:0", "upstream": metadata}).to_string();
    let a = p.call("POST", "/proxies", Some(&body)).await;
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(a.body["status"], 403);
    let e = error_of(&a);
    assert!(
        e.contains(metadata) && e.contains("--allow-remote-upstreams"),
        "{e}"
    );
    assert_eq!(p.call("GET", "/proxies/meta", None).await.status, 404);

    // Populate checks every upstream before it creates anything.
    let list = json!([
        {"name": "fine", "listen": "127.0.0.1:0", "upstream": local},
        {"name": "meta", "listen": "127.0.0.1:0", "upstream": metadata},
    ]);
    let a = p.call("POST", "/populate", Some(&list.to_string())).await;
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(a.body["proxies"], json!([]));
    assert_eq!(p.call("GET", "/proxies/fine", None).await.status, 404);

    // An update cannot point an existing proxy there either; it keeps its upstream.
    let listen = p.create("g1", &local).await;
    let patch = json!({"upstream": metadata}).to_string();
    let a = p.call("PATCH", "/proxies/g1", Some(&patch)).await;
    assert_eq!(a.status, 403, "{a:?}");
    let g1 = p.call("GET", "/proxies/g1", None).await.body;
    assert_eq!(g1["upstream"], local);
    round_trip(&mut connect(&listen).await, b"still local").await;

    // Loopback by name is fine.
    let named = json!({"name": "named", "listen": "127.0.0.1:0",
        "upstream": format!("localhost:{}", local.rsplit(':').next().unwrap())});
    let a = p.call("POST", "/proxies", Some(&named.to_string())).await;
    assert_eq!(a.status, 201, "{a:?}");

    // A server started with the flag accepts it, as Toxiproxy does.
    let open = TestProxy::start_with(ProxyOptions {
        upstreams: UpstreamPolicy { allow_remote: true },
        ..ProxyOptions::default()
    });
    let a = open.call("POST", "/proxies", Some(&body)).await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.body["upstream"], metadata);
}

/// A `caplab proxy` process, killed by pid when dropped.
struct ProxyProcess {
    child: Child,
    api: String,
}

impl ProxyProcess {
    /// Runs `caplab proxy --port 0 <args>` with `env`; waits for the line naming its API.
    fn start(args: &[&str], env: &[(&str, &str)]) -> ProxyProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_caplab"))
            .args(["proxy", "--port", "0"])
            .args(args)
            .envs(env.iter().copied())
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start caplab proxy");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let api = line
            .trim()
            .strip_prefix("caplab proxy API on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        ProxyProcess { child, api }
    }

    async fn create(&self, upstream: &str) -> u16 {
        let body = json!({"name": "p", "listen": "127.0.0.1:0", "upstream": upstream});
        let resp = reqwest::Client::new()
            .post(format!("http://{}/proxies", self.api))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_binds_loopback_and_takes_the_flag_or_its_env() {
    let started = Instant::now();
    let plain = ProxyProcess::start(&[], &[]);
    assert!(plain.api.starts_with("127.0.0.1:"), "{}", plain.api);
    assert_eq!(plain.create("169.254.169.254:80").await, 403);

    let flagged = ProxyProcess::start(&["--allow-remote-upstreams"], &[]);
    assert_eq!(flagged.create("169.254.169.254:80").await, 201);
    let by_env = ProxyProcess::start(&[], &[("PROXY_ALLOW_REMOTE_UPSTREAMS", "true")]);
    assert_eq!(by_env.create("169.254.169.254:80").await, 201);

    // Toxiproxy's metric flags are accepted; with both off there is no /metrics.
    let quiet = ProxyProcess::start(&["--proxy-metrics=false", "--runtime-metrics=false"], &[]);
    let resp = reqwest::get(format!("http://{}/metrics", quiet.api))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], 404);
    eprintln!("four proxy processes in {:?}", started.elapsed());
}
