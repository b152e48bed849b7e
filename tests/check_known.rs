//! Hand-made histories with known answers, through the public API the scenario runner uses
//! (`History::from_events` + `check_history`): linearizable and not, overlapping writes,
//! `info` writes that did and did not take effect, `fail` writes, absent keys, repeated
//! values, stale-read ages, lost writes, session violations and the unknown verdict.

use std::time::Duration;

use caplab::check::{
    CheckOptions, CheckReport, Event, EventType, History, OpKind, Validity, check_history,
};

const MS: u64 = 1_000_000;

/// Builds a history from operations given as intervals (times in ms).
#[derive(Default)]
struct H {
    events: Vec<(u64, u8, Event)>,
    next_process: u64,
}

struct OpSpec<'a> {
    f: OpKind,
    key: &'a str,
    value: Option<&'a str>,
    invoke: u64,
    end: Option<(EventType, u64)>,
    session: Option<&'a str>,
    phase: Option<&'a str>,
}

impl H {
    fn add(&mut self, o: OpSpec) -> &mut Self {
        let p = self.next_process;
        self.next_process += 1;
        let inv_value = if o.f == OpKind::Write { o.value } else { None };
        let mut e = Event::new(
            0,
            p,
            EventType::Invoke,
            o.f,
            o.key,
            inv_value.map(String::from),
            o.invoke * MS,
        );
        e.session = o.session.map(String::from);
        e.phase = o.phase.map(String::from);
        self.events.push((o.invoke * MS, 0, e.clone()));
        if let Some((kind, t)) = o.end {
            let value = match (o.f, kind) {
                (OpKind::Read, EventType::Ok) | (OpKind::Write, _) => o.value.map(String::from),
                _ => None,
            };
            let mut c = Event::new(0, p, kind, o.f, o.key, value, t * MS);
            c.session = e.session.clone();
            c.phase = e.phase.clone();
            self.events.push((t * MS, 1, c));
        }
        self
    }
    fn w(&mut self, key: &str, v: &str, a: u64, b: u64) -> &mut Self {
        self.add(OpSpec {
            f: OpKind::Write,
            key,
            value: Some(v),
            invoke: a,
            end: Some((EventType::Ok, b)),
            session: None,
            phase: None,
        })
    }
    fn w_info(&mut self, key: &str, v: &str, a: u64) -> &mut Self {
        self.add(OpSpec {
            f: OpKind::Write,
            key,
            value: Some(v),
            invoke: a,
            end: Some((EventType::Info, a + 1)),
            session: None,
            phase: None,
        })
    }
    fn w_fail(&mut self, key: &str, v: &str, a: u64, b: u64) -> &mut Self {
        self.add(OpSpec {
            f: OpKind::Write,
            key,
            value: Some(v),
            invoke: a,
            end: Some((EventType::Fail, b)),
            session: None,
            phase: None,
        })
    }
    fn r(&mut self, key: &str, v: Option<&str>, a: u64, b: u64) -> &mut Self {
        self.add(OpSpec {
            f: OpKind::Read,
            key,
            value: v,
            invoke: a,
            end: Some((EventType::Ok, b)),
            session: None,
            phase: None,
        })
    }
    fn history(&self) -> History {
        let mut ev = self.events.clone();
        ev.sort_by_key(|(t, kind, _)| (*t, *kind));
        let events: Vec<Event> = ev
            .into_iter()
            .enumerate()
            .map(|(i, (_, _, mut e))| {
                e.index = i as u64;
                e
            })
            .collect();
        History::from_events(&events).expect("valid history")
    }
    fn check(&self) -> CheckReport {
        check_history(&self.history(), &CheckOptions::default())
    }
}

#[test]
fn sequential_write_then_read_is_valid() {
    let r = H::default()
        .w("a", "1", 0, 10)
        .r("a", Some("1"), 20, 30)
        .check();
    assert_eq!(r.valid, Validity::Valid);
    assert_eq!(r.exit_code(), 0);
    assert_eq!(r.linearizability.keys_valid, 1);
    assert_eq!(r.stale_reads.count, 0);
}

