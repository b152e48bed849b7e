//! The console's controls: cut and heal each of the five links (and replication without a
//! failover, the two-step cut), add and remove latency on a link, kill, stop, continue and
//! restart a node, force a failover, and reset everything.
//!
//! Beside the data path, as its hands: links through the [`crate::faults::FaultDriver`],
//! nodes and failovers through [`crate::lab::RecordedLab`], the very calls the scenario
//! runner's steps make. One control runs at a time; each one's result becomes a line of the
//! control log (with a timestamp), and what it did to the lab shows as a fault window on the
//! charts from the next tick on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::Shared;
use super::snapshot::LogEntry;
use crate::faults::{CLUSTER_G1, CLUSTER_G2, LAB_PROXIES, Stream, ToxicKind, ToxicSpec};
use crate::lab::recorded::NodeProcess;
use crate::lab::{LabNode, NodeAction, RecordedLab};
use crate::scenario::spec::{Step, StepAction};
use crate::scenario::timeline::StepRecord;

/// The largest latency the page may add, ms.
pub const MAX_LATENCY_MS: u32 = 10_000;

/// One control, as the page sends it (`{"action": "cut", "link": "cluster_g1"}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Control {
    /// Disable a proxy: its listener and connections close.
    Cut {
        /// The proxy.
        link: String,
    },
    /// Enable it again.
    Heal {
        /// The proxy.
        link: String,
    },
    /// Replication cut without a failover: `cluster_g2`, then `cluster_g1`.
    CutReplication,
    /// Its heal, in the other order: `cluster_g1`, then `cluster_g2`.
    HealReplication,
    /// A latency toxic on a link, downstream (the answers are delayed).
    Latency {
        /// The proxy.
        link: String,
        /// Delay, ms.
        ms: u32,
    },
    /// Remove that toxic.
    RemoveLatency {
        /// The proxy.
        link: String,
    },
    /// Kill, stop, continue or restart a node.
    Node {
        /// `g1` or `g2`.
        node: LabNode,
        /// `kill`, `stop`, `continue`, `restart`.
        op: NodeAction,
    },
    /// `SENTINEL FAILOVER caplab`, confirmed by the promotion.
    Failover,
    /// Every proxy enabled without toxics, every stopped node continued, every node that is
    /// down restarted.
    Reset,
}

/// Why a control was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The request names no known control, link or node, or a latency out of range.
    #[error("{0}")]
    Invalid(String),
    /// Another control, or a scenario, is acting on the lab.
    #[error("{0}")]
    Busy(String),
    /// The lab refused or failed; the log line says how.
    #[error("{}", .0.detail)]
    Failed(LogEntry),
}

impl Control {
    /// Parses and checks a control from the page's JSON.
    pub fn parse(body: &[u8]) -> Result<Control, ControlError> {
        let control: Control = serde_json::from_slice(body).map_err(|e| {
            ControlError::Invalid(format!(
                "not a control: {e} (expected e.g. {{\"action\": \"cut\", \"link\": \"cluster_g1\"}})"
            ))
        })?;
        match &control {
            Control::Cut { link }
            | Control::Heal { link }
            | Control::RemoveLatency { link }
            | Control::Latency { link, .. }
                if !LAB_PROXIES.contains(&link.as_str()) =>
            {
                Err(ControlError::Invalid(format!(
                    "unknown link `{link}` (expected one of: {})",
                    LAB_PROXIES.join(", ")
                )))
            }
            Control::Latency { ms, .. } if *ms == 0 || *ms > MAX_LATENCY_MS => {
                Err(ControlError::Invalid(format!(
                    "latency must be 1 to {MAX_LATENCY_MS} ms, not {ms}"
                )))
            }
            _ => Ok(control),
        }
    }

    /// What it does, for the log.
    pub fn describe(&self) -> String {
        match self {
            Control::Cut { link } => format!("cut {link}"),
            Control::Heal { link } => format!("heal {link}"),
            Control::CutReplication => {
                format!("cut replication ({CLUSTER_G2}, then {CLUSTER_G1})")
            }
            Control::HealReplication => {
                format!("heal replication ({CLUSTER_G1}, then {CLUSTER_G2})")
            }
            Control::Latency { link, ms } => format!("latency {ms} ms on {link}"),
            Control::RemoveLatency { link } => format!("remove latency on {link}"),
            Control::Node { node, op } => format!("{op} {node}"),
            Control::Failover => "failover".to_string(),
            Control::Reset => "reset everything".to_string(),
        }
    }
}

/// The latency toxic the console adds (named `latency_downstream`).
fn latency_toxic(ms: u32) -> ToxicSpec {
    ToxicSpec::new(
        ToxicKind::Latency {
            latency: i64::from(ms),
            jitter: 0,
        },
        Stream::Downstream,
    )
}

