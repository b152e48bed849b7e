//! [`Lab`]: the whole topology of docs/design.md on one machine, started in order and checked part
//! by part: g1 (primary, AOF), the proxy (`caplab proxy`, or a given Toxiproxy) with `g1`,
//! `g2` and `replication`, g2 replicating from g1 through `replication`, then app_cp and
//! app_ap wired through `g1` and `g2`.
//!
//! Used by `caplab lab up` (which [`detach`](Lab::detach)es it), `caplab demo`, the scenario
//! runner's `--lab` and the tests (which [`down`](Lab::down) it, or let it drop: every process
//! it started is then killed by pid).

use std::path::Path;
use std::time::Duration;

use super::error::LabError;
use super::health::{wait_http_ok, wait_proxy, wait_streaming};
use super::options::LabOptions;
use super::ports::ensure_free;
use super::process::{LabProcess, ProcessRecord, proc_stat};
use super::record::LabRecord;
use super::redis_node::{RedisNode, RedisNodeError, RedisNodeSpec};
use super::{LabNode, NodeAction};
use crate::faults::{FaultDriver, G1, G2, ProxySpec, REPLICATION};

/// How long a stopped app or proxy gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running lab. Dropping it kills everything it started (unless detached).
#[derive(Debug)]
pub struct Lab {
    options: LabOptions,
    faults: FaultDriver,
    g1: RedisNode,
    g2: RedisNode,
    proxy: Option<LabProcess>,
    app_cp: LabProcess,
    app_ap: LabProcess,
    record_file: RecordFile,
}

/// Removes `lab.json` when the lab goes away without being detached.
#[derive(Debug)]
struct RecordFile {
    dir: std::path::PathBuf,
    keep: bool,
}

impl Drop for RecordFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = LabRecord::remove(&self.dir);
        }
    }
}

fn redis_record(node: &RedisNode) -> Option<ProcessRecord> {
    let pid = node.pid()?;
    Some(ProcessRecord {
        name: format!("redis {}", node.spec().name),
        pid,
        start_time: proc_stat(pid).map(|(_, start)| start),
        log: node.spec().log_file(),
    })
}

fn redis_installed() -> Result<(), LabError> {
    match std::process::Command::new("redis-server")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(RedisNodeError::NotInstalled.into())
        }
        _ => Ok(()),
    }
}

