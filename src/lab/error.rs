//! [`LabError`]: why the lab could not start, be changed, or stop. One enum for the layer;
//! each variant names the part concerned and, where there is one, its log file.

use std::path::PathBuf;

use super::ports::PortTaken;
use super::redis_node::RedisNodeError;
use crate::faults::FaultError;

/// Why a lab operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A port the lab needs is taken.
    #[error(transparent)]
    PortTaken(#[from] PortTaken),
    /// A Redis node could not be started or controlled (includes the missing `redis-server`).
    #[error(transparent)]
    Redis(#[from] RedisNodeError),
    /// The Toxiproxy API failed.
    #[error("the proxy ({part}): {source}")]
    Faults {
        /// What the lab was doing.
        part: String,
        /// What the driver said.
        source: FaultError,
    },
    /// A `caplab` child process could not be spawned.
    #[error("cannot start {part} ({}): {source}", bin.display())]
    Spawn {
        /// Which part.
        part: String,
        /// The binary.
        bin: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A part did not become healthy in time, or exited.
    #[error("{part} did not come up: {reason} (see {})", log.display())]
    NotHealthy {
        /// Which part.
        part: String,
        /// What went wrong.
        reason: String,
        /// Its log file.
        log: PathBuf,
    },
    /// A lab recorded in this directory still runs.
    #[error(
        "the lab in {} is already up (pids {pids}); `caplab lab status` shows it, `caplab lab down` stops it",
        dir.display()
    )]
    AlreadyUp {
        /// Its directory.
        dir: PathBuf,
        /// Its live pids.
        pids: String,
    },
    /// No lab is recorded in this directory.
    #[error("no lab is recorded in {} (nothing to do; start one with `caplab lab up`)", dir.display())]
    NotUp {
        /// The directory.
        dir: PathBuf,
    },
    /// A file of the lab could not be read or written.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A failover could not be asked for, or did not complete in time.
    #[error("failover: {reason}")]
    Failover {
        /// What went wrong (Sentinel's refusal, or what the sentinels said last).
        reason: String,
    },
    /// A process could not be signalled.
    #[error("cannot stop {part} (pid {pid}): {reason}")]
    Stop {
        /// Which part.
        part: String,
        /// Its pid.
        pid: u32,
        /// What went wrong.
        reason: String,
    },
}
