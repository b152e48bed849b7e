//! The state of one key's linearizability search and its moves: which operations are
//! linearized (bitset, Zobrist hash, entry list), the register state, the stack of lifts, the
//! counters behind the canonical-placement rules, and the memo.
//!
//! Where it sits: inside [`super::wgl`], whose loop decides which move to try; this file
//! makes and undoes moves (`try_lift`, `undo`) and answers the rules' questions (is this
//! write observed, is a read of this value callable, is this `info` write the first of its
//! value). Every lift goes through the memo, so a configuration is explored at most once.
//!
//! `CAS` says whether the key has cas operations. Without (the common read/write key) the
//! searcher is compiled without the cas bookkeeping: an observer is a read, and the counters
//! only cas needs ([`CasCounts`]) are not kept.

use super::entries::{EntryList, NIL, Tag};
use super::event::OpKind;
use super::memo::{Insert, Memo, MemoBudget};
use super::wgl::KeyOp;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The register state of a write whose value nothing remaining observes: nothing can read it.
pub(crate) const UNREADABLE: u32 = u32::MAX;

/// One lifted operation on the search stack.
pub(crate) struct Frame {
    pub(crate) node: u32,
    state_before: u32,
    /// No sibling is tried when this lift is undone (a forced move or an absorbed write).
    pub(crate) forced: bool,
    /// An unobserved write placed just before the lift below it on the stack.
    absorbed: bool,
}

/// Per register state: how many pending operations use it, the counters behind the rules.
#[derive(Clone, Default)]
struct Counts {
    /// Pending observers: `ok` reads of it, and cas operations (`ok` or `info`) expecting it.
    observers: u32,
    /// Pending determinate (`ok`) writes of it.
    writes: u32,
    /// Pending `info` writes of it.
    info_writes: u32,
}

/// Per register state, the counters only a key with cas operations needs.
#[derive(Clone, Default)]
struct CasCounts {
    /// Pending `info` cas operations expecting it (observers that may never happen).
    info_observers: u32,
    /// Pending cas operations (`ok` or `info`) setting it.
    cas_sets: u32,
}

pub(crate) struct Searcher<'a, const CAS: bool> {
    ops: &'a [KeyOp],
    pub(crate) list: EntryList,
    zobrist: Vec<u64>,
    counts: Vec<Counts>,
    /// Empty unless `CAS`.
    cas_counts: Vec<CasCounts>,
    /// Pending determinate writes whose value nothing remaining observes.
    unobserved: usize,
    n_det: usize,
    done_det: usize,
    bits: Vec<u64>,
    lin_hash: u64,
    pub(crate) state: u32,
    pub(crate) stack: Vec<Frame>,
    pub(crate) memo: Memo<'a>,
    scratch: Vec<u32>,
}

