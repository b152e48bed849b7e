//! End to end: a real Prometheus server (Debian's `prometheus`) scrapes a CP and an
//! AP app running over a real primary and replica whose g1 and g2 links go through
//! `caplab proxy`, loads the shipped rule files with the lab's scrape config, and sees
//! `CaplabCircuitBreakerOpen` go pending for CP's g1 once g1 is cut off, and not before. It
//! scrapes the proxy's API too, and sees g1's bytes go flat at the cut while g2's keep moving.
//!
//! The scrape config is `prometheus/prometheus-local.yml` with the apps' and the proxy API's
//! ports and the intervals shortened (1 s instead of 5 s) so the test takes seconds, not
//! minutes.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use caplab::config::Mode;
use caplab::lab::ports::free_port;
use common::app::{TestApp, test_config};
use common::proxy::TestProxy;
use common::redis::RedisPair;
use serde_json::Value;

/// The Prometheus process, killed by pid when the test ends, pass or fail.
struct Prometheus {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Prometheus {
    /// Starts Prometheus with the lab's scrape config pointed at `cp`, `ap` and the proxy API
    /// `proxy_api` (`host:port`).
    fn start(cp: u16, ap: u16, proxy_api: &str) -> Prometheus {
        let port = free_port().expect("free port");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("rules")).expect("rules dir");
        for f in ["alerts.yml", "recording.yml"] {
            std::fs::copy(
                root().join("prometheus/rules").join(f),
                dir.path().join("rules").join(f),
            )
            .expect("copy rule file");
        }
        let config = std::fs::read_to_string(root().join("prometheus/prometheus-local.yml"))
            .expect("prometheus-local.yml")
            .replace("127.0.0.1:5001", &format!("127.0.0.1:{cp}"))
            .replace("127.0.0.1:5002", &format!("127.0.0.1:{ap}"))
            .replace("127.0.0.1:8474", proxy_api)
            .replace("scrape_interval: 5s", "scrape_interval: 1s")
            .replace("evaluation_interval: 5s", "evaluation_interval: 1s")
            .replace("scrape_timeout: 4s", "scrape_timeout: 900ms");
        assert!(config.contains("scrape_interval: 1s"), "{config}");
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write config");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start prometheus ({e}): `apt-get install prometheus` (./test.sh does)"
                )
            });
        Prometheus { child, port, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    async fn api(&self, path: &str) -> Option<Value> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let resp = reqwest::get(url).await.ok()?;
        resp.json().await.ok()
    }

    /// `(alertname, mode, node, state)` of every alert Prometheus holds now.
    async fn alerts(&self) -> Vec<(String, String, String, String)> {
        let Some(a) = self.api("/api/v1/alerts").await else {
            return Vec::new();
        };
        let label = |a: &Value, k: &str| a["labels"][k].as_str().unwrap_or("").to_string();
        a["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    label(a, "alertname"),
                    label(a, "mode"),
                    label(a, "node"),
                    a["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// The value of an instant query whose result is one number.
    async fn number(&self, query: &str) -> Option<f64> {
        let path = format!(
            "/api/v1/query?query={}",
            query
                .bytes()
                .map(|b| format!("%{b:02X}"))
                .collect::<String>()
        );
        let r = self.api(&path).await?;
        r["data"]["result"].as_array()?.first()?["value"][1]
            .as_str()?
            .parse()
            .ok()
    }

    /// Bytes sent through proxy `proxy`, both directions, as last scraped.
    async fn proxy_bytes(&self, proxy: &str) -> Option<f64> {
        self.number(&format!(
            "sum(toxiproxy_proxy_sent_bytes_total{{job=\"toxiproxy\",proxy=\"{proxy}\"}})"
        ))
        .await
    }

    /// The `up` value per job, once both app jobs have been scraped.
    async fn apps_up(&self) -> Option<(f64, f64)> {
        let r = self.api("/api/v1/query?query=up").await?;
        let mut cp = None;
        let mut ap = None;
        for s in r["data"]["result"].as_array()? {
            let v: f64 = s["value"][1].as_str()?.parse().ok()?;
            match s["metric"]["job"].as_str()? {
                "app_cp" => cp = Some(v),
                "app_ap" => ap = Some(v),
                _ => {}
            }
        }
        Some((cp?, ap?))
    }
}

fn breaker_alerts(all: &[(String, String, String, String)]) -> Vec<(String, String, String)> {
    all.iter()
        .filter(|a| a.0 == "CaplabCircuitBreakerOpen")
        .map(|a| (a.1.clone(), a.2.clone(), a.3.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_the_breaker_alert_go_pending_during_a_g1_partition() {
    let pair = RedisPair::start().await;
    let proxy = TestProxy::start();
    let routes = proxy.front_nodes(&pair).await;
    let through_proxies = |mode| {
        let mut config = test_config(mode, &pair);
        routes.apply(&mut config);
        config.max_staleness = Duration::from_millis(1000);
        config
    };
    let cp = TestApp::start(through_proxies(Mode::Cp)).await;
    let ap = TestApp::start(through_proxies(Mode::Ap)).await;
    let prom = Prometheus::start(cp.addr.port(), ap.addr.port(), &proxy.api());

    // Both apps scraped and healthy, and no breaker alert while nothing is cut.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if prom.apps_up().await == Some((1.0, 1.0)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped both apps as up:\n{}",
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The proxy is scraped as the lab's `toxiproxy` job, and bytes flow through g1.
    let deadline = Instant::now() + Duration::from_secs(30);
    while prom.proxy_bytes("g1").await.unwrap_or(0.0) <= 0.0 {
        assert!(
            Instant::now() < deadline,
            "no bytes through g1 scraped from the proxy:\n{}",
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = breaker_alerts(&prom.alerts().await);
    assert!(
        before.is_empty(),
        "a breaker alert before any fault: {before:?}"
    );

    // Cut g1 off: CP's heartbeat and requests to g1 fail, its g1 breaker opens.
    proxy.set_enabled("g1", false).await;
    let cut = Instant::now();
    let deadline = cut + Duration::from_secs(45);
    let pending = loop {
        let breaker = breaker_alerts(&prom.alerts().await);
        if breaker
            .iter()
            .any(|(mode, node, state)| mode == "cp" && node == "g1" && state == "pending")
        {
            break breaker;
        }
        assert!(
            Instant::now() < deadline,
            "CaplabCircuitBreakerOpen never went pending for cp/g1 (seen: {breaker:?}; CP says \
             g1 is {}):\n{}",
            cp.breaker_state("g1").await,
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!(
        "breaker alert pending {:.1} s after the cut: {pending:?}",
        cut.elapsed().as_secs_f64()
    );
    // The alert waits its `for: 1m` before firing: pending, not firing, this soon.
    assert!(
        pending.iter().all(|(_, _, state)| state == "pending"),
        "{pending:?}"
    );

    // The dashboard's "bytes through each link": g1 flat since the cut, g2 still moving
    // (AP's heartbeat reads g2). Three scrapes apart.
    let (g1_then, g2_then) = (prom.proxy_bytes("g1").await, prom.proxy_bytes("g2").await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (g1_now, g2_now) = (prom.proxy_bytes("g1").await, prom.proxy_bytes("g2").await);
    assert!(
        g1_then.is_some() && g1_now == g1_then,
        "g1 moved: {g1_then:?} -> {g1_now:?}"
    );
    assert!(
        g2_now > g2_then,
        "g2 did not move: {g2_then:?} -> {g2_now:?}"
    );

    proxy.set_enabled("g1", true).await;
    drop(prom);
    cp.shutdown().await;
    ap.shutdown().await;
}
