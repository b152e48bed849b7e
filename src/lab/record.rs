//! `<dir>/lab.json`: what a lab started and where it listens, written by `up` and read by
//! `status` and `down` (which may run in another process, later).
//!
//! Beside the data path: bookkeeping. The record is written when the lab is healthy and
//! removed when it is stopped; a record whose processes are all gone is stale and ignored.

use std::path::{Path, PathBuf};

use super::error::LabError;
use super::options::{LabOptions, LabPorts};
use super::process::ProcessRecord;

/// What runs in a lab.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LabRecord {
    /// The lab's directory.
    pub dir: PathBuf,
    /// Its ports.
    pub ports: LabPorts,
    /// The Toxiproxy API it uses, `http://host:port`.
    pub toxiproxy_url: String,
    /// Whether that Toxiproxy was given (and so is not the lab's to stop).
    pub external_toxiproxy: bool,
    /// The processes it started, in start order.
    pub processes: Vec<ProcessRecord>,
    /// The lab console's address (`http://127.0.0.1:8080`), when `up` started one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_url: Option<String>,
}

impl LabRecord {
    /// Reads the record in `dir`; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<LabRecord>, LabError> {
        let path = LabOptions::record_path(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(LabError::File {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| LabError::File {
                path,
                reason: format!("not a lab record: {e}"),
            })
    }

    /// Writes it to `<dir>/lab.json` (through a temporary file, so a reader never sees half).
    pub fn write(&self) -> Result<(), LabError> {
        let path = LabOptions::record_path(&self.dir);
        let tmp = self.dir.join("lab.json.tmp");
        let fail = |e: std::io::Error| LabError::File {
            path: path.clone(),
            reason: e.to_string(),
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| LabError::File {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&tmp, text).map_err(fail)?;
        std::fs::rename(&tmp, &path).map_err(fail)
    }

    /// Removes `<dir>/lab.json`; a missing one is fine.
    pub fn remove(dir: &Path) -> Result<(), LabError> {
        let path = LabOptions::record_path(dir);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LabError::File {
                path,
                reason: e.to_string(),
            }),
        }
    }

    /// The recorded processes that still run.
    pub fn running(&self) -> Vec<&ProcessRecord> {
        self.processes.iter().filter(|p| p.is_running()).collect()
    }

    /// `http://127.0.0.1:<port>` of app_cp.
    pub fn cp_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.app_cp)
    }

    /// `http://127.0.0.1:<port>` of app_ap.
    pub fn ap_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.app_ap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_from_before_the_sentinels_still_reads() -> Result<(), serde_json::Error> {
        let old = r#"{"dir": "/tmp/lab", "ports": {"redis_g1": 7001, "redis_g2": 7002,
            "proxy_g1": 7003, "proxy_g2": 7004, "proxy_replication": 7005, "app_cp": 7006,
            "app_ap": 7007, "proxy_api": 7008},
            "toxiproxy_url": "http://127.0.0.1:7008", "external_toxiproxy": false,
            "processes": [{"name": "redis g1", "pid": 42, "start_time": 1, "log": "/tmp/l"}]}"#;
        let record: LabRecord = serde_json::from_str(old)?;
        assert_eq!(record.processes.len(), 1);
        assert_eq!((record.ports.redis_g1, record.ports.app_ap), (7001, 7007));
        Ok(())
    }
}
