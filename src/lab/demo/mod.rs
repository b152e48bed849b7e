//! `caplab demo`: lab up on free ports, a short partition experiment against CP and AP at
//! once, a side-by-side table, lab down.
//!
//! The experiment: a small concurrent load on both personalities ([`load`]) while replication
//! is cut and healed without a failover (both cluster links down, the replica's first, so the
//! sentinels see the primary down but cannot reach the replica to promote it; healed primary's
//! link first), then the apps' link to `g2`, then a split brain (`cluster_g1` down while the
//! apps still reach g1: the sentinels promote g2) and its heal, which lasts until both apps
//! see the old primary rejoined as a replica. Each phase lasts `--phase` (the split brain at
//! least 4 s and until both apps follow the promotion). Every figure in the table ([`table`]) is measured
//! in this run: availability, stale reads and their age from what the load saw,
//! `staleness_ms` from the answers, p99 latency, breaker transitions from each app's
//! `/metrics`, and the acknowledged writes gone from the final state, read back through CP
//! once the pair is whole.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::command::{Interrupt, current_bin, table as lab_table};
use super::error::LabError;
use super::health::probe_http;
use super::options::{LabOptions, LabPorts};
use super::record::LabRecord;
use super::topology::Lab;
use crate::faults::{CLUSTER_G1, CLUSTER_G2, FaultDriver, FaultError, G2};
use crate::metrics::BREAKER_TRANSITIONS;
use crate::scenario::settle;

pub mod load;
pub mod table;

use load::{LoadShape, Recorder, Target, Written, lost_writes, spawn_load};
use table::{Phase, render, summarize};

