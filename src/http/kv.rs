//! The key-value handlers: `POST /write/{key}/{value}`, `PUT /kv/{key}`, `GET /kv/{key}` and
//! `GET /read/{key}`.
//!
//! Data path: the top. Each handler checks its input, hands the key (and value) to the mode
//! policy, and turns the answer into the JSON of DESIGN.md; failures go to `http::error`.

use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

use super::error::ApiError;
use super::input::{body_value, check_key, check_value, path_rejection};
use crate::app::AppState;

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
}

/// The answer to a read that found the key.
#[derive(Debug, Serialize)]
pub struct ReadBody<'a> {
    /// The key.
    pub key: &'a str,
    /// The value.
    pub value: &'a str,
    /// Its primary-assigned version.
    pub version: u64,
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
}

/// `POST /write/{key}/{value}`
pub async fn write_path(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path((key, value)) = path.map_err(path_rejection)?;
    check_key(&key, &state.config.limits)?;
    check_value(&value, &state.config.limits)?;
    write(&state, &key, &value).await
}

/// `PUT /kv/{key}` with the value as the body.
pub async fn write_body(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Path(key) = path.map_err(path_rejection)?;
    check_key(&key, &state.config.limits)?;
    let value = body_value(body, &state.config.limits)?;
    write(&state, &key, &value).await
}

async fn write(state: &AppState, key: &str, value: &str) -> Result<Response, ApiError> {
    let mode = state.config.mode.as_str();
    match state.personality.write(key, value).await {
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
            };
            Ok((status, Json(body)).into_response())
        }
        Err(error) => Err(ApiError::Write {
            mode,
            key: key.to_string(),
            value: value.to_string(),
            error,
        }),
    }
}

/// `GET /read/{key}` and `GET /kv/{key}`
pub async fn read(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(key) = path.map_err(path_rejection)?;
    check_key(&key, &state.config.limits)?;
    let mode = state.config.mode.as_str();
    let answer = match state.personality.read(&key).await {
        Ok(answer) => answer,
        Err(error) => return Err(ApiError::Read { mode, key, error }),
    };
    let Some(record) = &answer.record else {
        return Err(ApiError::KeyNotFound { mode, key, answer });
    };
    let body = ReadBody {
        key: &key,
        value: &record.value,
        version: record.version,
        written_at_ms: record.written_at_ms,
        mode,
        node: answer.node,
        staleness_ms: answer.staleness_ms,
        stale: answer.stale,
    };
    Ok(Json(body).into_response())
}