/// Carries out `control` from the page: refused while a scenario runs or another control is
/// under way; otherwise done and logged.
pub async fn apply(shared: &Arc<Shared>, control: Control) -> Result<LogEntry, ControlError> {
    if let Some(name) = super::scenarios::running(shared) {
        return Err(ControlError::Busy(format!(
            "scenario {name} is running: it drives the lab until it ends (its steps show in the log)"
        )));
    }
    let Ok(_slot) = shared.control_slot.try_lock() else {
        return Err(ControlError::Busy(
            "another control is still under way (a restart or a failover takes seconds)".into(),
        ));
    };
    let entry = act(shared, &control, "").await;
    if entry.ok {
        Ok(entry)
    } else {
        Err(ControlError::Failed(entry))
    }
}

/// Does `control` and logs it, `source` prefixed to its description (`scenario: `).
pub async fn act(shared: &Arc<Shared>, control: &Control, source: &str) -> LogEntry {
    let started = Instant::now();
    let result = run(shared, control).await;
    let (ok, detail) = match result {
        Ok(detail) => (true, detail),
        Err(e) => (false, e),
    };
    log(
        shared,
        format!("{source}{}", control.describe()),
        ok,
        detail,
        started,
    )
}

/// Adds a line to the control log.
pub fn log(
    shared: &Shared,
    action: String,
    ok: bool,
    detail: String,
    started: Instant,
) -> LogEntry {
    let entry = LogEntry {
        seq: 0,
        t_ms: crate::time::unix_ms(),
        action,
        ok,
        detail,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    tracing::info!(action = %entry.action, ok, detail = %entry.detail, "console control");
    match shared.history.lock() {
        Ok(mut h) => h.log(entry),
        Err(poisoned) => poisoned.into_inner().log(entry),
    }
}

async fn run(shared: &Arc<Shared>, control: &Control) -> Result<String, String> {
    let faults = &shared.faults;
    let fault = |e: crate::faults::FaultError| e.to_string();
    match control {
        Control::Cut { link } => faults
            .set_enabled(link, false)
            .await
            .map(|_| format!("{link} disabled: its listener and connections are closed"))
            .map_err(fault),
        Control::Heal { link } => faults
            .set_enabled(link, true)
            .await
            .map(|_| format!("{link} enabled"))
            .map_err(fault),
        Control::CutReplication => {
            faults.set_enabled(CLUSTER_G2, false).await.map_err(fault)?;
            faults.set_enabled(CLUSTER_G1, false).await.map_err(fault)?;
            Ok(
                "both cluster links disabled, the replica's first: the sentinels cannot reach \
                g2 to promote it, so nobody changes role"
                    .to_string(),
            )
        }
        Control::HealReplication => {
            faults.set_enabled(CLUSTER_G1, true).await.map_err(fault)?;
            faults.set_enabled(CLUSTER_G2, true).await.map_err(fault)?;
            Ok("both cluster links enabled, the primary's first".to_string())
        }
        Control::Latency { link, ms } => faults
            .set_toxic(link, latency_toxic(*ms))
            .await
            .map(|t| format!("toxic {} on {link}: {ms} ms on every answer", t.name))
            .map_err(fault),
        Control::RemoveLatency { link } => {
            let name = latency_toxic(1).name();
            faults
                .remove_toxic(link, &name)
                .await
                .map(|()| format!("toxic {name} removed from {link}"))
                .map_err(fault)
        }
        Control::Node { node, op } => node_action(shared, *node, *op).await,
        Control::Failover => shared
            .recorded_lab()
            .failover()
            .await
            .map(|primary| {
                format!(
                    "the sentinels promoted {primary}; they turn {} into its replica next",
                    primary.other()
                )
            })
            .map_err(|e| e.to_string()),
        Control::Reset => reset(shared).await,
    }
}

/// A node action on the lab as recorded now; the record (with a restarted node's new pid) is
/// kept.
pub async fn node_action(
    shared: &Arc<Shared>,
    node: LabNode,
    op: NodeAction,
) -> Result<String, String> {
    let mut lab: RecordedLab = shared.recorded_lab();
    let result = lab.node_action(node, op).await;
    shared.set_record(lab.record().clone());
    result.map_err(|e| e.to_string())?;
    let pid = lab
        .record()
        .processes
        .iter()
        .find(|p| p.name == format!("redis {node}"))
        .map_or("-".to_string(), |p| p.pid.to_string());
    Ok(match op {
        NodeAction::Kill => format!("redis {node} (pid {pid}) killed with SIGKILL"),
        NodeAction::Stop => format!("redis {node} (pid {pid}) frozen with SIGSTOP"),
        NodeAction::Continue => format!("redis {node} (pid {pid}) resumed with SIGCONT"),
        NodeAction::Restart => format!(
            "redis {node} started again from its config file (pid {pid}), in the role Sentinel last gave it"
        ),
    })
}

async fn reset(shared: &Arc<Shared>) -> Result<String, String> {
    shared.faults.reset().await.map_err(|e| e.to_string())?;
    let mut done = vec!["every link enabled, no toxics".to_string()];
    for node in [LabNode::G1, LabNode::G2] {
        let op = match shared.recorded_lab().node_process(node) {
            NodeProcess::Running => continue,
            NodeProcess::Stopped => NodeAction::Continue,
            NodeProcess::Down => NodeAction::Restart,
        };
        node_action(shared, node, op).await?;
        done.push(format!("{op} {node}"));
    }
    Ok(done.join("; "))
}

/// The scenario runner's node steps, through the console (serialized with the page's
/// controls, and logged).
pub struct ConsoleLab(pub Arc<Shared>);

impl crate::scenario::LabControl for ConsoleLab {
    async fn node_action(&mut self, node: LabNode, action: NodeAction) -> Result<(), String> {
        let _slot = self.0.control_slot.lock().await;
        let entry = act(&self.0, &Control::Node { node, op: action }, "scenario: ").await;
        if entry.ok { Ok(()) } else { Err(entry.detail) }
    }

    async fn failover(&mut self) -> Result<LabNode, String> {
        let _slot = self.0.control_slot.lock().await;
        let started = Instant::now();
        let result = self.0.recorded_lab().failover().await;
        let (ok, detail) = match &result {
            Ok(p) => (true, format!("the sentinels promoted {p}")),
            Err(e) => (false, e.to_string()),
        };
        log(&self.0, "scenario: failover".into(), ok, detail, started);
        result.map_err(|e| e.to_string())
    }

    /// Logs the scenario's proxy steps (its node and failover steps went through the
    /// controls above, which logged them).
    fn step_applied(&mut self, step: &Step, record: &StepRecord, took: Duration) {
        if matches!(step.action, StepAction::Node(..) | StepAction::Failover) {
            return;
        }
        let at = format!(
            "line {}, due at +{:.3} s, applied at +{:.3} s",
            record.line,
            record.planned_ms / 1000.0,
            record.applied_ms / 1000.0
        );
        let (ok, detail) = match &record.error {
            None => (true, at),
            Some(e) => (false, format!("{at}: {e}")),
        };
        let started = Instant::now()
            .checked_sub(took)
            .unwrap_or_else(Instant::now);
        log(
            &self.0,
            format!("scenario: {}", record.description),
            ok,
            detail,
            started,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_parse_from_the_pages_json() {
        let parse = |s: &str| Control::parse(s.as_bytes());
        assert_eq!(
            parse(r#"{"action":"cut","link":"cluster_g1"}"#).ok(),
            Some(Control::Cut {
                link: "cluster_g1".into()
            })
        );
        assert_eq!(
            parse(r#"{"action":"node","node":"g2","op":"stop"}"#).ok(),
            Some(Control::Node {
                node: LabNode::G2,
                op: NodeAction::Stop
            })
        );
        assert_eq!(parse(r#"{"action":"reset"}"#).ok(), Some(Control::Reset));
        for bad in [
            r#"{"action":"cut","link":"replication"}"#,
            r#"{"action":"latency","link":"g1","ms":0}"#,
            r#"{"action":"latency","link":"g1","ms":60000}"#,
            r#"{"action":"node","node":"g3","op":"kill"}"#,
            r#"{"action":"explode"}"#,
            r#"{"action":"cut","link":"g1","extra":1}"#,
            "not json",
        ] {
            assert!(
                matches!(parse(bad), Err(ControlError::Invalid(_))),
                "{bad} was accepted"
            );
        }
        let unknown = parse(r#"{"action":"cut","link":"replication"}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            unknown.contains("g1, g2, cluster_g1, cluster_g2, sentinels"),
            "{unknown}"
        );
    }

    #[test]
    fn descriptions_name_the_link_and_the_node() {
        assert_eq!(
            Control::Latency {
                link: "g2".into(),
                ms: 300
            }
            .describe(),
            "latency 300 ms on g2"
        );
        assert_eq!(
            Control::Node {
                node: LabNode::G1,
                op: NodeAction::Restart
            }
            .describe(),
            "restart g1"
        );
        assert_eq!(latency_toxic(5).name(), "latency_downstream");
    }
}
