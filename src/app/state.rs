//! The shared state every handler and background task sees: an `Arc` of cheap handles.
//!
//! Data path: the top. Built once by `app::start`; the HTTP handlers get it through axum's
//! `State`, the background tasks (primary tracker, heartbeat, replication poller, AP drain)
//! get clones of the handles they need. Nothing in it is locked across an `.await`.

use std::sync::Arc;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::mode::Personality;
use crate::node::BreakerSnapshot;
use crate::primary::{DataLossState, Nodes};
use crate::session::Sessions;
use crate::staleness::{ReplicationStatus, Staleness};

/// Everything one running personality shares.
#[derive(Debug)]
pub struct Shared {
    /// The validated configuration.
    pub config: Config,
    /// The app's metrics and registry.
    pub metrics: Metrics,
    /// g1, g2 and the belief of which one is the primary.
    pub nodes: Nodes,
    /// CP or AP.
    pub personality: Personality,
    /// Heartbeat staleness per node.
    pub staleness: Staleness,
    /// The latest replication poll.
    pub replication: ReplicationStatus,
    /// Session token checking and issuing (`SECRET_KEY`, `SECRET_KEY_PREVIOUS`).
    pub sessions: Sessions,
    /// A primary data loss waiting for an operator's acknowledgement (`/ready` 503 meanwhile).
    pub data_loss: DataLossState,
}

/// The handle handlers receive.
pub type AppState = Arc<Shared>;

impl Shared {
    /// Every breaker of this instance: `g1`, `g2`, and CP's `replication`.
    pub fn breakers(&self) -> Vec<BreakerSnapshot> {
        let mut all: Vec<BreakerSnapshot> = self
            .nodes
            .both()
            .iter()
            .map(|node| node.breaker().snapshot())
            .collect();
        if let Some(replication) = self.personality.replication_breaker() {
            all.push(replication.snapshot());
        }
        all
    }
}
