//! The history format's rules: each malformed line is reported with its line number and the
//! problem, and a broken history is refused whole.

use caplab::check::{Event, EventType, History, HistoryError, OpKind, Outcome};

fn problems(text: &str) -> Vec<(usize, String)> {
    match History::parse(text.as_bytes()) {
        Ok(_) => panic!("expected the history to be refused:\n{text}"),
        Err(HistoryError::Malformed { problems, .. }) => {
            problems.into_iter().map(|p| (p.line, p.problem)).collect()
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn line(index: u64, process: u64, kind: &str, f: &str, value: &str, time: u64) -> String {
    format!(
        r#"{{"index":{index},"process":{process},"type":"{kind}","f":"{f}","key":"k","value":{value},"time":{time}}}"#
    )
}

#[test]
fn a_valid_history_pairs_events_into_operations() {
    let text = [
        line(0, 1, "invoke", "write", "\"a\"", 10),
        line(1, 2, "invoke", "read", "null", 11),
        line(2, 1, "ok", "write", "\"a\"", 20),
        line(3, 2, "ok", "read", "\"a\"", 21),
        line(4, 3, "invoke", "write", "\"b\"", 30),
        line(5, 3, "info", "write", "\"b\"", 40),
        line(6, 4, "invoke", "read", "null", 50),
    ]
    .join("\n");
    let h = History::parse(text.as_bytes()).unwrap();
    assert_eq!(h.events, 7);
    assert_eq!(h.ops.len(), 4);
    let w = &h.ops[0];
    assert_eq!(
        (w.f, w.outcome, w.invoke, w.complete),
        (OpKind::Write, Outcome::Ok, 10, Some(20))
    );
    assert_eq!(h.value_text(h.ops[1].value).as_deref(), Some("a"));
    assert_eq!((h.ops[2].outcome, h.ops[2].complete), (Outcome::Info, None));
    // The last read never completed: treated as info and counted.
    assert_eq!((h.ops[3].outcome, h.open_at_end), (Outcome::Info, 1));
}

#[test]
fn process_rules_are_enforced_with_line_numbers() {
    let text = [
        line(0, 1, "invoke", "write", "\"a\"", 10),
        line(1, 1, "invoke", "read", "null", 11), // 2: invoke while outstanding
        line(2, 2, "ok", "read", "\"a\"", 12),    // 3: completion without invoke
        line(3, 1, "info", "write", "\"a\"", 13),
        line(4, 1, "invoke", "read", "null", 14), // 5: after info
        line(5, 5, "invoke", "read", "\"x\"", 15), // 6: read invoke with a value
        line(6, 6, "invoke", "write", "null", 16), // 7: write invoke without value
    ]
    .join("\n");
    let p = problems(&text);
    let lines: Vec<usize> = p.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![2, 3, 5, 6, 7], "{p:#?}");
    assert!(
        p[0].1.contains("still outstanding") && p[0].1.contains("line 1"),
        "{p:#?}"
    );
    assert!(p[1].1.contains("no outstanding invoke"), "{p:#?}");
    assert!(p[2].1.contains("after its info on line 4"), "{p:#?}");
    assert!(p[3].1.contains("value\": null"), "{p:#?}");
    assert!(p[4].1.contains("must carry its value"), "{p:#?}");
}

#[test]
fn completion_must_match_its_invoke() {
    let text = [
        line(0, 1, "invoke", "write", "\"a\"", 10),
        line(1, 1, "ok", "write", "\"b\"", 11),
        line(2, 2, "invoke", "write", "\"a\"", 12),
        line(3, 2, "ok", "read", "\"a\"", 13),
    ]
    .join("\n");
    let p = problems(&text);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert_eq!(p[0].0, 2);
    assert!(p[0].1.contains("different value"), "{p:#?}");
    assert_eq!(p[1].0, 4);
    assert!(p[1].1.contains("f or key differs"), "{p:#?}");
}

#[test]
fn order_rules_time_and_index() {
    let text = [
        line(0, 1, "invoke", "write", "\"a\"", 10),
        line(0, 2, "invoke", "write", "\"b\"", 11), // index repeats
        line(2, 3, "invoke", "write", "\"c\"", 5),  // time goes back
    ]
    .join("\n");
    let p = problems(&text);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].0 == 2 && p[0].1.contains("index 0 does not increase"),
        "{p:#?}"
    );
    assert!(p[1].0 == 3 && p[1].1.contains("time 5 goes back"), "{p:#?}");
}

#[test]
fn json_problems_name_the_field_and_the_line() {
    let text = [
        line(0, 1, "invoke", "write", "\"a\"", 10),
        r#"{"index":1,"process":1,"type":"ok","f":"write","key":"k","value":"a"}"#.to_string(),
        r#"{"index":2,"process":1,"type":"ok","f":"delete","key":"k","value":"a","time":3}"#
            .to_string(),
        r#"{"index":3,"process":1,"type":"ok","f":"write","key":"k","value":7,"time":3}"#
            .to_string(),
        "{".to_string(),
    ]
    .join("\n");
    let p = problems(&text);
    let lines: Vec<usize> = p.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![2, 3, 4, 5], "{p:#?}");
    assert!(p[0].1.contains("missing field `time`"), "{p:#?}");
    assert!(p[1].1.contains("unknown variant `delete`"), "{p:#?}");
    assert!(p[2].1.contains("invalid type: integer `7`"), "{p:#?}");
    assert!(p[3].1.contains("EOF"), "{p:#?}");
}

#[test]
fn error_message_lists_problems_and_says_nothing_was_checked() {
    let err = History::parse("nope\n".as_bytes()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("nothing was checked"), "{msg}");
    assert!(msg.contains("line 1: expected"), "{msg}");
}

#[test]
fn in_memory_events_are_validated_the_same_way() {
    let ok = Event::new(0, 1, EventType::Ok, OpKind::Read, "k", None, 1);
    let Err(HistoryError::Malformed { problems, .. }) = History::from_events(&[ok]) else {
        panic!("expected malformed");
    };
    assert_eq!(problems[0].line, 1);
    assert!(problems[0].problem.contains("no outstanding invoke"));
}
