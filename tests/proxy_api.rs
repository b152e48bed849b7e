//! The embedded proxy's HTTP API over real sockets: every endpoint, status code and error body
//! of Toxiproxy 2.x that caplab relies on.

mod common;

use common::proxy::{Answer, TestProxy, echo_server};
use serde_json::{Value, json};

fn assert_error(a: &Answer, status: u16, message: &str) {
    assert_eq!(a.status, status, "{a:?}");
    assert_eq!(a.body["status"], status, "{a:?}");
    let got = a.body["error"].as_str().unwrap_or_default();
    assert!(
        got.contains(message),
        "error {got:?} should contain {message:?}"
    );
    assert!(a.content_type.starts_with("application/json"), "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_and_unknown_routes() {
    let p = TestProxy::start();
    let v = p.call("GET", "/version", None).await;
    assert_eq!(v.status, 200);
    assert_eq!(v.content_type, "application/json;charset=utf-8");
    assert!(v.body["version"].as_str().unwrap().starts_with("caplab-"));

    assert_error(
        &p.call("GET", "/nope", None).await,
        404,
        "no route for GET /nope",
    );
    assert_error(&p.call("PUT", "/proxies", None).await, 405, "PUT");
    let browser = reqwest::Client::new()
        .get(format!("http://{}/proxies", p.api()))
        .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status().as_u16(), 403);
    let body: Value = browser.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "User agent not allowed", "status": 403})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_show_list_and_their_errors() {
    let p = TestProxy::start();
    let upstream = echo_server().await;

    // No content type, port 0: 201 with the bound address.
    let body = json!({"name": "g1", "listen": "127.0.0.1:0", "upstream": upstream}).to_string();
    let a = p.call("POST", "/proxies", Some(&body)).await;
    assert_eq!(a.status, 201, "{a:?}");
    let listen = a.body["listen"].as_str().unwrap().to_string();
    assert!(
        listen.starts_with("127.0.0.1:") && !listen.ends_with(":0"),
        "{listen}"
    );
    assert_eq!(
        a.body,
        json!({"name": "g1", "listen": listen, "upstream": upstream, "enabled": true, "toxics": []})
    );
    tokio::net::TcpStream::connect(&listen)
        .await
        .expect("the proxy listens");

    // A duplicate is 409 even when its address could not be bound: checked before binding.
    let dup = json!({"name": "g1", "listen": listen, "upstream": upstream}).to_string();
    assert_error(
        &p.call("POST", "/proxies", Some(&dup)).await,
        409,
        "proxy already exists",
    );

    assert_error(
        &p.call("POST", "/proxies", Some(r#"{"upstream": "127.0.0.1:1"}"#))
            .await,
        400,
        "missing required field: name",
    );
    assert_error(
        &p.call("POST", "/proxies", Some(r#"{"name": "x"}"#)).await,
        400,
        "missing required field: upstream",
    );
    assert_error(
        &p.call("POST", "/proxies", Some("{not json")).await,
        400,
        "bad request body",
    );
    assert_error(
        &p.call("POST", "/proxies", None).await,
        400,
        "bad request body: EOF",
    );
    assert_error(
        &p.call(
            "POST",
            "/proxies",
            Some(r#"{"name": "x", "upstream": "a:1", "enabled": "yes"}"#),
        )
        .await,
        400,
        "enabled",
    );

    // A bind failure is a 500 naming the address.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().to_string();
    let body = json!({"name": "busy", "listen": taken, "upstream": upstream}).to_string();
    assert_error(&p.call("POST", "/proxies", Some(&body)).await, 500, &taken);
    assert_error(
        &p.call("GET", "/proxies/busy", None).await,
        404,
        "proxy not found",
    );

    // Created disabled: does not listen.
    let free = caplab::lab::ports::free_port().unwrap();
    let body = json!({"name": "off", "listen": format!("127.0.0.1:{free}"), "upstream": upstream, "enabled": false});
    let a = p.call("POST", "/proxies", Some(&body.to_string())).await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.body["enabled"], false);
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", free))
            .await
            .is_err()
    );

    let shown = p.call("GET", "/proxies/g1", None).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["listen"], listen);
    assert_error(
        &p.call("GET", "/proxies/missing", None).await,
        404,
        "proxy not found",
    );

    let all = p.call("GET", "/proxies", None).await;
    assert_eq!(all.status, 200);
    let names: Vec<&String> = all.body.as_object().unwrap().keys().collect();
    assert_eq!(names, ["g1", "off"]);
    assert_eq!(all.body["g1"]["upstream"], upstream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_keeps_unnamed_fields_and_delete_closes() {
    let p = TestProxy::start();
    let upstream = echo_server().await;
    let listen = p.create("g2", &upstream).await;

    // PATCH with only `enabled`: listen and upstream stay; the same address is bound again.
    let a = p
        .call("PATCH", "/proxies/g2", Some(r#"{"enabled": false}"#))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["listen"], listen);
    assert_eq!(a.body["upstream"], upstream);
    assert!(tokio::net::TcpStream::connect(&listen).await.is_err());
    // POST is Toxiproxy's older spelling of the same update.
    let a = p
        .call("POST", "/proxies/g2", Some(r#"{"enabled": true}"#))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["enabled"], true);
    assert_eq!(a.body["listen"], listen);
    tokio::net::TcpStream::connect(&listen).await.unwrap();

    // A new upstream keeps listen and enabled.
    let other = echo_server().await;
    let body = json!({ "upstream": other }).to_string();
    let a = p.call("PATCH", "/proxies/g2", Some(&body)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["upstream"], other);
    assert_eq!(a.body["listen"], listen);
    assert_eq!(a.body["enabled"], true);

    assert_error(
        &p.call("PATCH", "/proxies/nope", Some("{}")).await,
        404,
        "proxy not found",
    );
    assert_error(
        &p.call("PATCH", "/proxies/g2", Some("[")).await,
        400,
        "bad request body",
    );

    let d = p.call("DELETE", "/proxies/g2", None).await;
    assert_eq!(d.status, 204);
    assert_eq!(d.body, Value::Null);
    assert!(tokio::net::TcpStream::connect(&listen).await.is_err());
    assert_error(
        &p.call("DELETE", "/proxies/g2", None).await,
        404,
        "proxy not found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxic_endpoints_defaults_and_errors() {
    let p = TestProxy::start();
    let upstream = echo_server().await;
    p.create("g1", &upstream).await;

    // Defaults: downstream, toxicity 1, name <type>_<stream>, unnamed attributes zero.
    let a = p
        .call(
            "POST",
            "/proxies/g1/toxics",
            Some(r#"{"type": "latency", "attributes": {"latency": 100}}"#),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.body,
        json!({"name": "latency_downstream", "type": "latency", "stream": "downstream",
               "toxicity": 1.0, "attributes": {"latency": 100, "jitter": 0}})
    );
    let a = p
        .call(
            "POST",
            "/proxies/g1/toxics",
            Some(r#"{"name": "cut", "type": "timeout", "stream": "upstream", "toxicity": 0.5, "attributes": {"timeout": 0}}"#),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["toxicity"], 0.5);

    assert_error(
        &p.call("POST", "/proxies/g1/toxics", Some(r#"{"type": "latency"}"#))
            .await,
        409,
        "toxic already exists",
    );
    assert_error(
        &p.call(
            "POST",
            "/proxies/g1/toxics",
            Some(r#"{"type": "latency", "stream": "sideways"}"#),
        )
        .await,
        400,
        "stream was invalid, can be either upstream or downstream",
    );
    assert_error(
        &p.call("POST", "/proxies/g1/toxics", Some(r#"{"type": "explode"}"#))
            .await,
        400,
        "invalid toxic type",
    );
    assert_error(
        &p.call(
            "POST",
            "/proxies/g1/toxics",
            Some(r#"{"type": "bandwidth", "attributes": {"rate": "fast"}}"#),
        )
        .await,
        400,
        "bad request body",
    );
    assert_error(
        &p.call(
            "POST",
            "/proxies/nope/toxics",
            Some(r#"{"type": "latency"}"#),
        )
        .await,
        404,
        "proxy not found",
    );

    // Listed upstream first; shown by name.
    let list = p.call("GET", "/proxies/g1/toxics", None).await;
    assert_eq!(list.status, 200);
    let names: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cut", "latency_downstream"]);
    let shown = p.call("GET", "/proxies/g1/toxics/cut", None).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["type"], "timeout");
    assert_error(
        &p.call("GET", "/proxies/g1/toxics/nope", None).await,
        404,
        "toxic not found",
    );
    assert_error(
        &p.call("GET", "/proxies/nope/toxics", None).await,
        404,
        "proxy not found",
    );

    // Partial update keeps the rest; POST and PATCH both update.
    let a = p
        .call(
            "PATCH",
            "/proxies/g1/toxics/latency_downstream",
            Some(r#"{"attributes": {"jitter": 5}}"#),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["attributes"], json!({"latency": 100, "jitter": 5}));
    assert_eq!(a.body["toxicity"], 1.0);
    let a = p
        .call(
            "POST",
            "/proxies/g1/toxics/latency_downstream",
            Some(r#"{"toxicity": 0.25}"#),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["toxicity"], 0.25);
    assert_eq!(a.body["attributes"], json!({"latency": 100, "jitter": 5}));
    assert_error(
        &p.call("PATCH", "/proxies/g1/toxics/nope", Some("{}")).await,
        404,
        "toxic not found",
    );
    assert_error(
        &p.call(
            "PATCH",
            "/proxies/g1/toxics/cut",
            Some(r#"{"attributes": {"timeout": []}}"#),
        )
        .await,
        400,
        "bad request body",
    );

    // The proxy shows its toxics.
    let shown = p.call("GET", "/proxies/g1", None).await;
    assert_eq!(shown.body["toxics"].as_array().unwrap().len(), 2);

    let d = p.call("DELETE", "/proxies/g1/toxics/cut", None).await;
    assert_eq!(d.status, 204);
    assert_error(
        &p.call("DELETE", "/proxies/g1/toxics/cut", None).await,
        404,
        "toxic not found",
    );
    assert_error(
        &p.call("DELETE", "/proxies/nope/toxics/cut", None).await,
        404,
        "proxy not found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_enables_everything_and_removes_toxics() {
    let p = TestProxy::start();
    let upstream = echo_server().await;
    let listen = p.create("g1", &upstream).await;
    p.create("g2", &upstream).await;
    p.toxic(
        "g1",
        json!({"type": "latency", "attributes": {"latency": 1000}}),
    )
    .await;
    p.toxic(
        "g2",
        json!({"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 1}}),
    )
    .await;
    p.set_enabled("g1", false).await;

    let r = p.call("POST", "/reset", None).await;
    assert_eq!(r.status, 204);
    let all = p.call("GET", "/proxies", None).await;
    for name in ["g1", "g2"] {
        assert_eq!(all.body[name]["enabled"], true, "{name}");
        assert_eq!(all.body[name]["toxics"], json!([]), "{name}");
    }
    assert_eq!(
        all.body["g1"]["listen"], listen,
        "re-enabled on the same address"
    );
    tokio::net::TcpStream::connect(&listen).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn populate_creates_keeps_and_reports_partial_failures() {
    let p = TestProxy::start();
    let upstream = echo_server().await;
    let body = json!([
        {"name": "g1", "listen": "127.0.0.1:0", "upstream": upstream},
        {"name": "g2", "listen": "127.0.0.1:0", "upstream": upstream, "enabled": false},
    ]);
    let a = p.call("POST", "/populate", Some(&body.to_string())).await;
    assert_eq!(a.status, 201, "{a:?}");
    let proxies = a.body["proxies"].as_array().unwrap();
    assert_eq!(proxies.len(), 2);
    assert_eq!(proxies[0]["enabled"], true);
    assert_eq!(proxies[1]["enabled"], false);
    assert!(a.body.get("error").is_none(), "{a:?}");
    let g1_listen = proxies[0]["listen"].as_str().unwrap().to_string();

    // Same addresses again: kept as they are (toxics too).
    p.toxic("g1", json!({"type": "noop"})).await;
    let again = json!([{"name": "g1", "listen": g1_listen, "upstream": upstream}]);
    let a = p.call("POST", "/populate", Some(&again.to_string())).await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.body["proxies"][0]["toxics"].as_array().unwrap().len(), 1);

    // Invalid input: nothing is created, the error says which proxy.
    let bad = json!([{"name": "a", "upstream": upstream}, {"name": "b"}]);
    let a = p.call("POST", "/populate", Some(&bad.to_string())).await;
    assert_error(&a, 400, "missing required field: upstream at proxy 2");
    assert_eq!(a.body["proxies"], json!([]));
    assert_error(
        &p.call("GET", "/proxies/a", None).await,
        404,
        "proxy not found",
    );
    assert_error(
        &p.call("POST", "/populate", Some(r#"{"name": "x"}"#)).await,
        400,
        "array",
    );

    // A bind failure midway: the error body still lists what was created.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().to_string();
    let partial = json!([
        {"name": "ok", "listen": "127.0.0.1:0", "upstream": upstream},
        {"name": "busy", "listen": taken, "upstream": upstream},
    ]);
    let a = p
        .call("POST", "/populate", Some(&partial.to_string()))
        .await;
    assert_error(&a, 500, &taken);
    let done: Vec<&str> = a.body["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(done, ["ok"]);
    assert_eq!(p.call("GET", "/proxies/ok", None).await.status, 200);
    drop(held);
}
