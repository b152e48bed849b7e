//! Real Redis Sentinel processes: start, probe, kill and restart them, and ask them which node
//! is the primary.
//!
//! Beside [`super::redis_node`], under the whole data path: the lab (and the failover tests)
//! run three sentinels watching the g1/g2 pair under one master name, as docs/design.md
//! ("Topology") describes. A sentinel is `redis-server <conf> --sentinel` (the mode is built
//! into `redis-server`, so no other package is needed) with a config file of its own in its
//! directory, which Sentinel rewrites as it learns; it listens on loopback and is stopped by
//! pid, never by name.

use std::path::{Path, PathBuf};

use fred::interfaces::ClientLike;
use fred::types::{ClusterHash, CustomCommand, Value};

use super::redis_node::{RedisNodeError, probe_client};
use super::redis_process::{Launch, RedisProcess};

/// The master name every caplab sentinel watches.
pub const MASTER_NAME: &str = "caplab";
/// Sentinels that must agree a primary is down: two of three.
pub const QUORUM: u32 = 2;
/// How long a primary may be silent before a sentinel takes it as down.
pub const DOWN_AFTER_MS: u64 = 1000;
/// Sentinel's failover timeout; a failed attempt is retried after twice this.
pub const FAILOVER_TIMEOUT_MS: u64 = 5000;

/// What a sentinel should be.
#[derive(Debug, Clone)]
pub struct SentinelSpec {
    /// `s1`, `s2` or `s3` (messages and file names).
    pub name: String,
    /// Loopback port to listen on.
    pub port: u16,
    /// Directory for its config file and log.
    pub dir: PathBuf,
    /// The address it watches the primary on (in the lab, the primary's `cluster_*` proxy).
    pub monitor: (String, u16),
    /// Start it in its own process group (`caplab lab up`).
    pub own_process_group: bool,
    /// `Some(password)`: it authenticates to the nodes with it (`sentinel auth-pass`) and its
    /// own clients must `AUTH` with it too (`requirepass`).
    pub password: Option<String>,
}

impl SentinelSpec {
    /// A sentinel on `port` in `dir`, watching the primary at `host:port`.
    pub fn new(name: &str, port: u16, dir: &Path, monitor_host: &str, monitor_port: u16) -> Self {
        SentinelSpec {
            name: name.to_string(),
            port,
            dir: dir.to_path_buf(),
            monitor: (monitor_host.to_string(), monitor_port),
            own_process_group: false,
            password: None,
        }
    }

    /// Its config file (Sentinel rewrites it: the file is its memory across a restart).
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("sentinel.conf")
    }

    /// Its log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join(format!("sentinel-{}.log", self.name))
    }

    fn launch(&self) -> Launch<'_> {
        Launch {
            name: &self.name,
            port: self.port,
            password: self.password.as_deref(),
            config_file: self.config_file(),
            log_file: self.log_file(),
            sentinel: true,
            own_process_group: self.own_process_group,
        }
    }

    /// The first config: where to listen, what to watch, and the lab's short timings.
    pub fn config_text(&self) -> String {
        let (host, port) = &self.monitor;
        let auth = match &self.password {
            Some(password) => format!(
                "requirepass \"{password}\"\nsentinel auth-pass {MASTER_NAME} \"{password}\"\n"
            ),
            None => String::new(),
        };
        // Bound to loopback only: protected mode on, as Redis ships it, changes nothing here.
        format!(
            "port {port_self}\nbind 127.0.0.1\nprotected-mode yes\ndaemonize no\n\
             dir {dir}\nlogfile {log}\n\
             sentinel monitor {MASTER_NAME} {host} {port} {QUORUM}\n\
             sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
             sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n{auth}",
            port_self = self.port,
            dir = self.dir.display(),
            log = self.log_file().display(),
        )
    }
}

/// A running sentinel this process started. Dropping it kills the process (SIGKILL by pid)
/// unless it was [`detach`](Sentinel::detach)ed.
#[derive(Debug)]
pub struct Sentinel {
    spec: SentinelSpec,
    process: RedisProcess,
}

impl Sentinel {
    /// Writes a fresh config (forgetting what an earlier sentinel in `dir` learned), starts
    /// the sentinel and waits until it answers PING.
    pub async fn start(spec: SentinelSpec) -> Result<Sentinel, RedisNodeError> {
        let dir_err = |source| RedisNodeError::Dir {
            name: spec.name.clone(),
            dir: spec.dir.clone(),
            source,
        };
        std::fs::create_dir_all(&spec.dir).map_err(dir_err)?;
        std::fs::write(spec.config_file(), spec.config_text()).map_err(dir_err)?;
        let process = RedisProcess::spawn(spec.launch()).await?;
        Ok(Sentinel { spec, process })
    }

