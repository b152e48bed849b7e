//! Real `redis-server` processes: start, probe, pause, kill and restart them.
//!
//! This sits under the whole data path: it is how the local lab (and every integration test)
//! gets the nodes `g1` and `g2` that the personalities talk to. Nodes are started with the
//! settings docs/design.md fixes (`hz 100`, `repl-diskless-sync-delay 0`, and, on both nodes
//! since either may become a replica after a failover, `repl-timeout 5`,
//! `repl-ping-replica-period 1`, `replica-serve-stale-data yes`), optionally announcing another
//! address to the sentinels and the other node (their `cluster_*` proxy), bound to loopback, and
//! stopped by pid, never by name. Each node runs from a config file of its own, written at its
//! first start, so that a role Sentinel gives it at a failover survives a restart.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fred::prelude::{ClientLike, Config as FredConfig};
use fred::types::{Builder, InfoKind};
use nix::sys::signal::Signal;

use super::redis_process::{Launch, RedisProcess};

/// Debian's install command, shown when `redis-server` is missing.
pub const INSTALL_HINT: &str = "sudo apt-get install -y redis-server";

/// Why a Redis node could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum RedisNodeError {
    /// No `redis-server` on PATH.
    #[error("redis-server was not found on PATH; install it with: {INSTALL_HINT}")]
    NotInstalled,
    /// The data directory could not be created.
    #[error("cannot create the data directory {dir} for redis {name}: {source}")]
    Dir {
        /// Node name.
        name: String,
        /// The directory.
        dir: PathBuf,
        /// What the filesystem said.
        source: std::io::Error,
    },
    /// The process could not be spawned.
    #[error("cannot start redis-server for {name}: {source}")]
    Spawn {
        /// Node name.
        name: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The process exited or never answered PING in time.
    #[error("redis {name} on port {port} did not come up: {reason} (see {log})")]
    NotReady {
        /// Node name.
        name: String,
        /// Its port.
        port: u16,
        /// What went wrong.
        reason: String,
        /// Its log file.
        log: String,
    },
    /// A signal could not be delivered.
    #[error("cannot send {signal} to redis {name} (pid {pid}): {source}")]
    Signal {
        /// Node name.
        name: String,
        /// Its pid.
        pid: u32,
        /// The signal.
        signal: &'static str,
        /// What the OS said.
        source: nix::Error,
    },
    /// A probe (PING, INFO) failed.
    #[error("redis at {addr}: {reason}")]
    Probe {
        /// Where.
        addr: String,
        /// What failed.
        reason: String,
    },
}

/// What a node should be: name, port, directory and role.
#[derive(Debug, Clone)]
pub struct RedisNodeSpec {
    /// `g1` or `g2` (used in messages and file names).
    pub name: String,
    /// Loopback port to listen on.
    pub port: u16,
    /// Directory for its data, AOF and log.
    pub dir: PathBuf,
    /// `Some((host, port))` makes it a replica of that address at its first start (in the
    /// lab, g2 replicates from the `cluster_g1` proxy in front of g1).
    pub replica_of: Option<(String, u16)>,
    /// Turn on the append-only file (the lab's nodes keep their data across a restart).
    pub append_only: bool,
    /// `Some((host, port))`: the address this node gives its primary as its own
    /// (`replica-announce-ip`, `replica-announce-port`), which is where the sentinels then
    /// reach it and where the other node replicates from after a promotion. In the lab, the
    /// node's `cluster_*` proxy.
    pub announce: Option<(String, u16)>,
    /// Start it in its own process group, so it outlives the command that started it and a
    /// Ctrl-C in that terminal does not reach it (`caplab lab up`).
    pub own_process_group: bool,
    /// `Some(password)`: clients must `AUTH` (`requirepass`) and, as a replica, it
    /// authenticates to its primary with the same password (`masterauth`).
    pub password: Option<String>,
}

