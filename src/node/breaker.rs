//! The circuit breaker in front of each dependency (`g1`, `g2`, and CP's `replication`).
//!
//! Data path: a mode policy asks a node client for a call; the node client asks its
//! [`Breaker`] for a [`Permit`] first, and tells the permit how the call went. The state
//! machine is `failsafe`'s (consecutive-failure policy, open interval with exponential backoff);
//! this wrapper adds what operators need around it: the current state, the consecutive failure
//! count and the time of the last transition for `GET /circuit-breaker`, a
//! `CIRCUIT_BREAKER_STATE_CHANGE` log line and a counted metric for every transition, and a
//! single trial call while half-open (other callers keep failing fast until the trial answers).
//!
//! Evidence-driven trials: a blind backoff learns that a dependency is back only at its next
//! trial, up to `BREAKER_MAX_OPEN_MS` after the heal. So whoever sees the dependency work again
//! outside the breaker (a node's probe answering, the heartbeat arriving on the replica, the
//! primary regaining its replica) tells it with [`Breaker::evidence`], stamped with the time
//! the evidence reflects. Evidence newer than the breaker's last failure makes an open breaker
//! half-open at once: the next call is the trial, and it alone decides. A trial that fails
//! opens it again and needs fresh evidence (or the backoff, which keeps running as the
//! fallback), so a dependency that still fails gets at most one trial per piece of evidence
//! newer than its last failure, never a stream of calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use failsafe::StateMachine;
use failsafe::failure_policy::{ConsecutiveFailures, consecutive_failures};
use prometheus::{IntCounter, IntGauge};

use crate::metrics::Metrics;
use crate::time::unix_ms;

/// Threshold and open intervals of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// First open interval; each failed half-open trial doubles it.
    pub open_interval: Duration,
    /// The longest open interval.
    pub max_open_interval: Duration,
}

/// The three states, with the gauge values of `circuit_breaker_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed = 0,
    /// One trial call goes through; its answer closes or reopens the breaker.
    HalfOpen = 1,
    /// Calls fail at once.
    Open = 2,
}

impl BreakerState {
    /// `closed`, `half_open` or `open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Open => "open",
        }
    }

    fn from_u8(value: u8) -> BreakerState {
        match value {
            0 => BreakerState::Closed,
            1 => BreakerState::HalfOpen,
            _ => BreakerState::Open,
        }
    }
}

/// Open intervals growing exponentially from `next` to `max` (failsafe's own exponential
/// backoff works in whole seconds; the lab wants milliseconds).
#[derive(Debug, Clone)]
struct OpenIntervals {
    next: Duration,
    max: Duration,
}

impl Iterator for OpenIntervals {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let current = self.next;
        self.next = current.saturating_mul(2).min(self.max);
        Some(current)
    }
}

/// What the breaker tracks beside failsafe's state machine, shared with its instrument.
#[derive(Debug)]
struct Tracked {
    name: &'static str,
    mode: &'static str,
    threshold: u32,
    state: AtomicU8,
    consecutive_failures: AtomicU32,
    last_transition_ms: AtomicU64,
    transitions: AtomicU64,
    trial_in_flight: AtomicBool,
    /// Evidence newer than the last failure arrived while open: the next call is the trial.
    evidence_armed: AtomicBool,
    /// Unix ms of the last failure counted (a failed trial included).
    last_failure_ms: AtomicU64,
    state_gauge: IntGauge,
    to_closed: IntCounter,
    to_half_open: IntCounter,
    to_open: IntCounter,
}

