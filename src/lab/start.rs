//! The steps of [`super::Lab::up`], in the order it takes them: the directory and the ports
//! checked, a node started (g1 the primary, g2 its replica through `cluster_g1`, each with an
//! AOF and announcing its own `cluster_*` proxy), the proxy and its five proxies, the three
//! sentinels watching g1 at `cluster_g1`, and an app.
//!
//! Beside the data path: process start-up. Each step returns what it started, so that an
//! error drops (and kills) everything started before it.

use std::path::{Path, PathBuf};

use super::error::LabError;
use super::health::wait_proxy;
use super::node_action::LabNode;
use super::options::{LabOptions, LabPorts};
use super::password::LabPassword;
use super::ports::ensure_free;
use super::process::LabProcess;
use super::record::LabRecord;
use super::redis_node::{RedisNode, RedisNodeError, RedisNodeSpec};
use super::sentinel::{Sentinel, SentinelSpec};
use crate::faults::{CLUSTER_G1, CLUSTER_G2, FaultDriver, G1, G2, ProxySpec, SENTINELS};

/// Checks that `redis-server` is installed, makes the lab's directory absolute (redis-server
/// changes into its `dir` before it opens its log), refuses a lab already running there
/// (a stale record is removed) and checks every port is free. Returns the directory.
pub(super) fn prepare(options: &mut LabOptions) -> Result<PathBuf, LabError> {
    redis_installed()?;
    let dir_err = |e: std::io::Error| LabError::File {
        path: options.dir.clone(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(&options.dir).map_err(dir_err)?;
    let dir = std::fs::canonicalize(&options.dir).map_err(dir_err)?;
    options.dir = dir.clone();
    if let Some(record) = LabRecord::read(&dir)? {
        let running = record.running();
        if !running.is_empty() {
            let pids: Vec<String> = running.iter().map(|p| p.pid.to_string()).collect();
            return Err(LabError::AlreadyUp {
                dir,
                pids: pids.join(", "),
            });
        }
        LabRecord::remove(&dir)?;
    }
    let external = options.toxiproxy_url.is_some();
    for (what, port) in options.ports.named() {
        let on_external = what.starts_with("proxy");
        if !(external && on_external) {
            ensure_free(what, port)?;
        }
    }
    Ok(dir)
}

fn redis_installed() -> Result<(), LabError> {
    match std::process::Command::new("redis-server")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(RedisNodeError::NotInstalled.into())
        }
        _ => Ok(()),
    }
}

/// Starts a node with an AOF, announcing its `cluster_*` proxy and requiring the lab's
/// password (`requirepass`, and `masterauth` for its replication): g1 as the primary, g2 as
/// a replica of g1 through `cluster_g1`.
pub(super) async fn start_node(
    options: &LabOptions,
    password: &LabPassword,
    node: LabNode,
) -> Result<RedisNode, LabError> {
    let ports = options.ports;
    let dir = options.dir.join(node.name());
    let (mut spec, cluster) = match node {
        LabNode::G1 => (
            RedisNodeSpec::primary(node.name(), ports.redis_g1, &dir),
            ports.proxy_cluster_g1,
        ),
        LabNode::G2 => (
            RedisNodeSpec::replica(
                node.name(),
                ports.redis_g2,
                &dir,
                "127.0.0.1",
                ports.proxy_cluster_g1,
            ),
            ports.proxy_cluster_g2,
        ),
    };
    spec.append_only = true;
    spec.announce = Some(("127.0.0.1".into(), cluster));
    spec.own_process_group = options.detached;
    spec.password = Some(password.expose().to_string());
    Ok(RedisNode::start(spec).await?)
}

/// The fault driver for the given Toxiproxy (waited for), or `caplab proxy` started as a
/// child process and waited for.
pub(super) async fn start_proxy(
    options: &LabOptions,
) -> Result<(FaultDriver, Option<LabProcess>), LabError> {
    let timeout = options.start_timeout;
    if let Some(url) = &options.toxiproxy_url {
        let faults = FaultDriver::new(url).map_err(|source| LabError::Faults {
            part: "the Toxiproxy address".into(),
            source,
        })?;
        faults
            .wait_until_up(timeout)
            .await
            .map_err(|source| LabError::Faults {
                part: format!("external Toxiproxy at {url}"),
                source,
            })?;
        return Ok((faults, None));
    }
    let port = options.ports.proxy_api;
    let mut args = vec!["proxy".into(), "--port".into(), port.to_string()];
    args.extend(log_file_args(&options.dir, "proxy.log"));
    let mut proxy = LabProcess::spawn(
        "proxy",
        &options.caplab_bin,
        &args,
        &[],
        options.dir.join("proxy.stderr.log"),
        options.detached,
    )?
    .log_at(options.dir.join("proxy.log"));
    let faults =
        FaultDriver::new(&format!("127.0.0.1:{port}")).map_err(|source| LabError::Faults {
            part: "the proxy API address".into(),
            source,
        })?;
    wait_proxy(&faults, &mut proxy, timeout).await?;
    Ok((faults, Some(proxy)))
}

