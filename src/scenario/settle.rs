//! The settle before the final reads: a fixed pause, then a wait until every target sees the
//! pair whole again, so the final reads read the final state.
//!
//! Where it sits: in the runner, between the end of the load and the final reads. The final
//! reads go through the apps, which read what *they* reach: AP reads the replica, and after a
//! split brain the deposed primary keeps saying `primary`, with the values it took alone, until
//! Sentinel reconfigures it (about ten seconds after the heal: it waits four publish periods
//! before it touches a returning old primary). A read then would find a lost write still
//! there and call it kept. So after `workload.settle` the runner polls each target's
//! `/replication` until all of them believe the same primary, that primary says `primary`,
//! the other node says `replica` with its link up, and its measured staleness is at most
//! [`CAUGHT_UP_MS`] (it has the writes of the last half second, long after the load ended);
//! at most [`SETTLE_WAIT_MAX`], after which the final reads go ahead and the report says the
//! pair never settled.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::sampler::{CAUGHT_UP_MS, pair_view};

/// The longest the runner waits for the pair after `workload.settle`: Sentinel reconfigures a
/// returning old primary 10 to 12 s after it is back, and a sentinel whose timer ran more than
/// 2 s late (a loaded or briefly paused machine) is in TILT mode for 30 s, acting on nothing.
pub const SETTLE_WAIT_MAX: Duration = Duration::from_secs(60);

/// How often the runner asks while it waits.
const POLL: Duration = Duration::from_millis(100);

/// What the wait found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Settled {
    /// Time waited after `workload.settle`, ms.
    pub waited_ms: f64,
    /// Whether every target saw the pair whole and caught up before the final reads.
    pub settled: bool,
    /// The primary the targets agreed on (`null` when they did not settle).
    pub primary: Option<String>,
}

/// Waits until every target at `bases` sees the same primary with a linked, caught-up
/// replica, or `within` has passed.
pub async fn wait_for_pair(http: &reqwest::Client, bases: &[String], within: Duration) -> Settled {
    let start = Instant::now();
    loop {
        let views = futures::future::join_all(bases.iter().map(|base| pair_view(http, base))).await;
        let primary = views
            .first()
            .and_then(|v| v.as_ref())
            .map(|v| v.primary.clone());
        let agreed = views.iter().all(|v| {
            v.as_ref()
                .is_some_and(|v| v.settled() && Some(&v.primary) == primary.as_ref())
        });
        let waited_ms = start.elapsed().as_secs_f64() * 1000.0;
        if agreed {
            return Settled {
                waited_ms,
                settled: true,
                primary,
            };
        }
        if start.elapsed() >= within {
            return Settled {
                waited_ms,
                settled: false,
                primary: None,
            };
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One line for `report.md`.
pub fn describe(s: &Settled) -> String {
    if s.settled {
        format!(
            "the pair was whole ({} primary, its replica within {CAUGHT_UP_MS} ms) {:.0} ms after the settle",
            s.primary.as_deref().unwrap_or("?"),
            s.waited_ms
        )
    } else {
        format!(
            "the pair never settled ({:.0} ms after the settle): the final reads may not show the final state",
            s.waited_ms
        )
    }
}

/// One line for the demo: how long the pair took to be whole after the heal.
pub fn describe_wait(s: &Settled) -> String {
    if s.settled {
        format!(
            "whole again after {:.1} s ({} primary, its replica caught up)",
            s.waited_ms / 1000.0,
            s.primary.as_deref().unwrap_or("?")
        )
    } else {
        format!("not whole after {:.1} s", s.waited_ms / 1000.0)
    }
}
