//! Benchmarks of read-your-writes sessions, figures in BENCHMARKS.md:
//!
//! ```text
//! cargo bench --bench session
//! ```
//!
//! - `token/verify` against `token/base64_decode` (decoding the same 87 characters, the least
//!   any check of the header costs), and `token/sign`;
//! - an AP `GET /read/{key}` through the whole HTTP service in-process (router, counting,
//!   handler, AP policy, a real `redis-server` replica over loopback), without a token and
//!   with one (token check, `ROLE`/`HGETALL`/`ROLE` pipeline, re-signed token), in the same
//!   run. The key is on g2 and g2 has passed the token's offset, so both are served by g2:
//!   the difference is what a session costs when it is honoured at no fallback.
//!
//! Under `cargo test --all-targets` criterion runs each routine once (a smoke test).

use std::hint::black_box;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caplab::config::{Config, Mode, SecretKey};
use caplab::session::{Keyring, SessionId, SessionToken};
use caplab::time::unix_ms;
use criterion::Criterion;
use http_body_util::BodyExt;
use tower_service::Service;

#[path = "support/mod.rs"]
mod support;

use support::Failure;
use support::pair::direct_pair;

fn token_benches(c: &mut Criterion) {
    let ring = Keyring::new(
        &SecretKey::from("0123456789abcdef0123456789abcdef"),
        Some(&SecretKey::from("fedcba9876543210fedcba9876543210")),
    );
    let token = SessionToken {
        session: SessionId::random(),
        min_offset: 123_456_789,
        expires_at_ms: unix_ms() + 3_600_000,
    };
    let text = ring.sign(&token);
    let now = unix_ms();
    assert_eq!(ring.verify(&text, now), Ok(token), "verify must succeed");
    let mut group = c.benchmark_group("token");
    group.bench_function("base64_decode", |b| {
        b.iter(|| URL_SAFE_NO_PAD.decode(black_box(&text)))
    });
    group.bench_function("verify", |b| b.iter(|| ring.verify(black_box(&text), now)));
    group.bench_function("sign", |b| b.iter(|| ring.sign(black_box(&token))));
    group.finish();
}

fn request(path: &str, token: Option<&str>) -> axum::extract::Request {
    let mut builder = axum::http::Request::builder().method("GET").uri(path);
    if let Some(t) = token {
        builder = builder.header("x-session-token", t);
    }
    // ok: a fixed method, a valid path and a token of URL-safe characters.
    builder.body(axum::body::Body::empty()).expect("request")
}

/// One request through the service; the status and the body.
async fn call(
    service: &mut caplab::http::Counted,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, serde_json::Value), Failure> {
    let response = service.call(request(path, token)).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or_default()))
}

fn read_benches(c: &mut Criterion) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let (g1, g2) = runtime.block_on(direct_pair(dir.path(), Duration::from_secs(10)))?;
    let mut config = Config::new(Mode::Ap, &g1.url(), &g2.url());
    config.port = 0;
    config.max_staleness = Duration::from_secs(5);
    let app = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Ok::<_, Failure>(caplab::app::start(config, listener).await?)
    })?;
    let mut service = caplab::http::service(app.state().clone());

    // One write gives the key and the token; wait until g2 serves it with the token.
    let token = runtime.block_on(async {
        let write = axum::http::Request::builder()
            .method("POST")
            .uri("/write/bench-session/value")
            .body(axum::body::Body::empty())?;
        let response = service.call(write).await?;
        let token = response
            .headers()
            .get("x-session-token")
            .ok_or("the write answered no token")?
            .to_str()?
            .to_string();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = call(&mut service, "/read/bench-session", Some(&token)).await?;
            if status == 200 && body["node"] == "g2" && body["session_guarantee"] == true {
                return Ok::<_, Failure>(token);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("g2 never served the session: {status} {body}").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })?;

    let mut group = c.benchmark_group("ap_read");
    group.bench_function("without_token", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let (status, body) = call(&mut service, "/read/bench-session", None)
                    .await
                    .expect("read");
                assert!(status == 200 && body["node"] == "g2", "{status} {body}");
            })
        })
    });
    group.bench_function("with_token", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let (status, body) = call(&mut service, "/read/bench-session", Some(&token))
                    .await
                    .expect("read");
                assert!(
                    status == 200 && body["node"] == "g2" && body["session_guarantee"] == true,
                    "{status} {body}"
                );
            })
        })
    });
    group.finish();
    runtime.block_on(app.shutdown())?;
    drop((g1, g2));
    Ok(())
}

fn main() -> Result<(), Failure> {
    let mut c = Criterion::default().configure_from_args();
    token_benches(&mut c);
    read_benches(&mut c)?;
    c.final_summary();
    Ok(())
}