/// Creates the five proxies (or keeps matching ones): `g1`, `g2` and the two cluster links in
/// front of the nodes, `sentinels` in front of s1.
pub(super) async fn create_proxies(faults: &FaultDriver, ports: &LabPorts) -> Result<(), LabError> {
    let local = |port: u16| format!("127.0.0.1:{port}");
    let proxy = |name: &str, upstream: u16| {
        let listen = ports.proxy(name).unwrap_or(0);
        ProxySpec::new(name, &local(listen), &local(upstream))
    };
    faults
        .ensure_lab_proxies(&[
            proxy(G1, ports.redis_g1),
            proxy(G2, ports.redis_g2),
            proxy(CLUSTER_G1, ports.redis_g1),
            proxy(CLUSTER_G2, ports.redis_g2),
            proxy(SENTINELS, ports.sentinel_s1),
        ])
        .await
        .map(drop)
        .map_err(|source| LabError::Faults {
            part: "creating the proxies g1, g2, cluster_g1, cluster_g2, sentinels".into(),
            source,
        })
}

/// Starts s1, s2 and s3, each watching g1 at `cluster_g1` from a fresh config in its own
/// directory, with the lab's password (`requirepass` and `sentinel auth-pass`).
pub(super) async fn start_sentinels(
    options: &LabOptions,
    password: &LabPassword,
) -> Result<Vec<Sentinel>, LabError> {
    let ports = options.ports;
    let mut sentinels = Vec::new();
    for (name, port) in ports.sentinels() {
        let mut spec = SentinelSpec::new(
            name,
            port,
            &options.dir.join(name),
            "127.0.0.1",
            ports.proxy_cluster_g1,
        );
        spec.own_process_group = options.detached;
        spec.password = Some(password.expose().to_string());
        sentinels.push(Sentinel::start(spec).await?);
    }
    Ok(sentinels)
}

/// The AP app's queue file, in the lab's directory.
pub const AP_QUEUE_FILE: &str = "ap_queue.journal";

/// 32 random bytes in hex: the lab's `SECRET_KEY`, new at each `up`.
pub(super) fn secret_key() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts `caplab serve --mode <mode>` on `port`, wired through the proxies `g1`, `g2` and
/// `sentinels`, with the secret in its environment (not on its command line, which `ps`
/// shows) and the lab's Redis password file given by path (`--redis-password-file`).
pub(super) fn start_app(
    options: &LabOptions,
    mode: &str,
    port: u16,
    secret: &str,
) -> Result<LabProcess, LabError> {
    let ports = options.ports;
    let mut args: Vec<String> = [
        "serve",
        "--mode",
        mode,
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--redis-g1-url",
        &format!("redis://127.0.0.1:{}", ports.proxy_g1),
        "--redis-g2-url",
        &format!("redis://127.0.0.1:{}", ports.proxy_g2),
        // s1 through the `sentinels` proxy, so `down sentinels` cuts the apps off from them.
        "--sentinel-urls",
        &format!("redis://127.0.0.1:{}", ports.proxy_sentinels),
        "--instance-id",
        &format!("lab-{mode}"),
        "--redis-password-file",
        &LabPassword::file(&options.dir).display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Logs rotate by size; the audit trail has its own file; no rate limit in the lab.
    args.extend(log_file_args(&options.dir, &format!("app_{mode}.log")));
    args.extend([
        "--audit-log".to_string(),
        options
            .dir
            .join(format!("audit_{mode}.log"))
            .display()
            .to_string(),
        "--rate-limit-per-minute".into(),
        "0".into(),
        "--rate-limit-per-hour".into(),
        "0".into(),
    ]);
    if mode == "ap" {
        // The queue file lives with the lab: after a crash, `lab down` then `lab up` on the
        // same directory replays what it held.
        args.extend([
            "--ap-queue-file".to_string(),
            options.dir.join(AP_QUEUE_FILE).display().to_string(),
        ]);
    }
    args.extend(options.app_args.iter().cloned());
    LabProcess::spawn(
        &format!("app_{mode}"),
        &options.caplab_bin,
        &args,
        &[("SECRET_KEY", secret)],
        options.dir.join(format!("app_{mode}.stderr.log")),
        options.detached,
    )
    .map(|process| process.log_at(options.dir.join(format!("app_{mode}.log"))))
}

/// A lab process logs to `dir/name`, rotated by size (10 MiB, 3 files); its stderr file then
/// holds only what comes before logging starts (a bad flag) or a crash.
fn log_file_args(dir: &Path, name: &str) -> [String; 2] {
    ["--log-file".into(), dir.join(name).display().to_string()]
}
