//! The verdict types: what a check found, serialisable as the `--json` output and for the
//! scenario runner's `report.json`.
//!
//! Where it sits: the checkers ([`super::linearizable`], [`super::stale`], [`super::lost`],
//! [`super::session`], [`super::availability`]) each fill one section of [`CheckReport`];
//! [`super::render`] prints it for people. Operations are referred to by [`OpRef`], which
//! carries the `index` and line of the invoke so a reader can find them in the history.

use serde::{Serialize, Serializer};

use super::availability::AvailabilityReport;
use super::event::OpKind;
use super::history::{History, Op, Outcome};
use super::linearizable::LinearizabilityReport;
use super::lost::LostWritesReport;
use super::session::SessionReport;
use super::stale::StaleReadsReport;

/// Jepsen's three-valued verdict: serialised as `true`, `false` or `"unknown"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Nothing wrong was found, and the search finished.
    Valid,
    /// An anomaly was found.
    Invalid,
    /// The search did not finish (timeout or memory limit) and nothing wrong was found.
    Unknown,
}

impl Validity {
    /// Combines two verdicts: invalid wins, then unknown.
    pub fn and(self, other: Validity) -> Validity {
        match (self, other) {
            (Validity::Invalid, _) | (_, Validity::Invalid) => Validity::Invalid,
            (Validity::Unknown, _) | (_, Validity::Unknown) => Validity::Unknown,
            _ => Validity::Valid,
        }
    }

    /// Valid unless `anomalies` is non-zero.
    pub fn from_count(anomalies: usize) -> Validity {
        if anomalies == 0 {
            Validity::Valid
        } else {
            Validity::Invalid
        }
    }

    /// Exit status of `caplab check`: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 2,
        }
    }

    /// `valid`, `INVALID` or `unknown`, for the summary.
    pub fn word(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Invalid => "INVALID",
            Validity::Unknown => "unknown",
        }
    }
}

impl Serialize for Validity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Validity::Valid => s.serialize_bool(true),
            Validity::Invalid => s.serialize_bool(false),
            Validity::Unknown => s.serialize_str("unknown"),
        }
    }
}

/// An operation as reports name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpRef {
    /// `index` of its invoke event.
    pub index: u64,
    /// Line of its invoke event.
    pub line: usize,
    /// Client process.
    pub process: u64,
    /// Read, write or cas.
    pub f: OpKind,
    /// Key.
    pub key: String,
    /// Written or read value (`null` = absent); a cas's new value.
    pub value: Option<String>,
    /// A cas's expected value (`null` = absent); left out for reads and writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Option<String>>,
    /// How it ended.
    pub outcome: Outcome,
    /// Invoke time, ns.
    pub invoke_ns: u64,
    /// Completion time, ns (`null` for `info`).
    pub complete_ns: Option<u64>,
    /// Mode, node and session, when the history has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Node that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

impl OpRef {
    /// Describes `op` of `history`.
    pub fn new(history: &History, op: &Op) -> OpRef {
        let label = |l: Option<u32>| l.map(|l| history.label(l).to_string());
        OpRef {
            index: op.index,
            line: op.line,
            process: op.process,
            f: op.f,
            key: history.key_name(op.key).to_string(),
            value: history.value_text(op.value),
            expected: (op.f == OpKind::Cas).then(|| history.value_text(op.expected)),
            outcome: op.outcome,
            invoke_ns: op.invoke,
            complete_ns: op.complete,
            mode: label(op.mode),
            node: label(op.node),
            session: label(op.session),
        }
    }

    /// `read k1 -> "v"` style one-liner with index and process.
    pub fn describe(&self) -> String {
        let text = |v: &Option<String>| match v {
            Some(v) => format!("{v:?}"),
            None => "absent".to_string(),
        };
        let value = text(&self.value);
        let what = match (self.f, &self.expected) {
            (OpKind::Read, _) => format!("read of {:?} returned {value}", self.key),
            (OpKind::Write, _) => format!("write of {value} to {:?}", self.key),
            (OpKind::Cas, expected) => format!(
                "cas of {:?} from {} to {value}",
                self.key,
                text(expected.as_ref().unwrap_or(&None))
            ),
        };
        format!(
            "{what} (index {}, line {}, process {})",
            self.index, self.line, self.process
        )
    }
}

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `ns` (nanoseconds), reported in ms; all zero when empty.
    pub fn of_ns(mut ns: Vec<u64>) -> Percentiles {
        if ns.is_empty() {
            return Percentiles::default();
        }
        ns.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * ns.len() as f64).ceil() as usize).clamp(1, ns.len());
            ns.get(rank - 1).copied().unwrap_or(0) as f64 / 1e6
        };
        Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// What the history held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistorySummary {
    /// Events read.
    pub events: usize,
    /// Operations checked (after the `--mode` filter, if any).
    pub ops: usize,
    /// Distinct keys.
    pub keys: usize,
    /// Distinct processes.
    pub processes: usize,
    /// Invokes with no completion at the end, treated as `info`.
    pub open_at_end: usize,
    /// Jepsen `:time` values that went back and were raised to keep the file's order.
    #[serde(skip_serializing_if = "is_zero")]
    pub times_raised: usize,
    /// The `--mode` filter applied, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode_filter: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Everything a check found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Overall: invalid if any checker found an anomaly, unknown if the linearizability
    /// search did not finish and nothing else was wrong, valid otherwise.
    pub valid: Validity,
    /// What was checked.
    pub history: HistorySummary,
    /// Per-key linearizability of the register model.
    pub linearizability: LinearizabilityReport,
    /// Reads of definitely overwritten values.
    pub stale_reads: StaleReadsReport,
    /// Acknowledged writes missing at the end.
    pub lost_writes: LostWritesReport,
    /// Read-your-writes and monotonic-read violations per session.
    pub sessions: SessionReport,
    /// ok / fail / info counts per f, mode and phase.
    pub availability: AvailabilityReport,
}

impl CheckReport {
    /// Exit status of `caplab check` for this report.
    pub fn exit_code(&self) -> u8 {
        self.valid.exit_code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn validity_serialises_like_jepsen_and_combines() -> TestResult {
        assert_eq!(serde_json::to_string(&Validity::Valid)?, "true");
        assert_eq!(serde_json::to_string(&Validity::Invalid)?, "false");
        assert_eq!(serde_json::to_string(&Validity::Unknown)?, "\"unknown\"");
        assert_eq!(Validity::Unknown.and(Validity::Invalid), Validity::Invalid);
        assert_eq!(Validity::Valid.and(Validity::Unknown), Validity::Unknown);
        assert_eq!(Validity::Valid.and(Validity::Valid), Validity::Valid);
        Ok(())
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let p = Percentiles::of_ns((1..=100).map(|i| i * 1_000_000).collect());
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(Percentiles::of_ns(vec![]), Percentiles::default());
    }
}