/// `caplab demo`
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where the demo's lab keeps its data and logs (its Redis data is wiped at start).
    #[arg(long, default_value = ".caplab-demo")]
    pub dir: PathBuf,
    /// Use this Toxiproxy (`http://host:port`, on this machine) instead of `caplab proxy`.
    #[arg(long, value_name = "URL")]
    pub toxiproxy_url: Option<String>,
    /// How long each phase lasts (before, cut, healed, cut, healed, split brain, split healed;
    /// the split brain at least 4 s; its heal also waits for the old primary to rejoin).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub phase: Duration,
    /// Client loops per personality.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// After the table, keep the lab up and serve the lab console on ADDR (default
    /// 127.0.0.1:8080) until Ctrl-C, then take the lab down.
    #[arg(long, value_name = "ADDR", num_args = 0..=1,
          default_missing_value = crate::console::DEFAULT_ADDR)]
    pub console: Option<std::net::SocketAddr>,
    /// The scenario files the console offers to run.
    #[arg(long, default_value = "scenarios")]
    pub console_scenarios: PathBuf,
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The lab failed.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// No free ports could be found.
    #[error("cannot find free ports for the demo's lab: {0}")]
    Ports(std::io::Error),
    /// A fault could not be applied or undone.
    #[error("the proxy: {0}")]
    Faults(#[from] FaultError),
    /// The console could not be served.
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    /// An app's `/metrics` could not be read.
    #[error("cannot read {url}: {reason}")]
    Metrics {
        /// Where.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// Runs the demo.
pub async fn demo(args: DemoArgs) -> Result<ExitCode, DemoError> {
    let mut interrupt = Interrupt::listen();
    let console_addr = match args.console {
        Some(addr) => Some(super::command::console_address(addr)?),
        None => None,
    };
    wipe_old_data(&args.dir)?;
    let mut options = LabOptions::new(&args.dir, current_bin()?)
        .with_ports(LabPorts::free().map_err(DemoError::Ports)?)
        .with_quick_apps();
    options.toxiproxy_url = args.toxiproxy_url.clone();
    options
        .app_args
        .extend(["--max-staleness-ms", "1000"].map(String::from));
    println!(
        "caplab demo: starting the lab (two redis-server, three sentinels, the proxy, app_cp, app_ap)..."
    );
    let lab = tokio::select! {
        lab = Lab::up(options) => lab?,
        () = interrupt.recv() => {
            eprintln!("interrupted: nothing is left running");
            return Ok(ExitCode::from(130));
        }
    };
    print!("\n{}", lab_table(&lab.record(), None));
    let started = Instant::now();
    let outcome = tokio::select! {
        outcome = experiment(&lab, &args) => Some(outcome),
        () = interrupt.recv() => None,
    };
    let reset = lab.faults().reset().await;
    if let (Some(addr), Some(Ok((ops, phases, lost)))) = (console_addr, &outcome) {
        reset?;
        print_table(ops, phases, lost, started, &args, false);
        return keep_up_with_console(lab, addr, &args, interrupt).await;
    }
    let down = lab.down().await;
    let Some(outcome) = outcome else {
        eprintln!("interrupted: the lab is down again");
        down?;
        return Ok(ExitCode::from(130));
    };
    let (ops, phases, lost) = outcome?;
    reset?;
    down?;
    print_table(&ops, &phases, &lost, started, &args, true);
    Ok(ExitCode::SUCCESS)
}

/// Prints the side-by-side table; `down` says whether the lab is down again.
fn print_table(
    ops: &[load::Op],
    phases: &[Phase],
    lost: &[Written],
    started: Instant,
    args: &DemoArgs,
    down: bool,
) {
    let lost: Vec<&Written> = lost.iter().collect();
    let rows = summarize(ops, phases, &lost);
    println!(
        "\nCP and AP side by side ({} operations in {:.1} s, {} client loops each; {})\n",
        ops.len(),
        started.elapsed().as_secs_f64(),
        args.workers,
        if down {
            "the lab is down again"
        } else {
            "the lab stays up"
        }
    );
    print!("{}", render(&rows));
    println!("{LEGEND}");
}

/// `--console`: serves the console for the demo's lab until Ctrl-C or SIGTERM, then stops
/// the console, the lab, and any node the console restarted (recorded in `lab.json`).
async fn keep_up_with_console(
    lab: Lab,
    addr: std::net::SocketAddr,
    args: &DemoArgs,
    mut interrupt: Interrupt,
) -> Result<ExitCode, DemoError> {
    let scenarios =
        std::path::absolute(&args.console_scenarios).unwrap_or(args.console_scenarios.clone());
    let console = match crate::console::start(&lab.record().dir, addr, scenarios).await {
        Ok(console) => console,
        Err(e) => {
            lab.down().await?;
            return Err(e.into());
        }
    };
    println!(
        "\nThe lab console: {} (loopback only unless --console says otherwise). The lab stays up; Ctrl-C stops it.",
        console.url()
    );
    interrupt.recv().await;
    console.stop().await;
    let dir = lab.record().dir;
    // Read before `down`, which removes it: a node the console restarted is a process the
    // lab does not hold.
    let recorded = LabRecord::read(&dir)?;
    let down = lab.down().await;
    if let Some(record) = recorded {
        for process in record.running() {
            process.stop(Duration::from_secs(5)).await?;
        }
    }
    down?;
    println!("the console and the lab are down");
    Ok(ExitCode::SUCCESS)
}

const LEGEND: &str = "
availability: operations answered 200 (a read's 404 and AP's 202 queued write count too).
stale reads: reads that returned an older version than a write acknowledged before the read
  began / successful reads; max stale age: how long before the read that newer write was
  acknowledged. max staleness_ms: the largest staleness the answers themselves reported.
replication cut: both cluster links down (cluster_g2 first), so the sentinels cannot reach g2
  to promote it and g1 stays primary. CP refuses writes it cannot get confirmed by g2; AP
  keeps answering and serves stale reads from g2 until its staleness passes MAX_STALENESS_MS
  (1000 ms here).
split brain: cluster_g1 down while the apps still reach g1. The sentinels promote g2 (about
  2 s), the apps follow; until then AP keeps writing to g1. split healed: cluster_g1 up; the
  phase lasts until both apps see g1 rejoined as g2's replica (Sentinel waits about 10 s
  before it reconfigures the old primary), then --phase more. CP refuses from the cut until
  the rejoin: no second copy can be made.
lost acknowledged writes: writes the phase sent that were answered 200 and are gone from the
  final state, read back through CP once the pair is whole (each phase writes its own keys,
  the split brain new ones every 500 ms):
  the final value is another write's, one that had been acknowledged before this one was sent,
  or the key is absent.";

/// A previous demo's Redis data would mix old keys into this run: remove it, unless a lab
/// recorded in `dir` still runs (then `Lab::up` says so).
fn wipe_old_data(dir: &std::path::Path) -> Result<(), LabError> {
    if let Some(record) = LabRecord::read(dir)?
        && !record.running().is_empty()
    {
        return Ok(());
    }
    for node in ["g1", "g2"] {
        let path = dir.join(node);
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| LabError::File {
                path,
                reason: e.to_string(),
            })?;
        }
    }
    Ok(())
}

