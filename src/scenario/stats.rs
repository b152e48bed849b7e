//! Live statistics of a run: per target, per second and per phase, latency in HdrHistograms.
//!
//! Where it sits: beside the recorder. Each completed operation is added once ([`Stats::add`]);
//! the progress bar reads counts while the run goes, the report reads everything at the end.
//! Latency is measured from the operation's scheduled time (wrk2), in microseconds.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::check::{EventType, OpKind};

/// A histogram of latencies in µs, 1 µs to 10 min, 3 significant figures.
pub fn histogram() -> Histogram<u64> {
    // Constant, valid bounds: low 1 >= 1, high > 2 * low, 3 significant figures <= 5.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds") // ok: constant bounds
}

/// Counts and latencies of one group of operations.
#[derive(Debug, Clone)]
pub struct Group {
    /// Completed ok.
    pub ok: u64,
    /// Definitely failed.
    pub fail: u64,
    /// Unknown outcome.
    pub info: u64,
    /// Reads (any outcome).
    pub reads: u64,
    /// Reads ok.
    pub reads_ok: u64,
    /// Writes (any outcome).
    pub writes: u64,
    /// Writes ok.
    pub writes_ok: u64,
    /// Reads whose answer said `stale: true`.
    pub flagged_stale: u64,
    /// Largest reported staleness, ms.
    pub max_staleness_ms: Option<u64>,
    /// Latency from the scheduled time, µs.
    pub latency: Histogram<u64>,
}

impl Default for Group {
    fn default() -> Group {
        Group {
            ok: 0,
            fail: 0,
            info: 0,
            reads: 0,
            reads_ok: 0,
            writes: 0,
            writes_ok: 0,
            flagged_stale: 0,
            max_staleness_ms: None,
            latency: histogram(),
        }
    }
}

/// One completed operation, as statistics see it.
#[derive(Debug, Clone, Copy)]
pub struct Done {
    /// Read or write.
    pub f: OpKind,
    /// Its outcome.
    pub kind: EventType,
    /// Latency from the scheduled time.
    pub latency: Duration,
    /// Completion offset from the start of the load.
    pub at: Duration,
    /// Reported staleness.
    pub staleness_ms: Option<u64>,
    /// The answer said `stale: true`.
    pub stale: bool,
}

impl Group {
    /// Adds one operation.
    pub fn add(&mut self, d: &Done) {
        match d.kind {
            EventType::Ok => self.ok += 1,
            EventType::Fail => self.fail += 1,
            _ => self.info += 1,
        }
        let ok = d.kind == EventType::Ok;
        match d.f {
            OpKind::Read => {
                self.reads += 1;
                self.reads_ok += u64::from(ok);
                self.flagged_stale += u64::from(d.stale);
                if let Some(s) = d.staleness_ms.filter(|_| ok) {
                    self.max_staleness_ms = Some(self.max_staleness_ms.map_or(s, |m| m.max(s)));
                }
            }
            // A compare-and-set is a write as far as load figures go.
            OpKind::Write | OpKind::Cas => {
                self.writes += 1;
                self.writes_ok += u64::from(ok);
            }
        }
        self.latency
            .saturating_record(d.latency.as_micros().max(1).min(u64::MAX as u128) as u64);
    }

    /// All operations.
    pub fn total(&self) -> u64 {
        self.ok + self.fail + self.info
    }

    /// A latency percentile in ms (`None` when empty).
    pub fn latency_ms(&self, q: f64) -> Option<f64> {
        (!self.latency.is_empty()).then(|| self.latency.value_at_quantile(q) as f64 / 1000.0)
    }

    /// The serialisable summary.
    pub fn summary(&self, name: &str, seconds: f64) -> GroupSummary {
        let rate = |n: u64, of: u64| (of > 0).then(|| n as f64 / of as f64);
        GroupSummary {
            name: name.to_string(),
            ok: self.ok,
            fail: self.fail,
            info: self.info,
            total: self.total(),
            availability: rate(self.ok, self.total()),
            read_availability: rate(self.reads_ok, self.reads),
            write_availability: rate(self.writes_ok, self.writes),
            throughput_ok: (seconds > 0.0).then(|| self.ok as f64 / seconds),
            flagged_stale: self.flagged_stale,
            max_staleness_ms: self.max_staleness_ms,
            latency_ms: LatencySummary {
                p50: self.latency_ms(0.5),
                p90: self.latency_ms(0.9),
                p99: self.latency_ms(0.99),
                p999: self.latency_ms(0.999),
                max: (!self.latency.is_empty()).then(|| self.latency.max() as f64 / 1000.0),
            },
        }
    }
}

/// Latency percentiles, ms.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatencySummary {
    /// Median.
    pub p50: Option<f64>,
    /// 90th.
    pub p90: Option<f64>,
    /// 99th.
    pub p99: Option<f64>,
    /// 99.9th.
    pub p999: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

/// A group's figures, as reports show them.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupSummary {
    /// Phase name, `run` for the whole load, or the second's offset.
    pub name: String,
    /// Ok.
    pub ok: u64,
    /// Fail.
    pub fail: u64,
    /// Info.
    pub info: u64,
    /// All.
    pub total: u64,
    /// ok / total.
    pub availability: Option<f64>,
    /// Reads ok / reads.
    pub read_availability: Option<f64>,
    /// Writes ok / writes.
    pub write_availability: Option<f64>,
    /// Ok operations per second.
    pub throughput_ok: Option<f64>,
    /// Reads answered with `stale: true`.
    pub flagged_stale: u64,
    /// Largest reported staleness, ms.
    pub max_staleness_ms: Option<u64>,
    /// Latency from the scheduled time.
    pub latency_ms: LatencySummary,
}

