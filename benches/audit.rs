//! The audit log's cost on write throughput: `cargo bench --bench audit`.
//!
//! Three `caplab serve --mode ap` processes over one real redis-server primary/replica pair,
//! all logging JSON to a rotated `LOG_FILE` as in production, differing only in `AUDIT_LOG`:
//!
//! - `off`: no audit events (the baseline);
//! - a file: each write's `WRITE` event in its own rotated file;
//! - `log`: the events in the main log file.
//!
//! Load: 32 keep-alive connections each sending its next `POST /write/{key}/{value}` when the
//! last answered, the three in alternating rounds so the machine's noise falls on all three.
//! `BENCH_SECS` (per round, default 3) and `BENCH_ROUNDS` (default 6) change the length. Under
//! `cargo test --all-targets` one short round runs as a smoke check.

// The service benchmark's load generator; its read and CP-design paths are not used here.
#[allow(dead_code)]
#[path = "service/load.rs"]
mod load;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use caplab::lab::ports::free_port;
use caplab::lab::redis_node::RedisNode;

use load::{alternate, send, write_path};

pub const CONNECTIONS: usize = 32;
pub const KEYS: usize = 100;

#[path = "support/mod.rs"]
mod support;

use support::Failure;
use support::pair::direct_pair;

/// A `caplab serve` process, killed when dropped.
struct App {
    child: Child,
    addr: SocketAddr,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_app(
    g1: &RedisNode,
    g2: &RedisNode,
    dir: &std::path::Path,
    audit: &str,
) -> Result<App, Failure> {
    let port = free_port()?;
    let name = if audit.contains('/') { "file" } else { audit };
    let child = Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args(["serve", "--mode", "ap"])
        .env("PORT", port.to_string())
        .env("REDIS_G1_URL", g1.url())
        .env("REDIS_G2_URL", g2.url())
        .env("LOG_FORMAT", "json")
        .env("LOG_FILE", dir.join(format!("main-{name}.log")))
        .env("AUDIT_LOG", audit)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let app = App { child, addr };
    let deadline = Instant::now() + Duration::from_secs(20);
    while send(addr, "GET", "/ready").await.ok() != Some(200) {
        if Instant::now() > deadline {
            return Err(format!("caplab serve (AUDIT_LOG={audit}) never became ready").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(app)
}

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
    let smoke = !std::env::args().any(|a| a == "--bench");
    let rounds = if smoke {
        1
    } else {
        env_number("BENCH_ROUNDS", 6)
    };
    let round = if smoke {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(env_number("BENCH_SECS", 3))
    };
    let dir = tempfile::tempdir()?;
    let (g1, g2) = direct_pair(dir.path(), Duration::from_secs(10)).await?;
    let audit_file = dir.path().join("audit.log").display().to_string();
    let off = start_app(&g1, &g2, dir.path(), "off").await?;
    let file = start_app(&g1, &g2, dir.path(), &audit_file).await?;
    let main_log = start_app(&g1, &g2, dir.path(), "log").await?;

    let sums = alternate(
        rounds,
        round,
        &[
            ("POST", off.addr, write_path),
            ("POST", file.addr, write_path),
            ("POST", main_log.addr, write_path),
        ],
    )
    .await?;
    // The current file and the rotated ones (`audit.log.1`, ...): what is left of the trail.
    let audit_bytes: u64 = std::fs::read_dir(dir.path())?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("audit.log"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let current = std::fs::read_to_string(&audit_file).unwrap_or_default();
    let lines = current.lines().count().max(1);
    let written = sums[1].count;
    if sums.iter().any(|m| m.count == 0 || m.errors > 0) {
        return Err(format!(
            "a target failed: {:?}",
            sums.iter().map(|m| (m.count, m.errors)).collect::<Vec<_>>()
        )
        .into());
    }
    if audit_bytes == 0 {
        return Err("the audit file stayed empty".into());
    }
    if smoke {
        println!("audit bench smoke: ok ({written} audited writes)");
        return Ok(());
    }
    let base = sums[0].rate();
    println!("| AUDIT_LOG | writes/s | vs off | p50 | p99 |");
    println!("|---|---|---|---|---|");
    for (name, m) in ["off (baseline)", "own file", "log (main file)"]
        .iter()
        .zip(&sums)
    {
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} ms | {:.2} ms |",
            m.rate(),
            m.rate() / base,
            m.p(0.5) as f64 / 1000.0,
            m.p(0.99) as f64 / 1000.0
        );
    }
    println!(
        "audit trail: {written} writes, {:.0} bytes a line; {audit_bytes} bytes kept on disk (10 MiB files, 3 kept)",
        current.len() as f64 / lines as f64
    );
    Ok(())
}
