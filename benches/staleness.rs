//! Staleness accuracy and heartbeat load: `cargo bench --bench staleness`.
//!
//! Accuracy: a real redis-server pair, g2 replicating from g1 through the `cluster_g1` proxy of
//! an embedded `caplab proxy` (on its own thread and runtime), no sentinels (with sentinels
//! watching that link a 2 s delay would be a failover), an AP app with the default settings
//! (heartbeat 10 ms). For each injected replication delay L (a `latency` toxic on
//! `cluster_g1`'s downstream: 0, 100, 400, 2000 ms) it waits L + 1 s, then samples g2's
//! `staleness_ms` on `/replication` every 20 ms for `STALENESS_WINDOW_SEC` (default 3) and prints
//! the error against L (reported minus L): min, median, p99, max.
//!
//! Load: the CPU the heartbeat costs. The pair direct (no proxy), an AP app with a 60 s
//! heartbeat (no beats: the baseline), then with the default 100 ms (a caught-up replica), then
//! with 10 ms (the rate while the replica is behind), each idle for `LOAD_WINDOW_SEC` (default
//! 5), twice in turn; for each, the CPU time this process (the
//! app) and the two redis-servers used, from `getrusage` and `/proc/<pid>/stat`, as a share
//! of one core. Without `--bench` (`cargo test --all-targets`) it runs a short smoke check.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use caplab::config::{Config, Mode};
use caplab::faults::{CLUSTER_G1, FaultDriver, Stream, ToxicKind, ToxicSpec};

#[path = "support/mod.rs"]
mod support;

use support::Failure;
use support::http::send;
use support::pair::{direct_pair, pair_through_cluster_proxy};
use support::proxy_thread::Proxy;

fn main() -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

/// `GET path` on a fresh connection: the body.
async fn g2_staleness(addr: SocketAddr) -> Option<i64> {
    let body = send(addr, "GET", "/replication").await.ok()?.1;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    json["staleness_ms"]["g2"].as_i64()
}

fn secs(name: &str, default: u64, smoke: bool, smoke_value: u64) -> Duration {
    if smoke {
        return Duration::from_secs(smoke_value);
    }
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn loopback() -> Result<tokio::net::TcpListener, Failure> {
    Ok(tokio::net::TcpListener::bind("127.0.0.1:0").await?)
}

async fn accuracy(smoke: bool) -> Result<(), Failure> {
    let window = secs("STALENESS_WINDOW_SEC", 3, smoke, 1);
    let delays: &[u64] = if smoke {
        &[0, 100]
    } else {
        &[0, 100, 400, 2000]
    };
    let dir = tempfile::tempdir()?;
    let proxy = Proxy::start()?;
    let faults = FaultDriver::new(&proxy.api.to_string())?;
    let (g1, g2) = pair_through_cluster_proxy(dir.path(), &faults).await?;
    let mut config = Config::new(Mode::Ap, &g1.url(), &g2.url());
    config.port = 0;
    config.max_staleness = Duration::from_secs(10);
    let app = caplab::app::start(config, loopback().await?).await?;
    let addr = app.local_addr();
    tokio::time::sleep(Duration::from_secs(1)).await;

    println!("Staleness error (reported g2 staleness_ms minus the injected delay L), ms:");
    println!();
    println!("| L | samples | min | median | p99 | max |");
    println!("|---|---|---|---|---|---|");
    for &delay in delays {
        let toxic = ToxicSpec::new(
            ToxicKind::Latency {
                latency: delay as i64,
                jitter: 0,
            },
            Stream::Downstream,
        );
        if delay > 0 {
            faults.add_toxic(CLUSTER_G1, toxic).await?;
        }
        tokio::time::sleep(Duration::from_millis(delay) + Duration::from_secs(1)).await;
        let end = Instant::now() + window;
        let mut errors = Vec::new();
        while Instant::now() < end {
            if let Some(ms) = g2_staleness(addr).await {
                errors.push(ms - delay as i64);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        errors.sort_unstable();
        if errors.is_empty() {
            return Err("no staleness sample".into());
        }
        println!(
            "| {delay} ms | {} | {} | {} | {} | {} |",
            errors.len(),
            errors[0],
            percentile(&errors, 0.5),
            percentile(&errors, 0.99),
            errors[errors.len() - 1]
        );
        if delay > 0 {
            faults.remove_toxic(CLUSTER_G1, &toxic.name()).await?;
            tokio::time::sleep(Duration::from_millis(delay) + Duration::from_millis(500)).await;
        }
    }
    app.shutdown().await?;
    Ok(())
}

/// CPU time (user + system) of this process so far.
fn own_cpu() -> Duration {
    match nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(t.tv_sec().max(0) as u64)
                    + Duration::from_micros(t.tv_usec().max(0) as u64)
            };
            tv(u.user_time()) + tv(u.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}

/// CPU time (utime + stime) of process `pid`, from `/proc/<pid>/stat`, in clock ticks of
/// 10 ms.
fn process_cpu(pid: Option<u32>) -> Duration {
    let Some(pid) = pid else {
        return Duration::ZERO;
    };
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

async fn load(smoke: bool) -> Result<(), Failure> {
    let window = secs("LOAD_WINDOW_SEC", 5, smoke, 1);
    let rounds = if smoke { 1 } else { 2 };
    let dir = tempfile::tempdir()?;
    let (g1, g2) = direct_pair(dir.path(), Duration::from_secs(15)).await?;
    println!();
    println!("Heartbeat load: CPU used while idle, share of one core ({window:?} per run):");
    println!();
    println!("| heartbeat | round | app process | g1 | g2 | total |");
    println!("|---|---|---|---|---|---|");
    for round in 1..=rounds {
        for interval_ms in [60_000u64, 100, 10] {
            let mut config = Config::new(Mode::Ap, &g1.url(), &g2.url());
            config.port = 0;
            config.heartbeat_interval = Duration::from_millis(interval_ms);
            let app = caplab::app::start(config, loopback().await?).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (a0, p0, r0) = (own_cpu(), process_cpu(g1.pid()), process_cpu(g2.pid()));
            let started = Instant::now();
            tokio::time::sleep(window).await;
            let wall = started.elapsed().as_secs_f64();
            let (a1, p1, r1) = (own_cpu(), process_cpu(g1.pid()), process_cpu(g2.pid()));
            app.shutdown().await?;
            let share = |d: Duration| 100.0 * d.as_secs_f64() / wall;
            let (a, p, r) = (share(a1 - a0), share(p1 - p0), share(r1 - r0));
            let label = match interval_ms {
                100 => "100 ms (the default, at rest)",
                10 => "10 ms (the rate while behind)",
                _ => "off (60 s)",
            };
            println!(
                "| {label} | {round} | {a:.2} % | {p:.2} % | {r:.2} % | {:.2} % |",
                a + p + r
            );
        }
    }
    Ok(())
}

async fn run() -> Result<(), Failure> {
    let smoke = !std::env::args().any(|a| a == "--bench");
    if smoke {
        println!("caplab staleness benchmark (smoke run: use cargo bench for figures)");
    }
    accuracy(smoke).await?;
    load(smoke).await?;
    Ok(())
}
