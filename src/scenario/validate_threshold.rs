//! Validation of one `[[threshold]]`: a target the scenario loads, a phase it defines, a metric
//! that exists with one bound of the right kind, and a lesson.
//!
//! Where it sits: part of [`super::validate`], which calls it for each threshold once the
//! targets, phases and steps are known.

use super::file::RawThreshold;
use super::spec::{Bound, FINAL_PHASE, Metric, Phase, Step, Target, Threshold};
use super::validate::Validator;

impl Validator<'_> {
    pub(super) fn threshold(
        &mut self,
        i: usize,
        t: &RawThreshold,
        targets: &[Target],
        phases: &[Phase],
        steps: &[Step],
    ) -> Option<Threshold> {
        let field = format!("threshold[{i}]");
        let target = match Target::parse(t.target.get_ref()) {
            Some(target) if targets.contains(&target) => Some(target),
            Some(_) => {
                self.err(
                    &t.target,
                    format!("{field}.target"),
                    format!(
                        "{:?} is not among this scenario's targets",
                        t.target.get_ref()
                    ),
                );
                None
            }
            None => {
                self.err(
                    &t.target,
                    format!("{field}.target"),
                    format!("unknown target {:?} (expected cp, ap)", t.target.get_ref()),
                );
                None
            }
        };
        let metric = Metric::ALL
            .iter()
            .find(|(n, _)| n == t.metric.get_ref())
            .map(|(_, m)| *m);
        if metric.is_none() {
            let names: Vec<&str> = Metric::ALL.iter().map(|(n, _)| *n).collect();
            self.err(
                &t.metric,
                format!("{field}.metric"),
                format!(
                    "unknown metric {:?} (expected one of: {})",
                    t.metric.get_ref(),
                    names.join(", ")
                ),
            );
        }
        if let Some(p) = &t.phase {
            if metric.is_some_and(Metric::whole_run_only) {
                self.err(
                    p,
                    format!("{field}.phase"),
                    format!(
                        "{} is measured over the whole run; drop `phase`",
                        t.metric.get_ref()
                    ),
                );
            } else if !phases.iter().any(|q| &q.name == p.get_ref()) && p.get_ref() != FINAL_PHASE {
                self.err(
                    p,
                    format!("{field}.phase"),
                    format!("no phase named {:?} in this scenario", p.get_ref()),
                );
            }
        }
        if metric == Some(Metric::ConvergeMs) && !steps.iter().any(|s| s.action.heals()) {
            self.err(
                &t.metric,
                format!("{field}.metric"),
                "converge_ms needs a healing step (up, remove_toxic, heal, continue, restart)",
            );
        }
        if matches!(
            metric,
            Some(Metric::ReadRecoveryMs | Metric::AckedWritesWithoutReplica)
        ) && !steps.iter().any(|s| !s.action.heals())
        {
            self.err(
                &t.metric,
                format!("{field}.metric"),
                format!(
                    "{} measures a failover: it needs a fault step (down, toxic, kill, stop, failover)",
                    t.metric.get_ref()
                ),
            );
        }
        if t.lesson.get_ref().trim().is_empty() {
            self.err(
                &t.lesson,
                format!("{field}.lesson"),
                "state the CAP lesson this threshold shows",
            );
        }
        let bound = match (&t.min, &t.max, &t.equals) {
            (Some(v), None, None) => Some(Bound::Min(*v.get_ref())),
            (None, Some(v), None) => Some(Bound::Max(*v.get_ref())),
            (None, None, Some(v)) => Some(Bound::Equals(*v.get_ref())),
            _ => {
                self.err(
                    &t.metric,
                    field.to_string(),
                    "give exactly one of min, max, equals",
                );
                None
            }
        };
        let metric = metric?;
        match bound? {
            Bound::Equals(_) if !metric.is_bool() => {
                self.err(
                    &t.metric,
                    format!("{field}.equals"),
                    format!("{} is a number: use min or max", metric.name()),
                );
                return None;
            }
            Bound::Min(_) | Bound::Max(_) if metric.is_bool() => {
                self.err(
                    &t.metric,
                    format!("{field}.min"),
                    format!("{} is a verdict: use equals = true or false", metric.name()),
                );
                return None;
            }
            _ => {}
        }
        Some(Threshold {
            target: target?,
            phase: t.phase.as_ref().map(|p| p.get_ref().clone()),
            metric,
            bound: bound?,
            lesson: t.lesson.get_ref().trim().to_string(),
        })
    }
}
