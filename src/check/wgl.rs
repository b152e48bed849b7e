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

use super::entries::{EntryList, NIL};
use super::memo::{Insert, Memo, MemoBudget};

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

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The register state of a write whose value no remaining read returns: nothing can read it.
const UNREADABLE: u32 = u32::MAX;

/// One lifted operation on the search stack.
struct Frame {
    node: u32,
    state_before: u32,
    /// No sibling is tried when this lift is undone (a forced move or an absorbed write).
    forced: bool,
}

struct Searcher<'a> {
    ops: &'a [KeyOp],
    list: EntryList,
    zobrist: Vec<u64>,
    /// Per state: not yet linearized `ok` reads expecting it.
    unread: Vec<u32>,
    /// Per state: not yet linearized determinate writes of it.
    pending_writes: Vec<u32>,
    /// Per state: not yet linearized `info` writes of it.
    pending_info: Vec<u32>,
    /// Not yet linearized determinate writes whose value no remaining read expects.
    unobserved: usize,
    n_det: usize,
    done_det: usize,
    bits: Vec<u64>,
    lin_hash: u64,
    state: u32,
    stack: Vec<Frame>,
    memo: Memo<'a>,
    scratch: Vec<u32>,
}

impl<'a> Searcher<'a> {
    fn new(ops: &'a [KeyOp], states: usize, budget: &'a MemoBudget) -> Searcher<'a> {
        let n = ops.len();
        let mut unread = vec![0u32; states.max(1)];
        let mut pending_writes = vec![0u32; states.max(1)];
        let mut pending_info = vec![0u32; states.max(1)];
        for o in ops {
            let counts = match (o.read, o.complete.is_some()) {
                (true, _) => &mut unread,
                (false, true) => &mut pending_writes,
                (false, false) => &mut pending_info,
            };
            if let Some(c) = counts.get_mut(o.value as usize) {
                *c += 1;
            }
        }
        let unobserved = (0..states.max(1))
            .filter(|&v| unread[v] == 0)
            .map(|v| pending_writes[v] as usize)
            .sum();
        let words = n.div_ceil(64);
        Searcher {
            ops,
            list: EntryList::new(ops),
            zobrist: (0..n as u64).map(|i| splitmix(i ^ 0x5EED)).collect(),
            unread,
            pending_writes,
            pending_info,
            unobserved,
            n_det: ops.iter().filter(|o| o.complete.is_some()).count(),
            done_det: 0,
            bits: vec![0; words],
            lin_hash: 0,
            state: 0,
            stack: Vec::with_capacity(n),
            memo: Memo::new(words, budget),
            scratch: Vec::new(),
        }
    }

    fn unread(&self, value: u32) -> u32 {
        self.unread.get(value as usize).copied().unwrap_or(0)
    }

    /// A determinate write whose value no remaining read expects.
    fn is_unobserved_write(&self, i: usize) -> bool {
        let o = self.ops[i];
        !o.read && o.complete.is_some() && self.unread(o.value) == 0
    }

    /// The first callable read expecting `value`, if any.
    fn callable_read_of(&self, value: u32) -> Option<u32> {
        let mut n = self.list.next[0];
        while n != NIL && self.list.is_call[n as usize] {
            let o = self.ops[self.list.op[n as usize] as usize];
            if o.read && o.value == value {
                return Some(n);
            }
            n = self.list.next[n as usize];
        }
        None
    }

    /// Whether the `info` write at call `node` is worth linearizing now: some callable read
    /// expects its value (it would be placed just before that read), and no earlier pending
    /// `info` write of the same value exists (pending `info` writes of one value that are
    /// both callable are interchangeable: neither has a deadline).
    fn info_write_useful(&self, node: u32) -> bool {
        let value = self.ops[self.list.op[node as usize] as usize].value;
        let (mut read, mut before) = (false, true);
        let mut n = self.list.next[0];
        while n != NIL && self.list.is_call[n as usize] {
            let o = self.ops[self.list.op[n as usize] as usize];
            if n == node {
                before = false;
            } else if o.value == value {
                if o.read {
                    read = true;
                } else if before && o.complete.is_none() {
                    return false;
                }
            }
            n = self.list.next[n as usize];
        }
        read
    }

    /// Whether more than one write (determinate or `info`) of `value` is pending.
    fn has_twin(&self, value: u32) -> bool {
        let v = value as usize;
        self.pending_writes.get(v).copied().unwrap_or(0)
            + self.pending_info.get(v).copied().unwrap_or(0)
            > 1
    }

    fn done(&self) -> bool {
        // Unobserved writes can all go last, in real-time order: nothing reads them.
        self.done_det + self.unobserved == self.n_det
    }

    fn flip(&mut self, i: usize) {
        self.bits[i / 64] ^= 1 << (i % 64);
    }

    /// Lifts the operation at call `node`, leaving the register in `state`, together with
    /// every callable unobserved write if it is a write (they are placed just before it,
    /// where nothing can read them). Lifted only if the configuration is new.
    fn try_lift(&mut self, node: u32, state: u32, forced: bool) -> Insert {
        let i = self.list.op[node as usize] as usize;
        let mut absorbed = std::mem::take(&mut self.scratch);
        absorbed.clear();
        if !self.ops[i].read {
            let mut n = self.list.next[0];
            while n != NIL && self.list.is_call[n as usize] {
                let j = self.list.op[n as usize] as usize;
                if j != i && self.is_unobserved_write(j) {
                    absorbed.push(n);
                }
                n = self.list.next[n as usize];
            }
        }
        let mut hash = self.lin_hash;
        for &n in absorbed.iter().chain([&node]) {
            let j = self.list.op[n as usize] as usize;
            self.flip(j);
            hash ^= self.zobrist[j];
        }
        let found = self
            .memo
            .insert(hash ^ splitmix(u64::from(state)), &self.bits, state);
        for &n in absorbed.iter().chain([&node]) {
            let j = self.list.op[n as usize] as usize;
            self.flip(j);
        }
        if found == Insert::New {
            self.apply(node, state, forced);
            for &n in &absorbed {
                self.apply(n, state, true);
            }
        }
        self.scratch = absorbed;
        found
    }

    fn apply(&mut self, node: u32, state: u32, forced: bool) {
        let i = self.list.op[node as usize] as usize;
        let o = self.ops[i];
        self.stack.push(Frame {
            node,
            state_before: self.state,
            forced,
        });
        self.state = state;
        self.flip(i);
        self.lin_hash ^= self.zobrist[i];
        self.list.lift(node);
        if o.complete.is_none() {
            self.pending_info[o.value as usize] -= 1;
            return;
        }
        self.done_det += 1;
        let v = o.value as usize;
        if o.read {
            self.unread[v] -= 1;
            if self.unread[v] == 0 {
                self.unobserved += self.pending_writes[v] as usize;
            }
        } else {
            self.pending_writes[v] -= 1;
            if self.unread[v] == 0 {
                self.unobserved -= 1;
            }
        }
    }

    /// Undoes the last lift; `None` when nothing is lifted.
    fn undo(&mut self) -> Option<Frame> {
        let f = self.stack.pop()?;
        let i = self.list.op[f.node as usize] as usize;
        let o = self.ops[i];
        self.state = f.state_before;
        self.flip(i);
        self.lin_hash ^= self.zobrist[i];
        self.list.unlift(f.node);
        if o.complete.is_none() {
            self.pending_info[o.value as usize] += 1;
        } else {
            self.done_det -= 1;
            let v = o.value as usize;
            if o.read {
                if self.unread[v] == 0 {
                    self.unobserved -= self.pending_writes[v] as usize;
                }
                self.unread[v] += 1;
            } else {
                self.pending_writes[v] += 1;
                if self.unread[v] == 0 {
                    self.unobserved += 1;
                }
            }
        }
        Some(f)
    }
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
        let dead_end = match attempt {
            None if s.list.is_call[entry as usize] => {
                entry = s.list.next[entry as usize];
                continue;
            }
            None => true,
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
                Insert::Seen if forced => true,
                Insert::Seen => {
                    entry = s.list.next[entry as usize];
                    continue;
                }
            },
        };
        debug_assert!(dead_end);
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