impl Lab {
    /// Starts the lab and waits until every part is healthy (each within
    /// `options.start_timeout`). On error, whatever was started is stopped again.
    pub async fn up(mut options: LabOptions) -> Result<Lab, LabError> {
        redis_installed()?;
        let dir_err = |e: std::io::Error| LabError::File {
            path: options.dir.clone(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(&options.dir).map_err(dir_err)?;
        // redis-server changes into its --dir before it opens its log: paths must be absolute.
        let dir = std::fs::canonicalize(&options.dir).map_err(dir_err)?;
        options.dir = dir.clone();
        if let Some(record) = LabRecord::read(&dir)? {
            let running = record.running();
            if !running.is_empty() {
                let pids: Vec<String> = running.iter().map(|p| p.pid.to_string()).collect();
                return Err(LabError::AlreadyUp {
                    dir,
                    pids: pids.join(", "),
                });
            }
            LabRecord::remove(&dir)?;
        }
        let ports = options.ports;
        let external = options.toxiproxy_url.is_some();
        for (what, port) in ports.named() {
            let on_external = what.starts_with("proxy");
            if !(external && on_external) {
                ensure_free(what, port)?;
            }
        }
        let timeout = options.start_timeout;
        let group = options.detached;

        let mut g1_spec =
            RedisNodeSpec::primary(LabNode::G1.name(), ports.redis_g1, &dir.join("g1"));
        g1_spec.append_only = true;
        g1_spec.own_process_group = group;
        let g1 = RedisNode::start(g1_spec).await?;

        let (faults, proxy) = match &options.toxiproxy_url {
            Some(url) => {
                let faults = FaultDriver::new(url).map_err(|source| LabError::Faults {
                    part: "the Toxiproxy address".into(),
                    source,
                })?;
                faults
                    .wait_until_up(timeout)
                    .await
                    .map_err(|source| LabError::Faults {
                        part: format!("external Toxiproxy at {url}"),
                        source,
                    })?;
                (faults, None)
            }
            None => {
                let mut args = vec!["proxy".into(), "--port".into(), ports.proxy_api.to_string()];
                args.extend(log_file_args(&dir, "proxy.log"));
                let mut proxy = LabProcess::spawn(
                    "proxy",
                    &options.caplab_bin,
                    &args,
                    &[],
                    dir.join("proxy.stderr.log"),
                    group,
                )?
                .log_at(dir.join("proxy.log"));
                let api = format!("127.0.0.1:{}", ports.proxy_api);
                let faults = FaultDriver::new(&api).map_err(|source| LabError::Faults {
                    part: "the proxy API address".into(),
                    source,
                })?;
                wait_proxy(&faults, &mut proxy, timeout).await?;
                (faults, Some(proxy))
            }
        };
        let local = |port: u16| format!("127.0.0.1:{port}");
        faults
            .ensure_lab_proxies(&[
                ProxySpec::new(G1, &local(ports.proxy_g1), &local(ports.redis_g1)),
                ProxySpec::new(G2, &local(ports.proxy_g2), &local(ports.redis_g2)),
                ProxySpec::new(
                    REPLICATION,
                    &local(ports.proxy_replication),
                    &local(ports.redis_g1),
                ),
            ])
            .await
            .map_err(|source| LabError::Faults {
                part: "creating the proxies g1, g2, replication".into(),
                source,
            })?;

        let mut g2_spec = RedisNodeSpec::replica(
            LabNode::G2.name(),
            ports.redis_g2,
            &dir.join("g2"),
            "127.0.0.1",
            ports.proxy_replication,
        );
        g2_spec.own_process_group = group;
        let g2 = RedisNode::start(g2_spec).await?;
        g2.wait_link_up(timeout).await?;
        wait_streaming(&g1.url(), "caplab:lab:streaming", timeout).await?;

        let secret = secret_key();
        let mut app_cp = start_app(&options, "cp", ports.app_cp, &secret)?;
        let mut app_ap = start_app(&options, "ap", ports.app_ap, &secret)?;
        for (app, port) in [(&mut app_cp, ports.app_cp), (&mut app_ap, ports.app_ap)] {
            wait_http_ok(app, &format!("http://127.0.0.1:{port}/health"), timeout).await?;
            wait_http_ok(app, &format!("http://127.0.0.1:{port}/ready"), timeout).await?;
        }

        let lab = Lab {
            record_file: RecordFile {
                dir: dir.clone(),
                keep: false,
            },
            options,
            faults,
            g1,
            g2,
            proxy,
            app_cp,
            app_ap,
        };
        lab.record().write()?;
        Ok(lab)
    }

    /// What runs where, as `lab.json` says it.
    pub fn record(&self) -> LabRecord {
        let mut processes: Vec<ProcessRecord> = Vec::new();
        processes.extend(redis_record(&self.g1));
        processes.extend(self.proxy.as_ref().map(|p| p.record().clone()));
        processes.extend(redis_record(&self.g2));
        processes.push(self.app_cp.record().clone());
        processes.push(self.app_ap.record().clone());
        LabRecord {
            dir: self.options.dir.clone(),
            ports: self.options.ports,
            toxiproxy_url: self.toxiproxy_url(),
            external_toxiproxy: self.options.toxiproxy_url.is_some(),
            processes,
        }
    }

    /// What the lab was started with.
    pub fn options(&self) -> &LabOptions {
        &self.options
    }

    /// The lab's directory.
    pub fn dir(&self) -> &Path {
        &self.options.dir
    }

    /// app_cp, `http://127.0.0.1:<port>`.
    pub fn cp_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.options.ports.app_cp)
    }