/// Everything measured for one target.
#[derive(Debug, Clone, Default)]
pub struct TargetStats {
    /// One group per second of the load (completion time).
    pub seconds: Vec<Group>,
    /// One group per phase, in the scenario's order; the final reads last.
    pub phases: Vec<Group>,
    /// The whole load (final reads excluded).
    pub whole: Group,
    /// Operations sent.
    pub sent: u64,
    /// Operations sent more than [`super::generator::LATE_AFTER`] after their due time.
    pub late: u64,
    /// Largest delay between due and send time.
    pub max_late: Duration,
    /// Completion offset of the last operation that was not ok or answered stale.
    pub last_bad: Option<Duration>,
    /// Completion offset of the last ok, fresh operation.
    pub last_good: Option<Duration>,
}

/// The statistics of a run: one [`TargetStats`] per target.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Per target, in the scenario's order.
    pub targets: Vec<TargetStats>,
}

impl Stats {
    /// Statistics for `targets` targets with `phases` phases each (final reads included).
    pub fn new(targets: usize, phases: usize) -> Stats {
        Stats {
            targets: (0..targets)
                .map(|_| TargetStats {
                    phases: (0..phases).map(|_| Group::default()).collect(),
                    ..TargetStats::default()
                })
                .collect(),
        }
    }

    /// Records that target `t` sent an operation `late` after its due time.
    pub fn sent(&mut self, t: usize, late: Duration) {
        if let Some(s) = self.targets.get_mut(t) {
            s.sent += 1;
            if late > super::generator::LATE_AFTER {
                s.late += 1;
            }
            s.max_late = s.max_late.max(late);
        }
    }

    /// Adds a completed operation of target `t` in phase `phase`; `load` is false for the
    /// final reads (kept out of the per-second series and the whole-load group).
    pub fn add(&mut self, t: usize, phase: usize, load: bool, d: &Done) {
        let Some(s) = self.targets.get_mut(t) else {
            return;
        };
        if let Some(p) = s.phases.get_mut(phase) {
            p.add(d);
        }
        if !load {
            return;
        }
        s.whole.add(d);
        let sec = d.at.as_secs() as usize;
        if s.seconds.len() <= sec {
            s.seconds.resize_with(sec + 1, Group::default);
        }
        s.seconds[sec].add(d);
        if d.kind == EventType::Ok && !d.stale {
            s.last_good = Some(s.last_good.map_or(d.at, |g| g.max(d.at)));
        } else {
            s.last_bad = Some(s.last_bad.map_or(d.at, |b| b.max(d.at)));
        }
    }
}

/// Time from `heal` until the target was converged: every operation after the returned
/// offset was ok and fresh. `None` when the last bad operation came after the last good
/// one (never converged before the load ended).
pub fn converge_after(heal: Duration, s: &TargetStats) -> Option<Duration> {
    match (s.last_bad, s.last_good) {
        (None, _) => Some(Duration::ZERO),
        (Some(bad), _) if bad <= heal => Some(Duration::ZERO),
        (Some(bad), Some(good)) if good > bad => Some(bad - heal),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(kind: EventType, at_ms: u64, lat_ms: u64) -> Done {
        Done {
            f: OpKind::Read,
            kind,
            latency: Duration::from_millis(lat_ms),
            at: Duration::from_millis(at_ms),
            staleness_ms: Some(at_ms / 10),
            stale: false,
        }
    }

    #[test]
    fn groups_count_and_percentiles() {
        let mut s = Stats::new(1, 2);
        for i in 0..100 {
            s.add(0, 0, true, &done(EventType::Ok, i * 30, i + 1));
        }
        s.add(0, 1, true, &done(EventType::Fail, 3100, 500));
        s.add(0, 1, false, &done(EventType::Ok, 9000, 1));
        let t = &s.targets[0];
        assert_eq!((t.whole.ok, t.whole.fail), (100, 1));
        assert_eq!(t.phases[1].total(), 2);
        assert_eq!(t.seconds.len(), 4);
        let p50 = t.phases[0].latency_ms(0.5);
        assert!(p50.is_some_and(|p| (49.0..=51.0).contains(&p)), "{p50:?}");
        assert_eq!(t.phases[0].max_staleness_ms, Some(297));
        let sum = t.whole.summary("run", 3.0);
        assert_eq!(sum.availability, Some(100.0 / 101.0));
    }

    #[test]
    fn convergence_is_measured_from_the_heal() {
        let mut t = TargetStats::default();
        let heal = Duration::from_secs(5);
        assert_eq!(converge_after(heal, &t), Some(Duration::ZERO));
        t.last_bad = Some(Duration::from_millis(5600));
        t.last_good = Some(Duration::from_secs(9));
        assert_eq!(converge_after(heal, &t), Some(Duration::from_millis(600)));
        t.last_good = Some(Duration::from_secs(5));
        assert_eq!(converge_after(heal, &t), None);
        t.last_bad = Some(Duration::from_secs(4));
        assert_eq!(converge_after(heal, &t), Some(Duration::ZERO));
    }
}