/// The phases: a name, and which proxies to enable or disable, in order, at its start. A
/// replication cut without a failover takes both cluster links, the replica's first (a
/// sentinel that lost the primary while it still reached the replica would promote it), and
/// heals the primary's first.
const STEPS: [(&str, &[(&str, bool)]); 7] = [
    ("before", &[]),
    (
        "replication cut",
        &[(CLUSTER_G2, false), (CLUSTER_G1, false)],
    ),
    (
        "replication healed",
        &[(CLUSTER_G1, true), (CLUSTER_G2, true)],
    ),
    ("g2 cut", &[(G2, false)]),
    ("g2 healed", &[(G2, true)]),
    ("split brain", &[(CLUSTER_G1, false)]),
    ("split healed", &[(CLUSTER_G1, true)]),
];

/// The split brain lasts at least this: the sentinels promote g2 about 2 s after the cut.
const SPLIT_AT_LEAST: Duration = Duration::from_secs(4);

/// The longest the split brain waits for the apps to follow a promotion. A sentinel that
/// aborted a failover (the replication cut: it could not reach the replica) tries again only
/// after twice the failover timeout, 10 s, so with short phases the promotion comes late.
const PROMOTION_WAIT_MAX: Duration = Duration::from_secs(25);

/// Whether both apps believe g2 is the primary.
async fn both_follow_g2(apps: &[String; 2]) -> bool {
    let http = probe_http();
    for app in apps {
        match crate::scenario::sampler::pair_view(&http, app).await {
            Some(view) if view.primary == "g2" => {}
            _ => return false,
        }
    }
    true
}

/// How often the split brain moves to new keys.
const KEY_SLICE: Duration = Duration::from_millis(500);

/// What the experiment leaves for the table: every operation, the phases, the lost writes.
type Outcome = (Vec<load::Op>, Vec<Phase>, Vec<Written>);

