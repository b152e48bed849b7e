//! Thresholds: each metric of a target (in a phase) measured from the run's statistics and
//! the checker's report, compared with its bound.
//!
//! Where it sits: after the run and the check, before the report. A metric that could not be
//! measured (no operations in the phase, never converged) fails its threshold and says why:
//! a threshold never passes on missing data.

use serde::Serialize;

use super::failover::FailoverTimes;
use super::spec::{Bound, Metric, Threshold};
use super::stats::Group;
use crate::check::{CheckReport, Validity};

/// What one target's thresholds are measured from.
pub struct Measured<'a> {
    /// Phase names, in the order of `phases`.
    pub phase_names: &'a [String],
    /// Statistics per phase.
    pub phases: &'a [Group],
    /// The whole load.
    pub whole: &'a Group,
    /// The checker's report on this target's history.
    pub check: &'a CheckReport,
    /// Time to converge after the last heal, ms (`None`: never).
    pub converge_ms: Option<f64>,
    /// Whether the scenario has a phase for the final reads.
    pub final_phase: Option<&'a str>,
    /// The failover measures.
    pub failover: &'a FailoverTimes,
}

impl Measured<'_> {
    fn group(&self, phase: Option<&str>) -> Option<&Group> {
        match phase {
            None => Some(self.whole),
            Some(p) => self
                .phase_names
                .iter()
                .position(|n| n == p)
                .and_then(|i| self.phases.get(i)),
        }
    }

    /// The value of `metric` in `phase` (`None` when it cannot be measured), and a note.
    pub fn value(&self, metric: Metric, phase: Option<&str>) -> (Option<f64>, Option<String>) {
        let rate = |n: u64, of: u64| (of > 0).then(|| n as f64 / of as f64);
        let Some(g) = self.group(phase) else {
            return (None, Some("no such phase".into()));
        };
        let empty = |what: &str| Some(format!("no {what} in this phase"));
        match metric {
            Metric::Availability => (rate(g.ok, g.total()), empty("operations")),
            Metric::ReadAvailability => (rate(g.reads_ok, g.reads), empty("reads")),
            Metric::WriteAvailability => (rate(g.writes_ok, g.writes), empty("writes")),
            Metric::LatencyP50Ms => (g.latency_ms(0.5), empty("operations")),
            Metric::LatencyP99Ms => (g.latency_ms(0.99), empty("operations")),
            Metric::LatencyMaxMs => (g.latency_ms(1.0), empty("operations")),
            Metric::MaxStalenessMs => (
                Some(g.max_staleness_ms.unwrap_or(0) as f64),
                g.max_staleness_ms
                    .is_none()
                    .then(|| "no ok read reported a staleness (0 assumed)".into()),
            ),
            Metric::StaleReadRate => {
                let sr = &self.check.stale_reads;
                let (stale, reads) = match phase {
                    Some(p) => sr.by_phase.get(p).map_or((0, 0), |c| (c.stale, c.reads)),
                    // The whole load: every phase but the final reads.
                    None => sr
                        .by_phase
                        .iter()
                        .filter(|(name, _)| Some(name.as_str()) != self.final_phase)
                        .fold((0, 0), |(s, r), (_, c)| (s + c.stale, r + c.reads)),
                };
                (rate(stale as u64, reads as u64), empty("ok reads checked"))
            }
            Metric::SessionViolations => {
                let s = &self.check.sessions;
                (Some((s.read_your_writes + s.monotonic_reads) as f64), None)
            }
            Metric::LostWrites => (Some(self.check.lost_writes.writes_lost as f64), None),
            Metric::Linearizable => match self.check.linearizability.valid {
                Validity::Valid => (Some(1.0), None),
                Validity::Invalid => (Some(0.0), None),
                Validity::Unknown => (None, Some("the search did not finish (unknown)".into())),
            },
            Metric::ConvergeMs => (
                self.converge_ms,
                self.converge_ms
                    .is_none()
                    .then(|| "still failing or stale when the load ended".into()),
            ),
            Metric::ReadRecoveryMs => {
                let f = self.failover;
                let why = match (&f.to, f.whole_again_ms, f.first_ok_read_ms) {
                    (None, _, _) => "the target never switched primaries",
                    (Some(_), None, _) => "the new primary never had a linked replica again",
                    (Some(_), Some(_), None) => "no ok read on the new primary",
                    _ => "",
                };
                (f.read_recovery_ms, (!why.is_empty()).then(|| why.into()))
            }
            Metric::AckedWritesWithoutReplica => (
                self.failover.acked_writes_without_replica.map(|n| n as f64),
                self.failover
                    .acked_writes_without_replica
                    .is_none()
                    .then(|| "no fault step was applied".into()),
            ),
        }
    }
}

/// A threshold's verdict.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ThresholdResult {
    /// The threshold.
    #[serde(flatten)]
    pub threshold: Threshold,
    /// What was measured (`null`: could not be).
    pub measured: Option<f64>,
    /// Whether it holds.
    pub passed: bool,
    /// Why it could not be measured, or a caveat.
    pub note: Option<String>,
}

/// Whether `value` meets `bound` (missing data never does).
pub fn holds(bound: Bound, value: Option<f64>) -> bool {
    match (bound, value) {
        (_, None) => false,
        (Bound::Min(m), Some(v)) => v >= m,
        (Bound::Max(m), Some(v)) => v <= m,
        (Bound::Equals(b), Some(v)) => (v != 0.0) == b,
    }
}

/// Evaluates `t` against the measures of its target.
pub fn evaluate(t: &Threshold, m: &Measured<'_>) -> ThresholdResult {
    let (measured, note) = m.value(t.metric, t.phase.as_deref());
    ThresholdResult {
        threshold: t.clone(),
        measured,
        passed: holds(t.bound, measured),
        note: if measured.is_none() {
            note
        } else {
            note.filter(|_| false).or(None)
        },
    }
}

/// `availability[cp, partition] >= 0.99`
pub fn describe(t: &Threshold) -> String {
    let scope = match &t.phase {
        Some(p) => format!("{}, {p}", t.target.as_str()),
        None => t.target.as_str().to_string(),
    };
    let bound = match t.bound {
        Bound::Min(v) => format!(">= {v}"),
        Bound::Max(v) => format!("<= {v}"),
        Bound::Equals(b) => format!("== {b}"),
    };
    format!("{}[{scope}] {bound}", t.metric.name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::spec::Target;

    #[test]
    fn bounds_hold_and_missing_data_fails() {
        assert!(holds(Bound::Min(0.99), Some(0.995)));
        assert!(!holds(Bound::Min(0.99), Some(0.98)));
        assert!(holds(Bound::Max(0.0), Some(0.0)));
        assert!(!holds(Bound::Max(0.0), Some(1.0)));
        assert!(holds(Bound::Equals(true), Some(1.0)));
        assert!(!holds(Bound::Equals(true), Some(0.0)));
        assert!(holds(Bound::Equals(false), Some(0.0)));
        assert!(!holds(Bound::Max(10.0), None));
        assert!(!holds(Bound::Equals(true), None));
    }

    #[test]
    fn describes_a_threshold() {
        let t = Threshold {
            target: Target::Cp,
            phase: Some("partition".into()),
            metric: Metric::WriteAvailability,
            bound: Bound::Max(0.05),
            lesson: "CP refuses".into(),
        };
        assert_eq!(describe(&t), "write_availability[cp, partition] <= 0.05");
    }
}