#[test]
fn read_of_an_overwritten_value_is_not_linearizable_and_stale_with_its_age() {
    let r = H::default()
        .w("a", "1", 0, 10)
        .w("a", "2", 20, 30)
        .r("a", Some("1"), 45, 50)
        .check();
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.exit_code(), 1);
    let l = &r.linearizability;
    assert_eq!((l.keys_invalid, l.failures.len()), (1, 1));
    assert_eq!(l.failures[0].key, "a");
    assert_eq!(l.failures[0].op.f, OpKind::Read);
    assert_eq!(l.failures[0].op.value.as_deref(), Some("1"));
    assert_eq!(r.stale_reads.count, 1);
    // 45 ms (read began) - 30 ms (the overwriting write completed).
    assert_eq!(r.stale_reads.examples[0].age_ms, 15.0);
    assert_eq!(r.stale_reads.age_ms.max, 15.0);
}

#[test]
fn overlapping_writes_may_land_in_either_order_but_not_both() {
    // w1 [0,10] and w2 [5,15] overlap: reading 1 afterwards is fine (order w2, w1) ...
    let mut h = H::default();
    h.w("a", "1", 0, 10)
        .w("a", "2", 5, 15)
        .r("a", Some("1"), 20, 21);
    assert_eq!(h.check().valid, Validity::Valid);
    // ... reading 2 first and 1 afterwards is not: the register cannot go back.
    let mut h = H::default();
    h.w("a", "1", 0, 10)
        .w("a", "2", 5, 15)
        .r("a", Some("2"), 20, 21)
        .r("a", Some("1"), 22, 23);
    let r = h.check();
    assert_eq!(r.linearizability.valid, Validity::Invalid);
    assert_eq!(r.linearizability.failures[0].op.value.as_deref(), Some("1"));
    // Neither write definitely superseded the other, so no read is *stale* by definition.
    assert_eq!(r.stale_reads.count, 0);
}

#[test]
fn reads_concurrent_with_a_write_may_see_old_or_new() {
    let r = H::default()
        .w("a", "1", 0, 10)
        .w("a", "2", 20, 40)
        .r("a", Some("1"), 25, 30)
        .r("a", Some("2"), 26, 31)
        .check();
    assert_eq!(r.valid, Validity::Valid);
}

#[test]
fn absent_keys() {
    // Absent before any write: fine.
    let r = H::default().r("a", None, 0, 5).w("a", "1", 10, 20).check();
    assert_eq!(r.valid, Validity::Valid);
    // Absent after an acknowledged write completed: not linearizable, and stale.
    let r = H::default().w("a", "1", 0, 10).r("a", None, 30, 35).check();
    assert_eq!(r.linearizability.valid, Validity::Invalid);
    assert_eq!(r.stale_reads.count, 1);
    assert_eq!(r.stale_reads.examples[0].age_ms, 20.0);
    // A read of a key never written is absent, on a key of its own.
    let r = H::default().w("a", "1", 0, 10).r("b", None, 30, 35).check();
    assert_eq!(r.valid, Validity::Valid);
    assert_eq!(r.linearizability.keys, 2);
}

#[test]
fn info_write_that_took_effect() {
    let mut h = H::default();
    h.w("a", "1", 0, 10)
        .w_info("a", "2", 20)
        .r("a", Some("2"), 100, 110);
    assert_eq!(h.check().valid, Validity::Valid);
    // Once its effect is seen, the older value cannot come back.
    h.r("a", Some("1"), 120, 130);
    let r = h.check();
    assert_eq!(r.linearizability.valid, Validity::Invalid);
    // An info write may land any time: the old value is never *definitely* overwritten.
    assert_eq!(r.stale_reads.count, 0);
}

#[test]
fn info_write_that_never_took_effect() {
    let r = H::default()
        .w("a", "1", 0, 10)
        .w_info("a", "2", 20)
        .r("a", Some("1"), 100, 110)
        .r("a", Some("1"), 200, 210)
        .check();
    assert_eq!(r.valid, Validity::Valid);
    assert_eq!(r.availability.total.info, 1);
}

