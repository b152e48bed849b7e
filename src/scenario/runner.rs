//! The runner: preflight, Toxiproxy reset, the load and the timeline on one clock, the final
//! reads, the check, the thresholds and the reports.
//!
//! Where it sits: the top of the scenario module; `caplab scenario run` calls
//! [`run_scenario`] (tests call it too, with their own [`LabControl`]). Toxiproxy is reset
//! before the load and after it whatever happened; Ctrl-C is handled by the caller
//! (`super::run`), which drops this future (every client task is aborted with it) and resets.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client;
use super::generator::Chooser;
use super::load::{Ctx, client_task, final_reads, run_tag};
use super::progress::Progress;
use super::recorder::Recorder;
use super::report::Report;
use super::sampler;
use super::settle;
use super::spec::{FINAL_PHASE, Scenario, StepAction, Target};
use super::stats::Stats;
use super::timeline::{self, LabControl, StepFailed, StepRecord};
use super::verdict::{Recorded, conclude};
use crate::faults::{FaultDriver, FaultError};

/// Where the targets and Toxiproxy are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Endpoints {
    /// CP's base URL (`http://127.0.0.1:5001`).
    pub cp: String,
    /// AP's base URL.
    pub ap: String,
    /// Toxiproxy's API, `host:port`.
    pub toxiproxy: String,
}

impl Endpoints {
    /// The base URL of `target`, without a trailing `/`.
    pub fn base(&self, target: Target) -> &str {
        match target {
            Target::Cp => self.cp.trim_end_matches('/'),
            Target::Ap => self.ap.trim_end_matches('/'),
        }
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where history.jsonl and the reports go (created if missing).
    pub out: PathBuf,
    /// Show the progress bar (it hides itself when stderr is not a terminal).
    pub progress: bool,
    /// Time limit of the linearizability search per target.
    pub check_timeout: Duration,
}

/// Why a run could not happen (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A target did not answer its health check.
    #[error("cannot reach {what} at {url}: {reason}")]
    Unreachable {
        /// `CP`, `AP`.
        what: String,
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// Toxiproxy could not be used.
    #[error("Toxiproxy: {0}")]
    Toxiproxy(#[from] FaultError),
    /// The scenario needs a proxy the Toxiproxy does not have.
    #[error(
        "Toxiproxy at {api} has no proxy {proxy:?} (the scenario's steps need the lab's proxies g1, g2, cluster_g1, cluster_g2 and sentinels as in docs/design.md; `caplab lab up` or toxiproxy/proxies.json creates them)"
    )]
    MissingProxy {
        /// The API.
        api: String,
        /// The proxy.
        proxy: String,
    },
    /// Node or failover steps without a lab: refused before anything is contacted.
    #[error(
        "scenario {name:?}, line {line}: the step \"{step}\" acts on a lab process (a node step or a failover), which caplab can do only in a lab it starts itself: run it with --lab. Against endpoints given with --cp, --ap and --toxiproxy (docker-compose, Kubernetes) caplab has no hold on the processes, so nothing was run; there, leave such steps out and act on the node yourself (on Kubernetes: deploy/kubernetes/README.md, \"Node steps\")"
    )]
    NeedsLab {
        /// The scenario.
        name: String,
        /// The first such step's line.
        line: usize,
        /// What that step does (`kill g2`).
        step: String,
    },
    /// A step failed; the fault did not happen as planned.
    #[error(transparent)]
    Step(#[from] StepFailed),
    /// Output could not be written.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP client could not be built, or the check could not run.
    #[error("{0}")]
    Internal(String),
}

/// A finished run: its report (already written) and exit status (0 all thresholds hold,
/// 1 one failed).
#[derive(Debug)]
pub struct RunOutcome {
    /// What the run measured.
    pub report: Report,
    /// 0 or 1.
    pub exit_code: u8,
}

/// Checks that every target answers `/health` and Toxiproxy answers and has the proxies the
/// steps name.
pub async fn preflight(
    scenario: &Scenario,
    endpoints: &Endpoints,
    driver: &FaultDriver,
) -> Result<(), RunError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .map_err(|e| RunError::Internal(e.to_string()))?;
    for &target in &scenario.targets {
        let url = format!("{}/health", endpoints.base(target));
        let what = target.as_str().to_uppercase();
        let unreachable = |reason: String| RunError::Unreachable {
            what: what.clone(),
            url: endpoints.base(target).to_string(),
            reason,
        };
        match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => return Err(unreachable(format!("/health answered {}", r.status()))),
            Err(e) => return Err(unreachable(e.to_string())),
        }
    }
    let proxies = driver.proxies().await?;
    for step in &scenario.steps {
        if let Some(p) = match &step.action {
            StepAction::Node(..) | StepAction::Heal | StepAction::Failover => None,
            other => other.subject(),
        } && !proxies.contains_key(&p)
        {
            return Err(RunError::MissingProxy {
                api: driver.api().to_string(),
                proxy: p,
            });
        }
    }
    Ok(())
}

