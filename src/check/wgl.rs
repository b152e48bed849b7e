//! The Wing-Gong-Lowe linearizability search for one key's register history.
//!
//! Where it sits: the inner loop of [`super::linearizable`], which splits a history per key
//! and runs this once per key. The algorithm is Porcupine's `checkSingle`: the key's call and
//! return entries in one doubly linked list ordered by time (calls before returns at equal
//! times, so ties count as concurrent); walk it from the head, *lift* a call (and its return)
//! when the model accepts it and the (linearized set, state) pair is new to the memo; when the
//! walk reaches a return entry, that operation could not be linearized before its deadline,
//! so undo the last lift and try the next candidate.
//!
//! Register specifics:
//! - `info` writes have no return entry (their return is at +infinity) and the search
//!   succeeds once every *determinate* operation is linearized, so an `info` write may take
//!   effect at any time after its invoke, or never.
//! - Canonical placements (pruning; each rule keeps at least one linearization whenever one
//!   exists, argued in `docs/decisions.md`, and checked against a brute-force oracle in
//!   `tests/check_props.rs`). In some linearization every write is immediately followed by
//!   a read of its value, or is dead (followed by a write, or last). So:
//!   1. a callable read of the current state is linearized at once, as the only move from
//!      that configuration (linearizing it now cannot lose a solution);
//!   2. an *unobserved* determinate write (no remaining read expects its value) is never
//!      chosen on its own: it is absorbed just before the next write linearized while it is
//!      callable, or placed at its deadline (its return entry) leaving the register
//!      unreadable until the next write; the search succeeds once only such writes remain;
//!   3. an observed determinate write is chosen when a read of its value is callable, or
//!      anywhere when another pending write of the same value exists; otherwise it waits
//!      for its deadline;
//!   4. an `info` write is chosen only when a read of its value is callable, and only the
//!      earliest pending `info` write of each value (callable `info` writes of one value
//!      are interchangeable: none has a deadline).
//!
//! Worst case the search is still exponential in the number of mutually concurrent
//! operations on one key (checking linearizability is NP-complete); `--timeout` and the
//! memo budget bound it, with the verdict `unknown`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::entries::NIL;
use super::memo::{Insert, MemoBudget};
use super::searcher::{Searcher, UNREADABLE};

/// One operation of a key, as the search sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyOp {
    /// Index into `History::ops`.
    pub id: usize,
    pub read: bool,
    /// Register state this op writes or expects: 0 = absent, otherwise a per-key value id + 1.
    pub value: u32,
    pub invoke: u64,
    /// `None` for an `info` write.
    pub complete: Option<u64>,
}

/// Why a search gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownReason {
    /// The check's `--timeout` passed.
    Timeout,
    /// The memo sets reached the memory limit.
    Memory,
}

/// The verdict for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Search {
    Linearizable,
    /// No linearization exists. `op` (index into the key's ops) is the operation the deepest
    /// partial linearization (`depth` operations long, register then holding `state`) could
    /// not be extended past.
    Illegal {
        op: usize,
        depth: usize,
        state: u32,
    },
    Unknown(UnknownReason),
}

/// What stops a search early.
pub(crate) struct Limits<'a> {
    pub deadline: Option<Instant>,
    pub stop: &'a AtomicBool,
    pub budget: &'a MemoBudget,
}

/// Searches for a linearization of one key's operations. `states` bounds the register
/// states (`1 + number of distinct values`). Returns the verdict and the memo size.
pub(crate) fn search(ops: &[KeyOp], states: usize, limits: &Limits) -> (Search, usize) {
    let mut s = Searcher::new(ops, states, limits.budget);
    // (depth, op, state) of the deepest dead end at a return entry.
    let mut best: Option<(usize, usize, u32)> = None;
    let mut steps = 0u64;
    let mut entry = s.list.next[0];
    // A configuration just reached: a read of its state, if callable, is its only move.
    let mut fresh = true;
    loop {
        steps += 1;
        if steps % 1024 == 0 {
            let late = limits.deadline.is_some_and(|d| Instant::now() >= d);
            if late {
                limits.stop.store(true, Ordering::Relaxed);
            }
            if late || limits.stop.load(Ordering::Relaxed) {
                return (Search::Unknown(UnknownReason::Timeout), s.memo.len());
            }
        }
        if s.done() || entry == NIL {
            return (Search::Linearizable, s.memo.len());
        }
        let i = s.list.op[entry as usize] as usize;
        let o = ops[i];
        let read_now = if fresh {
            fresh = false;
            s.callable_read_of(s.state)
        } else {
            None
        };
        let attempt = if let Some(node) = read_now {
            // A read of the current state goes now; nothing is lost by not waiting.
            Some((node, s.state, true))
        } else if s.list.is_call[entry as usize] {
            if o.read {
                None // not of the current state (or the closure above would have taken it)
            } else if o.complete.is_none() {
                s.info_write_useful(entry)
                    .then_some((entry, o.value, false))
            } else if s.is_unobserved_write(i) {
                None // placed only by absorption or at its deadline
            } else if s.callable_read_of(o.value).is_some() || s.has_twin(o.value) {
                // Just before a read of its value; or anywhere, when another pending write
                // of the same value could serve that read instead.
                Some((entry, o.value, false))
            } else {
                None // placed at its deadline, or when a read of its value becomes callable
            }
        } else if o.complete.is_some() && !o.read {
            // A write's deadline: place it now. If nothing reads its value any more, the
            // register is unreadable until the next write.
            let state = if s.is_unobserved_write(i) {
                UNREADABLE
            } else {
                o.value
            };
            Some((s.list.call[i], state, true))
        } else {
            if best.is_none_or(|(depth, _, _)| s.stack.len() > depth) {
                best = Some((s.stack.len(), i, s.state));
            }
            None
        };
        match attempt {
            None if s.list.is_call[entry as usize] => {
                entry = s.list.next[entry as usize];
                continue;
            }
            None => {} // a dead end

            Some((node, state, forced)) => match s.try_lift(node, state, forced) {
                Insert::New => {
                    entry = s.list.next[0];
                    fresh = true;
                    continue;
                }
                Insert::OutOfBudget => {
                    return (Search::Unknown(UnknownReason::Memory), s.memo.len());
                }
                // A forced move already explored: this configuration fails too.
                Insert::Seen if forced => {}
                Insert::Seen => {
                    entry = s.list.next[entry as usize];
                    continue;
                }
            },
        }
        // Backtrack: undo lifts until one that was a free choice, then try its next sibling.
        loop {
            let Some(frame) = s.undo() else {
                let (depth, op, state) = best.unwrap_or((0, 0, 0));
                return (Search::Illegal { op, depth, state }, s.memo.len());
            };
            if !frame.forced {
                entry = s.list.next[frame.node as usize];
                break;
            }
        }
    }
}
