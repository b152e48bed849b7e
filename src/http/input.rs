//! Input checks: keys and values are refused here, before any node is asked.
//!
//! Data path: the top, on the way in. Keys are non-empty, at most `MAX_KEY_BYTES`, valid UTF-8
//! after percent-decoding, with no control characters. Values are non-empty, at most
//! `MAX_VALUE_BYTES`, valid UTF-8 (from the path or from a `PUT` body). A path that only misses
//! its key or value (`/read/`, `/write/k/`) says so instead of a bare 404.

use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::http::StatusCode;
use bytes::Bytes;

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

/// The value of a `PUT /kv/{key}` body.
pub fn body_value(
    body: Result<Bytes, BytesRejection>,
    limits: &Limits,
) -> Result<String, InputError> {
    let bytes = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => InputError::ValueTooLarge {
            len: 0,
            max: limits.max_value_bytes,
        },
        _ => InputError::InvalidEncoding(rejection.body_text()),
    })?;
    if bytes.len() > limits.max_value_bytes {
        return Err(InputError::ValueTooLarge {
            len: bytes.len(),
            max: limits.max_value_bytes,
        });
    }
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
        ["read" | "kv", ""] | ["write", ""] | ["write", "", _] => InputError::EmptyKey,
        ["write", _] | ["write", _, ""] => InputError::EmptyValue,
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
            body_value(Ok(Bytes::from_static(b"\xff\xfe")), &LIMITS)
                .unwrap_err()
                .to_string()
                .contains("UTF-8")
        );
        assert_eq!(
            body_value(Ok(Bytes::from_static(b"ok")), &LIMITS),
            Ok("ok".to_string())
        );
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
