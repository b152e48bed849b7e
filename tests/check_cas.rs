//! Hand-made compare-and-set histories with known answers, through the public API
//! (`History::from_events` + `check_history`): valid ones, one invalid by a single cas, a cas
//! that answered `fail` but must have applied, `info` cas operations that did and did not
//! apply, a cas as a write for stale reads, lost writes and sessions, and the history rules
//! for cas events.

use caplab::check::{
    CheckOptions, CheckReport, Event, EventType, History, HistoryError, OpKind, Validity,
    check_history,
};

const MS: u64 = 1_000_000;

/// Builds a history from operations given as intervals (times in ms).
#[derive(Default)]
struct H {
    events: Vec<(u64, u8, Event)>,
    next_process: u64,
}

impl H {
    fn push(&mut self, invoke: Event, end: Option<Event>) -> &mut Self {
        self.events.push((invoke.time, 0, invoke));
        if let Some(c) = end {
            self.events.push((c.time, 1, c));
        }
        self
    }
    fn process(&mut self) -> u64 {
        self.next_process += 1;
        self.next_process
    }
    fn op(
        &mut self,
        f: OpKind,
        v: Option<&str>,
        a: u64,
        end: Option<(EventType, u64)>,
    ) -> &mut Self {
        let p = self.process();
        let inv = Event::new(
            0,
            p,
            EventType::Invoke,
            f,
            "k",
            if f == OpKind::Write {
                v.map(String::from)
            } else {
                None
            },
            a * MS,
        );
        let c = end.map(|(kind, b)| {
            let value = match (f, kind) {
                (OpKind::Read, EventType::Ok) | (OpKind::Write, _) => v.map(String::from),
                _ => None,
            };
            Event::new(0, p, kind, f, "k", value, b * MS)
        });
        self.push(inv, c)
    }
    fn w(&mut self, v: &str, a: u64, b: u64) -> &mut Self {
        self.op(OpKind::Write, Some(v), a, Some((EventType::Ok, b)))
    }
    fn r(&mut self, v: Option<&str>, a: u64, b: u64) -> &mut Self {
        self.op(OpKind::Read, v, a, Some((EventType::Ok, b)))
    }
    fn cas_ended(
        &mut self,
        from: Option<&str>,
        to: &str,
        a: u64,
        end: (EventType, u64),
    ) -> &mut Self {
        let p = self.process();
        let from = from.map(String::from);
        let inv = Event::cas(
            0,
            p,
            EventType::Invoke,
            "k",
            from.clone(),
            to.into(),
            a * MS,
        );
        let c = Event::cas(0, p, end.0, "k", from, to.into(), end.1 * MS);
        self.push(inv, Some(c))
    }
    fn cas(&mut self, from: Option<&str>, to: &str, a: u64, b: u64) -> &mut Self {
        self.cas_ended(from, to, a, (EventType::Ok, b))
    }
    fn cas_fail(&mut self, from: Option<&str>, to: &str, a: u64, b: u64) -> &mut Self {
        self.cas_ended(from, to, a, (EventType::Fail, b))
    }
    fn cas_info(&mut self, from: Option<&str>, to: &str, a: u64) -> &mut Self {
        self.cas_ended(from, to, a, (EventType::Info, a + 1))
    }
    fn events(&self) -> Vec<Event> {
        let mut ev = self.events.clone();
        ev.sort_by_key(|(t, kind, _)| (*t, *kind));
        ev.into_iter()
            .enumerate()
            .map(|(i, (_, _, mut e))| {
                e.index = i as u64;
                e
            })
            .collect()
    }
    fn check(&self) -> CheckReport {
        let h = History::from_events(&self.events()).expect("valid history");
        check_history(&h, &CheckOptions::default())
    }
}

#[test]
fn sequential_cas_chain_is_valid() {
    let r = H::default()
        .w("1", 0, 10)
        .cas(Some("1"), "2", 20, 30)
        .cas(Some("2"), "3", 40, 50)
        .r(Some("3"), 60, 70)
        .check();
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
    assert_eq!(r.linearizability.ops_searched, 4);
}

