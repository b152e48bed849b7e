//! The HTTP contract of both personalities (DESIGN.md), on axum.
//!
//! Data path: the top. [`router`] maps each route to its handler: [`kv`] for reads and writes,
//! [`status`] for health, readiness, metrics, breakers and replication. [`input`] refuses bad
//! keys and values before any node is asked; [`error`] is the one place that turns failures
//! into statuses and JSON. A middleware counts every request in `app_requests_total` and
//! `app_request_latency_seconds` by operation (never by key).

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::app::AppState;

pub mod error;
pub mod input;
pub mod kv;
pub mod status;

pub use error::{ApiError, InputError};

/// Bytes of body allowed beyond `MAX_VALUE_BYTES`, so an oversized value is measured and
/// refused with its size rather than cut off.
const BODY_SLACK: usize = 1024;

/// The whole HTTP surface of one personality.
pub fn router(state: AppState) -> Router {
    let body_limit = state
        .config
        .limits
        .max_value_bytes
        .saturating_add(BODY_SLACK);
    Router::new()
        .route("/write/{key}/{value}", post(kv::write_path))
        .route("/kv/{key}", get(kv::read).put(kv::write_body))
        .route("/read/{key}", get(kv::read))
        .route("/health", get(status::health))
        .route("/ready", get(status::ready))
        .route("/metrics", get(status::metrics))
        .route("/circuit-breaker", get(status::circuit_breakers))
        .route("/replication", get(status::replication))
        .fallback(unmatched)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), count_request))
        .layer(DefaultBodyLimit::max(body_limit))
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

/// The `operation` label of a request: a small closed set.
fn operation(method: &Method, route: Option<&str>) -> &'static str {
    match (route, method) {
        (Some("/write/{key}/{value}"), _) => "write",
        (Some("/kv/{key}"), &Method::PUT) => "write",
        (Some("/kv/{key}") | Some("/read/{key}"), _) => "read",
        (Some("/health"), _) => "health",
        (Some("/ready"), _) => "ready",
        (Some("/metrics"), _) => "metrics",
        (Some("/circuit-breaker"), _) => "circuit_breaker",
        (Some("/replication"), _) => "replication",
        _ => "unmatched",
    }
}

async fn count_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let operation = operation(
        request.method(),
        request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe_request(
        operation,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_a_closed_set() {
        assert_eq!(
            operation(&Method::POST, Some("/write/{key}/{value}")),
            "write"
        );
        assert_eq!(operation(&Method::PUT, Some("/kv/{key}")), "write");
        assert_eq!(operation(&Method::GET, Some("/kv/{key}")), "read");
        assert_eq!(operation(&Method::GET, Some("/read/{key}")), "read");
        assert_eq!(operation(&Method::GET, None), "unmatched");
    }
}
