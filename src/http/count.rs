//! Counting every request in `app_requests_total` and `app_request_latency_seconds`.
//!
//! Data path: the very top, around the router. A plain tower service with its own future, so
//! counting costs no allocation per request (axum's `from_fn` middleware boxes a future and
//! clones the route for each one, which showed in the service benchmark). The `operation`
//! label comes from the method and the path's first segment, mirroring the routes: a small
//! closed set, never a key.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use tower_service::Service;

use crate::app::AppState;

/// The router, with every answer counted.
#[derive(Clone)]
pub struct Counted {
    router: Router,
    state: AppState,
}

impl Counted {
    /// Wraps `router`, counting into `state`'s metrics.
    pub fn new(router: Router, state: AppState) -> Counted {
        Counted { router, state }
    }
}

impl Service<Request> for Counted {
    type Response = Response;
    type Error = Infallible;
    type Future = CountedFuture<<Router as Service<Request>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        <Router as Service<Request>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let operation = operation(request.method(), request.uri().path());
        CountedFuture {
            inner: self.router.call(request),
            state: self.state.clone(),
            operation,
            started: Instant::now(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The router's future, counted when it completes.
    pub struct CountedFuture<F> {
        #[pin]
        inner: F,
        state: AppState,
        operation: &'static str,
        started: Instant,
    }
}

impl<F> Future for CountedFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            this.state.metrics.observe_request(
                this.operation,
                response.status().as_u16(),
                this.started.elapsed().as_secs_f64(),
            );
        }
        Poll::Ready(result)
    }
}

/// The `operation` label of a request. `HEAD` is counted as the `GET` it is served by (axum
/// answers it with the GET handler, body left out: a `HEAD /read/k` reads the key).
pub fn operation(method: &Method, path: &str) -> &'static str {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let get = method == Method::GET || method == Method::HEAD;
    match (method, first) {
        (&Method::POST, "write") | (&Method::PUT, "kv") => "write",
        (&Method::POST, "cas") => "cas",
        (_, "read" | "kv") if get => "read",
        (_, "health") if get => "health",
        (_, "ready") if get => "ready",
        (_, "metrics") if get => "metrics",
        (_, "circuit-breaker") if get => "circuit_breaker",
        (_, "replication") if get => "replication",
        (&Method::POST, "admin") => "admin",
        _ => "unmatched",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_a_closed_set_that_never_holds_a_key() {
        assert_eq!(operation(&Method::POST, "/write/k/v"), "write");
        assert_eq!(operation(&Method::PUT, "/kv/k"), "write");
        assert_eq!(operation(&Method::GET, "/kv/k"), "read");
        assert_eq!(operation(&Method::GET, "/read/k"), "read");
        assert_eq!(operation(&Method::POST, "/cas/k/a/b"), "cas");
        assert_eq!(operation(&Method::POST, "/cas/k"), "cas");
        assert_eq!(operation(&Method::GET, "/cas/k"), "unmatched");
        assert_eq!(
            operation(&Method::GET, "/circuit-breaker"),
            "circuit_breaker"
        );
        assert_eq!(operation(&Method::DELETE, "/read/k"), "unmatched");
        assert_eq!(operation(&Method::HEAD, "/read/k"), "read");
        assert_eq!(operation(&Method::HEAD, "/health"), "health");
        assert_eq!(operation(&Method::HEAD, "/write/k/v"), "unmatched");
        assert_eq!(operation(&Method::GET, "/secret-key"), "unmatched");
    }
}