async fn experiment(lab: &Lab, args: &DemoArgs) -> Result<Outcome, DemoError> {
    let recorder = Recorder::default();
    let stop = Arc::new(AtomicBool::new(false));
    let phase = Arc::new(AtomicUsize::new(0));
    let shape = LoadShape {
        workers: args.workers.max(1),
        keys: 8,
        pause: Duration::from_millis(20),
    };
    let mut tasks = spawn_load(
        Target::Cp,
        lab.cp_url(),
        &shape,
        recorder.clone(),
        stop.clone(),
        phase.clone(),
    );
    tasks.extend(spawn_load(
        Target::Ap,
        lab.ap_url(),
        &shape,
        recorder.clone(),
        stop.clone(),
        phase.clone(),
    ));
    let phases = run_phases(
        lab.faults(),
        [lab.cp_url(), lab.ap_url()],
        args.phase,
        &phase,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let writes = recorder.writes();
    let finals = read_back(&lab.cp_url(), &writes).await;
    let lost = lost_writes(&writes, |target, key| {
        finals.get(&(target.name(), key.to_string())).cloned()
    })
    .into_iter()
    .cloned()
    .collect();
    Ok((recorder.ops(), phases?, lost))
}

/// Reads every key an acknowledged write went to through CP (a fenced read of the primary):
/// `Some(value)` or `None` when absent, per (mode, key); a key CP would not answer within a
/// few tries is left out (its writes are not judged).
async fn read_back(
    cp: &str,
    writes: &[Written],
) -> std::collections::HashMap<(&'static str, String), Option<String>> {
    let keys: std::collections::BTreeSet<(&'static str, String)> = writes
        .iter()
        .filter(|w| w.acked.is_some())
        .map(|w| (w.target.name(), w.key.clone()))
        .collect();
    let mut finals = std::collections::HashMap::new();
    for (mode, key) in keys {
        for _ in 0..10 {
            let answer = probe_http().get(format!("{cp}/read/{key}")).send().await;
            let Ok(answer) = answer else { continue };
            let status = answer.status().as_u16();
            let body: serde_json::Value = answer.json().await.unwrap_or_default();
            match status {
                200 => {
                    let value = body["value"].as_str().map(str::to_string);
                    finals.insert((mode, key.clone()), value);
                    break;
                }
                404 => {
                    finals.insert((mode, key.clone()), None);
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    finals
}

async fn run_phases(
    faults: &FaultDriver,
    apps: [String; 2],
    length: Duration,
    current: &AtomicUsize,
) -> Result<Vec<Phase>, DemoError> {
    let mut phases = Vec::new();
    let mut counted = [transitions(&apps[0]).await?, transitions(&apps[1]).await?];
    for (i, (name, changes)) in STEPS.into_iter().enumerate() {
        current.store(i * 1000, Ordering::Relaxed);
        let start = Instant::now();
        for &(proxy, enabled) in changes {
            faults.set_enabled(proxy, enabled).await?;
        }
        match name {
            "split brain" => {
                let length = length.max(SPLIT_AT_LEAST);
                println!("  {name:<20} for {length:?}, and until both apps follow the promotion");
                // New keys every half second: a key g1 took before the apps followed the
                // promotion is not written again on g2, so its loss stays visible.
                let mut slice = 0;
                let mut followed = None;
                while start.elapsed() < PROMOTION_WAIT_MAX
                    && (start.elapsed() < length || followed.is_none())
                {
                    slice += 1;
                    tokio::time::sleep(KEY_SLICE).await;
                    current.store(i * 1000 + slice, Ordering::Relaxed);
                    if followed.is_none() && both_follow_g2(&apps).await {
                        followed = Some(start.elapsed());
                    }
                }
                match followed {
                    Some(t) => println!(
                        "    both apps followed g2's promotion after {:.1} s",
                        t.as_secs_f64()
                    ),
                    None => println!("    no promotion within {PROMOTION_WAIT_MAX:?}"),
                }
            }
            "split healed" => {
                println!("  {name:<20} until g1 rejoins as a replica, then {length:?}");
                let pair =
                    settle::wait_for_pair(&probe_http(), &apps, settle::SETTLE_WAIT_MAX).await;
                println!("    {}", settle::describe_wait(&pair));
                tokio::time::sleep(length).await;
            }
            _ => {
                println!("  {name:<20} for {length:?}");
                tokio::time::sleep(length).await;
            }
        }
        let end = Instant::now();
        let now = [transitions(&apps[0]).await?, transitions(&apps[1]).await?];
        phases.push(Phase {
            name: name.to_string(),
            start,
            end,
            transitions: [
                now[0].saturating_sub(counted[0]),
                now[1].saturating_sub(counted[1]),
            ],
        });
        counted = now;
    }
    Ok(phases)
}

/// The sum of an app's `circuit_breaker_transitions_total` series.
async fn transitions(app: &str) -> Result<u64, DemoError> {
    let url = format!("{app}/metrics");
    let fail = |reason: String| DemoError::Metrics {
        url: url.clone(),
        reason,
    };
    let text = probe_http()
        .get(&url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?
        .text()
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(sum_counter(&text, BREAKER_TRANSITIONS))
}

/// Sums every sample of `name` in Prometheus text.
fn sum_counter(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_series_of_one_counter_only() {
        let text = "# HELP circuit_breaker_transitions_total x\n\
            circuit_breaker_transitions_total{mode=\"cp\",node=\"g1\",to=\"open\"} 2\n\
            circuit_breaker_transitions_total{mode=\"cp\",node=\"g1\",to=\"closed\"} 1\n\
            circuit_breaker_transitions_total_other 9\n";
        assert_eq!(sum_counter(text, BREAKER_TRANSITIONS), 3);
    }
}
