//! A validated history: events paired into operations ([`Op`]), with keys, values and labels
//! interned to small integers so the checkers compare numbers, not strings.
//!
//! Where it sits: between parsing ([`super::parse`]) and the checkers. It enforces the rules of
//! the history format and refuses the whole history when any is broken:
//! - `index` strictly increasing and `time` never decreasing, line after line;
//! - per `process`: an `invoke`, then exactly one `ok`, `fail` or `info` with the same `f` and
//!   `key` (a write's or cas's completion, when it carries a value, carries the invoked one);
//! - nothing from a process after its `info`;
//! - a read's invoke has `"value": null`, a write's one value, a cas's `[expected, new]`
//!   with a non-null `new` (there are no deletes).
//!
//! An invoke still open when the history ends (the recorder stopped mid-flight) is not an
//! error: it is treated as `info`, as Jepsen does for crashed clients, and counted in
//! [`History::open_at_end`].

use std::io::BufRead;

use hashbrown::HashMap;

use super::event::{Event, EventType, OpKind, RawEvent, RawValue};
use super::format::{HistoryFormat, for_each_event};
use super::parse::{HistoryError, Problems};

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Took effect (a read: observed its value).
    Ok,
    /// Definitely did not take effect.
    Fail,
    /// Unknown (an `info` completion, or no completion before the history ended).
    Info,
}

/// One operation: an invoke and its completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The client process.
    pub process: u64,
    /// Read, write or cas.
    pub f: OpKind,
    /// Interned key ([`History::key_name`]).
    pub key: u32,
    /// Interned value ([`History::value_name`]): what a write or cas wrote, or what an `ok`
    /// read returned; `None` = absent (and for reads that did not complete `ok`).
    pub value: Option<u32>,
    /// A cas's expected value (`None`: absent); `None` for reads and writes.
    pub expected: Option<u32>,
    /// How it ended.
    pub outcome: Outcome,
    /// Invoke time, ns.
    pub invoke: u64,
    /// Completion time, ns; `None` for `info` (its effect, if any, has no deadline).
    pub complete: Option<u64>,
    /// `index` of the invoke event.
    pub index: u64,
    /// 1-based line of the invoke event.
    pub line: usize,
    /// Interned labels ([`History::label`]): mode, session and phase come from the invoke
    /// (else the completion); node from the completion (else the invoke).
    pub mode: Option<u32>,
    /// Read-your-writes session.
    pub session: Option<u32>,
    /// Scenario phase.
    pub phase: Option<u32>,
    /// Node that answered.
    pub node: Option<u32>,
}

impl Op {
    /// Completion time, with `info` at +infinity.
    pub fn complete_or_max(&self) -> u64 {
        self.complete.unwrap_or(u64::MAX)
    }
}

/// Strings to dense ids.
#[derive(Debug, Default, Clone)]
struct Interner {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.to_string());
        self.ids.insert(s.to_string(), id);
        id
    }

    fn intern_opt(&mut self, s: &Option<std::borrow::Cow<'_, str>>) -> Option<u32> {
        s.as_deref().map(|s| self.intern(s))
    }
}

/// A validated history, ready to check.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Operations in invoke order.
    pub ops: Vec<Op>,
    /// Number of events read.
    pub events: usize,
    /// Invokes that had no completion when the history ended (treated as `info`).
    pub open_at_end: usize,
    /// The phase of the last event that carried one (the default final phase).
    pub last_phase: Option<u32>,
    /// Times are positions in the file, not nanoseconds (a Jepsen log, a Knossos file).
    pub logical_time: bool,
    /// Jepsen `:time` values that went back and were raised to keep the file's order.
    pub times_raised: usize,
    keys: Interner,
    values: Interner,
    labels: Interner,
}

enum ProcState {
    Pending(usize),
    Dead(usize),
}

/// Validates events one at a time into a [`History`].
struct Builder {
    h: History,
    procs: HashMap<u64, ProcState>,
    /// `(index, time)` of the previous event.
    last: Option<(u64, u64)>,
}

