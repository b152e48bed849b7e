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
//! - Pruning (sound; argued in `docs/decisions.md`): an `info` write is only linearized when
//!   the register does not already hold its value and some not-yet-linearized read returned
//!   its value (otherwise leaving it out is never worse); a read that returns the current
//!   state is linearized at once and its siblings are not tried, since linearizing it now
//!   cannot lose a solution.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::memo::{Insert, Memo, MemoBudget};

const NIL: u32 = u32::MAX;

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

struct List {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Per node: the op index, and whether it is a call.
    op: Vec<u32>,
    call: Vec<bool>,
    /// Per op: its return node, or NIL for an `info` write.
    ret: Vec<u32>,
}

impl List {
    fn new(ops: &[KeyOp]) -> List {
        let mut entries: Vec<(u64, bool, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, o) in ops.iter().enumerate() {
            entries.push((o.invoke, false, i as u32));
            if let Some(c) = o.complete {
                entries.push((c, true, i as u32));
            }
        }
        // Calls before returns at equal times (false < true), as Porcupine does.
        entries.sort_unstable();
        let m = entries.len();
        let mut list = List {
            next: (1..=m as u32 + 1).collect(),
            prev: (0..=m as u32).map(|i| i.wrapping_sub(1)).collect(),
            op: Vec::with_capacity(m + 1),
            call: Vec::with_capacity(m + 1),
            ret: vec![NIL; ops.len()],
        };
        if let Some(last) = list.next.last_mut() {
            *last = NIL;
        }
        list.op.push(NIL);
        list.call.push(false);
        for (node, (_, is_return, op)) in entries.into_iter().enumerate() {
            list.op.push(op);
            list.call.push(!is_return);
            if is_return {
                list.ret[op as usize] = node as u32 + 1;
            }
        }
        list
    }

    fn unlink(&mut self, n: u32) {
        let (p, x) = (self.prev[n as usize], self.next[n as usize]);
        self.next[p as usize] = x;
        if x != NIL {
            self.prev[x as usize] = p;
        }
    }

    fn relink(&mut self, n: u32) {
        let (p, x) = (self.prev[n as usize], self.next[n as usize]);
        self.next[p as usize] = n;
        if x != NIL {
            self.prev[x as usize] = n;
        }
    }

    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let r = self.ret[self.op[call as usize] as usize];
        if r != NIL {
            self.unlink(r);
        }
    }

    fn unlift(&mut self, call: u32) {
        let r = self.ret[self.op[call as usize] as usize];
        if r != NIL {
            self.relink(r);
        }
        self.relink(call);
    }
}

/// Searches for a linearization of one key's operations. `states` bounds the register
/// states (`1 + number of distinct values`). Returns the verdict and the memo size.
pub(crate) fn search(ops: &[KeyOp], states: usize, limits: &Limits) -> (Search, usize) {
    let n = ops.len();
    let n_det = ops.iter().filter(|o| o.complete.is_some()).count();
    if n_det == 0 {
        return (Search::Linearizable, 0);
    }
    let mut list = List::new(ops);
    let zobrist: Vec<u64> = (0..n as u64).map(|i| splitmix(i ^ 0x5EED)).collect();
    let mut unread = vec![0u32; states.max(1)];
    for o in ops.iter().filter(|o| o.read) {
        if let Some(c) = unread.get_mut(o.value as usize) {
            *c += 1;
        }
    }
    let words = n.div_ceil(64);
    let mut memo = Memo::new(words, limits.budget);
    let mut bits = vec![0u64; words];
    let (mut state, mut lin_hash, mut done_det) = (0u32, 0u64, 0usize);
    // The stack of lifted calls: (node, state before it, forced).
    let mut stack: Vec<(u32, u32, bool)> = Vec::with_capacity(n);
    // (depth, op, state) of the deepest dead end at a return entry.
    let mut best: Option<(usize, usize, u32)> = None;
    let mut steps = 0u64;
    let mut entry = list.next[0];
    loop {
        steps += 1;
        if steps % 1024 == 0 {
            if limits.stop.load(Ordering::Relaxed) {
                return (Search::Unknown(UnknownReason::Timeout), memo.len());
            }
            if limits.deadline.is_some_and(|d| Instant::now() >= d) {
                limits.stop.store(true, Ordering::Relaxed);
                return (Search::Unknown(UnknownReason::Timeout), memo.len());
            }
        }
        if entry == NIL {
            // Only `info` calls are left: every determinate operation is linearized.
            return (Search::Linearizable, memo.len());
        }
        let mut dead_end = !list.call[entry as usize];
        if dead_end {
            let op = list.op[entry as usize] as usize;
            if best.is_none_or(|(depth, _, _)| stack.len() > depth) {
                best = Some((stack.len(), op, state));
            }
        } else {
            let i = list.op[entry as usize] as usize;
            let o = ops[i];
            let (allowed, forced) = if o.read {
                (state == o.value, true)
            } else if o.complete.is_none() {
                let wanted = unread.get(o.value as usize).is_some_and(|&c| c > 0);
                (state != o.value && wanted, false)
            } else {
                (true, false)
            };
            if !allowed {
                entry = list.next[entry as usize];
                continue;
            }
            bits[i / 64] |= 1 << (i % 64);
            let h = lin_hash ^ zobrist[i];
            match memo.insert(h ^ splitmix(o.value as u64), &bits, o.value) {
                Insert::New => {
                    stack.push((entry, state, forced));
                    state = o.value;
                    lin_hash = h;
                    list.lift(entry);
                    if let Some(c) = unread.get_mut(o.value as usize).filter(|_| o.read) {
                        *c -= 1;
                    }
                    if o.complete.is_some() {
                        done_det += 1;
                        if done_det == n_det {
                            return (Search::Linearizable, memo.len());
                        }
                    }
                    entry = list.next[0];
                    continue;
                }
                Insert::Seen => {
                    bits[i / 64] &= !(1 << (i % 64));
                    if !forced {
                        entry = list.next[entry as usize];
                        continue;
                    }
                    // (L + read, state) already failed, so (L, state) fails too.
                    dead_end = true;
                }
                Insert::OutOfBudget => {
                    return (Search::Unknown(UnknownReason::Memory), memo.len());
                }
            }
        }
        debug_assert!(dead_end);
        // Backtrack: undo lifts until one that was a free choice, then try its next sibling.
        loop {
            let Some((node, prev_state, forced)) = stack.pop() else {
                let (depth, op, state) = best.unwrap_or((0, 0, 0));
                return (Search::Illegal { op, depth, state }, memo.len());
            };
            let i = list.op[node as usize] as usize;
            let o = ops[i];
            bits[i / 64] &= !(1 << (i % 64));
            lin_hash ^= zobrist[i];
            state = prev_state;
            list.unlift(node);
            if let Some(c) = unread.get_mut(o.value as usize).filter(|_| o.read) {
                *c += 1;
            }
            if o.complete.is_some() {
                done_det -= 1;
            }
            if !forced {
                entry = list.next[node as usize];
                break;
            }
        }
    }
}
