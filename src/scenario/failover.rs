//! The failover measures of one target: when it switched primaries, when the new primary had
//! a replica again, its first `ok` read and write on the new primary, and the writes it
//! acknowledged while no second copy could be made.
//!
//! Where it sits: in the verdict, after the check. It reads the sampler's view of the pair
//! ([`super::sampler::PairView`], every 250 ms) and the recorded history (each completion names
//! the node that answered). Sampled instants are known to within a period; every measure takes
//! the bound that makes it larger, so a threshold `max` on them is never passed by sampling.
//!
//! - **The switch**: the first sample in which the target believes another primary than in
//!   its first sample; it is timed at the sample before it (the belief is read when sampled).
//! - **Whole again**: the first sample at or after the switch in which the new primary has a
//!   linked replica ([`super::sampler::PairView::whole`]). Roles and link status come from the
//!   target's replication poll (every `REPLICATION_POLL_MS`, 500 ms by default), so the view
//!   is timed by that poll: whole again is when the *poll* of the view before it was made,
//!   the last moment the pair is known not to have been whole. A second copy could be made
//!   from some moment after it.
//! - `read_recovery_ms`: from "whole again" to the completion of the first `ok` read answered
//!   by the new primary (0 when one came earlier): how long reads lag the pair's recovery.
//! - `acked_writes_without_replica`: `ok` writes completed after the first fault step was
//!   applied and before the pair was seen whole again (when it never was: before the end of
//!   the load): acknowledgements no second copy backed.

use serde::Serialize;

use super::sampler::Sample;
use crate::check::{History, OpKind, Outcome};

/// What one target did through a failover (all offsets from the start of the load, ms).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FailoverTimes {
    /// The primary it believed at the start.
    pub from: Option<String>,
    /// The primary it switched to (`null`: no switch seen).
    pub to: Option<String>,
    /// The switch: the last sample that still showed the old belief.
    pub switch_ms: Option<f64>,
    /// The new primary had a linked replica again: the last poll that saw it without one.
    pub whole_again_ms: Option<f64>,
    /// First `ok` read answered by the new primary after the switch (its completion).
    pub first_ok_read_ms: Option<f64>,
    /// First `ok` write taken by the new primary after the switch (its completion).
    pub first_ok_write_ms: Option<f64>,
    /// From `whole_again_ms` to `first_ok_read_ms` (0 when the read came first).
    pub read_recovery_ms: Option<f64>,
    /// `ok` writes completed between the first fault and `whole_again_ms`.
    pub acked_writes_without_replica: Option<u64>,
}

