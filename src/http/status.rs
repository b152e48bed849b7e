//! The status handlers: `/health`, `/ready`, `/metrics`, `/circuit-breaker`, `/replication`.
//!
//! Data path: beside it. They read the shared state (the believed primary, breakers,
//! staleness, the replication poll, the AP queue) and never call Redis or a sentinel
//! themselves, so they answer at once even when every node is unreachable.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::error::ApiError;
use crate::app::AppState;
use crate::config::Mode;
use crate::node::{BreakerState, Node, NodeId};
use crate::primary::BeliefSnapshot;
use crate::staleness::{NodeRoles, ReplicationSnapshot};

/// `GET /health`: 200 while the process serves.
pub async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "mode": state.config.mode.as_str(),
        "instance_id": state.config.instance_id,
    }))
}

#[derive(Serialize)]
struct NodeReadiness {
    connected: bool,
    breaker: &'static str,
    usable: bool,
    /// What the node said of itself at the last replication poll: `primary`, `replica`, or
    /// `null` when it did not answer.
    role: Option<&'static str>,
}

fn readiness(node: &Node, roles: &NodeRoles) -> NodeReadiness {
    let state = node.breaker().state();
    let connected = node.is_connected();
    NodeReadiness {
        connected,
        breaker: state.as_str(),
        usable: connected && state != BreakerState::Open,
        role: roles.of(node.id()),
    }
}

/// `GET /ready`: the believed primary, per-node reachability, breaker states and own roles,
/// and whether the sentinels answer; 503 when this mode cannot serve (CP needs the primary;
/// AP needs either node).
pub async fn ready(State(state): State<AppState>) -> Response {
    let roles = state.replication.snapshot().roles;
    let nodes = &state.nodes;
    let primary = readiness(nodes.primary(), &roles);
    let replica = readiness(nodes.replica(), &roles);
    let ready = match state.config.mode {
        Mode::Cp => primary.usable,
        Mode::Ap => primary.usable || replica.usable,
    };
    // A primary that lost its data holds readiness until an operator acknowledges it.
    let data_loss = state.data_loss.unacknowledged();
    let ready = ready && data_loss.is_none();
    let belief = nodes.belief().snapshot();
    let mut by_name = serde_json::Map::new();
    for (node, readiness) in [(nodes.primary(), primary), (nodes.replica(), replica)] {
        by_name.insert(node.name().to_string(), json!(readiness));
    }
    let body = json!({
        "ready": ready,
        "mode": state.config.mode.as_str(),
        "primary": belief.primary,
        "primary_source": belief.source,
        "sentinels_reachable": belief.sentinels_reachable,
        "nodes": by_name,
        "replication_breaker": state.personality.replication_breaker().map(|b| b.state().as_str()),
        "primary_data_loss": data_loss,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: the Prometheus text format, staleness refreshed at scrape time.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    for node in [NodeId::G1, NodeId::G2] {
        state
            .metrics
            .set_staleness(node.as_str(), state.staleness.staleness_ms(node));
    }
    let text = state
        .metrics
        .encode()
        .map_err(|e| ApiError::Internal(format!("cannot encode metrics: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// `GET /circuit-breaker`: one entry per breaker.
pub async fn circuit_breakers(State(state): State<AppState>) -> Json<serde_json::Value> {
    let breakers: serde_json::Map<String, serde_json::Value> = state
        .breakers()
        .into_iter()
        .map(|b| (b.name.to_string(), json!(b)))
        .collect();
    Json(json!({ "mode": state.config.mode.as_str(), "breakers": breakers }))
}

/// The body of `GET /replication`.
#[derive(Debug, Serialize)]
pub struct ReplicationBody {
    /// `cp` or `ap`.
    pub mode: &'static str,
    /// The node this instance believes is the primary now (`g1` or `g2`).
    pub primary: &'static str,
    /// How it knows: the sentinels' answers, or `fixed` (no sentinels), with their
    /// reachability, epoch and the failovers this instance followed.
    pub following: BeliefSnapshot,
    /// What each node said of its own role at the last poll (`primary`, `replica`, `null`).
    pub roles: NodeRoles,
    /// The replica's `master_link_status` (`up`, `down`), or `unknown` when it did not answer
    /// as a replica.
    pub link_status: String,
    /// Primary offset minus replica offset, when both answered the last poll.
    pub lag_bytes: Option<u64>,
    /// Heartbeat staleness per node, ms.
    pub staleness_ms: serde_json::Value,
    /// The AP staleness bound.
    pub max_staleness_ms: u128,
    /// The heartbeat period.
    pub heartbeat_interval_ms: u128,
    /// Writes waiting in AP's queue (0 for CP).
    pub ap_queue_depth: usize,
    /// The raw last poll.
    pub poll: ReplicationSnapshot,
}

/// `GET /replication`: the believed primary and how it was learned, each node's own role,
/// link status, lag bytes, staleness per node, AP queue depth.
pub async fn replication(State(state): State<AppState>) -> Json<ReplicationBody> {
    let poll = state.replication.snapshot();
    let following = state.nodes.belief().snapshot();
    Json(ReplicationBody {
        mode: state.config.mode.as_str(),
        primary: following.primary,
        roles: poll.roles.clone(),
        following,
        link_status: poll
            .link_status
            .clone()
            .unwrap_or_else(|| "unknown".to_string()),
        lag_bytes: poll.lag_bytes,
        staleness_ms: json!({
            "g1": state.staleness.staleness_ms(NodeId::G1),
            "g2": state.staleness.staleness_ms(NodeId::G2),
        }),
        max_staleness_ms: state.config.max_staleness.as_millis(),
        heartbeat_interval_ms: state.config.heartbeat_interval.as_millis(),
        ap_queue_depth: state.personality.queue_depth(),
        poll,
    })
}
