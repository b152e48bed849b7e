//! The toxics that shape timing (`latency`, `bandwidth`, `slicer`, `slow_close`, `noop`,
//! toxicity), measured on real TCP traffic through the embedded proxy, with tolerances that
//! hold on a loaded two-core machine (delays are checked tightly from below, loosely from
//! above).

mod common;

use std::time::{Duration, Instant};

use common::proxy::{
    SLACK, TestProxy, connect, echo_server, read_to_end, round_trip, sending_server,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
async fn slicer_keeps_its_delay_per_slice_without_timer_overhead() {
    let p = TestProxy::start();
    let payload: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    let listen = p
        .create("g1", &sending_server(payload.clone(), true).await)
        .await;
    // 2,000 bytes halved down to 10 or less: 256 slices of 7 or 8 bytes, 2 ms apart, and the
    // close 2 ms after the last: 512 ms of delays. Counting each delay from the wake-up of a
    // 1 ms timer made it 3 ms a slice (768 ms or more).
    p.toxic(
        "g1",
        json!({"type": "slicer", "attributes": {"average_size": 10, "size_variation": 0, "delay": 2000}}),
    )
    .await;
    let start = Instant::now();
    let mut sock = connect(&listen).await;
    let (got, end) = read_to_end(&mut sock, Duration::from_secs(10)).await;
    let took = start.elapsed();
    end.unwrap();
    assert_eq!(got, payload);
    eprintln!("slicer: 2,000 bytes in {took:?}");
    assert!(took >= Duration::from_millis(510), "{took:?}");
    // The band: 140 ms above the delays, for a loaded machine; below the old 768 ms.
    assert!(took < Duration::from_millis(650), "{took:?}");
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
