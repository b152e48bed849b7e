//! Read-your-writes sessions: stateless, signed tokens (docs/design.md, "Read-your-writes
//! sessions").
//!
//! Data path: the top, between the HTTP handler and the mode policy. A request may carry
//! `X-Session-Token`; [`Sessions::check`] verifies it (a bad one is a 401, never ignored) and
//! hands the mode policy the session's id and minimum replication offset. The policy picks a
//! node that has processed that offset (AP) or reads the primary (CP) and reports the offset it
//! observed; [`Sessions::issue`] signs the updated token that goes back in the answer. Every
//! write answers a token (a new session when the request had none); a read answers one only
//! when it carried one. Nothing is stored server-side, so any instance sharing `SECRET_KEY`
//! can serve any session: no sticky sessions.
//!
//! - [`token`]: what a token holds and its binary layout;
//! - [`keyring`]: HMAC-SHA256 signing, verification and key rotation;
//! - [`error`]: why a token is refused.

use std::time::Duration;

use crate::config::Config;
use crate::time::unix_ms;

pub mod error;
pub mod keyring;
pub mod token;

pub use error::TokenError;
pub use keyring::Keyring;
pub use token::{SessionId, SessionToken};

/// The request and response header that carries the token.
pub const SESSION_HEADER: &str = "x-session-token";

/// What a mode policy needs to know about the session of a read or a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRead {
    /// Which session (AP finds the session's own queued writes by it).
    pub id: SessionId,
    /// The lowest replication offset a node must have processed to serve this session.
    pub min_offset: u64,
}

impl From<&SessionToken> for SessionRead {
    fn from(token: &SessionToken) -> Self {
        SessionRead {
            id: token.session,
            min_offset: token.min_offset,
        }
    }
}

/// What the policy reports back about a read made for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOutcome {
    /// Whether the answer honours the session (read-your-writes and monotonic reads).
    pub guarantee: bool,
    /// The replication offset the answer is known to include at most (the serving node's
    /// offset taken after the data read), raising the token's; `None` when none was observed.
    pub observed_offset: Option<u64>,
}

/// Token checking and issuing for one app instance.
#[derive(Debug, Clone)]
pub struct Sessions {
    keyring: Keyring,
    ttl: Duration,
}

impl Sessions {
    /// From the validated configuration (`SECRET_KEY`, `SECRET_KEY_PREVIOUS`,
    /// `SESSION_TOKEN_TTL_SEC`).
    pub fn from_config(config: &Config) -> Sessions {
        Sessions::new(
            Keyring::new(&config.secret_key, config.secret_key_previous.as_ref()),
            config.session_token_ttl,
        )
    }

    /// A keyring and how long an issued token lives.
    pub fn new(keyring: Keyring, ttl: Duration) -> Sessions {
        Sessions { keyring, ttl }
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The request's token, if it carried the header: `Ok(None)` without one, an error for
    /// one that is not valid text or does not verify.
    pub fn check(&self, header: Option<&[u8]>) -> Result<Option<SessionToken>, TokenError> {
        let Some(raw) = header else {
            return Ok(None);
        };
        let text = std::str::from_utf8(raw)
            .map_err(|_| TokenError::Malformed("the header is not ASCII text".into()))?;
        self.keyring.verify(text, unix_ms()).map(Some)
    }

    /// The signed token to answer for `session`, requiring `min_offset`, valid for the TTL
    /// from now (every answer renews a session).
    pub fn issue(&self, session: SessionId, min_offset: u64) -> String {
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        self.keyring.sign(&SessionToken {
            session,
            min_offset,
            expires_at_ms: unix_ms().saturating_add(ttl_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretKey;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn sessions() -> Sessions {
        Sessions::new(
            Keyring::new(&SecretKey::from("k"), None),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn issued_tokens_check_and_carry_their_fields() -> TestResult {
        let s = sessions();
        assert_eq!(s.check(None), Ok(None));
        let id = SessionId::random();
        let text = s.issue(id, 10);
        let t = s
            .check(Some(text.as_bytes()))?
            .ok_or("a present header checked as no token")?;
        assert_eq!((t.session, t.min_offset), (id, 10));
        assert!(t.expires_at_ms > unix_ms() + 59_000);
        assert!(t.expires_at_ms <= unix_ms() + 60_000);
        Ok(())
    }

    #[test]
    fn a_header_that_is_not_text_is_malformed() -> TestResult {
        let Err(err) = sessions().check(Some(&[0xff, 0xfe])) else {
            return Err("expected a non-text header to be refused".into());
        };
        assert_eq!(err.reason(), "malformed");
        Ok(())
    }
}
