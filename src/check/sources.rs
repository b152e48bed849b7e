//! Which writes a read's value could have come from, and when each was definitely overwritten.
//!
//! Where it sits: an index over a [`History`] shared by the stale-read, lost-write and session
//! checkers. Values need not be unique, so a read of `v` is explained by *any* write of `v`
//! on that key that was invoked no later than the read completed (`ok` or `info`; a `fail`
//! write never happened). A cas counts as a write of its new value: an `ok` one applied, an
//! `info` one may have. Equal times count as concurrent throughout. Every judgement built on it is conservative: an anomaly is reported only
//! if it holds whichever of those writes the value came from.
//!
//! It keeps the candidate writes sorted by (key, value, invoke time) with prefix maxima per
//! (key, value), so each question is a binary search:
//! - [`Sources::latest_end`]: the latest completion among candidates (`u64::MAX` if one is
//!   `info`: it may land at any time);
//! - [`Sources::earliest_start`]: the earliest invoke among candidates;
//! - [`Sources::superseded_by`]: the time by which every candidate had definitely been
//!   overwritten, i.e. the latest, over candidates `W1`, of the earliest completion of an `ok`
//!   write `W2` invoked after `W1` completed.

use super::history::{History, Outcome};

/// A write that could explain reads of its value, with maxima over the writes of the same
/// (key, value) invoked no later than it.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    key: u32,
    value: u32,
    invoke: u64,
    max_end: u64,
    max_superseded: u64,
}

/// The index; see the module docs. Flat sorted arrays searched by bisection: a few words per
/// write, no allocation per key or value.
#[derive(Debug)]
pub(crate) struct Sources {
    /// Writes that are not `fail`, sorted by (key, value, invoke).
    candidates: Vec<Candidate>,
    /// `ok` writes as (key, invoke), sorted.
    ok: Vec<(u32, u64)>,
    /// For each `ok[i]`: the least completion among `ok[i..]` of the same key.
    ok_min_complete_from: Vec<u64>,
}

impl Sources {
    pub(crate) fn new(history: &History) -> Sources {
        let mut ok: Vec<(u32, u64, u64)> = Vec::new();
        let mut raw: Vec<(u32, u32, u64, Option<u64>)> = Vec::new();
        for op in &history.ops {
            // A cas is a write of its new value (it is only here when it did or may apply).
            if !op.f.writes() || op.outcome == Outcome::Fail {
                continue;
            }
            let Some(value) = op.value else { continue };
            if let (Outcome::Ok, Some(c)) = (op.outcome, op.complete) {
                ok.push((op.key, op.invoke, c));
            }
            raw.push((op.key, value, op.invoke, op.complete));
        }
        ok.sort_unstable();
        let mut suffix = vec![u64::MAX; ok.len()];
        for i in (0..ok.len()).rev() {
            let next = match ok.get(i + 1) {
                Some(n) if n.0 == ok[i].0 => suffix[i + 1],
                _ => u64::MAX,
            };
            suffix[i] = next.min(ok[i].2);
        }
        let mut sources = Sources {
            candidates: Vec::with_capacity(raw.len()),
            ok: ok.iter().map(|&(k, i, _)| (k, i)).collect(),
            ok_min_complete_from: suffix,
        };
        raw.sort_unstable();
        let mut group = None;
        let (mut end, mut sup) = (0u64, 0u64);
        for (key, value, invoke, complete) in raw {
            if group != Some((key, value)) {
                group = Some((key, value));
                (end, sup) = (0, 0);
            }
            end = end.max(complete.unwrap_or(u64::MAX));
            let s = match complete {
                Some(t) => sources.first_ok_completion_after(key, Some(t)),
                None => u64::MAX,
            };
            sup = sup.max(s);
            sources.candidates.push(Candidate {
                key,
                value,
                invoke,
                max_end: end,
                max_superseded: sup,
            });
        }
        sources
    }

    /// The earliest completion of an `ok` write on `key` invoked strictly after `after`
    /// (`None` = after the beginning of time, i.e. any `ok` write); `u64::MAX` if none.
    pub(crate) fn first_ok_completion_after(&self, key: u32, after: Option<u64>) -> u64 {
        let from = match after {
            Some(t) => self.ok.partition_point(|&(k, i)| (k, i) <= (key, t)),
            None => self.ok.partition_point(|&(k, _)| k < key),
        };
        match self.ok.get(from) {
            Some(&(k, _)) if k == key => self
                .ok_min_complete_from
                .get(from)
                .copied()
                .unwrap_or(u64::MAX),
            _ => u64::MAX,
        }
    }

    /// The last candidate write of `value` invoked no later than `before` (equal times count
    /// as concurrent, as everywhere in the checker), and the first of them.
    fn last_before(&self, key: u32, value: u32, before: u64) -> Option<(&Candidate, &Candidate)> {
        let c = &self.candidates;
        let lo = c.partition_point(|x| (x.key, x.value) < (key, value));
        let n = c.partition_point(|x| (x.key, x.value, x.invoke) <= (key, value, before));
        if n <= lo {
            return None;
        }
        Some((c.get(n - 1)?, c.get(lo)?))
    }

    /// Latest completion (`u64::MAX` for `info`) among writes of `value` on `key` invoked
    /// before `before`; `None` if there is no such write.
    pub(crate) fn latest_end(&self, key: u32, value: u32, before: u64) -> Option<u64> {
        self.last_before(key, value, before)
            .map(|(last, _)| last.max_end)
    }

    /// Earliest invoke among writes of `value` on `key` invoked before `before`.
    pub(crate) fn earliest_start(&self, key: u32, value: u32, before: u64) -> Option<u64> {
        self.last_before(key, value, before)
            .map(|(_, first)| first.invoke)
    }

    /// The time by which every write of `value` on `key` invoked before `before` had
    /// definitely been overwritten by a completed `ok` write (`u64::MAX`: some candidate
    /// never was, e.g. an `info` one); `None` if there is no candidate. For the absent value
    /// (`None`) it is the first `ok` write's completion.
    pub(crate) fn superseded_by(&self, key: u32, value: Option<u32>, before: u64) -> Option<u64> {
        let Some(value) = value else {
            return Some(self.first_ok_completion_after(key, None));
        };
        self.last_before(key, value, before)
            .map(|(last, _)| last.max_superseded)
    }
}
