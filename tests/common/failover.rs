//! The apps over a [`FailoverPair`]: proxies `g1` and `g2` in front of the nodes on the same
//! [`TestProxy`] as the pair's `cluster_*` and `sentinels` proxies, and app configurations
//! that follow the sentinels through a named proxy, as docs/design.md's topology has them.
//! Every process dies with the [`FailoverApps`] (the pair's Drop kills by pid).

use std::time::{Duration, Instant};

use caplab::config::{Config, Mode};
use caplab::lab::redis_node::{info_field, info_replication};
use caplab::node::BreakerSettings;

use super::app::TestApp;
use super::proxy::TestProxy;
use super::sentinels::FailoverPair;

/// The proxy, the pair with its sentinels, and the apps' routes to the nodes.
pub struct FailoverApps {
    pub proxy: TestProxy,
    pub pair: FailoverPair,
    /// Listen address of proxy `g1` (the apps' way to g1).
    pub g1: String,
    /// Listen address of proxy `g2`.
    pub g2: String,
}

impl FailoverApps {
    /// Starts the proxy, the pair, the sentinels and the `g1`/`g2` proxies.
    pub async fn start() -> FailoverApps {
        let proxy = TestProxy::start();
        let pair = FailoverPair::start(&proxy).await;
        let g1 = proxy
            .create("g1", &format!("127.0.0.1:{}", pair.g1.port()))
            .await;
        let g2 = proxy
            .create("g2", &format!("127.0.0.1:{}", pair.g2.port()))
            .await;
        FailoverApps {
            proxy,
            pair,
            g1,
            g2,
        }
    }

    /// Another proxy to s1 (an app's own way to the sentinels, to cut it alone); returns its
    /// listen address.
    pub async fn sentinel_proxy(&self, name: &str) -> String {
        let s1 = format!("127.0.0.1:{}", self.pair.sentinels[0].port());
        self.proxy.create(name, &s1).await
    }

    /// An app over the `g1`/`g2` proxies following the sentinels at `sentinels` (a proxy's
    /// listen address), with short timeouts: 500 ms network timeout, 200 ms WAIT, heartbeat
    /// 50 ms, replication poll 100 ms, sentinel poll 200 ms (the default), breaker threshold 3,
    /// open 300 ms up to 2 s.
    pub fn config(&self, mode: Mode, sentinels: &str) -> Config {
        let mut c = Config::new(
            mode,
            &format!("redis://{}", self.g1),
            &format!("redis://{}", self.g2),
        );
        c.port = 0;
        c.network_timeout = Duration::from_millis(500);
        c.cp_wait_timeout = Duration::from_millis(200);
        c.cp_wait_pool_size = 4;
        c.heartbeat_interval = Duration::from_millis(50);
        c.replication_poll = Duration::from_millis(100);
        c.max_staleness = Duration::from_millis(500);
        c.breaker = BreakerSettings {
            failure_threshold: 3,
            open_interval: Duration::from_millis(300),
            max_open_interval: Duration::from_secs(2),
        };
        c.sentinel_urls = vec![format!("redis://{sentinels}")];
        c.shutdown_grace = Duration::from_secs(2);
        c
    }

    /// Waits until s1 reports g2 as the primary; returns when it did.
    pub async fn wait_promotion(&self, within: Duration) -> Instant {
        self.pair
            .wait_primary_at(self.pair.cluster_g2, within)
            .await;
        Instant::now()
    }
}

/// Waits until CP acknowledges a write (right after a full sync `WAIT` may count 0 for up to
/// a second).
pub async fn wait_cp_acknowledges(cp: &TestApp, within: Duration) {
    let deadline = Instant::now() + within;
    while cp.put("/kv/failover-ready", b"1").await.status != 200 {
        assert!(Instant::now() < deadline, "CP never acknowledged a write");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the app's `/replication` names `node` as the primary; returns when it did.
pub async fn wait_believes(app: &TestApp, node: &str, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        let reply = app.get("/replication").await;
        if reply.json["primary"] == node {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "the app never believed {node} primary: {}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The role a node gives in `INFO replication` (`master`, `slave`), `?` when it cannot say.
pub async fn role(url: &str) -> String {
    match info_replication(url).await {
        Ok(info) => info_field(&info, "role").unwrap_or("?").to_string(),
        Err(_) => "?".to_string(),
    }
}

/// Waits until the node at `url` is a replica with its link up; returns when it was.
pub async fn wait_rejoined(url: &str, within: Duration) -> Instant {
    wait_rejoined_between(url, within).await.1
}

/// Like [`wait_rejoined`], but also returns when the last probe that found the node still apart
/// was answered: the link came up between the two instants.
pub async fn wait_rejoined_between(url: &str, within: Duration) -> (Instant, Instant) {
    let deadline = Instant::now() + within;
    let mut apart = Instant::now();
    loop {
        if let Ok(info) = info_replication(url).await {
            if info_field(&info, "role") == Some("slave")
                && info_field(&info, "master_link_status") == Some("up")
            {
                return (apart, Instant::now());
            }
            apart = Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{url} never rejoined as a replica"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Milliseconds from `a` to `b` (0 when `b` came first).
pub fn ms(a: Instant, b: Instant) -> u128 {
    b.saturating_duration_since(a).as_millis()
}
