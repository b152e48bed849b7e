//! Random bytes and random HTTP requests thrown at an app over TCP for a few seconds: no
//! panic anywhere in the process, no connection or file descriptor left behind, and the app
//! still serves afterwards.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use caplab::config::Mode;
use common::app::{TestApp, streaming_pair, test_config};
use common::raw::{open_fds, read_until_closed, sample};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::AsyncWriteExt;

/// How long the fuzzing runs, and how many clients at once.
const FUZZ_FOR: Duration = Duration::from_secs(4);
const CLIENTS: usize = 16;

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "G\0T",
];
const PATHS: &[&str] = &[
    "/read/",
    "/write/",
    "/kv/",
    "/health",
    "/ready",
    "/metrics",
    "/circuit-breaker",
    "/replication",
    "/",
    "*",
    "//",
    "/read/%FF",
    "/write/k/%00",
    "/kv/%2e%2e",
];
const HEADERS: &[&str] = &[
    "Content-Length",
    "Transfer-Encoding",
    "X-Session-Token",
    "Expect",
    "Connection",
    "Host",
    "Content-Type",
];

fn random_text(rng: &mut StdRng, max: usize) -> String {
    let len = rng.random_range(0..=max);
    (0..len)
        .map(|_| match rng.random_range(0..10) {
            0 => char::from(rng.random_range(0u8..32)),
            1 => '%',
            2 => '/',
            3 => 'é',
            _ => char::from(rng.random_range(b'a'..=b'z')),
        })
        .collect()
}

/// One random request: mostly HTTP-shaped, with random parts, lengths that lie, bodies that
/// stop short; or plain random bytes.
fn random_request(rng: &mut StdRng) -> Vec<u8> {
    if rng.random_bool(0.15) {
        let len = rng.random_range(0..2048);
        return (0..len).map(|_| rng.random()).collect();
    }
    let method = METHODS[rng.random_range(0..METHODS.len())];
    let path = format!(
        "{}{}{}",
        PATHS[rng.random_range(0..PATHS.len())],
        random_text(rng, 40),
        if rng.random_bool(0.3) {
            format!("/{}", random_text(rng, 40))
        } else {
            String::new()
        }
    );
    let version = ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 x", ""][rng.random_range(0..5)];
    let mut text = format!("{method} {path} {version}\r\nHost: fuzz\r\n");
    for _ in 0..rng.random_range(0..4) {
        let name = HEADERS[rng.random_range(0..HEADERS.len())];
        let value = match name {
            "Content-Length" => rng.random_range(-5i64..100_000).to_string(),
            "Transfer-Encoding" => {
                ["chunked", "gzip, chunked", "identity", "x"][rng.random_range(0..4)].to_string()
            }
            "Expect" => "100-continue".to_string(),
            "Connection" => ["close", "keep-alive", "upgrade"][rng.random_range(0..3)].to_string(),
            _ => random_text(rng, 100),
        };
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    let body_len = rng.random_range(0..300);
    bytes.extend((0..body_len).map(|_| rng.random_range(b' '..=b'~')));
    if rng.random_bool(0.2) {
        // Stop anywhere, mid-line included.
        let cut = rng.random_range(0..=bytes.len());
        bytes.truncate(cut);
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_and_requests_leave_no_panic_and_no_open_connection() {
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));

    let pair = streaming_pair().await;
    let mut config = test_config(Mode::Ap, &pair);
    config.server.header_read_timeout = Duration::from_millis(500);
    config.server.idle_timeout = Duration::from_millis(500);
    config.server.body_timeout = Duration::from_millis(500);
    config.server.max_connections = 64;
    let app = TestApp::start(config).await;
    assert_eq!(app.get("/health").await.status, 200);
    let fds_before = open_fds();

    let seed: u64 = rand::random();
    let started = Instant::now();
    let sent = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let addr = app.addr;
        let sent = sent.clone();
        clients.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed ^ client as u64);
            while started.elapsed() < FUZZ_FOR {
                let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
                    continue;
                };
                for _ in 0..rng.random_range(1..4) {
                    let request = random_request(&mut rng);
                    if stream.write_all(&request).await.is_err() {
                        break;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                if rng.random_bool(0.5) {
                    // Read what comes, or walk away at once.
                    let wait = Duration::from_millis(rng.random_range(0..300));
                    let _ = read_until_closed(&mut stream, wait).await;
                }
            }
        }));
    }
    for client in clients {
        client.await.expect("client task");
    }
    let sent = sent.load(Ordering::Relaxed);
    assert!(sent > 200, "only {sent} requests were sent (seed {seed})");

    // Every connection the fuzzing opened is closed within the timeouts.
    let deadline = Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let metrics = app.get("/metrics").await.text;
        let open = sample(
            &metrics,
            r#"http_connections_open{mode="ap",slot="regular"}"#,
        ) + sample(
            &metrics,
            r#"http_connections_open{mode="ap",slot="reserved"}"#,
        );
        if open <= 1.0 || Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        sample(
            &metrics,
            r#"http_connections_open{mode="ap",slot="regular"}"#
        ),
        1.0,
        "only the scrape itself is open (seed {seed}): {metrics}"
    );
    let fds_after = open_fds();
    assert!(
        fds_after <= fds_before + 2,
        "file descriptors: {fds_before} before, {fds_after} after (seed {seed})"
    );
    assert_eq!(panics.load(Ordering::SeqCst), 0, "a panic (seed {seed})");
    // Still serving.
    assert_eq!(app.post("/write/after-fuzz/1").await.status, 200);
    assert_eq!(app.get("/read/after-fuzz").await.json["value"], "1");
    app.shutdown().await;
}
