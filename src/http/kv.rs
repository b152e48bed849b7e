//! The key-value handlers: `POST /write/{key}/{value}`, `PUT /kv/{key}`, `GET /kv/{key}` and
//! `GET /read/{key}`.
//!
//! Data path: the top. Each handler checks the request's `X-Session-Token` (a bad one is a
//! 401), checks its input, hands the key (and value) to the mode policy, and turns the answer
//! into the JSON of docs/design.md; failures go to `http::error`. Every write answers a session
//! token (the request's session, or a new one), raised to the primary's offset after the
//! write; a read that carried a token answers it raised to the offset the read observed, and
//! says `session_guarantee` in its body.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::{ApiError, InputError};
use super::input::{body_value, check_key, check_value, path_rejection};
use crate::app::AppState;
use crate::session::{SESSION_HEADER, SessionId, SessionRead, SessionToken, TokenError};

/// The answer to a write (200, or 202 when AP queued it).
#[derive(Debug, Serialize)]
pub struct WriteBody<'a> {
    /// The key.
    pub key: &'a str,
    /// The value.
    pub value: &'a str,
    /// The version g1 assigned (`null` while queued).
    pub version: Option<u64>,
    /// `cp` or `ap`.
    pub mode: &'a str,
    /// The node that stored it (`null` while queued).
    pub node: Option<&'a str>,
    /// Whether a replica confirmed it (CP: always true on 200; AP: false).
    pub replicated: bool,
    /// Whether it waits in AP's write-behind queue.
    pub queued: bool,
    /// `ok` or `queued`.
    pub outcome: &'a str,
    /// A queued write (202) only: `memory`, `written` or `fsynced` (see `promise`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durability: Option<&'a str>,
    /// A queued write (202) only: exactly what the 202 promises.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promise: Option<&'a str>,
}

/// The answer to a read that found the key.
#[derive(Debug, Serialize)]
pub struct ReadBody<'a> {
    /// The key.
    pub key: &'a str,
    /// The value.
    pub value: &'a str,
    /// Its primary-assigned version (`null` for a write still in AP's queue).
    pub version: Option<u64>,
    /// The writer's timestamp, Unix ms.
    pub written_at_ms: u64,
    /// `cp` or `ap`.
    pub mode: &'a str,
    /// The node that answered.
    pub node: &'a str,
    /// That node's measured staleness, ms.
    pub staleness_ms: u64,
    /// Whether that staleness exceeds `MAX_STALENESS_MS`.
    pub stale: bool,
    /// AP: the value is this session's write still waiting in the queue (`node` is `queue`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
    /// Present when the read carried a session token: whether the answer honours it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_guarantee: Option<bool>,
}

/// What is wrong with a request's `X-Session-Token` header(s).
pub(super) enum TokenHeaderError {
    /// More than one.
    Duplicate(InputError),
    /// The one there is was refused.
    Refused(TokenError),
}

impl From<TokenHeaderError> for ApiError {
    fn from(e: TokenHeaderError) -> Self {
        match e {
            TokenHeaderError::Duplicate(e) => ApiError::Input(e),
            TokenHeaderError::Refused(e) => ApiError::Session(e),
        }
    }
}

