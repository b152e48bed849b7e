//! The HTTP contract of both personalities (docs/design.md), on axum.
//!
//! Data path: the top. [`router`] maps each route to its handler: [`kv`] for reads and writes,
//! [`cas`] for compare-and-set, [`status`] for health, readiness, metrics, breakers and
//! replication, [`admin`] for the operator's acknowledgement of a primary data loss. [`input`]
//! refuses bad keys and values before any node is asked; [`error`] is the one place that turns
//! failures (a refused session token among them: 401) into statuses and JSON. [`count`] wraps
//! the router and counts every request in `app_requests_total` and `app_request_latency_seconds` by operation (never by key).
//! [`rate_limit`] is the per-address limit the server applies before the router.

use axum::Router;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

use crate::app::AppState;

pub mod admin;
pub mod cas;
pub mod count;
pub mod error;
pub mod input;
pub mod kv;
pub mod rate_limit;
pub mod status;

pub use count::{Counted, CountedFuture};
pub use error::{ApiError, InputError};

/// The whole HTTP surface of one personality, counted: what `caplab serve` serves.
pub fn service(state: AppState) -> Counted {
    Counted::new(router(state.clone()), state)
}

/// The routes of one personality.
pub fn router(state: AppState) -> Router {
    // PUT bodies are read by `input::body_value` (its own size limit and deadline).
    Router::new()
        .route("/write/{key}/{value}", post(kv::write_path))
        .route("/kv/{key}", put(kv::write_body).get(kv::read))
        .route("/cas/{key}", post(cas::cas_body))
        .route("/cas/{key}/{expected}/{new}", post(cas::cas_path))
        .route("/read/{key}", get(kv::read))
        .route("/health", get(status::health))
        .route("/ready", get(status::ready))
        .route("/metrics", get(status::metrics))
        .route("/circuit-breaker", get(status::circuit_breakers))
        .route("/replication", get(status::replication))
        .route("/admin/ack-data-loss", post(admin::ack_data_loss))
        .fallback(unmatched)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn unmatched(method: Method, uri: Uri) -> Response {
    ApiError::from(input::unmatched(method.as_str(), uri.path())).into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    ApiError::from(InputError::MethodNotAllowed {
        method: method.to_string(),
        path: input::shorten(uri.path()),
    })
    .into_response()
}
