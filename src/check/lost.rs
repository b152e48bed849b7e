//! Lost acknowledged writes: keys whose last `ok` write is neither the final value read nor
//! overwritten by a later write.
//!
//! Where it sits: a checker run by [`super::check_history`] over the `Sources` index (`sources.rs`).
//! An `ok` cas is an acknowledged write of its new value; an `info` one may have applied.
//! - The **final read** of a key is its last `ok` read (by invoke time) in the final phase:
//!   `--final-phase NAME`, by default the phase of the last event that names one. A history
//!   with no phases at all uses, per key, the reads invoked after every `ok` write to the key
//!   completed and every `info` write was invoked.
//! - An `ok` write `W` that completed before the final read `F` began must be visible in
//!   `F`: `F`'s value must come from `W` or from a write that may follow it, that is, some
//!   write of `F`'s value (`ok` or `info`) invoked before `F` completed and not definitely
//!   finished before `W` began. Otherwise `W` is lost. An absent final value loses every
//!   acknowledged write (there are no deletes).
//! - Keys with acknowledged writes but no final read are *unverified* and counted.
//!
//! The report names every lost write ([`LostAck`]: key, value, when it was acknowledged,
//! which node took it), not only the latest per key: after a split brain each one is a write
//! a client was told succeeded and that the deposed primary threw away.

use serde::Serialize;

use super::CheckOptions;
use super::event::OpKind;
use super::history::{History, Op, Outcome};
use super::report::{OpRef, Validity};
use super::sources::Sources;

/// A key that lost acknowledged writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LostWrite {
    /// The key.
    pub key: String,
    /// The latest acknowledged write that the final read does not reflect.
    pub write: OpRef,
    /// How many acknowledged writes to the key are lost.
    pub writes_lost: usize,
    /// The `index` of each of them (for the picture; the JSON gives their number).
    #[serde(skip)]
    pub lost_indices: Vec<u64>,
    /// The final read.
    pub final_read: OpRef,
}

/// One acknowledged write the final state does not reflect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LostAck {
    /// The key.
    pub key: String,
    /// The value it wrote (a cas's new value).
    pub value: Option<String>,
    /// When it was acknowledged: its completion time in the history, ms from the history's
    /// origin (the start of the run for the scenario runner).
    pub acknowledged_ms: f64,
    /// When it was sent (its invoke), ms.
    pub invoked_ms: f64,
    /// The node that took it (the completion's `node`; `null` when the history does not say).
    pub node: Option<String>,
    /// Its mode, when the history has one.
    pub mode: Option<String>,
    /// Client process.
    pub process: u64,
    /// `index` of its invoke event.
    pub index: u64,
    /// Line of its invoke event.
    pub line: usize,
}

impl LostAck {
    fn new(history: &History, op: &Op) -> LostAck {
        let ms = |ns: u64| ns as f64 / 1e6;
        let label = |l: Option<u32>| l.map(|l| history.label(l).to_string());
        LostAck {
            key: history.key_name(op.key).to_string(),
            value: history.value_text(op.value),
            acknowledged_ms: ms(op.complete.unwrap_or(op.invoke)),
            invoked_ms: ms(op.invoke),
            node: label(op.node),
            mode: label(op.mode),
            process: op.process,
            index: op.index,
            line: op.line,
        }
    }

    /// `"k" = "v" acknowledged at 3.214 s by g1 (index 7, line 8)`.
    pub fn describe(&self) -> String {
        let value = self
            .value
            .as_deref()
            .map_or_else(|| "absent".to_string(), |v| format!("{v:?}"));
        format!(
            "{:?} = {value} acknowledged at {:.3} s by {} (index {}, line {})",
            self.key,
            self.acknowledged_ms / 1000.0,
            self.node.as_deref().unwrap_or("an unnamed node"),
            self.index,
            self.line
        )
    }
}

