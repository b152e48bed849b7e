//! The fault driver against the embedded server (over real sockets), against nothing, and
//! against a server that breaks mid-call: every failure is a typed error, never a panic.

mod common;

use std::time::{Duration, Instant};

use caplab::faults::{
    CLUSTER_G1, FaultDriver, FaultError, G1, G2, LAB_PROXIES, ProxySpec, ToxicSpec,
};
use caplab::proxy::{Stream, ToxicKind};
use common::proxy::{TestProxy, connect, echo_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn round_trip(addr: &str) -> Duration {
    let mut sock = connect(addr).await;
    let start = Instant::now();
    sock.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), sock.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    start.elapsed()
}

fn latency(ms: i64) -> ToxicSpec {
    ToxicSpec::new(
        ToxicKind::Latency {
            latency: ms,
            jitter: 0,
        },
        Stream::Downstream,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_changes_and_confirms_every_fault() {
    let p = TestProxy::start();
    let d = FaultDriver::new(&format!("http://{}/", p.api())).unwrap();
    assert!(
        d.wait_until_up(Duration::from_secs(5))
            .await
            .unwrap()
            .contains("caplab")
    );
    let echo = echo_server().await;

    let specs: Vec<ProxySpec> = LAB_PROXIES
        .iter()
        .map(|n| ProxySpec::new(n, "127.0.0.1:0", &echo))
        .collect();
    let made = d.ensure_lab_proxies(&specs).await.unwrap();
    assert_eq!(made.len(), 5);
    assert!(made.iter().all(|p| p.enabled && p.upstream == echo));
    let g1 = made[0].listen.clone();
    let again = d
        .ensure_proxies(&[ProxySpec::new(G1, &g1, &echo)])
        .await
        .unwrap();
    assert_eq!(again[0].listen, g1, "a matching proxy is kept");
    assert!(matches!(
        d.ensure_lab_proxies(&specs[..2]).await,
        Err(FaultError::InvalidSpec { .. })
    ));

    // Down and up.
    let down = d.set_enabled(G1, false).await.unwrap();
    assert!(!down.enabled);
    assert!(TcpStream::connect(&g1).await.is_err());
    assert!(d.set_enabled(G1, true).await.unwrap().enabled);

    // Add, update, set (both paths), remove.
    let t = d.add_toxic(G1, latency(200)).await.unwrap();
    assert_eq!(t.name, "latency_downstream");
    assert!(round_trip(&g1).await >= Duration::from_millis(195));
    d.update_toxic(G1, latency(20).with_toxicity(1.0))
        .await
        .unwrap();
    let rtt = round_trip(&g1).await;
    assert!(
        rtt >= Duration::from_millis(18) && rtt < Duration::from_millis(195),
        "{rtt:?}"
    );
    d.set_toxic(G1, latency(30)).await.unwrap();
    let cut = ToxicSpec::new(ToxicKind::Timeout { timeout: 0 }, Stream::Upstream);
    d.set_toxic(G2, cut).await.unwrap();
    // reset_peer and noop go over plain HTTP (toxiproxy_rust has no helper for them).
    let rst = ToxicSpec::new(ToxicKind::ResetPeer { timeout: 50 }, Stream::Upstream);
    assert_eq!(
        d.add_toxic(CLUSTER_G1, rst).await.unwrap().kind,
        "reset_peer"
    );
    let noop = ToxicSpec::new(ToxicKind::Noop, Stream::Downstream).with_toxicity(0.5);
    assert_eq!(d.add_toxic(CLUSTER_G1, noop).await.unwrap().toxicity, 0.5);
    let limit = ToxicSpec::new(ToxicKind::LimitData { bytes: 10 }, Stream::Downstream);
    d.add_toxic(G2, limit).await.unwrap();
    let slicer = ToxicSpec::new(
        ToxicKind::Slicer {
            average_size: 10,
            size_variation: 2,
            delay: 5,
        },
        Stream::Upstream,
    );
    d.add_toxic(G1, slicer).await.unwrap();

    // The client ignores a 409; the read-back does not.
    let err = d.add_toxic(G1, latency(999)).await.unwrap_err();
    assert!(matches!(err, FaultError::UnexpectedState { .. }), "{err}");
    assert!(!err.is_definite());

    d.remove_toxic(G1, "latency_downstream").await.unwrap();
    d.remove_toxic(G1, "latency_downstream").await.unwrap();
    assert!(round_trip(&g1).await < Duration::from_millis(195));

    // Unknown proxies and bad specs are definite errors.
    for err in [
        d.proxy("nope").await.unwrap_err(),
        d.set_enabled("nope", false).await.unwrap_err(),
        d.add_toxic("nope", latency(1)).await.unwrap_err(),
    ] {
        assert!(
            matches!(&err, FaultError::ProxyNotFound { proxy, .. } if proxy == "nope"),
            "{err}"
        );
        assert!(err.is_definite());
    }
    let negative = ToxicSpec::new(ToxicKind::Timeout { timeout: -1 }, Stream::Upstream);
    assert!(matches!(
        d.add_toxic(G1, negative).await,
        Err(FaultError::InvalidSpec { .. })
    ));

    d.reset().await.unwrap();
    let all = d.proxies().await.unwrap();
    assert_eq!(all.len(), LAB_PROXIES.len());
    assert!(all.values().all(|p| p.enabled && p.toxics.is_empty()));

    d.delete_proxy(G2).await.unwrap();
    assert!(!d.proxies().await.unwrap().contains_key(G2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_clear_error() {
    let port = caplab::lab::ports::free_port().unwrap();
    let api = format!("127.0.0.1:{port}");
    let d = FaultDriver::new(&api).unwrap();
    for err in [
        d.version().await.unwrap_err(),
        d.reset().await.unwrap_err(),
        d.add_toxic(G1, latency(10)).await.unwrap_err(),
        d.set_enabled(G1, false).await.unwrap_err(),
    ] {
        assert!(matches!(err, FaultError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains(&api), "{err}");
        assert!(err.is_definite());
    }
    let waited = Instant::now();
    let err = d
        .wait_until_up(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, FaultError::Unreachable { .. }));
    assert!(waited.elapsed() >= Duration::from_millis(300));
    assert!(matches!(
        FaultDriver::new("no-port-here"),
        Err(FaultError::InvalidAddress { .. })
    ));
    let unresolvable = FaultDriver::new("no-such-host.invalid:8474").unwrap();
    assert!(matches!(
        unresolvable.reset().await,
        Err(FaultError::Unreachable { .. })
    ));
}

/// A fake API that shows proxy `g1` and then hangs up on the toxic creation, so
/// `toxiproxy_rust` panics inside the driver.
async fn flaky_api() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                if request.starts_with("GET /proxies/g1 ") {
                    let body = r#"{"name":"g1","listen":"127.0.0.1:1","upstream":"127.0.0.1:2","enabled":true,"toxics":[]}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(answer.as_bytes()).await;
                }
                // Anything else: hang up without an answer.
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_client_becomes_an_error() {
    let api = flaky_api().await;
    let d = FaultDriver::new(&api).unwrap();
    let err = d.add_toxic(G1, latency(10)).await.unwrap_err();
    assert!(matches!(err, FaultError::Panicked { .. }), "{err}");
    assert!(!err.is_definite());
    // The runtime is fine afterwards.
    let err = d.reset().await.unwrap_err();
    assert!(
        matches!(
            err,
            FaultError::Client { .. } | FaultError::UnexpectedState { .. }
        ),
        "{err}"
    );
}
