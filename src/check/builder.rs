//! The history builder: validates events one at a time, in file order, into a
//! [`History`], recording every broken rule with its line.
//!
//! Where it sits: fed by every reader (JSON Lines, Jepsen's formats, events in memory)
//! through [`History::read`] and [`History::from_events`]; the rules are listed in
//! `history.rs`. It pairs each process's invoke with its completion, interns keys, values
//! and labels, and refuses nothing itself: the caller refuses the history when any problem
//! was recorded.

use hashbrown::HashMap;

use super::event::{EventType, OpKind, RawEvent, RawValue};
use super::history::{History, Op, Outcome};
use super::parse::{HistoryError, Problems};

enum ProcState {
    Pending(usize),
    Dead(usize),
}

/// Validates events one at a time into a [`History`].
pub(super) struct Builder {
    h: History,
    procs: HashMap<u64, ProcState>,
    /// `(index, time)` of the previous event.
    last: Option<(u64, u64)>,
}

impl Builder {
    pub(super) fn new() -> Builder {
        Builder {
            h: History::default(),
            procs: HashMap::new(),
            last: None,
        }
    }

    pub(super) fn finish(self, problems: Problems) -> Result<History, HistoryError> {
        if !problems.is_empty() {
            return Err(problems.into_error());
        }
        let mut h = self.h;
        h.open_at_end = self
            .procs
            .values()
            .filter(|s| matches!(s, ProcState::Pending(_)))
            .count();
        Ok(h)
    }

    pub(super) fn push(&mut self, line: usize, e: RawEvent<'_>, problems: &mut Problems) {
        self.h.events += 1;
        if let Some((index, time)) = self.last {
            if e.index <= index {
                problems.push(
                    line,
                    format!("index {} does not increase (previous {index})", e.index),
                );
            }
            if e.time < time {
                problems.push(line, format!("time {} goes back (previous {time}); events must be in the order they happened", e.time));
            }
        }
        self.last = Some((e.index, e.time));
        if let Some(phase) = self.h.labels.intern_opt(&e.phase) {
            self.h.last_phase = Some(phase);
        }
        match e.kind {
            EventType::Invoke => self.invoke(line, e, problems),
            _ => self.complete(line, e, problems),
        }
    }
    fn invoke(&mut self, line: usize, e: RawEvent<'_>, problems: &mut Problems) {
        match self.procs.get(&e.process) {
            Some(ProcState::Pending(op)) => {
                let at = self.h.ops.get(*op).map_or(0, |o| o.line);
                return problems.push(line, format!("process {} invokes again while its operation from line {at} is still outstanding", e.process));
            }
            Some(ProcState::Dead(at)) => {
                return problems.push(line, format!("process {} issues an event after its info on line {at} (a client continues under a new process number)", e.process));
            }
            None => {}
        }
        match (e.f, &e.value) {
            (OpKind::Read, RawValue::Nil) => {}
            (OpKind::Read, _) => problems.push(line, "a read's invoke must have \"value\": null"),
            (OpKind::Write, RawValue::One(_)) => {}
            (OpKind::Write, RawValue::Nil) => {
                problems.push(line, "a write's invoke must carry its value")
            }
            (OpKind::Write, RawValue::Pair(..)) => problems.push(
                line,
                "a write's value is one string; [expected, new] is for f \"cas\"",
            ),
            (OpKind::Cas, RawValue::Pair(_, Some(_))) => {}
            (OpKind::Cas, RawValue::Pair(_, None)) => problems.push(
                line,
                "a cas's new value must not be null (there are no deletes)",
            ),
            (OpKind::Cas, _) => problems.push(
                line,
                "a cas's invoke must carry [expected, new] (expected may be null: absent)",
            ),
        }
        self.procs
            .insert(e.process, ProcState::Pending(self.h.ops.len()));
        let h = &mut self.h;
        let (value, expected) = match (e.f, &e.value) {
            (OpKind::Write, v) => (v.single().map(|v| h.values.intern(v)), None),
            (OpKind::Cas, RawValue::Pair(x, v)) => (
                h.values.intern_opt(v),
                x.as_deref().map(|x| h.values.intern(x)),
            ),
            _ => (None, None),
        };
        let op = Op {
            process: e.process,
            f: e.f,
            key: h.keys.intern(&e.key),
            value,
            expected,
            outcome: Outcome::Info,
            invoke: e.time,
            complete: None,
            index: e.index,
            line,
            mode: h.labels.intern_opt(&e.mode),
            session: h.labels.intern_opt(&e.session),
            phase: h.labels.intern_opt(&e.phase),
            node: h.labels.intern_opt(&e.node),
        };
        h.ops.push(op);
    }

    fn complete(&mut self, line: usize, e: RawEvent<'_>, problems: &mut Problems) {
        let Some(ProcState::Pending(i)) = self.procs.get(&e.process) else {
            let why = match self.procs.get(&e.process) {
                Some(ProcState::Dead(at)) => format!("after its info on line {at}"),
                _ => "with no outstanding invoke".to_string(),
            };
            let kind = serde_json::to_string(&e.kind).unwrap_or_default();
            return problems.push(line, format!("{kind} for process {} {why}", e.process));
        };
        let i = *i;
        let h = &mut self.h;
        let key = h.keys.intern(&e.key);
        let (value, expected, shape_ok) = match (e.f, &e.value) {
            (_, RawValue::Nil) => (None, None, true),
            (OpKind::Cas, RawValue::Pair(x, v)) => (
                h.values.intern_opt(v),
                x.as_deref().map(|x| h.values.intern(x)),
                true,
            ),
            (OpKind::Cas, RawValue::One(_)) => (None, None, false),
            (_, RawValue::One(v)) => (Some(h.values.intern(v)), None, true),
            (_, RawValue::Pair(..)) => (None, None, false),
        };
        let (mode, session, phase, node) = (
            h.labels.intern_opt(&e.mode),
            h.labels.intern_opt(&e.session),
            h.labels.intern_opt(&e.phase),
            h.labels.intern_opt(&e.node),
        );
        let Some(op) = h.ops.get_mut(i) else {
            return; // ok: Pending always holds an index pushed by `invoke`
        };
        if op.f != e.f || op.key != key {
            problems.push(
                line,
                format!(
                    "completion does not match the invoke on line {} (f or key differs)",
                    op.line
                ),
            );
        }
        if !shape_ok {
            let want = match e.f {
                OpKind::Cas => "a cas's completion carries [expected, new] or null",
                _ => "a read's or write's completion carries one value or null",
            };
            problems.push(line, want);
        } else if op.f.writes()
            && !matches!(e.value, RawValue::Nil)
            && (value != op.value || expected != op.expected)
        {
            problems.push(
                line,
                format!(
                    "{} completion carries a different value from its invoke on line {}",
                    op.f.as_str(),
                    op.line
                ),
            );
        }
        op.mode = op.mode.or(mode);
        op.session = op.session.or(session);
        op.phase = op.phase.or(phase);
        op.node = node.or(op.node);
        match e.kind {
            EventType::Ok => {
                op.outcome = Outcome::Ok;
                op.complete = Some(e.time);
                if op.f == OpKind::Read {
                    op.value = value;
                }
                self.procs.remove(&e.process);
            }
            EventType::Fail => {
                op.outcome = Outcome::Fail;
                op.complete = Some(e.time);
                self.procs.remove(&e.process);
            }
            EventType::Info | EventType::Invoke => {
                op.outcome = Outcome::Info;
                self.procs.insert(e.process, ProcState::Dead(line));
            }
        }
    }
}
