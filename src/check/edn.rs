//! Jepsen's `history.edn` in and out.
//!
//! Where it sits: one of the readers [`super::format`] chooses from, and the writer behind
//! `caplab check --export edn`. Reading accepts what Jepsen and Knossos write: one operation
//! map per line (Jepsen's `history.edn`, plain `{...}` maps or `#jepsen.history.Op{...}`
//! records), or one vector or list of maps (Knossos's `data/` histories), maps possibly
//! spread over several lines; `;` comments and `#_` discards are skipped. Each form is parsed by
//! `clojure-reader` and turned into an event by [`super::jepsen::Converter`]; a malformed
//! form is reported with its line and the reading goes on at the next line, so every bad
//! line of a file is listed at once.
//!
//! Writing produces one plain map per line (no record tag, which a plain EDN reader would
//! refuse), keys always as `jepsen.independent` tuples, and caplab's labels as extra keys:
//!
//! ```text
//! {:index 0, :time 1200345, :type :invoke, :process 3, :f :cas, :value ["k7" ["v1" "v2"]], :mode "ap"}
//! ```
//!
//! Text that is a canonical decimal integer is written as an EDN integer (so Jepsen's own
//! integer values survive a round trip), anything else as an EDN string.

use std::io::{BufRead, Write};

use super::event::{Event, EventType, OpKind};
use super::format::TimeInfo;
use super::jepsen::{Converter, JepsenOp};
use super::parse::{HistoryError, Problems};
use crate::check::event::RawEvent;

/// Most text one form may span before it is reported as unterminated.
const MAX_FORM_BYTES: usize = 1 << 20;

/// Skips EDN whitespace (commas included) and `;` comments.
fn skip_blank(s: &str) -> &str {
    let mut s = s;
    loop {
        s = s.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        match s.strip_prefix(';') {
            Some(rest) => s = rest.find('\n').map_or("", |i| &rest[i..]),
            None => return s,
        }
    }
}

/// Whether a line looks like the start of a new operation (so an unfinished form before it
/// is missing its closing bracket, rather than continuing here).
fn starts_an_op(line: &str) -> bool {
    let t = skip_blank(line);
    t.starts_with('{') || t.starts_with("#jepsen") || t.starts_with("#knossos")
}

fn describe(e: &clojure_reader::error::Error) -> String {
    let code = format!("{:?}", e.code);
    match e.column {
        Some(c) => format!("not valid EDN: {code} (column {c})"),
        None => format!("not valid EDN: {code}"),
    }
}