/// Measures the target whose operations have mode `mode` in `history`; `fault_ms` is when
/// the first fault step was applied, `end_ms` the end of the load.
pub fn measure(
    history: &History,
    mode: &str,
    samples: &[Sample],
    fault_ms: Option<f64>,
    end_ms: f64,
    started_unix_ms: u64,
) -> FailoverTimes {
    let views: Vec<(f64, &super::sampler::PairView)> = samples
        .iter()
        .filter_map(|s| s.pair.as_ref().map(|p| (s.t_ms as f64, p)))
        .collect();
    // When the poll behind view `i` was made, as an offset (the sample's time without one).
    let polled = |i: usize| {
        views.get(i).map(|(t, v)| {
            v.polled_at_unix_ms
                .map_or(*t, |p| p as f64 - started_unix_ms as f64)
        })
    };
    let mut out = FailoverTimes {
        from: views.first().map(|(_, v)| v.primary.clone()),
        ..FailoverTimes::default()
    };
    // The sample before index `i` (the bound that makes what follows it larger).
    let before = |i: usize| i.checked_sub(1).and_then(|j| views.get(j)).map(|(t, _)| *t);
    let switch = views
        .iter()
        .position(|(_, v)| Some(&v.primary) != out.from.as_ref());
    if let Some(i) = switch {
        out.to = views.get(i).map(|(_, v)| v.primary.clone());
        out.switch_ms = before(i);
        let whole = views
            .iter()
            .enumerate()
            .skip(i)
            .find(|(_, (_, v))| v.whole && Some(&v.primary) == out.to.as_ref())
            .map(|(j, _)| j);
        out.whole_again_ms = whole.and_then(|j| j.checked_sub(1)).and_then(polled);
    }
    let mode_id = history.label_id(mode);
    let ms = |ns: u64| ns as f64 / 1e6;
    let ops = || {
        history
            .ops
            .iter()
            .filter(move |op| op.mode == mode_id && op.outcome == Outcome::Ok)
    };
    if let (Some(to), Some(switch_ms)) = (&out.to, out.switch_ms) {
        let node = history.label_id(to);
        let first = |f: OpKind| {
            ops()
                .filter(|op| {
                    let is_f = op.f == f || (f == OpKind::Write && op.f == OpKind::Cas);
                    is_f && op.node == node && ms(op.invoke) >= switch_ms
                })
                .filter_map(|op| op.complete.map(ms))
                .min_by(f64::total_cmp)
        };
        out.first_ok_read_ms = first(OpKind::Read);
        out.first_ok_write_ms = first(OpKind::Write);
        if let (Some(read), Some(whole)) = (out.first_ok_read_ms, out.whole_again_ms) {
            out.read_recovery_ms = Some((read - whole).max(0.0));
        }
    }
    if let Some(fault) = fault_ms {
        let until = out.whole_again_ms.unwrap_or(end_ms);
        let n = ops()
            .filter(|op| op.f != OpKind::Read)
            .filter_map(|op| op.complete.map(ms))
            .filter(|&t| t > fault && t < until)
            .count();
        out.acked_writes_without_replica = Some(n as u64);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::check::EventType;
    use crate::check::event::Event;
    use crate::scenario::sampler::PairView;

    /// A sample at `t_ms` whose replication poll was made 100 ms earlier.
    fn sample(t_ms: u64, primary: &str, whole: bool) -> Sample {
        Sample {
            t_ms,
            breakers: BTreeMap::new(),
            g2_staleness_ms: None,
            pair: Some(PairView {
                primary: primary.into(),
                whole,
                replica_staleness_ms: Some(0),
                polled_at_unix_ms: Some(START + t_ms - 100),
            }),
        }
    }

    const START: u64 = 1_700_000_000_000;

    /// (f, invoke ms, complete ms, node) operations of mode `cp`, all `ok`.
    fn history(ops: &[(OpKind, u64, u64, &str)]) -> History {
        let mut events = Vec::new();
        for (p, &(f, a, b, node)) in ops.iter().enumerate() {
            let value = (f == OpKind::Write).then(|| format!("v{p}"));
            let mut invoke = Event::new(0, p as u64, EventType::Invoke, f, "k", value.clone(), a);
            let mut ok = Event::new(0, p as u64, EventType::Ok, f, "k", value, b);
            invoke.mode = Some("cp".into());
            ok.mode = Some("cp".into());
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
    fn times_the_switch_the_rejoin_and_the_first_answers_of_the_new_primary() {
        use OpKind::{Read, Write};
        let samples = [
            sample(1000, "g1", true),
            sample(1250, "g1", false), // the cut
            sample(1500, "g1", false),
            sample(1750, "g2", false), // switched, no replica yet
            sample(2000, "g2", false),
            sample(2250, "g2", true), // whole again
        ];
        let h = history(&[
            (Write, 900, 950, "g1"),   // before the fault
            (Read, 1600, 1610, "g1"),  // the old primary, before the switch
            (Write, 1300, 1320, "g1"), // acknowledged alone
            (Read, 2100, 2300, "g2"),
            (Write, 2200, 2400, "g2"),
        ]);
        let f = measure(&h, "cp", &samples, Some(1200.0), 5000.0, START);
        assert_eq!(
            (f.from.as_deref(), f.to.as_deref()),
            (Some("g1"), Some("g2"))
        );
        assert_eq!(f.switch_ms, Some(1500.0));
        // The poll behind the last view without a replica was made at 1900 ms.
        assert_eq!(f.whole_again_ms, Some(1900.0));
        assert_eq!(f.first_ok_read_ms, Some(2300.0));
        assert_eq!(f.first_ok_write_ms, Some(2400.0));
        assert_eq!(f.read_recovery_ms, Some(400.0));
        assert_eq!(f.acked_writes_without_replica, Some(1));
        // Never whole again: counted to the end of the load, no read recovery.
        let f = measure(&h, "cp", &samples[..5], Some(1200.0), 5000.0, START);
        assert_eq!((f.whole_again_ms, f.read_recovery_ms), (None, None));
        assert_eq!(f.acked_writes_without_replica, Some(2));
        // No switch: nothing to time.
        let f = measure(&h, "cp", &samples[..3], Some(1200.0), 5000.0, START);
        assert_eq!((f.to, f.switch_ms, f.first_ok_read_ms), (None, None, None));
    }
}
