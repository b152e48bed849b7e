//! The proxy's `/metrics` over real sockets: bytes of a real Redis connection counted with
//! Toxiproxy's names and labels, received and sent apart, a disabled proxy's counters still,
//! the text accepted by `promtool check metrics`, and every proxy name the dashboards read
//! (prometheus/metric-names.txt, source `toxiproxy`) served.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use caplab::proxy::ProxyOptions;
use caplab::proxy::metrics::MetricsOptions;
use common::proxy::TestProxy;
use common::redis::start_primary;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `name{labels}` to value, from a text exposition.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(p: &TestProxy) -> BTreeMap<String, f64> {
    let a = p.call("GET", "/metrics", None).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.content_type.starts_with("text/plain"), "{a:?}");
    samples(&a.text)
}

/// The four counters of `proxy`: (upstream received, upstream sent, downstream received,
/// downstream sent), with Toxiproxy's exact label set.
fn bytes(m: &BTreeMap<String, f64>, proxy: &str, listen: &str, upstream: &str) -> [f64; 4] {
    let get = |metric: &str, direction: &str| {
        let series = format!(
            "toxiproxy_proxy_{metric}_bytes_total{{direction=\"{direction}\",listener=\"{listen}\",proxy=\"{proxy}\",upstream=\"{upstream}\"}}"
        );
        *m.get(&series)
            .unwrap_or_else(|| panic!("no {series} in {m:#?}"))
    };
    [
        get("received", "upstream"),
        get("sent", "upstream"),
        get("received", "downstream"),
        get("sent", "downstream"),
    ]
}

/// Sends one RESP command and reads the whole answer of `answer_len` bytes.
async fn command(sock: &mut TcpStream, cmd: &[u8], answer_len: usize) -> Vec<u8> {
    sock.write_all(cmd).await.unwrap();
    let mut answer = vec![0u8; answer_len];
    tokio::time::timeout(Duration::from_secs(5), sock.read_exact(&mut answer))
        .await
        .expect("answer within 5 s")
        .unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_bytes_are_counted_per_direction_with_toxiproxys_labels() {
    let dir = tempfile::tempdir().unwrap();
    let redis = start_primary(dir.path()).await;
    let upstream = format!("127.0.0.1:{}", redis.port());
    let p = TestProxy::start();
    let listen = p.create("g1", &upstream).await;

    // Series exist at zero as soon as the proxy listens.
    assert_eq!(bytes(&scrape(&p).await, "g1", &listen, &upstream), [0.0; 4]);

    let ping = b"*1\r\n$4\r\nPING\r\n"; // 14 bytes; the answer +PONG\r\n is 7
    let mut sock = TcpStream::connect(&listen).await.unwrap();
    for _ in 0..10 {
        assert_eq!(command(&mut sock, ping, 7).await, b"+PONG\r\n");
    }
    let counted = bytes(&scrape(&p).await, "g1", &listen, &upstream);
    assert_eq!(counted, [140.0, 140.0, 70.0, 70.0]);

    // Received and sent are apart: a timeout toxic swallows what the client sends.
    p.toxic(
        "g1",
        json!({"type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}}),
    )
    .await;
    sock.write_all(ping).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let swallowed = loop {
        let now = bytes(&scrape(&p).await, "g1", &listen, &upstream);
        if now[0] == 154.0 || tokio::time::Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(swallowed, [154.0, 140.0, 70.0, 70.0]);
    p.remove_toxic("g1", "timeout_upstream").await;

    // Disabled: the connection is cut, new ones refused, and the counters stand still.
    p.set_enabled("g1", false).await;
    let before = bytes(&scrape(&p).await, "g1", &listen, &upstream);
    let _ = sock.write_all(ping).await;
    assert!(TcpStream::connect(&listen).await.is_err());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(bytes(&scrape(&p).await, "g1", &listen, &upstream), before);

    // Enabled again on the same address: the same series go on counting.
    p.set_enabled("g1", true).await;
    let mut again = TcpStream::connect(&listen).await.unwrap();
    command(&mut again, ping, 7).await;
    let after = bytes(&scrape(&p).await, "g1", &listen, &upstream);
    assert_eq!(after[0] - before[0], 14.0);
    assert_eq!(after[3] - before[3], 7.0);
}

/// `promtool check metrics` on `text`: (passed, what it said).
fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus; ./test.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_pass_promtool_and_serve_every_listed_proxy_name() {
    let p = TestProxy::start_with(ProxyOptions {
        metrics: MetricsOptions {
            proxy: true,
            runtime: true,
        },
        ..ProxyOptions::default()
    });
    p.create("g1", &common::proxy::echo_server().await).await;
    let text = p.call("GET", "/metrics", None).await.text;
    let (ok, said) = promtool_check(&text);
    assert!(ok, "promtool check metrics failed: {said}\n{text}");
    assert!(text.contains("process_resident_memory_bytes"), "{text}");

    let list = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prometheus/metric-names.txt"),
    )
    .unwrap();
    let proxy_names: Vec<&str> = list
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [name, "toxiproxy"] => Some(name),
            _ => None,
        })
        .collect();
    assert!(proxy_names.len() >= 2, "{proxy_names:?}");
    for name in proxy_names {
        assert!(
            text.contains(&format!("\n{name}{{")),
            "{name} not served:\n{text}"
        );
    }

    // Byte counters off: no toxiproxy_ series; both off: no /metrics at all.
    let runtime_only = TestProxy::start_with(ProxyOptions {
        metrics: MetricsOptions {
            proxy: false,
            runtime: true,
        },
        ..ProxyOptions::default()
    });
    runtime_only
        .create("g1", &common::proxy::echo_server().await)
        .await;
    let text = runtime_only.call("GET", "/metrics", None).await.text;
    assert!(!text.contains("toxiproxy_"), "{text}");
    let none = TestProxy::start_with(ProxyOptions {
        metrics: MetricsOptions {
            proxy: false,
            runtime: false,
        },
        ..ProxyOptions::default()
    });
    assert_eq!(none.call("GET", "/metrics", None).await.status, 404);
}
