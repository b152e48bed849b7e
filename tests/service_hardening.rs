//! The server under hostile clients: slow headers and idle connections are closed by their
//! timeouts, the connection cap refuses the extras with a JSON 503 while `/health` still
//! answers, bodies have a deadline and their real size, hyper's own errors are JSON, `HEAD`
//! is counted as a read, two session tokens are refused, the rate limit answers 429, and HTTPS
//! serves with a generated pair. Each test runs one app over a real Redis pair.

mod common;

use std::sync::Arc;
use std::time::Duration;

use caplab::config::{Mode, RateLimit, TlsFiles};
use common::app::{TestApp, request, request_with, streaming_pair, test_config};
use common::raw::{connect, exchange, json_of, read_until_closed, sample, status_of};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed_within_their_timeouts() {
    let pair = streaming_pair().await;
    let mut config = test_config(Mode::Ap, &pair);
    config.server.header_read_timeout = Duration::from_millis(400);
    config.server.idle_timeout = Duration::from_millis(1500);
    let app = TestApp::start(config).await;

    // Half a request line, then nothing.
    let mut half = connect(app.addr).await;
    half.write_all(b"GET /read/k HTTP/1.1\r\nHo").await.unwrap();
    // Nothing at all.
    let mut silent = connect(app.addr).await;
    // A whole request answered on a kept-alive connection, then nothing.
    let mut kept = connect(app.addr).await;
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();

    let limit = Duration::from_secs(6);
    let started = std::time::Instant::now();
    let (half_read, half_closed) = read_until_closed(&mut half, limit).await;
    let (_, silent_closed) = read_until_closed(&mut silent, limit).await;
    let (kept_read, kept_closed) = read_until_closed(&mut kept, limit).await;
    let kept_lived = started.elapsed();
    assert!(
        half_read.is_empty(),
        "no answer to half a request: {half_read}"
    );
    let half_closed = half_closed.expect("half a request line is closed by the header timeout");
    assert!(silent_closed.is_some(), "a silent connection is closed too");
    assert!(
        half_closed < Duration::from_secs(3),
        "closed {half_closed:?} after, the timeout is 400 ms"
    );
    assert_eq!(status_of(&kept_read), 200, "{kept_read}");
    // The kept-alive one waited for the idle timeout, not the header one: it was still open
    // when the other two closed.
    kept_closed.expect("an idle keep-alive connection is closed");
    assert!(
        kept_lived >= Duration::from_millis(1400) && kept_lived > half_closed,
        "idle close after {kept_lived:?}, the idle timeout is 1.5 s"
    );

    let metrics = app.get("/metrics").await.text;
    assert!(
        sample(
            &metrics,
            r#"http_connection_timeouts_total{mode="ap",phase="header"}"#
        ) >= 2.0,
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            r#"http_connection_timeouts_total{mode="ap",phase="idle"}"#
        ) >= 1.0,
        "{metrics}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn past_the_cap_connections_get_a_json_503_while_health_still_answers() {
    let pair = streaming_pair().await;
    let mut config = test_config(Mode::Cp, &pair);
    config.server.max_connections = 3;
    config.server.reserved_connections = 1;
    config.server.header_read_timeout = Duration::from_secs(20);
    let app = TestApp::start(config).await;

    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect(app.addr).await;
        s.write_all(b"GET /read/h").await.unwrap();
        held.push(s);
    }
    // Let the server take all three before the next one comes.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The fourth connection gets the reserved slot: probes pass, the data path does not.
    let health = request(app.addr, "GET", "/health", None).await;
    assert_eq!(health.status, 200, "{health:?}");
    let read = request(app.addr, "GET", "/read/k", None).await;
    assert_eq!(read.status, 503, "{read:?}");
    assert_eq!(read.json["code"], "too_many_connections", "{read:?}");
    assert!(
        read.json["error"]
            .as_str()
            .unwrap()
            .contains("MAX_CONNECTIONS=3")
    );

    // With the reserve held too, the next connection is refused at once, with a reason.
    let mut reserve = connect(app.addr).await;
    reserve.write_all(b"GET /metr").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = exchange(app.addr, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status_of(&refused), 503, "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    assert_eq!(
        json_of(&refused)["code"],
        "too_many_connections",
        "{refused}"
    );

    // After the flood every slot comes back: a new connection is served in full.
    drop(held);
    drop(reserve);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let write = request(app.addr, "POST", "/write/after/1", None).await;
    assert_eq!(write.status, 200, "{write:?}");
    let metrics = app.get("/metrics").await.text;
    assert!(
        sample(
            &metrics,
            r#"http_connections_rejected_total{mode="cp",reason="limit"}"#
        ) >= 1.0,
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"http_connections_open{mode="cp",slot="regular"}"#
        ),
        1.0,
        "only the scrape itself is open: {metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"http_connections_open{mode="cp",slot="reserved"}"#
        ),
        0.0
    );
    app.shutdown().await;
}