impl<'a, const CAS: bool> Searcher<'a, CAS> {
    /// The searcher of `ops`, which hold a cas exactly when `CAS`.
    pub(crate) fn new(
        ops: &'a [KeyOp],
        states: usize,
        budget: &'a MemoBudget,
    ) -> Searcher<'a, CAS> {
        let n = ops.len();
        let mut counts = vec![Counts::default(); states.max(1)];
        let mut cas_counts = vec![CasCounts::default(); if CAS { states.max(1) } else { 0 }];
        let mut add = |state: u32, f: &dyn Fn(&mut Counts)| {
            if let Some(c) = counts.get_mut(state as usize) {
                f(c);
            }
        };
        let mut add_cas = |state: u32, f: &dyn Fn(&mut CasCounts)| {
            if let Some(c) = cas_counts.get_mut(state as usize) {
                f(c);
            }
        };
        for o in ops {
            let det = o.complete.is_some();
            match o.kind {
                OpKind::Read => add(o.value, &|c| c.observers += 1),
                OpKind::Write if det => add(o.value, &|c| c.writes += 1),
                OpKind::Write => add(o.value, &|c| c.info_writes += 1),
                OpKind::Cas => {
                    add(o.expect, &|c| c.observers += 1);
                    if !det {
                        add_cas(o.expect, &|c| c.info_observers += 1);
                    }
                    add_cas(o.value, &|c| c.cas_sets += 1);
                }
            }
        }
        let unobserved = counts
            .iter()
            .filter(|c| c.observers == 0)
            .map(|c| c.writes as usize)
            .sum();
        let words = n.div_ceil(64);
        Searcher {
            ops,
            list: EntryList::new(ops),
            zobrist: (0..n as u64).map(|i| splitmix(i ^ 0x5EED)).collect(),
            counts,
            cas_counts,
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

    fn count(&self, state: u32) -> Option<&Counts> {
        self.counts.get(state as usize)
    }

    /// Whether `t` observes `value`: a read of it, or (only with `CAS`) a cas expecting it.
    #[inline(always)]
    fn observes(t: Tag, value: u32) -> bool {
        match t.kind {
            OpKind::Read => t.value == value,
            OpKind::Cas => CAS && t.expect == value,
            OpKind::Write => false,
        }
    }

    /// [`Searcher::is_unobserved_write`] from a node's tag.
    #[inline(always)]
    fn tag_is_unobserved_write(&self, t: Tag) -> bool {
        t.kind == OpKind::Write && t.det && self.count(t.value).is_none_or(|c| c.observers == 0)
    }

    /// A determinate write whose value nothing remaining observes.
    pub(crate) fn is_unobserved_write(&self, i: usize) -> bool {
        let o = self.ops[i];
        o.kind == OpKind::Write
            && o.complete.is_some()
            && self.count(o.value).is_none_or(|c| c.observers == 0)
    }

    /// The first callable read expecting `value`, if any.
    pub(crate) fn callable_read_of(&self, value: u32) -> Option<u32> {
        let mut n = self.list.next[0];
        while let Some(t) = self.callable(n) {
            if t.kind == OpKind::Read && t.value == value {
                return Some(n);
            }
            n = self.list.next[n as usize];
        }
        None
    }

    /// Whether a callable operation observes `value`: a read of it, or a cas expecting it.
    #[inline]
    pub(crate) fn callable_observer_of(&self, value: u32) -> bool {
        let mut n = self.list.next[0];
        while let Some(t) = self.callable(n) {
            if Self::observes(t, value) {
                return true;
            }
            n = self.list.next[n as usize];
        }
        false
    }

    /// Whether the `info` write at call `node` is worth linearizing now: some callable
    /// operation observes its value (it would be placed just before it), and no earlier
    /// pending `info` write of the same value exists (pending `info` writes of one value
    /// that are both callable are interchangeable: neither has a deadline).
    pub(crate) fn info_write_useful(&self, node: u32) -> bool {
        let value = self.ops[self.list.op[node as usize] as usize].value;
        let (mut observed, mut before) = (false, true);
        let mut n = self.list.next[0];
        while let Some(t) = self.callable(n) {
            if n == node {
                before = false;
            } else if Self::observes(t, value) {
                observed = true;
            } else if before && t.kind == OpKind::Write && t.value == value && !t.det {
                return false;
            }
            n = self.list.next[n as usize];
        }
        observed
    }

    /// Whether an observed determinate write of `value` may be placed anywhere: another
    /// pending operation may set the same value (a write, `info` or not, or a cas), or an
    /// `info` cas expecting it may never happen (so the write may be dead yet observed).
    pub(crate) fn write_is_free(&self, value: u32) -> bool {
        let Some(c) = self.count(value) else {
            return false;
        };
        if !CAS {
            return c.writes + c.info_writes > 1;
        }
        let cas = self.cas_counts.get(value as usize);
        let (cas_sets, info_observers) = cas.map_or((0, 0), |x| (x.cas_sets, x.info_observers));
        c.writes + c.info_writes + cas_sets > 1 || info_observers > 0
    }

    /// The tag of node `n` if it is a call entry (the walks stop at the first return).
    #[inline(always)]
    fn callable(&self, n: u32) -> Option<Tag> {
        if n == NIL {
            return None;
        }
        self.list.tag.get(n as usize).copied().filter(|t| t.is_call)
    }

    pub(crate) fn done(&self) -> bool {
        // Unobserved writes can all go last, in real-time order: nothing reads them.
        self.done_det + self.unobserved == self.n_det
    }

    fn flip(&mut self, i: usize) {
        self.bits[i / 64] ^= 1 << (i % 64);
    }

    /// Lifts the operation at call `node`, leaving the register in `state`, together with
    /// every callable unobserved write if it is a plain write (they are placed just before
    /// it, where nothing can read them; never before a cas, which needs the state it found).
    /// Lifted only if the configuration is new.
    #[inline]
    pub(crate) fn try_lift(&mut self, node: u32, state: u32, forced: bool) -> Insert {
        let i = self.list.op[node as usize] as usize;
        let mut absorbed = std::mem::take(&mut self.scratch);
        absorbed.clear();
        // Nothing to absorb while no pending write is unobserved.
        if self.ops[i].kind == OpKind::Write && self.unobserved > 0 {
            let mut n = self.list.next[0];
            while let Some(t) = self.callable(n) {
                if n != node && self.tag_is_unobserved_write(t) {
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
            self.apply(node, state, forced, false);
            for &n in &absorbed {
                self.apply(n, state, true, true);
            }
        }
        self.scratch = absorbed;
        found
    }

    /// Updates the counters for operation `i` being lifted (`lift`) or put back.
    #[inline]
    fn account(&mut self, i: usize, lift: bool) {
        let o = self.ops[i];
        let det = o.complete.is_some();
        let step = |x: &mut u32| if lift { *x -= 1 } else { *x += 1 };
        match o.kind {
            OpKind::Read => self.observe(o.value, lift),
            OpKind::Write if det => {
                let c = &mut self.counts[o.value as usize];
                step(&mut c.writes);
                if c.observers == 0 {
                    if lift {
                        self.unobserved -= 1;
                    } else {
                        self.unobserved += 1;
                    }
                }
            }
            OpKind::Write => step(&mut self.counts[o.value as usize].info_writes),
            OpKind::Cas if CAS => {
                step(&mut self.cas_counts[o.value as usize].cas_sets);
                if !det {
                    step(&mut self.cas_counts[o.expect as usize].info_observers);
                }
                self.observe(o.expect, lift);
            }
            // ok: a key whose searcher is built without `CAS` holds no cas (`wgl::search`).
            OpKind::Cas => {}
        }
        if det {
            if lift {
                self.done_det += 1;
            } else {
                self.done_det -= 1;
            }
        }
    }

    /// One observer of `state` fewer (`lift`) or more: the determinate writes of a value
    /// are unobserved exactly while it has no pending observer.
    #[inline]
    fn observe(&mut self, state: u32, lift: bool) {
        let c = &mut self.counts[state as usize];
        if lift {
            c.observers -= 1;
            if c.observers == 0 {
                self.unobserved += c.writes as usize;
            }
        } else {
            if c.observers == 0 {
                self.unobserved -= c.writes as usize;
            }
            c.observers += 1;
        }
    }

    fn apply(&mut self, node: u32, state: u32, forced: bool, absorbed: bool) {
        let i = self.list.op[node as usize] as usize;
        self.stack.push(Frame {
            node,
            state_before: self.state,
            forced,
            absorbed,
        });
        self.state = state;
        self.flip(i);
        self.lin_hash ^= self.zobrist[i];
        self.list.lift(node);
        self.account(i, true);
    }

    /// Undoes the last lift; `None` when nothing is lifted.
    pub(crate) fn undo(&mut self) -> Option<Frame> {
        let f = self.stack.pop()?;
        let i = self.list.op[f.node as usize] as usize;
        self.state = f.state_before;
        self.flip(i);
        self.lin_hash ^= self.zobrist[i];
        self.list.unlift(f.node);
        self.account(i, false);
        Some(f)
    }

    /// The linearized operations (indices into the key's ops) in linearization order:
    /// absorbed writes go just before the lift they were absorbed into.
    pub(crate) fn linearized(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.stack.len());
        let mut i = 0;
        while let Some(f) = self.stack.get(i) {
            let mut j = i + 1;
            while self.stack.get(j).is_some_and(|g| g.absorbed) {
                j += 1;
            }
            for g in self.stack.get(i + 1..j).unwrap_or_default() {
                out.push(self.list.op[g.node as usize] as usize);
            }
            out.push(self.list.op[f.node as usize] as usize);
            i = j;
        }
        out
    }
}
