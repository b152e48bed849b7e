//! One line of a history file: the [`Event`] type, shared by whoever writes histories (the
//! scenario runner) and the checker that reads them.
//!
//! Where it sits: the scenario runner records each request to a personality as an `invoke`
//! event and, when the answer (or the timeout) comes, a completion event; it serialises them
//! with this type, one JSON object per line. `caplab check` parses them back with
//! [`crate::check::History`]. The field names and order are fixed by the history format:
//!
//! ```json
//! {"index": 0, "process": 3, "type": "invoke", "f": "write", "key": "k7", "value": "v-3-41", "time": 1200345}
//! ```
//!
//! The optional fields (`mode`, `session`, `node`, `version`, `staleness_ms`, `phase`) are
//! left out of the JSON when they are `None`, and unknown fields are ignored when reading, so
//! a newer writer does not break an older checker.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// What an event says about its operation (Jepsen's vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The operation was sent.
    Invoke,
    /// It completed and definitely took effect (a read's `ok` carries the value read).
    Ok,
    /// It definitely did not take effect.
    Fail,
    /// Unknown: it may take effect at any time after its invoke, or never (a timeout, an
    /// indeterminate CP write). The process issues nothing after it.
    Info,
}

/// The operation an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// Read one key.
    Read,
    /// Write one key.
    Write,
}

impl OpKind {
    /// `"read"` or `"write"`, as in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
        }
    }
}

/// One event of a history: one line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position of the event in the history; strictly increasing.
    pub index: u64,
    /// The client process. A process has at most one operation outstanding and issues
    /// nothing after an `info`.
    pub process: u64,
    /// `invoke`, `ok`, `fail` or `info`.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// `read` or `write`.
    pub f: OpKind,
    /// The key the operation is about.
    pub key: String,
    /// A write's value (on its invoke and its completion); a read's value on its `ok`
    /// (`null` = key absent); `null` on a read's invoke.
    pub value: Option<String>,
    /// Nanoseconds on a monotonic clock; never decreasing from one line to the next.
    pub time: u64,
    /// The personality that served it (`cp` or `ap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The read-your-writes session the operation belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The node that answered (`g1` or `g2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The record version the service reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The staleness the service reported with a read, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staleness_ms: Option<u64>,
    /// The scenario phase the event happened in (e.g. `baseline`, `partition`, `final`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

impl Event {
    /// An event with the required fields and no optional ones.
    pub fn new(
        index: u64,
        process: u64,
        kind: EventType,
        f: OpKind,
        key: impl Into<String>,
        value: Option<String>,
        time: u64,
    ) -> Event {
        Event {
            index,
            process,
            kind,
            f,
            key: key.into(),
            value,
            time,
            mode: None,
            session: None,
            node: None,
            version: None,
            staleness_ms: None,
            phase: None,
        }
    }
}

/// An event borrowed from the line it was parsed from (or from an [`Event`]), so reading a
/// big history does not allocate a string per field; [`super::History`] interns them.
#[derive(Debug, Deserialize)]
pub(crate) struct RawEvent<'a> {
    pub index: u64,
    pub process: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: OpKind,
    #[serde(borrow)]
    pub key: Cow<'a, str>,
    #[serde(borrow)]
    pub value: Option<Cow<'a, str>>,
    pub time: u64,
    #[serde(default, borrow)]
    pub mode: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub session: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub node: Option<Cow<'a, str>>,
    /// Parsed so that a wrongly typed one is reported; not used by the checks.
    #[serde(default)]
    #[allow(dead_code)]
    pub version: Option<u64>,
    /// Parsed so that a wrongly typed one is reported; not used by the checks.
    #[serde(default)]
    #[allow(dead_code)]
    pub staleness_ms: Option<u64>,
    #[serde(default, borrow)]
    pub phase: Option<Cow<'a, str>>,
}

impl<'a> From<&'a Event> for RawEvent<'a> {
    fn from(e: &'a Event) -> RawEvent<'a> {
        let b = |s: &'a Option<String>| s.as_deref().map(Cow::Borrowed);
        RawEvent {
            index: e.index,
            process: e.process,
            kind: e.kind,
            f: e.f,
            key: Cow::Borrowed(&e.key),
            value: b(&e.value),
            time: e.time,
            mode: b(&e.mode),
            session: b(&e.session),
            node: b(&e.node),
            version: e.version,
            staleness_ms: e.staleness_ms,
            phase: b(&e.phase),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn serialises_to_the_issue_format_exactly() -> TestResult {
        let e = Event::new(
            0,
            3,
            EventType::Invoke,
            OpKind::Write,
            "k7",
            Some("v-3-41".into()),
            1200345,
        );
        let json = serde_json::to_string(&e)?;
        assert_eq!(
            json,
            r#"{"index":0,"process":3,"type":"invoke","f":"write","key":"k7","value":"v-3-41","time":1200345}"#
        );
        let read = Event::new(1, 4, EventType::Invoke, OpKind::Read, "k7", None, 5);
        assert!(serde_json::to_string(&read)?.contains(r#""value":null"#));
        Ok(())
    }

    #[test]
    fn optional_fields_round_trip_and_unknown_fields_are_ignored() -> TestResult {
        let line = r#"{"index": 2, "process": 1, "type": "ok", "f": "read", "key": "a", "value": "x",
            "time": 9, "mode": "ap", "session": "s1", "node": "g2", "version": 4,
            "staleness_ms": 120, "phase": "partition", "extra": [1, 2]}"#;
        let e: Event = serde_json::from_str(line)?;
        assert_eq!(e.mode.as_deref(), Some("ap"));
        assert_eq!(e.staleness_ms, Some(120));
        assert_eq!(e.phase.as_deref(), Some("partition"));
        let back: Event = serde_json::from_str(&serde_json::to_string(&e)?)?;
        assert_eq!(back, e);
        Ok(())
    }
}
