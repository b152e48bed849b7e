//! Session tokens at the HTTP surface of both personalities, over a real primary/replica
//! pair: every write answers a token, a read with a token says `session_guarantee` and
//! answers the token raised; tampered, wrongly signed, expired and malformed tokens are
//! refused with 401 naming the reason (and the refused write is not applied); tokens signed
//! with `SECRET_KEY_PREVIOUS` are accepted and answered re-signed with `SECRET_KEY`.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caplab::config::{Mode, SecretKey};
use caplab::session::{Keyring, SessionId, SessionToken};
use caplab::time::unix_ms;
use common::app::{Reply, TestApp, raw_value, streaming_pair, test_config};
use common::redis::RedisPair;

const KEY: &str = "session-tokens-test-key-0123456789abcdef";
const OLD_KEY: &str = "the-previous-session-key-before-rotation";

async fn app(mode: Mode, pair: &RedisPair, previous: Option<&str>) -> TestApp {
    let mut config = test_config(mode, pair);
    config.secret_key = SecretKey::from(KEY);
    config.secret_key_previous = previous.map(SecretKey::from);
    TestApp::start(config).await
}

fn ring(key: &str) -> Keyring {
    Keyring::new(&SecretKey::from(key), None)
}

fn decode(token: &str) -> SessionToken {
    ring(KEY).verify(token, unix_ms()).expect("signed with KEY")
}

fn fresh(min_offset: u64) -> SessionToken {
    SessionToken {
        session: SessionId::random(),
        min_offset,
        expires_at_ms: unix_ms() + 60_000,
    }
}

