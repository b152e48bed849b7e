//! Which history format a file is in, and the reader for each: caplab's JSON Lines,
//! Jepsen's `history.edn` (and Knossos's vectors of maps), and the `jepsen.util` log lines.
//!
//! Where it sits: the first step of `caplab check` (`--format`, by default detected here)
//! and of [`super::History::read`]. Every reader hands events, each with its line, to the
//! same history builder, so the rules and the line-numbered problems are the same whatever
//! the format. Detection looks at the start of the file: `{"` is JSON, `{:`, `[`, `(`, `#`
//! or `;` is EDN, and a `jepsen.util` line in the first 64 KiB is a log.

use std::io::BufRead;

use super::event::RawEvent;
use super::parse::{HistoryError, Problems};

/// A history file's format (`--format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryFormat {
    /// Detect it from the start of the file.
    #[default]
    Auto,
    /// caplab's JSON Lines (`history.jsonl`).
    Jsonl,
    /// Jepsen's `history.edn` (one operation map per line, or a vector of maps).
    Edn,
    /// The `jepsen.util` operation lines of a Jepsen log.
    JepsenLog,
}

/// What a reader learnt about a file's times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TimeInfo {
    /// The times are positions in the file, not nanoseconds (the file had none).
    pub logical: bool,
    /// Jepsen `:time` values that went back and were raised to keep the file's order.
    pub raised: usize,
}

/// The format of a file that starts with `head`, or the line to blame and why not.
pub(crate) fn detect(head: &[u8]) -> Result<HistoryFormat, (usize, String)> {
    let text = String::from_utf8_lossy(head);
    let body = text.trim_start();
    let line = 1 + text[..text.len() - body.len()].matches('\n').count();
    let mut chars = body.chars();
    match chars.next() {
        None => Ok(HistoryFormat::Jsonl), // empty: no events either way
        Some('{') => match chars.as_str().trim_start().chars().next() {
            Some('"' | '}') | None => Ok(HistoryFormat::Jsonl),
            _ => Ok(HistoryFormat::Edn),
        },
        Some('[' | '(' | '#' | ';') => Ok(HistoryFormat::Edn),
        _ if text.contains(super::jepsen_log::MARKER) => Ok(HistoryFormat::JepsenLog),
        _ => Err((
            line,
            "cannot tell the history's format: expected a JSON object per line, Jepsen EDN, or jepsen.util log lines (see --format)".into(),
        )),
    }
}

/// Reads `reader` in `format` (detected first when `Auto`), handing each event to `each`
/// with its line, and recording every malformed line in `problems`.
pub(crate) fn for_each_event(
    mut reader: impl BufRead,
    format: HistoryFormat,
    problems: &mut Problems,
    each: impl FnMut(usize, RawEvent<'_>, &mut Problems),
) -> Result<TimeInfo, HistoryError> {
    let format = match format {
        HistoryFormat::Auto => match detect(reader.fill_buf()?) {
            Ok(f) => f,
            Err((line, why)) => {
                problems.push(line, why);
                return Ok(TimeInfo::default());
            }
        },
        f => f,
    };
    match format {
        HistoryFormat::Auto | HistoryFormat::Jsonl => {
            super::parse::for_each_event(reader, problems, each).map(|()| TimeInfo::default())
        }
        HistoryFormat::Edn => super::edn::for_each_event(reader, problems, each),
        HistoryFormat::JepsenLog => super::jepsen_log::for_each_event(reader, problems, each),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format_from_its_start() {
        let d = |s: &str| detect(s.as_bytes());
        assert_eq!(d("\n  {\"index\":0}"), Ok(HistoryFormat::Jsonl));
        assert_eq!(d(""), Ok(HistoryFormat::Jsonl));
        assert_eq!(d("{:index 0, :type :invoke}"), Ok(HistoryFormat::Edn));
        assert_eq!(d("#jepsen.history.Op{:index 0}"), Ok(HistoryFormat::Edn));
        assert_eq!(d("[{:process 0}]"), Ok(HistoryFormat::Edn));
        assert_eq!(
            d("INFO  jepsen.core - starting\nINFO  jepsen.util - 0\t:invoke\t:read\tnil\n"),
            Ok(HistoryFormat::JepsenLog)
        );
        let err = d("\n\nindex,process,type\n");
        assert!(
            matches!(&err, Err((3, m)) if m.contains("cannot tell")),
            "{err:?}"
        );
    }
}
