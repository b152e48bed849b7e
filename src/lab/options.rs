//! What a lab is asked to be: its ports, its directory, which Toxiproxy, how long to wait.
//!
//! Sits before everything the lab starts: [`super::Lab::up`] reads a [`LabOptions`]. The
//! default ports are the documented ones (apps on 5001 and 5002, the proxy API on 8474, the
//! Redis nodes on 16379/16380, the sentinels on 16381-16383 and the five proxies on
//! 26379-26383, out of the way of a system Redis on 6379; a system Sentinel would hold 26379,
//! proxy g1's port); [`LabPorts::free`] picks free loopback ports for tests and the demo.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ports::free_port;

/// Every port the lab listens on (all on 127.0.0.1). A `lab.json` written before the lab had
/// sentinels lacks some of these: they read as the defaults, so `caplab lab down` can still
/// stop such a lab by its recorded pids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LabPorts {
    /// `redis-server` of node g1 (the primary at start).
    pub redis_g1: u16,
    /// `redis-server` of node g2 (the replica at start).
    pub redis_g2: u16,
    /// Sentinel s1 (the one the apps ask, through proxy `sentinels`).
    pub sentinel_s1: u16,
    /// Sentinel s2.
    pub sentinel_s2: u16,
    /// Sentinel s3.
    pub sentinel_s3: u16,
    /// Proxy `g1`: the apps to g1.
    pub proxy_g1: u16,
    /// Proxy `g2`: the apps to g2.
    pub proxy_g2: u16,
    /// Proxy `cluster_g1`: the sentinels and the other node's replication to g1 (g1's
    /// announced address).
    pub proxy_cluster_g1: u16,
    /// Proxy `cluster_g2`: the same for g2.
    pub proxy_cluster_g2: u16,
    /// Proxy `sentinels`: the apps to s1.
    pub proxy_sentinels: u16,
    /// app_cp.
    pub app_cp: u16,
    /// app_ap.
    pub app_ap: u16,
    /// The Toxiproxy API of the embedded `caplab proxy` (unused with an external Toxiproxy).
    pub proxy_api: u16,
}

/// Default port of g1's `redis-server` in the lab.
pub const DEFAULT_REDIS_G1_PORT: u16 = 16379;
/// Default port of g2's `redis-server` in the lab.
pub const DEFAULT_REDIS_G2_PORT: u16 = 16380;
/// Default ports of the sentinels s1, s2, s3.
pub const DEFAULT_SENTINEL_PORTS: [u16; 3] = [16381, 16382, 16383];
/// Default listen port of proxy `g1` (also in `toxiproxy/proxies.json`).
pub const DEFAULT_PROXY_G1_PORT: u16 = 26379;
/// Default listen port of proxy `g2`.
pub const DEFAULT_PROXY_G2_PORT: u16 = 26380;
/// Default listen port of proxy `cluster_g1`.
pub const DEFAULT_PROXY_CLUSTER_G1_PORT: u16 = 26381;
/// Default listen port of proxy `cluster_g2`.
pub const DEFAULT_PROXY_CLUSTER_G2_PORT: u16 = 26382;
/// Default listen port of proxy `sentinels`.
pub const DEFAULT_PROXY_SENTINELS_PORT: u16 = 26383;
/// app_cp's port (docs/design.md).
pub const DEFAULT_APP_CP_PORT: u16 = 5001;
/// app_ap's port (docs/design.md).
pub const DEFAULT_APP_AP_PORT: u16 = 5002;
/// Toxiproxy's API port (docs/design.md).
pub const DEFAULT_PROXY_API_PORT: u16 = 8474;

/// How many ports a lab listens on.
const PORT_COUNT: usize = 13;

impl Default for LabPorts {
    fn default() -> Self {
        let [s1, s2, s3] = DEFAULT_SENTINEL_PORTS;
        LabPorts {
            redis_g1: DEFAULT_REDIS_G1_PORT,
            redis_g2: DEFAULT_REDIS_G2_PORT,
            sentinel_s1: s1,
            sentinel_s2: s2,
            sentinel_s3: s3,
            proxy_g1: DEFAULT_PROXY_G1_PORT,
            proxy_g2: DEFAULT_PROXY_G2_PORT,
            proxy_cluster_g1: DEFAULT_PROXY_CLUSTER_G1_PORT,
            proxy_cluster_g2: DEFAULT_PROXY_CLUSTER_G2_PORT,
            proxy_sentinels: DEFAULT_PROXY_SENTINELS_PORT,
            app_cp: DEFAULT_APP_CP_PORT,
            app_ap: DEFAULT_APP_AP_PORT,
            proxy_api: DEFAULT_PROXY_API_PORT,
        }
    }
}

impl LabPorts {
    /// Thirteen distinct free loopback ports. Another process may take one before the lab
    /// binds it; the lab then reports that port by name.
    pub fn free() -> std::io::Result<LabPorts> {
        let mut taken = Vec::with_capacity(PORT_COUNT);
        while taken.len() < PORT_COUNT {
            let port = free_port()?;
            if !taken.contains(&port) {
                taken.push(port);
            }
        }
        Ok(LabPorts {
            redis_g1: taken[0],
            redis_g2: taken[1],
            sentinel_s1: taken[2],
            sentinel_s2: taken[3],
            sentinel_s3: taken[4],
            proxy_g1: taken[5],
            proxy_g2: taken[6],
            proxy_cluster_g1: taken[7],
            proxy_cluster_g2: taken[8],
            proxy_sentinels: taken[9],
            app_cp: taken[10],
            app_ap: taken[11],
            proxy_api: taken[12],
        })
    }

