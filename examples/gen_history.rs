//! Writes a generated history (JSON Lines) to stdout, for trying `caplab check` on big
//! inputs and for measuring its peak memory (see BENCHMARKS.md):
//!
//! ```text
//! cargo run --release --example gen_history -- OPS KEYS PROCESSES [SEED] [corrupt] [cas] [edn] > h.jsonl
//! ```
//!
//! The history comes from a real register under random concurrency
//! (`caplab::check::generate`), with 1% `info` and 1% `fail` operations; `corrupt` changes
//! one read to a value never written, so the history is not linearizable; `cas` makes a
//! third of the writes compare-and-set; `edn` writes Jepsen's EDN instead of JSON Lines.

use std::io::Write;

use caplab::check::generate::{GenConfig, corrupt_read, generate, to_jsonl};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: u64| {
        args.get(i)
            .and_then(|a| a.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let cfg = GenConfig {
        ops: num(0, 100_000) as usize,
        keys: num(1, 1000) as usize,
        processes: num(2, 32) as usize,
        info_ratio: 0.01,
        fail_ratio: 0.01,
        seed: num(3, 1),
        cas_ratio: if args.iter().any(|a| a == "cas") {
            1.0 / 3.0
        } else {
            0.0
        },
        ..GenConfig::default()
    };
    let mut events = generate(&cfg);
    if args.iter().any(|a| a == "corrupt") {
        let n = events.len() / 3;
        corrupt_read(&mut events, n, Some("never-written".into()));
    }
    let mut out = std::io::stdout().lock();
    let written = if args.iter().any(|a| a == "edn") {
        caplab::check::edn::write_edn(&events, &mut out)
    } else {
        out.write_all(to_jsonl(&events).as_bytes())
    };
    if let Err(e) = written {
        eprintln!("gen_history: {e}");
        std::process::exit(2);
    }
}
