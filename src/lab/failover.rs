//! A forced failover: `SENTINEL FAILOVER caplab` on one sentinel, confirmed by that sentinel
//! naming the other node as primary.
//!
//! Beside the data path, like a fault step: the scenario runner's `failover` step, `caplab
//! lab failover` and [`super::Lab::failover`] all come here. The sentinel promotes the
//! replica without asking the others (a forced failover needs no quorum) and then turns the
//! old primary into a replica of the new one; this only asks and waits for the promotion.

use std::time::Duration;

use super::error::LabError;
use super::node_action::LabNode;
use super::options::LabPorts;
use super::password::{LabPassword, auth_url};
use super::primary::node_at;
use super::sentinel::{FAILOVER_TIMEOUT_MS, sentinel_failover, sentinel_replicas, sentinel_view};

/// Asks sentinel `name` (on `port`) to fail over and waits until it names the other node as
/// primary, within twice Sentinel's failover timeout. Returns the new primary. A refusal
/// (`-INPROG`, `-NOGOODSLAVE`) or no promotion in time is a [`LabError::Failover`] saying
/// what the sentinel said last. Authenticates with the lab's password when it has one.
pub async fn force_failover(
    ports: &LabPorts,
    password: Option<&LabPassword>,
    name: &str,
    port: u16,
) -> Result<LabNode, LabError> {
    let url = auth_url(password, port);
    let fail = |reason: String| LabError::Failover { reason };
    let before = sentinel_view(&url)
        .await
        .map_err(|e| fail(format!("sentinel {name}: {e}")))?;
    let from = node_at(ports, before.addr.1).ok_or_else(|| {
        fail(format!(
            "sentinel {name} watches {}:{}, which is not a node's cluster proxy",
            before.addr.0, before.addr.1
        ))
    })?;
    let to = from.other();
    if let Err(e) = sentinel_failover(&url).await {
        let replicas = match sentinel_replicas(&url).await {
            Ok(r) if r.is_empty() => "it knows no replica".to_string(),
            Ok(r) => format!("the replicas it knows: {}", r.join("; ")),
            Err(_) => "it did not list its replicas".to_string(),
        };
        return Err(fail(format!("sentinel {name} refused: {e} ({replicas})")));
    }
    let within = Duration::from_millis(2 * FAILOVER_TIMEOUT_MS);
    let deadline = tokio::time::Instant::now() + within;
    let mut last = format!("primary {from}");
    loop {
        match sentinel_view(&url).await {
            Ok(view) if node_at(ports, view.addr.1) == Some(to) => return Ok(to),
            Ok(view) => last = format!("primary at port {} (flags {})", view.addr.1, view.flags),
            Err(e) => last = e.to_string(),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(fail(format!(
                "sentinel {name} accepted SENTINEL FAILOVER but did not name {to} within {within:?} (last: {last})"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