impl Tracked {
    fn enter(&self, to: BreakerState) {
        let from = BreakerState::from_u8(self.state.swap(to as u8, Ordering::SeqCst));
        if from == to {
            // failsafe reports `closed` once at construction; that is not a transition.
            return;
        }
        self.last_transition_ms.store(unix_ms(), Ordering::Relaxed);
        self.transitions.fetch_add(1, Ordering::Relaxed);
        self.state_gauge.set(to as i64);
        match to {
            BreakerState::Closed => self.to_closed.inc(),
            BreakerState::HalfOpen => self.to_half_open.inc(),
            BreakerState::Open => self.to_open.inc(),
        }
        let failures = self.consecutive_failures.load(Ordering::Relaxed);
        if to == BreakerState::Open {
            tracing::warn!(
                breaker = self.name,
                mode = self.mode,
                from = from.as_str(),
                to = to.as_str(),
                consecutive_failures = failures,
                "CIRCUIT_BREAKER_STATE_CHANGE"
            );
        } else {
            tracing::info!(
                breaker = self.name,
                mode = self.mode,
                from = from.as_str(),
                to = to.as_str(),
                consecutive_failures = failures,
                "CIRCUIT_BREAKER_STATE_CHANGE"
            );
        }
    }
}

/// failsafe's instrument hook, forwarding state changes to [`Tracked`].
#[derive(Debug, Clone)]
struct Observer(Arc<Tracked>);

impl failsafe::Instrument for Observer {
    fn on_call_rejected(&self) {}

    fn on_open(&self) {
        self.0.enter(BreakerState::Open);
    }

    fn on_half_open(&self) {
        self.0.enter(BreakerState::HalfOpen);
    }

    fn on_closed(&self) {
        self.0.enter(BreakerState::Closed);
    }
}

/// A circuit breaker for one dependency. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Breaker {
    machine: StateMachine<ConsecutiveFailures<OpenIntervals>, Observer>,
    tracked: Arc<Tracked>,
}

/// A call the breaker refused: it is open, or half-open with its trial call under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker {name} is {}", state.as_str())]
pub struct Rejected {
    /// The breaker.
    pub name: &'static str,
    /// Its state when it refused.
    pub state: BreakerState,
}

/// The right to make one call. Report how it went with [`success`](Permit::success) or
/// [`failure`](Permit::failure); a permit dropped without either (a cancelled request) changes
/// nothing but frees the half-open trial.
#[derive(Debug)]
#[must_use = "report the call's result on the permit"]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    trial: Trial,
}

/// What a permit is: an ordinary call, the backoff's half-open trial (failsafe's), or a trial
/// that evidence allowed while failsafe's open interval still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trial {
    No,
    Backoff,
    Evidence,
}

impl Permit<'_> {
    /// The call reached the dependency and it answered.
    pub fn success(self) {
        let b = self.breaker;
        b.tracked.consecutive_failures.store(0, Ordering::Relaxed);
        if self.trial == Trial::Evidence {
            // failsafe is still open: close it, which also forgets its backoff.
            b.tracked.evidence_armed.store(false, Ordering::SeqCst);
            b.machine.reset();
            // failsafe may have moved to half-open on its own meanwhile (its interval ran
            // out under the trial); `reset` closes that too.
        } else {
            b.machine.on_success();
            if self.trial == Trial::Backoff {
                b.tracked.evidence_armed.store(false, Ordering::SeqCst);
            }
        }
    }

    /// The call timed out or could not reach the dependency.
    pub fn failure(self) {
        let b = self.breaker;
        b.tracked
            .consecutive_failures
            .fetch_add(1, Ordering::Relaxed);
        b.tracked
            .last_failure_ms
            .fetch_max(unix_ms(), Ordering::SeqCst);
        match self.trial {
            Trial::Evidence => {
                // failsafe is open (its interval still runs): the breaker shows open again
                // and waits for fresher evidence or the end of that interval.
                b.tracked.evidence_armed.store(false, Ordering::SeqCst);
                b.machine.on_error();
                b.tracked.enter(BreakerState::Open);
            }
            Trial::Backoff => {
                b.tracked.evidence_armed.store(false, Ordering::SeqCst);
                b.machine.on_error();
            }
            Trial::No => b.machine.on_error(),
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.trial != Trial::No {
            self.breaker
                .tracked
                .trial_in_flight
                .store(false, Ordering::SeqCst);
        }
    }
}

/// A point-in-time view of a breaker, for `GET /circuit-breaker`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BreakerSnapshot {
    /// `g1`, `g2` or `replication`.
    pub name: &'static str,
    /// `closed`, `half_open` or `open`.
    pub state: &'static str,
    /// 0, 1 or 2, as on the gauge.
    pub state_code: u8,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Failures that open it.
    pub failure_threshold: u32,
    /// Unix time of the last transition in ms, or `null` if it never left `closed`.
    pub last_transition_unix_ms: Option<u64>,
    /// Transitions since start.
    pub transitions: u64,
}

