//! The open-loop load generator's pure parts: when each operation is due, which key it
//! touches, whether it reads, writes or compares-and-sets, and the values.
//!
//! With `cas_ratio > 0` the mix is Jepsen's register workload: writes and cas operations use
//! small integer values (`0..REGISTER_VALUES`, as Jepsen's `(rand-int 5)`), so a cas often
//! finds the value it expects; otherwise written values are unique per write.
//!
//! Where it sits: [`super::runner`] spawns one task per client; each walks its own fixed
//! [`Schedule`] (as wrk2 does: `clients` schedules interleaved at the arrival rate), so a slow
//! answer never slows the clock. Latency is measured from the scheduled time, so a stalled
//! server shows its stall in the percentiles instead of hiding it (coordinated omission).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

use super::spec::{KeyDistribution, Target, Workload};

/// An operation is late when it is sent more than this after its scheduled time.
pub const LATE_AFTER: Duration = Duration::from_millis(10);

/// The due times of one client, offsets from the start of the load, all before its end.
#[derive(Debug, Clone)]
pub struct Schedule<'a> {
    workload: &'a Workload,
    clients: f64,
    next: Duration,
}

impl<'a> Schedule<'a> {
    /// Client `client` of `workload.clients`: its first operation is due at `client / rate`,
    /// each next one `clients / rate(t)` after the previous, so all clients together arrive
    /// at the rate of the moment.
    pub fn new(workload: &'a Workload, client: usize) -> Schedule<'a> {
        let first = client as f64 / workload.rate_at(Duration::ZERO);
        Schedule {
            workload,
            clients: workload.clients as f64,
            next: Duration::from_secs_f64(first),
        }
    }
}

impl Iterator for Schedule<'_> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let due = self.next;
        if due >= self.workload.duration {
            return None;
        }
        let gap = self.clients / self.workload.rate_at(due);
        self.next = due + Duration::from_secs_f64(gap);
        Some(due)
    }
}

/// How many operations the whole schedule of one target holds.
pub fn scheduled_ops(workload: &Workload) -> u64 {
    (0..workload.clients)
        .map(|c| Schedule::new(workload, c).count() as u64)
        .sum()
}

/// Values of the register mix: `0..REGISTER_VALUES`.
pub const REGISTER_VALUES: u32 = 5;

/// One operation to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Read this key.
    Read(String),
    /// Write this value to this key.
    Write(String, String),
    /// Compare-and-set this key from the expected value to the new one.
    Cas(String, String, String),
}

impl Op {
    /// The key.
    pub fn key(&self) -> &str {
        match self {
            Op::Read(k) | Op::Write(k, _) | Op::Cas(k, _, _) => k,
        }
    }
}

/// A client's random choices: keys, read or write, values. Seeded from the scenario seed,
/// the target and the client, so a run is reproducible.
pub struct Chooser {
    rng: StdRng,
    prefix: String,
    keys: u64,
    zipf: Option<Zipf<f64>>,
    read_ratio: f64,
    cas_ratio: f64,
    value_size: usize,
    writes: u64,
}

impl Chooser {
    /// The chooser of client `client` of `target`; its keys are `<prefix>-k<n>`.
    pub fn new(workload: &Workload, target: Target, client: usize, prefix: &str) -> Chooser {
        let salt = match target {
            Target::Cp => 0x0C9u64,
            Target::Ap => 0x0A9u64,
        };
        let seed = workload
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(salt << 32)
            .wrapping_add(client as u64);
        let zipf = match workload.distribution {
            KeyDistribution::Uniform => None,
            // Validated: keys >= 1 and exponent > 0, so `new` succeeds; uniform otherwise.
            KeyDistribution::Zipf { exponent } => Zipf::new(workload.keys as f64, exponent).ok(),
        };
        Chooser {
            rng: StdRng::seed_from_u64(seed),
            prefix: prefix.to_string(),
            keys: workload.keys,
            zipf,
            read_ratio: workload.read_ratio,
            cas_ratio: workload.cas_ratio,
            value_size: workload.value_size,
            writes: 0,
        }
    }

    /// The key prefix of `target` in run `run`: each target has its own keys, so each
    /// target's history can be checked alone, and each run its own, so every key starts
    /// absent (the checker's assumption) even on a lab that has run scenarios before.
    pub fn prefix(target: Target, run: &str) -> String {
        format!("{}-{run}", target.as_str())
    }

    /// The name of key number `n` under `prefix`.
    pub fn key_name(prefix: &str, n: u64) -> String {
        format!("{prefix}-k{n}")
    }

    fn key(&mut self) -> String {
        let n = match &self.zipf {
            // Zipf samples 1..=n as a float; key 0 is the hottest.
            Some(z) => (z.sample(&mut self.rng) as u64).clamp(1, self.keys) - 1,
            None => self.rng.random_range(0..self.keys),
        };
        Chooser::key_name(&self.prefix, n)
    }

