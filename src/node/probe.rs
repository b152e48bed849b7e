//! A node's probe: while its breaker is open, a `PING` outside the breaker, whose answer is
//! evidence that the node is back.
//!
//! Data path: beside the node client, one task per node. A node breaker opened by timeouts or
//! lost connections learns that the node is back only from a call, and while it is open no
//! call goes through until its backoff lets a trial out, up to `BREAKER_MAX_OPEN_MS` after the
//! heal. The probe closes that gap: every [`PROBE_PERIOD`] while the breaker shows `open` it
//! sends one `PING` on the node's shared connection, with the node's command timeout, and a
//! `PONG` is [`Breaker::evidence`](super::Breaker::evidence) stamped with the time it was sent
//! (so it is newer than the breaker's last failure only if the node answered a request sent
//! after that failure). The breaker turns half-open and the next call is its trial.
//!
//! The cost while the node is away: none on the network while the connection is down (fred
//! fails the `PING` at once, locally, and reconnects in the background on its own), and one
//! `PING` at a time, each waiting its timeout, while the connection is up but the node hangs.
//! Nothing is sent while the breaker is closed or half-open.

use std::time::Duration;

use fred::interfaces::ClientLike;
use tokio::time::{MissedTickBehavior, interval};

use super::breaker::BreakerState;
use super::client::Node;
use crate::time::unix_ms;

/// How often an open breaker's node is probed.
pub const PROBE_PERIOD: Duration = Duration::from_millis(100);

impl Node {
    /// Sends one `PING` outside the breaker: whether the node answered it.
    pub async fn ping_unguarded(&self) -> bool {
        let cmd = self.0.client.with_options(&self.0.options);
        cmd.ping::<String>(None).await.is_ok()
    }

    /// Probes the node every [`PROBE_PERIOD`] while its breaker is open, forever.
    pub async fn run_probe(self) {
        let mut ticks = interval(PROBE_PERIOD);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if self.breaker().state() != BreakerState::Open {
                continue;
            }
            let sent = unix_ms();
            if self.ping_unguarded().await {
                self.breaker().evidence(sent);
            }
        }
    }
}