    /// app_ap, `http://127.0.0.1:<port>`.
    pub fn ap_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.options.ports.app_ap)
    }

    /// The Toxiproxy API, `http://host:port`.
    pub fn toxiproxy_url(&self) -> String {
        format!("http://{}", self.faults.api())
    }

    /// A fault driver for the lab's Toxiproxy.
    pub fn faults(&self) -> &FaultDriver {
        &self.faults
    }

    /// A node's own `redis-server`, not through a proxy: `redis://127.0.0.1:<port>`.
    pub fn redis_url(&self, node: LabNode) -> String {
        self.node(node).url()
    }

    /// The pid of a node's `redis-server`, `None` while it is killed.
    pub fn redis_pid(&self, node: LabNode) -> Option<u32> {
        self.node(node).pid()
    }

    fn node(&self, node: LabNode) -> &RedisNode {
        match node {
            LabNode::G1 => &self.g1,
            LabNode::G2 => &self.g2,
        }
    }

    /// Kills, freezes, resumes or restarts a node's process. `Restart` starts it again on the
    /// same port and data directory and returns once it answers PING (g2 then resyncs from
    /// g1 through `replication` by itself; this does not wait for that, since the link may be
    /// cut on purpose). `lab.json` is rewritten with the new pid.
    pub async fn node_action(&mut self, node: LabNode, action: NodeAction) -> Result<(), LabError> {
        let target = match node {
            LabNode::G1 => &mut self.g1,
            LabNode::G2 => &mut self.g2,
        };
        match action {
            NodeAction::Kill => target.kill()?,
            NodeAction::Stop => target.pause()?,
            NodeAction::Continue => target.resume()?,
            NodeAction::Restart => {
                // A frozen process would ignore the SIGKILL's effect on its sockets until it
                // is reaped; resume it first so the restart is clean.
                target.resume()?;
                target.restart().await?;
            }
        }
        self.record().write()
    }

    /// Stops everything the lab started (apps, proxy, then g2 and g1) and removes
    /// `lab.json`. Every process is stopped even if one fails; the first error is returned.
    pub async fn down(mut self) -> Result<(), LabError> {
        let mut first: Option<LabError> = None;
        for app in [&mut self.app_cp, &mut self.app_ap] {
            if let Err(e) = app.stop(STOP_GRACE).await {
                first.get_or_insert(e);
            }
        }
        if let Some(proxy) = self.proxy.as_mut() {
            if let Err(e) = proxy.stop(STOP_GRACE).await {
                first.get_or_insert(e);
            }
        }
        for node in [&mut self.g2, &mut self.g1] {
            let _ = node.resume();
            if let Err(e) = node.kill() {
                first.get_or_insert(e.into());
            }
        }
        if let Err(e) = LabRecord::remove(&self.options.dir) {
            first.get_or_insert(e);
        }
        first.map_or(Ok(()), Err)
    }

    /// Leaves every process running (in its own process group when the lab was started
    /// `detached`) and `lab.json` in place, for `caplab lab down` to stop later.
    pub fn detach(mut self) -> LabRecord {
        let record = self.record();
        self.record_file.keep = true;
        let _ = self.g1.detach();
        let _ = self.g2.detach();
        if let Some(proxy) = self.proxy.take() {
            proxy.detach();
        }
        self.app_cp.detach();
        self.app_ap.detach();
        record
    }
}

fn secret_key() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn start_app(
    options: &LabOptions,
    mode: &str,
    port: u16,
    secret: &str,
) -> Result<LabProcess, LabError> {
    let ports = options.ports;
    let mut args: Vec<String> = [
        "serve",
        "--mode",
        mode,
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--redis-g1-url",
        &format!("redis://127.0.0.1:{}", ports.proxy_g1),
        "--redis-g2-url",
        &format!("redis://127.0.0.1:{}", ports.proxy_g2),
        "--instance-id",
        &format!("lab-{mode}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Logs rotate by size; the audit trail has its own file; no rate limit in the lab.
    args.extend(log_file_args(&options.dir, &format!("app_{mode}.log")));
    args.extend([
        "--audit-log".to_string(),
        options
            .dir
            .join(format!("audit_{mode}.log"))
            .display()
            .to_string(),
        "--rate-limit-per-minute".into(),
        "0".into(),
        "--rate-limit-per-hour".into(),
        "0".into(),
    ]);
    args.extend(options.app_args.iter().cloned());
    LabProcess::spawn(
        &format!("app_{mode}"),
        &options.caplab_bin,
        &args,
        &[("SECRET_KEY", secret)],
        options.dir.join(format!("app_{mode}.stderr.log")),
        options.detached,
    )
    .map(|process| process.log_at(options.dir.join(format!("app_{mode}.log"))))
}

/// A lab process logs to `dir/name`, rotated by size (10 MiB, 3 files); its stderr file then
/// holds only what comes before logging starts (a bad flag) or a crash.
fn log_file_args(dir: &Path, name: &str) -> [String; 2] {
    ["--log-file".into(), dir.join(name).display().to_string()]
}