impl Breaker {
    /// A closed breaker named `name` (`g1`, `g2`, `replication`), reporting into `metrics`.
    pub fn new(name: &'static str, settings: BreakerSettings, metrics: &Metrics) -> Breaker {
        let mode = metrics.mode();
        let to = |state: &str| {
            metrics
                .breaker_transitions
                .with_label_values(&[mode, name, state])
        };
        let tracked = Arc::new(Tracked {
            name,
            mode,
            threshold: settings.failure_threshold,
            state: AtomicU8::new(BreakerState::Closed as u8),
            consecutive_failures: AtomicU32::new(0),
            last_transition_ms: AtomicU64::new(0),
            transitions: AtomicU64::new(0),
            trial_in_flight: AtomicBool::new(false),
            evidence_armed: AtomicBool::new(false),
            last_failure_ms: AtomicU64::new(0),
            state_gauge: metrics.breaker_state.with_label_values(&[mode, name]),
            to_closed: to("closed"),
            to_half_open: to("half_open"),
            to_open: to("open"),
        });
        tracked.state_gauge.set(0);
        let intervals = OpenIntervals {
            next: settings.open_interval,
            max: settings.max_open_interval.max(settings.open_interval),
        };
        let policy = consecutive_failures(settings.failure_threshold.max(1), intervals);
        Breaker {
            machine: StateMachine::new(policy, Observer(tracked.clone())),
            tracked,
        }
    }