    /// The sentinels' names and ports: `s1`, `s2`, `s3`.
    pub fn sentinels(&self) -> [(&'static str, u16); 3] {
        [
            ("s1", self.sentinel_s1),
            ("s2", self.sentinel_s2),
            ("s3", self.sentinel_s3),
        ]
    }

    /// The listen port of a lab proxy by name (`g1`, `cluster_g2`, ...).
    pub fn proxy(&self, name: &str) -> Option<u16> {
        use crate::faults::{CLUSTER_G1, CLUSTER_G2, G1, G2, SENTINELS};
        match name {
            G1 => Some(self.proxy_g1),
            G2 => Some(self.proxy_g2),
            CLUSTER_G1 => Some(self.proxy_cluster_g1),
            CLUSTER_G2 => Some(self.proxy_cluster_g2),
            SENTINELS => Some(self.proxy_sentinels),
            _ => None,
        }
    }

    /// Each port with the name of what listens there, in start order.
    pub fn named(&self) -> [(&'static str, u16); PORT_COUNT] {
        [
            ("redis g1", self.redis_g1),
            ("proxy API", self.proxy_api),
            ("proxy g1", self.proxy_g1),
            ("proxy g2", self.proxy_g2),
            ("proxy cluster_g1", self.proxy_cluster_g1),
            ("proxy cluster_g2", self.proxy_cluster_g2),
            ("proxy sentinels", self.proxy_sentinels),
            ("redis g2", self.redis_g2),
            ("sentinel s1", self.sentinel_s1),
            ("sentinel s2", self.sentinel_s2),
            ("sentinel s3", self.sentinel_s3),
            ("app_cp", self.app_cp),
            ("app_ap", self.app_ap),
        ]
    }
}

/// Everything [`super::Lab::up`] needs.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Where the lab keeps its data, logs and `lab.json`.
    pub dir: PathBuf,
    /// The `caplab` binary to run `caplab proxy` and `caplab serve` from.
    pub caplab_bin: PathBuf,
    /// The ports.
    pub ports: LabPorts,
    /// An external Toxiproxy API (`http://host:port`); `None` starts `caplab proxy`.
    pub toxiproxy_url: Option<String>,
    /// How long each part may take to become healthy.
    pub start_timeout: Duration,
    /// Extra `caplab serve` flags given to both apps (such as `--network-timeout-sec 0.5`).
    pub app_args: Vec<String>,
    /// Start the processes in their own process group, so they outlive the command that
    /// started them (`caplab lab up`) and a Ctrl-C in its terminal does not reach them.
    pub detached: bool,
}

impl LabOptions {
    /// A lab in `dir` on the default ports, with the embedded proxy, a 20 s start timeout.
    pub fn new(dir: impl Into<PathBuf>, caplab_bin: impl Into<PathBuf>) -> LabOptions {
        LabOptions {
            dir: dir.into(),
            caplab_bin: caplab_bin.into(),
            ports: LabPorts::default(),
            toxiproxy_url: None,
            start_timeout: Duration::from_secs(20),
            app_args: Vec::new(),
            detached: false,
        }
    }

    /// The same options on other ports.
    pub fn with_ports(mut self, ports: LabPorts) -> LabOptions {
        self.ports = ports;
        self
    }

    /// Apps that give up on a node quickly (0.5 s network timeout, 200 ms `WAIT`), so a fault
    /// shows within seconds: the demo's, the tests' and the failover timing's labs.
    pub fn with_quick_apps(mut self) -> LabOptions {
        self.app_args.extend(
            [
                "--network-timeout-sec",
                "0.5",
                "--cp-wait-timeout-ms",
                "200",
            ]
            .map(String::from),
        );
        self
    }

    /// The record of a lab started in `dir`.
    pub fn record_path(dir: &Path) -> PathBuf {
        dir.join("lab.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn free_ports_are_distinct() -> TestResult {
        let ports = LabPorts::free()?;
        let mut all: Vec<u16> = ports.named().iter().map(|(_, p)| *p).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), PORT_COUNT);
        Ok(())
    }

    #[test]
    fn default_ports_follow_the_design() {
        let ports = LabPorts::default();
        assert_eq!(
            (ports.app_cp, ports.app_ap, ports.proxy_api),
            (5001, 5002, 8474)
        );
        let proxies: Vec<Option<u16>> = crate::faults::LAB_PROXIES
            .iter()
            .map(|name| ports.proxy(name))
            .collect();
        let want: Vec<Option<u16>> = (26379..=26383).map(Some).collect();
        assert_eq!(proxies, want);
        assert_eq!(ports.proxy("replication"), None);
        let sentinels: Vec<u16> = ports.sentinels().iter().map(|(_, p)| *p).collect();
        assert_eq!(sentinels, [16381, 16382, 16383]);
    }
}
