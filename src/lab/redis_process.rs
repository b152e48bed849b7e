//! One `redis-server` process this process started, a node or a sentinel: spawned from its
//! config file, waited for until it answers PING, signalled by pid, killed and reaped, or left
//! running for the lab to stop later.
//!
//! Under [`super::redis_node`] and [`super::sentinel`]: they own what the process is (its spec
//! and config file, which they write); this file owns only the process. Dropping a
//! [`RedisProcess`] kills it (SIGKILL by pid) unless it was [`detach`](RedisProcess::detach)ed.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::redis_node::{RedisNodeError, ping};

/// How long a freshly started process may take to answer PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start one `redis-server`: what the node's or sentinel's spec says.
#[derive(Debug)]
pub(crate) struct Launch<'a> {
    /// Its name in messages (`g1`, `s2`).
    pub name: &'a str,
    /// Its loopback port.
    pub port: u16,
    /// The password its clients must `AUTH` with, if any.
    pub password: Option<&'a str>,
    /// The config file it starts from.
    pub config_file: PathBuf,
    /// Its log file (named in errors).
    pub log_file: PathBuf,
    /// Start it as a sentinel (`--sentinel`).
    pub sentinel: bool,
    /// Start it in its own process group, so a Ctrl-C of the starting terminal misses it.
    pub own_process_group: bool,
}

/// A running `redis-server` (a node or a sentinel) started by this process.
#[derive(Debug)]
pub(crate) struct RedisProcess {
    name: String,
    port: u16,
    password: Option<String>,
    log_file: PathBuf,
    child: Option<Child>,
}

impl RedisProcess {
    /// Starts `redis-server <config> [--sentinel]` and waits until it answers PING.
    pub(crate) async fn spawn(launch: Launch<'_>) -> Result<Self, RedisNodeError> {
        let mut command = Command::new("redis-server");
        if launch.own_process_group {
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
        }
        command.arg(&launch.config_file);
        if launch.sentinel {
            command.arg("--sentinel");
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => RedisNodeError::NotInstalled,
                _ => RedisNodeError::Spawn {
                    name: launch.name.to_string(),
                    source,
                },
            })?;
        let mut process = RedisProcess {
            name: launch.name.to_string(),
            port: launch.port,
            password: launch.password.map(str::to_string),
            log_file: launch.log_file,
            child: Some(child),
        };
        process.wait_ready().await?;
        Ok(process)
    }

    async fn wait_ready(&mut self) -> Result<(), RedisNodeError> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(self.not_ready(format!("the process exited ({status})")));
            }
            let last = match ping(&self.auth_url()).await {
                Ok(()) => return Ok(()),
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(self.not_ready(format!("no PONG within {START_TIMEOUT:?}: {last}")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn not_ready(&self, reason: String) -> RedisNodeError {
        RedisNodeError::NotReady {
            name: self.name.clone(),
            port: self.port,
            reason,
            log: self.log_file.display().to_string(),
        }
    }

    /// Its pid, `None` once killed or detached.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `redis://127.0.0.1:<port>` (without the password: safe to show).
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The URL with the password when there is one (`redis://:<password>@...`), for
    /// connecting; never show it (probe errors name the address only).
    pub(crate) fn auth_url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => self.url(),
        }
    }

    /// Sends `signal` (named `label` in errors); nothing when the process is gone.
    pub(crate) fn signal(&self, signal: Signal, label: &'static str) -> Result<(), RedisNodeError> {
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        let error = |source| RedisNodeError::Signal {
            name: self.name.clone(),
            pid,
            signal: label,
            source,
        };
        let raw = i32::try_from(pid).map_err(|_| error(nix::Error::EINVAL))?;
        kill(Pid::from_raw(raw), signal).map_err(error)
    }

    /// Kills the process (SIGKILL) and reaps it: connections to it are refused afterwards.
    pub(crate) fn kill(&mut self) -> Result<(), RedisNodeError> {
        self.signal(Signal::SIGKILL, "SIGKILL")?;
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        Ok(())
    }

    /// Leaves the process running after this handle is gone. Returns the pid.
    pub(crate) fn detach(mut self) -> Option<u32> {
        self.child.take().map(|c| c.id())
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A paused process still dies on SIGKILL; errors here have nowhere to go.
            let _ = self.kill();
        }
    }
}
