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
    report.valid = Validity::from_count(report.count);
    report
}
