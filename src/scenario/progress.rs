//! The progress bar: elapsed load time, and live counts per target (ok / fail / info, late),
//! redrawn five times a second. indicatif hides it when stderr is not a terminal.
//!
//! Where it sits: beside the load, read-only over the run's statistics.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::spec::Scenario;
use super::stats::Stats;

/// The bar of one run (or nothing when disabled).
pub struct Progress {
    bar: Option<ProgressBar>,
    targets: Vec<&'static str>,
    total_s: f64,
}

impl Progress {
    /// A bar over the load's duration, in milliseconds.
    pub fn start(enabled: bool, scenario: &Scenario) -> Progress {
        let targets = scenario.targets.iter().map(|t| t.as_str()).collect();
        let total_s = scenario.workload.duration.as_secs_f64();
        if !enabled {
            return Progress {
                bar: None,
                targets,
                total_s,
            };
        }
        let bar = ProgressBar::with_draw_target(
            Some(scenario.workload.duration.as_millis() as u64),
            ProgressDrawTarget::stderr_with_hz(5),
        );
        if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:20}] {msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(scenario.name.clone());
        Progress {
            bar: Some(bar),
            targets,
            total_s,
        }
    }

    /// Redraws with the counts so far.
    pub fn update(&self, elapsed: Duration, stats: &Stats, events: u64) {
        let Some(bar) = &self.bar else { return };
        bar.set_position(elapsed.as_millis() as u64);
        let parts: Vec<String> = self
            .targets
            .iter()
            .zip(&stats.targets)
            .map(|(name, s)| {
                format!(
                    "{name} {}/{}/{} late {}",
                    s.whole.ok, s.whole.fail, s.whole.info, s.late
                )
            })
            .collect();
        bar.set_message(format!(
            "{:.0}/{:.0} s  ok/fail/info: {}  ({events} events)",
            elapsed.as_secs_f64().min(self.total_s),
            self.total_s,
            parts.join("  ")
        ));
    }

    /// Replaces the live counts with a message.
    pub fn message(&self, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(msg.to_string());
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