#[test]
fn info_write_may_take_effect_late_but_not_before_its_invoke() {
    // Seen long after its info completion: fine (it was still in flight).
    let mut h = H::default();
    h.w("a", "1", 0, 10)
        .w_info("a", "2", 20)
        .r("a", Some("1"), 30, 40)
        .r("a", Some("2"), 500, 510);
    assert_eq!(h.check().valid, Validity::Valid);
    // Seen by a read that completed before it was invoked: impossible.
    let mut h = H::default();
    h.w("a", "1", 0, 10)
        .r("a", Some("2"), 12, 15)
        .w_info("a", "2", 20);
    let r = h.check();
    assert_eq!(r.linearizability.valid, Validity::Invalid);
    assert_eq!(r.stale_reads.unexplained, 1);
}

#[test]
fn failed_writes_did_not_happen() {
    let mut h = H::default();
    h.w("a", "1", 0, 10)
        .w_fail("a", "2", 20, 30)
        .r("a", Some("1"), 40, 50);
    assert_eq!(h.check().valid, Validity::Valid);
    let mut h = H::default();
    h.w("a", "1", 0, 10)
        .w_fail("a", "2", 20, 30)
        .r("a", Some("2"), 40, 50);
    let r = h.check();
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.stale_reads.unexplained, 1);
}

#[test]
fn repeated_values_are_judged_by_every_write_that_could_explain_them() {
    // 1, 2, 1 again: reading 1 at the end is current, not stale.
    let mut h = H::default();
    h.w("a", "1", 0, 10)
        .w("a", "2", 20, 30)
        .w("a", "1", 40, 50)
        .r("a", Some("1"), 60, 70);
    let r = h.check();
    assert_eq!(r.valid, Validity::Valid);
    // Reading 1 between the 2 and the second 1 is stale: only the first 1 could explain it.
    let mut h = H::default();
    h.w("a", "1", 0, 10)
        .w("a", "2", 20, 30)
        .r("a", Some("1"), 35, 38)
        .w("a", "1", 40, 50);
    let r = h.check();
    assert_eq!(r.stale_reads.count, 1);
    assert_eq!(r.stale_reads.examples[0].age_ms, 5.0);
    assert_eq!(r.linearizability.valid, Validity::Invalid);
    // ... but not if the second 1 overlaps the read.
    let mut h = H::default();
    h.w("a", "1", 0, 10)
        .w("a", "2", 20, 30)
        .r("a", Some("1"), 35, 45)
        .w("a", "1", 40, 50);
    let r = h.check();
    assert_eq!(r.stale_reads.count, 0);
    assert_eq!(r.valid, Validity::Valid);
}

fn phased<'a>(
    f: OpKind,
    key: &'a str,
    value: Option<&'a str>,
    a: u64,
    b: u64,
    phase: &'a str,
) -> OpSpec<'a> {
    OpSpec {
        f,
        key,
        value,
        invoke: a,
        end: Some((EventType::Ok, b)),
        session: None,
        phase: Some(phase),
    }
}

#[test]
fn lost_acknowledged_writes_in_the_final_phase() {
    let mut h = H::default();
    h.add(phased(OpKind::Write, "a", Some("1"), 0, 10, "main"))
        .add(phased(OpKind::Write, "a", Some("2"), 20, 30, "main"))
        .add(phased(OpKind::Write, "b", Some("x"), 0, 10, "main"))
        .add(phased(OpKind::Write, "c", Some("y"), 0, 10, "main"))
        .add(phased(OpKind::Write, "d", Some("p"), 0, 10, "main"))
        .add(phased(OpKind::Write, "d", Some("q"), 5, 15, "main"))
        .add(phased(OpKind::Read, "a", Some("1"), 100, 110, "final"))
        .add(phased(OpKind::Read, "b", None, 100, 110, "final"))
        .add(phased(OpKind::Read, "d", Some("p"), 100, 110, "final"));
    let r = h.check();
    let lw = &r.lost_writes;
    assert_eq!(lw.final_phase.as_deref(), Some("final"));
    // a lost "2" (the final value is the older "1"); b lost "x" (absent); c has no final
    // read; d's writes overlap, so "p" may be the last one.
    assert_eq!((lw.count, lw.writes_lost), (2, 2));
    assert_eq!(
        (lw.keys_written, lw.keys_verified, lw.keys_unverified),
        (4, 3, 1)
    );
    assert_eq!(lw.examples[0].key, "a");
    assert_eq!(lw.examples[0].write.value.as_deref(), Some("2"));
    assert_eq!(lw.examples[1].key, "b");
    assert_eq!(r.valid, Validity::Invalid);
}

