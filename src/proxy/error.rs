//! The errors of the proxy's HTTP API, and the one place that maps them to HTTP statuses and
//! Toxiproxy's error body `{"error": "...", "status": N}`.
//!
//! Messages are self-contained (no `source` chain), so `{:#}` in `main.rs` does not repeat
//! them. Control plane only: every API handler ([`super::api`]) and registry operation
//! ([`super::registry`]) returns an [`ApiError`]; nothing on the data path does.

use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::addr::{AddrError, os_error_text};
use super::upstream::ALLOW_FLAG;

/// Why an API request failed. The messages are Toxiproxy's, so clients that match on them keep
/// working; a bind failure reads as Go's `listen tcp 127.0.0.1:3310: bind: address already in
/// use`, with the address resolved.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not the JSON expected (or is empty).
    #[error("bad request body: {0}")]
    BadRequestBody(String),
    /// A required field is missing or empty.
    #[error("missing required field: {0}")]
    MissingField(String),
    /// No proxy has that name.
    #[error("proxy not found")]
    ProxyNotFound,
    /// A proxy with that name exists already.
    #[error("proxy already exists")]
    ProxyAlreadyExists,
    /// `stream` is neither `upstream` nor `downstream`.
    #[error("stream was invalid, can be either upstream or downstream")]
    InvalidStream,
    /// `type` is not a toxic this server implements.
    #[error("invalid toxic type")]
    InvalidToxicType,
    /// The proxy has a toxic with that name already.
    #[error("toxic already exists")]
    ToxicAlreadyExists,
    /// The proxy has no toxic with that name.
    #[error("toxic not found")]
    ToxicNotFound,
    /// The proxy could not listen on its address.
    #[error("{0}")]
    Listen(ListenError),
    /// A listen address given to populate or an update could not be resolved to compare it
    /// with the proxy's (Toxiproxy's `Differs` fails the same way, with a 500).
    #[error("{0}")]
    Address(AddrError),
    /// The upstream leads outside loopback and the server does not allow that.
    #[error(
        "upstream {upstream} {reason}: caplab proxy forwards only to loopback (127.0.0.0/8, ::1) unless started with {ALLOW_FLAG} (or PROXY_ALLOW_REMOTE_UPSTREAMS=true)"
    )]
    UpstreamNotAllowed {
        /// The upstream given.
        upstream: String,
        /// Where it resolves, or why it could not be checked.
        reason: String,
    },
    /// A browser asked (Toxiproxy refuses them so a web page cannot drive it).
    #[error("User agent not allowed")]
    BrowserForbidden,
    /// No route has that path.
    #[error(
        "no route for {method} {path}; see the Toxiproxy API: /proxies, /populate, /reset, /version"
    )]
    NoRoute {
        /// The method asked.
        method: String,
        /// The path asked.
        path: String,
    },
    /// The route exists but not with that method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        /// The method asked.
        method: String,
        /// The path asked.
        path: String,
    },
    /// The server is shutting down and no longer takes changes.
    #[error("the proxy server is shutting down")]
    ShuttingDown,
}

impl ApiError {
    /// The HTTP status of this error: the only mapping from errors to statuses in the proxy.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequestBody(_)
            | ApiError::MissingField(_)
            | ApiError::InvalidStream
            | ApiError::InvalidToxicType => StatusCode::BAD_REQUEST,
            ApiError::ProxyNotFound | ApiError::ToxicNotFound | ApiError::NoRoute { .. } => {
                StatusCode::NOT_FOUND
            }
            ApiError::ProxyAlreadyExists | ApiError::ToxicAlreadyExists => StatusCode::CONFLICT,
            ApiError::Listen(_) | ApiError::Address(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::UpstreamNotAllowed { .. } => StatusCode::FORBIDDEN,
            ApiError::BrowserForbidden => StatusCode::FORBIDDEN,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The error body Toxiproxy sends.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.to_string(),
            status: self.status().as_u16(),
        }
    }
}

/// Why a proxy could not listen, worded as Go's `net.Listen` error.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The address could not be read or resolved: `listen tcp: lookup nohost: ...`.
    #[error("listen tcp: {0}")]
    Resolve(AddrError),
    /// A system call failed: `listen tcp 127.0.0.1:3310: bind: address already in use`.
    #[error("listen tcp {addr}: {call}: {}", os_error_text(error))]
    Syscall {
        /// The resolved address.
        addr: SocketAddr,
        /// `socket`, `setsockopt`, `bind` or `listen`.
        call: &'static str,
        /// What the OS said.
        error: std::io::Error,
    },
}

/// Toxiproxy's error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// The HTTP status, repeated.
    pub status: u16,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(
            self,
            ApiError::Listen(_) | ApiError::UpstreamNotAllowed { .. } | ApiError::ShuttingDown
        ) {
            tracing::warn!(error = %self, "proxy API request failed");
        }
        (self.status(), axum::Json(self.body())).into_response()
    }
}
