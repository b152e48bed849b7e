//! Per-key linearizability of the register model: splits the history per key (a register per
//! key is P-compositional, as Porcupine's partitioning relies on) and runs the
//! Wing-Gong-Lowe search (`wgl.rs`) on each key, on all cores, under one deadline and
//! one memory budget for the whole check.
//!
//! Where it sits: the first checker [`super::check_history`] runs. What each key's search
//! sees: `ok` reads, writes and cas operations, and `info` writes and cas operations (return
//! at +infinity). `fail` operations definitely did not happen and are dropped (as Knossos
//! does: a failed cas is not taken as proof that the value differed); reads that did not
//! complete `ok` observed nothing and are dropped too.

use hashbrown::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;

use super::CheckOptions;
use super::event::OpKind;
use super::history::{History, Outcome};
use super::memo::MemoBudget;
use super::report::{OpRef, Validity};
use super::wgl::{KeyOp, Limits, Search, UnknownReason, search};

/// A key that has no linearization, and where the search got stuck.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinearizabilityFailure {
    /// The key.
    pub key: String,
    /// The operation the longest partial linearization could not be extended past (usually
    /// the read that returned an impossible value, or a write whose deadline passed).
    pub op: OpRef,
    /// How many of the key's operations that longest partial linearization held.
    pub linearized_before: usize,
    /// That prefix: the `index` of each operation's invoke, in linearization order (drawn
    /// by `--html`; left out of the JSON, which gives its length).
    #[serde(skip)]
    pub linearized: Vec<u64>,
    /// The register's value at that point (`null` = absent).
    pub register_then: Option<String>,
}

/// Linearizability verdict for the whole history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinearizabilityReport {
    /// `true`, `false`, or `"unknown"` when some key's search did not finish and none failed.
    pub valid: Validity,
    /// The model checked.
    pub model: &'static str,
    /// Keys searched.
    pub keys: usize,
    /// Keys found linearizable.
    pub keys_valid: usize,
    /// Keys found not linearizable.
    pub keys_invalid: usize,
    /// Keys whose search did not finish.
    pub keys_unknown: usize,
    /// Operations given to the search (`ok` reads, writes and cas; `info` writes and cas).
    pub ops_searched: usize,
    /// The failing keys (up to `max_examples`), earliest failing operation first.
    pub failures: Vec<LinearizabilityFailure>,
    /// Keys left unknown (up to `max_examples`).
    pub unknown_keys: Vec<String>,
    /// Why some keys are unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<UnknownReason>,
    /// Configurations memoised, summed over keys.
    pub memo_entries: usize,
    /// Most bytes the memo sets held at once.
    pub memo_peak_bytes: usize,
    /// Wall time of the search, ms.
    pub elapsed_ms: f64,
}

/// One key's result, with the failing operation resolved to its history index.
enum KeyVerdict {
    Valid,
    Invalid {
        id: usize,
        prefix: Vec<u64>,
        register: Option<String>,
    },
    Unknown(UnknownReason),
}

/// One key's operations in search form, each one's index into `History::ops` (same order),
/// and the key's values: state `s > 0` of its register stands for value `values[s - 1]`.
fn key_ops(history: &History, ids: &[usize]) -> (Vec<KeyOp>, Vec<usize>, Vec<u32>) {
    let mut local: HashMap<u32, u32> = HashMap::new();
    let mut values = Vec::new();
    let mut ops = Vec::with_capacity(ids.len());
    let mut kept = Vec::with_capacity(ids.len());
    for &id in ids {
        let Some(op) = history.ops.get(id) else {
            continue;
        };
        let keep = match op.f {
            OpKind::Read => op.outcome == Outcome::Ok,
            OpKind::Write | OpKind::Cas => op.outcome != Outcome::Fail,
        };
        if !keep {
            continue;
        }
        let mut state = |value: Option<u32>| match value {
            None => 0,
            Some(v) => *local.entry(v).or_insert_with(|| {
                values.push(v);
                values.len() as u32
            }),
        };
        let value = state(op.value);
        let expect = if op.f == OpKind::Cas {
            state(op.expected)
        } else {
            0
        };
        kept.push(id);
        ops.push(KeyOp {
            kind: op.f,
            value,
            expect,
            invoke: op.invoke,
            complete: if op.outcome == Outcome::Ok {
                op.complete
            } else {
                None
            },
        });
    }
    (ops, kept, values)
}