impl RedisNodeSpec {
    /// A primary on `port`, storing in `dir`.
    pub fn primary(name: &str, port: u16, dir: &Path) -> Self {
        RedisNodeSpec {
            name: name.to_string(),
            port,
            dir: dir.to_path_buf(),
            replica_of: None,
            append_only: false,
            announce: None,
            own_process_group: false,
            password: None,
        }
    }

    /// A replica on `port` replicating from `host:upstream_port`.
    pub fn replica(name: &str, port: u16, dir: &Path, host: &str, upstream_port: u16) -> Self {
        RedisNodeSpec {
            replica_of: Some((host.to_string(), upstream_port)),
            ..Self::primary(name, port, dir)
        }
    }

    /// Where the node writes its log.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join(format!("redis-{}.log", self.name))
    }

    fn launch(&self) -> Launch<'_> {
        Launch {
            name: &self.name,
            port: self.port,
            password: self.password.as_deref(),
            config_file: self.config_file(),
            log_file: self.log_file(),
            sentinel: false,
            own_process_group: self.own_process_group,
        }
    }

    /// The node's settings as `(name, values)`, in the order they are written.
    pub fn settings(&self) -> Vec<(&'static str, Vec<String>)> {
        let one = |v: &str| vec![v.to_string()];
        let mut settings = vec![
            ("port", one(&self.port.to_string())),
            ("bind", one("127.0.0.1")),
            // Bound to loopback only, so protected mode (which refuses other addresses when
            // no password is set) changes nothing for the lab: on, as Redis ships it.
            ("protected-mode", one("yes")),
            ("daemonize", one("no")),
            ("save", one("")),
            (
                "appendonly",
                one(if self.append_only { "yes" } else { "no" }),
            ),
            ("hz", one("100")),
            ("repl-diskless-sync-delay", one("0")),
            ("dir", one(&self.dir.display().to_string())),
            ("logfile", one(&self.log_file().display().to_string())),
            // Replica settings on every node: a failover can make either one a replica.
            ("repl-timeout", one("5")),
            ("repl-ping-replica-period", one("1")),
            ("replica-serve-stale-data", one("yes")),
        ];
        if let Some((host, port)) = &self.announce {
            settings.push(("replica-announce-ip", one(host)));
            settings.push(("replica-announce-port", one(&port.to_string())));
        }
        if let Some(password) = &self.password {
            settings.push(("requirepass", one(password)));
            settings.push(("masterauth", one(password)));
        }
        if let Some((host, port)) = &self.replica_of {
            settings.push(("replicaof", vec![host.clone(), port.to_string()]));
        }
        settings
    }

    /// The settings as `redis-server` command-line arguments (`--port 7001 ...`).
    pub fn args(&self) -> Vec<String> {
        self.settings()
            .into_iter()
            .flat_map(|(name, values)| std::iter::once(format!("--{name}")).chain(values))
            .collect()
    }

    /// Its config file, which `redis-server` is started from. Written at [`RedisNode::start`],
    /// kept at [`RedisNode::restart`]: what Sentinel persists there at a failover (it sends
    /// `REPLICAOF` then `CONFIG REWRITE`) survives a restart, as on a real server.
    pub fn config_file(&self) -> PathBuf {
        self.dir.join(format!("redis-{}.conf", self.name))
    }

    /// The settings as a config file, every value quoted.
    pub fn config_text(&self) -> String {
        let quote = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
        self.settings()
            .into_iter()
            .map(|(name, values)| {
                let values: Vec<String> = values.iter().map(|v| quote(v)).collect();
                format!("{name} {}\n", values.join(" "))
            })
            .collect()
    }
}

/// A running `redis-server` that this process started. Dropping it kills the process
/// (SIGKILL by pid) unless it was [`detach`](RedisNode::detach)ed.
#[derive(Debug)]
pub struct RedisNode {
    spec: RedisNodeSpec,
    process: RedisProcess,
}

