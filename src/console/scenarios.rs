//! Scenarios from the page: the shipped scenario files (what `caplab scenario list` reads),
//! one run at a time against this lab, its progress, its verdict with each threshold's
//! lesson, and its `report.html`.
//!
//! Outside the data path, as its client: the runner ([`crate::scenario::run_scenario`]) runs
//! in this process with the lab's endpoints, its node and failover steps going through the
//! console's own controls ([`super::control::ConsoleLab`]), every step of it logged in the
//! control log with its time, as the page's own controls are, and writes its
//! reports under `<lab dir>/console-runs/<name>-<unix time>/`, which the console serves.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::Shared;
use super::control::{ConsoleLab, log};
use super::snapshot::{ScenarioView, ThresholdView};
use crate::scenario::thresholds::describe;
use crate::scenario::{Endpoints, RunOptions, run_scenario};

/// The reports a run writes that the console serves, with their content types.
pub const REPORT_FILES: [(&str, &str); 3] = [
    ("report.html", "text/html; charset=utf-8"),
    ("report.md", "text/markdown; charset=utf-8"),
    ("report.json", "application/json"),
];

/// One shipped scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioInfo {
    /// Its file name (`replication-partition.toml`).
    pub file: String,
    /// Its name, or `null` when the file is invalid.
    pub name: Option<String>,
    /// How long its load lasts, s.
    pub duration_s: Option<f64>,
    /// `cp+ap`.
    pub targets: Option<String>,
    /// The first line of its description.
    pub summary: Option<String>,
    /// Why it cannot be run, when it is invalid.
    pub error: Option<String>,
}

/// The run started from the page (one at a time) and the last one's outcome.
#[derive(Debug, Default)]
pub struct ScenarioState {
    view: ScenarioView,
}

/// The scenario files of `dir`, by file name.
pub fn list(dir: &Path) -> Result<Vec<ScenarioInfo>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files
        .iter()
        .map(|path| {
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match crate::scenario::load(path) {
                Ok(s) => ScenarioInfo {
                    file,
                    targets: Some(
                        s.targets
                            .iter()
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join("+"),
                    ),
                    duration_s: Some(s.workload.duration.as_secs_f64()),
                    summary: s.description.lines().next().map(|l| l.trim().to_string()),
                    name: Some(s.name),
                    error: None,
                },
                Err(e) => ScenarioInfo {
                    file,
                    name: None,
                    duration_s: None,
                    targets: None,
                    summary: None,
                    error: Some(e.to_string()),
                },
            }
        })
        .collect())
}

fn state(shared: &Shared) -> std::sync::MutexGuard<'_, ScenarioState> {
    match shared.scenario.lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The name of the scenario running now, if one is.
pub fn running(shared: &Shared) -> Option<String> {
    let s = state(shared);
    s.view
        .running
        .then(|| s.view.name.clone().unwrap_or_default())
}

/// The run as the page shows it, its stage brought up to date.
pub fn view(shared: &Shared) -> ScenarioView {
    let mut view = state(shared).view.clone();
    if view.running {
        let elapsed = view
            .started_ms
            .map_or(0, |s| crate::time::unix_ms().saturating_sub(s));
        let planned = view.planned_ms.unwrap_or(0);
        view.stage = Some(
            if elapsed < planned {
                "load"
            } else {
                "checking"
            }
            .to_string(),
        );
    }
    view
}

/// A run's directory name: the scenario's name, safe for a path, and the Unix time.
fn run_id(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    format!("{safe}-{}", crate::time::unix_ms())
}