/// Checks every key of `history`.
pub(crate) fn check(history: &History, opts: &CheckOptions) -> LinearizabilityReport {
    let started = Instant::now();
    let mut per_key: Vec<Vec<usize>> = vec![Vec::new(); history.key_count()];
    for (i, op) in history.ops.iter().enumerate() {
        if let Some(k) = per_key.get_mut(op.key as usize) {
            k.push(i);
        }
    }
    let mut order: Vec<usize> = (0..per_key.len())
        .filter(|&k| !per_key[k].is_empty())
        .collect();
    order.sort_by_key(|&k| std::cmp::Reverse(per_key[k].len())); // biggest first: better balance
    let budget = MemoBudget::new(opts.max_memo_bytes);
    let stop = AtomicBool::new(false);
    let limits = Limits {
        deadline: opts.timeout.map(|t| started + t),
        stop: &stop,
        budget: &budget,
    };
    let next = AtomicUsize::new(0);
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, order.len().clamp(1, 256));
    let worker = || {
        let mut out = Vec::new();
        while let Some(&key) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            let (ops, ids, values) = key_ops(history, &per_key[key]);
            let (verdict, memo) = search(&ops, values.len() + 1, &limits);
            let verdict = match verdict {
                Search::Linearizable => KeyVerdict::Valid,
                Search::Unknown(why) => KeyVerdict::Unknown(why),
                Search::Illegal { op, prefix, .. } => KeyVerdict::Invalid {
                    id: ids.get(op).copied().unwrap_or(0),
                    prefix: prefix
                        .iter()
                        .filter_map(|&i| history.ops.get(*ids.get(i)?))
                        .map(|o| o.index)
                        .collect(),
                    // The value the prefix's last write or cas left (the search's own state
                    // says "unreadable" after a write nothing observes).
                    register: prefix
                        .iter()
                        .rev()
                        .filter_map(|&i| ops.get(i))
                        .find(|o| o.kind != OpKind::Read)
                        .map_or(0, |o| o.value)
                        .checked_sub(1)
                        .and_then(|s| values.get(s as usize))
                        .map(|&v| history.value_name(v).to_string()),
                },
            };
            out.push((key, ops.len(), verdict, memo));
        }
        out
    };
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut report = LinearizabilityReport {
        valid: Validity::Valid,
        model: "register",
        keys: order.len(),
        keys_valid: 0,
        keys_invalid: 0,
        keys_unknown: 0,
        ops_searched: 0,
        failures: Vec::new(),
        unknown_keys: Vec::new(),
        unknown_reason: None,
        memo_entries: 0,
        memo_peak_bytes: budget.peak(),
        elapsed_ms: 0.0,
    };
    let mut failures = Vec::new();
    let mut unknown = Vec::new();
    for (key, n, verdict, memo) in &results {
        report.ops_searched += n;
        report.memo_entries += memo;
        match verdict {
            KeyVerdict::Valid => report.keys_valid += 1,
            KeyVerdict::Unknown(why) => {
                report.keys_unknown += 1;
                report.unknown_reason.get_or_insert(*why);
                unknown.push(*key);
            }
            KeyVerdict::Invalid {
                id,
                prefix,
                register,
            } => {
                report.keys_invalid += 1;
                failures.push((*id, *key, prefix.clone(), register.clone()));
            }
        }
    }
    // Keys never reached (a worker died) count as unknown rather than valid.
    let missing = report.keys - results.len();
    report.keys_unknown += missing;
    failures.sort();
    report.failures = failures
        .into_iter()
        .take(opts.max_examples)
        .filter_map(|(id, key, linearized, register_then)| {
            Some(LinearizabilityFailure {
                key: history.key_name(key as u32).to_string(),
                op: OpRef::new(history, history.ops.get(id)?),
                linearized_before: linearized.len(),
                linearized,
                register_then,
            })
        })
        .collect();
    unknown.sort_unstable();
    report.unknown_keys = unknown
        .into_iter()
        .take(opts.max_examples)
        .map(|k| history.key_name(k as u32).to_string())
        .collect();
    report.valid = if report.keys_invalid > 0 {
        Validity::Invalid
    } else if report.keys_unknown > 0 {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    report.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    report
}
