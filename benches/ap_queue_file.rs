//! The cost of AP's queue file on queueing a write: `cargo bench --bench ap_queue_file`.
//!
//! Measures [`WriteQueue::push`] (what an AP write does once the primary is away, before its
//! 202) in-process, no HTTP and no Redis, so only the queue and the disk differ:
//!
//! - `memory`: no queue file (the baseline: a 202 that a crash loses);
//! - `file, fsync off`: each record written to the kernel before the 202;
//! - `file, fsync on`: each record fdatasynced before the 202, group-committed (the default);
//! - `fsync per write, no grouping`: the option not taken, for comparison: the same records
//!   appended and fdatasynced one at a time under a mutex by every writer.
//!
//! Each with 1 writer (one write at a time) and 16 concurrent writers, in alternating rounds so
//! the machine's noise falls on all of them. `BENCH_OPS` (per round and variant, default 2000)
//! and `BENCH_ROUNDS` (default 3) change the length. Under `cargo test --all-targets` one tiny
//! round runs as a smoke check.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use caplab::mode::queue::{QueueFile, WriteQueue, frame};
use caplab::node::WriteRequest;
use prometheus::IntGauge;

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy)]
enum Variant {
    Memory,
    File { fsync: bool },
    PerWriteFsync,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Memory => "memory (baseline)",
            Variant::File { fsync: false } => "file, fsync off",
            Variant::File { fsync: true } => "file, fsync on (group commit)",
            Variant::PerWriteFsync => "fsync per write, no grouping",
        }
    }
}

const VARIANTS: [Variant; 4] = [
    Variant::Memory,
    Variant::File { fsync: false },
    Variant::File { fsync: true },
    Variant::PerWriteFsync,
];

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn write(i: usize) -> WriteRequest {
    WriteRequest::new(format!("key{}", i % 100), format!("value-{i:08}"))
}

/// `ops` pushes by `writers` concurrent tasks; returns the elapsed time.
async fn run(
    variant: Variant,
    dir: &Path,
    ops: usize,
    writers: usize,
) -> Result<Duration, Failure> {
    let path = dir.join(format!("queue-{}", rand::random::<u64>()));
    let depth = IntGauge::new("depth", "bench")?;
    let per_writer = ops / writers;
    let started;
    let mut tasks = tokio::task::JoinSet::new();
    match variant {
        Variant::Memory | Variant::File { .. } => {
            let queue = Arc::new(match variant {
                Variant::File { fsync } => {
                    let (file, _) = QueueFile::open(&path, fsync)?;
                    WriteQueue::with_file(usize::MAX / 2, depth, file, Vec::new())
                }
                _ => WriteQueue::new(usize::MAX / 2, depth),
            });
            started = Instant::now();
            for w in 0..writers {
                let queue = queue.clone();
                tasks.spawn(async move {
                    for i in 0..per_writer {
                        queue.push(write(w * per_writer + i)).await?;
                    }
                    Ok::<(), Failure>(())
                });
            }
        }
        Variant::PerWriteFsync => {
            let file = Arc::new(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?,
            ));
            started = Instant::now();
            for w in 0..writers {
                let file = file.clone();
                tasks.spawn_blocking(move || {
                    for i in 0..per_writer {
                        let record = frame::LogRecord::Queued {
                            write: write(w * per_writer + i),
                            session: None,
                        };
                        let bytes = frame::encode(&record);
                        let f = file.lock().map_err(|_| "poisoned")?;
                        (&*f).write_all(&bytes)?;
                        f.sync_data()?;
                    }
                    Ok::<(), Failure>(())
                });
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let elapsed = started.elapsed();
    let _ = std::fs::remove_file(&path);
    Ok(elapsed)
}

fn main() -> Result<(), Failure> {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (ops, rounds) = if smoke {
        (64, 1)
    } else {
        (env_number("BENCH_OPS", 2000), env_number("BENCH_ROUNDS", 3))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The target directory's disk: where the lab's directory and the tests' files live.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    for writers in [1usize, 16] {
        let mut totals = vec![Duration::ZERO; VARIANTS.len()];
        for _ in 0..rounds {
            for (i, variant) in VARIANTS.iter().enumerate() {
                totals[i] += runtime.block_on(run(*variant, dir.path(), ops, writers))?;
            }
        }
        let rate = |d: Duration| (ops * rounds) as f64 / d.as_secs_f64();
        let baseline = rate(totals[0]);
        println!("{writers} writer(s), {ops} writes x {rounds} rounds:");
        for (variant, total) in VARIANTS.iter().zip(&totals) {
            let r = rate(*total);
            println!(
                "  {:32} {:>10.0} writes/s  {:>8.3} ms/write  {:.4} of memory",
                variant.name(),
                r,
                1000.0 * writers as f64 / r,
                r / baseline
            );
        }
    }
    Ok(())
}