    /// What it was started as.
    pub fn spec(&self) -> &SentinelSpec {
        &self.spec
    }

    /// Its pid, `None` once killed.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.spec.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.process.url()
    }

    /// The URL with the password when the sentinel has one, for connecting; never show it.
    pub fn auth_url(&self) -> String {
        self.process.auth_url()
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn kill(&mut self) -> Result<(), RedisNodeError> {
        self.process.kill()
    }

    /// Kills it if it runs and starts it again from the config it rewrote (it remembers the
    /// current primary and the other sentinels, as a restarted sentinel does).
    pub async fn restart(&mut self) -> Result<(), RedisNodeError> {
        self.process.kill()?;
        self.process = RedisProcess::spawn(self.spec.launch()).await?;
        Ok(())
    }

    /// Leaves the process running after this handle is gone. Returns the pid.
    pub fn detach(self) -> Option<u32> {
        self.process.detach()
    }
}

/// What a sentinel says of the primary (`SENTINEL MASTER <name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelView {
    /// The address it watches the primary on.
    pub addr: (String, u16),
    /// The primary's `run_id` as the sentinel last saw it (empty before its first INFO).
    pub run_id: String,
    /// The configuration epoch: it grows by one at each failover.
    pub config_epoch: u64,
    /// Its flags, such as `master`, `s_down`, `o_down`.
    pub flags: String,
    /// How many other sentinels it knows.
    pub other_sentinels: u32,
    /// How many replicas of the primary it knows.
    pub replicas: u32,
}

impl SentinelView {
    /// Reads the flat field/value list `SENTINEL MASTER` answers.
    pub fn parse(reply: Value) -> Result<SentinelView, String> {
        let Value::Array(items) = reply else {
            return Err(format!("SENTINEL MASTER answered {reply:?}, not a list"));
        };
        let mut fields = std::collections::HashMap::new();
        let mut iter = items.into_iter();
        while let (Some(name), Some(value)) = (iter.next(), iter.next()) {
            if let (Some(name), Some(value)) = (name.as_string(), value.as_string()) {
                fields.insert(name, value);
            }
        }
        let get = |name: &str| {
            fields
                .get(name)
                .cloned()
                .ok_or_else(|| format!("SENTINEL MASTER has no field {name:?}"))
        };
        let number = |name: &str| -> Result<u64, String> {
            get(name)?
                .parse()
                .map_err(|_| format!("SENTINEL MASTER field {name:?} is not a number"))
        };
        let port = u16::try_from(number("port")?)
            .map_err(|_| "SENTINEL MASTER port is out of range".to_string())?;
        Ok(SentinelView {
            addr: (get("ip")?, port),
            run_id: get("runid").unwrap_or_default(),
            config_epoch: number("config-epoch")?,
            flags: get("flags")?,
            other_sentinels: u32::try_from(number("num-other-sentinels")?).unwrap_or(u32::MAX),
            replicas: u32::try_from(number("num-slaves")?).unwrap_or(u32::MAX),
        })
    }
}

impl SentinelView {
    /// Whether this sentinel can take part in a failover of the primary: it knows the other
    /// two sentinels and at least one replica.
    pub fn ready(&self) -> bool {
        self.other_sentinels >= 2 && self.replicas >= 1 && !self.run_id.is_empty()
    }
}

/// Asks the sentinel at `url` what it knows of [`MASTER_NAME`].
pub async fn sentinel_view(url: &str) -> Result<SentinelView, RedisNodeError> {
    let client = probe_client(url).await?;
    let view = sentinel_view_on(&client, url).await;
    let _ = client.quit().await;
    view
}

/// [`sentinel_view`] over a client already connected to the sentinel at `url` (which names
/// it in errors), for a caller that keeps its connection.
pub async fn sentinel_view_on(
    client: &fred::prelude::Client,
    url: &str,
) -> Result<SentinelView, RedisNodeError> {
    let command = CustomCommand::new_static("SENTINEL", ClusterHash::Random, false);
    let reply: Result<Value, _> = client
        .custom(
            command,
            vec![Value::from("MASTER"), Value::from(MASTER_NAME)],
        )
        .await;
    let probe = |reason: String| RedisNodeError::Probe {
        addr: crate::primary::sentinels::display_addr(url),
        reason,
    };
    SentinelView::parse(reply.map_err(|e| probe(e.to_string()))?).map_err(probe)
}