impl History {
    /// Reads and validates JSON Lines. Any malformed line refuses the whole history.
    pub fn parse(reader: impl BufRead) -> Result<History, HistoryError> {
        History::read(reader, HistoryFormat::Jsonl)
    }

    /// Reads and validates a history in `format` (JSON Lines, Jepsen EDN or `jepsen.util`
    /// log lines; `Auto` detects it). Any malformed line refuses the whole history.
    pub fn read(reader: impl BufRead, format: HistoryFormat) -> Result<History, HistoryError> {
        History::build(reader, format, |_| {})
    }

    /// Like [`History::read`], also returning the events read (for `--export`).
    pub fn read_events(
        reader: impl BufRead,
        format: HistoryFormat,
    ) -> Result<(History, Vec<Event>), HistoryError> {
        let mut events = Vec::new();
        let h = History::build(reader, format, |e| events.push(e.to_event()))?;
        Ok((h, events))
    }

    fn build(
        reader: impl BufRead,
        format: HistoryFormat,
        mut keep: impl FnMut(&RawEvent<'_>),
    ) -> Result<History, HistoryError> {
        let mut problems = Problems::default();
        let mut b = Builder::new();
        let times = for_each_event(reader, format, &mut problems, |line, e, problems| {
            keep(&e);
            b.push(line, e, problems)
        })?;
        let mut h = b.finish(problems)?;
        h.logical_time = times.logical;
        h.times_raised = times.raised;
        Ok(h)
    }

    /// Validates events already in memory (the scenario runner's path); problems are
    /// reported with the 1-based position of the event as the "line".
    pub fn from_events(events: &[Event]) -> Result<History, HistoryError> {
        let mut problems = Problems::default();
        let mut b = Builder::new();
        for (i, e) in events.iter().enumerate() {
            b.push(i + 1, RawEvent::from(e), &mut problems);
        }
        b.finish(problems)
    }

    /// The key's name.
    pub fn key_name(&self, key: u32) -> &str {
        self.keys
            .names
            .get(key as usize)
            .map_or("?", String::as_str)
    }

    /// The value's text.
    pub fn value_name(&self, value: u32) -> &str {
        self.values
            .names
            .get(value as usize)
            .map_or("?", String::as_str)
    }

    /// A label's text (mode, session, phase, node).
    pub fn label(&self, label: u32) -> &str {
        self.labels
            .names
            .get(label as usize)
            .map_or("?", String::as_str)
    }

    /// The id of a key, if the history has it.
    pub fn key_id(&self, name: &str) -> Option<u32> {
        self.keys.ids.get(name).copied()
    }

    /// The id of a label, if the history has it.
    pub fn label_id(&self, name: &str) -> Option<u32> {
        self.labels.ids.get(name).copied()
    }

    /// Number of distinct keys.
    pub fn key_count(&self) -> usize {
        self.keys.names.len()
    }

    /// Number of distinct values.
    pub fn value_count(&self) -> usize {
        self.values.names.len()
    }

    /// The same history with only the operations `keep` accepts (names stay interned).
    pub fn filtered(&self, keep: impl Fn(&Op) -> bool) -> History {
        History {
            ops: self.ops.iter().filter(|o| keep(o)).cloned().collect(),
            ..self.clone_names()
        }
    }

    fn clone_names(&self) -> History {
        History {
            ops: Vec::new(),
            events: self.events,
            open_at_end: self.open_at_end,
            last_phase: self.last_phase,
            logical_time: self.logical_time,
            times_raised: self.times_raised,
            keys: self.keys.clone(),
            values: self.values.clone(),
            labels: self.labels.clone(),
        }
    }

    /// A value as `Some(text)`, or `None` for absent.
    pub fn value_text(&self, value: Option<u32>) -> Option<String> {
        value.map(|v| self.value_name(v).to_string())
    }
}

impl Builder {
    fn new() -> Builder {
        Builder {
            h: History::default(),
            procs: HashMap::new(),
            last: None,
        }
    }

    fn finish(self, problems: Problems) -> Result<History, HistoryError> {
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

    fn push(&mut self, line: usize, e: RawEvent<'_>, problems: &mut Problems) {
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
