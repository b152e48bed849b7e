//! HTTP to the personalities, and what each answer means for the history.
//!
//! Where it sits: below the generator's client tasks. One operation is one request:
//! `GET /read/{key}`, `PUT /kv/{key}` (the value as the body, so any value size fits), or
//! `POST /cas/{key}` with `{"expected": ..., "new": ...}`. A cas answered 200 is `ok`, 409
//! (did not match) `fail`, 503 `failed` `fail`, 503 `indeterminate` or a timeout `info`.
//! A session client sends back the last `X-Session-Token` it was given. [`classify`] maps an
//! answer to Jepsen's vocabulary (see `docs/decisions.md`): a definite refusal is `fail`, a
//! timeout, a CP 503 `"outcome": "indeterminate"` or an AP 202 `"queued"` write is `info`.

use std::time::Duration;

use crate::check::{EventType, OpKind};

/// The session token header (docs/design.md, "Read-your-writes sessions").
pub const SESSION_HEADER: &str = "x-session-token";

/// What one request came to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Answer {
    /// `ok`, `fail` or `info` (`Invoke` never).
    pub kind: Option<EventType>,
    /// A read's value (`None` = absent or not read).
    pub value: Option<String>,
    /// The node that answered.
    pub node: Option<String>,
    /// The record version.
    pub version: Option<u64>,
    /// The staleness the read answer reported.
    pub staleness_ms: Option<u64>,
    /// Whether the answer said `"stale": true`.
    pub stale: bool,
    /// A session token to keep.
    pub token: Option<String>,
    /// HTTP status, if one came.
    pub status: Option<u16>,
    /// Why it was not ok, for the report's error list.
    pub error: Option<String>,
}

impl Answer {
    /// The event type (`info` when unset).
    pub fn event(&self) -> EventType {
        self.kind.unwrap_or(EventType::Info)
    }
}

/// Builds the HTTP client every operation shares (keep-alive pool, per-request timeout).
pub fn http_client(timeout: Duration, pool: usize) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_max_idle_per_host(pool)
        .tcp_nodelay(true)
        .build()
}

/// Sends one operation to `base` and classifies the answer.
pub async fn send(
    http: &reqwest::Client,
    base: &str,
    f: OpKind,
    key: &str,
    (expected, value): (Option<&str>, Option<&str>),
    token: Option<&str>,
) -> Answer {
    let request = match (f, value) {
        (OpKind::Write, Some(v)) => http.put(format!("{base}/kv/{key}")).body(v.to_string()),
        (OpKind::Cas, Some(v)) => http
            .post(format!("{base}/cas/{key}"))
            .header("content-type", "application/json")
            .body(serde_json::json!({"expected": expected, "new": v}).to_string()),
        _ => http.get(format!("{base}/read/{key}")),
    };
    let request = match token {
        Some(t) => request.header(SESSION_HEADER, t),
        None => request,
    };
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let token = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            match response.bytes().await {
                Ok(body) => {
                    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    let mut answer = classify(f, status, &json);
                    answer.token = token;
                    answer
                }
                Err(e) => transport_error(f, &e),
            }
        }
        Err(e) => transport_error(f, &e),
    }
}

/// A request that got no complete answer: refused before anything was sent is `fail`
/// (the operation cannot have happened); anything else (a timeout, a connection cut
/// mid-request) is `info`.
fn transport_error(_f: OpKind, e: &reqwest::Error) -> Answer {
    let kind = if e.is_connect() && !e.is_timeout() {
        EventType::Fail
    } else {
        EventType::Info
    };
    let what = if e.is_timeout() {
        "timeout".to_string()
    } else if e.is_connect() {
        "connection refused".to_string()
    } else {
        format!("transport error: {e}")
    };
    Answer {
        kind: Some(kind),
        error: Some(what),
        ..Answer::default()
    }
}