/// What a sentinel knows of each replica of [`MASTER_NAME`] (`SENTINEL REPLICAS`), one line
/// each: address, flags, link status, how long the link has been down and how old its last
/// INFO is. For error messages: this is what Sentinel weighs when it picks a replica.
pub async fn sentinel_replicas(url: &str) -> Result<Vec<String>, RedisNodeError> {
    let client = probe_client(url).await?;
    let command = CustomCommand::new_static("SENTINEL", ClusterHash::Random, false);
    let reply: Result<Value, _> = client
        .custom(
            command,
            vec![Value::from("REPLICAS"), Value::from(MASTER_NAME)],
        )
        .await;
    let _ = client.quit().await;
    let reply = reply.map_err(|e| RedisNodeError::Probe {
        addr: crate::primary::sentinels::display_addr(url),
        reason: e.to_string(),
    })?;
    let Value::Array(replicas) = reply else {
        return Ok(Vec::new());
    };
    Ok(replicas
        .into_iter()
        .map(|replica| {
            let Value::Array(items) = replica else {
                return format!("{replica:?}");
            };
            let mut fields = std::collections::HashMap::new();
            let mut iter = items.into_iter();
            while let (Some(name), Some(value)) = (iter.next(), iter.next()) {
                if let (Some(name), Some(value)) = (name.as_string(), value.as_string()) {
                    fields.insert(name, value);
                }
            }
            let get = |name: &str| fields.get(name).map_or("?", String::as_str);
            format!(
                "{}:{} flags {}, link {}, link down {} ms, last INFO {} ms ago",
                get("ip"),
                get("port"),
                get("flags"),
                get("master-link-status"),
                get("master-link-down-time"),
                get("info-refresh"),
            )
        })
        .collect())
}

/// Asks the sentinel at `url` to fail over [`MASTER_NAME`] now (`SENTINEL FAILOVER`), without
/// asking the other sentinels for agreement. It answers at once; the promotion follows within
/// a second or two. A refusal (`-INPROG` a failover is already running, `-NOGOODSLAVE` no
/// replica can be promoted) is a [`RedisNodeError::Probe`] carrying Sentinel's words.
pub async fn sentinel_failover(url: &str) -> Result<(), RedisNodeError> {
    let client = probe_client(url).await?;
    let command = CustomCommand::new_static("SENTINEL", ClusterHash::Random, false);
    let reply: Result<Value, _> = client
        .custom(
            command,
            vec![Value::from("FAILOVER"), Value::from(MASTER_NAME)],
        )
        .await;
    let _ = client.quit().await;
    match reply {
        Ok(_) => Ok(()),
        Err(e) => Err(RedisNodeError::Probe {
            addr: crate::primary::sentinels::display_addr(url),
            reason: format!("SENTINEL FAILOVER {MASTER_NAME}: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_watches_the_primary_with_the_lab_timings() {
        let spec = SentinelSpec::new("s1", 7011, Path::new("/tmp/s1"), "127.0.0.1", 7001);
        let text = spec.config_text();
        for line in [
            "port 7011",
            "bind 127.0.0.1",
            "sentinel monitor caplab 127.0.0.1 7001 2",
            "sentinel down-after-milliseconds caplab 1000",
            "sentinel failover-timeout caplab 5000",
            "sentinel parallel-syncs caplab 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in {text}"
            );
        }
    }

    #[test]
    fn a_master_reply_is_read_field_by_field() -> Result<(), String> {
        let pairs = [
            ("name", "caplab"),
            ("ip", "127.0.0.1"),
            ("port", "27002"),
            ("runid", "abc"),
            ("flags", "master"),
            ("config-epoch", "3"),
            ("num-other-sentinels", "2"),
            ("num-slaves", "1"),
        ];
        let reply = Value::Array(
            pairs
                .iter()
                .flat_map(|(n, v)| [Value::from(*n), Value::from(*v)])
                .collect(),
        );
        let view = SentinelView::parse(reply)?;
        assert_eq!(view.addr, ("127.0.0.1".to_string(), 27002));
        assert_eq!(view.run_id, "abc");
        assert_eq!(view.config_epoch, 3);
        assert_eq!(view.other_sentinels, 2);
        assert_eq!(view.replicas, 1);
        assert!(SentinelView::parse(Value::from("nope")).is_err());
        Ok(())
    }
}
