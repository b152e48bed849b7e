//! The HTTP contract of both personalities (docs/design.md), on axum.
//!
//! Data path: the top. [`router`] maps each route to its handler: [`kv`] for reads and writes,
//! [`status`] for health, readiness, metrics, breakers and replication. [`input`] refuses bad
//! keys and values before any node is asked; [`error`] is the one place that turns failures
//! (a refused session token among them: 401) into statuses and JSON. [`count`] wraps the router and counts every request in
//! `app_requests_total` and `app_request_latency_seconds` by operation (never by key).

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

use crate::app::AppState;

pub mod count;
pub mod error;
pub mod input;
pub mod kv;
pub mod status;

pub use count::Counted;
pub use error::{ApiError, InputError};

/// Bytes of body allowed beyond `MAX_VALUE_BYTES`, so an oversized value is measured and
/// refused with its size rather than cut off.
const BODY_SLACK: usize = 1024;

/// The whole HTTP surface of one personality, counted: what `caplab serve` serves.
pub fn service(state: AppState) -> Counted {
    Counted::new(router(state.clone()), state)
}

/// The routes of one personality.
pub fn router(state: AppState) -> Router {
    let body_limit = state
        .config
        .limits
        .max_value_bytes
        .saturating_add(BODY_SLACK);
    Router::new()
        .route("/write/{key}/{value}", post(kv::write_path))
        .route(
            "/kv/{key}",
            put(kv::write_body)
                .layer(DefaultBodyLimit::max(body_limit))
                .get(kv::read),
        )
        .route("/read/{key}", get(kv::read))
        .route("/health", get(status::health))
        .route("/ready", get(status::ready))
        .route("/metrics", get(status::metrics))
        .route("/circuit-breaker", get(status::circuit_breakers))
        .route("/replication", get(status::replication))
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
