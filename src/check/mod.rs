//! History checkers: turn a recorded history into verdicts. `caplab check` and the
//! scenario runner both use this module.
//!
//! Where it sits: after the data path. The scenario runner records every request it makes to
//! a personality as events ([`Event`]) in `history.jsonl`; this module validates them into a
//! [`History`] and runs the checkers over it, producing one [`CheckReport`].
//!
//! ## Public API
//!
//! - [`Event`] (with [`EventType`], [`OpKind`]): one line of the history, serialised as
//!   `{"index":0,"process":3,"type":"invoke","f":"write","key":"k7","value":"v-3-41","time":1200345}`
//!   (a compare-and-set's `value` is `[expected, new]`), plus the optional `mode`, `session`,
//!   `node`, `version`, `staleness_ms`, `phase`.
//! - [`History::parse`] (JSON Lines), [`History::read`] (any [`HistoryFormat`]: JSON Lines,
//!   Jepsen's `history.edn`, `jepsen.util` log lines, or detected) and
//!   [`History::from_events`]`(&[Event])` (events in memory; the "line" of a problem is then
//!   the event's 1-based position) validate a history; a broken one is refused whole with
//!   [`HistoryError`], which lists each problem with its line number.
//! - [`check_history`]`(&History, &CheckOptions) -> CheckReport` runs every checker; the
//!   report is `Serialize` (the `--json` output, and what the runner embeds in
//!   `report.json`), [`CheckReport::exit_code`] gives 0 valid, 1 invalid, 2 unknown, and
//!   [`render::summary`] prints it for people; [`explain::view`] and [`picture::page`] draw
//!   why it is not linearizable; [`edn::write_edn`] writes events as Jepsen EDN.
//! - [`generate`]: a generator of histories from a real sequential register under random
//!   concurrency, public as test support for the property tests and benchmarks.
//!
//! ## The checkers
//!
//! | file | what it finds |
//! |---|---|
//! | `linearizable.rs`, `wgl.rs`, `searcher.rs`, `entries.rs`, `memo.rs` | per-key linearizability of a read/write/cas register (Wing-Gong-Lowe with Porcupine's memo) |
//! | `stale.rs` | reads of values definitely overwritten before the read began, with ages and their share per age bucket |
//! | `lost.rs` | acknowledged writes missing from the final read |
//! | `session.rs` | read-your-writes and monotonic-read violations per session |
//! | `availability.rs` | ok / fail / info per f, mode, phase |
//! | `sources.rs` | the shared index: which writes a value could have come from |
//! | `event.rs`, `raw.rs`, `parse.rs`, `history.rs`, `builder.rs` | the history format, an event as read, reading JSON Lines, the validated history and its builder |
//! | `format.rs`, `edn.rs`, `jepsen_log.rs`, `jepsen.rs` | which format a file is in; Jepsen's `history.edn` in and out, its log lines in, and its operations as events |
//! | `report.rs`, `render.rs` | the report types and the readable summary |
//! | `explain.rs`, `picture.rs` | the failing key as data, and drawn (`--html`, the scenario report) |
//!
//! The exact definitions (what "older" means when values repeat and operations overlap) are
//! in each file's docs and in `docs/decisions.md`.

pub mod availability;
mod builder;
pub mod edn;
mod entries;
pub mod event;
pub mod explain;
pub mod format;
pub mod generate;
pub mod history;
pub mod jepsen;
mod jepsen_log;
pub mod linearizable;
pub mod lost;
mod memo;
pub mod parse;
pub mod picture;
mod raw;
pub mod render;
pub mod report;
mod searcher;
pub mod session;
mod sources;
pub mod stale;
mod wgl;

use std::collections::HashSet;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub use event::{Event, EventType, OpKind};
pub use format::HistoryFormat;
pub use history::{History, Op, Outcome};
pub use parse::{HistoryError, LineProblem};
pub use report::{CheckReport, HistorySummary, OpRef, Percentiles, Validity};
pub use wgl::UnknownReason;

/// The consistency model checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Model {
    /// A read/write register per key.
    Register,
}

/// What `--export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Jepsen's EDN, one operation map per line, keys as `jepsen.independent` tuples.
    Edn,
    /// caplab's JSON Lines.
    Jsonl,
}

