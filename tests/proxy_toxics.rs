//! Each toxic of the embedded proxy measured on real TCP traffic, through real sockets, with
//! tolerances that hold on a loaded two-core machine (delays are checked from below tightly,
//! from above loosely).

mod common;

use std::time::{Duration, Instant};

use common::proxy::{TestProxy, connect, echo_server, read_to_end, sending_server};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous upper slack for a loaded machine.
const SLACK: Duration = Duration::from_millis(400);

/// Writes `msg`, reads the same number of bytes back; returns the round-trip time.
async fn round_trip(sock: &mut TcpStream, msg: &[u8]) -> Duration {
    let start = Instant::now();
    sock.write_all(msg).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(10), sock.read_exact(&mut back))
        .await
        .expect("echo within 10 s")
        .expect("echo");
    assert_eq!(back, msg);
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_does_not_stack_per_chunk() {
    let p = TestProxy::start();
    let listen = p.create("g1", &echo_server().await).await;
    p.toxic(
        "g1",
        json!({"type": "latency", "attributes": {"latency": 200}}),
    )
    .await;
    let mut sock = connect(&listen).await;
    let (mut r, mut w) = sock.split();
    let writer = async {
        let mut sent = vec![];
        for i in 0..5u8 {
            sent.push(Instant::now());
            w.write_all(&[b'0' + i]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sent
    };
    let reader = async {
        let mut got = vec![];
        let mut buf = [0u8; 16];
        while got.len() < 5 {
            let n = r.read(&mut buf).await.unwrap();
            assert!(n > 0);
            for _ in 0..n {
                got.push(Instant::now());
            }
        }
        got
    };
    let (sent, got) = tokio::join!(writer, reader);
    for (i, (s, g)) in sent.iter().zip(&got).enumerate() {
        let delay = *g - *s;
        assert!(
            delay >= Duration::from_millis(195),
            "byte {i} arrived after {delay:?}"
        );
        assert!(
            delay < Duration::from_millis(200) + SLACK,
            "byte {i} after {delay:?}"
        );
    }
    // Stacked, the last would come ~1 s after the first write; not stacked, ~280 ms.
    let last = got[4] - sent[0];
    assert!(
        last < Duration::from_millis(700),
        "last byte after {last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_independent_and_jitter_stays_in_range() {
    let p = TestProxy::start();
    let listen = p.create("g1", &echo_server().await).await;
    let mut sock = connect(&listen).await;
    assert!(round_trip(&mut sock, b"warm").await < Duration::from_millis(200));

    // Picked up live by an open connection: upstream only, then both ways.
    p.toxic(
        "g1",
        json!({"type": "latency", "stream": "upstream", "attributes": {"latency": 300}}),
    )
    .await;
    let rtt = round_trip(&mut sock, b"up").await;
    assert!(
        rtt >= Duration::from_millis(295) && rtt < Duration::from_millis(300) + SLACK,
        "{rtt:?}"
    );
    p.toxic(
        "g1",
        json!({"type": "latency", "attributes": {"latency": 100, "jitter": 50}}),
    )
    .await;
    for _ in 0..5 {
        let rtt = round_trip(&mut sock, b"both").await;
        assert!(rtt >= Duration::from_millis(345), "{rtt:?}");
        assert!(rtt < Duration::from_millis(450) + SLACK, "{rtt:?}");
    }
    p.remove_toxic("g1", "latency_upstream").await;
    p.remove_toxic("g1", "latency_downstream").await;
    let rtt = round_trip(&mut sock, b"clear").await;
    assert!(rtt < Duration::from_millis(200), "{rtt:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_limits_the_rate() {
    let p = TestProxy::start();
    let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let upstream = sending_server(payload.clone(), true).await;
    let fast = p.create("fast", &upstream).await;
    let slow = p.create("slow", &upstream).await;
    let unlimited = p.create("unlimited", &upstream).await;
    p.toxic(
        "slow",
        json!({"type": "bandwidth", "attributes": {"rate": 100}}),
    )
    .await;
    p.toxic(
        "unlimited",
        json!({"type": "bandwidth", "attributes": {"rate": 0}}),
    )
    .await;

    for (listen, at_least, at_most) in [
        (&fast, Duration::ZERO, Duration::from_millis(600)),
        (&unlimited, Duration::ZERO, Duration::from_millis(600)),
        // 100 000 bytes at 100 KB/s: one second.
        (
            &slow,
            Duration::from_millis(950),
            Duration::from_secs(1) + SLACK * 3,
        ),
    ] {
        let start = Instant::now();
        let mut sock = connect(listen).await;
        let (got, end) = read_to_end(&mut sock, Duration::from_secs(10)).await;
        let took = start.elapsed();
        end.unwrap();
        assert_eq!(got, payload, "{listen}: every byte, in order");
        assert!(took >= at_least && took <= at_most, "{listen}: {took:?}");
    }

    // Absurd rates neither panic nor stop traffic.
    for rate in [i64::MAX, -5] {
        let body = json!({"attributes": {"rate": rate}}).to_string();
        let a = p
            .call(
                "PATCH",
                "/proxies/unlimited/toxics/bandwidth_downstream",
                Some(&body),
            )
            .await;
        assert_eq!(a.status, 200);
        let mut sock = connect(&unlimited).await;
        let (got, end) = read_to_end(&mut sock, Duration::from_secs(10)).await;
        end.unwrap();
        assert_eq!(got.len(), payload.len(), "rate {rate}");
    }
}

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
async fn slicer_delivers_every_byte_in_slices() {
    let p = TestProxy::start();
    let payload: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let listen = p
        .create("g1", &sending_server(payload.clone(), true).await)
        .await;
    // 1000 bytes cut around 100 bytes (16 slices of ~62), 20 ms apart: ~300 ms.
    p.toxic(
        "g1",
        json!({"type": "slicer", "attributes": {"average_size": 100, "size_variation": 0, "delay": 20000}}),
    )
    .await;
    let start = Instant::now();
    let mut sock = connect(&listen).await;
    let mut got = vec![];
    let mut reads = 0;
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        reads += 1;
        assert!(n <= 1000);
        got.extend_from_slice(&buf[..n]);
    }
    let took = start.elapsed();
    assert_eq!(got, payload);
    assert!(reads >= 4, "only {reads} reads: not sliced");
    assert!(took >= Duration::from_millis(250), "{took:?}");
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
async fn slow_close_delays_only_the_close() {
    let p = TestProxy::start();
    let listen = p
        .create("g1", &sending_server(b"bye".to_vec(), true).await)
        .await;
    let start = Instant::now();
    let mut plain = connect(&listen).await;
    let (got, end) = read_to_end(&mut plain, Duration::from_secs(5)).await;
    end.unwrap();
    assert_eq!(got, b"bye");
    assert!(start.elapsed() < Duration::from_millis(300));

    p.toxic(
        "g1",
        json!({"type": "slow_close", "attributes": {"delay": 500}}),
    )
    .await;
    let start = Instant::now();
    let mut sock = connect(&listen).await;
    let mut buf = [0u8; 3];
    sock.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"bye");
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "data is not delayed"
    );
    let (_, end) = read_to_end(&mut sock, Duration::from_secs(5)).await;
    end.unwrap();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(490) && took < Duration::from_millis(500) + SLACK,
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noop_passes_and_toxicity_is_decided_per_connection() {
    let p = TestProxy::start();
    let listen = p.create("g1", &echo_server().await).await;
    p.toxic("g1", json!({"type": "noop"})).await;
    let mut sock = connect(&listen).await;
    assert!(round_trip(&mut sock, b"noop").await < Duration::from_millis(200));

    p.toxic(
        "g1",
        json!({"type": "latency", "toxicity": 0.0, "attributes": {"latency": 300}}),
    )
    .await;
    let mut sock = connect(&listen).await;
    assert!(round_trip(&mut sock, b"never").await < Duration::from_millis(250));

    let body = json!({"toxicity": 0.5}).to_string();
    let a = p
        .call(
            "PATCH",
            "/proxies/g1/toxics/latency_downstream",
            Some(&body),
        )
        .await;
    assert_eq!(a.status, 200);
    let (mut fast, mut slow) = (0, 0);
    for _ in 0..16 {
        let mut sock = connect(&listen).await;
        let first = round_trip(&mut sock, b"a").await;
        let second = round_trip(&mut sock, b"b").await;
        // The same connection keeps its draw.
        let slow_conn = first >= Duration::from_millis(295);
        assert_eq!(
            slow_conn,
            second >= Duration::from_millis(295),
            "{first:?} {second:?}"
        );
        if slow_conn { slow += 1 } else { fast += 1 }
    }
    assert!(fast > 0 && slow > 0, "fast {fast}, slow {slow}");
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
