//! Stale reads: reads that returned a value older than a write that completed `ok` before the
//! read began, with the age of each.
//!
//! Where it sits: a checker run by [`super::check_history`] over the `Sources` index (`sources.rs`).
//! Definition (also in `docs/decisions.md`), for an `ok` read `R` of key `k` returning `v`:
//! - the possible sources of `v` are the writes of `v` to `k` (`ok` or `info`) invoked before
//!   `R` completed; for `v` absent, the key's initial state;
//! - a source `W1` is *definitely overwritten* at the earliest completion of an `ok` write
//!   `W2` invoked after `W1` completed (never, for an `info` `W1`: it may land at any time);
//!   the initial state is overwritten at the first `ok` write's completion;
//! - `R` is stale if every possible source had been definitely overwritten before `R` began.
//!   Its age is `R`'s invoke time minus the latest of those overwrite times: how long, at
//!   least, the value had been obsolete.
//!
//! A read whose value no write ever wrote is not "stale" but *unexplained*; it is counted
//! apart (the linearizability checker rejects it too).

use std::collections::BTreeMap;

use serde::Serialize;

use super::CheckOptions;
use super::event::OpKind;
use super::history::{History, Outcome};
use super::report::{OpRef, Percentiles, Validity};
use super::sources::Sources;

/// One stale read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaleRead {
    /// The read.
    pub read: OpRef,
    /// How long before the read began its value had definitely been overwritten, ms.
    pub age_ms: f64,
}

/// The age buckets of "how stale, how often": lower bound (inclusive) and name.
pub const AGE_BUCKETS: [(u64, &str); 4] = [
    (0, "under 100 ms"),
    (100_000_000, "100 ms to 1 s"),
    (1_000_000_000, "1 s to 10 s"),
    (10_000_000_000, "over 10 s"),
];

/// Stale reads of one age bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgeBucket {
    /// `under 100 ms`, `100 ms to 1 s`, `1 s to 10 s`, `over 10 s`.
    pub age: &'static str,
    /// Stale reads whose age falls in it.
    pub stale: usize,
    /// `stale / ok reads` of the group: the share of all reads that were this stale.
    pub share_of_reads: f64,
}

/// Counts stale reads (ages in ns) per age bucket, as shares of `reads`.
fn buckets(ages: &[u64], reads: usize) -> Vec<AgeBucket> {
    AGE_BUCKETS
        .iter()
        .enumerate()
        .map(|(i, &(from, age))| {
            let next = AGE_BUCKETS.get(i + 1).map(|b| b.0);
            let stale = ages
                .iter()
                .filter(|&&a| a >= from && next.is_none_or(|to| a < to))
                .count();
            AgeBucket {
                age,
                stale,
                share_of_reads: rate(stale, reads),
            }
        })
        .collect()
}

/// Stale reads among one group of reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StaleCount {
    /// `ok` reads.
    pub reads: usize,
    /// Stale ones among them.
    pub stale: usize,
    /// `stale / reads` (0 when there are no reads).
    pub rate: f64,
    /// How stale, how often: the share of this group's reads per age bucket.
    pub by_age: Vec<AgeBucket>,
    #[serde(skip)]
    ages: Vec<u64>,
}

/// The stale-read section of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaleReadsReport {
    /// `false` when any read is stale.
    pub valid: Validity,
    /// `ok` reads examined.
    pub reads: usize,
    /// Stale reads.
    pub count: usize,
    /// `count / reads`.
    pub rate: f64,
    /// Ages of the stale reads.
    pub age_ms: Percentiles,
    /// How stale, how often: the share of all `ok` reads that were stale, per age bucket.
    pub by_age: Vec<AgeBucket>,
    /// Per `mode` (reads without a mode under `""`).
    pub by_mode: BTreeMap<String, StaleCount>,
    /// Per `phase` (reads without a phase under `""`).
    pub by_phase: BTreeMap<String, StaleCount>,
    /// The first stale reads, in history order (up to `max_examples`).
    pub examples: Vec<StaleRead>,
    /// Reads of values that no write on the key ever wrote.
    pub unexplained: usize,
    /// The first of them.
    pub unexplained_examples: Vec<OpRef>,
}

fn bump(map: &mut BTreeMap<String, StaleCount>, name: &str, age: Option<u64>) {
    let c = map.entry(name.to_string()).or_default();
    c.reads += 1;
    if let Some(age) = age {
        c.stale += 1;
        c.ages.push(age);
    }
}

fn finish(map: &mut BTreeMap<String, StaleCount>) {
    for c in map.values_mut() {
        c.rate = rate(c.stale, c.reads);
        c.by_age = buckets(&c.ages, c.reads);
    }
}

pub(crate) fn rate(n: usize, of: usize) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

pub(crate) fn check(history: &History, sources: &Sources, opts: &CheckOptions) -> StaleReadsReport {
    let mut report = StaleReadsReport {
        valid: Validity::Valid,
        reads: 0,
        count: 0,
        rate: 0.0,
        age_ms: Percentiles::default(),
        by_age: Vec::new(),
        by_mode: BTreeMap::new(),
        by_phase: BTreeMap::new(),
        examples: Vec::new(),
        unexplained: 0,
        unexplained_examples: Vec::new(),
    };
    let mut ages = Vec::new();
    let label = |l: Option<u32>| l.map_or("", |l| history.label(l));
    for op in &history.ops {
        let (OpKind::Read, Outcome::Ok, Some(complete)) = (op.f, op.outcome, op.complete) else {
            continue;
        };
        report.reads += 1;
        let age = match sources.superseded_by(op.key, op.value, complete) {
            None => {
                report.unexplained += 1;
                if report.unexplained_examples.len() < opts.max_examples {
                    report.unexplained_examples.push(OpRef::new(history, op));
                }
                None
            }
            Some(overwritten) if overwritten < op.invoke => Some(op.invoke - overwritten),
            Some(_) => None,
        };
        bump(&mut report.by_mode, label(op.mode), age);
        bump(&mut report.by_phase, label(op.phase), age);
        let Some(age) = age else { continue };
        report.count += 1;
        ages.push(age);
        if report.examples.len() < opts.max_examples {
            report.examples.push(StaleRead {
                read: OpRef::new(history, op),
                age_ms: age as f64 / 1e6,
            });
        }
    }
    finish(&mut report.by_mode);
    finish(&mut report.by_phase);
    report.rate = rate(report.count, report.reads);
    report.by_age = buckets(&ages, report.reads);
    report.age_ms = Percentiles::of_ns(ages);
    report.valid = Validity::from_count(report.count);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_fall_in_their_buckets_as_shares_of_all_reads() {
        let ms = 1_000_000u64;
        let b = buckets(
            &[
                0,
                99 * ms,
                100 * ms,
                999 * ms,
                1000 * ms,
                10_000 * ms,
                u64::MAX,
            ],
            70,
        );
        let stale: Vec<usize> = b.iter().map(|b| b.stale).collect();
        assert_eq!(stale, vec![2, 2, 1, 2]);
        assert_eq!(b[0].age, "under 100 ms");
        assert_eq!(b[3].share_of_reads, 2.0 / 70.0);
        assert!(buckets(&[], 0).iter().all(|b| b.share_of_reads == 0.0));
    }
}
