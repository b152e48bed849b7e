//! [`Lab`]: the whole topology of docs/design.md on one machine, started in order and checked part
//! by part: g1 (primary, AOF, announcing `cluster_g1`), the proxy (`caplab proxy`, or a given
//! Toxiproxy) with its five proxies, g2 (AOF, announcing `cluster_g2`) replicating from g1
//! through `cluster_g1`, the sentinels s1..s3 watching g1 at `cluster_g1`, then app_cp and
//! app_ap wired through `g1`, `g2` and `sentinels`. Besides up and down: node actions, a
//! forced failover, and which node is primary now.
//!
//! Used by `caplab lab up` (which [`detach`](Lab::detach)es it), `caplab demo`, the scenario
//! runner's `--lab` and the tests (which [`down`](Lab::down) it, or let it drop: every process
//! it started is then killed by pid).

use std::path::Path;
use std::time::Duration;

use super::error::LabError;
use super::failover::force_failover;
use super::health::{wait_http_ok, wait_sentinels, wait_streaming};
use super::options::LabOptions;
use super::password::LabPassword;
use super::primary::{PrimaryReport, primary_by_sentinels};
use super::process::{LabProcess, ProcessRecord, proc_stat};
use super::record::LabRecord;
use super::redis_node::RedisNode;
use super::sentinel::Sentinel;
use super::start::{
    create_proxies, prepare, secret_key, start_app, start_node, start_proxy, start_sentinels,
};
use super::{LabNode, NodeAction};
use crate::faults::FaultDriver;

/// How long a stopped app or proxy gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running lab. Dropping it kills everything it started (unless detached).
#[derive(Debug)]
pub struct Lab {
    options: LabOptions,
    /// The nodes' and sentinels' password, also in `<dir>/redis.password`.
    password: LabPassword,
    faults: FaultDriver,
    g1: RedisNode,
    g2: RedisNode,
    sentinels: Vec<Sentinel>,
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

fn sentinel_record(sentinel: &Sentinel) -> Option<ProcessRecord> {
    let pid = sentinel.pid()?;
    Some(ProcessRecord {
        name: format!("sentinel {}", sentinel.spec().name),
        pid,
        start_time: proc_stat(pid).map(|(_, start)| start),
        log: sentinel.spec().log_file(),
    })
}

impl Lab {
    /// Starts the lab and waits until every part is healthy (each within
    /// `options.start_timeout`). On error, whatever was started is stopped again.
    pub async fn up(mut options: LabOptions) -> Result<Lab, LabError> {
        let dir = prepare(&mut options)?;
        let (ports, timeout) = (options.ports, options.start_timeout);
        let password = LabPassword::generate();
        password.write(&dir)?;
        let g1 = start_node(&options, &password, LabNode::G1).await?;
        let (faults, proxy) = start_proxy(&options).await?;
        create_proxies(&faults, &ports).await?;
        let g2 = start_node(&options, &password, LabNode::G2).await?;
        g2.wait_link_up(timeout).await?;
        wait_streaming(&g1.auth_url(), "caplab:lab:streaming", timeout).await?;
        let sentinels = start_sentinels(&options, &password).await?;
        wait_sentinels(&sentinels, timeout).await?;
        let secret = secret_key();
        let mut app_cp = start_app(&options, "cp", ports.app_cp, &secret)?;
        let mut app_ap = start_app(&options, "ap", ports.app_ap, &secret)?;
        for (app, port) in [(&mut app_cp, ports.app_cp), (&mut app_ap, ports.app_ap)] {
            wait_http_ok(app, &format!("http://127.0.0.1:{port}/health"), timeout).await?;
            wait_http_ok(app, &format!("http://127.0.0.1:{port}/ready"), timeout).await?;
        }

        let lab = Lab {
            record_file: RecordFile { dir, keep: false },
            options,
            password,
            faults,
            g1,
            g2,
            sentinels,
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
        processes.extend(self.sentinels.iter().filter_map(sentinel_record));
        processes.push(self.app_cp.record().clone());
        processes.push(self.app_ap.record().clone());
        LabRecord {
            dir: self.options.dir.clone(),
            ports: self.options.ports,
            toxiproxy_url: self.toxiproxy_url(),
            external_toxiproxy: self.options.toxiproxy_url.is_some(),
            processes,
            console_url: None,
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

    /// A node's own `redis-server`, not through a proxy, with the lab's password:
    /// `redis://:<password>@127.0.0.1:<port>`. For connecting; never show it.
    pub fn redis_url(&self, node: LabNode) -> String {
        self.node(node).auth_url()
    }

    /// The password of the lab's nodes and sentinels (also in `<dir>/redis.password`).
    pub fn redis_password(&self) -> &LabPassword {
        &self.password
    }

    /// The pid of a node's `redis-server`, `None` while it is killed.
    pub fn redis_pid(&self, node: LabNode) -> Option<u32> {
        self.node(node).pid()
    }

    /// The sentinels' addresses with the lab's password, `redis://:<password>@127.0.0.1:<port>`,
    /// s1 first. For connecting; never show them.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels.iter().map(Sentinel::auth_url).collect()
    }

    /// The sentinels' pids, s1 first (`None` for one that is not running).
    pub fn sentinel_pids(&self) -> Vec<Option<u32>> {
        self.sentinels.iter().map(Sentinel::pid).collect()
    }

    /// Where the apps ask the sentinels: `redis://127.0.0.1:<port of proxy sentinels>` (the
    /// apps read the password from its file).
    pub fn sentinels_proxy_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.options.ports.proxy_sentinels)
    }