/// Whether `id` can name a run directory (no path separators, no dot files).
pub fn valid_run_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Starts the scenario in `file` (a file name listed by [`list`]) against the lab.
pub fn start(shared: &Arc<Shared>, file: &str) -> Result<ScenarioView, String> {
    let listed = list(&shared.scenarios_dir)?;
    if !listed.iter().any(|s| s.file == file) {
        return Err(format!(
            "no scenario file `{file}` in {}",
            shared.scenarios_dir.display()
        ));
    }
    let scenario =
        crate::scenario::load(&shared.scenarios_dir.join(file)).map_err(|e| e.to_string())?;
    let record = shared.record_now();
    let id = run_id(&scenario.name);
    let opts = RunOptions {
        out: shared.runs_dir.join(&id),
        progress: false,
        check_timeout: Duration::from_secs(30),
    };
    let endpoints = Endpoints {
        cp: record.cp_url(),
        ap: record.ap_url(),
        toxiproxy: record.toxiproxy_url.clone(),
    };
    let planned = scenario.workload.duration
        + if scenario.workload.final_reads {
            scenario.workload.settle
        } else {
            Duration::ZERO
        };
    let view = {
        let mut s = state(shared);
        if s.view.running {
            return Err(format!(
                "scenario {} is still running",
                s.view.name.clone().unwrap_or_default()
            ));
        }
        s.view = ScenarioView {
            running: true,
            name: Some(scenario.name.clone()),
            started_ms: Some(crate::time::unix_ms()),
            planned_ms: Some(u64::try_from(planned.as_millis()).unwrap_or(u64::MAX)),
            stage: Some("load".into()),
            ..ScenarioView::default()
        };
        s.view.clone()
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut lab = ConsoleLab(shared.clone());
        let result = run_scenario(&scenario, &endpoints, &mut lab, &opts).await;
        let report_path = opts.out.join("report.html");
        let report = report_path
            .is_file()
            .then(|| format!("/runs/{id}/report.html"));
        let (ok, detail) = {
            let mut s = state(&shared);
            s.view.running = false;
            s.view.report = report;
            match &result {
                Ok(outcome) => {
                    let r = &outcome.report;
                    s.view.stage = Some(if r.passed { "passed" } else { "failed" }.into());
                    s.view.thresholds = r
                        .thresholds
                        .iter()
                        .map(|t| ThresholdView {
                            threshold: describe(&t.threshold),
                            measured: t.measured,
                            passed: t.passed,
                            lesson: t.threshold.lesson.clone(),
                        })
                        .collect();
                    let held = r.thresholds.iter().filter(|t| t.passed).count();
                    (
                        true,
                        format!(
                            "{} ({held} of {} thresholds hold); reports in {}",
                            if r.passed { "PASSED" } else { "FAILED" },
                            r.thresholds.len(),
                            opts.out.display()
                        ),
                    )
                }
                Err(e) => {
                    s.view.stage = Some("error".into());
                    s.view.error = Some(e.to_string());
                    (false, format!("could not run: {e}"))
                }
            }
        };
        log(
            &shared,
            format!("scenario {}", scenario.name),
            ok,
            detail,
            started,
        );
    });
    Ok(view)
}

/// The path of a report file of a run, if `id` and `file` name one.
pub fn report_file(shared: &Shared, id: &str, file: &str) -> Option<(PathBuf, &'static str)> {
    if !valid_run_id(id) {
        return None;
    }
    let (_, content_type) = REPORT_FILES.iter().find(|(name, _)| *name == file)?;
    let path = shared.runs_dir.join(id).join(file);
    path.is_file().then_some((path, *content_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_cannot_leave_the_runs_directory() {
        assert!(valid_run_id("replication-partition-1700000000000"));
        for bad in ["", "..", ".hidden", "a/b", "a\\b", "x y"] {
            assert!(!valid_run_id(bad), "{bad}");
        }
        let id = run_id("odd name/../x");
        assert!(valid_run_id(&id), "{id}");
        assert!(id.starts_with("odd-name----x-"), "{id}");
    }

    #[test]
    fn the_shipped_scenarios_are_listed_with_their_names() -> Result<(), String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let listed = list(&dir)?;
        let rp = listed
            .iter()
            .find(|s| s.file == "replication-partition.toml")
            .ok_or("replication-partition.toml is not listed")?;
        assert_eq!(rp.name.as_deref(), Some("replication-partition"));
        assert!(rp.error.is_none());
        assert!(rp.duration_s.unwrap_or(0.0) > 0.0);
        assert!(list(&dir.join("missing")).is_err());
        Ok(())
    }
}