#[test]
fn lost_writes_without_phases_use_reads_after_the_last_write() {
    let mut h = H::default();
    h.w("a", "1", 0, 10)
        .w("a", "2", 20, 30)
        .r("a", Some("2"), 25, 28)
        .r("a", Some("1"), 40, 50);
    let r = h.check();
    assert_eq!(r.lost_writes.final_phase, None);
    assert_eq!(r.lost_writes.count, 1);
    // Only the read invoked after the last write counts: with the fresh read last, no loss.
    let mut h = H::default();
    h.w("a", "1", 0, 10)
        .w("a", "2", 20, 30)
        .r("a", Some("1"), 25, 28)
        .r("a", Some("2"), 40, 50);
    assert_eq!(h.check().lost_writes.count, 0);
}

fn in_session<'a>(
    f: OpKind,
    key: &'a str,
    value: Option<&'a str>,
    a: u64,
    b: u64,
    s: &'a str,
) -> OpSpec<'a> {
    OpSpec {
        f,
        key,
        value,
        invoke: a,
        end: Some((EventType::Ok, b)),
        session: Some(s),
        phase: None,
    }
}

#[test]
fn read_your_writes_violation() {
    let mut h = H::default();
    h.w("a", "0", 0, 5)
        .add(in_session(OpKind::Write, "a", Some("1"), 10, 20, "s1"))
        .add(in_session(OpKind::Read, "a", Some("0"), 30, 40, "s1"))
        // Another session reading the old value concurrently with the write is fine.
        .add(in_session(OpKind::Read, "a", Some("0"), 12, 15, "s2"));
    let r = h.check();
    assert_eq!(r.sessions.sessions, 2);
    assert_eq!(
        (r.sessions.read_your_writes, r.sessions.monotonic_reads),
        (1, 0)
    );
    assert_eq!(r.sessions.examples[0].kind, "read-your-writes");
    assert_eq!(r.sessions.examples[0].session, "s1");
    assert_eq!(r.sessions.examples[0].earlier.value.as_deref(), Some("1"));
}

#[test]
fn monotonic_reads_violation_and_ambiguous_values() {
    let mut h = H::default();
    h.w("a", "1", 0, 10)
        .w("a", "2", 20, 30)
        .add(in_session(OpKind::Read, "a", Some("2"), 40, 45, "s1"))
        .add(in_session(OpKind::Read, "a", Some("1"), 50, 55, "s1"));
    let r = h.check();
    assert_eq!(
        (r.sessions.read_your_writes, r.sessions.monotonic_reads),
        (0, 1)
    );
    // Same, but "1" is also written concurrently later: it may be the newer value.
    h.w("a", "1", 32, 60);
    let r = h.check();
    assert_eq!(r.sessions.monotonic_reads, 0);
    assert_eq!(r.sessions.valid, Validity::Valid);
}

#[test]
fn an_unfinished_search_is_unknown_with_exit_2() {
    let mut h = H::default();
    for i in 0..12 {
        h.w("a", &format!("{i}"), i, i + 100);
    }
    h.r("a", Some("7"), 200, 210);
    let opts = CheckOptions {
        max_memo_bytes: 64,
        ..CheckOptions::default()
    };
    let r = check_history(&h.history(), &opts);
    assert_eq!(r.linearizability.valid, Validity::Unknown);
    assert_eq!(r.linearizability.unknown_keys, vec!["a".to_string()]);
    assert_eq!(r.valid, Validity::Unknown);
    assert_eq!(r.exit_code(), 2);
    // The same history with room to search is valid (any of the 12 writes may be last).
    assert_eq!(h.check().valid, Validity::Valid);
}

#[test]
fn a_timeout_gives_unknown() {
    // 14 overlapping writes, each read by an overlapping read, then a read that no order
    // explains: the search must try many orders before it can say no, far more than a 1 ns
    // deadline allows.
    let mut h = H::default();
    for i in 0..14 {
        h.w("a", &format!("{i}"), i, i + 100);
        h.r("a", Some(&format!("{i}")), i + 1, i + 120);
    }
    h.r("a", Some("none"), 150, 160).w("a", "none", 165, 170);
    let opts = CheckOptions {
        timeout: Some(Duration::from_nanos(1)),
        ..CheckOptions::default()
    };
    let r = check_history(&h.history(), &opts);
    assert_eq!(r.linearizability.valid, Validity::Unknown);
    assert_eq!(
        r.linearizability.unknown_reason,
        Some(caplab::check::UnknownReason::Timeout)
    );
}