#[test]
fn cas_from_absent_and_concurrent_cas_that_both_succeed_in_one_order() {
    // Both cas overlap: the one from absent must go first.
    let r = H::default()
        .cas(Some("1"), "2", 0, 20)
        .cas(None, "1", 5, 15)
        .r(Some("2"), 30, 40)
        .check();
    assert_eq!(r.linearizability.valid, Validity::Valid, "{r:#?}");
}

#[test]
fn one_cas_that_cannot_have_applied_makes_it_invalid() {
    // The register holds 2 when the cas runs: it expected 1, yet it answered ok.
    let r = H::default()
        .w("1", 0, 10)
        .w("2", 20, 30)
        .cas(Some("1"), "3", 40, 50)
        .check();
    assert_eq!(r.valid, Validity::Invalid);
    let l = &r.linearizability;
    assert_eq!(l.keys_invalid, 1);
    let f = &l.failures[0];
    assert_eq!(f.op.f, OpKind::Cas);
    assert_eq!(f.op.expected, Some(Some("1".into())));
    assert_eq!(f.op.value.as_deref(), Some("3"));
    assert_eq!(f.register_then.as_deref(), Some("2"));
    assert_eq!(f.linearized_before, 2);
    assert!(
        f.op.describe().starts_with(r#"cas of "k" from "1" to "3""#),
        "{}",
        f.op.describe()
    );
    // The same cas without the second write is fine.
    let r = H::default()
        .w("1", 0, 10)
        .cas(Some("1"), "3", 40, 50)
        .r(Some("3"), 60, 61)
        .check();
    assert_eq!(r.valid, Validity::Valid);
}

#[test]
fn a_cas_that_failed_but_must_have_applied_is_invalid() {
    // Only the cas writes 2; it answered fail (definitely not applied), yet 2 is read.
    let r = H::default()
        .w("1", 0, 10)
        .cas_fail(Some("1"), "2", 20, 30)
        .r(Some("2"), 40, 50)
        .check();
    assert_eq!(r.linearizability.valid, Validity::Invalid);
    assert_eq!(r.linearizability.failures[0].op.f, OpKind::Read);
    // A value no write or applied cas wrote is "unexplained", not stale.
    assert_eq!(r.stale_reads.unexplained, 1);
    // A failed cas is not evidence that the value differed (as Knossos): no violation.
    let r = H::default()
        .w("1", 0, 10)
        .cas_fail(Some("1"), "2", 20, 30)
        .r(Some("1"), 40, 50)
        .check();
    assert_eq!(r.valid, Validity::Valid);
}

#[test]
fn an_info_cas_may_or_may_not_have_applied() {
    // Applied: its value is read later.
    let r = H::default()
        .w("1", 0, 10)
        .cas_info(Some("1"), "2", 20)
        .r(Some("2"), 40, 50)
        .check();
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
    // Not applied: the old value is still read.
    let r = H::default()
        .w("1", 0, 10)
        .cas_info(Some("1"), "2", 20)
        .r(Some("1"), 40, 50)
        .check();
    assert_eq!(r.valid, Validity::Valid);
    // But not before its invoke ...
    let r = H::default()
        .w("1", 0, 10)
        .r(Some("2"), 12, 15)
        .cas_info(Some("1"), "2", 20)
        .check();
    assert_eq!(r.linearizability.valid, Validity::Invalid);
    // ... and not when the register never held what it expected.
    let r = H::default()
        .w("1", 0, 10)
        .cas_info(Some("9"), "2", 20)
        .r(Some("2"), 40, 50)
        .check();
    assert_eq!(r.linearizability.valid, Validity::Invalid);
}

#[test]
fn a_write_observed_only_by_an_info_cas_may_still_be_overwritten_at_once() {
    // w1 must precede w2 (the last read sees 2 after w1's deadline); the info cas expecting
    // 1 is invoked after w2's deadline and never applied. Linearization: w1, w2, read.
    let r = H::default()
        .w("1", 0, 50)
        .w("2", 0, 10)
        .cas_info(Some("1"), "x", 12)
        .r(Some("2"), 60, 70)
        .check();
    assert_eq!(r.linearizability.valid, Validity::Valid, "{r:#?}");
}

#[test]
fn a_successful_cas_is_a_write_for_stale_reads_lost_writes_and_sessions() {
    // Stale: the cas set 2 before the read of 1 began.
    let r = H::default()
        .w("1", 0, 10)
        .cas(Some("1"), "2", 20, 30)
        .r(Some("1"), 45, 50)
        .check();
    assert_eq!(r.stale_reads.count, 1);
    assert_eq!(r.stale_reads.examples[0].age_ms, 15.0);
    // Lost: the final read (no phases: after every write) does not reflect the cas.
    let r = H::default()
        .w("1", 0, 10)
        .cas(Some("1"), "2", 20, 30)
        .r(Some("1"), 40, 50)
        .check();
    assert_eq!(r.lost_writes.count, 1);
    assert_eq!(r.lost_writes.examples[0].write.f, OpKind::Cas);
    // An info cas may have applied: its value is not stale, and it may be the final one.
    let r = H::default()
        .w("1", 0, 10)
        .cas_info(Some("1"), "2", 20)
        .w("3", 30, 40)
        .cas_info(Some("3"), "4", 50)
        .r(Some("4"), 60, 70)
        .check();
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
}

#[test]
fn session_read_your_writes_counts_a_cas() {
    let mut h = H::default();
    h.w("1", 0, 10)
        .cas(Some("1"), "2", 20, 30)
        .r(Some("1"), 40, 50);
    let mut events = h.events();
    // The cas (invoke and ok) and the read belong to one session.
    for e in events
        .iter_mut()
        .filter(|e| e.process == 2 || e.process == 3)
    {
        e.session = Some("s".into());
    }
    let r = check_history(
        &History::from_events(&events).unwrap(),
        &CheckOptions::default(),
    );
    assert_eq!(r.sessions.read_your_writes, 1, "{:#?}", r.sessions);
    assert_eq!(r.sessions.examples[0].earlier.f, OpKind::Cas);
}

fn problems(text: &str) -> Vec<(usize, String)> {
    match History::parse(text.as_bytes()) {
        Ok(_) => panic!("expected the history to be refused:\n{text}"),
        Err(HistoryError::Malformed { problems, .. }) => {
            problems.into_iter().map(|p| (p.line, p.problem)).collect()
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn cas_events_are_checked_line_by_line() {
    let line = |i: u64, p: u64, t: &str, f: &str, v: &str| {
        format!(
            r#"{{"index":{i},"process":{p},"type":"{t}","f":"{f}","key":"k","value":{v},"time":{i}}}"#
        )
    };
    let text = [
        line(0, 1, "invoke", "cas", r#""a""#),
        line(1, 2, "invoke", "cas", r#"["a",null]"#),
        line(2, 3, "invoke", "write", r#"["a","b"]"#),
        line(3, 4, "invoke", "cas", r#"[null,"b"]"#),
        line(4, 4, "ok", "cas", r#"["a","b"]"#),
        line(5, 5, "invoke", "cas", r#"["a","b"]"#),
        line(6, 5, "ok", "cas", r#""b""#),
        line(7, 6, "invoke", "read", r#"["a","b"]"#),
    ]
    .join("\n");
    let p = problems(&text);
    let lines: Vec<usize> = p.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![1, 2, 3, 5, 7, 8], "{p:#?}");
    assert!(p[0].1.contains("must carry [expected, new]"), "{p:#?}");
    assert!(p[1].1.contains("must not be null"), "{p:#?}");
    assert!(p[2].1.contains("is for f \"cas\""), "{p:#?}");
    assert!(
        p[3].1.contains("cas completion carries a different value"),
        "{p:#?}"
    );
    assert!(p[4].1.contains("carries [expected, new] or null"), "{p:#?}");
    // And a good one parses, with the pair kept.
    let ok = [
        line(0, 1, "invoke", "cas", r#"[null,"b"]"#),
        line(1, 1, "info", "cas", "null"),
    ]
    .join("\n");
    let h = History::parse(ok.as_bytes()).unwrap();
    assert_eq!(h.ops[0].f, OpKind::Cas);
    assert_eq!(
        (h.ops[0].expected, h.ops[0].value.map(|v| h.value_name(v))),
        (None, Some("b"))
    );
}
