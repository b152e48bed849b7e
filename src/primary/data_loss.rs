//! A primary that comes back empty: detecting it, and holding `/ready` false until someone
//! looks.
//!
//! Data path: beside the primary's belief. Every `REPLICATION_POLL_MS` the watch asks the
//! believed primary for its history (`run_id`, `master_replid`, `master_replid2`,
//! `master_repl_offset`, and the record version counter `caplab:version`) and compares it with
//! what the same node said last time ([`judge`]). Data was lost when **the version counter went
//! back**: the primary assigns every version from that counter, so a counter below one it
//! already reached means the records written since are gone (a restart without persistence, an
//! older snapshot, a flush). The replication history says how: a new `run_id` is a restart; a
//! new `master_replid` that does not continue the old one (the old one is not its
//! `master_replid2`) with the offset going back is a history started from scratch.
//!
//! A Sentinel failover is not flagged: the belief moves to the other node, whose history is
//! then the new baseline (a promoted replica keeps its offset and moves the old replid to
//! `master_replid2`; its counter is the one it replicated). A restart that kept its data (the
//! counter did not go back) is logged at INFO only.
//!
//! On a loss: `PRIMARY_DATA_LOSS` at ERROR, `primary_data_loss_total` counts it, and with
//! `ON_PRIMARY_DATA_LOSS=refuse` (the default) `primary_data_loss_unacknowledged` is 1 and
//! `/ready` answers 503 until `POST /admin/ack-data-loss` (from loopback) acknowledges it;
//! `serve` only logs and counts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::Nodes;
use crate::lab::redis_node::info_field;
use crate::metrics::Metrics;
use crate::node::{Node, NodeError};

/// What to do when the primary lost data (`ON_PRIMARY_DATA_LOSS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DataLossPolicy {
    /// `/ready` 503 until an operator acknowledges.
    Refuse,
    /// Log and count only; `/ready` unaffected.
    Serve,
}

/// What the believed primary says of its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct History {
    /// `g1` or `g2`.
    pub node: &'static str,
    /// `run_id`: one run of one redis-server process.
    pub run_id: String,
    /// `master_replid`.
    pub replid: String,
    /// `master_replid2` (the history it continues after a promotion, else zeros).
    pub replid2: String,
    /// `master_repl_offset`.
    pub offset: u64,
    /// `caplab:version`: the last version it assigned (0 when absent).
    pub version: u64,
}

/// A loss: the primary's history before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Loss {
    /// What it said before.
    pub before: History,
    /// What it says now.
    pub after: History,
    /// Whether the process restarted (`run_id` changed).
    pub restarted: bool,
    /// Whether its replication history started over (a new replid not continuing the old,
    /// offset back).
    pub history_reset: bool,
    /// When it was seen, Unix ms.
    pub seen_at_ms: u64,
}

/// The comparison of two polls of the believed primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The first look at this node as primary (at start, or after a failover).
    Baseline,
    /// Nothing of note.
    Same,
    /// The process restarted and kept its data.
    RestartedIntact,
    /// Data was lost.
    DataLoss(Box<Loss>),
}

/// Compares the believed primary's history now with the last poll's.
pub fn judge(last: Option<&History>, now: &History) -> Verdict {
    let Some(last) = last.filter(|l| l.node == now.node) else {
        return Verdict::Baseline;
    };
    let restarted = last.run_id != now.run_id;
    let history_reset =
        now.replid != last.replid && now.replid2 != last.replid && now.offset < last.offset;
    if now.version < last.version {
        return Verdict::DataLoss(Box::new(Loss {
            before: last.clone(),
            after: now.clone(),
            restarted,
            history_reset,
            seen_at_ms: crate::time::unix_ms(),
        }));
    }
    if restarted {
        Verdict::RestartedIntact
    } else {
        Verdict::Same
    }
}

/// The unacknowledged loss, shared by the watch and the HTTP handlers.
#[derive(Debug, Clone, Default)]
pub struct DataLossState(Arc<Mutex<Option<Loss>>>);

impl DataLossState {
    /// The loss waiting for an acknowledgement, if any.
    pub fn unacknowledged(&self) -> Option<Loss> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, loss: Option<Loss>) -> Option<Loss> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *slot, loss)
    }

    /// Acknowledges the loss; returns it (`None`: there was none).
    pub fn acknowledge(&self, metrics: &Metrics) -> Option<Loss> {
        let was = self.set(None);
        metrics
            .primary_data_loss_unacknowledged
            .with_label_values(&[metrics.mode()])
            .set(0);
        if let Some(loss) = &was {
            tracing::warn!(
                node = loss.after.node,
                "PRIMARY_DATA_LOSS_ACKNOWLEDGED: an operator acknowledged the loss; /ready follows the nodes again"
            );
        }
        was
    }
}

/// The polling task.
#[derive(Debug)]
pub struct DataLossWatch {
    /// The nodes and the belief.
    pub nodes: Nodes,
    /// Where a loss is kept until acknowledged.
    pub state: DataLossState,
    /// What a loss does to `/ready`.
    pub policy: DataLossPolicy,
    /// The metrics.
    pub metrics: Metrics,
    /// How often to look.
    pub period: Duration,
}

