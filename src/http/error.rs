//! The one place where errors become HTTP statuses and JSON bodies.
//!
//! Data path: the top, on the way out. Bad input is a 4xx naming the problem; a personality
//! that cannot keep its promise answers 503 with `Retry-After` (a CP write says whether it
//! `failed` for sure or is `indeterminate`); a missing key is a 404 that still says which node
//! answered and how stale it was. A session token that is malformed, unsupported, wrongly
//! signed or expired is a 401 with `"reason"` and a `WWW-Authenticate` header. Every error
//! body carries `"error"`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::mode::{ReadAnswer, ServiceError};
use crate::session::TokenError;

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: &str = "1";

/// Input the service refuses, before any node is asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The key is empty.
    #[error("key is empty")]
    EmptyKey,
    /// The key is longer than `MAX_KEY_BYTES`.
    #[error("key is {len} bytes, longer than the limit of {max} bytes (MAX_KEY_BYTES)")]
    KeyTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The key holds a control character.
    #[error("key contains a control character (byte {byte:#04x}); keys must be printable")]
    KeyControlCharacter {
        /// The offending byte.
        byte: u8,
    },
    /// The value is empty.
    #[error("value is empty")]
    EmptyValue,
    /// The value is longer than `MAX_VALUE_BYTES`.
    #[error("value is {len} bytes, larger than the limit of {max} bytes (MAX_VALUE_BYTES)")]
    ValueTooLarge {
        /// Its length (a body's, as its `Content-Length` announced it).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A body larger than `MAX_VALUE_BYTES` whose size was not announced (no
    /// `Content-Length`): reading stopped at the limit.
    #[error("value is larger than the limit of {max} bytes (MAX_VALUE_BYTES)")]
    ValueOverLimit {
        /// The limit.
        max: usize,
    },
    /// The body did not arrive within `HTTP_BODY_TIMEOUT_SEC`.
    #[error(
        "the request body did not arrive within {} s (HTTP_BODY_TIMEOUT_SEC)",
        *millis as f64 / 1000.0
    )]
    BodyTimeout {
        /// The limit, in milliseconds.
        millis: u64,
    },
    /// The body could not be read (the client closed the connection, say).
    #[error("cannot read the request body: {0}")]
    BodyUnreadable(String),
    /// A request body that is not what the route takes (the cas body's JSON).
    #[error("invalid request body: {0}")]
    InvalidBody(String),
    /// A header that may appear once appeared more than once.
    #[error("header {name} appears {count} times; send it once")]
    DuplicateHeader {
        /// The header.
        name: &'static str,
        /// How many times it appeared.
        count: usize,
    },
    /// A key or value is not valid UTF-8 (after percent-decoding).
    #[error("invalid encoding: {0}")]
    InvalidEncoding(String),
    /// No such route.
    #[error("no route for {method} {path}")]
    NotFound {
        /// The method.
        method: String,
        /// The path (shortened).
        path: String,
    },
    /// The route exists but not for this method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        /// The method.
        method: String,
        /// The path (shortened).
        path: String,
    },
}

impl InputError {
    fn status(&self) -> StatusCode {
        match self {
            InputError::ValueTooLarge { .. } | InputError::ValueOverLimit { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            InputError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            InputError::NotFound { .. } => StatusCode::NOT_FOUND,
            InputError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            InputError::EmptyKey => "empty_key",
            InputError::KeyTooLong { .. } => "key_too_long",
            InputError::KeyControlCharacter { .. } => "invalid_key",
            InputError::EmptyValue => "empty_value",
            InputError::ValueTooLarge { .. } | InputError::ValueOverLimit { .. } => {
                "value_too_large"
            }
            InputError::BodyTimeout { .. } => "body_timeout",
            InputError::BodyUnreadable(_) => "body_unreadable",
            InputError::DuplicateHeader { .. } => "duplicate_header",
            InputError::InvalidBody(_) => "invalid_body",
            InputError::InvalidEncoding(_) => "invalid_encoding",
            InputError::NotFound { .. } => "not_found",
            InputError::MethodNotAllowed { .. } => "method_not_allowed",
        }
    }
}

/// Everything a handler can answer other than success.
#[derive(Debug)]
pub enum ApiError {
    /// Refused input.
    Input(InputError),
    /// A write the personality could not complete.
    Write {
        /// `cp` or `ap`.
        mode: &'static str,
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Why.
        error: ServiceError,
    },
    /// A read the personality could not serve.
    Read {
        /// `cp` or `ap`.
        mode: &'static str,
        /// The key.
        key: String,
        /// Why.
        error: ServiceError,
    },
    /// A compare-and-set whose key did not hold the expected value: nothing was written.
    CasMismatch {
        /// `cp` or `ap`.
        mode: &'static str,
        /// The key.
        key: String,
        /// The value expected (`None`: absent).
        expected: Option<String>,
        /// The value that was not written.
        new: String,
        /// The node that compared.
        node: &'static str,
        /// What that node held when it compared (`None`: absent); not a vouched-for read.
        current: Option<String>,
        /// Its version.
        version: Option<u64>,
    },
    /// The key does not exist on the node that answered.
    KeyNotFound {
        /// `cp` or `ap`.
        mode: &'static str,
        /// The key.
        key: String,
        /// Who answered and how stale it was.
        answer: ReadAnswer,
    },
    /// The request's `X-Session-Token` was refused.
    Session(TokenError),
    /// Something inside the service failed (metrics encoding).
    Internal(String),
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        ApiError::Session(e)
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        ApiError::Input(e)
    }
}