/// Maps an HTTP answer to the history's vocabulary.
pub fn classify(f: OpKind, status: u16, json: &serde_json::Value) -> Answer {
    let text = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let mut answer = Answer {
        status: Some(status),
        node: text("node"),
        version: json.get("version").and_then(|v| v.as_u64()),
        staleness_ms: json.get("staleness_ms").and_then(|v| v.as_u64()),
        stale: json.get("stale").and_then(|v| v.as_bool()).unwrap_or(false),
        ..Answer::default()
    };
    let outcome = text("outcome");
    answer.kind = Some(match (f, status) {
        (OpKind::Read, 200) => {
            answer.value = text("value");
            EventType::Ok
        }
        // The key is absent: a successful read of "nothing".
        (OpKind::Read, 404) if json.get("node").is_some() => EventType::Ok,
        (OpKind::Write | OpKind::Cas, 200) => EventType::Ok,
        // Did not match: definitely not applied.
        (OpKind::Cas, 409) => {
            answer.error = Some("409 mismatch".into());
            EventType::Fail
        }
        // AP queued it: it may be applied later, or superseded and never applied.
        (OpKind::Write, 202) => {
            answer.error = Some("queued".into());
            EventType::Info
        }
        (OpKind::Write | OpKind::Cas, 503) if outcome.as_deref() != Some("indeterminate") => {
            answer.error = Some(format!("503 {}", outcome.as_deref().unwrap_or("refused")));
            EventType::Fail
        }
        (OpKind::Write | OpKind::Cas, 503) => {
            answer.error = Some("503 indeterminate".into());
            EventType::Info
        }
        (OpKind::Read, 503) => {
            answer.error = Some("503 unavailable".into());
            EventType::Fail
        }
        // Any other 4xx is a definite refusal (bad input, a rejected session token).
        (_, 400..=499) => {
            answer.error = Some(format!("{status} {}", text("error").unwrap_or_default()));
            EventType::Fail
        }
        // Anything else from a server: we cannot know whether a write landed.
        _ => {
            answer.error = Some(format!("unexpected status {status}"));
            EventType::Info
        }
    });
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcomes_map_to_jepsen_types() {
        let ok = classify(
            OpKind::Read,
            200,
            &json!({"value": "v", "node": "g2", "staleness_ms": 40, "stale": false, "version": 3}),
        );
        assert_eq!(ok.event(), EventType::Ok);
        assert_eq!(
            (
                ok.value.as_deref(),
                ok.node.as_deref(),
                ok.staleness_ms,
                ok.version
            ),
            (Some("v"), Some("g2"), Some(40), Some(3))
        );
        let absent = classify(
            OpKind::Read,
            404,
            &json!({"error": "not found", "node": "g1", "staleness_ms": 0}),
        );
        assert_eq!((absent.event(), absent.value), (EventType::Ok, None));
        let unrouted = classify(OpKind::Read, 404, &json!({"error": "no route"}));
        assert_eq!(unrouted.event(), EventType::Fail);
        assert_eq!(
            classify(OpKind::Write, 200, &json!({})).event(),
            EventType::Ok
        );
        assert_eq!(
            classify(OpKind::Write, 202, &json!({"queued": true})).event(),
            EventType::Info
        );
        assert_eq!(
            classify(OpKind::Write, 503, &json!({"outcome": "indeterminate"})).event(),
            EventType::Info
        );
        assert_eq!(
            classify(OpKind::Write, 503, &json!({"outcome": "failed"})).event(),
            EventType::Fail
        );
        assert_eq!(
            classify(OpKind::Write, 503, &json!({"outcome": "rejected"})).event(),
            EventType::Fail
        );
        assert_eq!(
            classify(OpKind::Read, 503, &json!({"outcome": "failed"})).event(),
            EventType::Fail
        );
        assert_eq!(
            classify(OpKind::Read, 401, &json!({"error": "bad token"})).event(),
            EventType::Fail
        );
        assert_eq!(
            classify(OpKind::Write, 500, &json!({})).event(),
            EventType::Info
        );
        let cas = |status, body| classify(OpKind::Cas, status, &body).event();
        assert_eq!(cas(200, json!({"outcome": "ok"})), EventType::Ok);
        assert_eq!(cas(409, json!({"outcome": "mismatch"})), EventType::Fail);
        assert_eq!(cas(503, json!({"outcome": "failed"})), EventType::Fail);
        assert_eq!(
            cas(503, json!({"outcome": "indeterminate"})),
            EventType::Info
        );
        assert_eq!(cas(500, json!({})), EventType::Info);
    }
}
