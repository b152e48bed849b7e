//! The verdict: the recorded history checked per target, the thresholds evaluated, the
//! report assembled and written.
//!
//! Where it sits: the last part of [`super::runner`], after the load and the final reads.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::generator::scheduled_ops;
use super::report::{self, Report, TargetReport};
use super::runner::{Endpoints, RunError, RunOptions, RunOutcome};
use super::sampler::{self, Sample};
use super::spec::{FINAL_PHASE, Scenario};
use super::stats::{Stats, converge_after};
use super::thresholds::{Measured, evaluate};
use super::timeline::{self, StepRecord};
use crate::check::explain::view;
use crate::check::{CheckOptions, History, check_history};

/// What the load left for the verdict.
pub(super) struct Recorded<'a> {
    pub(super) history_path: &'a Path,
    pub(super) stats: Stats,
    pub(super) records: Vec<StepRecord>,
    pub(super) samples: Vec<Vec<Sample>>,
    pub(super) phase_names: Vec<String>,
    pub(super) started_unix_ms: u64,
    pub(super) t0: Instant,
    pub(super) load_ms: f64,
}

/// Checks, evaluates, writes the reports.
pub(super) async fn conclude(
    scenario: &Scenario,
    endpoints: &Endpoints,
    opts: &RunOptions,
    recorded: Recorded<'_>,
) -> Result<RunOutcome, RunError> {
    let Recorded {
        history_path,
        stats,
        records,
        samples,
        phase_names,
        started_unix_ms,
        t0,
        load_ms,
    } = recorded;
    let w = &scenario.workload;
    let history_path: PathBuf = history_path.to_path_buf();
    // The check, one target at a time (each target has its own keys).
    let check_opts = CheckOptions {
        timeout: Some(opts.check_timeout),
        final_phase: w.final_reads.then(|| FINAL_PHASE.to_string()),
        ..CheckOptions::default()
    };
    let path = history_path.clone();
    let modes: Vec<String> = scenario
        .targets
        .iter()
        .map(|t| t.as_str().to_string())
        .collect();
    let checks = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
        let history = History::parse(std::io::BufReader::new(file)).map_err(|e| e.to_string())?;
        Ok::<_, String>(
            modes
                .into_iter()
                .map(|m| {
                    let check = check_history(
                        &history,
                        &CheckOptions {
                            mode: Some(m),
                            ..check_opts.clone()
                        },
                    );
                    let failure = view(&history, &check);
                    (check, failure)
                })
                .collect::<Vec<_>>(),
        )
    })
    .await
    .map_err(|e| RunError::Internal(format!("the check did not finish: {e}")))?
    .map_err(|e| RunError::Internal(format!("the recorded history cannot be checked: {e}")))?;

    let heal = records
        .iter()
        .filter(|r| r.heals && r.error.is_none())
        .map(|r| Duration::from_secs_f64(r.applied_ms / 1000.0))
        .max();
    let mut target_reports = Vec::new();
    let mut results = Vec::new();
    for (ti, (&target, (check, failure))) in scenario.targets.iter().zip(checks).enumerate() {
        let s = &stats.targets[ti];
        // Converged when operations are ok and fresh again and the replica has caught up.
        let target_samples = samples.get(ti).map_or(&[][..], Vec::as_slice);
        let converge_ms = heal.and_then(|h| {
            let ops = converge_after(h, s)?.as_secs_f64() * 1000.0;
            let replica = sampler::replica_caught_up(h.as_millis() as u64, target_samples)?;
            Some(ops.max(replica as f64))
        });
        let measured = Measured {
            phase_names: &phase_names,
            phases: &s.phases,
            whole: &s.whole,
            check: &check,
            converge_ms,
            final_phase: w.final_reads.then_some(FINAL_PHASE),
        };
        results.extend(
            scenario
                .thresholds
                .iter()
                .filter(|t| t.target == target)
                .map(|t| evaluate(t, &measured)),
        );
        let scheduled = scheduled_ops(w);
        let load_s = w.duration.as_secs_f64();
        target_reports.push(TargetReport {
            target,
            url: endpoints.base(target).to_string(),
            scheduled,
            sent: s.sent,
            dropped: scheduled.saturating_sub(s.sent),
            late: s.late,
            max_late_ms: s.max_late.as_secs_f64() * 1000.0,
            scheduled_rate: scheduled as f64 / load_s,
            achieved_rate: s.sent as f64 / load_s,
            whole: s.whole.summary("run", load_s),
            phases: phase_names
                .iter()
                .zip(&s.phases)
                .map(|(n, g)| {
                    let secs = phase_seconds(scenario, n, w.duration);
                    g.summary(n, secs)
                })
                .collect(),
            converge_ms,
            series: s
                .seconds
                .iter()
                .enumerate()
                .map(|(i, g)| g.summary(&i.to_string(), 1.0))
                .collect(),
            samples: samples.get(ti).cloned().unwrap_or_default(),
            check,
            failure,
        });
    }
    let passed = results.iter().all(|r| r.passed);
    let exit_code = u8::from(!passed);
    let end_ms = w.duration.as_secs_f64() * 1000.0;
    let report = Report {
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        started_unix_ms,
        load_ms,
        elapsed_ms: t0.elapsed().as_secs_f64() * 1000.0,
        endpoints: endpoints.clone(),
        workload: w.clone(),
        phases: scenario.phases.clone(),
        fault_windows: timeline::fault_windows(&records, end_ms),
        steps: records,
        targets: target_reports,
        thresholds: results,
        passed,
        exit_code,
    };
    report::write_all(&report, &opts.out)
        .map_err(|(path, source)| RunError::Output { path, source })?;
    Ok(RunOutcome { report, exit_code })
}

/// How long phase `name` lasted within the load (for its throughput).
fn phase_seconds(scenario: &Scenario, name: &str, duration: Duration) -> f64 {
    let Some(i) = scenario.phases.iter().position(|p| p.name == name) else {
        return 0.0;
    };
    let start = scenario.phases[i].at;
    let end = scenario.phases.get(i + 1).map_or(duration, |p| p.at);
    end.saturating_sub(start).as_secs_f64()
}
