//! The history recorder: every operation as an `invoke` event and a completion event, one
//! JSON line each, in the checker's format ([`crate::check::Event`]).
//!
//! Where it sits: the client tasks call [`Recorder::invoke`] right before sending and
//! [`Recorder::complete`] right after the answer (or the timeout). Index and time are taken
//! under one lock, so indexes increase and times never decrease down the file, and an invoke
//! is always stamped before its request leaves. The lock guards a buffered file write and is
//! never held across an `.await`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::check::event::ValueField;
use crate::check::{EventType, OpKind};

/// What an event says beyond index and time.
#[derive(Debug, Clone)]
pub struct EventFields<'a> {
    /// Client process.
    pub process: u64,
    /// Event type.
    pub kind: EventType,
    /// Read, write or cas.
    pub f: OpKind,
    /// Key.
    pub key: &'a str,
    /// Value written or read; a cas's new value.
    pub value: Option<&'a str>,
    /// A cas's expected value (`None`: the key must be absent); `None` for reads and writes.
    pub expected: Option<&'a str>,
    /// `cp` or `ap`.
    pub mode: &'static str,
    /// Session, for session clients.
    pub session: Option<&'a str>,
    /// Node that answered.
    pub node: Option<&'a str>,
    /// Version reported.
    pub version: Option<u64>,
    /// Staleness reported.
    pub staleness_ms: Option<u64>,
    /// Phase.
    pub phase: &'a str,
}

/// [`Event`] borrowed: the same JSON (field names, order, omitted `None`s) without an
/// allocation per field; a test checks the two serialise identically.
#[derive(serde::Serialize)]
struct EventRef<'a> {
    index: u64,
    process: u64,
    #[serde(rename = "type")]
    kind: EventType,
    f: OpKind,
    key: &'a str,
    value: ValueField<'a>,
    time: u64,
    mode: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    staleness_ms: Option<u64>,
    phase: &'a str,
}

struct Inner {
    out: BufWriter<File>,
    next_index: u64,
    error: Option<std::io::Error>,
    line: Vec<u8>,
}

/// The shared, append-only history file.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
    t0: Instant,
}

impl Recorder {
    /// Creates (truncates) `path`; times are nanoseconds since `t0`.
    pub fn create(path: &Path, t0: Instant) -> std::io::Result<Recorder> {
        let out = BufWriter::with_capacity(1 << 16, File::create(path)?);
        Ok(Recorder {
            inner: Arc::new(Mutex::new(Inner {
                out,
                next_index: 0,
                error: None,
                line: Vec::with_capacity(256),
            })),
            t0,
        })
    }

    /// Writes one event stamped now; returns its time (ns since `t0`).
    pub fn record(&self, e: &EventFields<'_>) -> u64 {
        let Ok(mut inner) = self.inner.lock() else {
            return self.t0.elapsed().as_nanos() as u64; // a poisoned lock: a task panicked
        };
        let time = self.t0.elapsed().as_nanos() as u64;
        let event = EventRef {
            index: inner.next_index,
            process: e.process,
            kind: e.kind,
            f: e.f,
            key: e.key,
            value: ValueField::of(e.f, e.expected, e.value),
            time,
            mode: e.mode,
            session: e.session,
            node: e.node,
            version: e.version,
            staleness_ms: e.staleness_ms,
            phase: e.phase,
        };
        inner.next_index += 1;
        let inner = &mut *inner;
        inner.line.clear();
        let result = serde_json::to_writer(&mut inner.line, &event)
            .map_err(std::io::Error::other)
            .and_then(|()| {
                inner.line.push(b'\n');
                inner.out.write_all(&inner.line)
            });
        if let Err(err) = result {
            inner.error.get_or_insert(err);
        }
        time
    }

    /// Events written so far.
    pub fn events(&self) -> u64 {
        self.inner.lock().map_or(0, |i| i.next_index)
    }