impl RedisNode {
    /// Writes a fresh config file (forgetting any role an earlier node in `dir` was given),
    /// starts the node from it and waits until it answers PING.
    pub async fn start(spec: RedisNodeSpec) -> Result<Self, RedisNodeError> {
        let dir_err = |source| RedisNodeError::Dir {
            name: spec.name.clone(),
            dir: spec.dir.clone(),
            source,
        };
        std::fs::create_dir_all(&spec.dir).map_err(dir_err)?;
        std::fs::write(spec.config_file(), spec.config_text()).map_err(dir_err)?;
        RedisNode::spawn(spec).await
    }

    /// Starts the node from the config file an earlier [`start`](RedisNode::start) wrote in
    /// its directory (and Sentinel may have rewritten since), without writing it: for a
    /// process that knows the node only from `lab.json` (see [`super::recorded`]). Waits
    /// until it answers PING.
    pub async fn start_from_config_file(spec: RedisNodeSpec) -> Result<Self, RedisNodeError> {
        if !spec.config_file().is_file() {
            return Err(RedisNodeError::NotReady {
                name: spec.name.clone(),
                port: spec.port,
                reason: format!(
                    "its config file {} is missing",
                    spec.config_file().display()
                ),
                log: spec.log_file().display().to_string(),
            });
        }
        RedisNode::spawn(spec).await
    }

    async fn spawn(spec: RedisNodeSpec) -> Result<Self, RedisNodeError> {
        let process = RedisProcess::spawn(spec.launch()).await?;
        Ok(RedisNode { spec, process })
    }

    /// What this node was started as.
    pub fn spec(&self) -> &RedisNodeSpec {
        &self.spec
    }

    /// Its pid, or `None` after [`kill`](RedisNode::kill).
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.spec.port
    }

    /// `redis://127.0.0.1:<port>` (without the password: safe to show).
    pub fn url(&self) -> String {
        self.process.url()
    }

    /// The URL with the password when the node has one (`redis://:<password>@...`), for
    /// connecting; never show it (probe errors name the address only).
    pub fn auth_url(&self) -> String {
        self.process.auth_url()
    }

    /// Freezes the process (SIGSTOP): its sockets stay open but nothing answers, like a
    /// silent partition.
    pub fn pause(&self) -> Result<(), RedisNodeError> {
        self.process.signal(Signal::SIGSTOP, "SIGSTOP")
    }

    /// Resumes a paused process (SIGCONT).
    pub fn resume(&self) -> Result<(), RedisNodeError> {
        self.process.signal(Signal::SIGCONT, "SIGCONT")
    }

    /// Kills the process (SIGKILL) and reaps it: connections to it are refused afterwards.
    pub fn kill(&mut self) -> Result<(), RedisNodeError> {
        self.process.kill()
    }

    /// Kills the node if it runs, then starts it again from its config file: same port, same
    /// directory (an append-only file brings its data back), and the role it was last given
    /// there (the spec's, unless Sentinel rewrote it at a failover).
    pub async fn restart(&mut self) -> Result<(), RedisNodeError> {
        self.process.kill()?;
        self.process = RedisProcess::spawn(self.spec.launch()).await?;
        Ok(())
    }

    /// Leaves the process running after this handle is gone (the lab records the pid and
    /// stops it later). Returns the pid.
    pub fn detach(self) -> Option<u32> {
        self.process.detach()
    }

    /// Waits until this replica reports `master_link_status:up`.
    pub async fn wait_link_up(&self, timeout: Duration) -> Result<(), RedisNodeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let info = info_replication(&self.auth_url()).await;
            if let Ok(text) = &info
                && info_field(text, "master_link_status") == Some("up")
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RedisNodeError::Probe {
                    addr: self.url(),
                    reason: format!(
                        "replication link not up within {timeout:?} (last INFO: {})",
                        match info {
                            Ok(text) => info_field(&text, "master_link_status")
                                .unwrap_or("no master_link_status")
                                .to_string(),
                            Err(e) => e.to_string(),
                        }
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A short-lived client for probes: one attempt, short timeouts, no reconnection.
pub(crate) async fn probe_client(url: &str) -> Result<fred::prelude::Client, RedisNodeError> {
    let probe_err = |reason: String| RedisNodeError::Probe {
        addr: crate::primary::sentinels::display_addr(url),
        reason,
    };
    let config = FredConfig::from_url(url).map_err(|e| probe_err(e.to_string()))?;
    let client = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_millis(500);
            c.internal_command_timeout = Duration::from_millis(500);
            c.max_command_attempts = 1;
        })
        .with_performance_config(|p| {
            p.default_command_timeout = Duration::from_millis(1000);
        })
        .build()
        .map_err(|e| probe_err(e.to_string()))?;
    match tokio::time::timeout(Duration::from_secs(2), client.init()).await {
        Ok(Ok(_handle)) => Ok(client),
        Ok(Err(e)) => Err(probe_err(e.to_string())),
        Err(_) => Err(probe_err("connect timed out".to_string())),
    }
}

