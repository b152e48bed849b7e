//! Benchmarks of the history checker, figures in BENCHMARKS.md:
//!
//! ```text
//! cargo bench --bench checker
//! ```
//!
//! Histories come from `caplab::check::generate` (a real register under random concurrency).
//! The baseline, measured in the same run, is parsing the same history (`parse/...`): it is
//! the least any check of a history file costs, so `check / parse` says what the checking
//! itself adds. Every case first asserts the verdict it must reach, so a figure is never
//! the time to give up (`unknown`). The `cas_...` cases are the same shapes with a third of
//! the writes as compare-and-set; `parse_edn/...` reads the 100,000-operation history from
//! Jepsen EDN instead of JSON Lines.

use std::hint::black_box;
use std::time::Duration;

use caplab::check::generate::{GenConfig, corrupt_read, generate, to_jsonl};
use caplab::check::{CheckOptions, History, HistoryFormat, Validity, check_history};
use criterion::{Criterion, criterion_group, criterion_main};

fn opts() -> CheckOptions {
    CheckOptions {
        timeout: Some(Duration::from_secs(60)),
        ..CheckOptions::default()
    }
}

/// 100,000 operations over 1,000 keys from 32 concurrent processes (1% info, 1% fail).
fn big() -> GenConfig {
    GenConfig {
        ops: 100_000,
        keys: 1000,
        processes: 32,
        info_ratio: 0.01,
        fail_ratio: 0.01,
        seed: 1,
        ..GenConfig::default()
    }
}

/// 2,000 operations on one key from 10 concurrent processes.
fn single_key() -> GenConfig {
    GenConfig {
        ops: 2000,
        keys: 1,
        processes: 10,
        info_ratio: 0.01,
        fail_ratio: 0.01,
        seed: 2,
        ..GenConfig::default()
    }
}

/// The shape of Porcupine's Jepsen etcd logs: one key, 5 client threads that take a new
/// process number after each `info` (about 50 process numbers), values 0-4 (repeats).
fn porcupine_shape() -> GenConfig {
    GenConfig {
        ops: 1712,
        keys: 1,
        processes: 5,
        info_ratio: 0.03,
        fail_ratio: 0.05,
        distinct_values: Some(5),
        seed: 3,
        ..GenConfig::default()
    }
}

/// The hard shape: one key, 50 clients that are always busy (about 40 operations in
/// flight at any moment), unique values.
fn busy_single_key() -> GenConfig {
    GenConfig {
        ops: 1712,
        keys: 1,
        processes: 50,
        info_ratio: 0.01,
        fail_ratio: 0.01,
        seed: 1,
        ..GenConfig::default()
    }
}

/// The same shape with a third of the writes as compare-and-set.
fn with_cas(cfg: GenConfig) -> GenConfig {
    GenConfig {
        cas_ratio: 1.0 / 3.0,
        ..cfg
    }
}

fn history(cfg: &GenConfig, corrupt: bool) -> (String, History) {
    let mut events = generate(cfg);
    if corrupt {
        let n = events.len() / 3;
        corrupt_read(&mut events, n, Some("never-written".into()));
    }
    let text = to_jsonl(&events);
    let h = History::parse(text.as_bytes()).expect("generated history is well formed");
    (text, h)
}

fn expect(h: &History, valid: Validity) {
    let r = check_history(h, &opts());
    assert_eq!(r.valid, valid, "{:#?}", r.linearizability);
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("checker");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));

    let (text, h) = history(&big(), false);
    expect(&h, Validity::Valid);
    g.bench_function("parse/100k_ops_1k_keys_32_procs", |b| {
        b.iter(|| History::parse(black_box(text.as_bytes())))
    });
    g.bench_function("check/100k_ops_1k_keys_32_procs", |b| {
        b.iter(|| check_history(black_box(&h), &opts()))
    });
    g.bench_function("parse_and_check/100k_ops_1k_keys_32_procs", |b| {
        b.iter(|| {
            let h = History::parse(black_box(text.as_bytes())).expect("parses");
            check_history(&h, &opts())
        })
    });
    let mut edn = Vec::new();
    caplab::check::edn::write_edn(&generate(&big()), &mut edn).expect("in memory");
    let from_edn = History::read(&edn[..], HistoryFormat::Edn).expect("well formed");
    assert_eq!(from_edn.ops.len(), h.ops.len());
    g.bench_function("parse_edn/100k_ops_1k_keys_32_procs", |b| {
        b.iter(|| History::read(black_box(&edn[..]), HistoryFormat::Edn))
    });
    let (_, cas_h) = history(&with_cas(big()), false);
    expect(&cas_h, Validity::Valid);
    g.bench_function("check/cas_100k_ops_1k_keys_32_procs", |b| {
        b.iter(|| check_history(black_box(&cas_h), &opts()))
    });
    let one_thread = CheckOptions {
        threads: 1,
        ..opts()
    };
    g.bench_function("check_1_thread/100k_ops_1k_keys_32_procs", |b| {
        b.iter(|| check_history(black_box(&h), &one_thread))
    });

    for (name, cfg, corrupt, valid) in [
        (
            "2k_ops_1_key_10_procs",
            single_key(),
            false,
            Validity::Valid,
        ),
        (
            "2k_ops_1_key_10_procs_corrupted",
            single_key(),
            true,
            Validity::Invalid,
        ),
        (
            "porcupine_shape_1712_ops",
            porcupine_shape(),
            false,
            Validity::Valid,
        ),
        (
            "porcupine_shape_1712_ops_corrupted",
            porcupine_shape(),
            true,
            Validity::Invalid,
        ),
        (
            "1712_ops_1_key_50_busy_procs",
            busy_single_key(),
            false,
            Validity::Valid,
        ),
        (
            "1712_ops_1_key_50_busy_procs_corrupted",
            busy_single_key(),
            true,
            Validity::Invalid,
        ),
    ] {
        for (prefix, cfg) in [("", cfg.clone()), ("cas_", with_cas(cfg))] {
            let (text, h) = history(&cfg, corrupt);
            expect(&h, valid);
            if prefix.is_empty() {
                g.bench_function(format!("parse/{name}"), |b| {
                    b.iter(|| History::parse(black_box(text.as_bytes())))
                });
            }
            g.bench_function(format!("check/{prefix}{name}"), |b| {
                b.iter(|| check_history(black_box(&h), &opts()))
            });
        }
    }
    g.finish();
}
criterion_group!(benches, bench);
criterion_main!(benches);
