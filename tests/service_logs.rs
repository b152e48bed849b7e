//! `caplab serve` as a process: the audit trail in its own rotated file at any log level, the
//! main log in a rotated file, the secret key read from a file, and start-up errors said once.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use caplab::lab::ports::free_port;
use common::app::{request, streaming_pair};

fn caplab() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_caplab"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

#[test]
fn start_up_errors_are_said_once_and_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-secret");
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![], "SECRET_KEY must be set"),
        (
            vec![("SECRET_KEY_FILE", missing.display().to_string())],
            "SECRET_KEY_FILE cannot be read",
        ),
        (
            vec![
                ("SECRET_KEY_FILE", missing.display().to_string()),
                ("SECRET_KEY", "0123456789abcdef0123456789abcdef".into()),
            ],
            "SECRET_KEY_FILE and SECRET_KEY are both set",
        ),
        (
            vec![("TLS_CERT_FILE", "/nonexistent/cert.pem".into())],
            "TLS_KEY_FILE must be set",
        ),
    ];
    for (envs, needle) in cases {
        let out = caplab()
            .args(["serve", "--mode", "ap"])
            .env("ENVIRONMENT", "production")
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{envs:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.matches(needle).count(), 1, "{envs:?}: {stderr}");
    }
}

#[tokio::test]
async fn the_audit_trail_has_its_own_rotated_file_at_any_level_and_the_key_comes_from_a_file() {
    let pair = streaming_pair().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret_key");
    std::fs::write(&secret, format!("{}\n", "ab".repeat(32))).unwrap();
    let audit = dir.path().join("audit/audit.log");
    let main_log = dir.path().join("app.log");
    let port = free_port().unwrap();
    let mut child = caplab()
        .args(["serve", "--mode", "cp", "--log-format", "json"])
        .env("PORT", port.to_string())
        .env("REDIS_G1_URL", pair.g1.url())
        .env("REDIS_G2_URL", pair.g2.url())
        // Production refuses to start without a key: starting proves the file was read.
        .env("ENVIRONMENT", "production")
        .env("SECRET_KEY_FILE", &secret)
        // The guide's production level: the audit events still pass.
        .env("LOG_LEVEL", "WARNING")
        .env("LOG_FILE", &main_log)
        .env("AUDIT_LOG", &audit)
        .env("LOG_FILE_MAX_BYTES", "2000")
        .env("LOG_FILE_COUNT", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "caplab serve never listened: {:?}",
            std::fs::read_to_string(&main_log)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let writes = 40;
    for i in 0..writes {
        let reply = request(addr, "POST", &format!("/write/audited-{i}/v"), None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));

    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    let current = read(&audit);
    let older = read(&audit.with_file_name("audit.log.1"));
    assert!(
        !audit.with_file_name("audit.log.2").exists(),
        "LOG_FILE_COUNT=2 keeps two files"
    );
    assert!(!older.is_empty(), "the audit log was rotated");
    for text in [&current, &older] {
        assert!(text.len() <= 2000 + 400, "{} bytes", text.len());
        for line in text.lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(event["message"], "WRITE", "{line}");
            assert_eq!(event["target"], "audit", "{line}");
            assert!(
                event["timestamp"].is_string() && event["key"].is_string(),
                "{line}"
            );
        }
    }
    let last = current.lines().last().unwrap();
    assert!(
        last.contains(&format!("audited-{}", writes - 1)),
        "the newest write is in the current file: {last}"
    );
    let main = read(&main_log);
    assert!(
        !main.contains("WRITE"),
        "the audit trail is not in the main log"
    );
    assert!(
        !main.contains("SERVE_START"),
        "LOG_LEVEL=WARNING holds back info in the main log: {main}"
    );
}

#[test]
fn lab_cert_writes_a_pair_the_server_settings_accept() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let out = caplab()
        .args(["lab", "cert", "--dir"])
        .arg(&tls)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("TLS_CERT_FILE="), "{stdout}");
    use std::os::unix::fs::PermissionsExt;
    let key = std::fs::metadata(tls.join("key.pem")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    caplab::app::tls::acceptor(&caplab::config::TlsFiles {
        cert: tls.join("cert.pem"),
        key: tls.join("key.pem"),
    })
    .expect("the pair loads");
}
