//! The apps' probes are routes caplab serves, with the meaning Kubernetes gives them: the app
//! is started in-process from the very environment its Deployment gives it (through
//! `caplab serve`'s own flags and validation), with every Redis address unreachable, as in a
//! partition; liveness must then still answer 200 (a partition must not get the pods killed)
//! and readiness must answer from the readiness route, 503 with its JSON, not the 404 of an
//! unknown path.

use std::time::Duration;

use caplab::cli::{Cli, Command};
use clap::{CommandFactory, Parser};

use super::common::app::request;
use super::support::{Build, build, container, list};

/// The container's command line (`caplab` and its args) with its environment as flags, each
/// through the flag whose environment fallback is that variable (so a variable caplab does not
/// know fails here). A file the container reads from a Secret volume is written into `files`
/// with the content the build's Secret gives it; a file on an emptyDir volume lives in `files`.
fn flags_for(b: &Build, app: &str, files: &std::path::Path) -> Vec<String> {
    let t = b.template("Deployment", app);
    let c = container(t, "caplab");
    let cli = Cli::command();
    let args = super::support::strings(&c["args"]);
    assert_eq!(args, ["serve"], "{app}: runs caplab serve");
    let serve = cli.find_subcommand("serve").expect("serve").clone();
    let mut flags = vec!["caplab".to_string()];
    flags.extend(args);
    for e in list(&c["env"]) {
        let n = e["name"].as_str().expect("env name");
        let value = if let Some(v) = e["value"].as_str() {
            if n.ends_with("_FILE") && v.starts_with("/run/secrets/") {
                let content = super::support::secret_file(b, t, c, v)
                    .unwrap_or_else(|err| panic!("{app}: {n}={v}: {err}"));
                let local = files.join(n);
                std::fs::write(&local, content).expect("write the secret file");
                local.display().to_string()
            } else if let Some((dir, _)) = super::support::empty_dir_under(t, c, v) {
                // A file on the pod's own emptyDir: the same file under a local directory.
                let local = files.join(v.trim_start_matches(dir).trim_start_matches('/'));
                local.display().to_string()
            } else {
                v.to_string()
            }
        } else if e["valueFrom"]["fieldRef"]["fieldPath"].as_str() == Some("metadata.name") {
            format!("{app}-5d8f7c9b6-x2x7q")
        } else if e["valueFrom"]["secretKeyRef"]["optional"].as_bool() == Some(true) {
            continue;
        } else {
            panic!("{app}: {n} comes from something this test does not know");
        };
        // Where the cluster's DNS would send them, a closed local port: a partition.
        let value = match n {
            "REDIS_G1_URL" | "REDIS_G2_URL" | "SENTINEL_URLS" => {
                assert!(
                    value.starts_with("redis://toxiproxy:"),
                    "{app}: {n}={value}"
                );
                format!("redis://127.0.0.1:{}", closed_port())
            }
            _ => value,
        };
        let arg = serve
            .get_arguments()
            .chain(cli.get_arguments())
            .find(|a| a.get_env().is_some_and(|v| v == n))
            .unwrap_or_else(|| panic!("{app}: caplab serve has no setting {n}"));
        flags.push(format!("--{}", arg.get_long().expect("a long flag")));
        flags.push(value);
    }
    flags
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *PORT.get_or_init(|| caplab::lab::ports::free_port().expect("free port"))
}

/// The probe's path and named port.
fn probe(b: &Build, app: &str, which: &str) -> String {
    let c = container(b.template("Deployment", app), "caplab");
    assert_eq!(
        c[which]["httpGet"]["port"].as_str(),
        Some("http"),
        "{app} {which}"
    );
    c[which]["httpGet"]["path"]
        .as_str()
        .expect("path")
        .to_string()
}

/// Starts `app` from its manifest with no node reachable and asks its probes.
async fn probe_app(b: &Build, app: &str) {
    let files = tempfile::tempdir().expect("tempdir");
    let flags = flags_for(b, app, files.path());
    let cli = Cli::try_parse_from(&flags).unwrap_or_else(|e| panic!("{app}: {e}"));
    let Command::Serve(serve) = cli.command else {
        panic!("{app}: not caplab serve");
    };
    let mut config = serve
        .into_config()
        .unwrap_or_else(|e| panic!("{app}: caplab refuses its manifest's settings: {e}"));
    // The manifest binds 0.0.0.0 on its port; the test binds loopback on a free one. Short
    // timeouts only make the unreachable nodes fail faster.
    config.port = 0;
    config.network_timeout = Duration::from_millis(200);
    config.cp_wait_timeout = Duration::from_millis(100);
    config.shutdown_grace = Duration::from_millis(200);
    let queue_file = config.ap_queue_file.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let running = caplab::app::start(config, listener)
        .await
        .expect("app starts");
    let addr = running.local_addr();
    if let Some(file) = &queue_file {
        assert!(
            file.exists(),
            "{app}: the queue file {} was not opened",
            file.display()
        );
    }

    let liveness = probe(b, app, "livenessProbe");
    let reply = request(addr, "GET", &liveness, None).await;
    assert_eq!(reply.status, 200, "{app} {liveness}: {}", reply.text);

    let readiness = probe(b, app, "readinessProbe");
    let reply = request(addr, "GET", &readiness, None).await;
    assert_eq!(
        reply.status, 503,
        "{app} {readiness} with no node: {}",
        reply.text
    );
    assert_eq!(
        reply.json["ready"], false,
        "{app} {readiness}: {}",
        reply.text
    );
    running.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_probes_are_routes_the_app_serves_and_liveness_survives_a_partition() {
    let Some(b) = build("zones") else {
        return;
    };
    // Both at once: each start waits a few seconds for nodes that never answer.
    tokio::join!(probe_app(b, "app-cp"), probe_app(b, "app-ap"));
}
