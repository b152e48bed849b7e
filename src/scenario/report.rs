//! The run's report: `report.json` (everything measured), `report.md` (a summary for people:
//! verdicts with their lessons, step timing, rates, per-phase figures, the checker's
//! findings) and `report.html` ([`super::html`]).
//!
//! Where it sits: the last thing the runner does. Nothing here measures; it lays out what the
//! runner, the stats, the sampler and the checker found, including what went wrong with the
//! run itself (late steps, late and dropped operations).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::runner::Endpoints;
use super::sampler::Sample;
use super::spec::{Phase, Target, Workload};
use super::stats::GroupSummary;
use super::thresholds::{ThresholdResult, describe};
use super::timeline::{FaultWindow, StepRecord};
use crate::check::CheckReport;
use crate::check::explain::FailureView;
use crate::check::render::by_age;

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Its description.
    pub description: String,
    /// Wall-clock start, Unix ms.
    pub started_unix_ms: u64,
    /// How long the load really ran, ms.
    pub load_ms: f64,
    /// Load, final reads and check, ms.
    pub elapsed_ms: f64,
    /// Where it ran.
    pub endpoints: Endpoints,
    /// The workload asked for.
    pub workload: Workload,
    /// The phases.
    pub phases: Vec<Phase>,
    /// Each step, planned and applied.
    pub steps: Vec<StepRecord>,
    /// Fault windows (shaded in the plots).
    pub fault_windows: Vec<FaultWindow>,
    /// Per target.
    pub targets: Vec<TargetReport>,
    /// Every threshold's verdict.
    pub thresholds: Vec<ThresholdResult>,
    /// Whether every threshold holds.
    pub passed: bool,
    /// 0 or 1.
    pub exit_code: u8,
}

/// What one target did.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// Which.
    pub target: Target,
    /// Its URL.
    pub url: String,
    /// Operations the schedule held.
    pub scheduled: u64,
    /// Operations sent.
    pub sent: u64,
    /// Scheduled but never sent (the generator was still behind when the load ended).
    pub dropped: u64,
    /// Sent more than 10 ms after their due time.
    pub late: u64,
    /// Largest send delay, ms.
    pub max_late_ms: f64,
    /// Scheduled ops per second.
    pub scheduled_rate: f64,
    /// Sent ops per second.
    pub achieved_rate: f64,
    /// The whole load.
    pub whole: GroupSummary,
    /// Per phase (the final reads last).
    pub phases: Vec<GroupSummary>,
    /// Time to converge after the last heal, ms.
    pub converge_ms: Option<f64>,
    /// Per second of the load.
    pub series: Vec<GroupSummary>,
    /// Breaker and staleness samples.
    pub samples: Vec<Sample>,
    /// The checker's report on this target's history.
    pub check: CheckReport,
    /// When the history is not linearizable, the failing key drawn in `report.html` (the
    /// JSON has the failure itself, in `check`).
    #[serde(skip)]
    pub failure: Option<FailureView>,
}

/// The fault windows as Grafana annotation bodies ([`super::annotations`]).
pub const ANNOTATIONS_FILE: &str = "grafana-annotations.jsonl";

/// Writes report.json, report.md, report.html and the Grafana annotations into `dir`.
pub fn write_all(report: &Report, dir: &Path) -> Result<(), (PathBuf, std::io::Error)> {
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| (path, e))
    };
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| (dir.join("report.json"), std::io::Error::other(e)))?;
    write("report.json", json)?;
    write("report.md", markdown(report))?;
    write("report.html", super::html::render(report))?;
    let annotations = super::annotations::annotations(
        &report.scenario,
        report.started_unix_ms,
        &report.fault_windows,
    );
    let jsonl = super::annotations::to_jsonl(&annotations)
        .map_err(|e| (dir.join(ANNOTATIONS_FILE), std::io::Error::other(e)))?;
    write(ANNOTATIONS_FILE, jsonl)?;
    Ok(())
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.digits$}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{:.2}%", v * 100.0))
}

