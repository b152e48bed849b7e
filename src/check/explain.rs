//! Why a history is not linearizable, as data to draw: the failing key's operations around
//! the point where the search got stuck, each marked with its place in the longest
//! linearizable prefix, and the stale reads and lost writes the other checkers find on the
//! same key.
//!
//! Where it sits: after [`super::check_history`]; [`super::picture`] draws what this
//! returns, for `caplab check --html` and for the scenario report. Nothing here judges
//! anything new: the prefix and the stuck operation come from the search, and the stale
//! reads and lost writes are the same checkers run again on that one key (so every one of
//! them is listed, not only the report's first examples).

use super::history::{History, Op};
use super::report::{CheckReport, OpRef, Validity};
use super::sources::Sources;
use super::{CheckOptions, lost, stale};

/// Operations drawn before the stuck one (in invoke order), at most.
const BEFORE: usize = 24;
/// Operations drawn after it, at most.
const AFTER: usize = 10;

/// One operation as drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewOp {
    /// The operation.
    pub op: OpRef,
    /// Its place (1-based) in the longest linearizable prefix, if it is in it.
    pub order: Option<usize>,
    /// The operation no linearization could place.
    pub stuck: bool,
    /// A stale read, with its age in ms.
    pub stale_ms: Option<f64>,
    /// An acknowledged write the final read does not reflect.
    pub lost: bool,
    /// The final read that lost writes.
    pub final_read: bool,
}

/// The failing key, ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureView {
    /// The key.
    pub key: String,
    /// The drawn operations, in invoke order.
    pub ops: Vec<ViewOp>,
    /// The key's operations left out before and after the drawn ones.
    pub hidden_before: usize,
    /// See `hidden_before`.
    pub hidden_after: usize,
    /// Length of the longest linearizable prefix.
    pub linearized_before: usize,
    /// The register's value at its end (`None`: absent).
    pub register_then: Option<String>,
    /// Stale reads and lost writes on the key, drawn or not.
    pub stale_reads: usize,
    /// See `stale_reads`.
    pub lost_writes: usize,
    /// Times are positions in the file, not nanoseconds (Jepsen logs, Knossos files).
    pub logical_time: bool,
}

impl FailureView {
    /// The stuck operation.
    pub fn stuck(&self) -> Option<&ViewOp> {
        self.ops.iter().find(|o| o.stuck)
    }
}

/// The first failing key of `report` (checked on `history`), or `None` when every key was
/// found linearizable.
pub fn view(history: &History, report: &CheckReport) -> Option<FailureView> {
    if report.linearizability.valid != Validity::Invalid {
        return None;
    }
    let failure = report.linearizability.failures.first()?;
    let key = history.key_id(&failure.key)?;
    let mode = report
        .history
        .mode_filter
        .as_deref()
        .map(|m| history.label_id(m));
    let keep = |o: &Op| o.key == key && mode.is_none_or(|m| m.is_some() && o.mode == m);
    let on_key = history.filtered(keep);
    // The other checkers again on this key, listing everything they find.
    let opts = CheckOptions {
        final_phase: report.lost_writes.final_phase.clone(),
        max_examples: usize::MAX,
        ..CheckOptions::default()
    };
    let sources = Sources::new(&on_key);
    let stale = stale::check(&on_key, &sources, &opts);
    let lost = lost::check(&on_key, &sources, &opts);
    let order = |index: u64| {
        failure
            .linearized
            .iter()
            .position(|&i| i == index)
            .map(|p| p + 1)
    };
    let stuck_at = on_key
        .ops
        .iter()
        .position(|o| o.index == failure.op.index)?;
    let from = stuck_at.saturating_sub(BEFORE);
    let stuck = on_key.ops.get(stuck_at)?;
    // Everything concurrent with the stuck operation is drawn too, within limits.
    let mut to = (stuck_at + AFTER + 1).min(on_key.ops.len());
    while to < on_key.ops.len()
        && to < stuck_at + 4 * AFTER
        && on_key.ops[to].invoke <= stuck.complete_or_max()
    {
        to += 1;
    }
    let ops = on_key.ops[from..to]
        .iter()
        .map(|o| ViewOp {
            op: OpRef::new(&on_key, o),
            order: order(o.index),
            stuck: o.index == failure.op.index,
            stale_ms: stale
                .examples
                .iter()
                .find(|s| s.read.index == o.index)
                .map(|s| s.age_ms),
            lost: lost
                .examples
                .iter()
                .any(|l| l.lost_indices.contains(&o.index)),
            final_read: lost.examples.iter().any(|l| l.final_read.index == o.index),
        })
        .collect();
    Some(FailureView {
        key: failure.key.clone(),
        ops,
        hidden_before: from,
        hidden_after: on_key.ops.len() - to,
        linearized_before: failure.linearized_before,
        register_then: failure.register_then.clone(),
        stale_reads: stale.count,
        lost_writes: lost.writes_lost,
        logical_time: history.logical_time,
    })
}
