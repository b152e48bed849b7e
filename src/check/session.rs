//! Session guarantees: read-your-writes and monotonic reads, per `session`, per key.
//!
//! Where it sits: a checker run by [`super::check_history`] over the `Sources` index (`sources.rs`); it
//! looks only at operations that carry a `session`. "Earlier" is real time: `A` precedes `B`
//! when `A` completed before `B` was invoked. Values need not be unique, so each rule holds
//! unless it fails whichever write a value came from (see `docs/decisions.md`):
//! - **read-your-writes**: an `ok` read `R` of key `k` after the session's `ok` write (or
//!   `ok` cas) `W` to
//!   `k` must return a value some write could have produced at or after `W`: a write of `R`'s
//!   value invoked before `R` completed and not definitely finished before `W` began. An
//!   absent value after `W` is a violation.
//! - **monotonic reads**: an `ok` read `R2` after the session's `ok` read `R1` of the same key
//!   must not return a value all of whose possible writes definitely finished before every
//!   possible write of `R1`'s value began. Absent after a present value is a violation.
//!
//! Reads whose value no write wrote are left to the stale-read section ("unexplained").

use hashbrown::HashMap;

use serde::Serialize;

use super::CheckOptions;
use super::event::OpKind;
use super::history::{History, Op, Outcome};
use super::report::{OpRef, Validity};
use super::sources::Sources;

/// One violated session guarantee.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionViolation {
    /// `read-your-writes` or `monotonic-reads`.
    pub kind: &'static str,
    /// The session.
    pub session: String,
    /// The read that broke it.
    pub read: OpRef,
    /// The session's earlier write (read-your-writes) or read (monotonic reads) it ignored.
    pub earlier: OpRef,
}

/// The session section of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionReport {
    /// `false` when any session guarantee is violated.
    pub valid: Validity,
    /// Distinct sessions seen.
    pub sessions: usize,
    /// `ok` reads that carry a session.
    pub reads_checked: usize,
    /// Read-your-writes violations.
    pub read_your_writes: usize,
    /// Monotonic-read violations.
    pub monotonic_reads: usize,
    /// The first violations in history order (up to `max_examples`).
    pub examples: Vec<SessionViolation>,
}

/// `(time it is known from, constraint, op)` sorted by the first, with running maxima of the
/// second: "the strongest constraint among those known before `t`".
struct Floor<'h> {
    known: Vec<u64>,
    best: Vec<(u64, &'h Op)>,
}

impl<'h> Floor<'h> {
    fn new(mut items: Vec<(u64, u64, &'h Op)>) -> Floor<'h> {
        items.sort_by_key(|&(t, _, _)| t);
        let mut best: Vec<(u64, &Op)> = Vec::with_capacity(items.len());
        for &(_, c, op) in &items {
            let keep = best.last().is_some_and(|&(b, _)| b >= c);
            let next = match best.last() {
                Some(&prev) if keep => prev,
                _ => (c, op),
            };
            best.push(next);
        }
        Floor {
            known: items.iter().map(|&(t, _, _)| t).collect(),
            best,
        }
    }

    /// The strongest constraint known strictly before `t`.
    fn before(&self, t: u64) -> Option<(u64, &'h Op)> {
        let n = self.known.partition_point(|&k| k < t);
        n.checked_sub(1).and_then(|i| self.best.get(i)).copied()
    }
}

pub(crate) fn check(history: &History, sources: &Sources, opts: &CheckOptions) -> SessionReport {
    // Per (session, key): the session's ok writes and ok reads.
    type WritesAndReads<'h> = (Vec<&'h Op>, Vec<&'h Op>);
    let mut groups: HashMap<(u32, u32), WritesAndReads> = HashMap::new();
    let mut sessions = hashbrown::HashSet::new();
    for op in &history.ops {
        let Some(s) = op.session else { continue };
        sessions.insert(s);
        if op.outcome != Outcome::Ok {
            continue;
        }
        let g = groups.entry((s, op.key)).or_default();
        match op.f {
            OpKind::Write | OpKind::Cas => g.0.push(op),
            OpKind::Read => g.1.push(op),
        }
    }
    let mut report = SessionReport {
        valid: Validity::Valid,
        sessions: sessions.len(),
        reads_checked: 0,
        read_your_writes: 0,
        monotonic_reads: 0,
        examples: Vec::new(),
    };
    let mut found: Vec<(u64, &'static str, &Op, &Op)> = Vec::new();
    for (writes, reads) in groups.values() {
        // A session write is known from its completion; it requires values reaching its invoke.
        let writes = Floor::new(
            writes
                .iter()
                .map(|w| (w.complete_or_max(), w.invoke, *w))
                .collect(),
        );
        // A session read is known from its completion; it requires values reaching the
        // earliest possible start of what it read.
        let starts = reads.iter().filter_map(|r| {
            let start = sources.earliest_start(r.key, r.value?, r.complete_or_max())?;
            Some((r.complete_or_max(), start, *r))
        });
        let earlier_reads = Floor::new(starts.collect());
        for r in reads {
            report.reads_checked += 1;
            // Latest end of a write that could have produced this value; 0 for absent.
            let reach = match r.value {
                None => Some(0),
                Some(v) => sources.latest_end(r.key, v, r.complete_or_max()),
            };
            let Some(reach) = reach else { continue };
            let absent = r.value.is_none();
            if let Some((need, w)) = writes.before(r.invoke)
                && (absent || reach < need)
            {
                report.read_your_writes += 1;
                found.push((r.index, "read-your-writes", r, w));
            }
            if let Some((need, r1)) = earlier_reads.before(r.invoke)
                && (absent || reach < need)
            {
                report.monotonic_reads += 1;
                found.push((r.index, "monotonic-reads", r, r1));
            }
        }
    }
    found.sort_by_key(|&(index, kind, _, _)| (index, kind));
    report.examples = found
        .into_iter()
        .take(opts.max_examples)
        .map(|(_, kind, r, earlier)| SessionViolation {
            kind,
            session: r
                .session
                .map_or_else(String::new, |s| history.label(s).to_string()),
            read: OpRef::new(history, r),
            earlier: OpRef::new(history, earlier),
        })
        .collect();
    report.valid = Validity::from_count(report.read_your_writes + report.monotonic_reads);
    report
}