/// Runs `scenario` against `endpoints`, node steps through `lab`; writes `history.jsonl`,
/// `report.json`, `report.md` and `report.html` into `opts.out`.
pub async fn run_scenario<L: LabControl>(
    scenario: &Scenario,
    endpoints: &Endpoints,
    lab: &mut L,
    opts: &RunOptions,
) -> Result<RunOutcome, RunError> {
    if !lab.available()
        && let Some(step) = scenario.steps.iter().find(|s| s.action.needs_lab())
    {
        return Err(RunError::NeedsLab {
            name: scenario.name.clone(),
            line: step.line,
            step: step.action.describe(),
        });
    }
    let driver = FaultDriver::new(&endpoints.toxiproxy)?;
    preflight(scenario, endpoints, &driver).await?;
    driver.reset().await?;
    let result = execute(scenario, endpoints, lab, opts, &driver).await;
    let reset = driver.reset().await;
    let outcome = result?;
    reset?;
    Ok(outcome)
}

async fn execute<L: LabControl>(
    scenario: &Scenario,
    endpoints: &Endpoints,
    lab: &mut L,
    opts: &RunOptions,
    driver: &FaultDriver,
) -> Result<RunOutcome, RunError> {
    let out_err = |path: PathBuf| move |source| RunError::Output { path, source };
    std::fs::create_dir_all(&opts.out).map_err(out_err(opts.out.clone()))?;
    let w = &scenario.workload;
    let history_path = opts.out.join("history.jsonl");
    let mut phase_names: Vec<String> = scenario.phases.iter().map(|p| p.name.clone()).collect();
    if w.final_reads {
        phase_names.push(FINAL_PHASE.to_string());
    }
    let http = client::http_client(w.timeout, w.clients)
        .map_err(|e| RunError::Internal(format!("cannot build the HTTP client: {e}")))?;
    let started_unix_ms = crate::time::unix_ms();
    let t0 = Instant::now();
    let recorder = Recorder::create(&history_path, t0).map_err(out_err(history_path.clone()))?;
    let ctx = Arc::new(Ctx {
        scenario: scenario.clone(),
        endpoints: endpoints.clone(),
        http: http.clone(),
        recorder: recorder.clone(),
        stats: Mutex::new(Stats::new(scenario.targets.len(), phase_names.len())),
        t0,
        next_process: AtomicU64::new(0),
        phase_names: phase_names.clone(),
        prefixes: scenario
            .targets
            .iter()
            .map(|&t| Chooser::prefix(t, &run_tag(started_unix_ms)))
            .collect(),
    });
    let mut set = tokio::task::JoinSet::new();
    for (ti, &target) in scenario.targets.iter().enumerate() {
        for c in 0..w.clients {
            set.spawn(client_task(ctx.clone(), ti, target, c));
        }
    }
    let progress = Progress::start(opts.progress, scenario);
    let targets: Vec<(Target, String)> = scenario
        .targets
        .iter()
        .map(|&t| (t, endpoints.base(t).to_string()))
        .collect();
    let mut records: Vec<StepRecord> = Vec::new();
    let samples = {
        let timeline = timeline::run(&scenario.steps, driver, lab, t0, &mut records);
        let load = async {
            let clients = async { while set.join_next().await.is_some() {} };
            let ticker = async {
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                loop {
                    tick.tick().await;
                    progress.update(t0.elapsed(), &ctx.stats(), recorder.events());
                    if t0.elapsed() >= w.duration {
                        return;
                    }
                }
            };
            let (_, samples, _) = tokio::join!(
                clients,
                sampler::run(http.clone(), targets.clone(), t0, w.duration),
                ticker
            );
            samples
        };
        tokio::pin!(timeline);
        tokio::pin!(load);
        let mut timeline_done = false;
        let samples = loop {
            tokio::select! {
                r = &mut timeline, if !timeline_done => {
                    timeline_done = true;
                    r?;
                }
                s = &mut load => break s,
            }
        };
        if !timeline_done {
            timeline.await?;
        }
        samples
    };
    let load_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let mut settled = None;
    if w.final_reads {
        progress.message("settling before the final reads");
        tokio::time::sleep(w.settle).await;
        progress.message("waiting for the pair to be whole");
        let bases: Vec<String> = targets.iter().map(|(_, b)| b.clone()).collect();
        settled = Some(settle::wait_for_pair(&http, &bases, settle::SETTLE_WAIT_MAX).await);
        progress.message("final reads");
        final_reads(ctx.clone()).await;
    }
    progress.finish();
    recorder.finish().map_err(out_err(history_path.clone()))?;

    let stats = ctx.stats().clone();
    let recorded = Recorded {
        history_path: &history_path,
        stats,
        records,
        samples,
        phase_names,
        started_unix_ms,
        t0,
        load_ms,
        settled,
    };
    conclude(scenario, endpoints, opts, recorded).await
}
