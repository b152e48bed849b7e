//! The load itself: the client tasks walking their schedules, and the final reads.
//!
//! Where it sits: spawned by [`super::runner`], one task per client per target, sharing a
//! [`Ctx`] (the HTTP client, the recorder, the statistics). Each operation is recorded as an
//! invoke right before it is sent and a completion right after; statistics take its latency
//! from the scheduled time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::{self, Answer};
use super::generator::{Chooser, Op, Schedule};
use super::recorder::{EventFields, Recorder};
use super::runner::Endpoints;
use super::spec::{Scenario, Target};
use super::stats::{Done, Stats};
use crate::check::{EventType, OpKind};

/// Shared by the client tasks.
pub(super) struct Ctx {
    pub(super) scenario: Scenario,
    pub(super) endpoints: Endpoints,
    pub(super) http: reqwest::Client,
    pub(super) recorder: Recorder,
    pub(super) stats: Mutex<Stats>,
    pub(super) t0: Instant,
    pub(super) next_process: AtomicU64,
    pub(super) phase_names: Vec<String>,
    /// Key prefix per target (index as in the scenario's targets).
    pub(super) prefixes: Vec<String>,
}

impl Ctx {
    fn phase_index(&self, offset: Duration) -> usize {
        let name = self.scenario.phase_at(offset);
        self.phase_names.iter().position(|n| n == name).unwrap_or(0)
    }

    pub(super) fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        // A poisoned lock means a client task panicked; the counts are still usable.
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends one operation, recording its invoke and completion; returns the answer.
    async fn operate(
        &self,
        target: Target,
        process: u64,
        op: &Op,
        session: Option<&str>,
        token: Option<&str>,
        phase: usize,
    ) -> Answer {
        let (f, key, value, expected) = match op {
            Op::Read(k) => (OpKind::Read, k.as_str(), None, None),
            Op::Write(k, v) => (OpKind::Write, k.as_str(), Some(v.as_str()), None),
            Op::Cas(k, e, n) => (OpKind::Cas, k.as_str(), Some(n.as_str()), Some(e.as_str())),
        };
        let phase_name = self.phase_names.get(phase).map_or("run", String::as_str);
        let mut fields = EventFields {
            process,
            kind: EventType::Invoke,
            f,
            key,
            value,
            expected,
            mode: target.as_str(),
            session,
            node: None,
            version: None,
            staleness_ms: None,
            phase: phase_name,
        };
        self.recorder.record(&fields);
        let answer = client::send(
            &self.http,
            self.endpoints.base(target),
            f,
            key,
            (expected, value),
            token,
        )
        .await;
        fields.kind = answer.event();
        fields.node = answer.node.as_deref();
        fields.version = answer.version;
        fields.staleness_ms = answer.staleness_ms;
        if f == OpKind::Read {
            fields.value = if answer.event() == EventType::Ok {
                answer.value.as_deref()
            } else {
                None
            };
        }
        self.recorder.record(&fields);
        answer
    }

    fn new_process(&self) -> u64 {
        self.next_process.fetch_add(1, Ordering::Relaxed)
    }
}

/// One client of one target: walks its schedule until the load ends.
pub(super) async fn client_task(ctx: Arc<Ctx>, ti: usize, target: Target, client: usize) {
    let w = &ctx.scenario.workload;
    let end = ctx.t0 + w.duration;
    let mut chooser = Chooser::new(w, target, client, &ctx.prefixes[ti]);
    let mut process = ctx.new_process();
    let session = (client < w.session_clients).then(|| format!("{}-s{client}", target.as_str()));
    let mut token: Option<String> = None;
    for due in Schedule::new(w, client) {
        let due_at = ctx.t0 + due;
        let now = Instant::now();
        if now < due_at {
            tokio::time::sleep_until(due_at.into()).await;
        } else if now >= end {
            break; // behind at the end: the rest of the schedule is dropped, and reported
        }
        let op = chooser.next_op(process);
        let sent = ctx.t0.elapsed();
        let phase = ctx.phase_index(sent);
        ctx.stats().sent(ti, sent.saturating_sub(due));
        let answer = ctx
            .operate(
                target,
                process,
                &op,
                session.as_deref(),
                token.as_deref(),
                phase,
            )
            .await;
        let done = Done {
            f: match op {
                Op::Read(_) => OpKind::Read,
                Op::Write(..) => OpKind::Write,
                Op::Cas(..) => OpKind::Cas,
            },
            kind: answer.event(),
            latency: due_at.elapsed(),
            at: ctx.t0.elapsed(),
            staleness_ms: answer.staleness_ms,
            stale: answer.stale,
        };
        ctx.stats().add(ti, phase, true, &done);
        if session.is_some() && answer.token.is_some() {
            token = answer.token;
        }
        if done.kind == EventType::Info {
            process = ctx.new_process(); // after an `info` a process issues nothing more
        }
    }
}

/// Reads every key of every target once, after the load (phase `final`).
pub(super) async fn final_reads(ctx: Arc<Ctx>) {
    use futures::StreamExt;
    let final_idx = ctx.phase_names.len().saturating_sub(1);
    let reads: Vec<(usize, Target, u64)> = ctx
        .scenario
        .targets
        .iter()
        .enumerate()
        .flat_map(|(ti, t)| (0..ctx.scenario.workload.keys).map(move |k| (ti, *t, k)))
        .collect();
    futures::stream::iter(reads)
        .for_each_concurrent(16, |(ti, target, k)| {
            let ctx = ctx.clone();
            async move {
                let op = Op::Read(Chooser::key_name(&ctx.prefixes[ti], k));
                let start = Instant::now();
                let process = ctx.new_process();
                let answer = ctx
                    .operate(target, process, &op, None, None, final_idx)
                    .await;
                let done = Done {
                    f: OpKind::Read,
                    kind: answer.event(),
                    latency: start.elapsed(),
                    at: ctx.t0.elapsed(),
                    staleness_ms: answer.staleness_ms,
                    stale: answer.stale,
                };
                ctx.stats().add(ti, final_idx, false, &done);
            }
        })
        .await;
}

/// A short tag unique to a run (its start, Unix ms, in base 36).
pub(super) fn run_tag(mut ms: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    while ms > 0 {
        out.push(DIGITS[(ms % 36) as usize]);
        ms /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}