impl DataLossWatch {
    /// Polls forever.
    pub async fn run(self) {
        let mut last: Option<History> = None;
        let mut ticks = tokio::time::interval(self.period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let primary = self.nodes.primary();
            let Ok(now) = history(primary).await else {
                // Unreachable: nothing to compare; the last history stays the baseline.
                continue;
            };
            match judge(last.as_ref(), &now) {
                Verdict::DataLoss(loss) => self.report(*loss),
                Verdict::RestartedIntact => tracing::info!(
                    node = now.node,
                    run_id = now.run_id,
                    version = now.version,
                    "PRIMARY_RESTARTED: the primary restarted with its data (its version counter did not go back)"
                ),
                Verdict::Baseline | Verdict::Same => {}
            }
            last = Some(now);
        }
    }

    fn report(&self, loss: Loss) {
        let m = self.metrics.mode();
        self.metrics.primary_data_loss.with_label_values(&[m]).inc();
        tracing::error!(
            node = loss.after.node,
            version_before = loss.before.version,
            version_now = loss.after.version,
            offset_before = loss.before.offset,
            offset_now = loss.after.offset,
            run_id_before = loss.before.run_id,
            run_id_now = loss.after.run_id,
            restarted = loss.restarted,
            history_reset = loss.history_reset,
            policy = ?self.policy,
            "PRIMARY_DATA_LOSS: the primary's version counter went back: records written before are gone (a restart without its data?); see runbooks/primary-data-loss.md"
        );
        if self.policy == DataLossPolicy::Refuse {
            self.metrics
                .primary_data_loss_unacknowledged
                .with_label_values(&[m])
                .set(1);
            self.state.set(Some(loss));
        }
    }
}

/// Asks `node` for its history: `INFO server`, `INFO replication`, `GET caplab:version`.
pub async fn history(node: &Node) -> Result<History, NodeError> {
    let run_id = node.run_id().await?;
    let info = node.info_replication().await?;
    let version = node.version_counter().await?;
    let field = |name: &str| info_field(&info, name).unwrap_or_default().to_string();
    Ok(History {
        node: node.name(),
        run_id,
        replid: field("master_replid"),
        replid2: field("master_replid2"),
        offset: field("master_repl_offset").parse().unwrap_or(0),
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(
        node: &'static str,
        run_id: &str,
        replid: &str,
        replid2: &str,
        offset: u64,
        version: u64,
    ) -> History {
        History {
            node,
            run_id: run_id.into(),
            replid: replid.into(),
            replid2: replid2.into(),
            offset,
            version,
        }
    }

    const ZEROS: &str = "0000000000000000000000000000000000000000";

    #[test]
    fn an_empty_restart_is_a_loss() {
        let before = seen("g1", "run-a", "hist-a", ZEROS, 90_000, 1_200);
        let after = seen("g1", "run-b", "hist-b", ZEROS, 14, 0);
        match judge(Some(&before), &after) {
            Verdict::DataLoss(loss) => {
                assert!(loss.restarted && loss.history_reset);
                assert_eq!((loss.before.version, loss.after.version), (1_200, 0));
            }
            other => panic!("not flagged: {other:?}"),
        }
    }

    #[test]
    fn a_failover_is_a_new_baseline_not_a_loss() {
        // g2 promoted: the old history moves to replid2, the offset continues, and its counter
        // may even lag g1's (asynchronous replication): the node changed, so no comparison.
        let g1 = seen("g1", "run-a", "hist-a", ZEROS, 90_000, 1_200);
        let g2 = seen("g2", "run-c", "hist-c", "hist-a", 89_000, 1_190);
        assert_eq!(judge(Some(&g1), &g2), Verdict::Baseline);
        let later = seen("g2", "run-c", "hist-c", "hist-a", 95_000, 1_300);
        assert_eq!(judge(Some(&g2), &later), Verdict::Same);
    }

    #[test]
    fn a_restart_that_kept_its_data_is_not_a_loss() {
        let before = seen("g1", "run-a", "hist-a", ZEROS, 90_000, 1_200);
        let after = seen("g1", "run-b", "hist-b", ZEROS, 0, 1_200);
        assert_eq!(judge(Some(&before), &after), Verdict::RestartedIntact);
    }

    #[test]
    fn a_flush_without_restart_is_a_loss() {
        let before = seen("g1", "run-a", "hist-a", ZEROS, 90_000, 1_200);
        let after = seen("g1", "run-a", "hist-a", ZEROS, 90_100, 0);
        assert!(matches!(judge(Some(&before), &after), Verdict::DataLoss(l) if !l.restarted));
    }

    #[test]
    fn the_first_look_is_a_baseline() {
        assert_eq!(
            judge(None, &seen("g1", "r", "h", ZEROS, 0, 0)),
            Verdict::Baseline
        );
    }
}