/// Reads EDN operations, handing each client operation's event to `each` with the line its
/// form starts on, and recording each malformed form in `problems`.
pub(crate) fn for_each_event(
    mut reader: impl BufRead,
    problems: &mut Problems,
    mut each: impl FnMut(usize, RawEvent<'_>, &mut Problems),
) -> Result<TimeInfo, HistoryError> {
    let mut conv = Converter::default();
    let mut line = String::new();
    // Unparsed text, starting on line `start`.
    let mut buf = String::new();
    let mut start = 0usize;
    let mut line_no = 0usize;
    // 0: before any form; 1: inside the outer vector (or list); 2: after it.
    let mut vector = 0u8;
    let mut close = ']';
    let mut seen = false;
    loop {
        line.clear();
        let eof = read_line(&mut reader, &mut line, line_no + 1, problems)? == 0;
        if !eof {
            line_no += 1;
        }
        if !eof && starts_an_op(&line) && starts_an_op(&buf) {
            problems.push(
                start,
                "incomplete form (a value or a closing bracket is missing)",
            );
            buf.clear();
        }
        if eof {
            if !skip_blank(&buf).is_empty() {
                problems.push(start, "unterminated form at the end of the file");
            } else if vector == 1 {
                problems.push(
                    line_no.max(1),
                    "the vector of operations is not closed (`]` or `)` is missing)",
                );
            }
            return Ok(TimeInfo {
                logical: conv.logical_time(),
                raised: conv.times_raised,
            });
        }
        if skip_blank(&buf).is_empty() {
            buf.clear();
            start = line_no;
        }
        buf.push_str(&line);
        // Parse every complete form the buffer holds.
        let mut offset = 0usize;
        loop {
            let rest = &buf[offset..];
            let text = skip_blank(rest);
            offset += rest.len() - text.len();
            let at = start + buf[..offset].matches('\n').count();
            if text.is_empty() {
                buf.clear();
                break;
            }
            if !seen && vector == 0 && (text.starts_with('[') || text.starts_with('(')) {
                vector = 1;
                close = if text.starts_with('(') { ')' } else { ']' };
                offset += 1;
                continue;
            }
            if vector == 1 && text.starts_with(close) {
                vector = 2;
                offset += 1;
                continue;
            }
            seen = true;
            if vector == 2 {
                problems.push(at, "text after the vector of operations");
                buf.clear();
                break;
            }
            // `#_` discards the next form: read past it here, so the line of the form after
            // it is right.
            let (discard, body) = match text.strip_prefix("#_") {
                Some(body) => (true, body),
                None => (false, text),
            };
            let e = match clojure_reader::edn::read(body) {
                Ok((_, after)) if discard => {
                    offset += text.len() - after.len();
                    continue;
                }
                Ok((form, after)) => {
                    match JepsenOp::from_map(&form).and_then(|op| conv.event(&op)) {
                        Ok(Some(event)) => each(at, event, problems),
                        Ok(None) => {}
                        Err(why) => problems.push(at, why),
                    }
                    offset += text.len() - after.len();
                    continue;
                }
                Err(e) => e,
            };
            if e.code == clojure_reader::error::Code::UnexpectedEOF {
                if buf.len() - offset > MAX_FORM_BYTES {
                    problems.push(
                        at,
                        "unterminated form (over 1 MiB without its closing bracket)",
                    );
                    buf.clear();
                } else {
                    buf.drain(..offset);
                    start = at;
                }
            } else {
                let line = at + e.line.map_or(0, |l| l.saturating_sub(1));
                problems.push(line, describe(&e));
                buf.clear(); // go on at the next line
            }
            break;
        }
    }
}

/// Reads one line; a line that is not UTF-8 is reported and read as empty.
fn read_line(
    reader: &mut impl BufRead,
    line: &mut String,
    line_no: usize,
    problems: &mut Problems,
) -> Result<usize, HistoryError> {
    let mut bytes = Vec::new();
    let n = reader.read_until(b'\n', &mut bytes)?;
    match String::from_utf8(bytes) {
        Ok(s) => *line = s,
        Err(_) => {
            problems.push(line_no, "not valid UTF-8");
            line.push('\n');
        }
    }
    Ok(n)
}

/// Writes `s` as an EDN integer when it is a canonical decimal one, else as a string.
fn write_value(out: &mut String, s: Option<&str>) {
    let Some(s) = s else {
        out.push_str("nil");
        return;
    };
    if s.parse::<i64>().is_ok_and(|i| i.to_string() == s) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// One event as a line of Jepsen EDN (without the newline).
pub fn edn_line(e: &Event) -> String {
    let mut s = String::with_capacity(160);
    s.push_str(&format!(
        "{{:index {}, :time {}, :type :{}, :process {}, :f :{}, :value [",
        e.index,
        e.time,
        e.kind.as_str(),
        e.process,
        e.f.as_str()
    ));
    write_value(&mut s, Some(&e.key));
    s.push(' ');
    let pair = e.f == OpKind::Cas && (e.value.is_some() || e.expected.is_some());
    if pair {
        s.push('[');
        write_value(&mut s, e.expected.as_deref());
        s.push(' ');
        write_value(&mut s, e.value.as_deref());
        s.push(']');
    } else if e.f == OpKind::Read && e.kind == EventType::Invoke {
        s.push_str("nil");
    } else {
        write_value(&mut s, e.value.as_deref());
    }
    s.push(']');
    for (name, v) in [
        ("mode", &e.mode),
        ("session", &e.session),
        ("node", &e.node),
        ("phase", &e.phase),
    ] {
        if let Some(v) = v {
            s.push_str(&format!(", :{name} "));
            write_value(&mut s, Some(v));
        }
    }
    for (name, v) in [("version", e.version), ("staleness-ms", e.staleness_ms)] {
        if let Some(v) = v {
            s.push_str(&format!(", :{name} {v}"));
        }
    }
    s.push('}');
    s
}

/// Writes events as Jepsen EDN, one operation map per line.
pub fn write_edn(events: &[Event], out: &mut impl Write) -> std::io::Result<()> {
    for e in events {
        writeln!(out, "{}", edn_line(e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::parse::LineProblem;

    fn read(text: &str) -> (Vec<(usize, crate::check::Event)>, Vec<LineProblem>) {
        let mut problems = Problems::default();
        let mut out = Vec::new();
        let r = for_each_event(text.as_bytes(), &mut problems, |line, e, _| {
            out.push((line, e.to_event()))
        });
        assert!(r.is_ok());
        let listed = match problems.into_error() {
            HistoryError::Malformed { problems, .. } => problems,
            HistoryError::Io(_) => Vec::new(),
        };
        (out, listed)
    }

    #[test]
    fn a_knossos_vector_over_lines_with_comments() {
        let text = "; a comment\n[{:process 0, :type :invoke, :f :write, :value 3}\n {:process 0,\n  :type :ok, :f :write, :value 3}\n #_ {:ignored true}\n {:process 1, :type :invoke, :f :read, :value nil}]\n";
        let (events, problems) = read(text);
        assert!(problems.is_empty(), "{problems:?}");
        let lines: Vec<usize> = events.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![2, 3, 6]);
        assert_eq!(events[1].1.value.as_deref(), Some("3"));
    }

    #[test]
    fn each_bad_line_is_reported_and_reading_goes_on() {
        let text = concat!(
            "{:process 0, :type :invoke, :f :write, :value 1}\n",
            "{:process 0, :type :ok, :f :write, :value 1\n",
            "{:process 1, :type :invoke, :f :read, :value nil}\n",
            "\"just a string\"\n",
            "{:process 1, :type :ok, :f :read :value}\n",
            "{:process 2, :type :invoke, :f :read, :value nil}\n",
        );
        let (events, problems) = read(text);
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 4, 5], "{problems:?}");
        let has = |i: usize, what: &str| problems[i].problem.contains(what);
        assert!(has(0, "incomplete form"), "{problems:?}");
        assert!(has(1, "expected an operation map"), "{problems:?}");
        assert!(has(2, "incomplete form"), "{problems:?}");
        assert_eq!(
            events.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            vec![1, 3, 6]
        );
    }

    #[test]
    fn written_lines_read_back_the_same() {
        let mut e = Event::cas(4, 2, EventType::Ok, "k \"1\"", None, "12".into(), 99);
        e.mode = Some("ap".into());
        e.staleness_ms = Some(3);
        let line = edn_line(&e);
        assert_eq!(
            line,
            r#"{:index 4, :time 99, :type :ok, :process 2, :f :cas, :value ["k \"1\"" [nil 12]], :mode "ap", :staleness-ms 3}"#
        );
        let invoke = Event::cas(3, 2, EventType::Invoke, "k \"1\"", None, "12".into(), 98);
        let (events, problems) = read(&format!("{}\n{line}\n", edn_line(&invoke)));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(events[1].1, e);
        assert_eq!(events[0].1, invoke);
    }
}
