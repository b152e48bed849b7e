//! A caplab personality started in-process on port 0 over a [`RedisPair`], with short test
//! timeouts, and a minimal HTTP client to talk to it. Stop it with [`TestApp::shutdown`]; a
//! dropped app aborts its server with the test's runtime.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use caplab::app::{RunningApp, ShutdownReport};
use caplab::config::{Config, Mode};
use caplab::node::BreakerSettings;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use super::redis::RedisPair;

/// Short timeouts so faults show within a test: 300 ms network timeout, WAIT 100 ms,
/// heartbeat 50 ms, breaker threshold 3 and open 300 ms, staleness bound 500 ms.
pub fn test_config(mode: Mode, pair: &RedisPair) -> Config {
    let mut config = Config::new(mode, &pair.g1.url(), &pair.g2.url());
    config.port = 0;
    config.network_timeout = Duration::from_millis(300);
    config.cp_wait_timeout = Duration::from_millis(100);
    config.cp_wait_pool_size = 4;
    config.heartbeat_interval = Duration::from_millis(50);
    config.replication_poll = Duration::from_millis(100);
    config.max_staleness = Duration::from_millis(500);
    config.breaker = BreakerSettings {
        failure_threshold: 3,
        open_interval: Duration::from_millis(300),
        max_open_interval: Duration::from_secs(2),
    };
    config.shutdown_grace = Duration::from_secs(2);
    config
}

/// A Redis pair whose primary already streams to the replica. Right after a full sync the
/// primary sends no commands until the replica's first `REPLCONF ACK` (its cron, up to a second
/// later), so a `WAIT 1` in that window counts 0: wait until a raw `SET` + `WAIT 1` says 1.
pub async fn streaming_pair() -> RedisPair {
    use fred::interfaces::{ClientLike, KeysInterface, ServerInterface};
    let pair = RedisPair::start().await;
    let client = raw_client(&pair.g1.url()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let _: () = client
            .set("caplab:test:stream", "1", None, None, false)
            .await
            .expect("SET");
        let acked: i64 = client.wait(1, 200).await.expect("WAIT");
        if acked >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the primary never streamed to the replica"
        );
    }
    let _ = client.quit().await;
    pair
}

/// A running app and its address.
pub struct TestApp {
    pub app: RunningApp,
    pub addr: SocketAddr,
}

impl TestApp {
    /// Starts `config` on 127.0.0.1:0.
    pub async fn start(config: Config) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let app = caplab::app::start(config, listener)
            .await
            .expect("app starts");
        let addr = app.local_addr();
        TestApp { app, addr }
    }

    /// Starts `mode` over `pair` with [`test_config`].
    pub async fn over(mode: Mode, pair: &RedisPair) -> TestApp {
        TestApp::start(test_config(mode, pair)).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        request(self.addr, "GET", path, None).await
    }

    pub async fn post(&self, path: &str) -> Reply {
        request(self.addr, "POST", path, None).await
    }

    pub async fn put(&self, path: &str, body: &[u8]) -> Reply {
        request(self.addr, "PUT", path, Some(body.to_vec())).await
    }

    /// `GET path` with extra headers (a session token).
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        request_with(self.addr, "GET", path, None, headers).await
    }

    /// `POST path` with extra headers (a session token).
    pub async fn post_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        request_with(self.addr, "POST", path, None, headers).await
    }

    /// Polls `GET path` until `done` holds, or panics after `limit`.
    pub async fn wait_for(
        &self,
        path: &str,
        limit: Duration,
        done: impl Fn(&Reply) -> bool,
    ) -> Reply {
        let deadline = Instant::now() + limit;
        loop {
            let reply = self.get(path).await;
            if done(&reply) {
                return reply;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never reached the expected state; last: {reply:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The state of breaker `name` on `/circuit-breaker`.
    pub async fn breaker_state(&self, name: &str) -> String {
        let reply = self.get("/circuit-breaker").await;
        reply.json["breakers"][name]["state"]
            .as_str()
            .unwrap_or("missing")
            .to_string()
    }

    pub async fn shutdown(self) -> ShutdownReport {
        self.app.shutdown().await.expect("clean shutdown")
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub text: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub json: serde_json::Value,
    pub elapsed: Duration,
}

impl Reply {
    /// The `X-Session-Token` the answer carries, if any.
    pub fn session_token(&self) -> Option<String> {
        self.headers
            .get("x-session-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// One request on a fresh connection.
pub async fn request(addr: SocketAddr, method: &str, path: &str, body: Option<Vec<u8>>) -> Reply {
    request_with(addr, method, path, body, &[]).await
}

/// One request with extra headers on a fresh connection.
pub async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> Reply {
    let started = Instant::now();
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to app");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("http handshake");
    tokio::spawn(conn);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
        elapsed: started.elapsed(),
    }
}

/// A direct fred client to one node, for checking what Redis really holds.
pub async fn raw_client(url: &str) -> fred::clients::Client {
    use fred::interfaces::ClientLike;
    let config = fred::prelude::Config::from_url(url).expect("url");
    let client = fred::types::Builder::from_config(config)
        .with_connection_config(|c| c.max_command_attempts = 1)
        .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(2))
        .build()
        .expect("client");
    client.init().await.expect("raw connect");
    client
}

/// Makes the node at `url` stop replicating (`REPLICAOF NO ONE`): it keeps what it has and
/// takes writes of its own, as a replica cut off and promoted would.
pub async fn detach_replica(url: &str) {
    use fred::interfaces::ClientLike;
    let client = raw_client(url).await;
    let _: () = client
        .custom(
            fred::types::CustomCommand::new_static(
                "REPLICAOF",
                fred::types::ClusterHash::Random,
                false,
            ),
            vec!["NO", "ONE"],
        )
        .await
        .expect("REPLICAOF NO ONE");
    let _ = client.quit().await;
}

/// A service-level client of `node` of `pair` (`caplab::node::Node`) with `config`'s timeouts
/// and breaker, connected.
pub async fn connect_node(
    node: caplab::node::NodeId,
    pair: &RedisPair,
    config: &Config,
    metrics: &caplab::metrics::Metrics,
) -> caplab::node::Node {
    let url = match node {
        caplab::node::NodeId::G1 => pair.g1.url(),
        caplab::node::NodeId::G2 => pair.g2.url(),
    };
    let client =
        caplab::node::Node::connect(node, &url, config.network_timeout, config.breaker, metrics)
            .expect("node client");
    assert!(
        client.wait_connected(Duration::from_secs(3)).await,
        "{url} did not connect"
    );
    client
}

/// The stored value of `key` on the node at `url` (None if absent).
pub async fn raw_value(url: &str, key: &str) -> Option<String> {
    use fred::interfaces::{ClientLike, HashesInterface};
    let client = raw_client(url).await;
    let value: Option<String> = client
        .hget(format!("caplab:kv:{key}"), "value")
        .await
        .expect("HGET");
    let _ = client.quit().await;
    value
}
