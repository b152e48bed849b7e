//! The operation lines older Jepsen versions log through `jepsen.util`, e.g.
//!
//! ```text
//! INFO  jepsen.util - 3  :invoke  :cas  [1 4]
//! INFO  jepsen.util - 3  :info    :cas  :timed-out
//! ```
//!
//! (tabs between the fields in Jepsen's own logs).
//!
//! Where it sits: one of the readers [`super::format`] chooses from. After `jepsen.util`
//! (and the ` - ` or `: ` the logger put after it) come the process, the type, `f` and the
//! value, separated by tabs or spaces (Porcupine's copies of these logs use both); the value
//! is EDN, so `[1 4]` is one field, and anything after it (an error) is ignored. Each field
//! is read with `clojure-reader` and the operation goes through the same
//! [`super::jepsen::Converter`] as `history.edn`, so the rules are the same; the logs carry
//! no `:time`, so the order of the lines is real-time order. Lines without `jepsen.util` (the
//! rest of a `jepsen.log`) are skipped; a file with no operation line at all is refused.

use std::io::BufRead;

use clojure_reader::edn::{self, Edn};

use super::event::RawEvent;
use super::format::TimeInfo;
use super::jepsen::{Converter, JepsenOp};
use super::parse::{HistoryError, Problems};

/// What marks an operation line.
pub(crate) const MARKER: &str = "jepsen.util";

/// The process, type, `f` and value of one operation line.
fn fields(line: &str) -> Option<Result<[Edn<'_>; 4], String>> {
    let at = line.find(MARKER)?;
    let mut rest = line[at + MARKER.len()..].trim_start_matches([' ', '\t', '-', ':']);
    let mut out: [Edn<'_>; 4] = [Edn::Nil, Edn::Nil, Edn::Nil, Edn::Nil];
    let names = ["the process", "the type", "f", "the value"];
    for (slot, name) in out.iter_mut().zip(names) {
        match edn::read(rest) {
            Ok((form, after)) => {
                *slot = form;
                rest = after;
            }
            Err(e) => {
                let column = e
                    .column
                    .map_or(String::new(), |c| format!(" (column {c} of it)"));
                return Some(Err(format!(
                    "cannot read {name} of a jepsen.util line: {:?}{column}",
                    e.code
                )));
            }
        }
    }
    Some(Ok(out))
}

/// Reads `jepsen.util` log lines, handing each client operation's event to `each` with its
/// line number, and recording each malformed operation line in `problems`.
pub(crate) fn for_each_event(
    mut reader: impl BufRead,
    problems: &mut Problems,
    mut each: impl FnMut(usize, RawEvent<'_>, &mut Problems),
) -> Result<TimeInfo, HistoryError> {
    let mut conv = Converter::default();
    let mut buf = Vec::new();
    let (mut line_no, mut ops) = (0usize, 0usize);
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        let Ok(line) = std::str::from_utf8(&buf) else {
            problems.push(line_no, "not valid UTF-8");
            continue;
        };
        let Some(fields) = fields(line) else { continue };
        ops += 1;
        let [process, kind, f, value] = match fields {
            Ok(f) => f,
            Err(why) => {
                problems.push(line_no, why);
                continue;
            }
        };
        let op = JepsenOp {
            process: Some(&process),
            kind: Some(&kind),
            f: Some(&f),
            value: Some(&value),
            ..JepsenOp::default()
        };
        match conv.event(&op) {
            Ok(Some(event)) => each(line_no, event, problems),
            Ok(None) => {}
            Err(why) => problems.push(line_no, why),
        }
    }
    if ops == 0 {
        problems.push(
            line_no.max(1),
            "no jepsen.util operation line (e.g. `INFO  jepsen.util - 3\t:invoke\t:read\tnil`) in the file",
        );
    }
    // No times in a log: positions stand for them.
    Ok(TimeInfo {
        logical: true,
        raised: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_spaces_and_other_prefixes() -> Result<(), String> {
        let [p, t, f, v] = fields("INFO  jepsen.util - 3\t:invoke\t:cas\t[1 4]").ok_or("no")??;
        assert_eq!(
            (p, t, f),
            (
                Edn::Int(3),
                Edn::Key("invoke".into()),
                Edn::Key("cas".into())
            )
        );
        assert_eq!(v, Edn::Vector(vec![Edn::Int(1), Edn::Int(4)]));
        let [p, _, _, v] = fields("INFO  jepsen.util - 0   :ok     :read   nil").ok_or("no")??;
        assert_eq!((p, v), (Edn::Int(0), Edn::Nil));
        let line = "2017-03-01 10:00:00,123{GMT}\tINFO\t[jepsen worker 3] jepsen.util: 3\t:info\t:write\t:timed-out\tindeterminate: timeout";
        let [_, t, _, v] = fields(line).ok_or("no")??;
        assert_eq!(
            (t, v),
            (Edn::Key("info".into()), Edn::Key("timed-out".into()))
        );
        assert!(fields("INFO  jepsen.core - Run complete").is_none());
        assert!(matches!(
            fields("INFO  jepsen.util - 3\t:invoke\t:cas\t[1 4"),
            Some(Err(_))
        ));
        Ok(())
    }

    #[test]
    fn a_file_without_operation_lines_is_refused() {
        let mut problems = Problems::default();
        let r = for_each_event("hello\nworld\n".as_bytes(), &mut problems, |_, _, _| {});
        assert!(r.is_ok());
        let msg = problems.into_error().to_string();
        assert!(
            msg.contains("line 2: no jepsen.util operation line"),
            "{msg}"
        );
    }
}
