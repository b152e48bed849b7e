//! Test support: histories generated from a real sequential register under random
//! concurrency, for the property tests (`tests/check_props.rs`) and the benchmarks
//! (`benches/checker.rs`). Public so both can share it without copies; nothing in the data
//! path uses it.
//!
//! How it works: `processes` client slots run concurrently in simulated time. Each operation
//! has an invoke, a linearization point strictly inside its interval where it is applied to
//! a per-key register, and a completion; so a generated history is linearizable by
//! construction (unless `replica_lag_ns` makes reads look into the past). Writes may end
//! `fail` (not applied) or `info` (applied at a random later time, possibly after the
//! history ends, or never); a slot whose operation ended `info` continues under a new process
//! number, as the history format requires. A share of the writes can be compare-and-set
//! operations, expecting the value the register held at their invoke half of the time: one
//! applies only if the register holds its expected value at its linearization point, and
//! otherwise ends `fail` (or stays `info`), as a real register answers. Optionally each slot is a session, operations
//! are spread over named phases, and every key is read once more in a last phase `final`
//! after all else completed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::event::{Event, EventType, OpKind};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Operations issued (not counting the final reads).
    pub ops: usize,
    /// Keys, `k0` .. `k{keys-1}`, chosen uniformly.
    pub keys: usize,
    /// Concurrent client slots.
    pub processes: usize,
    /// Share of reads.
    pub read_ratio: f64,
    /// Share of the other operations that are compare-and-set rather than writes.
    pub cas_ratio: f64,
    /// Share of writes that end `info` (half of them take effect).
    pub info_ratio: f64,
    /// Share of operations that end `fail` (not applied).
    pub fail_ratio: f64,
    /// `Some(n)`: values drawn from `v0` .. `v{n-1}` (repeats); `None`: every write unique.
    pub distinct_values: Option<usize>,
    /// Upper bound of the invoke-to-apply and apply-to-complete delays, ns.
    pub max_latency_ns: u64,
    /// Upper bound of a slot's pause between operations, ns.
    pub max_think_ns: u64,
    /// Reads return the register as it was this long before their linearization point
    /// (0: a correct register).
    pub replica_lag_ns: u64,
    /// Tag each slot's operations with a session `s{slot}`.
    pub sessions: bool,
    /// Spread operations over these phases, in order, by invoke count.
    pub phases: Vec<String>,
    /// After everything completed, read every written key once in phase `final`.
    pub final_reads: bool,
    /// Random seed; the same config gives the same history.
    pub seed: u64,
}

