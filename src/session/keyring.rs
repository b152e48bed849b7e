//! Signing and verifying session tokens with HMAC-SHA256, and key rotation.
//!
//! Data path: the top, before the mode policy. A [`Keyring`] holds `SECRET_KEY` and, during a
//! rotation, `SECRET_KEY_PREVIOUS`: it signs with the current key and accepts either, so
//! instances can be moved to a new key one at a time and tokens issued before stay good until
//! they next come back (every answer re-signs them with the current key). A token's text is
//! the payload of [`SessionToken::payload`] followed by its 32-byte MAC, in URL-safe base64
//! without padding (87 characters). Verification checks, in order: the text decodes to a
//! token's length (else `malformed`), the layout version is known, the MAC matches one key (constant-time, by `hmac`), the token has
//! not expired.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::TokenError;
use super::token::{PAYLOAD_LEN, SessionToken, TOKEN_VERSION};
use crate::config::SecretKey;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC appended to the payload.
const MAC_LEN: usize = 32;
/// Bytes of a whole token.
const TOKEN_LEN: usize = PAYLOAD_LEN + MAC_LEN;
/// Characters of a token's text (65 bytes in base64 without padding).
pub const TEXT_LEN: usize = 87;
/// Longest header text looked at; anything longer is refused before decoding.
const MAX_TEXT_LEN: usize = 256;

/// The keys tokens are signed and checked with. Cloning is cheap enough for app start; the
/// hot path borrows it.
#[derive(Clone)]
pub struct Keyring {
    current: HmacSha256,
    previous: Option<HmacSha256>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Keyring(<current>{})",
            if self.previous.is_some() {
                ", <previous>"
            } else {
                ""
            }
        )
    }
}

fn mac_for(key: &SecretKey) -> HmacSha256 {
    // HMAC takes keys of any length (a long key is hashed first), so this never fails.
    HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length") // ok: any length
}

impl Keyring {
    /// Signs with `current`; also accepts tokens signed with `previous`.
    pub fn new(current: &SecretKey, previous: Option<&SecretKey>) -> Keyring {
        Keyring {
            current: mac_for(current),
            previous: previous.map(mac_for),
        }
    }

