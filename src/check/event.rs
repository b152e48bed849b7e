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
//! {"index": 1, "process": 4, "type": "invoke", "f": "cas", "key": "k7", "value": ["v-3-41", "v-4-2"], "time": 1200377}
//! ```
//!
//! A compare-and-set's `value` is `[expected, new]`, as in Jepsen's register workload
//! (`expected` may be `null`: the key must be absent); a read's or write's is one string or
//! `null`. The optional fields (`mode`, `session`, `node`, `version`, `staleness_ms`,
//! `phase`) are left out of the JSON when they are `None`, and unknown fields are ignored
//! when reading, so a newer writer does not break an older checker.

use serde::de::Deserializer;
use serde::ser::{SerializeStruct, Serializer};
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

impl EventType {
    /// `"invoke"`, `"ok"`, `"fail"` or `"info"`, as in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

/// The operation an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// Read one key.
    Read,
    /// Write one key.
    Write,
    /// Compare-and-set one key: write `new` only if the key holds `expected`. `ok` when it
    /// applied, `fail` when it certainly did not (the value did not match, or it was
    /// refused), `info` when unknown.
    Cas,
}

impl OpKind {
    /// `"read"`, `"write"` or `"cas"`, as in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Cas => "cas",
        }
    }

    /// Whether the operation may change the register (a write, or a cas).
    pub fn writes(self) -> bool {
        !matches!(self, OpKind::Read)
    }
}

/// One event of a history: one line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position of the event in the history; strictly increasing.
    pub index: u64,
    /// The client process. A process has at most one operation outstanding and issues
    /// nothing after an `info`.
    pub process: u64,
    /// `invoke`, `ok`, `fail` or `info` (`"type"` in the JSON).
    pub kind: EventType,
    /// `read`, `write` or `cas`.
    pub f: OpKind,
    /// The key the operation is about.
    pub key: String,
    /// A write's value (on its invoke and its completion); a read's value on its `ok`
    /// (`null` = key absent); `null` on a read's invoke; a cas's new value.
    pub value: Option<String>,
    /// A cas's expected value (`None`: the key must be absent); `None` for reads and
    /// writes. In the JSON it is the first element of a cas's `value`.
    pub expected: Option<String>,
    /// Nanoseconds on a monotonic clock; never decreasing from one line to the next.
    pub time: u64,
    /// The personality that served it (`cp` or `ap`).
    pub mode: Option<String>,
    /// The read-your-writes session the operation belongs to.
    pub session: Option<String>,
    /// The node that answered (`g1` or `g2`).
    pub node: Option<String>,
    /// The record version the service reported.
    pub version: Option<u64>,
    /// The staleness the service reported with a read, in milliseconds.
    pub staleness_ms: Option<u64>,
    /// The scenario phase the event happened in (e.g. `baseline`, `partition`, `final`).
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
            expected: None,
            time,
            mode: None,
            session: None,
            node: None,
            version: None,
            staleness_ms: None,
            phase: None,
        }
    }

    /// A compare-and-set event: `[expected, new]`.
    pub fn cas(
        index: u64,
        process: u64,
        kind: EventType,
        key: impl Into<String>,
        expected: Option<String>,
        new: String,
        time: u64,
    ) -> Event {
        Event {
            expected,
            ..Event::new(index, process, kind, OpKind::Cas, key, Some(new), time)
        }
    }

    /// The event's `value` as the JSON holds it.
    pub(crate) fn value_field(&self) -> ValueField<'_> {
        ValueField::of(self.f, self.expected.as_deref(), self.value.as_deref())
    }
}

/// A `value` field as written: one value (or `null`), or a cas's `[expected, new]`.
pub(crate) enum ValueField<'a> {
    One(Option<&'a str>),
    Pair(Option<&'a str>, Option<&'a str>),
}

impl<'a> ValueField<'a> {
    /// The `value` of an operation `f` with `expected` (cas only) and `value`: the one place
    /// that decides it, for [`Event`] and for writers that borrow their fields.
    pub(crate) fn of(f: OpKind, expected: Option<&'a str>, value: Option<&'a str>) -> Self {
        match (f, expected, value) {
            (OpKind::Cas, None, None) => ValueField::One(None),
            (OpKind::Cas, e, v) => ValueField::Pair(e, v),
            (_, _, v) => ValueField::One(v),
        }
    }
}

impl Serialize for ValueField<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ValueField::One(v) => v.serialize(s),
            ValueField::Pair(e, v) => (e, v).serialize(s),
        }
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let optional = [
            self.mode.is_some(),
            self.session.is_some(),
            self.node.is_some(),
            self.version.is_some(),
            self.staleness_ms.is_some(),
            self.phase.is_some(),
        ];
        let n = 7 + optional.iter().filter(|&&b| b).count();
        let mut st = s.serialize_struct("Event", n)?;
        st.serialize_field("index", &self.index)?;
        st.serialize_field("process", &self.process)?;
        st.serialize_field("type", &self.kind)?;
        st.serialize_field("f", &self.f)?;
        st.serialize_field("key", &self.key)?;
        st.serialize_field("value", &self.value_field())?;
        st.serialize_field("time", &self.time)?;
        macro_rules! opt {
            ($name:literal, $field:expr) => {
                match &$field {
                    Some(v) => st.serialize_field($name, v)?,
                    None => st.skip_field($name)?,
                }
            };
        }
        opt!("mode", self.mode);
        opt!("session", self.session);
        opt!("node", self.node);
        opt!("version", self.version);
        opt!("staleness_ms", self.staleness_ms);
        opt!("phase", self.phase);
        st.end()
    }
}

pub(crate) use super::raw::{RawEvent, RawValue};

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Event, D::Error> {
        Ok(RawEvent::deserialize(d)?.to_event())
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

    #[test]
    fn a_cas_value_is_expected_then_new() -> TestResult {
        let e = Event::cas(3, 2, EventType::Invoke, "k", None, "b".into(), 7);
        let json = serde_json::to_string(&e)?;
        assert!(
            json.contains(r#""f":"cas","key":"k","value":[null,"b"]"#),
            "{json}"
        );
        let back: Event = serde_json::from_str(&json)?;
        assert_eq!(back, e);
        let e = Event::cas(4, 2, EventType::Ok, "k", Some("a".into()), "b".into(), 8);
        assert!(serde_json::to_string(&e)?.contains(r#""value":["a","b"]"#));
        let bad = r#"{"index":0,"process":1,"type":"invoke","f":"cas","key":"k","value":["a","b","c"],"time":1}"#;
        let err = serde_json::from_str::<Event>(bad).map_err(|e| e.to_string());
        assert!(
            matches!(&err, Err(m) if m.contains("invalid length 3")),
            "{err:?}"
        );
        let bad =
            r#"{"index":0,"process":1,"type":"invoke","f":"write","key":"k","value":7,"time":1}"#;
        let err = serde_json::from_str::<Event>(bad).map_err(|e| e.to_string());
        assert!(
            matches!(&err, Err(m) if m.contains("[expected, new]")),
            "{err:?}"
        );
        Ok(())
    }
}