/// Sends PING and expects PONG.
pub async fn ping(url: &str) -> Result<(), RedisNodeError> {
    let client = probe_client(url).await?;
    let result: Result<String, _> = client.ping(None).await;
    let _ = client.quit().await;
    match result {
        Ok(_) => Ok(()),
        Err(e) => Err(RedisNodeError::Probe {
            addr: crate::primary::sentinels::display_addr(url),
            reason: e.to_string(),
        }),
    }
}

/// `INFO replication` as text.
pub async fn info_replication(url: &str) -> Result<String, RedisNodeError> {
    let client = probe_client(url).await?;
    let result: Result<String, _> = client.info(Some(InfoKind::Replication)).await;
    let _ = client.quit().await;
    result.map_err(|e| RedisNodeError::Probe {
        addr: crate::primary::sentinels::display_addr(url),
        reason: e.to_string(),
    })
}

/// One `field:value` line of an INFO answer.
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name == field).then(|| value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_args_carry_the_design_settings() {
        let spec = RedisNodeSpec::replica("g2", 7001, Path::new("/tmp/x"), "127.0.0.1", 7002);
        let args = spec.args().join(" ");
        for needle in [
            "--replicaof 127.0.0.1 7002",
            "--repl-timeout 5",
            "--repl-ping-replica-period 1",
            "--replica-serve-stale-data yes",
            "--repl-diskless-sync-delay 0",
            "--hz 100",
            "--bind 127.0.0.1",
        ] {
            assert!(args.contains(needle), "missing {needle} in {args}");
        }
        let mut primary = RedisNodeSpec::primary("g1", 7002, Path::new("/tmp/x"));
        let args = primary.args().join(" ");
        assert!(!args.contains("replicaof"));
        assert!(args.contains("--repl-timeout 5"), "{args}");
        assert!(!args.contains("announce"));
        primary.announce = Some(("127.0.0.1".into(), 7003));
        let args = primary.args().join(" ");
        assert!(
            args.contains("--replica-announce-ip 127.0.0.1 --replica-announce-port 7003"),
            "{args}"
        );
    }

    #[test]
    fn the_config_file_quotes_every_value() {
        let mut spec =
            RedisNodeSpec::replica("g2", 7001, Path::new("/tmp/a \"b\""), "127.0.0.1", 7002);
        spec.announce = Some(("127.0.0.1".into(), 7003));
        let text = spec.config_text();
        for line in [
            "port \"7001\"",
            "save \"\"",
            "dir \"/tmp/a \\\"b\\\"\"",
            "replica-announce-port \"7003\"",
            "replicaof \"127.0.0.1\" \"7002\"",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
        assert_eq!(text.lines().count(), spec.settings().len());
    }

    #[test]
    fn info_field_reads_one_line() {
        let info = "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\n";
        assert_eq!(info_field(info, "master_link_status"), Some("up"));
        assert_eq!(info_field(info, "role"), Some("slave"));
        assert_eq!(info_field(info, "missing"), None);
    }
}
