//! The service benchmark: `cargo bench --bench service`.
//!
//! Measures, in one run on this machine, over a real redis-server primary/replica pair:
//!
//! - AP `GET /read/{key}` against a bare axum handler doing the same Redis command (`HGETALL`
//!   on the replica), the floor of this design;
//! - CP `POST /write/{key}/{value}` against a bare axum handler doing `SET` + `WAIT 1` in one
//!   pipeline on a pool of dedicated connections of the same size;
//! - CP `GET /read/{key}` with the read fence (`CP_READ_FENCE=on`, the default: the read, a
//!   fence write and `WAIT 1` in one pipeline on a dedicated connection) against the same CP
//!   without it (`off`: one `HGETALL` on the shared connection): the fence's cost;
//! - CP `GET /read/{key}` with g1 hung (SIGSTOP) and its breaker open: the fail-fast latency.
//!
//! Each comparison runs in alternating rounds (bare, caplab; then caplab, bare; ...) so the noise
//! falls on both; throughput and p50/p99 come from every round together. Load: 32 keep-alive
//! HTTP/1 connections, each sending its next request when the previous answer arrived.
//! `BENCH_SECS` (per round, default 2) and `BENCH_ROUNDS` (default 6) change the length;
//! `BENCH_ONLY=read`, `write` or `fence` runs one comparison.

mod bare;
mod load;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use caplab::config::{Config, Mode};
use caplab::lab::ports::free_port;
use caplab::lab::redis_node::{RedisNode, RedisNodeSpec};
use caplab::node::BreakerSettings;
use fred::interfaces::{KeysInterface, ServerInterface};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use bare::{client, start_bare};
use load::{
    Measured, PathFn, alternate, design_path, load, load_with, read_path, send, write_path,
};

pub const CONNECTIONS: usize = 32;
pub const KEYS: usize = 100;
pub const POOL: usize = 16;

#[path = "../support/mod.rs"]
mod support;

pub use support::Failure;
use support::pair::direct_pair;

fn main() -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run() -> Result<(), Failure> {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // and then it only checks that every scenario still works, in short rounds.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let secs = env_number("BENCH_SECS", 2);
    let rounds = if smoke {
        1
    } else {
        env_number("BENCH_ROUNDS", 6)
    };
    let round = if smoke {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(secs)
    };
    let dir = tempfile::tempdir()?;
    let (g1, g2) = direct_pair(dir.path(), Duration::from_secs(10)).await?;
    wait_streaming(&g1.url()).await?;

    let mut config = Config::new(Mode::Ap, &g1.url(), &g2.url());
    config.port = 0;
    config.cp_wait_pool_size = POOL;
    let ap = caplab::app::start(config.clone(), loopback().await?).await?;
    config.mode = Mode::Cp;
    let cp = caplab::app::start(config.clone(), loopback().await?).await?;
    config.cp_read_fence = false;
    let cp_unfenced = caplab::app::start(config, loopback().await?).await?;
    let bare = start_bare(&g1.url(), &g2.url()).await?;

    // Keys to read, written through CP so they are on both nodes.
    for i in 0..KEYS {
        let reply = send(
            cp.local_addr(),
            "POST",
            &format!("/write/bench-{i}/value-{i}"),
        )
        .await?;
        if reply != 200 {
            return Err(format!("seeding bench-{i} answered {reply}").into());
        }
    }

    println!(
        "caplab service benchmark{}: {CONNECTIONS} connections, {rounds} rounds of {:?} each, CP WAIT pool {POOL}",
        if smoke {
            " (smoke run: use cargo bench for figures)"
        } else {
            ""
        },
        round
    );
    let (read, write, design): (PathFn, PathFn, PathFn) = (read_path, write_path, design_path);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let mut reads = Vec::new();
    if only.is_empty() || only == "read" {
        reads = alternate(
            rounds,
            round,
            &[("GET", bare, read), ("GET", ap.local_addr(), read)],
        )
        .await?;
    }
    let mut writes = Vec::new();
    if only.is_empty() || only == "write" {
        let targets = [
            ("POST", bare, write),
            ("POST", bare, design),
            ("POST", cp.local_addr(), write),
        ];
        writes = alternate(rounds, round, &targets).await?;
    }
    let mut fenced = Vec::new();
    if only.is_empty() || only == "fence" {
        let targets = [
            ("GET", cp_unfenced.local_addr(), read),
            ("GET", cp.local_addr(), read),
        ];
        fenced = alternate(rounds, round, &targets).await?;
    }
    let (open, open_single, inside) = breaker_open(&g2.url(), &dir, round).await?;

    println!();
    println!("| scenario | requests/s | p50 | p99 | errors |");
    println!("|---|---|---|---|---|");
    let names = [
        "bare HGETALL handler (g2)",
        "AP GET /read/{key}",
        "bare SET+WAIT handler (g1)",
        "bare script+ROLE+WAIT handler (g1)",
        "CP POST /write/{key}/{value}",
    ];
    let measured: Vec<&Measured> = reads.iter().chain(writes.iter()).collect();
    let names: Vec<&str> = match (reads.is_empty(), writes.is_empty()) {
        (false, false) => names.to_vec(),
        (false, true) => names[..2].to_vec(),
        (true, _) => names[2..].to_vec(),
    };
    let fence_names = [
        "CP GET /read/{key}, CP_READ_FENCE=off",
        "CP GET /read/{key}, CP_READ_FENCE=on",
    ];
    for (name, r) in names
        .into_iter()
        .zip(measured)
        .chain(fence_names.into_iter().zip(fenced.iter()))
        .chain([
            ("CP GET /read/{key}, g1 breaker open", &open),
            ("same, 1 connection", &open_single),
        ])
    {
        println!(
            "| {name} | {:.0} | {} | {} | {} |",
            r.rate(),
            micros(r.p(0.5)),
            micros(r.p(0.99)),
            r.errors
        );
    }
    println!();
    if let [bare_read, ap_read] = reads.as_slice() {
        println!(
            "AP read throughput / bare HGETALL: {:.2} (target >= 0.80)",
            ap_read.rate() / bare_read.rate()
        );
    }
    if let [set_wait, design_cmds, cp_write] = writes.as_slice() {
        println!(
            "CP write throughput / bare SET+WAIT: {:.2} (target >= 0.80); / bare script+ROLE+WAIT: {:.2}",
            cp_write.rate() / set_wait.rate(),
            cp_write.rate() / design_cmds.rate()
        );
    }
    if let [unfenced, fenced] = fenced.as_slice() {
        println!(
            "CP read throughput with the fence / without: {:.2}; p50 {} vs {}",
            fenced.rate() / unfenced.rate(),
            micros(fenced.p(0.5)),
            micros(unfenced.p(0.5))
        );
        if let [bare_read, _] = reads.as_slice() {
            println!(
                "CP read throughput / bare HGETALL: {:.2} unfenced, {:.2} fenced",
                unfenced.rate() / bare_read.rate(),
                fenced.rate() / bare_read.rate()
            );
        }
    }
    println!(
        "p99 with the breaker open: {} at {CONNECTIONS} connections, {} at 1 connection (target < 1 ms; all {} answers were 503: {})",
        micros(open.p(0.99)),
        micros(open_single.p(0.99)),
        open.count + open_single.count,
        open.errors + open_single.errors == open.count + open_single.count
    );
    println!(
        "inside the server (app_request_latency_seconds), breaker open: {:.2}% of {} reads answered within 1 ms",
        inside.0 * 100.0,
        inside.1
    );

    ap.shutdown().await?;
    cp.shutdown().await?;
    cp_unfenced.shutdown().await?;
    Ok(())
}

