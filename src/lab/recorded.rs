//! [`RecordedLab`]: a lab known only from its `lab.json`, acted on by pid. What a process
//! other than the one that started the lab (the console, a later command) needs to kill,
//! freeze, resume and restart its nodes and to force a failover.
//!
//! Beside the data path: process control, like [`super::Lab::node_action`], which it mirrors
//! for a detached lab. A pid is only signalled while its start time matches the recorded one.
//! A restart starts `redis-server` again from the node's own config file in its directory
//! (the file `up` wrote and Sentinel rewrites at a failover), so the node comes back on the
//! same port, data and announced address, in the role Sentinel last gave it, in a process
//! group of its own; `lab.json` is rewritten with the new pid, so `caplab lab down` stops it.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

use super::error::LabError;
use super::failover::force_failover;
use super::node_action::{LabNode, NodeAction};
use super::password::LabPassword;
use super::process::{ProcessRecord, proc_stat};
use super::record::LabRecord;
use super::redis_node::{RedisNode, RedisNodeSpec};

/// What a node's recorded process is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeProcess {
    /// It runs.
    Running,
    /// It is frozen (SIGSTOP).
    Stopped,
    /// It is gone (killed, crashed, or never recorded).
    Down,
}

/// A lab read from `<dir>/lab.json`.
#[derive(Debug, Clone)]
pub struct RecordedLab {
    record: LabRecord,
    /// The lab's Redis password, from `<dir>/redis.password` (`None`: a lab without one).
    password: Option<LabPassword>,
}

impl RecordedLab {
    /// Reads the lab recorded in `dir` and its Redis password file; [`LabError::NotUp`] when
    /// there is no lab.
    pub fn open(dir: &Path) -> Result<RecordedLab, LabError> {
        let record = LabRecord::read(dir)?.ok_or_else(|| LabError::NotUp {
            dir: dir.to_path_buf(),
        })?;
        let password = LabPassword::read(dir)?;
        Ok(RecordedLab::from_record(record, password))
    }

    /// A lab from a record and a password already read.
    pub fn from_record(record: LabRecord, password: Option<LabPassword>) -> RecordedLab {
        RecordedLab { record, password }
    }

    /// The lab's Redis password, `None` for a lab started without one.
    pub fn password(&self) -> Option<&LabPassword> {
        self.password.as_ref()
    }

    /// The record as this handle knows it (with the pids of the nodes it restarted).
    pub fn record(&self) -> &LabRecord {
        &self.record
    }

    fn process(&self, node: LabNode) -> Option<&ProcessRecord> {
        let name = format!("redis {node}");
        self.record.processes.iter().find(|p| p.name == name)
    }

    /// Whether a node's recorded process runs, is frozen or is gone (from `/proc`, no Redis
    /// traffic).
    pub fn node_process(&self, node: LabNode) -> NodeProcess {
        match self.process(node) {
            Some(p) if p.is_running() => match proc_stat(p.pid) {
                Some(('T' | 't', _)) => NodeProcess::Stopped,
                _ => NodeProcess::Running,
            },
            _ => NodeProcess::Down,
        }
    }

    /// Kills (SIGKILL), freezes (SIGSTOP), resumes (SIGCONT) or restarts a node, whatever its
    /// role. A restart kills the node if it runs and starts it again from its config file,
    /// returning once it answers PING; it never changes a role itself.
    pub async fn node_action(&mut self, node: LabNode, action: NodeAction) -> Result<(), LabError> {
        match action {
            NodeAction::Kill => self.signal(node, Signal::SIGKILL).await,
            NodeAction::Stop => self.signal(node, Signal::SIGSTOP).await,
            NodeAction::Continue => self.signal(node, Signal::SIGCONT).await,
            NodeAction::Restart => {
                self.signal(node, Signal::SIGCONT).await?;
                self.signal(node, Signal::SIGKILL).await?;
                self.start(node).await
            }
        }
    }

    /// Sends `signal` to the node's recorded process if it is still that process; after a
    /// SIGKILL waits until it is gone (and reaps it when this process started it).
    async fn signal(&self, node: LabNode, signal: Signal) -> Result<(), LabError> {
        let Some(process) = self.process(node).filter(|p| p.is_running()) else {
            return Ok(());
        };
        let pid = i32::try_from(process.pid).map_err(|_| LabError::Stop {
            part: process.name.clone(),
            pid: process.pid,
            reason: "pid out of range".into(),
        })?;
        match kill(Pid::from_raw(pid), signal) {
            Ok(()) | Err(nix::Error::ESRCH) => {}
            Err(e) => {
                return Err(LabError::Stop {
                    part: process.name.clone(),
                    pid: process.pid,
                    reason: format!("{signal}: {e}"),
                });
            }
        }
        if signal != Signal::SIGKILL {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            // A node this process restarted earlier is its child: reap it. Any other pid is
            // not (ECHILD), and its parent reaps it.
            let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
            if !process.is_running() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LabError::Stop {
                    part: process.name.clone(),
                    pid: process.pid,
                    reason: "still running 5 s after SIGKILL".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the node from its config file and records its new pid in `lab.json` (read
    /// again first, so what another process added meanwhile is kept).
    async fn start(&mut self, node: LabNode) -> Result<(), LabError> {
        let dir = self.record.dir.join(node.name());
        let port = match node {
            LabNode::G1 => self.record.ports.redis_g1,
            LabNode::G2 => self.record.ports.redis_g2,
        };
        let mut spec = RedisNodeSpec::primary(node.name(), port, &dir);
        spec.own_process_group = true;
        // The config file holds `requirepass`; the spec's password is for the PING that
        // waits for the node.
        spec.password = self.password.as_ref().map(|p| p.expose().to_string());
        let log = spec.log_file();
        let started = RedisNode::start_from_config_file(spec).await?;
        let Some(pid) = started.detach() else {
            return Err(LabError::File {
                path: log,
                reason: format!("redis {node} started but has no pid"),
            });
        };
        let fresh = ProcessRecord {
            name: format!("redis {node}"),
            pid,
            start_time: proc_stat(pid).map(|(_, start)| start),
            log,
        };
        let mut on_disk = LabRecord::read(&self.record.dir)?.unwrap_or_else(|| self.record.clone());
        for record in [&mut on_disk, &mut self.record] {
            match record.processes.iter_mut().find(|p| p.name == fresh.name) {
                Some(p) => *p = fresh.clone(),
                None => record.processes.push(fresh.clone()),
            }
        }
        on_disk.write()
    }

    /// Forces a failover through the first running sentinel and waits until it names the
    /// other node (see [`force_failover`]); returns the new primary.
    pub async fn failover(&self) -> Result<LabNode, LabError> {
        let running = self.record.running();
        let (name, port) = self
            .record
            .ports
            .sentinels()
            .into_iter()
            .find(|(name, _)| running.iter().any(|p| p.name == format!("sentinel {name}")))
            .ok_or_else(|| LabError::Failover {
                reason: "no sentinel of the lab is running".into(),
            })?;
        force_failover(&self.record.ports, self.password.as_ref(), name, port).await
    }
}

/// Node steps of a scenario run against a recorded lab.
impl crate::scenario::LabControl for RecordedLab {
    async fn node_action(&mut self, node: LabNode, action: NodeAction) -> Result<(), String> {
        RecordedLab::node_action(self, node, action)
            .await
            .map_err(|e| e.to_string())
    }

    async fn failover(&mut self) -> Result<LabNode, String> {
        RecordedLab::failover(self).await.map_err(|e| e.to_string())
    }
}
