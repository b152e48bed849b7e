//! The demo's side-by-side table: for each phase (before, during and after each fault), CP
//! and AP next to each other, every figure computed from what the load recorded and what the
//! apps' `/metrics` counted.

use std::time::{Duration, Instant};

use super::load::{Op, Target, Written};

/// One phase of the experiment.
#[derive(Debug, Clone)]
pub struct Phase {
    /// What was true during it (`before`, `replication cut`...).
    pub name: String,
    /// When it began.
    pub start: Instant,
    /// When it ended.
    pub end: Instant,
    /// Breaker transitions counted by app_cp and app_ap during it.
    pub transitions: [u64; 2],
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The phase.
    pub phase: String,
    /// `cp` or `ap`.
    pub mode: &'static str,
    /// Operations sent in the phase.
    pub ops: usize,
    /// Of them, answered with success.
    pub ok: usize,
    /// Reads that returned an older version than a write acknowledged before they began.
    pub stale_reads: usize,
    /// Successful reads.
    pub reads_ok: usize,
    /// The oldest stale read's age, in ms.
    pub max_stale_ms: Option<u64>,
    /// The largest `staleness_ms` a read answer reported.
    pub max_reported_ms: Option<u64>,
    /// 99th percentile latency of every operation, in ms.
    pub p99_ms: Option<f64>,
    /// Breaker transitions.
    pub transitions: u64,
    /// Writes sent in the phase, acknowledged (200), and gone from the final state.
    pub lost_writes: usize,
}

impl Row {
    /// Share of operations answered with success, in percent.
    pub fn availability(&self) -> Option<f64> {
        (self.ops > 0).then(|| 100.0 * self.ok as f64 / self.ops as f64)
    }
}

fn p99(mut latencies: Vec<Duration>) -> Option<f64> {
    if latencies.is_empty() {
        return None;
    }
    latencies.sort_unstable();
    let rank = ((latencies.len() as f64) * 0.99).ceil() as usize;
    let at = rank.clamp(1, latencies.len()) - 1;
    Some(latencies[at].as_secs_f64() * 1000.0)
}

/// Summarises the operations of each phase and personality; `lost` are the acknowledged
/// writes gone from the final state ([`super::load::lost_writes`]).
pub fn summarize(ops: &[Op], phases: &[Phase], lost: &[&Written]) -> Vec<Row> {
    let mut rows = Vec::new();
    for phase in phases {
        for (i, target) in [Target::Cp, Target::Ap].into_iter().enumerate() {
            let mine: Vec<&Op> = ops
                .iter()
                .filter(|op| {
                    op.target == target && op.invoked >= phase.start && op.invoked < phase.end
                })
                .collect();
            let stale: Vec<Duration> = mine.iter().filter_map(|op| op.stale_age).collect();
            rows.push(Row {
                phase: phase.name.clone(),
                mode: target.name(),
                ops: mine.len(),
                ok: mine.iter().filter(|op| op.ok).count(),
                stale_reads: stale.len(),
                reads_ok: mine.iter().filter(|op| !op.write && op.ok).count(),
                max_stale_ms: stale.iter().max().map(|d| d.as_millis() as u64),
                max_reported_ms: mine.iter().filter_map(|op| op.reported_staleness_ms).max(),
                p99_ms: p99(mine.iter().map(|op| op.latency).collect()),
                transitions: phase.transitions[i],
                lost_writes: lost
                    .iter()
                    .filter(|w| {
                        w.target == target && w.invoked >= phase.start && w.invoked < phase.end
                    })
                    .count(),
            });
        }
    }
    rows
}

/// The table as text.
pub fn render(rows: &[Row]) -> String {
    let header = [
        "phase",
        "mode",
        "ops",
        "availability",
        "stale reads",
        "max stale age",
        "max staleness_ms",
        "p99 latency",
        "breaker transitions",
        "lost acknowledged writes",
    ];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for row in rows {
        cells.push(vec![
            row.phase.clone(),
            row.mode.to_string(),
            row.ops.to_string(),
            or_dash(row.availability().map(|a| format!("{a:.1}%"))),
            format!("{} / {}", row.stale_reads, row.reads_ok),
            or_dash(row.max_stale_ms.map(|ms| format!("{ms} ms"))),
            or_dash(row.max_reported_ms.map(|ms| format!("{ms} ms"))),
            or_dash(row.p99_ms.map(|ms| format!("{ms:.1} ms"))),
            row.transitions.to_string(),
            row.lost_writes.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| cells.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, row) in cells.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i < 2 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if n == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(target: Target, write: bool, at: Instant, ok: bool, stale_ms: Option<u64>) -> Op {
        Op {
            target,
            write,
            invoked: at,
            latency: Duration::from_millis(if ok { 2 } else { 500 }),
            ok,
            stale_age: stale_ms.map(Duration::from_millis),
            reported_staleness_ms: (!write && ok).then_some(7),
        }
    }

    #[test]
    fn rows_count_each_phase_and_personality_apart() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        let phases = vec![
            Phase {
                name: "before".into(),
                start: t0,
                end: t1,
                transitions: [0, 0],
            },
            Phase {
                name: "cut".into(),
                start: t1,
                end: t1 + Duration::from_secs(1),
                transitions: [2, 0],
            },
        ];
        let ops = vec![
            op(Target::Cp, true, t0, true, None),
            op(Target::Cp, true, t1, false, None),
            op(Target::Cp, false, t1, true, None),
            op(Target::Ap, false, t1, true, Some(120)),
            op(Target::Ap, false, t1, true, Some(80)),
        ];
        let lost = Written {
            target: Target::Ap,
            key: "k".into(),
            value: "v1".into(),
            invoked: t1,
            acked: Some(t1),
        };
        let rows = summarize(&ops, &phases, &[&lost]);
        assert_eq!(rows.len(), 4);
        assert_eq!((rows[0].ops, rows[0].availability()), (1, Some(100.0)));
        assert_eq!(rows[1].ops, 0);
        assert_eq!(rows[1].availability(), None);
        assert_eq!((rows[2].ops, rows[2].ok, rows[2].transitions), (2, 1, 2));
        assert_eq!((rows[3].stale_reads, rows[3].max_stale_ms), (2, Some(120)));
        assert_eq!(rows[2].p99_ms, Some(500.0));
        assert_eq!((rows[2].lost_writes, rows[3].lost_writes), (0, 1));
        let text = render(&rows);
        assert!(text.contains("50.0%"), "{text}");
        assert!(text.contains("2 / 2"), "{text}");
    }
}