    /// The primary now, according to the sentinels (the newest configuration any of them
    /// reports). An error when none answers or they name an address that is not a node's.
    pub async fn primary(&self) -> Result<LabNode, LabError> {
        let (primary, states) =
            primary_by_sentinels(&self.options.ports, Some(&self.password)).await;
        primary.ok_or_else(|| LabError::Failover {
            reason: format!(
                "the sentinels name no primary: {}",
                states
                    .iter()
                    .map(|s| match &s.view {
                        Ok(v) => format!("{} says {}:{}", s.name, v.addr.0, v.addr.1),
                        Err(e) => format!("{}: {e}", s.name),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        })
    }

    /// The sentinels' and the nodes' views of the primary, with any disagreement.
    pub async fn primary_report(&self) -> PrimaryReport {
        PrimaryReport::probe(&self.options.ports, Some(&self.password)).await
    }

    /// Forces a failover through the first running sentinel (s1 normally, the one the apps
    /// ask) and waits until it names the other node (see [`force_failover`]). Returns the
    /// new primary; the old one is turned into a replica by the sentinels, as after any
    /// failover.
    pub async fn failover(&self) -> Result<LabNode, LabError> {
        let sentinel = self
            .sentinels
            .iter()
            .find(|s| s.pid().is_some())
            .ok_or_else(|| LabError::Failover {
                reason: "no sentinel is running".into(),
            })?;
        force_failover(
            &self.options.ports,
            Some(&self.password),
            &sentinel.spec().name,
            sentinel.port(),
        )
        .await
    }

    fn node(&self, node: LabNode) -> &RedisNode {
        match node {
            LabNode::G1 => &self.g1,
            LabNode::G2 => &self.g2,
        }
    }

    /// Kills, freezes, resumes or restarts a node's process, whatever its role. `Restart`
    /// starts it again on the same port, data directory and announced address, from its
    /// config file (so in the role Sentinel last gave it), and returns once it answers PING.
    /// It does not wait for replication (the link may be cut on purpose), and never changes
    /// a role itself: a former primary that comes back as a primary is turned into a
    /// replica by the sentinels. `lab.json` is rewritten with the new pid.
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

    /// Stops everything the lab started (apps, sentinels, proxy, then g2 and g1) and removes
    /// `lab.json`. Every process is stopped even if one fails; the first error is returned.
    /// The sentinels stop before the nodes, so none of them fails over a node going down.
    pub async fn down(mut self) -> Result<(), LabError> {
        let mut first: Option<LabError> = None;
        for app in [&mut self.app_cp, &mut self.app_ap] {
            if let Err(e) = app.stop(STOP_GRACE).await {
                first.get_or_insert(e);
            }
        }
        for sentinel in &mut self.sentinels {
            if let Err(e) = sentinel.kill() {
                first.get_or_insert(e.into());
            }
        }
        if let Some(proxy) = self.proxy.as_mut()
            && let Err(e) = proxy.stop(STOP_GRACE).await
        {
            first.get_or_insert(e);
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
        for sentinel in self.sentinels.drain(..) {
            let _ = sentinel.detach();
        }
        if let Some(proxy) = self.proxy.take() {
            proxy.detach();
        }
        self.app_cp.detach();
        self.app_ap.detach();
        record
    }
}
