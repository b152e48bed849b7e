//! A Redis pair watched by three real sentinels, wired as the lab is (docs/design.md,
//! "Topology"): each node announces its `cluster_*` proxy of a [`TestProxy`], g2 replicates
//! from g1 through `cluster_g1`, the sentinels watch g1 there, and the apps reach s1 through a
//! `sentinels` proxy. Every process dies with the [`FailoverPair`] (SIGKILL by pid).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use caplab::lab::ports::free_port;
use caplab::lab::redis_node::{RedisNode, RedisNodeSpec};
use caplab::lab::sentinel::{Sentinel, SentinelSpec, SentinelView, sentinel_view};
use serde_json::json;

use super::proxy::TestProxy;

/// How long a test waits for the sentinels to promote a replica: 2–3 s normally (1 s
/// `down-after-milliseconds`, then one election), but a sentinel whose timer runs more than
/// 2 s late (a loaded or briefly paused machine) enters TILT mode and acts on nothing for 30 s.
pub const PROMOTION_WITHIN: Duration = Duration::from_secs(45);

/// How long a test waits for the sentinels to turn a returning old primary into a replica of
/// the new one: 10–12 s normally (a sentinel acts once the node has reported the wrong role for
/// 8 s, and reads a replica's `INFO` every 10 s), and TILT's 30 s on top when a sentinel tilts.
pub const REJOIN_WITHIN: Duration = Duration::from_secs(60);

/// g1, g2, three sentinels, and the proxies' listen ports.
pub struct FailoverPair {
    pub g1: RedisNode,
    pub g2: RedisNode,
    pub sentinels: Vec<Sentinel>,
    /// Listen port of `cluster_g1` (g1's address for the sentinels and for g2).
    pub cluster_g1: u16,
    /// Listen port of `cluster_g2`.
    pub cluster_g2: u16,
    /// Listen address of `sentinels` (the apps' way to s1).
    pub sentinels_addr: String,
    pub dir: tempfile::TempDir,
}

async fn create_at(proxy: &TestProxy, name: &str, listen: u16, upstream: u16) {
    let body = json!({
        "name": name,
        "listen": format!("127.0.0.1:{listen}"),
        "upstream": format!("127.0.0.1:{upstream}"),
    });
    let a = proxy
        .call("POST", "/proxies", Some(&body.to_string()))
        .await;
    assert_eq!(a.status, 201, "{a:?}");
}

impl FailoverPair {
    /// Starts the pair and the sentinels on free ports and waits until s1 knows the replica
    /// and the two other sentinels (a failover is possible from then on).
    pub async fn start(proxy: &TestProxy) -> FailoverPair {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cluster_g1, cluster_g2) = (free_port().unwrap(), free_port().unwrap());
        let mut g1_spec =
            RedisNodeSpec::primary("g1", free_port().unwrap(), &dir.path().join("g1"));
        g1_spec.announce = Some(("127.0.0.1".into(), cluster_g1));
        let g1 = RedisNode::start(g1_spec).await.expect("start g1");
        create_at(proxy, "cluster_g1", cluster_g1, g1.port()).await;
        let mut g2_spec = RedisNodeSpec::replica(
            "g2",
            free_port().unwrap(),
            &dir.path().join("g2"),
            "127.0.0.1",
            cluster_g1,
        );
        g2_spec.announce = Some(("127.0.0.1".into(), cluster_g2));
        let g2 = RedisNode::start(g2_spec).await.expect("start g2");
        create_at(proxy, "cluster_g2", cluster_g2, g2.port()).await;
        g2.wait_link_up(Duration::from_secs(15))
            .await
            .expect("g2 replicates through cluster_g1");
        let mut sentinels = Vec::new();
        for name in ["s1", "s2", "s3"] {
            let spec = SentinelSpec::new(
                name,
                free_port().unwrap(),
                &dir.path().join(name),
                "127.0.0.1",
                cluster_g1,
            );
            sentinels.push(Sentinel::start(spec).await.expect("start a sentinel"));
        }
        let sentinels_addr = proxy
            .create("sentinels", &format!("127.0.0.1:{}", sentinels[0].port()))
            .await;
        let pair = FailoverPair {
            g1,
            g2,
            sentinels,
            cluster_g1,
            cluster_g2,
            sentinels_addr,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut ready = 0;
            for s in &pair.sentinels {
                if sentinel_view(&s.url()).await.is_ok_and(|v| v.ready()) {
                    ready += 1;
                }
            }
            if ready == pair.sentinels.len() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinels never all saw each other and the replica"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        pair
    }

    /// What s1 says of the primary.
    pub async fn view(&self) -> SentinelView {
        sentinel_view(&self.sentinels[0].url())
            .await
            .expect("s1 answers SENTINEL MASTER")
    }

    /// Waits until s1 reports the primary at `port` (a `cluster_*` listen port).
    pub async fn wait_primary_at(&self, port: u16, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if let Ok(view) = sentinel_view(&self.sentinels[0].url()).await
                && view.addr.1 == port
            {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "s1 never reported the primary at port {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for FailoverPair {
    /// When a test fails, the end of each sentinel's log and of the nodes' logs goes to the
    /// test's output; the processes are stopped by the fields' own drops.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = self
                .sentinels
                .iter()
                .map(|s| s.spec().log_file())
                .chain([self.g1.spec().log_file(), self.g2.spec().log_file()]);
            print_log_tails(logs);
        }
    }
}

/// Held by a test over a [`caplab::lab::Lab`] in `dir` (declared after the directory, so it is
/// dropped first): when the test panics, the end of every sentinel's and node's log in the lab's
/// directory goes to the test's output.
pub struct LabLogsOnPanic(pub PathBuf);

impl Drop for LabLogsOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut logs: Vec<PathBuf> = std::fs::read_dir(&self.0)
                .into_iter()
                .flatten()
                .flatten()
                .flat_map(|entry| {
                    std::fs::read_dir(entry.path())
                        .into_iter()
                        .flatten()
                        .flatten()
                })
                .map(|entry| entry.path())
                .filter(|path| {
                    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    (name.starts_with("sentinel-") || name.starts_with("redis-"))
                        && name.ends_with(".log")
                })
                .collect();
            logs.sort();
            print_log_tails(logs);
        }
    }
}

/// Prints the last 40 lines of each log: a slow failover is a sentinel in TILT mode
/// (`+tilt`), a node it still sees down, or a refused reconfiguration, said only there.
fn print_log_tails(logs: impl IntoIterator<Item = PathBuf>) {
    for log in logs {
        let text = std::fs::read_to_string(&log).unwrap_or_else(|e| format!("(unreadable: {e})"));
        let lines: Vec<&str> = text.lines().collect();
        eprintln!("--- last lines of {}:", log.display());
        for line in &lines[lines.len().saturating_sub(40)..] {
            eprintln!("{line}");
        }
    }
}
