//! The doubly linked list of call and return entries the Wing-Gong-Lowe search walks, with
//! Porcupine's `lift`/`unlift` (dancing links: an unlinked node keeps its own pointers, so
//! undoing lifts in reverse order restores the list exactly).
//!
//! Where it sits: inside [`super::wgl`], one list per key being searched. Node 0 is the head
//! sentinel; nodes `1..` are the entries in time order (calls before returns at equal times,
//! so ties count as concurrent). An operation without a completion (an `info` write) has a
//! call entry and no return entry: its return is at +infinity.

use super::event::OpKind;
use super::wgl::KeyOp;

/// "No node".
pub(crate) const NIL: u32 = u32::MAX;

/// What the search's walks over callable entries ask of a node, in one 12-byte load instead
/// of the node's op index and then the op (the walks are most of the search's time).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tag {
    /// The op's value (state), as in [`KeyOp::value`].
    pub value: u32,
    /// A cas's expected state, as in [`KeyOp::expect`].
    pub expect: u32,
    pub kind: OpKind,
    /// The op completed `ok` (it has a return entry).
    pub det: bool,
    /// A call entry (else a return entry, or the head).
    pub is_call: bool,
}

/// The entry list of one key.
pub(crate) struct EntryList {
    pub next: Vec<u32>,
    prev: Vec<u32>,
    /// Per node: the op index (NIL for the head), and whether it is a call.
    pub op: Vec<u32>,
    pub is_call: Vec<bool>,
    /// Per node: its op's fields the walks need.
    pub tag: Vec<Tag>,
    /// Per op: its call node, and its return node (NIL for an `info` write).
    pub call: Vec<u32>,
    ret: Vec<u32>,
}

impl EntryList {
    pub(crate) fn new(ops: &[KeyOp]) -> EntryList {
        let mut entries: Vec<(u64, bool, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, o) in ops.iter().enumerate() {
            entries.push((o.invoke, false, i as u32));
            if let Some(c) = o.complete {
                entries.push((c, true, i as u32));
            }
        }
        // Calls before returns at equal times (false < true), as Porcupine does.
        entries.sort_unstable();
        let m = entries.len() as u32;
        let mut list = EntryList {
            next: (1..=m).chain([NIL]).collect(),
            prev: [NIL].into_iter().chain(0..m).collect(),
            op: Vec::with_capacity(m as usize + 1),
            is_call: Vec::with_capacity(m as usize + 1),
            tag: Vec::with_capacity(m as usize + 1),
            call: vec![NIL; ops.len()],
            ret: vec![NIL; ops.len()],
        };
        list.op.push(NIL);
        list.is_call.push(false);
        list.tag.push(Tag {
            value: NIL,
            expect: NIL,
            kind: OpKind::Read,
            det: false,
            is_call: false,
        });
        for (i, (_, is_return, op)) in entries.into_iter().enumerate() {
            let node = i as u32 + 1;
            list.op.push(op);
            list.is_call.push(!is_return);
            if let Some(o) = ops.get(op as usize) {
                list.tag.push(Tag {
                    value: o.value,
                    expect: o.expect,
                    kind: o.kind,
                    det: o.complete.is_some(),
                    is_call: !is_return,
                });
            }
            let slot = if is_return {
                &mut list.ret
            } else {
                &mut list.call
            };
            if let Some(s) = slot.get_mut(op as usize) {
                *s = node;
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

    /// Removes an operation's call entry (and its return entry, if any).
    pub(crate) fn lift(&mut self, call: u32) {
        self.unlink(call);
        let r = self.ret[self.op[call as usize] as usize];
        if r != NIL {
            self.unlink(r);
        }
    }

    /// Undoes [`EntryList::lift`]; lifts must be undone in reverse order.
    pub(crate) fn unlift(&mut self, call: u32) {
        let r = self.ret[self.op[call as usize] as usize];
        if r != NIL {
            self.relink(r);
        }
        self.relink(call);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(invoke: u64, complete: Option<u64>) -> KeyOp {
        KeyOp {
            kind: crate::check::OpKind::Write,
            value: 1,
            expect: 0,
            invoke,
            complete,
        }
    }

    fn walk(l: &EntryList) -> Vec<(u32, bool)> {
        let mut out = Vec::new();
        let mut n = l.next[0];
        while n != NIL {
            out.push((l.op[n as usize], l.is_call[n as usize]));
            n = l.next[n as usize];
        }
        out
    }

    #[test]
    fn orders_by_time_with_calls_first_and_lifts_undo_exactly() {
        // op0 [0, 10], op1 [10, 20] (ties: op1's call before op0's return), op2 info at 5.
        let mut l = EntryList::new(&[op(0, Some(10)), op(10, Some(20)), op(5, None)]);
        let all = vec![(0, true), (2, true), (1, true), (0, false), (1, false)];
        assert_eq!(walk(&l), all);
        l.lift(l.call[1]);
        l.lift(l.call[2]);
        assert_eq!(walk(&l), vec![(0, true), (0, false)]);
        l.unlift(l.call[2]);
        l.unlift(l.call[1]);
        assert_eq!(walk(&l), all);
    }
}