/// `caplab check HISTORY`
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The history to check: caplab's JSON Lines, Jepsen's `history.edn`, or `jepsen.util`
    /// log lines (`-` reads standard input).
    pub history: PathBuf,
    /// The history's format (by default detected from the start of the file).
    #[arg(long, value_enum, default_value_t = HistoryFormat::Auto)]
    pub format: HistoryFormat,
    /// Instead of checking, write the history in this format to standard output (`edn`
    /// for Knossos or Elle, `jsonl` for caplab).
    #[arg(long, value_enum)]
    pub export: Option<ExportFormat>,
    /// Also write a self-contained HTML page drawing why the history fails (the failing
    /// key's operations on a timeline per process) to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// The model to check against.
    #[arg(long, value_enum, default_value_t = Model::Register)]
    pub model: Model,
    /// Print the report as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Time limit for the whole linearizability search (`30s`, `500ms`, `2m`; `0` = none).
    /// Keys not finished by then are `unknown`.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// The phase whose last read of each key is its final value, for lost writes
    /// (default: the phase of the last event that names one).
    #[arg(long)]
    pub final_phase: Option<String>,
    /// Check only the operations of this mode (`cp` or `ap`).
    #[arg(long)]
    pub mode: Option<String>,
    /// How many examples of each anomaly to list.
    #[arg(long, default_value_t = 20)]
    pub max_examples: usize,
    /// Memory the linearizability search may hold, MiB; past it, keys are `unknown`.
    #[arg(long, default_value_t = 1024)]
    pub max_memory_mib: usize,
    /// Threads for the linearizability search (0 = one per core; at most one per key, 256).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// What [`check_history`] is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOptions {
    /// Time limit for the whole linearizability search; `None` = none.
    pub timeout: Option<Duration>,
    /// Final phase for lost writes (`None`: the last phase seen in the history).
    pub final_phase: Option<String>,
    /// Check only operations of this mode.
    pub mode: Option<String>,
    /// How many examples of each anomaly to keep.
    pub max_examples: usize,
    /// Bytes the linearizability memo sets may hold together.
    pub max_memo_bytes: usize,
    /// Search threads (0 = one per core).
    pub threads: usize,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions {
            timeout: Some(Duration::from_secs(30)),
            final_phase: None,
            mode: None,
            max_examples: 20,
            max_memo_bytes: 1 << 30,
            threads: 0,
        }
    }
}

impl From<&CheckArgs> for CheckOptions {
    fn from(a: &CheckArgs) -> CheckOptions {
        CheckOptions {
            timeout: (!a.timeout.is_zero()).then_some(a.timeout),
            final_phase: a.final_phase.clone(),
            mode: a.mode.clone(),
            max_examples: a.max_examples,
            max_memo_bytes: a.max_memory_mib.saturating_mul(1 << 20),
            threads: a.threads,
        }
    }
}

/// Why `caplab check` could not produce a verdict (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The history could not be read or is malformed.
    #[error("{}: {error}", path.display())]
    History {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: HistoryError,
    },
    /// The report could not be written to standard output.
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
    /// The HTML page could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Html {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The checking task died.
    #[error("the check did not finish: {0}")]
    Task(String),
}

/// Runs every checker on a validated history.
pub fn check_history(history: &History, opts: &CheckOptions) -> CheckReport {
    let filtered;
    let history = match opts.mode.as_deref() {
        Some(mode) => {
            let id = history.label_id(mode);
            filtered = history.filtered(|op| id.is_some() && op.mode == id);
            &filtered
        }
        None => history,
    };
    let sources = sources::Sources::new(history);
    let linearizability = linearizable::check(history, opts);
    let stale_reads = stale::check(history, &sources, opts);
    let lost_writes = lost::check(history, &sources, opts);
    let sessions = session::check(history, &sources, opts);
    let availability = availability::check(history);
    let valid = linearizability
        .valid
        .and(stale_reads.valid)
        .and(lost_writes.valid)
        .and(sessions.valid);
    CheckReport {
        valid,
        history: HistorySummary {
            events: history.events,
            ops: history.ops.len(),
            keys: history.key_count(),
            processes: history
                .ops
                .iter()
                .map(|o| o.process)
                .collect::<HashSet<_>>()
                .len(),
            open_at_end: history.open_at_end,
            times_raised: history.times_raised,
            mode_filter: opts.mode.clone(),
        },
        linearizability,
        stale_reads,
        lost_writes,
        sessions,
        availability,
    }
}

fn open(path: &PathBuf) -> Result<Box<dyn std::io::BufRead>, HistoryError> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            std::io::stdin(),
        )));
    }
    let file = std::fs::File::open(path)?;
    Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
}

/// Runs the checkers on a history file and prints the report (or, with `--export`, writes
/// the history in another format). Exit status: 0 valid, 1 invalid, 2 unknown; an
/// unreadable or malformed history is an error (also 2).
pub async fn run(args: CheckArgs) -> Result<ExitCode, CheckError> {
    let opts = CheckOptions::from(&args);
    let path = args.history.clone();
    let format = args.format;
    if let Some(export) = args.export {
        let events = tokio::task::spawn_blocking(move || {
            open(&path)
                .and_then(|r| History::read_events(r, format))
                .map_err(|error| CheckError::History { path, error })
        })
        .await
        .map_err(|e| CheckError::Task(e.to_string()))??
        .1;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        match export {
            ExportFormat::Edn => edn::write_edn(&events, &mut out)?,
            ExportFormat::Jsonl => {
                use std::io::Write;
                out.write_all(generate::to_jsonl(&events).as_bytes())?
            }
        }
        use std::io::Write;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let html = args.html.clone();
    let (report, page) = tokio::task::spawn_blocking(move || {
        let history = open(&path)
            .and_then(|r| History::read(r, format))
            .map_err(|error| CheckError::History {
                path: path.clone(),
                error,
            })?;
        let report = check_history(&history, &opts);
        let page = html.map(|_| picture::page(&history, &report, &path.display().to_string()));
        Ok::<_, CheckError>((report, page))
    })
    .await
    .map_err(|e| CheckError::Task(e.to_string()))??;
    if let (Some(path), Some(page)) = (&args.html, page) {
        std::fs::write(path, page).map_err(|source| CheckError::Html {
            path: path.clone(),
            source,
        })?;
    }
    let text = if args.json {
        serde_json::to_string_pretty(&report).map_err(|e| CheckError::Task(e.to_string()))?
    } else {
        render::summary(&report)
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(ExitCode::from(report.exit_code()))
}
