//! The embedded Toxiproxy-compatible server for tests, plus small TCP peers to measure toxics.
//!
//! [`TestProxy`] runs `caplab::proxy::ProxyServer` on its own thread and runtime, on a free
//! port, as a separate process would: timing measured by a test is not skewed by the test's
//! own runtime. It stops (listeners and connections closed) when dropped.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use caplab::config::Config;
use caplab::proxy::{ProxyOptions, ProxyServer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::redis::RedisPair;

/// An embedded proxy server on a free port.
pub struct TestProxy {
    api: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    http: reqwest::Client,
}

/// An HTTP answer: status, JSON body (`Value::Null` when empty or not JSON), raw text and
/// headers.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub content_type: String,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl TestProxy {
    /// Starts a server on 127.0.0.1 port 0 with the default options.
    pub fn start() -> TestProxy {
        TestProxy::start_with(ProxyOptions::default())
    }

    /// Starts a server on 127.0.0.1 port 0 with `options`.
    pub fn start_with(options: ProxyOptions) -> TestProxy {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let server = ProxyServer::start_with("127.0.0.1:0".parse().unwrap(), options)
                    .await
                    .expect("start the embedded proxy");
                addr_tx.send(server.api_addr()).unwrap();
                let _ = stopped.await;
                server.shutdown().await;
            });
        });
        let api = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the proxy reports its API address");
        TestProxy {
            api,
            stop: Some(stop),
            thread: Some(thread),
            http: reqwest::Client::new(),
        }
    }

    /// `host:port` of the API.
    pub fn api(&self) -> String {
        self.api.to_string()
    }

    /// A raw request: method, path, optional body sent without a content type.
    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("http://{}{path}", self.api));
        if let Some(body) = body {
            req = req.body(body.to_string());
        }
        let resp = req.send().await.expect("API answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = resp.text().await.unwrap();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            content_type,
            text,
            headers,
        }
    }

    /// Creates proxy `name` on a free port in front of `upstream`; returns its listen address.
    pub async fn create(&self, name: &str, upstream: &str) -> String {
        let body = json!({"name": name, "listen": "127.0.0.1:0", "upstream": upstream});
        let a = self.call("POST", "/proxies", Some(&body.to_string())).await;
        assert_eq!(a.status, 201, "{a:?}");
        a.body["listen"].as_str().unwrap().to_string()
    }

    /// Adds a toxic (a JSON body) to `proxy`; asserts it was created.
    pub async fn toxic(&self, proxy: &str, toxic: Value) -> Value {
        let a = self
            .call(
                "POST",
                &format!("/proxies/{proxy}/toxics"),
                Some(&toxic.to_string()),
            )
            .await;
        assert_eq!(a.status, 200, "{a:?}");
        a.body
    }

    /// Removes a toxic.
    pub async fn remove_toxic(&self, proxy: &str, toxic: &str) {
        let a = self
            .call("DELETE", &format!("/proxies/{proxy}/toxics/{toxic}"), None)
            .await;
        assert_eq!(a.status, 204, "{a:?}");
    }

    /// Enables or disables a proxy.
    pub async fn set_enabled(&self, proxy: &str, enabled: bool) {
        let body = json!({ "enabled": enabled }).to_string();
        let a = self
            .call("PATCH", &format!("/proxies/{proxy}"), Some(&body))
            .await;
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.body["enabled"], enabled);
    }

    /// Proxies `g1` and `g2` in front of `pair`'s nodes, as the apps of the lab reach them.
    pub async fn front_nodes(&self, pair: &RedisPair) -> NodeRoutes {
        NodeRoutes {
            g1: self
                .create("g1", &format!("127.0.0.1:{}", pair.g1.port()))
                .await,
            g2: self
                .create("g2", &format!("127.0.0.1:{}", pair.g2.port()))
                .await,
        }
    }

    /// g1 and g2, g2 replicating from g1 through a proxy named `cluster_g1` of this server
    /// (and a `cluster_g2` in front of g2, so the lab's cluster proxies exist by name; no
    /// sentinels watch this pair); waits until the replication link is up.
    pub async fn replication_pair(&self) -> RedisPair {
        let listen_port = caplab::lab::ports::free_port().expect("free port");
        let mut g1_port = 0;
        let pair = RedisPair::start_via(|port| {
            g1_port = port;
            listen_port
        })
        .await;
        let body = json!({
            "name": "cluster_g1",
            "listen": format!("127.0.0.1:{listen_port}"),
            "upstream": format!("127.0.0.1:{g1_port}"),
        });
        let a = self.call("POST", "/proxies", Some(&body.to_string())).await;
        assert_eq!(a.status, 201, "{a:?}");
        self.create("cluster_g2", &format!("127.0.0.1:{}", pair.g2.port()))
            .await;
        pair.g2
            .wait_link_up(Duration::from_secs(15))
            .await
            .expect("g2 replicates through the proxy");
        pair
    }
}

/// The listen addresses of the `g1` and `g2` proxies of [`TestProxy::front_nodes`].
pub struct NodeRoutes {
    pub g1: String,
    pub g2: String,
}

impl NodeRoutes {
    /// Points an app's Redis URLs through the proxies.
    pub fn apply(&self, config: &mut Config) {
        config.g1_url = format!("redis://{}", self.g1);
        config.g2_url = format!("redis://{}", self.g2);
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A TCP echo server on a free port; returns its address.
pub async fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = sock.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A TCP server that sends `payload` to each client on accept, then closes (when `close`).
pub async fn sending_server(payload: Vec<u8>, close: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let payload = payload.clone();
            tokio::spawn(async move {
                let _ = sock.write_all(&payload).await;
                if close {
                    let _ = sock.shutdown().await;
                } else {
                    let mut sink = vec![0u8; 1024];
                    while let Ok(n) = sock.read(&mut sink).await {
                        if n == 0 {
                            break;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Connects to `addr`.
pub async fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr)
        .await
        .expect("connect through the proxy");
    s.set_nodelay(true).unwrap();
    s
}

/// Reads until EOF or error, with a deadline; returns the bytes and how it ended.
pub async fn read_to_end(sock: &mut TcpStream, within: Duration) -> (Vec<u8>, std::io::Result<()>) {
    let mut out = Vec::new();
    let result = tokio::time::timeout(within, async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match sock.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    match result {
        Ok(r) => (out, r),
        Err(_) => (out, Err(std::io::ErrorKind::TimedOut.into())),
    }
}

/// Generous upper slack for a loaded machine.
pub const SLACK: Duration = Duration::from_millis(400);

/// Writes `msg`, reads the same number of bytes back; returns the round-trip time.
pub async fn round_trip(sock: &mut TcpStream, msg: &[u8]) -> Duration {
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