#[derive(Serialize)]
struct InputBody<'a> {
    error: String,
    code: &'a str,
}

#[derive(Serialize)]
struct WriteErrorBody<'a> {
    error: String,
    mode: &'a str,
    key: &'a str,
    value: &'a str,
    version: Option<u64>,
    node: Option<&'a str>,
    replicated: bool,
    queued: bool,
    outcome: &'a str,
}

#[derive(Serialize)]
struct CasMismatchBody<'a> {
    error: &'a str,
    mode: &'a str,
    key: &'a str,
    expected: Option<&'a str>,
    value: &'a str,
    node: &'a str,
    current: Option<&'a str>,
    current_version: Option<u64>,
    outcome: &'a str,
}

#[derive(Serialize)]
struct ReadErrorBody<'a> {
    error: String,
    mode: &'a str,
    key: &'a str,
    outcome: &'a str,
}

#[derive(Serialize)]
struct NotFoundBody<'a> {
    error: &'a str,
    mode: &'a str,
    key: &'a str,
    node: &'a str,
    staleness_ms: u64,
    stale: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_guarantee: Option<bool>,
}

#[derive(Serialize)]
struct SessionErrorBody<'a> {
    error: String,
    reason: &'a str,
}

fn unavailable(body: impl Serialize) -> Response {
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Input(e) => {
                let body = InputBody {
                    error: e.to_string(),
                    code: e.code(),
                };
                (e.status(), Json(body)).into_response()
            }
            ApiError::Write {
                mode,
                key,
                value,
                error,
            } => {
                let version = match &error {
                    ServiceError::WriteIndeterminate { version, .. } => *version,
                    _ => None,
                };
                unavailable(WriteErrorBody {
                    error: error.to_string(),
                    mode,
                    key: &key,
                    value: &value,
                    version,
                    node: error.node(),
                    replicated: false,
                    queued: false,
                    outcome: error.outcome(),
                })
            }
            ApiError::Read { mode, key, error } => unavailable(ReadErrorBody {
                error: error.to_string(),
                mode,
                key: &key,
                outcome: error.outcome(),
            }),
            ApiError::CasMismatch {
                mode,
                key,
                expected,
                new,
                node,
                current,
                version,
            } => {
                let body = CasMismatchBody {
                    error: "the key did not hold the expected value; nothing was written",
                    mode,
                    key: &key,
                    expected: expected.as_deref(),
                    value: &new,
                    node,
                    current: current.as_deref(),
                    current_version: version,
                    outcome: "mismatch",
                };
                (StatusCode::CONFLICT, Json(body)).into_response()
            }
            ApiError::KeyNotFound { mode, key, answer } => {
                let body = NotFoundBody {
                    error: "key not found",
                    mode,
                    key: &key,
                    node: answer.node,
                    staleness_ms: answer.staleness_ms,
                    stale: answer.stale,
                    session_guarantee: answer.session.map(|s| s.guarantee),
                };
                (StatusCode::NOT_FOUND, Json(body)).into_response()
            }
            ApiError::Session(e) => {
                let reason = e.reason();
                let body = SessionErrorBody {
                    error: e.to_string(),
                    reason,
                };
                let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
                let challenge = format!(
                    r#"X-Session-Token realm="caplab", error="invalid_token", reason="{reason}""#
                );
                if let Ok(value) = HeaderValue::try_from(challenge) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            ApiError::Internal(detail) => {
                let body = InputBody {
                    error: detail,
                    code: "internal",
                };
                (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
            }
        }
    }
}
