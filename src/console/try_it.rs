//! The "try it" pane: one write or read, relayed by the console to CP or AP, answered with
//! everything the app said (status, JSON body, session token) so the page can show version,
//! node, `stale`, `staleness_ms` and what the session token did.
//!
//! Client side of the data path: the console is a plain HTTP client of the apps here
//! (`PUT /kv/{key}`, `GET /kv/{key}`, `X-Session-Token`), so the page talks only to the
//! console. The key travels percent-encoded; the apps' own checks judge it.

use serde::{Deserialize, Serialize};

use super::Shared;

/// The most a key or value may be here (the apps have their own, lower, limits).
const MAX_LEN: usize = 64 * 1024;

/// What the page asks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TryRequest {
    /// `cp` or `ap`.
    pub via: String,
    /// `write` or `read`.
    pub op: String,
    /// The key.
    pub key: String,
    /// The value, for a write.
    #[serde(default)]
    pub value: Option<String>,
    /// The session token to send, if any.
    #[serde(default)]
    pub token: Option<String>,
}

/// What the app answered.
#[derive(Debug, Clone, Serialize)]
pub struct TryAnswer {
    /// `cp` or `ap`.
    pub via: String,
    /// What was sent (`PUT /kv/k`).
    pub request: String,
    /// The HTTP status (0: no answer).
    pub status: u16,
    /// The JSON body, or the text when it was not JSON.
    pub body: serde_json::Value,
    /// The `X-Session-Token` it answered with, if any.
    pub session_token: Option<String>,
    /// Whether a token was sent.
    pub sent_token: bool,
    /// Round trip through the console, ms.
    pub took_ms: f64,
}

/// Why the request was not relayed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TryError(pub String);

/// Percent-encodes everything but RFC 3986's unreserved characters, for one path segment
/// (and the dots of a key `.` or `..`, which a URL would otherwise resolve away).
pub fn encode_segment(s: &str) -> String {
    if s == "." || s == ".." {
        return s.replace('.', "%2E");
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Relays one request and returns what the app said.
pub async fn relay(shared: &Shared, req: TryRequest) -> Result<TryAnswer, TryError> {
    let record = shared.record_now();
    let base = match req.via.as_str() {
        "cp" => record.cp_url(),
        "ap" => record.ap_url(),
        other => return Err(TryError(format!("via must be cp or ap, not `{other}`"))),
    };
    if req.key.is_empty() || req.key.len() > MAX_LEN {
        return Err(TryError(format!("the key must be 1 to {MAX_LEN} bytes")));
    }
    let path = format!("/kv/{}", encode_segment(&req.key));
    let url = format!("{base}{path}");
    let mut request = match req.op.as_str() {
        "write" => {
            let value = req.value.clone().unwrap_or_default();
            if value.len() > MAX_LEN {
                return Err(TryError(format!(
                    "the value must be at most {MAX_LEN} bytes"
                )));
            }
            shared.http.put(&url).body(value)
        }
        "read" => shared.http.get(&url),
        other => return Err(TryError(format!("op must be write or read, not `{other}`"))),
    };
    let token = req.token.filter(|t| !t.trim().is_empty());
    if let Some(token) = &token {
        request = request.header("X-Session-Token", token.trim());
    }
    let method = if req.op == "write" { "PUT" } else { "GET" };
    let started = std::time::Instant::now();
    let (status, body, session_token) = match request.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let session_token = resp
                .headers()
                .get("x-session-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let text = resp.text().await.unwrap_or_default();
            let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
            (status, body, session_token)
        }
        Err(e) => (0, serde_json::json!({ "error": e.to_string() }), None),
    };
    Ok(TryAnswer {
        via: req.via,
        request: format!("{method} {path}"),
        status,
        body,
        session_token,
        sent_token: token.is_some(),
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_encoded_path_segment() {
        assert_eq!(encode_segment("k-1_a.b~"), "k-1_a.b~");
        assert_eq!(encode_segment("../metrics"), "..%2Fmetrics");
        assert_eq!(encode_segment("a b?c#d"), "a%20b%3Fc%23d");
        assert_eq!(encode_segment("é"), "%C3%A9");
        assert_eq!(encode_segment(".."), "%2E%2E");
    }
}