/// The lost-write section of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LostWritesReport {
    /// `false` when any acknowledged write is lost.
    pub valid: Validity,
    /// The final phase used (`null`: the history has no phases).
    pub final_phase: Option<String>,
    /// Keys with at least one acknowledged (`ok`) write.
    pub keys_written: usize,
    /// Of those, keys with a final read.
    pub keys_verified: usize,
    /// Of those, keys without one: nothing can be said about them.
    pub keys_unverified: usize,
    /// Acknowledged writes on verified keys that the final read had to reflect.
    pub writes_checked: usize,
    /// Keys that lost acknowledged writes.
    pub count: usize,
    /// Acknowledged writes lost, over all keys.
    pub writes_lost: usize,
    /// The first keys that lost writes (up to `max_examples`), in key-name order.
    pub examples: Vec<LostWrite>,
    /// Every lost acknowledged write, in the order they were acknowledged (then by key).
    pub lost: Vec<LostAck>,
}

pub(crate) fn check(history: &History, sources: &Sources, opts: &CheckOptions) -> LostWritesReport {
    let final_phase = match &opts.final_phase {
        Some(name) => Some(Some(name.clone())),
        None => history
            .last_phase
            .map(|p| Some(history.label(p).to_string())),
    };
    // Outer None: no phases; Some(None)/Some(Some(id)): the phase by name, id if present.
    let phase_id = final_phase
        .as_ref()
        .map(|name| name.as_deref().and_then(|n| history.label_id(n)));
    let keys = history.key_count();
    let mut writes: Vec<Vec<&Op>> = vec![Vec::new(); keys];
    let mut writes_end = vec![0u64; keys];
    let mut reads: Vec<Vec<&Op>> = vec![Vec::new(); keys];
    for op in &history.ops {
        let k = op.key as usize;
        match (op.f, op.outcome) {
            (OpKind::Write | OpKind::Cas, Outcome::Ok) => {
                if let Some(w) = writes.get_mut(k) {
                    w.push(op);
                }
                if let Some(e) = writes_end.get_mut(k) {
                    *e = (*e).max(op.complete.unwrap_or(op.invoke));
                }
            }
            (OpKind::Write | OpKind::Cas, Outcome::Info) => {
                if let Some(e) = writes_end.get_mut(k) {
                    *e = (*e).max(op.invoke);
                }
            }
            (OpKind::Read, Outcome::Ok) => {
                let in_final = match phase_id {
                    Some(id) => id.is_some() && op.phase == id,
                    None => true,
                };
                if let (true, Some(r)) = (in_final, reads.get_mut(k)) {
                    r.push(op);
                }
            }
            _ => {}
        }
    }
    let mut report = LostWritesReport {
        valid: Validity::Valid,
        final_phase: final_phase.flatten(),
        keys_written: 0,
        keys_verified: 0,
        keys_unverified: 0,
        writes_checked: 0,
        count: 0,
        writes_lost: 0,
        examples: Vec::new(),
        lost: Vec::new(),
    };
    let mut examples = Vec::new();
    for (k, ws) in writes.iter().enumerate() {
        if ws.is_empty() {
            continue;
        }
        report.keys_written += 1;
        let last_write = writes_end.get(k).copied().unwrap_or(0);
        let final_read = reads.get(k).and_then(|rs| {
            rs.iter()
                .filter(|r| phase_id.is_some() || r.invoke > last_write)
                .max_by_key(|r| (r.invoke, r.complete))
        });
        let Some(&f) = final_read else {
            report.keys_unverified += 1;
            continue;
        };
        report.keys_verified += 1;
        let f_complete = f.complete_or_max();
        // Latest end of a write that could have produced F's value (None: none could).
        let reach = f
            .value
            .and_then(|v| sources.latest_end(f.key, v, f_complete));
        let mut lost: Option<&Op> = None;
        let mut n_lost = 0;
        let mut lost_indices = Vec::new();
        for w in ws.iter().filter(|w| w.complete_or_max() < f.invoke) {
            report.writes_checked += 1;
            if reach.is_none_or(|end| end < w.invoke) {
                n_lost += 1;
                lost_indices.push(w.index);
                report.lost.push(LostAck::new(history, w));
                if lost.is_none_or(|l| w.complete > l.complete) {
                    lost = Some(w);
                }
            }
        }
        if let Some(w) = lost {
            report.count += 1;
            report.writes_lost += n_lost;
            examples.push(LostWrite {
                key: history.key_name(k as u32).to_string(),
                write: OpRef::new(history, w),
                writes_lost: n_lost,
                lost_indices,
                final_read: OpRef::new(history, f),
            });
        }
    }
    examples.sort_by(|a, b| a.key.cmp(&b.key));
    examples.truncate(opts.max_examples);
    report.examples = examples;
    report.lost.sort_by(|a, b| {
        a.acknowledged_ms
            .total_cmp(&b.acknowledged_ms)
            .then_with(|| a.key.cmp(&b.key))
    });
    report.valid = Validity::from_count(report.count);
    report
}