    /// The next operation of `process`; written values are unique (`<process>-<n>`, padded
    /// to the value size).
    pub fn next_op(&mut self, process: u64) -> Op {
        let key = self.key();
        let draw = self.rng.random::<f64>();
        if draw < self.read_ratio {
            return Op::Read(key);
        }
        if self.cas_ratio > 0.0 {
            // Jepsen's register mix: small values, so cas operations often match.
            let mut value = || self.rng.random_range(0..REGISTER_VALUES).to_string();
            if draw < self.read_ratio + self.cas_ratio {
                let expected = value();
                return Op::Cas(key, expected, value());
            }
            return Op::Write(key, value());
        }
        self.writes += 1;
        let mut value = format!("{process}-{}", self.writes);
        while value.len() < self.value_size {
            value.push('x');
        }
        Op::Write(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::spec::KeyDistribution;

    fn workload(rate: f64, clients: usize, secs: u64) -> Workload {
        Workload {
            rate,
            stages: vec![],
            duration: Duration::from_secs(secs),
            read_ratio: 0.5,
            cas_ratio: 0.0,
            keys: 10,
            distribution: KeyDistribution::Uniform,
            value_size: 12,
            clients,
            session_clients: 0,
            seed: 7,
            timeout: Duration::from_secs(1),
            final_reads: true,
            settle: Duration::ZERO,
        }
    }

    #[test]
    fn clients_interleave_at_the_rate() {
        let w = workload(100.0, 4, 2);
        assert_eq!(scheduled_ops(&w), 200);
        let mut all: Vec<Duration> = (0..4).flat_map(|c| Schedule::new(&w, c)).collect();
        all.sort();
        // Consecutive due times are 10 ms apart across clients.
        for pair in all.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap.as_micros().abs_diff(10_000) <= 1, "gap {gap:?}");
        }
        assert!(all.iter().all(|d| *d < w.duration));
    }

    #[test]
    fn stages_change_the_rate() {
        let mut w = workload(10.0, 1, 4);
        w.stages = vec![(Duration::from_secs(2), 100.0)];
        let due: Vec<Duration> = Schedule::new(&w, 0).collect();
        let first_half = due.iter().filter(|d| d.as_secs() < 2).count();
        assert_eq!(first_half, 20);
        assert_eq!(due.len() - first_half, 200);
    }

    #[test]
    fn choices_are_reproducible_and_values_unique() {
        let w = workload(10.0, 1, 1);
        let a: Vec<Op> = {
            let mut c = Chooser::new(&w, Target::Cp, 3, "cp-t");
            (0..50).map(|_| c.next_op(9)).collect()
        };
        let mut c = Chooser::new(&w, Target::Cp, 3, "cp-t");
        let b: Vec<Op> = (0..50).map(|_| c.next_op(9)).collect();
        assert_eq!(a, b);
        let writes: Vec<&String> = a
            .iter()
            .filter_map(|o| match o {
                Op::Write(k, v) => {
                    assert!(k.starts_with("cp-t-k") && v.len() == 12);
                    Some(v)
                }
                Op::Read(_) | Op::Cas(..) => None,
            })
            .collect();
        let unique: std::collections::HashSet<_> = writes.iter().collect();
        assert_eq!(unique.len(), writes.len());
        assert!(!writes.is_empty() && writes.len() < 50);
    }

    #[test]
    fn the_register_mix_draws_reads_writes_and_cas_of_small_values() {
        let mut w = workload(10.0, 1, 1);
        w.read_ratio = 0.3;
        w.cas_ratio = 0.4;
        let mut c = Chooser::new(&w, Target::Cp, 0, "cp-t");
        let ops: Vec<Op> = (0..3000).map(|_| c.next_op(1)).collect();
        let small = |v: &str| v.parse::<u32>().is_ok_and(|n| n < REGISTER_VALUES);
        let (mut reads, mut writes, mut cas) = (0u32, 0u32, 0u32);
        for op in &ops {
            match op {
                Op::Read(_) => reads += 1,
                Op::Write(_, v) => {
                    assert!(small(v), "{op:?}");
                    writes += 1;
                }
                Op::Cas(_, e, n) => {
                    assert!(small(e) && small(n), "{op:?}");
                    cas += 1;
                }
            }
        }
        // 30% / 30% / 40% of 3000, within a generous margin.
        for (got, want) in [(reads, 900), (writes, 900), (cas, 1200)] {
            assert!(
                got.abs_diff(want) < 150,
                "{reads} reads, {writes} writes, {cas} cas"
            );
        }
    }

    #[test]
    fn zipf_prefers_low_keys() {
        let mut w = workload(10.0, 1, 1);
        w.keys = 100;
        w.read_ratio = 1.0;
        w.distribution = KeyDistribution::Zipf { exponent: 1.2 };
        let mut c = Chooser::new(&w, Target::Ap, 0, "ap-t");
        let hot = (0..2000)
            .filter(|_| c.next_op(1) == Op::Read("ap-t-k0".into()))
            .count();
        assert!(hot > 2000 / 10, "key 0 drawn {hot} times of 2000");
    }
}
