//! The compare-and-set handlers: `POST /cas/{key}/{expected}/{new}` and `POST /cas/{key}` with
//! the JSON body `{"expected": "a" | null, "new": "b"}`.
//!
//! Data path: the top, beside the write handlers (`http::kv`). The path form can only expect
//! a value; "the key must be absent" is the body form's `"expected": null`. Both check the
//! session token and their input like a write, hand the cas to the mode policy
//! (`Personality::cas`), and answer 200 (applied), 409 (the key did not hold the expected
//! value: definitely not applied), or the write's 503 with `outcome` (`failed`,
//! `indeterminate`). Every answer carries the session's token, raised to the primary offset
//! the cas observed.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, InputError};
use super::input::{body_value, check_key, check_value, path_rejection};
use super::kv::{answer_token, session_token};
use crate::app::AppState;
use crate::config::Limits;
use crate::mode::CasOutcome;
use crate::session::{SessionId, SessionToken};

/// The body of `POST /cas/{key}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasRequestBody {
    /// The value the key must hold; `null`: the key must be absent. Required.
    pub expected: Option<String>,
    /// The value to write if it does.
    pub new: String,
}

/// The answer to a cas that applied (200).
#[derive(Debug, Serialize)]
pub struct CasBody<'a> {
    /// The key.
    pub key: &'a str,
    /// The value expected (`null`: absent).
    pub expected: Option<&'a str>,
    /// The value written.
    pub value: &'a str,
    /// The version the primary assigned.
    pub version: Option<u64>,
    /// `cp` or `ap`.
    pub mode: &'a str,
    /// The node that stored it.
    pub node: Option<&'a str>,
    /// Whether a replica confirmed it (CP: always true on 200; AP: false).
    pub replicated: bool,
    /// `ok`.
    pub outcome: &'a str,
}

/// `POST /cas/{key}/{expected}/{new}`
pub async fn cas_path(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let token = session_token(&state, &headers)?;
    let Path((key, expected, new)) = path.map_err(path_rejection)?;
    check_key(&key, &state.config.limits)?;
    check_value(&expected, &state.config.limits)?;
    check_value(&new, &state.config.limits)?;
    Ok(cas(&state, token, &key, Some(&expected), &new).await)
}

/// `POST /cas/{key}` with `{"expected": ..., "new": ...}`.
pub async fn cas_body(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let token = session_token(&state, &headers)?;
    let Path(key) = path.map_err(path_rejection)?;
    let limits = state.config.limits;
    check_key(&key, &limits)?;
    // Room for both values and the JSON around them; each is checked on its own below.
    let body_limits = Limits {
        max_value_bytes: limits.max_value_bytes.saturating_mul(2).saturating_add(256),
        ..limits
    };
    let text = body_value(
        &headers,
        body,
        &body_limits,
        state.config.server.body_timeout,
    )
    .await?;
    let parsed = parse_body(&text, &limits)?;
    Ok(cas(&state, token, &key, parsed.expected.as_deref(), &parsed.new).await)
}

/// The body as a cas: valid JSON of the right shape, each value within the limits.
pub fn parse_body(text: &str, limits: &Limits) -> Result<CasRequestBody, InputError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        // Outer `None`: the field is missing; `Some(None)`: it is `null`.
        #[serde(default, deserialize_with = "present")]
        expected: Option<Option<String>>,
        new: String,
    }
    fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
    let raw: Raw = serde_json::from_str(text).map_err(|e| {
        InputError::InvalidBody(format!(
            "want {{\"expected\": \"<value>\" or null, \"new\": \"<value>\"}}: {e}"
        ))
    })?;
    let Some(expected) = raw.expected else {
        return Err(InputError::InvalidBody(
            "\"expected\" is missing (null means the key must be absent)".into(),
        ));
    };
    if let Some(e) = &expected {
        check_value(e, limits)?;
    }
    check_value(&raw.new, limits)?;
    Ok(CasRequestBody {
        expected,
        new: raw.new,
    })
}

/// A cas, answered with its session's token whatever the outcome.
async fn cas(
    state: &AppState,
    token: Option<SessionToken>,
    key: &str,
    expected: Option<&str>,
    new: &str,
) -> Response {
    let (session, min_offset) = match token {
        Some(t) => (t.session, t.min_offset),
        None => (SessionId::random(), 0),
    };
    let result = state.personality.cas(key, expected, new).await;
    let observed = match &result {
        Ok(CasOutcome::Applied(w)) => w.primary_offset,
        Ok(CasOutcome::Mismatch { primary_offset, .. }) => Some(*primary_offset),
        Err(_) => None,
    };
    let mode = state.config.mode.as_str();
    let mut response = match result {
        Ok(CasOutcome::Applied(written)) => {
            let body = CasBody {
                key,
                expected,
                value: new,
                version: written.version,
                mode,
                node: written.node,
                replicated: written.replicated,
                outcome: "ok",
            };
            (StatusCode::OK, Json(body)).into_response()
        }
        Ok(CasOutcome::Mismatch {
            node,
            current,
            version,
            ..
        }) => ApiError::CasMismatch {
            mode,
            key: key.to_string(),
            expected: expected.map(str::to_string),
            new: new.to_string(),
            node,
            current,
            version,
        }
        .into_response(),
        Err(error) => ApiError::Write {
            mode,
            key: key.to_string(),
            value: new.to_string(),
            error,
        }
        .into_response(),
    };
    answer_token(
        state,
        &mut response,
        session,
        min_offset.max(observed.unwrap_or(0)),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_key_bytes: 16,
        max_value_bytes: 4,
    };

    #[test]
    fn the_body_needs_expected_spelled_out_and_values_within_limits() {
        let ok = parse_body(r#"{"expected": null, "new": "b"}"#, &LIMITS);
        assert!(
            matches!(ok, Ok(CasRequestBody { expected: None, .. })),
            "{ok:?}"
        );
        let ok = parse_body(r#"{"expected": "a", "new": "b"}"#, &LIMITS);
        assert!(
            matches!(&ok, Ok(b) if b.expected.as_deref() == Some("a") && b.new == "b"),
            "{ok:?}"
        );
        let missing = parse_body(r#"{"new": "b"}"#, &LIMITS);
        assert!(matches!(&missing, Err(InputError::InvalidBody(m)) if m.contains("missing")));
        assert!(matches!(
            parse_body(r#"{"expected": "a", "new": "b", "x": 1}"#, &LIMITS),
            Err(InputError::InvalidBody(_))
        ));
        assert!(matches!(
            parse_body("nope", &LIMITS),
            Err(InputError::InvalidBody(_))
        ));
        assert!(matches!(
            parse_body(r#"{"expected": "a", "new": "toolong"}"#, &LIMITS),
            Err(InputError::ValueTooLarge { .. })
        ));
        assert!(matches!(
            parse_body(r#"{"expected": "", "new": "b"}"#, &LIMITS),
            Err(InputError::EmptyValue)
        ));
    }
}