    /// Flushes the file; the first write error, if any, is returned.
    pub fn finish(&self) -> std::io::Result<()> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| std::io::Error::other("a client task panicked while recording"))?;
        if let Some(e) = inner.error.take() {
            return Err(e);
        }
        inner.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Event, History};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn the_borrowed_event_serialises_exactly_as_event() -> TestResult {
        let mut owned = Event::new(
            3,
            7,
            EventType::Ok,
            OpKind::Read,
            "ap-x-k1",
            Some("v".into()),
            99,
        );
        owned.mode = Some("ap".into());
        owned.node = Some("g2".into());
        owned.staleness_ms = Some(12);
        owned.phase = Some("partition".into());
        let borrowed = EventRef {
            index: 3,
            process: 7,
            kind: EventType::Ok,
            f: OpKind::Read,
            key: "ap-x-k1",
            value: ValueField::of(OpKind::Read, None, Some("v")),
            time: 99,
            mode: "ap",
            session: None,
            node: Some("g2"),
            version: None,
            staleness_ms: Some(12),
            phase: "partition",
        };
        assert_eq!(
            serde_json::to_string(&borrowed)?,
            serde_json::to_string(&owned)?
        );
        Ok(())
    }

    #[test]
    fn a_recorded_cas_is_byte_for_byte_the_event_it_stands_for() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("h.jsonl");
        let r = Recorder::create(&path, Instant::now())?;
        // Two cas operations (the second expecting the key absent), then a cas with neither
        // value, which both writers spell `null`.
        let cases = [
            (EventType::Invoke, Some("1"), Some("2")),
            (EventType::Ok, Some("1"), Some("2")),
            (EventType::Invoke, None, Some("3")),
            (EventType::Fail, None, Some("3")),
            (EventType::Invoke, None, None),
        ];
        let mut times = Vec::new();
        for (kind, expected, new) in cases {
            let e = EventFields {
                process: 2,
                kind,
                f: OpKind::Cas,
                key: "cp-k1",
                value: new,
                expected,
                mode: "cp",
                session: None,
                node: Some("g1"),
                version: Some(5),
                staleness_ms: None,
                phase: "cut",
            };
            times.push(r.record(&e));
        }
        r.finish()?;
        let text = std::fs::read_to_string(&path)?;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), cases.len());
        for (i, ((kind, expected, new), line)) in cases.iter().zip(&lines).enumerate() {
            let mut owned = Event::new(
                i as u64,
                2,
                *kind,
                OpKind::Cas,
                "cp-k1",
                new.map(str::to_string),
                times[i],
            );
            owned.expected = expected.map(str::to_string);
            owned.mode = Some("cp".into());
            owned.node = Some("g1".into());
            owned.version = Some(5);
            owned.phase = Some("cut".into());
            assert_eq!(*line, serde_json::to_string(&owned)?);
        }
        assert!(lines[0].contains(r#""value":["1","2"]"#), "{}", lines[0]);
        assert!(lines[2].contains(r#""value":[null,"3"]"#), "{}", lines[2]);
        let h = History::parse(lines[..4].join("\n").as_bytes())?;
        assert_eq!(h.ops.len(), 2);
        Ok(())
    }

    #[test]
    fn writes_a_history_the_checker_reads() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("h.jsonl");
        let r = Recorder::create(&path, Instant::now())?;
        let mut e = EventFields {
            process: 1,
            kind: EventType::Invoke,
            f: OpKind::Write,
            key: "cp-k1",
            value: Some("1-1"),
            expected: None,
            mode: "cp",
            session: None,
            node: None,
            version: None,
            staleness_ms: None,
            phase: "baseline",
        };
        let t1 = r.record(&e);
        e.kind = EventType::Ok;
        e.node = Some("g1");
        let t2 = r.record(&e);
        assert!(t2 >= t1);
        r.finish()?;
        let text = std::fs::read_to_string(&path)?;
        assert!(
            text.starts_with(
                r#"{"index":0,"process":1,"type":"invoke","f":"write","key":"cp-k1","value":"1-1""#
            ),
            "{text}"
        );
        let h = History::parse(text.as_bytes())?;
        assert_eq!(h.ops.len(), 1);
        assert_eq!(r.events(), 2);
        Ok(())
    }
}
