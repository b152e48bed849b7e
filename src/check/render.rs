//! The readable summary of a [`CheckReport`], what `caplab check` prints without `--json`.
//!
//! Where it sits: the last step of `caplab check`; the scenario runner may reuse it for its
//! Markdown summary. One section per checker, the anomalies first, then the availability
//! table, then the verdict line with the exit status.

use std::fmt::Write;

use super::report::{CheckReport, Validity};
use super::stale::AgeBucket;
use super::wgl::UnknownReason;

/// `1 key`, `2 keys`, `2 processes`.
fn n(count: usize, noun: &str) -> String {
    match (count, noun.ends_with('s')) {
        (1, _) => format!("1 {noun}"),
        (_, true) => format!("{count} {noun}es"),
        _ => format!("{count} {noun}s"),
    }
}

fn pct(rate: f64) -> String {
    format!("{:.2}%", rate * 100.0)
}

/// `under 100 ms 1.20% of reads, 100 ms to 1 s 0.30%, ...`
pub fn by_age(buckets: &[AgeBucket]) -> String {
    buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let of = if i == 0 { " of reads" } else { "" };
            format!("{} {}{of}", b.age, pct(b.share_of_reads))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The summary, several lines, no trailing newline.
pub fn summary(r: &CheckReport) -> String {
    let mut s = String::new();
    let h = &r.history;
    let _ = write!(
        s,
        "history: {}, {}, {}, {}",
        n(h.events, "event"),
        n(h.ops, "operation"),
        n(h.keys, "key"),
        n(h.processes, "process")
    );
    if h.open_at_end > 0 {
        let _ = write!(
            s,
            ", {} still open at the end (taken as info)",
            h.open_at_end
        );
    }
    if h.times_raised > 0 {
        let _ = write!(
            s,
            ", {} Jepsen :time values went back and were raised to keep the file's order",
            h.times_raised
        );
    }
    if let Some(mode) = &h.mode_filter {
        let _ = write!(s, " (mode {mode} only)");
    }
    s.push('\n');

    let l = &r.linearizability;
    let _ = writeln!(
        s,
        "\nlinearizability ({} model): {} - {}: {} linearizable, {} not, {} unknown ({} ops searched, {:.0} ms, memo {} entries, peak {:.1} MiB)",
        l.model,
        l.valid.word(),
        n(l.keys, "key"),
        l.keys_valid,
        l.keys_invalid,
        l.keys_unknown,
        l.ops_searched,
        l.elapsed_ms,
        l.memo_entries,
        l.memo_peak_bytes as f64 / (1 << 20) as f64
    );
    for f in &l.failures {
        let register = match &f.register_then {
            Some(v) => format!("{v:?}"),
            None => "absent".to_string(),
        };
        let _ = writeln!(
            s,
            "  key {:?}: cannot linearize the {}; the longest linearizable prefix has {} ops, the register then held {register}",
            f.key,
            f.op.describe(),
            f.linearized_before
        );
    }
    if let Some(why) = l.unknown_reason {
        let why = match why {
            UnknownReason::Timeout => "the --timeout passed",
            UnknownReason::Memory => "the memo reached --max-memory-mib",
        };
        let _ = writeln!(
            s,
            "  search unfinished ({why}) for keys: {}",
            l.unknown_keys.join(", ")
        );
    }

    let st = &r.stale_reads;
    let _ = writeln!(
        s,
        "\nstale reads: {} of {} ok reads ({})",
        st.count,
        st.reads,
        pct(st.rate)
    );
    if st.count > 0 {
        let a = &st.age_ms;
        let _ = writeln!(
            s,
            "  age ms: p50 {:.1}, p90 {:.1}, p99 {:.1}, max {:.1}",
            a.p50, a.p90, a.p99, a.max
        );
        let _ = writeln!(s, "  how stale, how often: {}", by_age(&st.by_age));
        for (mode, c) in st.by_mode.iter().filter(|(m, _)| !m.is_empty()) {
            let _ = writeln!(
                s,
                "  mode {mode}: {} of {} ({}); {}",
                c.stale,
                c.reads,
                pct(c.rate),
                by_age(&c.by_age)
            );
        }
        for e in &st.examples {
            let _ = writeln!(s, "  {:.1} ms old: {}", e.age_ms, e.read.describe());
        }
    }
    if st.unexplained > 0 {
        let _ = writeln!(
            s,
            "  {} reads returned a value no write wrote, e.g. the {}",
            st.unexplained,
            st.unexplained_examples
                .first()
                .map_or_else(String::new, |o| o.describe())
        );
    }

    let lw = &r.lost_writes;
    let _ = writeln!(
        s,
        "\nlost acknowledged writes: {} keys, {} writes (final phase {}; {} keys verified, {} without a final read)",
        lw.count,
        lw.writes_lost,
        lw.final_phase
            .as_deref()
            .unwrap_or("none: reads after the last write"),
        lw.keys_verified,
        lw.keys_unverified
    );
    for e in &lw.examples {
        let _ = writeln!(
            s,
            "  key {:?}: {} lost ({} in all); final {}",
            e.key,
            e.write.describe(),
            e.writes_lost,
            e.final_read.describe()
        );
    }

    let se = &r.sessions;
    let _ = writeln!(
        s,
        "\nsessions: {} sessions, {} reads: {} read-your-writes and {} monotonic-read violations",
        se.sessions, se.reads_checked, se.read_your_writes, se.monotonic_reads
    );
    for v in &se.examples {
        let _ = writeln!(
            s,
            "  {} in session {:?}: {} after the {}",
            v.kind,
            v.session,
            v.read.describe(),
            v.earlier.describe()
        );
    }

    let _ = writeln!(s, "\navailability:");
    let _ = writeln!(
        s,
        "  {:<8} {:<14} {:<6} {:>8} {:>8} {:>8} {:>9}",
        "mode", "phase", "f", "ok", "fail", "info", "ok rate"
    );
    for row in &r.availability.rows {
        let c = &row.counts;
        let _ = writeln!(
            s,
            "  {:<8} {:<14} {:<6} {:>8} {:>8} {:>8} {:>9}",
            row.mode.as_deref().unwrap_or("-"),
            row.phase.as_deref().unwrap_or("-"),
            row.f.as_str(),
            c.ok,
            c.fail,
            c.info,
            pct(c.ok_rate)
        );
    }

    let verdict = match r.valid {
        Validity::Valid => "valid",
        Validity::Invalid => "INVALID",
        Validity::Unknown => "unknown (the search did not finish)",
    };
    let _ = write!(s, "\nverdict: {verdict} (exit {})", r.exit_code());
    s
}
