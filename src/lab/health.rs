//! Waiting for the lab's parts to become healthy (including g1 streaming to g2 and the
//! sentinels knowing each other and the replica), and probing them afterwards (`caplab lab
//! status`): each node's role, each sentinel's view, the proxy API and each proxy, an app's
//! `/health` and `/ready`.
//!
//! Beside the data path: each probe is short, has a timeout, and reports what it saw.

use std::time::Duration;

use super::error::LabError;
use super::node_action::LabNode;
use super::password::LabPassword;
use super::primary::PrimaryReport;
use super::process::LabProcess;
use super::record::LabRecord;
use super::redis_node::{RedisNodeError, probe_client};
use super::sentinel::{Sentinel, sentinel_view};
use crate::faults::{FaultDriver, LAB_PROXIES};

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

/// Waits until every sentinel is [`ready`](super::sentinel::SentinelView::ready): it knows
/// the two others and the replica, so a failover can happen from then on. Sentinels find
/// each other through hello messages every two seconds, so this takes a few seconds.
pub async fn wait_sentinels(sentinels: &[Sentinel], timeout: Duration) -> Result<(), LabError> {
    let deadline = tokio::time::Instant::now() + timeout;
    for sentinel in sentinels {
        loop {
            let last = match sentinel_view(&sentinel.auth_url()).await {
                Ok(view) if view.ready() => break,
                Ok(view) => format!(
                    "it knows {} other sentinels and {} replicas (flags {})",
                    view.other_sentinels, view.replicas, view.flags
                ),
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(LabError::NotHealthy {
                    part: format!("sentinel {}", sentinel.spec().name),
                    reason: format!("not ready for a failover within {timeout:?}: {last}"),
                    log: sentinel.spec().log_file(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
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

/// One part's health, as `caplab lab status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The part (`redis g1`, `proxy g2`, `app_cp`...).
    pub part: String,
    /// Whether it is healthy.
    pub ok: bool,
    /// What the probe saw.
    pub detail: String,
}

fn health(part: &str, ok: bool, detail: impl Into<String>) -> Health {
    Health {
        part: part.to_string(),
        ok,
        detail: detail.into(),
    }
}

/// Probes every part of a recorded lab through its own interface: the process (by pid and
/// start time), each node's own role (a primary, or a replica whose link is up, whichever node
/// it is), each sentinel's view of the primary, the proxy API and each proxy, each app's
/// `/health` and `/ready`. Also returns both views of the primary (see [`PrimaryReport`]).
pub async fn probe_record(record: &LabRecord) -> (Vec<Health>, PrimaryReport) {
    let mut out = Vec::new();
    let running = |name: &str| {
        record
            .processes
            .iter()
            .find(|p| p.name == name)
            .is_none_or(|p| p.is_running())
    };
    let password = match LabPassword::read(&record.dir) {
        Ok(password) => password,
        Err(e) => {
            out.push(health("redis password", false, e.to_string()));
            None
        }
    };
    let primary = PrimaryReport::probe(&record.ports, password.as_ref()).await;
    for node in [LabNode::G1, LabNode::G2] {
        let part = format!("redis {node}");
        if !running(&part) {
            out.push(health(&part, false, "process not running"));
            continue;
        }
        let (ok, detail) = primary.node_detail(node);
        out.push(health(&part, ok, detail));
    }
    for state in &primary.sentinels {
        let part = format!("sentinel {}", state.name);
        if !running(&part) {
            out.push(health(&part, false, "process not running"));
            continue;
        }
        let (ok, detail) = primary.sentinel_detail(state);
        out.push(health(&part, ok, detail));
    }
    match FaultDriver::new(&record.toxiproxy_url) {
        Ok(faults) if running("proxy") => match faults.proxies().await {
            Ok(proxies) => {
                out.push(health(
                    "proxy",
                    true,
                    format!("API answers, {} proxies", proxies.len()),
                ));
                for name in LAB_PROXIES {
                    out.push(match proxies.get(name) {
                        Some(proxy) if proxy.enabled => {
                            let toxics = proxy.toxics.len();
                            health(
                                &format!("proxy {name}"),
                                true,
                                format!("enabled, {toxics} toxics"),
                            )
                        }
                        Some(_) => health(&format!("proxy {name}"), false, "disabled"),
                        None => health(&format!("proxy {name}"), false, "missing"),
                    });
                }
            }
            Err(e) => out.push(health("proxy", false, e.to_string())),
        },
        Ok(_) => out.push(health("proxy", false, "process not running")),
        Err(e) => out.push(health("proxy", false, e.to_string())),
    }
    let client = probe_http();
    for (part, url) in [("app_cp", record.cp_url()), ("app_ap", record.ap_url())] {
        if !running(part) {
            out.push(health(part, false, "process not running"));
            continue;
        }
        let live = client.get(format!("{url}/health")).send().await;
        let ready = client.get(format!("{url}/ready")).send().await;
        out.push(match (live, ready) {
            (Ok(l), Ok(r)) if l.status().is_success() => health(
                part,
                r.status().is_success(),
                format!(
                    "/health {}, /ready {}",
                    l.status().as_u16(),
                    r.status().as_u16()
                ),
            ),
            (Ok(l), _) => health(part, false, format!("/health {}", l.status().as_u16())),
            (Err(e), _) => health(part, false, e.to_string()),
        });
    }
    if let Some(url) = &record.console_url {
        out.push(if !running("console") {
            health("console", false, "process not running")
        } else {
            match client.get(format!("{url}/health")).send().await {
                Ok(r) if r.status().is_success() => health("console", true, "/health 200"),
                Ok(r) => health("console", false, format!("/health {}", r.status().as_u16())),
                Err(e) => health("console", false, e.to_string()),
            }
        });
    }
    (out, primary)
}

/// Waits until the primary at `url` streams to its replica: a `SET` of `key` followed by
/// `WAIT 1 200` on the same connection answers 1. Right after a full sync the primary sends
/// nothing until the replica's first `REPLCONF ACK` (up to a second later), so a CP write in
/// that window would not be confirmed.
pub async fn wait_streaming(url: &str, key: &str, timeout: Duration) -> Result<(), RedisNodeError> {
    use fred::interfaces::{ClientLike, KeysInterface, ServerInterface};
    let client = probe_client(url).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("no answer");
    while tokio::time::Instant::now() < deadline {
        let set: Result<(), _> = client.set(key, "1", None, None, false).await;
        match set {
            Ok(()) => match client.wait::<i64>(1, 200).await {
                Ok(acked) if acked >= 1 => {
                    let _ = client.quit().await;
                    return Ok(());
                }
                Ok(acked) => last = format!("WAIT 1 counted {acked} replicas"),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = client.quit().await;
    Err(RedisNodeError::Probe {
        addr: crate::primary::sentinels::display_addr(url),
        reason: format!("the primary did not stream to its replica within {timeout:?}: {last}"),
    })
}