/// The Markdown summary.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let verdict = if r.passed { "PASSED" } else { "FAILED" };
    let _ = writeln!(s, "# Scenario `{}`: {verdict}\n", r.scenario);
    if !r.description.is_empty() {
        let _ = writeln!(s, "{}\n", r.description.trim());
    }
    let w = &r.workload;
    let _ = writeln!(
        s,
        "Load: {} ops/s per target for {:.1} s ({} clients, {} with sessions, {:.0}% reads, {} keys, seed {}); load ran {:.0} ms, total {:.0} ms.\n",
        w.rate,
        w.duration.as_secs_f64(),
        w.clients,
        w.session_clients,
        w.read_ratio * 100.0,
        w.keys,
        w.seed,
        r.load_ms,
        r.elapsed_ms
    );
    let _ = writeln!(s, "## Thresholds\n");
    let _ = writeln!(s, "| | threshold | measured | lesson |\n|---|---|---|---|");
    for t in &r.thresholds {
        let mark = if t.passed { "pass" } else { "**FAIL**" };
        let measured = match (t.measured, &t.note) {
            (Some(v), _) => format!("{v:.4}"),
            (None, Some(n)) => format!("not measured: {n}"),
            (None, None) => "not measured".into(),
        };
        let _ = writeln!(
            s,
            "| {mark} | `{}` | {measured} | {} |",
            describe(&t.threshold),
            t.threshold.lesson
        );
    }
    let _ = writeln!(s, "\n## Timeline\n");
    if r.steps.is_empty() {
        let _ = writeln!(s, "No steps.");
    } else {
        let _ = writeln!(
            s,
            "| line | step | planned ms | applied ms | late ms | result |\n|---|---|---|---|---|---|"
        );
        for st in &r.steps {
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.1} | {:.1} | {} |",
                st.line,
                st.description,
                st.planned_ms,
                st.applied_ms,
                st.applied_ms - st.planned_ms,
                st.error.as_deref().unwrap_or("ok")
            );
        }
    }
    let _ = writeln!(s, "\n## Load generator\n");
    let _ = writeln!(
        s,
        "| target | scheduled | sent | dropped | late (>10 ms) | max late ms | scheduled/s | achieved/s |\n|---|---|---|---|---|---|---|---|"
    );
    for t in &r.targets {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
            t.target.as_str(),
            t.scheduled,
            t.sent,
            t.dropped,
            t.late,
            t.max_late_ms,
            t.scheduled_rate,
            t.achieved_rate
        );
    }
    let healed = r.steps.iter().any(|st| st.heals && st.error.is_none());
    for t in &r.targets {
        let _ = writeln!(s, "\n## {} ({})\n", t.target.as_str().to_uppercase(), t.url);
        let _ = writeln!(
            s,
            "| phase | ops | ok | fail | info | availability | reads ok | writes ok | p50 ms | p99 ms | max ms | max staleness ms | answered stale |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for g in t.phases.iter().chain(std::iter::once(&t.whole)) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                if std::ptr::eq(g, &t.whole) {
                    "**whole load**"
                } else {
                    &g.name
                },
                g.total,
                g.ok,
                g.fail,
                g.info,
                pct(g.availability),
                pct(g.read_availability),
                pct(g.write_availability),
                opt(g.latency_ms.p50, 1),
                opt(g.latency_ms.p99, 1),
                opt(g.latency_ms.max, 1),
                g.max_staleness_ms.map_or("-".into(), |v| v.to_string()),
                g.flagged_stale
            );
        }
        let c = &t.check;
        let _ = writeln!(
            s,
            "\nChecker: linearizable **{}**{}; stale reads {} of {} ({}; how stale, how often: {}); lost acknowledged writes {}; session violations {} read-your-writes, {} monotonic; time to converge after the last heal: {}.",
            c.linearizability.valid.word(),
            if t.failure.is_some() {
                " (`report.html` draws why)"
            } else {
                ""
            },
            c.stale_reads.count,
            c.stale_reads.reads,
            pct(Some(c.stale_reads.rate)),
            by_age(&c.stale_reads.by_age),
            c.lost_writes.writes_lost,
            c.sessions.read_your_writes,
            c.sessions.monotonic_reads,
            match (t.converge_ms, healed) {
                (_, false) => "n/a (no healing step)".to_string(),
                (None, true) => "never (still failing or stale at the end of the load)".into(),
                (Some(v), true) => format!("{v:.0} ms"),
            }
        );
    }
    let _ = writeln!(
        s,
        "\nFiles: `history.jsonl` (check it again with `caplab check history.jsonl --mode cp`), `report.json`, `report.html`, `grafana-annotations.jsonl` (the fault windows for Grafana)."
    );
    s
}
