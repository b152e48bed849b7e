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

use super::builder::Builder;
use super::event::{Event, OpKind, RawEvent};
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
pub(super) struct Interner {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Interner {
    pub(super) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.to_string());
        self.ids.insert(s.to_string(), id);
        id
    }

    pub(super) fn intern_opt(&mut self, s: &Option<std::borrow::Cow<'_, str>>) -> Option<u32> {
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
    pub(super) keys: Interner,
    pub(super) values: Interner,
    pub(super) labels: Interner,
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
