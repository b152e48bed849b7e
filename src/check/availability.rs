//! Availability: how many operations completed `ok`, `fail` or `info`, per `f`, per `mode`,
//! per `phase`, and per (mode, phase, f).
//!
//! Where it sits: the last checker [`super::check_history`] runs; it never fails a history
//! (thresholds on it belong to the scenario runner), it counts. Operations still open when
//! the history ended count as `info`. Groups are listed in the order they first appear in the
//! history, so phases read in time order.

use hashbrown::HashMap;

use serde::Serialize;

use super::event::OpKind;
use super::history::{History, Outcome};
use super::stale::rate;

/// Outcome counts of one group of operations.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Completed `ok`.
    pub ok: usize,
    /// Completed `fail` (definitely not applied).
    pub fail: usize,
    /// Completed `info` or never completed (unknown).
    pub info: usize,
    /// All operations.
    pub total: usize,
    /// `ok / total`: the availability.
    pub ok_rate: f64,
    /// `fail / total`.
    pub fail_rate: f64,
    /// `info / total`.
    pub info_rate: f64,
}

impl Counts {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Info => self.info += 1,
        }
        self.total += 1;
    }

    fn finish(&mut self) {
        self.ok_rate = rate(self.ok, self.total);
        self.fail_rate = rate(self.fail, self.total);
        self.info_rate = rate(self.info, self.total);
    }
}

/// Counts for one named group (a value of `f`, `mode` or `phase`; `""` when absent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The group's name.
    pub name: String,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Counts,
}

/// Counts for one (mode, phase, f) combination.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Mode, if the history has one.
    pub mode: Option<String>,
    /// Phase, if the history has one.
    pub phase: Option<String>,
    /// Read or write.
    pub f: OpKind,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Counts,
}

/// The availability section of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AvailabilityReport {
    /// Every operation.
    pub total: Counts,
    /// Per `f`.
    pub by_f: Vec<Group>,
    /// Per `mode`.
    pub by_mode: Vec<Group>,
    /// Per `phase`, in order of first appearance.
    pub by_phase: Vec<Group>,
    /// Per (mode, phase, f), in order of first appearance.
    pub rows: Vec<Row>,
}

/// Groups keyed by `K`, remembering first-appearance order.
struct Grouped<K> {
    index: HashMap<K, usize>,
    items: Vec<(K, Counts)>,
}

impl<K: std::hash::Hash + Eq + Clone> Grouped<K> {
    fn new() -> Self {
        Grouped {
            index: HashMap::new(),
            items: Vec::new(),
        }
    }

    fn add(&mut self, key: K, outcome: Outcome) {
        let i = *self.index.entry(key.clone()).or_insert_with(|| {
            self.items.push((key, Counts::default()));
            self.items.len() - 1
        });
        if let Some((_, c)) = self.items.get_mut(i) {
            c.add(outcome);
        }
    }

    fn finish(self) -> Vec<(K, Counts)> {
        let mut items = self.items;
        for (_, c) in &mut items {
            c.finish();
        }
        items
    }
}

pub(crate) fn check(history: &History) -> AvailabilityReport {
    let mut total = Counts::default();
    let (mut by_f, mut by_mode, mut by_phase, mut rows) = (
        Grouped::new(),
        Grouped::new(),
        Grouped::new(),
        Grouped::new(),
    );
    for op in &history.ops {
        total.add(op.outcome);
        by_f.add(op.f, op.outcome);
        by_mode.add(op.mode, op.outcome);
        by_phase.add(op.phase, op.outcome);
        rows.add((op.mode, op.phase, op.f), op.outcome);
    }
    total.finish();
    let name = |l: Option<u32>| l.map_or_else(String::new, |l| history.label(l).to_string());
    let label = |l: Option<u32>| l.map(|l| history.label(l).to_string());
    let mut by_f = by_f.finish();
    by_f.sort_by_key(|(f, _)| *f);
    AvailabilityReport {
        total,
        by_f: by_f
            .into_iter()
            .map(|(f, counts)| Group {
                name: f.as_str().to_string(),
                counts,
            })
            .collect(),
        by_mode: by_mode
            .finish()
            .into_iter()
            .map(|(m, counts)| Group {
                name: name(m),
                counts,
            })
            .collect(),
        by_phase: by_phase
            .finish()
            .into_iter()
            .map(|(p, counts)| Group {
                name: name(p),
                counts,
            })
            .collect(),
        rows: rows
            .finish()
            .into_iter()
            .map(|((mode, phase, f), counts)| Row {
                mode: label(mode),
                phase: label(phase),
                f,
                counts,
            })
            .collect(),
    }
}
