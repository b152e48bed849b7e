//! The timeline: each step applied at its offset, through the fault driver (proxy steps) or
//! a [`LabControl`] (node steps, a forced failover), with the planned and the applied offset
//! recorded; the [`LabControl`] hears of each step as it is applied.
//!
//! Where it sits: runs beside the load generator, on the same clock (`t0`). A step that
//! cannot be applied stops the run (exit 2): a scenario whose fault did not happen proves
//! nothing. Fault and heal steps are logged as `PARTITION` and `HEAL` events (docs/design.md).

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::spec::{Step, StepAction};
use crate::faults::{FaultDriver, FaultError};
use crate::lab::{LabNode, NodeAction};

/// What can act on the processes of a lab: the local lab ([`crate::lab`]) or a test's own
/// nodes. Also what a console driving the lab needs beside the proxies.
pub trait LabControl: Send {
    /// Applies `action` to `node`; an error is a message for people.
    fn node_action(
        &mut self,
        node: LabNode,
        action: NodeAction,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Forces a failover and returns once the sentinels name the new primary (which it
    /// returns). A lab without sentinels cannot.
    fn failover(&mut self) -> impl Future<Output = Result<LabNode, String>> + Send {
        async { Err("this lab has no sentinels to fail over with".to_string()) }
    }

    /// Whether node and failover steps can run at all (false for [`NoLab`]).
    fn available(&self) -> bool {
        true
    }

    /// Told of every step once it was applied or failed, with how long applying it took (a
    /// console logs it). Nothing by default.
    fn step_applied(&mut self, step: &Step, record: &StepRecord, took: Duration) {
        let _ = (step, record, took);
    }
}

/// No lab: node and failover steps cannot run (the runner refuses such scenarios before
/// starting).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLab;

impl LabControl for NoLab {
    async fn node_action(&mut self, node: LabNode, action: NodeAction) -> Result<(), String> {
        Err(format!(
            "cannot {action} {node}: node steps need the local lab (--lab)"
        ))
    }

    async fn failover(&mut self) -> Result<LabNode, String> {
        Err("cannot fail over: failover steps need the local lab (--lab)".to_string())
    }

    fn available(&self) -> bool {
        false
    }
}

/// The local lab's Redis processes and sentinels ([`crate::lab::Lab`]).
impl LabControl for crate::lab::Lab {
    async fn node_action(&mut self, node: LabNode, action: NodeAction) -> Result<(), String> {
        crate::lab::Lab::node_action(self, node, action)
            .await
            .map_err(|e| e.to_string())
    }

    async fn failover(&mut self) -> Result<LabNode, String> {
        crate::lab::Lab::failover(self)
            .await
            .map_err(|e| e.to_string())
    }
}

/// One step as it happened.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepRecord {
    /// Line in the scenario file.
    pub line: usize,
    /// What it did.
    pub description: String,
    /// The proxy or node.
    pub subject: Option<String>,
    /// Whether it heals (ends a fault window).
    pub heals: bool,
    /// Offset it was planned at, ms.
    pub planned_ms: f64,
    /// Offset it was applied at (the change confirmed), ms.
    pub applied_ms: f64,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// A step could not be applied.
#[derive(Debug, thiserror::Error)]
#[error("step at {planned_ms} ms (line {line}, {description}) failed: {error}")]
pub struct StepFailed {
    /// Line in the file.
    pub line: usize,
    /// What it was.
    pub description: String,
    /// When it was due.
    pub planned_ms: f64,
    /// Why.
    pub error: String,
}

async fn apply<L: LabControl>(
    action: &StepAction,
    driver: &FaultDriver,
    lab: &mut L,
) -> Result<(), String> {
    let fault = |e: FaultError| e.to_string();
    match action {
        StepAction::Down(p) => driver.set_enabled(p, false).await.map(drop).map_err(fault),
        StepAction::Up(p) => driver.set_enabled(p, true).await.map(drop).map_err(fault),
        StepAction::Toxic { proxy, toxic } => driver
            .set_toxic(proxy, *toxic)
            .await
            .map(drop)
            .map_err(fault),
        StepAction::RemoveToxic { proxy, name } => {
            driver.remove_toxic(proxy, name).await.map_err(fault)
        }
        StepAction::Heal => driver.reset().await.map_err(fault),
        StepAction::Node(node, act) => lab.node_action(*node, *act).await,
        StepAction::Failover => lab.failover().await.map(drop),
    }
}

/// Applies `steps` in order, each at its offset from `t0`, appending what happened to
/// `records`. Stops at the first step that fails.
pub async fn run<L: LabControl>(
    steps: &[Step],
    driver: &FaultDriver,
    lab: &mut L,
    t0: Instant,
    records: &mut Vec<StepRecord>,
) -> Result<(), StepFailed> {
    for step in steps {
        tokio::time::sleep_until((t0 + step.at).into()).await;
        let description = step.action.describe();
        let event = if step.action.heals() {
            "HEAL"
        } else {
            "PARTITION"
        };
        let started = Instant::now();
        let result = apply(&step.action, driver, lab).await;
        let applied = t0.elapsed();
        let planned_ms = ms(step.at);
        tracing::info!(
            event,
            step = %description,
            planned_ms,
            applied_ms = ms(applied),
            ok = result.is_ok(),
            "scenario step"
        );
        let record = StepRecord {
            line: step.line,
            description: description.clone(),
            subject: step.action.subject(),
            heals: step.action.heals(),
            planned_ms,
            applied_ms: ms(applied),
            error: result.as_ref().err().cloned(),
        };
        lab.step_applied(step, &record, started.elapsed());
        records.push(record);
        if let Err(error) = result {
            return Err(StepFailed {
                line: step.line,
                description,
                planned_ms,
                error,
            });
        }
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A shaded interval of the plots: from a fault step to the step that heals it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FaultWindow {
    /// The proxy or node the fault was on (`g1`, `cluster_g1`, ...).
    pub subject: String,
    /// What was faulted.
    pub label: String,
    /// Start, ms.
    pub from_ms: f64,
    /// End, ms (the end of the load when never healed).
    pub to_ms: f64,
}

/// The fault windows of applied steps: each fault step opens a window on its subject, the
/// next healing step on that subject (or a heal of everything) closes it.
pub fn fault_windows(records: &[StepRecord], end_ms: f64) -> Vec<FaultWindow> {
    let mut open: Vec<(String, String, f64)> = Vec::new();
    let mut out = Vec::new();
    for r in records.iter().filter(|r| r.error.is_none()) {
        if r.heals {
            let (closing, keep): (Vec<_>, Vec<_>) = open
                .drain(..)
                .partition(|(s, _, _)| r.subject.is_none() || r.subject.as_deref() == Some(s));
            open = keep;
            out.extend(
                closing
                    .into_iter()
                    .map(|(subject, label, from)| FaultWindow {
                        subject,
                        label,
                        from_ms: from,
                        to_ms: r.applied_ms,
                    }),
            );
        } else if let Some(subject) = &r.subject {
            open.push((subject.clone(), r.description.clone(), r.applied_ms));
        }
    }
    out.extend(open.into_iter().map(|(subject, label, from)| FaultWindow {
        subject,
        label,
        from_ms: from,
        to_ms: end_ms,
    }));
    out.sort_by(|a, b| a.from_ms.total_cmp(&b.from_ms));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(subject: Option<&str>, heals: bool, at: f64) -> StepRecord {
        StepRecord {
            line: 1,
            description: format!("{subject:?} {heals}"),
            subject: subject.map(str::to_string),
            heals,
            planned_ms: at,
            applied_ms: at,
            error: None,
        }
    }

    #[test]
    fn windows_open_on_faults_and_close_on_heals() {
        let w = fault_windows(
            &[
                rec(Some("g1"), false, 1000.0),
                rec(Some("cluster_g1"), false, 2000.0),
                rec(Some("g1"), true, 3000.0),
                rec(None, true, 4000.0),
                rec(Some("g2"), false, 5000.0),
            ],
            6000.0,
        );
        let spans: Vec<(f64, f64)> = w.iter().map(|w| (w.from_ms, w.to_ms)).collect();
        assert_eq!(
            spans,
            vec![(1000.0, 3000.0), (2000.0, 4000.0), (5000.0, 6000.0)]
        );
    }
}
