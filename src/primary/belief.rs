//! What one app instance believes about which node is the primary.
//!
//! Data path: read on every request, between the mode policy and the node clients; written only
//! by the [`Tracker`](super::Tracker). Atomics, so a read costs a load: no lock, nothing held
//! across an `.await`. Beside the node itself it keeps what an operator needs to judge the
//! belief (is it following the sentinels, can it reach them, the configuration epoch of the
//! last answer, the switches seen) and a wake-up for the tracker: a node that answers
//! `READONLY` is a replica now, and the policy that saw it asks for a poll at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::Notify;

use crate::node::NodeId;
use crate::time::unix_ms;

/// The believed primary and what the tracker learned with it. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Belief(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// [`NodeId::index`] of the believed primary.
    primary: AtomicU8,
    /// Whether sentinels are configured (otherwise g1 is the primary, always).
    follows_sentinels: bool,
    /// The configuration epoch of the last sentinel answer taken.
    epoch: AtomicU64,
    /// Unix ms of the last sentinel answer (0: none yet).
    last_answer_ms: AtomicU64,
    /// Whether the last poll reached a sentinel.
    sentinels_reachable: AtomicBool,
    /// Switches of the believed primary after the first answer.
    switches: AtomicU64,
    /// Unix ms of the last switch (0: none).
    last_switch_ms: AtomicU64,
    /// Wakes the tracker for a poll now.
    ask_again: Notify,
}

/// What `GET /replication` and `GET /ready` show of the belief.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BeliefSnapshot {
    /// `g1` or `g2`.
    pub primary: &'static str,
    /// `sentinels` (learned from them) or `fixed` (no sentinels: g1, always).
    pub source: &'static str,
    /// Whether the last poll reached a sentinel (`null` without sentinels). `false` means the
    /// instance keeps the primary it last learned.
    pub sentinels_reachable: Option<bool>,
    /// When a sentinel last answered, Unix ms.
    pub last_answer_unix_ms: Option<u64>,
    /// The configuration epoch of that answer (it grows by one at each failover).
    pub config_epoch: Option<u64>,
    /// How many times this instance switched primary (`failovers_seen_total`).
    pub failovers_seen: u64,
    /// When it last switched, Unix ms.
    pub last_switch_unix_ms: Option<u64>,
}

impl Belief {
    /// No sentinels: g1 is the primary, always.
    pub fn fixed() -> Belief {
        Belief::new(false)
    }

    /// g1 until the sentinels say otherwise.
    pub fn following_sentinels() -> Belief {
        Belief::new(true)
    }

    fn new(follows_sentinels: bool) -> Belief {
        Belief(Arc::new(Inner {
            primary: AtomicU8::new(0),
            follows_sentinels,
            epoch: AtomicU64::new(0),
            last_answer_ms: AtomicU64::new(0),
            sentinels_reachable: AtomicBool::new(false),
            switches: AtomicU64::new(0),
            last_switch_ms: AtomicU64::new(0),
            ask_again: Notify::new(),
        }))
    }

    /// The node believed to be the primary right now.
    pub fn primary(&self) -> NodeId {
        match self.0.primary.load(Ordering::Acquire) {
            0 => NodeId::G1,
            _ => NodeId::G2,
        }
    }

    /// Whether the belief follows sentinels.
    pub fn follows_sentinels(&self) -> bool {
        self.0.follows_sentinels
    }

    /// Whether the last poll reached a sentinel.
    pub fn sentinels_reachable(&self) -> bool {
        self.0.sentinels_reachable.load(Ordering::Relaxed)
    }

    /// Asks the tracker to poll the sentinels now (a node said it is a replica). Requests made
    /// while a poll runs fold into one more poll.
    pub fn ask_again(&self) {
        self.0.ask_again.notify_one();
    }

    /// Resolves when [`ask_again`](Belief::ask_again) was called.
    pub(super) async fn asked_again(&self) {
        self.0.ask_again.notified().await;
    }

    /// Takes a sentinel's answer: `node` at `epoch`. Returns the previous primary when the
    /// belief changed.
    pub(super) fn take(&self, node: NodeId, epoch: u64) -> Option<NodeId> {
        self.0.epoch.store(epoch, Ordering::Relaxed);
        self.0.last_answer_ms.store(unix_ms(), Ordering::Relaxed);
        let index = u8::try_from(node.index()).unwrap_or(0);
        let previous = self.0.primary.swap(index, Ordering::AcqRel);
        (previous != index).then(|| node.other())
    }

    /// Counts a switch (not the first answer, which only sets the belief).
    pub(super) fn count_switch(&self) {
        self.0.switches.fetch_add(1, Ordering::Relaxed);
        self.0.last_switch_ms.store(unix_ms(), Ordering::Relaxed);
    }

    /// Records whether the last poll reached a sentinel; returns the previous value.
    pub(super) fn set_reachable(&self, reachable: bool) -> bool {
        self.0
            .sentinels_reachable
            .swap(reachable, Ordering::Relaxed)
    }

    /// What the status endpoints show.
    pub fn snapshot(&self) -> BeliefSnapshot {
        let nonzero = |v: u64| (v != 0).then_some(v);
        let last_answer = nonzero(self.0.last_answer_ms.load(Ordering::Relaxed));
        let following = self.0.follows_sentinels;
        BeliefSnapshot {
            primary: self.primary().as_str(),
            source: if following { "sentinels" } else { "fixed" },
            sentinels_reachable: following.then(|| self.sentinels_reachable()),
            last_answer_unix_ms: last_answer,
            config_epoch: last_answer.map(|_| self.0.epoch.load(Ordering::Relaxed)),
            failovers_seen: self.0.switches.load(Ordering::Relaxed),
            last_switch_unix_ms: nonzero(self.0.last_switch_ms.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_g1_and_reports_a_change_once() {
        let belief = Belief::following_sentinels();
        assert_eq!(belief.primary(), NodeId::G1);
        assert_eq!(belief.take(NodeId::G1, 0), None, "no change");
        assert_eq!(belief.take(NodeId::G2, 1), Some(NodeId::G1));
        assert_eq!(belief.primary(), NodeId::G2);
        assert_eq!(belief.take(NodeId::G2, 1), None);
        let snap = belief.snapshot();
        assert_eq!(
            (snap.primary, snap.source, snap.config_epoch),
            ("g2", "sentinels", Some(1))
        );
        assert_eq!(snap.failovers_seen, 0, "counting is the tracker's decision");
    }

    #[test]
    fn a_fixed_belief_says_so_and_has_no_sentinel_fields() {
        let snap = Belief::fixed().snapshot();
        assert_eq!(
            (snap.primary, snap.source, snap.sentinels_reachable),
            ("g1", "fixed", None)
        );
        assert_eq!((snap.last_answer_unix_ms, snap.config_epoch), (None, None));
    }

    #[tokio::test]
    async fn asking_again_before_the_tracker_waits_is_not_lost() {
        let belief = Belief::following_sentinels();
        belief.ask_again();
        belief.ask_again();
        let woke =
            tokio::time::timeout(std::time::Duration::from_secs(1), belief.asked_again()).await;
        assert!(woke.is_ok());
    }
}