    /// The token's text form, signed with the current key.
    pub fn sign(&self, token: &SessionToken) -> String {
        let payload = token.payload();
        let mut mac = self.current.clone();
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        let mut bytes = [0u8; TOKEN_LEN];
        bytes[..PAYLOAD_LEN].copy_from_slice(&payload);
        bytes[PAYLOAD_LEN..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Checks a token's text at time `now_ms`; any input at all gives an answer, never a panic.
    pub fn verify(&self, text: &str, now_ms: u64) -> Result<SessionToken, TokenError> {
        if text.is_empty() {
            return Err(TokenError::Malformed("the header is empty".into()));
        }
        if text.len() > MAX_TEXT_LEN {
            return Err(TokenError::Malformed(format!(
                "{} characters, a token has {TEXT_LEN}",
                text.len()
            )));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|e| TokenError::Malformed(format!("not URL-safe base64: {e}")))?;
        if bytes.len() != TOKEN_LEN {
            return Err(TokenError::Malformed(format!(
                "{} bytes, a token has {TOKEN_LEN}",
                bytes.len()
            )));
        }
        if bytes[0] != TOKEN_VERSION {
            return Err(TokenError::UnsupportedVersion(bytes[0]));
        }
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        let matches = |key: &HmacSha256| {
            let mut mac = key.clone();
            mac.update(payload);
            mac.verify_slice(tag).is_ok()
        };
        if !matches(&self.current) && !self.previous.as_ref().is_some_and(matches) {
            return Err(TokenError::BadSignature);
        }
        let token = SessionToken::from_payload(payload)?;
        if token.expires_at_ms <= now_ms {
            return Err(TokenError::Expired {
                ago_ms: now_ms - token.expires_at_ms,
            });
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionId;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const NOW: u64 = 1_800_000_000_000;

    fn token() -> SessionToken {
        SessionToken {
            session: SessionId::random(),
            min_offset: 4242,
            expires_at_ms: NOW + 60_000,
        }
    }

    fn ring(key: &str) -> Keyring {
        Keyring::new(&SecretKey::from(key), None)
    }

    #[test]
    fn signed_tokens_verify_and_are_url_safe() {
        let k = ring("k1");
        let t = token();
        let text = k.sign(&t);
        assert_eq!(text.len(), TEXT_LEN);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{text}"
        );
        assert_eq!(k.verify(&text, NOW), Ok(t));
    }

    #[test]
    fn any_changed_byte_is_refused() -> TestResult {
        let k = ring("k1");
        let text = k.sign(&token());
        let bytes = URL_SAFE_NO_PAD.decode(&text)?;
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 0x01;
            let Err(err) = k.verify(&URL_SAFE_NO_PAD.encode(&tampered), NOW) else {
                return Err(format!("byte {i}: expected the tampered token to be refused").into());
            };
            let expected = if i == 0 {
                "unsupported_version"
            } else {
                "bad_signature"
            };
            assert_eq!(err.reason(), expected, "byte {i}");
        }
        Ok(())
    }

    #[test]
    fn another_key_is_refused_and_the_previous_key_accepted() {
        let old = ring("old-key");
        let t = token();
        let signed_old = old.sign(&t);
        assert_eq!(
            ring("new-key").verify(&signed_old, NOW),
            Err(TokenError::BadSignature)
        );
        let rotated = Keyring::new(
            &SecretKey::from("new-key"),
            Some(&SecretKey::from("old-key")),
        );
        assert_eq!(rotated.verify(&signed_old, NOW), Ok(t));
        // It signs with the new key only: the old ring no longer accepts what it issues.
        let signed_new = rotated.sign(&t);
        assert_eq!(old.verify(&signed_new, NOW), Err(TokenError::BadSignature));
        assert_eq!(ring("new-key").verify(&signed_new, NOW), Ok(t));
    }

    #[test]
    fn expired_tokens_are_refused_with_their_age() {
        let k = ring("k1");
        let t = token();
        let text = k.sign(&t);
        assert_eq!(
            k.verify(&text, t.expires_at_ms + 5),
            Err(TokenError::Expired { ago_ms: 5 })
        );
        assert_eq!(
            k.verify(&text, t.expires_at_ms),
            Err(TokenError::Expired { ago_ms: 0 })
        );
        assert!(k.verify(&text, t.expires_at_ms - 1).is_ok());
    }

    #[test]
    fn malformed_input_is_named() -> TestResult {
        let k = ring("k1");
        let text = k.sign(&token());
        for bad in [
            "",
            "!!!",
            "a",
            &text[..40],
            &format!("{text}AAAA"),
            &"A".repeat(1000),
            "aGVsbG8=",
        ] {
            let Err(err) = k.verify(bad, NOW) else {
                return Err(format!("{bad:?}: expected malformed input to be refused").into());
            };
            assert_eq!(err.reason(), "malformed", "{bad:?}: {err:?}");
        }
        let Err(err) = k.verify("", NOW) else {
            return Err("expected empty input to be refused".into());
        };
        assert_eq!(err.reason(), "malformed");
        let Err(err) = k.verify(&text[..40], NOW) else {
            return Err("expected a truncated token to be refused".into());
        };
        assert_eq!(err.reason(), "malformed");
        Ok(())
    }

    #[test]
    fn random_bytes_never_panic() {
        let k = ring("k1");
        for len in 0..200 {
            for _ in 0..20 {
                let bytes: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
                let as_text = String::from_utf8_lossy(&bytes);
                assert!(k.verify(&as_text, NOW).is_err());
                let encoded = URL_SAFE_NO_PAD.encode(&bytes);
                assert!(k.verify(&encoded, NOW).is_err());
            }
        }
    }
}
