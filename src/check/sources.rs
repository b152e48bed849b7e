//! Which writes a read's value could have come from, and when each was definitely overwritten.
//!
//! Where it sits: an index over a [`History`] shared by the stale-read, lost-write and session
//! checkers. Values need not be unique, so a read of `v` is explained by *any* write of `v`
//! on that key that was invoked no later than the read completed (`ok` or `info`; a `fail`
//! write never happened). Equal times count as concurrent throughout. Every judgement built on it is conservative: an anomaly is reported only
//! if it holds whichever of those writes the value came from.
//!
//! Per `(key, value)` it keeps the candidate writes sorted by invoke time with prefix maxima,
//! so each question is a binary search:
//! - [`Sources::latest_end`]: the latest completion among candidates (`u64::MAX` if one is
//!   `info`: it may land at any time);
//! - [`Sources::earliest_start`]: the earliest invoke among candidates;
//! - [`Sources::superseded_by`]: the time by which every candidate had definitely been
//!   overwritten, i.e. the latest, over candidates `W1`, of the earliest completion of an `ok`
//!   write `W2` invoked after `W1` completed.

use hashbrown::HashMap;

use super::event::OpKind;
use super::history::{History, Outcome};

/// Candidate writes of one value on one key, sorted by invoke, with prefix maxima.
#[derive(Debug, Default)]
struct Candidates {
    invoke: Vec<u64>,
    max_end: Vec<u64>,
    max_superseded: Vec<u64>,
}

/// The index; see the module docs.
#[derive(Debug)]
pub(crate) struct Sources {
    by_value: HashMap<(u32, u32), Candidates>,
    /// Per key: `ok` writes sorted by invoke, and the suffix minimum of their completions.
    ok_invoke: Vec<Vec<u64>>,
    ok_min_complete_from: Vec<Vec<u64>>,
}

impl Sources {
    pub(crate) fn new(history: &History) -> Sources {
        let keys = history.key_count();
        let mut ok_writes: Vec<Vec<(u64, u64)>> = vec![Vec::new(); keys];
        // (key, value) -> (invoke, completion) of each write that is not `fail`.
        type Spans = Vec<(u64, Option<u64>)>;
        let mut raw: HashMap<(u32, u32), Spans> = HashMap::new();
        for op in &history.ops {
            if op.f != OpKind::Write || op.outcome == Outcome::Fail {
                continue;
            }
            let Some(value) = op.value else { continue };
            if let (Outcome::Ok, Some(c)) = (op.outcome, op.complete) {
                if let Some(w) = ok_writes.get_mut(op.key as usize) {
                    w.push((op.invoke, c));
                }
            }
            raw.entry((op.key, value))
                .or_default()
                .push((op.invoke, op.complete));
        }
        let mut ok_invoke = Vec::with_capacity(keys);
        let mut ok_min_complete_from = Vec::with_capacity(keys);
        for mut w in ok_writes {
            w.sort_unstable();
            let mut suffix = vec![u64::MAX; w.len() + 1];
            for i in (0..w.len()).rev() {
                suffix[i] = suffix[i + 1].min(w[i].1);
            }
            ok_invoke.push(w.iter().map(|x| x.0).collect());
            ok_min_complete_from.push(suffix);
        }
        let mut sources = Sources {
            by_value: HashMap::with_capacity(raw.len()),
            ok_invoke,
            ok_min_complete_from,
        };
        for ((key, value), mut ws) in raw {
            ws.sort_unstable();
            let mut c = Candidates::default();
            let (mut end, mut sup) = (0u64, 0u64);
            for (invoke, complete) in ws {
                end = end.max(complete.unwrap_or(u64::MAX));
                let s = match complete {
                    Some(t) => sources.first_ok_completion_after(key, Some(t)),
                    None => u64::MAX,
                };
                sup = sup.max(s);
                c.invoke.push(invoke);
                c.max_end.push(end);
                c.max_superseded.push(sup);
            }
            sources.by_value.insert((key, value), c);
        }
        sources
    }

    /// The earliest completion of an `ok` write on `key` invoked strictly after `after`
    /// (`None` = after the beginning of time, i.e. any `ok` write); `u64::MAX` if none.
    pub(crate) fn first_ok_completion_after(&self, key: u32, after: Option<u64>) -> u64 {
        let (Some(inv), Some(suffix)) = (
            self.ok_invoke.get(key as usize),
            self.ok_min_complete_from.get(key as usize),
        ) else {
            return u64::MAX;
        };
        let from = match after {
            Some(t) => inv.partition_point(|&i| i <= t),
            None => 0,
        };
        suffix.get(from).copied().unwrap_or(u64::MAX)
    }

    /// Number of candidate writes of `value` invoked no later than `before` (equal times
    /// count as concurrent, as everywhere in the checker).
    fn count(&self, key: u32, value: u32, before: u64) -> (Option<&Candidates>, usize) {
        match self.by_value.get(&(key, value)) {
            Some(c) => (Some(c), c.invoke.partition_point(|&i| i <= before)),
            None => (None, 0),
        }
    }

    /// Latest completion (`u64::MAX` for `info`) among writes of `value` on `key` invoked
    /// before `before`; `None` if there is no such write.
    pub(crate) fn latest_end(&self, key: u32, value: u32, before: u64) -> Option<u64> {
        match self.count(key, value, before) {
            (Some(c), n) if n > 0 => c.max_end.get(n - 1).copied(),
            _ => None,
        }
    }

    /// Earliest invoke among writes of `value` on `key` invoked before `before`.
    pub(crate) fn earliest_start(&self, key: u32, value: u32, before: u64) -> Option<u64> {
        match self.count(key, value, before) {
            (Some(c), n) if n > 0 => c.invoke.first().copied(),
            _ => None,
        }
    }

    /// The time by which every write of `value` on `key` invoked before `before` had
    /// definitely been overwritten by a completed `ok` write (`u64::MAX`: some candidate
    /// never was, e.g. an `info` one); `None` if there is no candidate. For the absent value
    /// (`None`) it is the first `ok` write's completion.
    pub(crate) fn superseded_by(&self, key: u32, value: Option<u32>, before: u64) -> Option<u64> {
        let Some(value) = value else {
            return Some(self.first_ok_completion_after(key, None));
        };
        match self.count(key, value, before) {
            (Some(c), n) if n > 0 => c.max_superseded.get(n - 1).copied(),
            _ => None,
        }
    }
}