    /// Asks to make one call. Fails at once while open without evidence, and while half-open
    /// with the trial call already under way.
    pub fn permit(&self) -> Result<Permit<'_>, Rejected> {
        let trial = if self.machine.is_call_permitted() {
            if self.state() == BreakerState::HalfOpen {
                Trial::Backoff
            } else {
                Trial::No
            }
        } else if self.tracked.evidence_armed.load(Ordering::SeqCst) {
            Trial::Evidence
        } else {
            return Err(self.rejected());
        };
        if trial != Trial::No && self.tracked.trial_in_flight.swap(true, Ordering::SeqCst) {
            return Err(self.rejected());
        }
        Ok(Permit {
            breaker: self,
            trial,
        })
    }

    /// Evidence that the dependency works again, as it was at `seen_at_ms` (Unix ms): a probe
    /// sent then that answered, data written then that reached the replica. Ignored unless the
    /// breaker is open and the evidence is newer than its last failure; then the breaker turns
    /// half-open at once and lets the next call through as its trial.
    pub fn evidence(&self, seen_at_ms: u64) {
        let t = &self.tracked;
        if self.state() != BreakerState::Open
            || seen_at_ms <= t.last_failure_ms.load(Ordering::SeqCst)
        {
            return;
        }
        if !t.evidence_armed.swap(true, Ordering::SeqCst) {
            t.enter(BreakerState::HalfOpen);
        }
    }

    /// Unix ms of the last failure this breaker counted (0: none yet). Evidence must be newer.
    pub fn last_failure_unix_ms(&self) -> u64 {
        self.tracked.last_failure_ms.load(Ordering::SeqCst)
    }

    /// Closes the breaker now, forgetting its failure count and its backoff (logged and counted
    /// as a transition when it was not closed), without a trial.
    pub fn reset(&self) {
        self.tracked
            .consecutive_failures
            .store(0, Ordering::Relaxed);
        self.tracked.evidence_armed.store(false, Ordering::SeqCst);
        self.machine.reset();
    }

    fn rejected(&self) -> Rejected {
        Rejected {
            name: self.tracked.name,
            state: self.state(),
        }
    }

    /// The breaker's name.
    pub fn name(&self) -> &'static str {
        self.tracked.name
    }

    /// The current state (an open breaker whose interval has passed shows `open` until the
    /// next call asks, as failsafe moves to half-open on that call).
    pub fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.tracked.state.load(Ordering::SeqCst))
    }

    /// What `GET /circuit-breaker` shows.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let t = &self.tracked;
        let state = self.state();
        let last = t.last_transition_ms.load(Ordering::Relaxed);
        BreakerSnapshot {
            name: t.name,
            state: state.as_str(),
            state_code: state as u8,
            consecutive_failures: t.consecutive_failures.load(Ordering::Relaxed),
            failure_threshold: t.threshold,
            last_transition_unix_ms: (last != 0).then_some(last),
            transitions: t.transitions.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn breaker(
        threshold: u32,
        open_ms: u64,
        max_ms: u64,
    ) -> Result<(Breaker, Metrics), prometheus::Error> {
        let metrics = Metrics::new(Mode::Cp)?;
        let settings = BreakerSettings {
            failure_threshold: threshold,
            open_interval: Duration::from_millis(open_ms),
            max_open_interval: Duration::from_millis(max_ms),
        };
        Ok((Breaker::new("g1", settings, &metrics), metrics))
    }

    #[test]
    fn opens_after_threshold_consecutive_failures_only() -> TestResult {
        failsafe::clock::freeze(|_clock| -> TestResult {
            let (b, _m) = breaker(3, 1000, 8000)?;
            b.permit()?.failure();
            b.permit()?.failure();
            b.permit()?.success(); // resets the count
            b.permit()?.failure();
            b.permit()?.failure();
            assert_eq!(b.state(), BreakerState::Closed);
            assert_eq!(b.snapshot().consecutive_failures, 2);
            b.permit()?.failure();
            assert_eq!(b.state(), BreakerState::Open);
            let Err(err) = b.permit() else {
                return Err("expected the open breaker to refuse".into());
            };
            assert_eq!(err.state, BreakerState::Open);
            assert!(err.to_string().contains("g1 is open"), "{err}");
            Ok(())
        })
    }

    #[test]
    fn half_open_lets_one_trial_through_and_backs_off_on_failure() -> TestResult {
        failsafe::clock::freeze(|clock| -> TestResult {
            let (b, metrics) = breaker(1, 1000, 3000)?;
            b.permit()?.failure();
            assert_eq!(b.state(), BreakerState::Open);

            clock.advance(Duration::from_millis(1001));
            let trial = b.permit()?;
            assert_eq!(b.state(), BreakerState::HalfOpen);
            // A second caller fails fast while the trial is out.
            let Err(second) = b.permit() else {
                return Err("expected a second caller to be refused".into());
            };
            assert_eq!(second.state, BreakerState::HalfOpen);
            trial.failure();
            assert_eq!(b.state(), BreakerState::Open);

            // The next open interval doubled: 1.5 s is not enough, 2 s is.
            clock.advance(Duration::from_millis(1500));
            assert!(b.permit().is_err());
            clock.advance(Duration::from_millis(600));
            let trial = b.permit()?;
            trial.success();
            assert_eq!(b.state(), BreakerState::Closed);

            let snap = b.snapshot();
            assert_eq!(snap.transitions, 5, "{snap:?}"); // open, half, open, half, closed
            assert!(snap.last_transition_unix_ms.is_some());
            let text = metrics.encode()?;
            assert!(
                text.contains(
                    r#"circuit_breaker_transitions_total{mode="cp",node="g1",to="open"} 2"#
                ),
                "{text}"
            );
            assert!(
                text.contains(r#"circuit_breaker_state{mode="cp",node="g1"} 0"#),
                "{text}"
            );
            Ok(())
        })
    }

    #[test]
    fn a_dropped_trial_frees_the_slot_without_deciding() -> TestResult {
        failsafe::clock::freeze(|clock| -> TestResult {
            let (b, _m) = breaker(1, 10, 10)?;
            b.permit()?.failure();
            clock.advance(Duration::from_millis(11));
            drop(b.permit()?);
            assert_eq!(b.state(), BreakerState::HalfOpen);
            b.permit()?.success();
            assert_eq!(b.state(), BreakerState::Closed);
            Ok(())
        })
    }

    #[test]
    fn reset_closes_at_once_and_forgets_the_backoff() -> TestResult {
        failsafe::clock::freeze(|clock| -> TestResult {
            let (b, _m) = breaker(1, 1000, 8000)?;
            b.permit()?.failure();
            clock.advance(Duration::from_millis(1001));
            b.permit()?.failure(); // a failed trial: the next interval is 2 s
            assert_eq!(b.state(), BreakerState::Open);
            b.reset();
            assert_eq!(b.state(), BreakerState::Closed);
            assert_eq!(b.snapshot().consecutive_failures, 0);
            b.permit()?.success();
            // Opened again, it waits the first interval, not the doubled one.
            b.permit()?.failure();
            clock.advance(Duration::from_millis(1001));
            assert!(b.permit().is_ok());
            b.reset();
            b.reset(); // closed: nothing happens, no transition counted
            assert_eq!(b.snapshot().transitions, 7, "{:?}", b.snapshot());
            Ok(())
        })
    }

    #[test]
    fn evidence_newer_than_the_last_failure_allows_one_trial_at_once() -> TestResult {
        failsafe::clock::freeze(|_clock| -> TestResult {
            let (b, _m) = breaker(1, 30_000, 30_000)?;
            b.permit()?.failure();
            let failed_at = b.last_failure_unix_ms();
            assert_eq!(b.state(), BreakerState::Open);
            // Old evidence (from before the failure) changes nothing.
            b.evidence(failed_at - 1);
            b.evidence(failed_at);
            assert_eq!(b.state(), BreakerState::Open);
            assert!(b.permit().is_err());
            // Fresh evidence: half-open now, though the 30 s interval has not passed.
            b.evidence(failed_at + 1);
            assert_eq!(b.state(), BreakerState::HalfOpen);
            let trial = b.permit()?;
            let Err(second) = b.permit() else {
                return Err("one trial at a time".into());
            };
            assert_eq!(second.state, BreakerState::HalfOpen);
            trial.success();
            assert_eq!(b.state(), BreakerState::Closed);
            assert_eq!(b.snapshot().consecutive_failures, 0);
            // Closed: evidence is ignored, and the backoff was forgotten (the next opening
            // waits the first interval again).
            b.evidence(u64::MAX);
            assert_eq!(b.state(), BreakerState::Closed);
            b.permit()?.success();
            Ok(())
        })
    }

    #[test]
    fn a_failed_evidence_trial_reopens_and_needs_fresher_evidence() -> TestResult {
        failsafe::clock::freeze(|_clock| -> TestResult {
            let (b, _m) = breaker(1, 30_000, 30_000)?;
            b.permit()?.failure();
            b.evidence(b.last_failure_unix_ms() + 1);
            let trial = b.permit()?;
            std::thread::sleep(Duration::from_millis(2));
            trial.failure();
            assert_eq!(b.state(), BreakerState::Open);
            let failed_at = b.last_failure_unix_ms();
            // The evidence that allowed it is older than this failure: no second trial.
            b.evidence(failed_at);
            assert!(b.permit().is_err(), "no trial without fresher evidence");
            b.evidence(failed_at + 1);
            let trial = b.permit()?;
            // A trial dropped without an answer keeps the evidence: the next call is a trial.
            drop(trial);
            assert_eq!(b.state(), BreakerState::HalfOpen);
            b.permit()?.success();
            assert_eq!(b.state(), BreakerState::Closed);
            // open, half (evidence), open (failed trial), half (evidence), closed.
            assert_eq!(b.snapshot().transitions, 5, "{:?}", b.snapshot());
            Ok(())
        })
    }

    #[test]
    fn open_intervals_double_up_to_the_max() {
        let got: Vec<u128> = OpenIntervals {
            next: Duration::from_millis(100),
            max: Duration::from_millis(500),
        }
        .take(5)
        .map(|d| d.as_millis())
        .collect();
        assert_eq!(got, vec![100, 200, 400, 500, 500]);
    }

    #[test]
    fn construction_is_not_a_transition() -> TestResult {
        let (b, _m) = breaker(2, 10, 10)?;
        let snap = b.snapshot();
        assert_eq!(
            (snap.state, snap.transitions, snap.last_transition_unix_ms),
            ("closed", 0, None)
        );
        Ok(())
    }
}