impl Default for GenConfig {
    fn default() -> GenConfig {
        GenConfig {
            ops: 1000,
            keys: 10,
            processes: 8,
            read_ratio: 0.5,
            cas_ratio: 0.0,
            info_ratio: 0.0,
            fail_ratio: 0.0,
            distinct_values: None,
            max_latency_ns: 1_000_000,
            max_think_ns: 500_000,
            replica_lag_ns: 0,
            sessions: false,
            phases: Vec::new(),
            final_reads: false,
            seed: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Apply,
    Complete,
    Invoke,
}

struct PendingOp {
    slot: usize,
    process: u64,
    f: OpKind,
    key: usize,
    value: Option<String>,
    /// A cas's expected value.
    expected: Option<String>,
    outcome: EventType,
    phase: Option<String>,
}

/// Generates a history (events in time order, `index` from 0).
pub fn generate(cfg: &GenConfig) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let keys = cfg.keys.max(1);
    let slots = cfg.processes.max(1);
    let lat = cfg.max_latency_ns.max(1);
    // Per key: (time, value) each time the register changed.
    let mut register: Vec<Vec<(u64, Option<String>)>> = vec![vec![(0, None)]; keys];
    let mut written = vec![false; keys];
    let mut process: Vec<u64> = (0..slots as u64).collect();
    let mut next_process = slots as u64;
    let mut ops: Vec<PendingOp> = Vec::new();
    let mut out: Vec<(u64, u64, Event)> = Vec::new();
    let mut heap: BinaryHeap<Reverse<(u64, u64, Step, usize)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut issued = 0usize;
    let mut idle = 0usize;
    let mut final_left: Option<Vec<usize>> = None;
    for slot in 0..slots {
        heap.push(Reverse((
            rng.random_range(0..=cfg.max_think_ns),
            seq,
            Step::Invoke,
            slot,
        )));
        seq += 1;
    }
    while let Some(Reverse((t, _, step, id))) = heap.pop() {
        seq += 1;
        match step {
            Step::Invoke => {
                let slot = id;
                let (f, key, phase) = if issued < cfg.ops {
                    let f = if rng.random_bool(cfg.read_ratio.clamp(0.0, 1.0)) {
                        OpKind::Read
                    } else if cfg.cas_ratio > 0.0 && rng.random_bool(cfg.cas_ratio.min(1.0)) {
                        // (no draw without cas: histories of older seeds stay the same)
                        OpKind::Cas
                    } else {
                        OpKind::Write
                    };
                    let phase = (!cfg.phases.is_empty())
                        .then(|| cfg.phases[issued * cfg.phases.len() / cfg.ops.max(1)].clone());
                    issued += 1;
                    (f, rng.random_range(0..keys), phase)
                } else if let Some(left) = final_left.as_mut() {
                    let Some(key) = left.pop() else { continue };
                    (OpKind::Read, key, Some("final".to_string()))
                } else {
                    // This slot is done; once all are, read every written key once more.
                    idle += 1;
                    if idle == slots && cfg.final_reads {
                        let mut left: Vec<usize> = (0..keys).filter(|&k| written[k]).collect();
                        left.reverse();
                        final_left = Some(left);
                        let start = t + 1 + lat.saturating_mul(8); // after any pending info write could land
                        for s in 0..slots {
                            heap.push(Reverse((start + s as u64, seq, Step::Invoke, s)));
                        }
                    }
                    continue;
                };
                let pick = |rng: &mut StdRng| match cfg.distinct_values {
                    Some(n) => format!("v{}", rng.random_range(0..n.max(1))),
                    None => format!("v{}-{}", process[slot], seq),
                };
                let value = f.writes().then(|| pick(&mut rng));
                // Half of the cas operations expect what the register holds now; the others
                // an earlier value of the key, or absent.
                let expected = if f != OpKind::Cas {
                    None
                } else if rng.random_bool(0.5) {
                    register[key].last().and_then(|(_, v)| v.clone())
                } else {
                    let past = &register[key];
                    past[rng.random_range(0..past.len())].1.clone()
                };
                let roll: f64 = rng.random();
                let outcome = if roll < cfg.fail_ratio {
                    EventType::Fail
                } else if roll < cfg.fail_ratio + cfg.info_ratio {
                    EventType::Info
                } else {
                    EventType::Ok
                };
                let applies = match outcome {
                    EventType::Ok => true,
                    EventType::Info => f.writes() && rng.random_bool(0.5),
                    _ => false,
                };
                let mut e = Event::new(
                    0,
                    process[slot],
                    EventType::Invoke,
                    f,
                    format!("k{key}"),
                    value.clone(),
                    t,
                );
                e.expected = expected.clone();
                e.session = cfg.sessions.then(|| format!("s{slot}"));
                e.phase = phase.clone();
                out.push((t, seq, e));
                let apply_at = match outcome {
                    EventType::Info => t + 1 + rng.random_range(0..lat.saturating_mul(4)),
                    _ => t + 1 + rng.random_range(0..lat),
                };
                let complete_at = match outcome {
                    EventType::Info => t + 1 + lat.saturating_mul(2),
                    _ => apply_at + 1 + rng.random_range(0..lat),
                };
                let op = ops.len();
                ops.push(PendingOp {
                    slot,
                    process: process[slot],
                    f,
                    key,
                    value,
                    expected,
                    outcome,
                    phase,
                });
                if applies {
                    heap.push(Reverse((apply_at, seq, Step::Apply, op)));
                }
                heap.push(Reverse((complete_at, seq, Step::Complete, op)));
            }
            Step::Apply => {
                let Some(op) = ops.get_mut(id) else { continue };
                let Some(reg) = register.get_mut(op.key) else {
                    continue;
                };
                match op.f {
                    OpKind::Write => {
                        reg.push((t, op.value.clone()));
                        written[op.key] = true;
                    }
                    OpKind::Cas => {
                        if reg.last().map(|(_, v)| v) == Some(&op.expected) {
                            reg.push((t, op.value.clone()));
                            written[op.key] = true;
                        } else if op.outcome == EventType::Ok {
                            op.outcome = EventType::Fail; // the value did not match
                        }
                    }
                    OpKind::Read => {
                        let seen = t.saturating_sub(cfg.replica_lag_ns);
                        let i = reg.partition_point(|(at, _)| *at <= seen);
                        op.value = reg.get(i.saturating_sub(1)).and_then(|(_, v)| v.clone());
                    }
                }
            }
            Step::Complete => {
                let Some(op) = ops.get(id) else { continue };
                let value = match (op.f, op.outcome) {
                    (OpKind::Read, EventType::Ok) | (OpKind::Write | OpKind::Cas, _) => {
                        op.value.clone()
                    }
                    _ => None,
                };
                let mut e = Event::new(
                    0,
                    op.process,
                    op.outcome,
                    op.f,
                    format!("k{}", op.key),
                    value,
                    t,
                );
                e.expected = op.expected.clone();
                e.session = cfg.sessions.then(|| format!("s{}", op.slot));
                e.phase = op.phase.clone();
                out.push((t, seq, e));
                let slot = op.slot;
                if op.outcome == EventType::Info {
                    process[slot] = next_process;
                    next_process += 1;
                }
                let think = rng.random_range(0..=cfg.max_think_ns);
                heap.push(Reverse((t + 1 + think, seq, Step::Invoke, slot)));
            }
        }
    }
    out.sort_by_key(|(t, s, _)| (*t, *s));
    out.into_iter()
        .enumerate()
        .map(|(i, (_, _, mut e))| {
            e.index = i as u64;
            e
        })
        .collect()
}

/// Sets the value returned by the `n`-th `ok` read (counting from 0, modulo the number of
/// `ok` reads) to `value`. Returns the `index` of the changed event, or `None` when the
/// history has no `ok` read.
pub fn corrupt_read(events: &mut [Event], n: usize, value: Option<String>) -> Option<u64> {
    let reads: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].kind == EventType::Ok && events[i].f == OpKind::Read)
        .collect();
    let &i = reads.get(n % reads.len().max(1))?;
    let e = events.get_mut(i)?;
    e.value = value;
    Some(e.index)
}

/// Turns the `n`-th determinate cas (counting from 0, modulo their number) from `ok` into
/// `fail` or back: a corrupted answer. Returns the `index` of the changed event, or `None`
/// when the history has no `ok` or `fail` cas.
pub fn flip_cas(events: &mut [Event], n: usize) -> Option<u64> {
    let cas: Vec<usize> = (0..events.len())
        .filter(|&i| {
            events[i].f == OpKind::Cas && matches!(events[i].kind, EventType::Ok | EventType::Fail)
        })
        .collect();
    let &i = cas.get(n % cas.len().max(1))?;
    let e = events.get_mut(i)?;
    e.kind = match e.kind {
        EventType::Ok => EventType::Fail,
        _ => EventType::Ok,
    };
    Some(e.index)
}

/// The history as JSON Lines.
pub fn to_jsonl(events: &[Event]) -> String {
    let mut s = String::with_capacity(events.len() * 100);
    for e in events {
        if let Ok(line) = serde_json::to_string(e) {
            s.push_str(&line);
            s.push('\n');
        }
    }
    s
}
