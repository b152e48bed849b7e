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
//! Register specifics (a cas is a read of its expected value and a write of its new one,
//! atomically; an operation *observes* a value when it is a read of it or a cas expecting it):
//! - `info` writes and `info` cas operations have no return entry (their return is at
//!   +infinity) and the search succeeds once every *determinate* operation is linearized,
//!   so an `info` operation may take effect at any time after its invoke, or never.
//! - Canonical placements (pruning; each rule keeps at least one linearization whenever one
//!   exists, argued in `docs/decisions.md`, and checked against a brute-force oracle in
//!   `tests/check_props.rs`). In some linearization every write is immediately followed by
//!   an observer of its value, or is dead (followed by a plain write, or last). So:
//!   1. a callable read of the current state is linearized at once, as the only move from
//!      that configuration (linearizing it now cannot lose a solution);
//!   2. an *unobserved* determinate write (no remaining operation observes its value) is
//!      never chosen on its own: it is absorbed just before the next plain write linearized
//!      while it is callable (never before a cas, which needs the state it found), or placed
//!      at its deadline (its return entry) leaving the register unreadable until the next
//!      write; the search succeeds once only such writes remain;
//!   3. an observed determinate write is chosen when an observer of its value is callable,
//!      or anywhere when another pending operation may set the same value or an `info` cas
//!      observes it (that cas may never happen); otherwise it waits for its deadline;
//!   4. an `info` write is chosen only when an observer of its value is callable, and only
//!      the earliest pending `info` write of each value (callable `info` writes of one value
//!      are interchangeable: none has a deadline);
//!   5. an `ok` cas is tried whenever it is callable and the register holds its expected
//!      value (no pruning); an `info` cas likewise, but only when it changes the value and
//!      an observer of its new value is callable (otherwise leaving it out loses nothing).
//!
//! Worst case the search is still exponential in the number of mutually concurrent
//! operations on one key (checking linearizability is NP-complete); `--timeout` and the
//! memo budget bound it, with the verdict `unknown`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::entries::NIL;
use super::event::OpKind;
use super::memo::{Insert, MemoBudget};
use super::searcher::{Searcher, UNREADABLE};

/// One operation of a key, as the search sees it (40 bytes: the search copies it often, so
/// what it does not need, such as the operation's place in the history, is kept beside it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyOp {
    pub kind: OpKind,
    /// Register state a read expects, or a write or cas leaves: 0 = absent, otherwise a
    /// per-key value id + 1.
    pub value: u32,
    /// Register state a cas expects (0 for reads and writes).
    pub expect: u32,
    pub invoke: u64,
    /// `None` for an `info` write or cas.
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
    /// partial linearization (`prefix`, in linearization order, register then holding
    /// `state`) could not be extended past.
    Illegal {
        op: usize,
        prefix: Vec<usize>,
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
///
/// A key without any cas (the common read/write history) takes a copy of the search
/// compiled without the cas bookkeeping: "observes" is then "is a read of", and the counters
/// only cas needs are never touched. Both copies make the same moves on such a key.
pub(crate) fn search(ops: &[KeyOp], states: usize, limits: &Limits) -> (Search, usize) {
    if ops.iter().any(|o| o.kind == OpKind::Cas) {
        search_with::<true>(ops, states, limits)
    } else {
        search_with::<false>(ops, states, limits)
    }
}

/// [`search`], for a key with cas operations (`CAS`) or without.
fn search_with<const CAS: bool>(ops: &[KeyOp], states: usize, limits: &Limits) -> (Search, usize) {
    let mut s = Searcher::<CAS>::new(ops, states, limits.budget);
    // (depth, op, state) of the deepest dead end at a return entry, and its prefix.
    let mut best: Option<(usize, usize, u32)> = None;
    let mut best_prefix = Vec::new();
    let mut steps = 0u64;
    let mut entry = s.list.next[0];
    // A configuration just reached: a read of its state, if callable, is its only move.
    let mut fresh = true;
    loop {
        steps += 1;
        if steps.is_multiple_of(1024) {
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
            match o.kind {
                OpKind::Read => None, // not of the current state (or rule 1 would have taken it)
                OpKind::Write if o.complete.is_none() => s
                    .info_write_useful(entry)
                    .then_some((entry, o.value, false)),
                // Placed only by absorption or at its deadline.
                OpKind::Write if s.is_unobserved_write(i) => None,
                OpKind::Write => {
                    // Just before an observer of its value; or anywhere, when that observer
                    // could be served by another write instead. Otherwise at its deadline.
                    (s.callable_observer_of(o.value) || s.write_is_free(o.value))
                        .then_some((entry, o.value, false))
                }
                OpKind::Cas if !CAS || o.expect != s.state => None,
                OpKind::Cas if o.complete.is_some() => Some((entry, o.value, false)),
                OpKind::Cas => (o.value != o.expect && s.callable_observer_of(o.value))
                    .then_some((entry, o.value, false)),
            }
        } else if o.complete.is_some() && o.kind == OpKind::Write {
            // A write's deadline: place it now. If nothing observes its value any more, the
            // register is unreadable until the next write.
            let state = if s.is_unobserved_write(i) {
                UNREADABLE
            } else {
                o.value
            };
            Some((s.list.call[i], state, true))
        } else {
            // A read or cas at its deadline: every move before it was tried.
            if best.is_none_or(|(depth, _, _)| s.stack.len() > depth) {
                best = Some((s.stack.len(), i, s.state));
                best_prefix = s.linearized();
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
                let (_, op, state) = best.unwrap_or((0, 0, 0));
                let prefix = best_prefix;
                return (Search::Illegal { op, prefix, state }, s.memo.len());
            };
            if !frame.forced {
                entry = s.list.next[frame.node as usize];
                break;
            }
        }
    }
}