#[cfg(test)]
mod tests {
    use crate::check::event::Event;
    use crate::check::{CheckOptions, EventType, History, OpKind, check_history};

    /// (f, key, value, invoke ms, complete ms, node, phase).
    type Spec<'a> = (OpKind, &'a str, Option<&'a str>, u64, u64, &'a str, &'a str);

    /// Builds a history of `ok` operations, each its own process, events in time order.
    fn history(ops: &[Spec<'_>]) -> History {
        let mut events = Vec::new();
        for (p, &(f, key, value, a, b, node, phase)) in ops.iter().enumerate() {
            let value = value.map(str::to_string);
            let invoke_value = if f == OpKind::Read {
                None
            } else {
                value.clone()
            };
            let mut invoke = Event::new(0, p as u64, EventType::Invoke, f, key, invoke_value, a);
            let mut ok = Event::new(0, p as u64, EventType::Ok, f, key, value, b);
            invoke.phase = Some(phase.into());
            ok.phase = Some(phase.into());
            ok.node = Some(node.into());
            events.push(invoke);
            events.push(ok);
        }
        events.sort_by_key(|e| e.time);
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
            e.time *= 1_000_000;
        }
        History::from_events(&events).unwrap() // ok: test code
    }

    #[test]
    fn every_lost_write_is_listed_with_its_acknowledgement_and_node() {
        use OpKind::{Read, Write};
        let h = history(&[
            (Write, "a", Some("a1"), 0, 10, "g1", "run"),
            // Two writes the deposed g1 took after the last one g2 has: both lost.
            (Write, "a", Some("a2"), 20, 30, "g1", "run"),
            (Write, "a", Some("a3"), 40, 50, "g1", "run"),
            (Write, "b", Some("b1"), 5, 15, "g2", "run"),
            (Write, "b", Some("b2"), 25, 35, "g1", "run"),
            (Read, "a", Some("a1"), 100, 110, "g2", "final"),
            (Read, "b", Some("b1"), 100, 110, "g2", "final"),
        ]);
        let opts = CheckOptions {
            final_phase: Some("final".into()),
            ..CheckOptions::default()
        };
        let r = check_history(&h, &opts).lost_writes;
        assert_eq!((r.count, r.writes_lost), (2, 3));
        let listed: Vec<(&str, Option<&str>, f64, Option<&str>)> = r
            .lost
            .iter()
            .map(|l| {
                (
                    l.key.as_str(),
                    l.value.as_deref(),
                    l.acknowledged_ms,
                    l.node.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("a", Some("a2"), 30.0, Some("g1")),
                ("b", Some("b2"), 35.0, Some("g1")),
                ("a", Some("a3"), 50.0, Some("g1")),
            ]
        );
        assert_eq!(r.lost[0].invoked_ms, 20.0);
        assert!(
            r.lost[0]
                .describe()
                .starts_with("\"a\" = \"a2\" acknowledged at 0.030 s by g1")
        );
        // The per-key examples keep the latest lost write of each key.
        assert_eq!(r.examples[0].write.value.as_deref(), Some("a3"));
        assert_eq!(r.examples[0].writes_lost, 2);
    }
}