/// The request's verified session token, if it carried one. Two tokens are refused (400):
/// checking only the first would let a client smuggle a second past whatever looked at it.
pub(super) fn session_token(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SessionToken>, TokenHeaderError> {
    let mut all = headers.get_all(SESSION_HEADER).iter();
    let header = all.next().map(HeaderValue::as_bytes);
    let more = all.count();
    if more > 0 {
        return Err(TokenHeaderError::Duplicate(InputError::DuplicateHeader {
            name: "X-Session-Token",
            count: more + 1,
        }));
    }
    state
        .sessions
        .check(header)
        .map_err(TokenHeaderError::Refused)
}

/// Adds the signed token of `session` requiring `min_offset` to `response`.
pub(super) fn answer_token(
    state: &AppState,
    response: &mut Response,
    session: SessionId,
    min_offset: u64,
) {
    let text = state.sessions.issue(session, min_offset);
    // URL-safe base64 is always a valid header value.
    if let Ok(value) = HeaderValue::try_from(text) {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
}

/// `POST /write/{key}/{value}`
pub async fn write_path(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let token = session_token(&state, &headers)?;
    let Path((key, value)) = path.map_err(path_rejection)?;
    check_key(&key, &state.config.limits)?;
    check_value(&value, &state.config.limits)?;
    Ok(write(&state, token, &key, &value).await)
}

/// `PUT /kv/{key}` with the value as the body.
pub async fn write_body(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let token = session_token(&state, &headers)?;
    let Path(key) = path.map_err(path_rejection)?;
    check_key(&key, &state.config.limits)?;
    let limits = &state.config.limits;
    let value = body_value(&headers, body, limits, state.config.server.body_timeout).await?;
    Ok(write(&state, token, &key, &value).await)
}

/// A write, answered with its session's token whatever the outcome.
async fn write(state: &AppState, token: Option<SessionToken>, key: &str, value: &str) -> Response {
    let (session, min_offset) = match token {
        Some(t) => (t.session, t.min_offset),
        None => (SessionId::random(), 0),
    };
    let result = state.personality.write_in(key, value, Some(session)).await;
    let observed = result.as_ref().ok().and_then(|w| w.primary_offset);
    let mut response = write_answer(state, key, value, result);
    answer_token(
        state,
        &mut response,
        session,
        min_offset.max(observed.unwrap_or(0)),
    );
    response
}

fn write_answer(
    state: &AppState,
    key: &str,
    value: &str,
    result: Result<crate::mode::Written, crate::mode::ServiceError>,
) -> Response {
    let mode = state.config.mode.as_str();
    match result {
        Ok(written) => {
            let status = if written.queued {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            let body = WriteBody {
                key,
                value,
                version: written.version,
                mode,
                node: written.node,
                replicated: written.replicated,
                queued: written.queued,
                outcome: if written.queued { "queued" } else { "ok" },
                durability: written.durability.map(|d| d.as_str()),
                promise: written.durability.map(|d| d.promise()),
            };
            (status, Json(body)).into_response()
        }
        Err(error) => ApiError::Write {
            mode,
            key: key.to_string(),
            value: value.to_string(),
            error,
        }
        .into_response(),
    }
}

/// `GET /read/{key}` and `GET /kv/{key}`
pub async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let token = session_token(&state, &headers)?;
    let Path(key) = path.map_err(path_rejection)?;
    check_key(&key, &state.config.limits)?;
    let Some(token) = token else {
        let result = state.personality.read(&key).await;
        return Ok(read_answer(&state, key, result));
    };
    let result = state
        .personality
        .read_in(&key, SessionRead::from(&token))
        .await;
    let observed = result
        .as_ref()
        .ok()
        .and_then(|a| a.session)
        .and_then(|s| s.observed_offset);
    let mut response = read_answer(&state, key, result);
    answer_token(
        &state,
        &mut response,
        token.session,
        token.min_offset.max(observed.unwrap_or(0)),
    );
    Ok(response)
}

fn read_answer(
    state: &AppState,
    key: String,
    result: Result<crate::mode::ReadAnswer, crate::mode::ServiceError>,
) -> Response {
    let mode = state.config.mode.as_str();
    let answer = match result {
        Ok(answer) => answer,
        Err(error) => return ApiError::Read { mode, key, error }.into_response(),
    };
    let Some(record) = &answer.record else {
        return ApiError::KeyNotFound { mode, key, answer }.into_response();
    };
    let body = ReadBody {
        key: &key,
        value: &record.value,
        version: (!answer.queued).then_some(record.version),
        written_at_ms: record.written_at_ms,
        mode,
        node: answer.node,
        staleness_ms: answer.staleness_ms,
        stale: answer.stale,
        queued: answer.queued,
        session_guarantee: answer.session.map(|s| s.guarantee),
    };
    Json(body).into_response()
}
