//! Why a session token was refused.
//!
//! Data path: the top, before any node is asked. [`super::Keyring::verify`] answers one of
//! these for a token it will not honour; `http::error` (the one place that maps errors to
//! statuses) turns it into a 401 whose JSON names the [`reason`](TokenError::reason). A bad
//! token is never silently ignored: a client that believes it holds a session must learn
//! that it does not.

/// A session token the service refuses (401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token at all: not URL-safe base64, the wrong length, or not ASCII.
    #[error("the session token is malformed: {0}")]
    Malformed(String),
    /// A token layout this service does not know (from a newer or older release).
    #[error("the session token has layout version {0}, which this service does not read")]
    UnsupportedVersion(u8),
    /// The signature matches neither `SECRET_KEY` nor `SECRET_KEY_PREVIOUS`: forged, altered,
    /// or signed by a service with another key.
    #[error("the session token's signature does not match this service's key")]
    BadSignature,
    /// The token's expiry has passed.
    #[error("the session token expired {ago_ms} ms ago; start a new session")]
    Expired {
        /// How long ago it expired.
        ago_ms: u64,
    },
}

impl TokenError {
    /// The machine-readable reason of the 401 body and `WWW-Authenticate` header.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => "malformed",
            TokenError::UnsupportedVersion(_) => "unsupported_version",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired { .. } => "expired",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_distinct_and_stable() {
        let all = [
            TokenError::Malformed("x".into()),
            TokenError::UnsupportedVersion(9),
            TokenError::BadSignature,
            TokenError::Expired { ago_ms: 1 },
        ];
        let reasons: Vec<_> = all.iter().map(TokenError::reason).collect();
        assert_eq!(
            reasons,
            [
                "malformed",
                "unsupported_version",
                "bad_signature",
                "expired"
            ]
        );
        assert!(all[1].to_string().contains('9'));
    }
}
