//! Scenario files, the open-loop load generator, the runner and its reports:
//! `caplab scenario run | list | validate`.
//!
//! Where it sits: outside the data path, as its client. A scenario file ([`file`],
//! [`validate`] into a [`spec::Scenario`]) describes targets, an open-loop workload, a
//! timeline of faults and thresholds. The runner ([`runner`]) loads CP and/or AP over HTTP
//! ([`client`], [`generator`]), applies the timeline through the fault driver or a
//! [`LabControl`] ([`timeline`]), records every operation ([`recorder`]) in the checker's
//! history format, samples breakers and staleness ([`sampler`]), then runs
//! [`crate::check`], evaluates [`thresholds`] and writes the reports ([`report`], [`html`]).
//!
//! | module | what |
//! |---|---|
//! | [`file`], [`validate`] (+ `validate_step.rs`, `validate_threshold.rs`), [`spec`] | the TOML format, its checks, the validated scenario |
//! | [`generator`], [`client`], [`recorder`] | schedules and choices, HTTP and outcome mapping, history.jsonl |
//! | [`stats`], [`sampler`], [`progress`] | per-second and per-phase figures, breaker/staleness/pair samples, the bar |
//! | [`settle`] | the wait before the final reads until every target sees the pair whole |
//! | [`timeline`] | steps at offsets, [`LabControl`], fault windows |
//! | [`failover`] | the switch, the rejoin, the first answers of the new primary, writes acknowledged alone |
//! | [`thresholds`], [`report`], [`html`] | verdicts, report.json / report.md / report.html |
//! | [`annotations`] | fault windows as Grafana annotations (`grafana-annotations.jsonl`) |
//! | [`runner`] (+ `load.rs`, `verdict.rs`) | preflight, reset, the load and the final reads, check, thresholds, report |
//!
//! Exit status of `run`: 0 every threshold holds, 1 one fails, 2 the run could not happen
//! (invalid file, unreachable target or Toxiproxy, failed step, Ctrl-C). `run --lab` starts a
//! private [`crate::lab::Lab`] for the run ([`LabControl`] is implemented for it) and takes it
//! down afterwards.

pub mod annotations;
pub mod client;
pub mod failover;
pub mod file;
pub mod generator;
pub mod html;
mod load;
pub mod progress;
pub mod recorder;
pub mod report;
pub mod runner;
pub mod sampler;
pub mod settle;
pub mod spec;
pub mod stats;
pub mod thresholds;
pub mod timeline;
pub mod validate;
mod validate_step;
mod validate_threshold;
mod verdict;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

pub use file::{FieldError, FileErrors};
pub use runner::{Endpoints, RunError, RunOptions, RunOutcome, run_scenario};
pub use spec::Scenario;
pub use timeline::{LabControl, NoLab};
pub use validate::{load, validate_str};

use crate::faults::FaultDriver;

/// `caplab scenario ...`
#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ScenarioCommand,
}

/// The scenario subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ScenarioCommand {
    /// Run a scenario file: exit 0 every threshold holds, 1 one fails, 2 could not run.
    Run(RunArgs),
    /// List the scenario files of a directory.
    List(ListArgs),
    /// Validate scenario files: exit 0 all valid, 1 one is not.
    Validate(ValidateArgs),
}

/// `caplab scenario run`
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The scenario file.
    pub file: PathBuf,
    /// Start a private local lab (free ports, in <out>/lab), run against it, stop it.
    #[arg(long, conflicts_with_all = ["cp", "ap", "toxiproxy"])]
    pub lab: bool,
    /// CP's base URL (default: the file's, else http://127.0.0.1:5001).
    #[arg(long)]
    pub cp: Option<String>,
    /// AP's base URL (default: the file's, else http://127.0.0.1:5002).
    #[arg(long)]
    pub ap: Option<String>,
    /// Toxiproxy's API (default: the file's, else 127.0.0.1:8474).
    #[arg(long)]
    pub toxiproxy: Option<String>,
    /// Where to write history.jsonl and the reports (default: runs/<name>-<unix time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Time limit of the linearizability search, per target.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub check_timeout: Duration,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// `caplab scenario list`
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The directory.
    #[arg(default_value = "scenarios")]
    pub dir: PathBuf,
}

