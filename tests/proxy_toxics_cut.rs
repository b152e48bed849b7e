//! The toxics and controls that drop data or end connections (`timeout`, `reset_peer`,
//! `limit_data`, disable/enable) and live toxic changes that must lose no byte, on real TCP
//! traffic through the embedded proxy.

mod common;

use std::time::{Duration, Instant};

use common::proxy::{
    SLACK, TestProxy, connect, echo_server, read_to_end, round_trip, sending_server,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_drops_data_and_closes_after_the_timeout() {
    let p = TestProxy::start();
    let listen = p.create("g1", &echo_server().await).await;
    p.toxic(
        "g1",
        json!({"type": "timeout", "stream": "upstream", "attributes": {"timeout": 300}}),
    )
    .await;
    let mut sock = connect(&listen).await;
    let start = Instant::now();
    sock.write_all(b"lost").await.unwrap();
    let (got, _end) = read_to_end(&mut sock, Duration::from_secs(5)).await;
    let took = start.elapsed();
    assert!(got.is_empty(), "data must be dropped, got {got:?}");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(300) + SLACK * 2,
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_zero_holds_until_removed_then_closes() {
    let p = TestProxy::start();
    let listen = p.create("g1", &echo_server().await).await;
    let mut sock = connect(&listen).await;
    round_trip(&mut sock, b"before").await;
    p.toxic(
        "g1",
        json!({"type": "timeout", "attributes": {"timeout": 0}}),
    )
    .await;
    sock.write_all(b"into the void").await.unwrap();
    let mut buf = [0u8; 64];
    let held = tokio::time::timeout(Duration::from_millis(800), sock.read(&mut buf)).await;
    assert!(
        held.is_err(),
        "a timeout of 0 holds the connection open: {held:?}"
    );

    p.remove_toxic("g1", "timeout_downstream").await;
    let (got, _) = read_to_end(&mut sock, Duration::from_secs(3)).await;
    assert!(got.is_empty(), "{got:?}");
    // Closed: a write now fails or a read says EOF.
    let closed = tokio::time::timeout(Duration::from_secs(1), sock.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_added_to_an_idle_connection_closes_it() {
    let p = TestProxy::start();
    let listen = p.create("g1", &echo_server().await).await;
    let mut sock = connect(&listen).await;
    round_trip(&mut sock, b"hi").await;
    let start = Instant::now();
    p.toxic(
        "g1",
        json!({"type": "timeout", "attributes": {"timeout": 200}}),
    )
    .await;
    let (_, _) = read_to_end(&mut sock, Duration::from_secs(5)).await;
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_millis(200) + SLACK * 2,
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_peer_resets_after_its_timeout() {
    let p = TestProxy::start();
    let listen = p.create("g1", &echo_server().await).await;
    p.toxic(
        "g1",
        json!({"type": "reset_peer", "attributes": {"timeout": 100}}),
    )
    .await;
    let mut sock = connect(&listen).await;
    let start = Instant::now();
    sock.write_all(b"ping").await.unwrap();
    let (got, end) = read_to_end(&mut sock, Duration::from_secs(5)).await;
    let took = start.elapsed();
    assert!(got.is_empty());
    let err = end.expect_err("a reset, not a clean close");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    assert!(
        took >= Duration::from_millis(95) && took < Duration::from_millis(100) + SLACK * 2,
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_data_passes_exactly_the_limit_then_closes() {
    let p = TestProxy::start();
    let payload = vec![b'x'; 10_000];
    let listen = p.create("g1", &sending_server(payload, false).await).await;
    p.toxic(
        "g1",
        json!({"type": "limit_data", "attributes": {"bytes": 1000}}),
    )
    .await;
    let mut sock = connect(&listen).await;
    let (got, _end) = read_to_end(&mut sock, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_closes_connections_and_enable_restores_with_toxics() {
    let p = TestProxy::start();
    let listen = p.create("g1", &echo_server().await).await;
    let mut old = connect(&listen).await;
    round_trip(&mut old, b"alive").await;
    p.toxic(
        "g1",
        json!({"type": "latency", "attributes": {"latency": 200}}),
    )
    .await;

    p.set_enabled("g1", false).await;
    let (_, _) = read_to_end(&mut old, Duration::from_secs(2)).await;
    let mut buf = [0u8; 8];
    let closed = tokio::time::timeout(Duration::from_millis(500), old.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the old connection is closed: {closed:?}"
    );
    assert!(
        TcpStream::connect(&listen).await.is_err(),
        "new connections are refused"
    );

    p.set_enabled("g1", true).await;
    let mut sock = connect(&listen).await;
    let rtt = round_trip(&mut sock, b"back").await;
    assert!(
        rtt >= Duration::from_millis(195),
        "the toxic survived: {rtt:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_toxics_mid_stream_loses_no_bytes() {
    let p = TestProxy::start();
    let listen = p.create("g1", &echo_server().await).await;
    let sock = connect(&listen).await;
    let (mut r, mut w) = sock.into_split();
    const TOTAL: usize = 4 * 1024 * 1024;
    let pattern = |i: usize| (i.wrapping_mul(31) % 253) as u8;
    let writer = tokio::spawn(async move {
        let chunk: Vec<u8> = (0..TOTAL).map(pattern).collect();
        for piece in chunk.chunks(8 * 1024) {
            w.write_all(piece).await.unwrap();
            tokio::time::sleep(Duration::from_micros(300)).await;
        }
        w
    });
    let reader = tokio::spawn(async move {
        let mut got = Vec::with_capacity(TOTAL);
        let mut buf = vec![0u8; 64 * 1024];
        while got.len() < TOTAL {
            let n = tokio::time::timeout(Duration::from_secs(20), r.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "closed early after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
        }
        got
    });
    for round in 0..3 {
        p.toxic("g1", json!({"type": "latency", "stream": "upstream", "attributes": {"latency": 20, "jitter": 10}}))
            .await;
        p.toxic(
            "g1",
            json!({"type": "slicer", "attributes": {"average_size": 3000, "size_variation": 1000}}),
        )
        .await;
        p.toxic(
            "g1",
            json!({"type": "bandwidth", "attributes": {"rate": 20000}}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let a = p
            .call(
                "PATCH",
                "/proxies/g1/toxics/latency_upstream",
                Some(r#"{"attributes": {"latency": 5}}"#),
            )
            .await;
        assert_eq!(a.status, 200, "round {round}");
        p.remove_toxic("g1", "slicer_downstream").await;
        p.remove_toxic("g1", "latency_upstream").await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        p.remove_toxic("g1", "bandwidth_downstream").await;
    }
    let _w = writer.await.unwrap();
    let got = reader.await.unwrap();
    assert_eq!(got.len(), TOTAL);
    let first_bad = got.iter().enumerate().find(|(i, b)| **b != pattern(*i));
    assert!(first_bad.is_none(), "byte {first_bad:?} differs");
}
