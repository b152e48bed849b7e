//! Redis AUTH against real processes: a primary and replica with `requirepass`/`masterauth`,
//! three sentinels with `requirepass`/`sentinel auth-pass`, and apps that authenticate to the
//! nodes and the sentinels with `REDIS_PASSWORD_FILE` without ever logging the password.

mod common;

use std::time::{Duration, Instant};

use caplab::config::{Mode, RedisPassword};
use caplab::lab::ports::free_port;
use caplab::lab::redis_node::{RedisNode, RedisNodeSpec, ping};
use caplab::lab::sentinel::{Sentinel, SentinelSpec, sentinel_view};
use common::app::{TestApp, request, test_config};
use common::redis::RedisPair;
use common::serve::command;

const PASSWORD: &str = "9f1c2e7b5a3d4c6e8f0a1b2c3d4e5f60";

async fn auth_pair(dir: &std::path::Path) -> RedisPair {
    let mut g1 = RedisNodeSpec::primary("g1", free_port().unwrap(), &dir.join("g1"));
    g1.password = Some(PASSWORD.into());
    let g1 = RedisNode::start(g1).await.unwrap();
    let mut g2 = RedisNodeSpec::replica(
        "g2",
        free_port().unwrap(),
        &dir.join("g2"),
        "127.0.0.1",
        g1.port(),
    );
    g2.password = Some(PASSWORD.into());
    let g2 = RedisNode::start(g2).await.unwrap();
    // masterauth: the replica authenticates to its primary.
    g2.wait_link_up(Duration::from_secs(10)).await.unwrap();
    RedisPair {
        g1,
        g2,
        dir: tempfile::tempdir().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_and_sentinels_refuse_without_the_password_and_serve_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let pair = auth_pair(dir.path()).await;
    assert!(
        ping(&pair.g1.url()).await.is_err(),
        "g1 answers without AUTH"
    );
    let err = ping(&pair.g1.url()).await.unwrap_err().to_string();
    assert!(err.contains("NOAUTH") || err.contains("uth"), "{err}");
    ping(&pair.g1.auth_url()).await.unwrap();

    // Three sentinels with the password: they find each other and the replica through the
    // primary (hello messages and INFO need `sentinel auth-pass`).
    let mut sentinels = Vec::new();
    for name in ["s1", "s2", "s3"] {
        let mut spec = SentinelSpec::new(
            name,
            free_port().unwrap(),
            &dir.path().join(name),
            "127.0.0.1",
            pair.g1.port(),
        );
        spec.password = Some(PASSWORD.into());
        sentinels.push(Sentinel::start(spec).await.unwrap());
    }
    assert!(
        ping(&sentinels[0].url()).await.is_err(),
        "a sentinel answers without AUTH"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(view) = sentinel_view(&sentinels[0].auth_url()).await
            && view.ready()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sentinels never saw each other and the replica"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // An app with the password writes, reads the replica and follows the sentinels.
    let mut config = test_config(Mode::Ap, &pair);
    config.redis_password = Some(RedisPassword::from(PASSWORD));
    config.sentinel_urls = vec![sentinels[0].url()];
    let app = TestApp::start(config).await;
    let w = app.post("/write/k/v").await;
    assert_eq!(
        (w.status, w.json["node"].as_str()),
        (200, Some("g1")),
        "{w:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = app.get("/read/k").await;
        if r.status == 200 {
            assert_eq!(r.json["value"], "v");
            break;
        }
        assert!(Instant::now() < deadline, "{r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rep = app.get("/replication").await.json;
    assert_eq!(rep["following"]["sentinels_reachable"], true, "{rep}");
    app.shutdown().await;

    // Without it: nothing is written, and the sentinels do not answer.
    let mut config = test_config(Mode::Ap, &pair);
    config.sentinel_urls = vec![sentinels[0].url()];
    let app = TestApp::start(config).await;
    let w = app.post("/write/k/other").await;
    assert_ne!(w.status, 200, "{w:?}");
    assert_eq!(
        common::app::raw_value(&pair.g1.auth_url(), "k")
            .await
            .as_deref(),
        Some("v")
    );
    let rep = app.get("/replication").await.json;
    assert_eq!(rep["following"]["sentinels_reachable"], false, "{rep}");
    app.shutdown().await;
}

#[tokio::test]
async fn serve_reads_the_password_file_and_never_logs_it() {
    let dir = tempfile::tempdir().unwrap();
    let pair = auth_pair(dir.path()).await;
    let file = dir.path().join("redis_password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let port = free_port().unwrap();
    let child = command(
        "cp",
        port,
        &[
            ("REDIS_G1_URL", pair.g1.url()),
            ("REDIS_G2_URL", pair.g2.url()),
            ("REDIS_PASSWORD_FILE", file.display().to_string()),
            ("LOG_LEVEL", "debug".into()),
        ],
    )
    // Logs to a file, not a pipe: debug logs would fill a pipe nobody reads yet.
    .stdout(std::fs::File::create(dir.path().join("out.log")).unwrap())
    .stderr(std::fs::File::create(dir.path().join("err.log")).unwrap())
    .spawn()
    .unwrap();
    let mut child = common::serve::ServeProcess {
        child,
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
    };
    child.wait_listening(Duration::from_secs(20)).await;
    let addr = child.addr;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let w = request(addr, "POST", "/write/p/1", None).await;
        if w.status == 200 {
            assert_eq!(w.json["replicated"], true, "{w:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "CP never wrote with the password: {w:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill_9();
    let logs = format!(
        "{}{}",
        std::fs::read_to_string(dir.path().join("out.log")).unwrap(),
        std::fs::read_to_string(dir.path().join("err.log")).unwrap()
    );
    assert!(logs.contains("SERVE_START"), "{logs}");
    assert!(!logs.contains(PASSWORD), "the password is in the logs");
}