#[test]
fn mode_filter_checks_one_personality() {
    let mut events = Vec::new();
    let mut push = |p: u64, kind, f, v: Option<&str>, t: u64, mode: &str| {
        let mut e = Event::new(events.len() as u64, p, kind, f, "a", v.map(String::from), t);
        e.mode = Some(mode.to_string());
        events.push(e);
    };
    push(1, EventType::Invoke, OpKind::Write, Some("1"), 0, "cp");
    push(1, EventType::Ok, OpKind::Write, Some("1"), 10, "cp");
    push(2, EventType::Invoke, OpKind::Write, Some("2"), 20, "cp");
    push(2, EventType::Ok, OpKind::Write, Some("2"), 30, "cp");
    push(3, EventType::Invoke, OpKind::Read, None, 40, "ap");
    push(3, EventType::Ok, OpKind::Read, Some("1"), 50, "ap");
    let h = History::from_events(&events).unwrap();
    let all = check_history(&h, &CheckOptions::default());
    assert_eq!(all.valid, Validity::Invalid);
    assert_eq!(all.stale_reads.by_mode["ap"].stale, 1);
    let cp = check_history(
        &h,
        &CheckOptions {
            mode: Some("cp".into()),
            ..CheckOptions::default()
        },
    );
    assert_eq!(cp.valid, Validity::Valid);
    assert_eq!(cp.history.ops, 2);
}

#[test]
fn info_writes_are_never_required_to_survive_and_may_be_the_final_value() {
    let mut h = H::default();
    h.add(phased(OpKind::Write, "a", Some("1"), 0, 10, "main"))
        .add(OpSpec {
            f: OpKind::Write,
            key: "a",
            value: Some("2"),
            invoke: 20,
            end: Some((EventType::Info, 30)),
            session: None,
            phase: Some("main"),
        })
        .add(phased(OpKind::Read, "a", Some("2"), 100, 110, "final"));
    let r = h.check();
    assert_eq!((r.lost_writes.count, r.lost_writes.keys_verified), (0, 1));
    assert_eq!(r.valid, Validity::Valid);
    // The final value may also be the acknowledged one: the info write never landed.
    let mut h = H::default();
    h.add(phased(OpKind::Write, "a", Some("1"), 0, 10, "main"))
        .add(OpSpec {
            f: OpKind::Write,
            key: "a",
            value: Some("2"),
            invoke: 20,
            end: Some((EventType::Info, 30)),
            session: None,
            phase: Some("main"),
        })
        .add(phased(OpKind::Read, "a", Some("1"), 100, 110, "final"));
    assert_eq!(h.check().valid, Validity::Valid);
}

#[test]
fn how_stale_how_often_counts_each_age_bucket_as_a_share_of_all_reads() {
    // "1" is overwritten when w2 completes at 30 ms; four reads of it, 50 ms, 500 ms, 5 s and
    // 20 s later, and four fresh reads of "2".
    let mut h = H::default();
    h.w("a", "1", 0, 10).w("a", "2", 20, 30);
    for (i, at) in [80u64, 530, 5_030, 20_030].into_iter().enumerate() {
        h.r("a", Some("1"), at, at + 1);
        h.r("a", Some("2"), at + 2 + i as u64, at + 3 + i as u64);
    }
    let r = h.check();
    let st = &r.stale_reads;
    assert_eq!((st.count, st.reads), (4, 8));
    let got: Vec<(&str, usize, f64)> = st
        .by_age
        .iter()
        .map(|b| (b.age, b.stale, b.share_of_reads))
        .collect();
    assert_eq!(
        got,
        vec![
            ("under 100 ms", 1, 0.125),
            ("100 ms to 1 s", 1, 0.125),
            ("1 s to 10 s", 1, 0.125),
            ("over 10 s", 1, 0.125),
        ]
    );
    assert_eq!(st.by_mode[""].by_age, st.by_age, "per mode too");
}
