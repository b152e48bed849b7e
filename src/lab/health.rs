//! Waiting for the lab's parts to become healthy, and probing them afterwards
//! (`caplab lab status`): Redis PING and ROLE, the proxy API's version, an app's `/health`.
//!
//! Beside the data path: each probe is short, has a timeout, and reports what it saw.

use std::time::Duration;

use super::error::LabError;
use super::process::LabProcess;
use crate::faults::FaultDriver;

/// An HTTP client for loopback probes: short timeouts, never through an HTTP proxy from the
/// environment.
pub fn probe_http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(1))
        .build()
        // ok: building fails only if the TLS backend cannot start; fall back to the default.
        .unwrap_or_default()
}

/// Waits until `url` answers 200, or the process exits, or `timeout` passes.
pub async fn wait_http_ok(
    process: &mut LabProcess,
    url: &str,
    timeout: Duration,
) -> Result<(), LabError> {
    let client = probe_http();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(reason) = process.exited() {
            return Err(not_healthy(process, reason));
        }
        let last = match client.get(url).send().await {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => format!("{url} answered {}", resp.status()),
            Err(e) => format!("{url}: {e}"),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(not_healthy(
                process,
                format!("no 200 within {timeout:?} ({last})"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the proxy API answers, or the proxy process exits, or `timeout` passes.
pub async fn wait_proxy(
    faults: &FaultDriver,
    process: &mut LabProcess,
    timeout: Duration,
) -> Result<(), LabError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(reason) = process.exited() {
            return Err(not_healthy(process, reason));
        }
        match faults.version().await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(not_healthy(
                    process,
                    format!("no answer within {timeout:?} ({e})"),
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn not_healthy(process: &LabProcess, reason: String) -> LabError {
    let log = &process.record().log;
    let last_line = std::fs::read_to_string(log).ok().and_then(|text| {
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(str::to_owned)
    });
    let reason = match last_line {
        Some(line) => format!("{reason}; its log ends with: {line}"),
        None => reason,
    };
    LabError::NotHealthy {
        part: process.record().name.clone(),
        reason,
        log: process.record().log.clone(),
    }
}
