//! The load generator benchmark: `cargo bench --bench generator`.
//!
//! In one run on this machine, against a bare axum handler (answers like a personality, no
//! Redis, so the generator is what is measured):
//!
//! - **open loop**: `caplab::scenario::run_scenario` at a fixed arrival rate (default 20,000
//!   ops/s for 5 s, 64 clients): scheduled vs sent, achieved rate, late (> 10 ms) and dropped
//!   operations, and process CPU per operation during the load (recording, statistics and
//!   scheduling included; the end-of-run check excluded);
//! - **closed loop baseline**: the same number of clients on the same kind of reqwest client,
//!   each sending its next request as soon as the previous answer arrived, for the same time:
//!   its throughput and CPU per operation.
//!
//! CPU is the whole process (generator and the bare server), so the ratio of the two CPU per
//! op figures is the runner's own overhead. `GEN_RATE`, `GEN_SECS`, `GEN_CLIENTS` change the
//! load; without `--bench` (under `cargo test --all-targets`) it runs a 1 s smoke round.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use caplab::scenario::{Endpoints, NoLab, RunOptions, run_scenario, validate_str};

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Process CPU time (user + system) from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based in proc(5)).
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let hz = 100; // USER_HZ on Linux
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / hz)
}

/// A bare server answering like a personality, on its own runtime and threads.
fn start_bare() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("bare runtime");
        rt.block_on(async move {
            let read = r#"{"key":"k","value":"v","version":1,"mode":"cp","node":"g1","staleness_ms":0,"stale":false}"#;
            let write = r#"{"key":"k","value":"v","version":1,"mode":"cp","node":"g1","replicated":true,"queued":false,"outcome":"ok"}"#;
            let json = |body: &'static str| {
                move || async move { ([("content-type", "application/json")], body) }
            };
            let app = Router::new()
                .route("/health", get(json(r#"{"status":"ok"}"#)))
                .route("/read/{key}", get(json(read)))
                .route("/kv/{key}", axum::routing::put(json(write)))
                .route("/circuit-breaker", get(json(r#"{"breakers":{}}"#)))
                .route("/replication", get(json(r#"{"staleness_ms":{"g2":0}}"#)));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send addr");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    rx.recv().expect("bare server address")
}

async fn closed_loop(base: &str, clients: usize, secs: f64) -> (u64, Duration, Duration) {
    let http =
        caplab::scenario::client::http_client(Duration::from_secs(2), clients).expect("client");
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let cpu0 = cpu_time();
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let http = http.clone();
            let done = done.clone();
            let base = base.to_string();
            tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < end {
                    let key = format!("k{}", (c as u64 * 7 + i) % 1000);
                    let r = if i.is_multiple_of(2) {
                        http.get(format!("{base}/read/{key}")).send().await
                    } else {
                        http.put(format!("{base}/kv/{key}"))
                            .body("value")
                            .send()
                            .await
                    };
                    if let Ok(r) = r {
                        let _ = r.bytes().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    (
        done.load(Ordering::Relaxed),
        start.elapsed(),
        cpu_time() - cpu0,
    )
}

async fn run() -> Result<(), Failure> {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let rate = env_number("GEN_RATE", if smoke { 500 } else { 20_000 });
    let secs = env_number("GEN_SECS", if smoke { 1 } else { 5 });
    let clients = env_number("GEN_CLIENTS", 64) as usize;
    let bare = start_bare();
    let proxy = caplab::proxy::ProxyServer::start("127.0.0.1:0".parse()?).await?;
    let endpoints = Endpoints {
        cp: format!("http://{bare}"),
        ap: format!("http://{bare}"),
        toxiproxy: proxy.api_addr().to_string(),
    };
    let scenario = validate_str(
        "bench.toml",
        &format!(
            "name = \"bench\"\ntargets = [\"cp\"]\n[workload]\nrate = {rate}\nduration = \"{secs}s\"\nkeys = 1000\nclients = {clients}\nread_ratio = 0.5\nfinal_reads = false\ntimeout = \"2s\"\n[[threshold]]\ntarget = \"cp\"\nmetric = \"availability\"\nmin = 0.0\nlesson = \"bench\"\n"
        ),
    )?;
    let dir = tempfile::tempdir()?;
    let opts = RunOptions {
        out: dir.path().to_path_buf(),
        progress: false,
        check_timeout: Duration::from_secs(5),
    };

    // Open loop; CPU sampled when the load ends (before the check).
    let cpu0 = cpu_time();
    let load_cpu = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(secs) + Duration::from_millis(30)).await;
        cpu_time()
    });
    let outcome = run_scenario(&scenario, &endpoints, &mut NoLab, &opts).await?;
    let open_cpu = load_cpu.await? - cpu0;
    let t = &outcome.report.targets[0];

    // Closed loop for the same time, same clients.
    let (closed_ops, closed_wall, closed_cpu) =
        closed_loop(&endpoints.cp, clients, secs as f64).await;
    proxy.shutdown().await;

    let open_cpu_per_op = open_cpu.as_secs_f64() * 1e6 / t.sent.max(1) as f64;
    let closed_cpu_per_op = closed_cpu.as_secs_f64() * 1e6 / closed_ops.max(1) as f64;
    let closed_rate = closed_ops as f64 / closed_wall.as_secs_f64();
    println!(
        "generator benchmark ({clients} clients, {secs} s, bare axum handler{})",
        if smoke { ", smoke" } else { "" }
    );
    println!(
        "  open loop:   scheduled {} ({:.0}/s), sent {} ({:.0}/s = {:.3} of scheduled), late {} ({:.2}%), dropped {}, max late {:.1} ms, p50 {:.2} ms, p99 {:.2} ms, CPU {:.1} us/op",
        t.scheduled,
        t.scheduled_rate,
        t.sent,
        t.achieved_rate,
        t.achieved_rate / t.scheduled_rate,
        t.late,
        100.0 * t.late as f64 / t.sent.max(1) as f64,
        t.dropped,
        t.max_late_ms,
        t.whole.latency_ms.p50.unwrap_or(0.0),
        t.whole.latency_ms.p99.unwrap_or(0.0),
        open_cpu_per_op
    );
    println!(
        "  closed loop: {closed_ops} ops ({closed_rate:.0}/s), CPU {closed_cpu_per_op:.1} us/op"
    );
    println!(
        "  ratios: open-loop achieved rate / closed-loop capacity {:.2}; CPU per op open / closed {:.2}",
        t.achieved_rate / closed_rate,
        open_cpu_per_op / closed_cpu_per_op
    );
    if smoke && t.sent == 0 {
        return Err("the generator sent nothing".into());
    }
    Ok(())
}

fn main() -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}