fn micros(us: u64) -> String {
    if us >= 1000 {
        format!("{:.2} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}

pub async fn loopback() -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind("127.0.0.1:0").await
}

/// A fresh full sync streams nothing until the replica's first ACK: wait until WAIT says 1.
async fn wait_streaming(url: &str) -> Result<(), Failure> {
    let client = client(url).await?;
    for _ in 0..100 {
        let _: () = client.set("bench:stream", "1", None, None, false).await?;
        let acked: i64 = client.wait(1, 200).await?;
        if acked >= 1 {
            return Ok(());
        }
    }
    Err("the primary never streamed to the replica".into())
}

/// Reads `le="0.001"` and the count of CP's read latency histogram from `/metrics`.
async fn server_side_reads(addr: SocketAddr) -> Result<(u64, u64), Failure> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = hyper::Request::builder()
        .uri("/metrics")
        .header("host", "bench")
        .body(Empty::<Bytes>::new())?;
    let text = String::from_utf8(
        sender
            .send_request(request)
            .await?
            .into_body()
            .collect()
            .await?
            .to_bytes()
            .to_vec(),
    )?;
    let value = |prefix: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((
        value(r#"app_request_latency_seconds_bucket{mode="cp",operation="read",le="0.001"}"#),
        value(r#"app_request_latency_seconds_count{mode="cp",operation="read"}"#),
    ))
}

/// CP over a hung primary (SIGSTOP): wait for its g1 breaker to open, then load reads at 32
/// connections and at 1; also the share answered within 1 ms as the server measured it.
async fn breaker_open(
    g2_url: &str,
    dir: &tempfile::TempDir,
    length: Duration,
) -> Result<(Measured, Measured, (f64, u64)), Failure> {
    let hung = RedisNode::start(RedisNodeSpec::primary(
        "hung",
        free_port()?,
        &dir.path().join("hung"),
    ))
    .await?;
    let mut config = Config::new(Mode::Cp, &hung.url(), g2_url);
    config.port = 0;
    config.network_timeout = Duration::from_millis(200);
    config.cp_wait_timeout = Duration::from_millis(100);
    config.breaker = BreakerSettings {
        failure_threshold: 3,
        open_interval: Duration::from_secs(120),
        max_open_interval: Duration::from_secs(120),
    };
    let app = caplab::app::start(config, loopback().await?).await?;
    hung.pause()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state().nodes.g1().breaker().state() != caplab::node::BreakerState::Open {
        if Instant::now() > deadline {
            return Err("the g1 breaker never opened over a hung primary".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let read: PathFn = read_path;
    load(
        "GET",
        app.local_addr(),
        read,
        length.min(Duration::from_millis(500)),
    )
    .await?;
    let (fast0, all0) = server_side_reads(app.local_addr()).await?;
    let measured = load("GET", app.local_addr(), read, length).await?;
    let single = load_with("GET", app.local_addr(), read, length, 1).await?;
    let (fast1, all1) = server_side_reads(app.local_addr()).await?;
    let inside = (
        (fast1 - fast0) as f64 / (all1 - all0).max(1) as f64,
        all1 - all0,
    );
    hung.resume()?;
    let _ = tokio::time::timeout(Duration::from_secs(5), app.shutdown()).await;
    Ok((measured, single, inside))
}
