//! The lab's own child processes (`caplab proxy`, `caplab serve`) and the by-pid bookkeeping
//! that lets `caplab lab down` stop exactly what `up` started.
//!
//! Beside the data path: this is process control. A pid is only ever signalled after its
//! start time (field 22 of `/proc/<pid>/stat`) is checked against the one recorded at spawn,
//! so a pid the kernel has since given to another program is never touched.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::error::LabError;

/// One process the lab started, as written in `lab.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessRecord {
    /// Which part: `redis g1`, `proxy`, `app_cp`...
    pub name: String,
    /// Its pid.
    pub pid: u32,
    /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22), if known.
    pub start_time: Option<u64>,
    /// Its log file.
    pub log: PathBuf,
}

impl ProcessRecord {
    /// Whether this very process (same pid, same start time) still runs. A zombie does not
    /// run.
    pub fn is_running(&self) -> bool {
        match proc_stat(self.pid) {
            Some((state, start)) => {
                !matches!(state, 'Z' | 'X')
                    && (self.start_time.is_none() || self.start_time == Some(start))
            }
            None => false,
        }
    }

    /// SIGTERM, then SIGKILL after `grace` if it still runs. Does nothing to a pid that no
    /// longer belongs to this process.
    pub async fn stop(&self, grace: Duration) -> Result<(), LabError> {
        if !self.is_running() {
            return Ok(());
        }
        self.signal(Signal::SIGTERM)?;
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline {
            if !self.is_running() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if self.is_running() {
            self.signal(Signal::SIGKILL)?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while self.is_running() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if self.is_running() {
            return Err(LabError::Stop {
                part: self.name.clone(),
                pid: self.pid,
                reason: "still running after SIGKILL".into(),
            });
        }
        Ok(())
    }

    fn signal(&self, signal: Signal) -> Result<(), LabError> {
        let raw = i32::try_from(self.pid).map_err(|_| LabError::Stop {
            part: self.name.clone(),
            pid: self.pid,
            reason: "pid out of range".into(),
        })?;
        match kill(Pid::from_raw(raw), signal) {
            Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
            Err(e) => Err(LabError::Stop {
                part: self.name.clone(),
                pid: self.pid,
                reason: e.to_string(),
            }),
        }
    }
}

/// State letter and start time of a process, from `/proc/<pid>/stat`; `None` if it is gone
/// (or this is not Linux).
pub fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: read after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the name: field 3 is the state, field 22 the start time.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// A `caplab` child process with its output in a log file. Dropping it kills it (SIGKILL)
/// and reaps it, unless it was [`detach`](LabProcess::detach)ed.
#[derive(Debug)]
pub struct LabProcess {
    record: ProcessRecord,
    child: Option<Child>,
}

impl LabProcess {
    /// Starts `bin args...` with `envs`, stdout and stderr appended to `log`; in its own
    /// process group when `own_group`.
    pub fn spawn(
        name: &str,
        bin: &Path,
        args: &[String],
        envs: &[(&str, &str)],
        log: PathBuf,
        own_group: bool,
    ) -> Result<LabProcess, LabError> {
        let spawn_err = |source: std::io::Error| LabError::Spawn {
            part: name.to_string(),
            bin: bin.to_path_buf(),
            source,
        };
        let out = File::create(&log).map_err(|e| LabError::File {
            path: log.clone(),
            reason: e.to_string(),
        })?;
        let err = out.try_clone().map_err(spawn_err)?;
        let mut command = Command::new(bin);
        command
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if own_group {
            command.process_group(0);
        }
        let child = command.spawn().map_err(spawn_err)?;
        let pid = child.id();
        Ok(LabProcess {
            record: ProcessRecord {
                name: name.to_string(),
                pid,
                start_time: proc_stat(pid).map(|(_, start)| start),
                log,
            },
            child: Some(child),
        })
    }

    /// Records `log` as its log file: the file it writes itself (`--log-file`), its stdout and
    /// stderr file then holding only what comes before its logging starts.
    pub fn log_at(mut self, log: PathBuf) -> LabProcess {
        self.record.log = log;
        self
    }

    /// What `lab.json` says of it.
    pub fn record(&self) -> &ProcessRecord {
        &self.record
    }

    /// `Some(reason)` when the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(format!("the process exited ({status})")),
            Ok(None) => None,
            Err(e) => Some(format!("cannot wait for it: {e}")),
        }
    }

    /// SIGTERM, SIGKILL after `grace`, and reap.
    pub async fn stop(&mut self, grace: Duration) -> Result<(), LabError> {
        let result = self.record.stop(grace).await;
        if let Some(mut child) = self.child.take() {
            if result.is_err() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        result
    }

    /// Leaves the process running after this handle is gone.
    pub fn detach(mut self) -> ProcessRecord {
        self.child = None;
        self.record.clone()
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn reads_its_own_start_time_and_state() -> TestResult {
        let (state, start) =
            proc_stat(std::process::id()).ok_or("no /proc stat for this process")?;
        assert!(matches!(state, 'R' | 'S'), "{state}");
        assert!(start > 0);
        assert!(proc_stat(u32::MAX).is_none());
        Ok(())
    }

    #[tokio::test]
    async fn a_recorded_pid_with_another_start_time_is_left_alone() -> TestResult {
        let me = ProcessRecord {
            name: "me".into(),
            pid: std::process::id(),
            start_time: proc_stat(std::process::id()).map(|(_, s)| s + 1),
            log: PathBuf::new(),
        };
        assert!(!me.is_running());
        me.stop(Duration::from_millis(10)).await?;
        assert!(proc_stat(std::process::id()).is_some());
        Ok(())
    }
}