/// `caplab scenario validate`
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Why a scenario command could not do its job (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file is unreadable or invalid.
    #[error("{0}")]
    File(#[from] FileErrors),
    /// The run could not happen.
    #[error("{0}")]
    Run(#[from] RunError),
    /// Interrupted by a signal; Toxiproxy was reset (or says why not).
    #[error("interrupted by {signal}; {reset}")]
    Interrupted {
        /// Which signal.
        signal: &'static str,
        /// What became of Toxiproxy.
        reset: String,
    },
    /// The local lab could not be started.
    #[error("the local lab could not start: {0}")]
    Lab(#[from] crate::lab::LabError),
    /// A directory could not be listed.
    #[error("cannot list {path}: {source}")]
    List {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Output could not be written.
    #[error("cannot write to standard output: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs a scenario subcommand.
pub async fn run(args: ScenarioArgs) -> Result<ExitCode, ScenarioError> {
    match args.command {
        ScenarioCommand::Run(a) => run_file(a).await,
        ScenarioCommand::List(a) => list(&a.dir),
        ScenarioCommand::Validate(a) => Ok(validate_files(&a.files)),
    }
}

/// Command line, then file, then docs/design.md's defaults.
pub fn resolve_endpoints(args: &RunArgs, scenario: &Scenario) -> Endpoints {
    let pick = |flag: &Option<String>, file: &Option<String>, default: &str| {
        flag.clone()
            .or_else(|| file.clone())
            .unwrap_or_else(|| default.to_string())
    };
    Endpoints {
        cp: pick(&args.cp, &scenario.endpoints.cp, "http://127.0.0.1:5001"),
        ap: pick(&args.ap, &scenario.endpoints.ap, "http://127.0.0.1:5002"),
        toxiproxy: pick(
            &args.toxiproxy,
            &scenario.endpoints.toxiproxy,
            crate::faults::DEFAULT_API_ADDR,
        ),
    }
}

async fn run_file(args: RunArgs) -> Result<ExitCode, ScenarioError> {
    let scenario = load(&args.file)?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!(
            "{}-{}",
            scenario.name,
            crate::time::unix_ms() / 1000
        ))
    });
    let opts = RunOptions {
        out: out.clone(),
        progress: !args.no_progress,
        check_timeout: args.check_timeout,
    };
    let outcome = if args.lab {
        let mut lab = start_lab(&out).await?;
        let endpoints = Endpoints {
            cp: lab.cp_url(),
            ap: lab.ap_url(),
            toxiproxy: lab.toxiproxy_url(),
        };
        let result = run_interruptible(&scenario, &endpoints, &mut lab, &opts).await;
        let down = lab.down().await;
        let outcome = result?;
        if let Err(e) = down {
            eprintln!("warning: the lab did not stop cleanly: {e}");
        }
        outcome
    } else {
        let endpoints = resolve_endpoints(&args, &scenario);
        run_interruptible(&scenario, &endpoints, &mut NoLab, &opts).await?
    };
    print_outcome(&outcome, &out)?;
    Ok(ExitCode::from(outcome.exit_code))
}

/// Starts a private lab for one run, on free ports, in `<out>/lab`. Its processes get their
/// own process group, so a Ctrl-C in the terminal reaches only the runner, which then resets
/// Toxiproxy and takes the lab down itself.
async fn start_lab(out: &Path) -> Result<crate::lab::Lab, ScenarioError> {
    let bin = std::env::current_exe().map_err(ScenarioError::Output)?;
    let ports = crate::lab::LabPorts::free().map_err(ScenarioError::Output)?;
    let mut options = crate::lab::LabOptions::new(out.join("lab"), bin).with_ports(ports);
    options.detached = true;
    eprintln!("starting a local lab in {}", options.dir.display());
    Ok(crate::lab::Lab::up(options).await?)
}

/// Runs the scenario; on SIGINT or SIGTERM drops the run (aborting its tasks), resets
/// Toxiproxy and returns [`ScenarioError::Interrupted`].
async fn run_interruptible<L: LabControl>(
    scenario: &Scenario,
    endpoints: &Endpoints,
    lab: &mut L,
    opts: &RunOptions,
) -> Result<RunOutcome, ScenarioError> {
    let driver = FaultDriver::new(&endpoints.toxiproxy).map_err(RunError::from)?;
    tokio::select! {
        r = run_scenario(scenario, endpoints, lab, opts) => Ok(r?),
        signal = interrupted() => {
            let reset = match driver.reset().await {
                Ok(()) => format!("Toxiproxy at {} was reset", driver.api()),
                Err(e) => format!("Toxiproxy could NOT be reset: {e}"),
            };
            Err(ScenarioError::Interrupted { signal, reset })
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term => "SIGTERM",
    }
}

fn print_outcome(outcome: &RunOutcome, out: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let r = &outcome.report;
    let mut o = std::io::stdout().lock();
    let held = r.thresholds.iter().filter(|t| t.passed).count();
    writeln!(
        o,
        "scenario {}: {} ({held} of {} thresholds hold)",
        r.scenario,
        if r.passed { "PASSED" } else { "FAILED" },
        r.thresholds.len()
    )?;
    for t in &r.thresholds {
        let measured = t
            .measured
            .map_or("not measured".to_string(), |v| format!("{v:.4}"));
        writeln!(
            o,
            "  {} {} = {measured}  ({})",
            if t.passed { "pass" } else { "FAIL" },
            thresholds::describe(&t.threshold),
            t.threshold.lesson
        )?;
    }
    for t in &r.targets {
        writeln!(
            o,
            "  {}: {} sent of {} scheduled ({:.1}/s), {} dropped, {} late",
            t.target.as_str(),
            t.sent,
            t.scheduled,
            t.achieved_rate,
            t.dropped,
            t.late
        )?;
    }
    writeln!(o, "reports: {}", out.join("report.md").display())?;
    o.flush()
}

fn list(dir: &Path) -> Result<ExitCode, ScenarioError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ScenarioError::List {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    for f in files {
        match load(&f) {
            Ok(s) => {
                let first = s.description.lines().next().unwrap_or("").trim();
                let targets: Vec<&str> = s.targets.iter().map(|t| t.as_str()).collect();
                writeln!(
                    o,
                    "{:<24} {:>5.0}s  {:<6} {}",
                    s.name,
                    s.workload.duration.as_secs_f64(),
                    targets.join("+"),
                    first
                )?;
            }
            Err(e) => writeln!(
                o,
                "{:<24} INVALID ({})",
                f.display(),
                e.problems().len().max(1)
            )?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn validate_files(files: &[PathBuf]) -> ExitCode {
    let mut bad = false;
    for f in files {
        match load(f) {
            Ok(s) => println!(
                "{}: ok ({}, {} steps, {} thresholds)",
                f.display(),
                s.name,
                s.steps.len(),
                s.thresholds.len()
            ),
            Err(e) => {
                bad = true;
                eprintln!("{e}");
            }
        }
    }
    ExitCode::from(u8::from(bad))
}
