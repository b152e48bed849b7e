//! Reading a history file: JSON Lines into events, every malformed line reported with its
//! line number and the problem.
//!
//! Where it sits: first step of `caplab check`. It only turns text into events; the rules
//! that tie events together (one invoke then one completion per process, nothing after an
//! `info`, time never going back) are checked by [`crate::check::History::parse`], which
//! this module feeds one line at a time (each event borrows from its line, so a big file is
//! neither held whole in memory nor copied string by string). Blank lines are skipped.
//! Problems are collected (up to [`MAX_PROBLEMS`]) rather than stopping at the first one, so
//! a broken file is fixed in one pass; a history with any problem is refused whole.

use std::fmt;
use std::io::BufRead;

use super::event::RawEvent;

/// At most this many problems are listed; the rest are counted.
pub const MAX_PROBLEMS: usize = 20;

/// One malformed line: where and what.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineProblem {
    /// 1-based line number in the file (or 1-based event number for in-memory histories).
    pub line: usize,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

/// Why a history could not be read: the file could not be read at all, or some lines are
/// malformed (the check does not start on a broken file).
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Reading failed (missing file, permission, I/O error).
    #[error("cannot read the history: {0}")]
    Io(#[from] std::io::Error),
    /// One or more lines are malformed.
    #[error("{}", render_problems(.problems, *.more))]
    Malformed {
        /// The first problems found, in line order.
        problems: Vec<LineProblem>,
        /// How many more problems were found beyond those listed.
        more: usize,
    },
}

fn render_problems(problems: &[LineProblem], more: usize) -> String {
    let total = problems.len() + more;
    let mut out = format!(
        "the history is malformed ({total} problem{}); nothing was checked",
        if total == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str("\n  ");
        out.push_str(&p.to_string());
    }
    if more > 0 {
        out.push_str(&format!("\n  ... and {more} more"));
    }
    out
}

/// Collects problems, keeping the first [`MAX_PROBLEMS`].
#[derive(Debug, Default)]
pub(crate) struct Problems {
    listed: Vec<LineProblem>,
    more: usize,
}

impl Problems {
    pub(crate) fn push(&mut self, line: usize, problem: impl Into<String>) {
        if self.listed.len() < MAX_PROBLEMS {
            self.listed.push(LineProblem {
                line,
                problem: problem.into(),
            });
        } else {
            self.more += 1;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    pub(crate) fn into_error(mut self) -> HistoryError {
        self.listed.sort_by_key(|p| p.line);
        HistoryError::Malformed {
            problems: self.listed,
            more: self.more,
        }
    }
}

/// Reads JSON Lines, handing each valid event (borrowed from its line) to `each` with its
/// line number, and recording each line that is not a valid event in `problems`.
pub(crate) fn for_each_event(
    mut reader: impl BufRead,
    problems: &mut Problems,
    mut each: impl FnMut(usize, RawEvent<'_>, &mut Problems),
) -> Result<(), HistoryError> {
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        line_no += 1;
        let Ok(text) = std::str::from_utf8(&buf) else {
            problems.push(line_no, "not valid UTF-8");
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<RawEvent>(text) {
            Ok(event) => each(line_no, event, problems),
            Err(e) => problems.push(line_no, describe_json_error(&e)),
        }
    }
}

/// serde_json's message without its "at line 1 column N" suffix (every line is line 1 to it),
/// keeping the column, which is useful.
fn describe_json_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let base = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg.as_str(),
    };
    format!("{base} (column {})", e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn reports_each_bad_line_with_its_number_and_skips_blank_lines() -> TestResult {
        let text = concat!(
            r#"{"index":0,"process":1,"type":"invoke","f":"read","key":"a","value":null,"time":1}"#,
            "\n\n",
            "not json\n",
            r#"{"index":2,"process":1,"type":"done","f":"read","key":"a","value":null,"time":2}"#,
            "\n",
            r#"{"index":3,"process":1,"type":"ok","f":"read","value":null,"time":2}"#,
            "\n",
        );
        let mut problems = Problems::default();
        let mut lines = Vec::new();
        for_each_event(text.as_bytes(), &mut problems, |line, _, _| {
            lines.push(line)
        })?;
        assert_eq!(lines, vec![1]);
        let HistoryError::Malformed { problems, more } = problems.into_error() else {
            panic!("expected malformed");
        };
        assert_eq!(more, 0);
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert!(
            problems[1].problem.contains("unknown variant `done`"),
            "{problems:?}"
        );
        assert!(
            problems[2].problem.contains("missing field `key`"),
            "{problems:?}"
        );
        Ok(())
    }

    #[test]
    fn lists_at_most_max_problems_and_counts_the_rest() -> TestResult {
        let text = "x\n".repeat(MAX_PROBLEMS + 5);
        let mut problems = Problems::default();
        for_each_event(text.as_bytes(), &mut problems, |_, _, _| {})?;
        let err = problems.into_error();
        let msg = err.to_string();
        assert!(msg.contains("25 problems"), "{msg}");
        assert!(msg.contains("... and 5 more"), "{msg}");
        Ok(())
    }
}
