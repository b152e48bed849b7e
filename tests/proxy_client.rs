//! The `toxiproxy_rust` client (the one the runner uses) driving the embedded server: every
//! call it makes is understood and answered in the shape it parses.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::proxy::TestProxy;
use toxiproxy_rust::client::Client;
use toxiproxy_rust::proxy::ProxyPack;

/// A blocking echo server on its own thread.
fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut sock in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = sock.read(&mut buf) {
                    if n == 0 || sock.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn round_trip(addr: &str) -> Duration {
    let mut sock = TcpStream::connect(addr).expect("connect through the proxy");
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    sock.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    sock.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");
    start.elapsed()
}

#[test]
fn toxiproxy_rust_drives_the_embedded_server() {
    let server = TestProxy::start();
    let client = Client::new(server.api());
    assert!(client.is_running());
    assert!(client.version().unwrap().contains("caplab"));

    let upstream = echo_server();
    let made = client
        .populate(vec![ProxyPack::new(
            "g1".into(),
            "127.0.0.1:0".into(),
            upstream.clone(),
        )])
        .expect("populate");
    assert_eq!(made.len(), 1);
    let listen = made[0].proxy_pack.listen.clone();
    assert!(!listen.ends_with(":0"), "{listen}");
    assert!(client.all().unwrap().contains_key("g1"));
    assert!(round_trip(&listen) < Duration::from_millis(200));

    let proxy = client.find_proxy("g1").expect("find_proxy");
    assert_eq!(proxy.proxy_pack.upstream, upstream);
    proxy.with_latency("downstream".into(), 200, 0, 1.0);
    let rtt = round_trip(&listen);
    assert!(rtt >= Duration::from_millis(195), "{rtt:?}");
    let toxics = proxy.toxics().unwrap();
    assert_eq!(toxics.len(), 1);
    assert_eq!(toxics[0].name, "latency_downstream");
    assert_eq!(toxics[0].attributes["latency"], 200);

    proxy
        .with_bandwidth("upstream".into(), 1000, 1.0)
        .with_slow_close("upstream".into(), 10, 1.0)
        .with_slicer("upstream".into(), 100, 10, 0, 1.0)
        .with_limit_data("upstream".into(), 1_000_000, 1.0)
        .with_timeout("downstream".into(), 0, 0.0);
    let mut names: Vec<String> = proxy
        .toxics()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bandwidth_upstream",
            "latency_downstream",
            "limit_data_upstream",
            "slicer_upstream",
            "slow_close_upstream",
            "timeout_downstream"
        ]
    );

    proxy
        .apply(|| {})
        .expect("apply removes the toxics after the closure");
    assert!(proxy.toxics().unwrap().is_empty());

    proxy
        .with_down(|| assert!(TcpStream::connect(&listen).is_err(), "down while inside"))
        .expect("with_down");
    assert!(round_trip(&listen) < Duration::from_millis(200));

    proxy.disable().unwrap();
    assert!(!client.find_proxy("g1").unwrap().proxy_pack.enabled);
    client.reset().unwrap();
    assert!(client.find_proxy("g1").unwrap().proxy_pack.enabled);
    proxy.with_latency("downstream".into(), 50, 0, 1.0);
    let fresh = client.find_and_reset_proxy("g1").unwrap();
    assert!(fresh.toxics().unwrap().is_empty());

    assert!(client.find_proxy("nope").is_err());
    fresh.delete().unwrap();
    assert!(!client.all().unwrap().contains_key("g1"));
    assert!(TcpStream::connect(&listen).is_err());
}
