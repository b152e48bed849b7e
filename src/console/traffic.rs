//! The built-in traffic: a switch that runs a small steady client load against both
//! personalities, so the charts move with no other tool.
//!
//! Client side of the data path: the demo's own loops ([`crate::lab::demo::load`]), a few
//! per personality, reading and writing a handful of keys over HTTP exactly as a user would.
//! Every tick the console takes what they recorded (so memory stays bounded however long the
//! switch stays on) and counts operations per second and the reads the client itself saw
//! stale.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::Shared;
use super::snapshot::TrafficView;
use crate::lab::demo::load::{LoadShape, Recorder, Target, spawn_load};

/// Client loops per personality.
pub const WORKERS: usize = 2;

/// The load: two loops per personality over eight keys, 50 ms apart (about 40 operations a
/// second per personality while the apps answer at once).
fn shape() -> LoadShape {
    LoadShape {
        workers: WORKERS,
        keys: 8,
        pause: Duration::from_millis(50),
    }
}

/// The switch's state.
#[derive(Debug, Default)]
pub struct Traffic {
    running: Option<Running>,
    stale_seen: [u64; 2],
}

#[derive(Debug)]
struct Running {
    stop: Arc<AtomicBool>,
    recorder: Recorder,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Turns the traffic on or off; returns whether it runs now.
pub fn switch(shared: &Shared, on: bool) -> bool {
    let mut traffic = match shared.traffic.lock() {
        Ok(t) => t,
        Err(poisoned) => poisoned.into_inner(),
    };
    match (on, traffic.running.is_some()) {
        (true, false) => {
            let record = shared.record_now();
            let recorder = Recorder::default();
            let stop = Arc::new(AtomicBool::new(false));
            // One phase for as long as the switch is on: the keys stay `demo-<mode>-p0-<n>`.
            let phase = Arc::new(AtomicUsize::new(0));
            let mut tasks = spawn_load(
                Target::Cp,
                record.cp_url(),
                &shape(),
                recorder.clone(),
                stop.clone(),
                phase.clone(),
            );
            tasks.extend(spawn_load(
                Target::Ap,
                record.ap_url(),
                &shape(),
                recorder.clone(),
                stop.clone(),
                phase,
            ));
            traffic.stale_seen = [0, 0];
            traffic.running = Some(Running {
                stop,
                recorder,
                tasks,
            });
        }
        (false, true) => {
            if let Some(running) = traffic.running.take() {
                running.stop.store(true, Ordering::Relaxed);
                for task in running.tasks {
                    task.abort();
                }
            }
        }
        _ => {}
    }
    traffic.running.is_some()
}

/// What the loops did since the last tick, `seconds` ago.
pub fn tick(shared: &Shared, seconds: f64) -> TrafficView {
    let mut traffic = match shared.traffic.lock() {
        Ok(t) => t,
        Err(poisoned) => poisoned.into_inner(),
    };
    let Some(running) = traffic.running.as_ref() else {
        return TrafficView::default();
    };
    let now = Instant::now();
    let forget_before = now.checked_sub(Duration::from_secs(60)).unwrap_or(now);
    let ops = running.recorder.drain(forget_before);
    let mut done = [0u64; 2];
    let mut stale = [0u64; 2];
    for op in &ops {
        let i = usize::from(op.target == Target::Ap);
        done[i] += 1;
        stale[i] += u64::from(op.stale_age.is_some());
    }
    traffic.stale_seen[0] += stale[0];
    traffic.stale_seen[1] += stale[1];
    TrafficView {
        on: true,
        workers: WORKERS,
        ops_per_s: done.map(|n| n as f64 / seconds.max(1e-3)),
        client_stale_reads: traffic.stale_seen,
    }
}