#[tokio::test]
async fn oversized_slow_and_odd_requests_get_json_that_says_what_is_wrong() {
    let pair = streaming_pair().await;
    let mut config = test_config(Mode::Ap, &pair);
    config.server.body_timeout = Duration::from_millis(500);
    let app = TestApp::start(config).await;

    // A 10 MB body is refused by its announced size, before it is read.
    let answer = exchange(
        app.addr,
        b"PUT /kv/big HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\nvvvvvvvv",
    )
    .await;
    assert_eq!(status_of(&answer), 413, "{answer}");
    let error = json_of(&answer)["error"].as_str().unwrap_or("").to_string();
    assert!(
        error.contains("10485760 bytes") && error.contains("65536"),
        "{answer}"
    );
    // Without Content-Length, reading stops at the limit.
    let chunk = format!("{:x}\r\n{}\r\n", 70_000, "v".repeat(70_000));
    let chunked = format!(
        "PUT /kv/big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}0\r\n\r\n"
    );
    let answer = exchange(app.addr, chunked.as_bytes()).await;
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert!(
        json_of(&answer)["error"]
            .as_str()
            .unwrap()
            .contains("MAX_VALUE_BYTES")
    );

    // A value too long for a request line: hyper's 414, with JSON saying what to do.
    let long = format!(
        "POST /write/k/{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "v".repeat(70_000)
    );
    let answer = exchange(app.addr, long.as_bytes()).await;
    assert_eq!(status_of(&answer), 414, "{answer}");
    assert_eq!(json_of(&answer)["code"], "uri_too_long", "{answer}");
    assert!(
        json_of(&answer)["error"]
            .as_str()
            .unwrap()
            .contains("PUT /kv/")
    );
    // Garbage is hyper's 400, in JSON too.
    let answer = exchange(app.addr, b"\x16\x03\x01 hello\r\n\r\n").await;
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert_eq!(json_of(&answer)["code"], "malformed_request", "{answer}");

    // A body that never finishes: 408 after the body deadline.
    let mut slow = connect(app.addr).await;
    slow.write_all(b"PUT /kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert_eq!(json_of(&answer)["code"], "body_timeout", "{answer}");

    // Two session tokens: refused, whichever the first is.
    let first = app.post("/write/tok/1").await.session_token().unwrap();
    let two = [
        ("x-session-token", first.as_str()),
        ("x-session-token", "x"),
    ];
    let reply = request_with(app.addr, "GET", "/read/tok", None, &two).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.json["code"], "duplicate_header", "{reply:?}");

    // HEAD /read is a read in the metrics.
    let head = request(app.addr, "HEAD", "/read/never-written", None).await;
    assert_eq!(head.status, 404);
    let metrics = app.get("/metrics").await.text;
    assert_eq!(
        sample(
            &metrics,
            r#"app_requests_total{mode="ap",operation="read",status="404"}"#
        ),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"app_requests_total{mode="ap",operation="unmatched",status="404"}"#
        ),
        0.0,
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"app_requests_total{mode="ap",operation="write",status="408"}"#
        ),
        1.0,
        "{metrics}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn over_the_rate_limit_a_client_gets_429_with_retry_after_and_probes_still_pass() {
    let pair = streaming_pair().await;
    let mut config = test_config(Mode::Ap, &pair);
    config.server.rate_limit = RateLimit {
        per_minute: 3,
        per_hour: 100,
    };
    let app = TestApp::start(config).await;
    for i in 0..3 {
        let reply = app.post(&format!("/write/r/{i}")).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let limited = app.get("/read/r").await;
    assert_eq!(limited.status, 429, "{limited:?}");
    assert_eq!(limited.json["code"], "rate_limited");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "one request every 20 s: {retry}");
    assert_eq!(
        app.get("/health").await.status,
        200,
        "probes are not limited"
    );
    let metrics = app.get("/metrics").await.text;
    assert_eq!(sample(&metrics, r#"rate_limited_total{mode="ap"}"#), 1.0);
    assert_eq!(
        sample(
            &metrics,
            r#"app_requests_total{mode="ap",operation="read",status="429"}"#
        ),
        1.0
    );
    app.shutdown().await;
}

#[tokio::test]
async fn https_with_a_generated_pair_answers_a_client_that_trusts_it() {
    use tokio_rustls::rustls::{self, pki_types::CertificateDer, pki_types::ServerName};

    let pair = streaming_pair().await;
    let dir = tempfile::tempdir().unwrap();
    let generated = caplab::app::tls::generate_self_signed(
        dir.path(),
        &["localhost".into(), "127.0.0.1".into()],
    )
    .unwrap();
    let mut config = test_config(Mode::Cp, &pair);
    config.server.tls = Some(TlsFiles {
        cert: generated.cert.clone(),
        key: generated.key.clone(),
    });
    let app = TestApp::start(config).await;

    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for cert in CertificateDer::pem_file_iter(&generated.cert).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = connect(app.addr).await;
    let name = ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method("POST")
        .uri("/write/tls/1")
        .header("host", "localhost")
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["replicated"], true, "{json}");

    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let plain = exchange(app.addr, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_ne!(status_of(&plain), 200, "{plain}");
    app.shutdown().await;
}
