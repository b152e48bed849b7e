//! Input checks: keys and values are refused here, before any node is asked.
//!
//! Data path: the top, on the way in. Keys are non-empty, at most `MAX_KEY_BYTES`, valid UTF-8
//! after percent-decoding, with no control characters. Values are non-empty, at most
//! `MAX_VALUE_BYTES`, valid UTF-8 (from the path or from a `PUT` body). A path that only misses
//! its key or value (`/read/`, `/write/k/`) says so instead of a bare 404.

use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::error::InputError;
use crate::config::Limits;

/// Longest path echoed back in an error.
const MAX_ECHOED_PATH: usize = 120;

/// Checks a key.
pub fn check_key(key: &str, limits: &Limits) -> Result<(), InputError> {
    if key.is_empty() {
        return Err(InputError::EmptyKey);
    }
    if key.len() > limits.max_key_bytes {
        return Err(InputError::KeyTooLong {
            len: key.len(),
            max: limits.max_key_bytes,
        });
    }
    if let Some(byte) = key.bytes().find(|b| b.is_ascii_control()) {
        return Err(InputError::KeyControlCharacter { byte });
    }
    Ok(())
}

/// Checks a value.
pub fn check_value(value: &str, limits: &Limits) -> Result<(), InputError> {
    if value.is_empty() {
        return Err(InputError::EmptyValue);
    }
    if value.len() > limits.max_value_bytes {
        return Err(InputError::ValueTooLarge {
            len: value.len(),
            max: limits.max_value_bytes,
        });
    }
    Ok(())
}

/// A path segment axum could not decode (invalid UTF-8 after percent-decoding).
pub fn path_rejection(rejection: PathRejection) -> InputError {
    InputError::InvalidEncoding(rejection.body_text())
}

/// The value of a `PUT /kv/{key}` body. A `Content-Length` above `MAX_VALUE_BYTES` is refused
/// with that size before a byte is read; a body without one is read up to the limit and no
/// further. The whole body must arrive within `deadline` (`HTTP_BODY_TIMEOUT_SEC`), however
/// slowly its bytes trickle in.
pub async fn body_value(
    headers: &HeaderMap,
    body: Body,
    limits: &Limits,
    deadline: Duration,
) -> Result<String, InputError> {
    let max = limits.max_value_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if let Some(len) = declared.filter(|len| *len > max) {
        return Err(InputError::ValueTooLarge { len, max });
    }
    let read = async {
        let mut stream = body.into_data_stream();
        let mut bytes = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| InputError::BodyUnreadable(e.to_string()))?;
            if bytes.len() + chunk.len() > max {
                return Err(InputError::ValueOverLimit { max });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes.freeze())
    };
    let bytes =
        tokio::time::timeout(deadline, read)
            .await
            .map_err(|_| InputError::BodyTimeout {
                millis: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
            })??;
    value_from_bytes(bytes, limits)
}

/// A body's bytes as a checked value.
pub fn value_from_bytes(bytes: Bytes, limits: &Limits) -> Result<String, InputError> {
    let value = String::from_utf8(bytes.to_vec())
        .map_err(|e| InputError::InvalidEncoding(format!("the value is not valid UTF-8 ({e})")))?;
    check_value(&value, limits)?;
    Ok(value)
}

/// What is wrong with a request no route matched: a kv path with an empty key or value is a
/// 400 saying so; anything else is a 404.
pub fn unmatched(method: &str, path: &str) -> InputError {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["read" | "kv" | "cas", ""] | ["write", ""] | ["write", "", _] | ["cas", "", _, _] => {
            InputError::EmptyKey
        }
        ["write", _] | ["write", _, ""] | ["cas", _, "", _] | ["cas", _, _, ""] => {
            InputError::EmptyValue
        }
        _ => InputError::NotFound {
            method: method.to_string(),
            path: shorten(path),
        },
    }
}

/// A path cut to a length safe to echo.
pub fn shorten(path: &str) -> String {
    if path.len() <= MAX_ECHOED_PATH {
        return path.to_string();
    }
    let mut end = MAX_ECHOED_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &path[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_key_bytes: 8,
        max_value_bytes: 4,
    };

    #[test]
    fn keys_are_checked() {
        assert_eq!(check_key("", &LIMITS), Err(InputError::EmptyKey));
        assert_eq!(
            check_key("123456789", &LIMITS),
            Err(InputError::KeyTooLong { len: 9, max: 8 })
        );
        assert_eq!(
            check_key("a\nb", &LIMITS),
            Err(InputError::KeyControlCharacter { byte: b'\n' })
        );
        assert_eq!(check_key("ключ", &LIMITS), Ok(()));
    }

    #[test]
    fn values_are_checked() {
        assert_eq!(check_value("", &LIMITS), Err(InputError::EmptyValue));
        assert_eq!(
            check_value("12345", &LIMITS),
            Err(InputError::ValueTooLarge { len: 5, max: 4 })
        );
        assert!(
            value_from_bytes(Bytes::from_static(b"\xff\xfe"), &LIMITS)
                .unwrap_err()
                .to_string()
                .contains("UTF-8")
        );
        assert_eq!(
            value_from_bytes(Bytes::from_static(b"ok"), &LIMITS),
            Ok("ok".to_string())
        );
    }

    #[tokio::test]
    async fn bodies_are_refused_by_their_announced_size_or_at_the_limit() {
        let second = Duration::from_secs(1);
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, "10485760".parse().unwrap()); // ok: test code
        assert_eq!(
            body_value(&headers, Body::from("x"), &LIMITS, second).await,
            Err(InputError::ValueTooLarge {
                len: 10_485_760,
                max: 4
            })
        );
        let unannounced = body_value(&HeaderMap::new(), Body::from("12345"), &LIMITS, second).await;
        assert_eq!(unannounced, Err(InputError::ValueOverLimit { max: 4 }));
        assert_eq!(
            body_value(&HeaderMap::new(), Body::from("1234"), &LIMITS, second).await,
            Ok("1234".to_string())
        );
    }

    #[tokio::test]
    async fn a_body_that_trickles_in_past_the_deadline_is_refused() {
        let (tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let body = Body::from_stream(rx);
        let limits = Limits {
            max_key_bytes: 8,
            max_value_bytes: 64,
        };
        // One byte every 50 ms: each arrives well within any per-chunk timeout, the whole
        // body never within the deadline.
        let feeder = tokio::spawn(async move {
            let mut tx = tx;
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if futures::SinkExt::send(&mut tx, Ok(Bytes::from_static(b"a")))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let deadline = Duration::from_millis(300);
        let got = body_value(&HeaderMap::new(), body, &limits, deadline).await;
        assert_eq!(got, Err(InputError::BodyTimeout { millis: 300 }));
        feeder.abort();
    }

    #[test]
    fn unmatched_kv_paths_name_the_missing_part() {
        assert_eq!(unmatched("GET", "/read/"), InputError::EmptyKey);
        assert_eq!(unmatched("PUT", "/kv/"), InputError::EmptyKey);
        assert_eq!(unmatched("POST", "/write//v"), InputError::EmptyKey);
        assert_eq!(unmatched("POST", "/write/k/"), InputError::EmptyValue);
        assert_eq!(unmatched("POST", "/write/k"), InputError::EmptyValue);
        assert!(matches!(
            unmatched("GET", "/nope"),
            InputError::NotFound { .. }
        ));
        assert!(shorten(&"é".repeat(200)).len() <= MAX_ECHOED_PATH + 3);
    }
}
