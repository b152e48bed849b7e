//! The service one connection is served by: the counted router, behind the connection's own
//! checks.
//!
//! Data path: the top, between hyper and the router. For each request it marks the start and
//! end in the connection's [`Activity`] (the timeouts read it), then, before the router:
//! a connection on a reserved slot (taken once `MAX_CONNECTIONS` were open) may only ask
//! `/health`, `/ready` and `/metrics`, anything else is a 503; a client over its rate limit is
//! a 429 with `Retry-After`. Both answers are JSON with `"error"` and are counted in
//! `app_requests_total` like any other.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use tower_service::Service;

use super::activity::{Activity, RequestGuard};
use crate::http::count::operation;
use crate::http::rate_limit::{AddressLimiter, is_exempt, retry_after_secs};
use crate::http::{Counted, CountedFuture};
use crate::metrics::Metrics;

/// What every connection of one app shares.
#[derive(Clone)]
pub struct ConnShared {
    /// The counted router.
    pub service: Counted,
    /// The app's metrics.
    pub metrics: Metrics,
    /// The rate limit, when on.
    pub limiter: Option<Arc<AddressLimiter>>,
    /// `MAX_CONNECTIONS`, for the reserved slots' refusal.
    pub max_connections: usize,
}

/// The hyper service of one connection.
#[derive(Clone)]
pub struct ConnService {
    shared: ConnShared,
    activity: Arc<Activity>,
    peer: SocketAddr,
    reserved: bool,
}

impl ConnService {
    /// The service of a connection from `peer`; `reserved` when it holds a reserved slot.
    pub fn new(
        shared: ConnShared,
        activity: Arc<Activity>,
        peer: SocketAddr,
        reserved: bool,
    ) -> ConnService {
        ConnService {
            shared,
            activity,
            peer,
            reserved,
        }
    }

    fn refuse(&self, operation: &'static str, response: Response) -> Response {
        self.shared
            .metrics
            .observe_request(operation, response.status().as_u16(), 0.0);
        response
    }
}

/// A JSON refusal with `Retry-After`.
fn refusal(status: StatusCode, error: String, code: &str, retry_after: u64) -> Response {
    let body = serde_json::json!({ "error": error, "code": code });
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = ConnFuture;

    fn call(&self, request: Request<Incoming>) -> ConnFuture {
        let guard = self.activity.start_request();
        let path = request.uri().path();
        if self.reserved && !is_exempt(path) {
            let op = operation(request.method(), path);
            let mut response = refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "connection limit reached (MAX_CONNECTIONS={}); this connection may only use /health, /ready and /metrics",
                    self.shared.max_connections
                ),
                "too_many_connections",
                1,
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return ConnFuture::ready(self.refuse(op, response), guard);
        }
        if let Some(limiter) = &self.shared.limiter
            && !is_exempt(path)
            && let Err(wait) = limiter.check(self.peer.ip())
        {
            let op = operation(request.method(), path);
            self.shared
                .metrics
                .server
                .rate_limited
                .with_label_values(&[self.shared.metrics.mode()])
                .inc();
            let secs = retry_after_secs(wait);
            let response = refusal(
                StatusCode::TOO_MANY_REQUESTS,
                format!("rate limit exceeded for this address; retry in {secs} s"),
                "rate_limited",
                secs,
            );
            return ConnFuture::ready(self.refuse(op, response), guard);
        }
        let mut service = self.shared.service.clone();
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(Peer(self.peer));
        let inner = service.call(request);
        ConnFuture {
            state: State::Inner { inner },
            guard,
        }
    }
}

/// The address a request came from, for the handlers that only answer loopback
/// (`/admin/...`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

type RouterFuture = CountedFuture<<axum::Router as Service<Request<Body>>>::Future>;

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State {
        Ready { response: Option<Response> },
        Inner { #[pin] inner: RouterFuture },
    }
}

pin_project_lite::pin_project! {
    /// The answer of one request; the request counts as running until it is dropped.
    pub struct ConnFuture {
        #[pin]
        state: State,
        guard: RequestGuard,
    }
}

impl ConnFuture {
    fn ready(response: Response, guard: RequestGuard) -> ConnFuture {
        ConnFuture {
            state: State::Ready {
                response: Some(response),
            },
            guard,
        }
    }
}

impl Future for ConnFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Ready { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Ready(Ok(StatusCode::INTERNAL_SERVER_ERROR.into_response())),
            },
            StateProj::Inner { inner } => {
                let result = ready!(inner.poll(cx));
                Poll::Ready(result)
            }
        }
    }
}
