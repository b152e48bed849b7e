//! The state of one key's linearizability search and its moves: which operations are
//! linearized (bitset, Zobrist hash, entry list), the register state, the stack of lifts, the
//! counters behind the canonical-placement rules, and the memo.
//!
//! Where it sits: inside [`super::wgl`], whose loop decides which move to try; this file
//! makes and undoes moves (`try_lift`, `undo`) and answers the rules' questions (is this
//! write observed, is a read of this value callable, is this `info` write the first of its
//! value). Every lift goes through the memo, so a configuration is explored at most once.

use super::entries::{EntryList, NIL};
use super::memo::{Insert, Memo, MemoBudget};
use super::wgl::KeyOp;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The register state of a write whose value no remaining read returns: nothing can read it.
pub(crate) const UNREADABLE: u32 = u32::MAX;

/// One lifted operation on the search stack.
pub(crate) struct Frame {
    pub(crate) node: u32,
    state_before: u32,
    /// No sibling is tried when this lift is undone (a forced move or an absorbed write).
    pub(crate) forced: bool,
}

pub(crate) struct Searcher<'a> {
    ops: &'a [KeyOp],
    pub(crate) list: EntryList,
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
    pub(crate) state: u32,
    pub(crate) stack: Vec<Frame>,
    pub(crate) memo: Memo<'a>,
    scratch: Vec<u32>,
}

impl<'a> Searcher<'a> {
    pub(crate) fn new(ops: &'a [KeyOp], states: usize, budget: &'a MemoBudget) -> Searcher<'a> {
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

    pub(crate) fn unread(&self, value: u32) -> u32 {
        self.unread.get(value as usize).copied().unwrap_or(0)
    }

    /// A determinate write whose value no remaining read expects.
    pub(crate) fn is_unobserved_write(&self, i: usize) -> bool {
        let o = self.ops[i];
        !o.read && o.complete.is_some() && self.unread(o.value) == 0
    }

    /// The first callable read expecting `value`, if any.
    pub(crate) fn callable_read_of(&self, value: u32) -> Option<u32> {
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
    pub(crate) fn info_write_useful(&self, node: u32) -> bool {
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
    pub(crate) fn has_twin(&self, value: u32) -> bool {
        let v = value as usize;
        self.pending_writes.get(v).copied().unwrap_or(0)
            + self.pending_info.get(v).copied().unwrap_or(0)
            > 1
    }

    pub(crate) fn done(&self) -> bool {
        // Unobserved writes can all go last, in real-time order: nothing reads them.
        self.done_det + self.unobserved == self.n_det
    }

    fn flip(&mut self, i: usize) {
        self.bits[i / 64] ^= 1 << (i % 64);
    }

    /// Lifts the operation at call `node`, leaving the register in `state`, together with
    /// every callable unobserved write if it is a write (they are placed just before it,
    /// where nothing can read them). Lifted only if the configuration is new.
    pub(crate) fn try_lift(&mut self, node: u32, state: u32, forced: bool) -> Insert {
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
    pub(crate) fn undo(&mut self) -> Option<Frame> {
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
