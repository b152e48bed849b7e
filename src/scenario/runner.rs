//! The runner: preflight, Toxiproxy reset, the load and the timeline on one clock, the final
//! reads, the check, the thresholds and the reports.
//!
//! Where it sits: the top of the scenario module; `caplab scenario run` calls
//! [`run_scenario`] (tests call it too, with their own [`LabControl`]). Toxiproxy is reset
//! before the load and after it whatever happened; Ctrl-C is handled by the caller
//! (`super::run`), which drops this future (every client task is aborted with it) and resets.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::{self, Answer};
use super::generator::{Chooser, Op, Schedule, scheduled_ops};
use super::progress::Progress;
use super::recorder::{EventFields, Recorder};
use super::report::{self, Report, TargetReport};
use super::spec::{FINAL_PHASE, Scenario, Target};
use super::stats::{Done, Stats, converge_after};
use super::thresholds::{Measured, evaluate};
use super::timeline::{self, LabControl, StepFailed, StepRecord};
use super::{sampler, spec::StepAction};
use crate::check::{CheckOptions, EventType, History, OpKind, check_history};
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
        "Toxiproxy at {api} has no proxy {proxy:?} (the scenario's steps need g1, g2 and replication as in DESIGN.md)"
    )]
    MissingProxy {
        /// The API.
        api: String,
        /// The proxy.
        proxy: String,
    },
    /// Node steps without a lab.
    #[error(
        "scenario {name:?} kills or stops Redis nodes (line {line}); that needs the local lab: run it with --lab"
    )]
    NeedsLab {
        /// The scenario.
        name: String,
        /// The first node step's line.
        line: usize,
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
            StepAction::Node(..) | StepAction::Heal => None,
            other => other.subject(),
        } {
            if !proxies.contains_key(&p) {
                return Err(RunError::MissingProxy {
                    api: driver.api().to_string(),
                    proxy: p,
                });
            }
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
    if !lab.available() {
        if let Some(step) = scenario
            .steps
            .iter()
            .find(|s| matches!(s.action, StepAction::Node(..)))
        {
            return Err(RunError::NeedsLab {
                name: scenario.name.clone(),
                line: step.line,
            });
        }
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

/// Shared by the client tasks.
struct Ctx {
    scenario: Scenario,
    endpoints: Endpoints,
    http: reqwest::Client,
    recorder: Recorder,
    stats: Mutex<Stats>,
    t0: Instant,
    next_process: AtomicU64,
    phase_names: Vec<String>,
    /// Key prefix per target (index as in the scenario's targets).
    prefixes: Vec<String>,
}

impl Ctx {
    fn phase_index(&self, offset: Duration) -> usize {
        let name = self.scenario.phase_at(offset);
        self.phase_names.iter().position(|n| n == name).unwrap_or(0)
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        // A poisoned lock means a client task panicked; the counts are still usable.
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends one operation, recording its invoke and completion; returns the answer.
    async fn operate(
        &self,
        target: Target,
        process: u64,
        op: &Op,
        session: Option<&str>,
        token: Option<&str>,
        phase: usize,
    ) -> Answer {
        let (f, key, value) = match op {
            Op::Read(k) => (OpKind::Read, k.as_str(), None),
            Op::Write(k, v) => (OpKind::Write, k.as_str(), Some(v.as_str())),
        };
        let phase_name = self.phase_names.get(phase).map_or("run", String::as_str);
        let mut fields = EventFields {
            process,
            kind: EventType::Invoke,
            f,
            key,
            value,
            mode: target.as_str(),
            session,
            node: None,
            version: None,
            staleness_ms: None,
            phase: phase_name,
        };
        self.recorder.record(&fields);
        let answer = client::send(
            &self.http,
            self.endpoints.base(target),
            f,
            key,
            value,
            token,
        )
        .await;
        fields.kind = answer.event();
        fields.node = answer.node.as_deref();
        fields.version = answer.version;
        fields.staleness_ms = answer.staleness_ms;
        if f == OpKind::Read {
            fields.value = if answer.event() == EventType::Ok {
                answer.value.as_deref()
            } else {
                None
            };
        }
        self.recorder.record(&fields);
        answer
    }

    fn new_process(&self) -> u64 {
        self.next_process.fetch_add(1, Ordering::Relaxed)
    }
}

/// One client of one target: walks its schedule until the load ends.
async fn client_task(ctx: Arc<Ctx>, ti: usize, target: Target, client: usize) {
    let w = &ctx.scenario.workload;
    let end = ctx.t0 + w.duration;
    let mut chooser = Chooser::new(w, target, client, &ctx.prefixes[ti]);
    let mut process = ctx.new_process();
    let session = (client < w.session_clients).then(|| format!("{}-s{client}", target.as_str()));
    let mut token: Option<String> = None;
    for due in Schedule::new(w, client) {
        let due_at = ctx.t0 + due;
        let now = Instant::now();
        if now < due_at {
            tokio::time::sleep_until(due_at.into()).await;
        } else if now >= end {
            break; // behind at the end: the rest of the schedule is dropped, and reported
        }
        let op = chooser.next_op(process);
        let sent = ctx.t0.elapsed();
        let phase = ctx.phase_index(sent);
        ctx.stats().sent(ti, sent.saturating_sub(due));
        let answer = ctx
            .operate(
                target,
                process,
                &op,
                session.as_deref(),
                token.as_deref(),
                phase,
            )
            .await;
        let done = Done {
            f: matches!(op, Op::Write(..))
                .then_some(OpKind::Write)
                .unwrap_or(OpKind::Read),
            kind: answer.event(),
            latency: due_at.elapsed(),
            at: ctx.t0.elapsed(),
            staleness_ms: answer.staleness_ms,
            stale: answer.stale,
        };
        ctx.stats().add(ti, phase, true, &done);
        if session.is_some() && answer.token.is_some() {
            token = answer.token;
        }
        if done.kind == EventType::Info {
            process = ctx.new_process(); // after an `info` a process issues nothing more
        }
    }
}

/// Reads every key of every target once, after the load (phase `final`).
async fn final_reads(ctx: Arc<Ctx>) {
    use futures::StreamExt;
    let final_idx = ctx.phase_names.len().saturating_sub(1);
    let reads: Vec<(usize, Target, u64)> = ctx
        .scenario
        .targets
        .iter()
        .enumerate()
        .flat_map(|(ti, t)| (0..ctx.scenario.workload.keys).map(move |k| (ti, *t, k)))
        .collect();
    futures::stream::iter(reads)
        .for_each_concurrent(16, |(ti, target, k)| {
            let ctx = ctx.clone();
            async move {
                let op = Op::Read(Chooser::key_name(&ctx.prefixes[ti], k));
                let start = Instant::now();
                let process = ctx.new_process();
                let answer = ctx
                    .operate(target, process, &op, None, None, final_idx)
                    .await;
                let done = Done {
                    f: OpKind::Read,
                    kind: answer.event(),
                    latency: start.elapsed(),
                    at: ctx.t0.elapsed(),
                    staleness_ms: answer.staleness_ms,
                    stale: answer.stale,
                };
                ctx.stats().add(ti, final_idx, false, &done);
            }
        })
        .await;
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
    if w.final_reads {
        progress.message("settling before the final reads");
        tokio::time::sleep(w.settle).await;
        progress.message("final reads");
        final_reads(ctx.clone()).await;
    }
    progress.finish();
    recorder.finish().map_err(out_err(history_path.clone()))?;

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
                    check_history(
                        &history,
                        &CheckOptions {
                            mode: Some(m),
                            ..check_opts.clone()
                        },
                    )
                })
                .collect::<Vec<_>>(),
        )
    })
    .await
    .map_err(|e| RunError::Internal(format!("the check did not finish: {e}")))?
    .map_err(|e| RunError::Internal(format!("the recorded history cannot be checked: {e}")))?;

    let stats = ctx.stats().clone();
    let heal = records
        .iter()
        .filter(|r| r.heals && r.error.is_none())
        .map(|r| Duration::from_secs_f64(r.applied_ms / 1000.0))
        .max();
    let mut target_reports = Vec::new();
    let mut results = Vec::new();
    for (ti, (&target, check)) in scenario.targets.iter().zip(checks).enumerate() {
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
    let _ = driver;
    Ok(RunOutcome { report, exit_code })
}

/// A short tag unique to a run (its start, Unix ms, in base 36).
fn run_tag(mut ms: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    while ms > 0 {
        out.push(DIGITS[(ms % 36) as usize]);
        ms /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
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
