//! The operator's endpoints: `POST /admin/ack-data-loss`.
//!
//! Data path: beside it. Answered only to a client on loopback (the app's own host: `curl` on
//! the machine, `docker exec`, `kubectl exec`), 403 otherwise: acknowledging a data loss is an
//! operator's act, and the HTTP port may be exposed to clients. Nothing here calls Redis.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::app::conn_service::Peer;

/// `POST /admin/ack-data-loss`: acknowledges the primary data loss that holds `/ready` at 503;
/// 200 with what was acknowledged (`null`: there was none).
pub async fn ack_data_loss(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
) -> Response {
    let on_loopback = peer.is_some_and(|Extension(Peer(addr))| addr.ip().is_loopback());
    if !on_loopback {
        let body = json!({
            "error": "POST /admin/ack-data-loss is answered only from the app's own host (loopback)",
            "code": "admin_loopback_only",
        });
        return (StatusCode::FORBIDDEN, Json(body)).into_response();
    }
    let acknowledged = state.data_loss.acknowledge(&state.metrics);
    Json(json!({
        "mode": state.config.mode.as_str(),
        "acknowledged": acknowledged,
    }))
    .into_response()
}