fn assert_refused(reply: &Reply, reason: &str) {
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(reply.json["reason"].as_str(), Some(reason), "{reply:?}");
    assert!(
        reply.json["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{reply:?}"
    );
    let challenge = reply
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(challenge.contains(reason), "{reply:?}");
    assert!(reply.session_token().is_none(), "no token on a 401");
}

#[tokio::test]
async fn every_write_answers_a_token_and_reads_carry_it_forward() {
    let pair = streaming_pair().await;
    for mode in [Mode::Cp, Mode::Ap] {
        let app = app(mode, &pair, None).await;
        let w = app.post(&format!("/write/t-{mode}/1")).await;
        assert_eq!(w.status, 200, "{w:?}");
        let first = decode(&w.session_token().expect("a write answers a token"));
        assert!(first.min_offset > 0, "the primary's offset after the write");
        assert!(
            first.expires_at_ms > unix_ms() + 3_500_000,
            "default TTL 3600 s"
        );

        // Another write in the same session keeps its id and raises its offset.
        let token = w.session_token().unwrap();
        let header = [("x-session-token", token.as_str())];
        let w2 = app.post_with(&format!("/write/t-{mode}/2"), &header).await;
        assert_eq!(w2.status, 200, "{w2:?}");
        let second = decode(&w2.session_token().unwrap());
        assert_eq!(second.session, first.session);
        assert!(second.min_offset > first.min_offset, "{second:?} {first:?}");

        // A read with the token reads the write, says so, and keeps the session.
        let token = w2.session_token().unwrap();
        let r = app
            .get_with(
                &format!("/read/t-{mode}"),
                &[("x-session-token", token.as_str())],
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json["value"].as_str(), Some("2"), "{r:?}");
        assert_eq!(r.json["session_guarantee"].as_bool(), Some(true), "{r:?}");
        let third = decode(&r.session_token().expect("a session read answers a token"));
        assert_eq!(third.session, first.session);
        assert!(third.min_offset >= second.min_offset, "never lowered");

        // A new session per tokenless write; reads without a token stay as they were.
        let other = app.post(&format!("/write/t-{mode}/3")).await;
        assert_ne!(
            decode(&other.session_token().unwrap()).session,
            first.session
        );
        let plain = app.get(&format!("/read/t-{mode}")).await;
        assert!(plain.json.get("session_guarantee").is_none(), "{plain:?}");
        assert!(plain.session_token().is_none(), "{plain:?}");

        // A 404 read with a token says session_guarantee too.
        let missing = app
            .get_with(
                "/read/never-written",
                &[("x-session-token", token.as_str())],
            )
            .await;
        assert_eq!(missing.status, 404, "{missing:?}");
        assert_eq!(missing.json["session_guarantee"].as_bool(), Some(true));
        assert!(missing.session_token().is_some());
        app.shutdown().await;
    }
}

#[tokio::test]
async fn bad_tokens_are_refused_with_their_reason_and_change_nothing() {
    let pair = streaming_pair().await;
    let good = ring(KEY).sign(&fresh(1));
    let mut bytes = URL_SAFE_NO_PAD.decode(&good).unwrap();
    bytes[20] ^= 0x40; // inside min_offset
    let tampered = URL_SAFE_NO_PAD.encode(&bytes);
    let mut bytes = URL_SAFE_NO_PAD.decode(&good).unwrap();
    bytes[0] = 9;
    let future_version = URL_SAFE_NO_PAD.encode(&bytes);
    let foreign = ring("someone-elses-key-0123456789abcdef").sign(&fresh(1));
    let mut old = fresh(1);
    old.expires_at_ms = unix_ms() - 1_000;
    let expired = ring(KEY).sign(&old);
    let cases = [
        (tampered.as_str(), "bad_signature"),
        (foreign.as_str(), "bad_signature"),
        (expired.as_str(), "expired"),
        (future_version.as_str(), "unsupported_version"),
        ("not a token", "malformed"),
        (&good[..50], "malformed"),
        ("", "malformed"),
    ];
    for mode in [Mode::Cp, Mode::Ap] {
        let app = app(mode, &pair, None).await;
        for (i, (token, reason)) in cases.iter().enumerate() {
            let header = [("x-session-token", *token)];
            let key = format!("refused-{mode}-{i}");
            assert_refused(
                &app.post_with(&format!("/write/{key}/v"), &header).await,
                reason,
            );
            assert_refused(
                &app.get_with(&format!("/read/{key}"), &header).await,
                reason,
            );
            assert_eq!(
                raw_value(&pair.g1.url(), &key).await,
                None,
                "a refused write is not applied ({reason})"
            );
        }
        let metrics = app.get("/metrics").await.text;
        let refused = format!(
            r#"app_requests_total{{mode="{mode}",operation="write",status="401"}} {}"#,
            cases.len()
        );
        assert!(metrics.contains(&refused), "{refused} in {metrics}");
        app.shutdown().await;
    }
}

#[tokio::test]
async fn previous_key_tokens_are_accepted_and_answered_with_the_current_key() {
    let pair = streaming_pair().await;
    let app = app(Mode::Ap, &pair, Some(OLD_KEY)).await;
    let before = fresh(0);
    let old_token = ring(OLD_KEY).sign(&before);
    let header = [("x-session-token", old_token.as_str())];
    let w = app.post_with("/write/rotated/v", &header).await;
    assert_eq!(w.status, 200, "{w:?}");
    let renewed = w.session_token().unwrap();
    let after = decode(&renewed);
    assert_eq!(after.session, before.session, "the same session");
    assert!(
        ring(OLD_KEY).verify(&renewed, unix_ms()).is_err(),
        "re-signed with SECRET_KEY, not the previous key"
    );
    // A read with the old token is accepted too (it does not cover the write above, so the
    // replica may still answer 404; what matters is that it is not refused).
    let r = app.get_with("/read/rotated", &header).await;
    assert!(r.status == 200 || r.status == 404, "{r:?}");
    assert_eq!(r.json["session_guarantee"].as_bool(), Some(true), "{r:?}");
    let r = app
        .get_with("/read/rotated", &[("x-session-token", renewed.as_str())])
        .await;
    assert_eq!(r.json["value"].as_str(), Some("v"), "{r:?}");
    app.shutdown().await;

    // Once SECRET_KEY_PREVIOUS is removed, the old key's tokens are refused.
    let app = app_without_previous(&pair).await;
    assert_refused(
        &app.get_with("/read/rotated", &header).await,
        "bad_signature",
    );
    let r = app
        .get_with("/read/rotated", &[("x-session-token", renewed.as_str())])
        .await;
    assert_eq!(r.status, 200, "the re-signed token still works: {r:?}");
    app.shutdown().await;
}

async fn app_without_previous(pair: &RedisPair) -> TestApp {
    app(Mode::Ap, pair, None).await
}
