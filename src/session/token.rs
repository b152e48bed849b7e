//! The session token: what it holds and its compact binary layout.
//!
//! Data path: the top. A [`SessionToken`] travels in the `X-Session-Token` header: the
//! session's random id, the lowest replication offset a node must have processed to serve
//! this session (`min_offset`), and its expiry. This file only lays the fields out in bytes;
//! signing and the text form are [`super::Keyring`]'s. The layout, 33 bytes before the MAC:
//!
//! | bytes | field |
//! |---|---|
//! | 0 | layout version ([`TOKEN_VERSION`]) |
//! | 1..17 | session id (128 random bits) |
//! | 17..25 | `min_offset`, big-endian u64 |
//! | 25..33 | `expires_at_ms` (Unix ms), big-endian u64 |

use std::fmt;

use super::error::TokenError;

/// The layout version written first in every token.
pub const TOKEN_VERSION: u8 = 1;
/// Bytes of the signed payload.
pub const PAYLOAD_LEN: usize = 33;

/// A session's random 128-bit id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub [u8; 16]);

impl SessionId {
    /// A new random id (a new session).
    pub fn random() -> SessionId {
        SessionId(rand::random())
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// What a session token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionToken {
    /// Which session.
    pub session: SessionId,
    /// The lowest replication offset a node must have processed to serve this session: the
    /// primary's offset after its last write, raised by every read (monotonic reads).
    pub min_offset: u64,
    /// When the token stops being accepted, Unix ms.
    pub expires_at_ms: u64,
}

impl SessionToken {
    /// The signed bytes.
    pub fn payload(&self) -> [u8; PAYLOAD_LEN] {
        let mut out = [0u8; PAYLOAD_LEN];
        out[0] = TOKEN_VERSION;
        out[1..17].copy_from_slice(&self.session.0);
        out[17..25].copy_from_slice(&self.min_offset.to_be_bytes());
        out[25..33].copy_from_slice(&self.expires_at_ms.to_be_bytes());
        out
    }

    /// Reads a payload's fields (the signature is checked by the caller first).
    pub fn from_payload(bytes: &[u8]) -> Result<SessionToken, TokenError> {
        let version = *bytes
            .first()
            .ok_or_else(|| TokenError::Malformed("empty".into()))?;
        if version != TOKEN_VERSION {
            return Err(TokenError::UnsupportedVersion(version));
        }
        if bytes.len() != PAYLOAD_LEN {
            return Err(TokenError::Malformed(format!(
                "a version {TOKEN_VERSION} payload is {PAYLOAD_LEN} bytes, got {}",
                bytes.len()
            )));
        }
        let mut session = [0u8; 16];
        session.copy_from_slice(&bytes[1..17]);
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(b)
        };
        Ok(SessionToken {
            session: SessionId(session),
            min_offset: u64_at(17),
            expires_at_ms: u64_at(25),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn payload_round_trips() -> TestResult {
        let t = SessionToken {
            session: SessionId([7; 16]),
            min_offset: u64::MAX - 3,
            expires_at_ms: 1_800_000_000_000,
        };
        let bytes = t.payload();
        assert_eq!(bytes[0], TOKEN_VERSION);
        assert_eq!(SessionToken::from_payload(&bytes)?, t);
        assert_eq!(
            SessionToken::from_payload(&bytes[..20]),
            Err(TokenError::Malformed(
                "a version 1 payload is 33 bytes, got 20".into()
            ))
        );
        let mut other = bytes;
        other[0] = 2;
        assert_eq!(
            SessionToken::from_payload(&other),
            Err(TokenError::UnsupportedVersion(2))
        );
        Ok(())
    }

    #[test]
    fn session_ids_are_random_and_print_as_hex() {
        assert_ne!(SessionId::random(), SessionId::random());
        assert_eq!(SessionId([0xab; 16]).to_string(), "ab".repeat(16));
    }
}
