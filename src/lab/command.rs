//! `caplab lab up | status | failover | down | cert`: the lab as a command, left running
//! between commands.
//!
//! `up` starts a [`Lab`] in its own process groups, prints what runs where and leaves it
//! running, recorded in `<dir>/lab.json`; `status` probes each recorded part and says which
//! node is primary now (the sentinels' answer beside each node's own role, a split brain
//! flagged); `failover` forces one through s1 and waits for the promotion; `down` stops exactly
//! the recorded processes, by pid and start time, never by name.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::error::LabError;
use super::failover::force_failover;
use super::health::{Health, probe_record, wait_http_ok};
use super::options::{self as d, LabOptions, LabPorts};
use super::password::LabPassword;
use super::process::LabProcess;
use super::record::LabRecord;
use super::sentinel::{DOWN_AFTER_MS, MASTER_NAME, QUORUM};
use super::topology::Lab;
use crate::faults::{CLUSTER_G1, CLUSTER_G2, G1, G2, SENTINELS};

/// `caplab lab ...`
#[derive(Debug, clap::Args)]
pub struct LabArgs {
    #[command(subcommand)]
    command: LabCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LabCommand {
    /// Start g1, g2, the proxy, three sentinels and both apps, wait until all are healthy,
    /// and leave them running.
    Up(UpArgs),
    /// Show each part of the lab, whether it is healthy, and which node is primary now (exit
    /// 1 if a part is not healthy or the sentinels and the nodes disagree on the primary).
    Status(DirArg),
    /// Stop what `up` started (by recorded pid) and leave nothing running.
    Down(DirArg),
    /// Force a failover (`SENTINEL FAILOVER caplab` on s1) and wait until the sentinels name
    /// the other node as primary.
    Failover(DirArg),
    /// Write a self-signed certificate and key for trying HTTPS (TLS_CERT_FILE, TLS_KEY_FILE).
    Cert(super::cert::CertArgs),
}

#[derive(Debug, clap::Args)]
struct DirArg {
    /// The lab's directory (data, logs, lab.json).
    #[arg(long, default_value = ".caplab")]
    dir: PathBuf,
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Use this Toxiproxy (`http://host:port`, on this machine) instead of starting
    /// `caplab proxy`.
    #[arg(long, value_name = "URL")]
    toxiproxy_url: Option<String>,
    /// How long each part may take to become healthy.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    start_timeout: Duration,
    /// Port of g1's redis-server.
    #[arg(long, default_value_t = d::DEFAULT_REDIS_G1_PORT)]
    redis_g1_port: u16,
    /// Port of g2's redis-server.
    #[arg(long, default_value_t = d::DEFAULT_REDIS_G2_PORT)]
    redis_g2_port: u16,
    /// Port of sentinel s1.
    #[arg(long, default_value_t = d::DEFAULT_SENTINEL_PORTS[0])]
    s1_port: u16,
    /// Port of sentinel s2.
    #[arg(long, default_value_t = d::DEFAULT_SENTINEL_PORTS[1])]
    s2_port: u16,
    /// Port of sentinel s3.
    #[arg(long, default_value_t = d::DEFAULT_SENTINEL_PORTS[2])]
    s3_port: u16,
    /// Listen port of proxy `g1`.
    #[arg(long, default_value_t = d::DEFAULT_PROXY_G1_PORT)]
    proxy_g1_port: u16,
    /// Listen port of proxy `g2`.
    #[arg(long, default_value_t = d::DEFAULT_PROXY_G2_PORT)]
    proxy_g2_port: u16,
    /// Listen port of proxy `cluster_g1` (g1's address for the sentinels and replication).
    #[arg(long, default_value_t = d::DEFAULT_PROXY_CLUSTER_G1_PORT)]
    cluster_g1_port: u16,
    /// Listen port of proxy `cluster_g2`.
    #[arg(long, default_value_t = d::DEFAULT_PROXY_CLUSTER_G2_PORT)]
    cluster_g2_port: u16,
    /// Listen port of proxy `sentinels` (the apps to s1).
    #[arg(long, default_value_t = d::DEFAULT_PROXY_SENTINELS_PORT)]
    sentinels_port: u16,
    /// Port of app_cp.
    #[arg(long, default_value_t = d::DEFAULT_APP_CP_PORT)]
    cp_port: u16,
    /// Port of app_ap.
    #[arg(long, default_value_t = d::DEFAULT_APP_AP_PORT)]
    ap_port: u16,
    /// Port of the embedded proxy's API.
    #[arg(long, default_value_t = d::DEFAULT_PROXY_API_PORT)]
    proxy_api_port: u16,
    /// Where the lab console serves its page (`caplab console`, started as a part of the
    /// lab), or `off` for none. Loopback by default: the console has no login and its
    /// controls stop the lab's processes. Port 0 picks a free one.
    #[arg(long, env = "CAPLAB_CONSOLE_ADDR", default_value = crate::console::DEFAULT_ADDR,
          value_parser = parse_console_addr, value_name = "ADDR|off")]
    console_addr: ConsoleAddr,
    /// The scenario files the console offers to run.
    #[arg(long, default_value = "scenarios")]
    console_scenarios: PathBuf,
}

/// `--console-addr`: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConsoleAddr(Option<SocketAddr>);

fn parse_console_addr(s: &str) -> Result<ConsoleAddr, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(ConsoleAddr(None));
    }
    s.parse().map(|a| ConsoleAddr(Some(a))).map_err(|e| {
        format!(
            "expected ip:port (e.g. {}) or off: {e}",
            crate::console::DEFAULT_ADDR
        )
    })
}

/// Checks the console's address can be bound before the lab starts, and turns port 0 into
/// a free port.
pub(crate) fn console_address(addr: SocketAddr) -> Result<SocketAddr, LabError> {
    let listener = std::net::TcpListener::bind(addr).map_err(|source| {
        LabError::PortTaken(super::ports::PortTaken {
            what: "the console (--console-addr, or off)".into(),
            port: addr.port(),
            source,
        })
    })?;
    listener.local_addr().map_err(|e| LabError::File {
        path: PathBuf::from("console"),
        reason: e.to_string(),
    })
}

/// Starts `caplab console` for the lab `record` describes, waits until it answers, and
/// records it in `lab.json` (so `down` stops it, first). Returns its address.
async fn start_console(
    record: &mut LabRecord,
    addr: SocketAddr,
    scenarios: &std::path::Path,
    timeout: Duration,
) -> Result<String, LabError> {
    let scenarios = std::path::absolute(scenarios).unwrap_or_else(|_| scenarios.to_path_buf());
    let args: Vec<String> = vec![
        "console".into(),
        "--lab-dir".into(),
        record.dir.display().to_string(),
        "--addr".into(),
        addr.to_string(),
        "--scenarios".into(),
        scenarios.display().to_string(),
        "--log-file".into(),
        record.dir.join("console.log").display().to_string(),
    ];
    let mut console = LabProcess::spawn(
        "console",
        &current_bin()?,
        &args,
        &[],
        record.dir.join("console.stderr.log"),
        true,
    )?
    .log_at(record.dir.join("console.log"));
    let url = format!("http://{addr}");
    wait_http_ok(&mut console, &format!("{url}/health"), timeout).await?;
    record.processes.push(console.detach());
    record.console_url = Some(url.clone());
    record.write()?;
    Ok(url)
}

/// Stops every recorded process, newest first, and removes `lab.json`; returns how many
/// were still running.
async fn stop_recorded(record: &LabRecord) -> Result<usize, LabError> {
    let mut stopped = 0;
    for process in record.processes.iter().rev() {
        if process.is_running() {
            process.stop(Duration::from_secs(5)).await?;
            stopped += 1;
        }
    }
    LabRecord::remove(&record.dir)?;
    Ok(stopped)
}

impl UpArgs {
    fn ports(&self) -> LabPorts {
        LabPorts {
            redis_g1: self.redis_g1_port,
            redis_g2: self.redis_g2_port,
            sentinel_s1: self.s1_port,
            sentinel_s2: self.s2_port,
            sentinel_s3: self.s3_port,
            proxy_g1: self.proxy_g1_port,
            proxy_g2: self.proxy_g2_port,
            proxy_cluster_g1: self.cluster_g1_port,
            proxy_cluster_g2: self.cluster_g2_port,
            proxy_sentinels: self.sentinels_port,
            app_cp: self.cp_port,
            app_ap: self.ap_port,
            proxy_api: self.proxy_api_port,
        }
    }
}

/// The running `caplab` binary, to start `caplab proxy` and `caplab serve` from.
pub fn current_bin() -> Result<PathBuf, LabError> {
    std::env::current_exe().map_err(|e| LabError::File {
        path: PathBuf::from("caplab"),
        reason: format!("cannot find the running caplab binary: {e}"),
    })
}

/// Ctrl-C and SIGTERM, listened for from creation on (so a signal that comes while the lab
/// is starting is seen, and what was started is stopped).
pub struct Interrupt {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Interrupt {
    /// Starts listening.
    pub fn listen() -> Interrupt {
        use tokio::signal::unix::{SignalKind, signal};
        Interrupt {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    /// Resolves on the first Ctrl-C or SIGTERM (never, if neither can be watched).
    pub async fn recv(&mut self) {
        async fn one(signal: &mut Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(s) => {
                    if s.recv().await.is_none() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            () = one(&mut self.int) => {}
            () = one(&mut self.term) => {}
        }
    }
}

/// Runs a lab subcommand.
pub async fn run(args: LabArgs) -> Result<ExitCode, LabError> {
    match args.command {
        LabCommand::Cert(cert) => super::cert::run(cert),
        LabCommand::Up(up) => {
            let mut interrupt = Interrupt::listen();
            let mut options = LabOptions::new(&up.dir.dir, current_bin()?).with_ports(up.ports());
            options.toxiproxy_url = up.toxiproxy_url.clone();
            options.start_timeout = up.start_timeout;
            options.detached = true;
            let console_addr = match up.console_addr.0 {
                Some(addr) => Some(console_address(addr)?),
                None => None,
            };
            let started = tokio::select! {
                started = Lab::up(options) => started,
                () = interrupt.recv() => {
                    // Dropping `Lab::up` stopped whatever it had started.
                    eprintln!("interrupted: nothing is left running");
                    return Ok(ExitCode::from(130));
                }
            };
            match started {
                Ok(lab) => {
                    let mut record = lab.detach();
                    if let Some(addr) = console_addr {
                        let console = start_console(
                            &mut record,
                            addr,
                            &up.console_scenarios,
                            up.start_timeout,
                        )
                        .await;
                        if let Err(e) = console {
                            // The console is part of the lab asked for: leave nothing half up.
                            let _ = stop_recorded(&record).await;
                            return Err(e);
                        }
                    }
                    println!("caplab lab is up in {}\n", record.dir.display());
                    print!("{}", table(&record, None));
                    if let Some(url) = &record.console_url {
                        println!(
                            "\nThe lab console: {url} (loopback only unless --console-addr says otherwise)"
                        );
                    }
                    println!(
                        "\nTry: curl -X POST {}/write/k/v ; curl {}/read/k",
                        record.cp_url(),
                        record.ap_url()
                    );
                    println!(
                        "`caplab lab status --dir {0}` checks it, `caplab lab down --dir {0}` stops it.",
                        record.dir.display()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e @ LabError::AlreadyUp { .. }) => {
                    println!("{e}");
                    Ok(ExitCode::from(1))
                }
                Err(e) => Err(e),
            }
        }
        LabCommand::Status(arg) => {
            let record = LabRecord::read(&arg.dir)?.ok_or(LabError::NotUp { dir: arg.dir })?;
            let (health, primary) = probe_record(&record).await;
            print!("{}", table(&record, Some(&health)));
            println!("\n{primary}");
            let parts_ok = health.iter().all(|h| h.ok);
            if !parts_ok {
                println!(
                    "\nnot every part is healthy; logs are in {}",
                    record.dir.display()
                );
            }
            let all_ok = parts_ok && primary.problem().is_none();
            Ok(if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        LabCommand::Failover(arg) => {
            let record = LabRecord::read(&arg.dir)?.ok_or(LabError::NotUp { dir: arg.dir })?;
            let running = record.running();
            let (name, port) = record
                .ports
                .sentinels()
                .into_iter()
                .find(|(name, _)| running.iter().any(|p| p.name == format!("sentinel {name}")))
                .ok_or_else(|| LabError::Failover {
                    reason: "no sentinel of the lab is running".into(),
                })?;
            let password = LabPassword::read(&record.dir)?;
            let primary = force_failover(&record.ports, password.as_ref(), name, port).await?;
            println!(
                "failover done: sentinel {name} promoted {primary}; the sentinels now turn {} into its replica (`caplab lab status` shows it)",
                primary.other()
            );
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Down(arg) => {
            let Some(record) = LabRecord::read(&arg.dir)? else {
                println!(
                    "no lab is recorded in {}; nothing to stop",
                    arg.dir.display()
                );
                return Ok(ExitCode::SUCCESS);
            };
            let stopped = stop_recorded(&record).await?;
            println!(
                "caplab lab is down: stopped {stopped} of {} recorded processes (data and logs stay in {})",
                record.processes.len(),
                record.dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What runs where, one line per part; with `health`, a state column too.
pub fn table(record: &LabRecord, health: Option<&[Health]>) -> String {
    let p = record.ports;
    let api = record
        .toxiproxy_url
        .trim_start_matches("http://")
        .to_string();
    let mut rows: Vec<[String; 4]> =
        vec![["part".into(), "pid".into(), "address".into(), "what".into()]];
    let pid = |name: &str| {
        record
            .processes
            .iter()
            .find(|r| r.name == name)
            .map_or("-".to_string(), |r| r.pid.to_string())
    };
    let proxy_what = if record.external_toxiproxy {
        "external Toxiproxy API"
    } else {
        "caplab proxy API"
    };
    let local = |port: u16| format!("127.0.0.1:{port}");
    let mut parts: Vec<(String, String, String)> = vec![
        (
            "redis g1".into(),
            local(p.redis_g1),
            format!(
                "node g1 (primary at start), AOF on, announces cluster_g1 :{}",
                p.proxy_cluster_g1
            ),
        ),
        (
            "redis g2".into(),
            local(p.redis_g2),
            format!(
                "node g2 (replica at start, through cluster_g1), AOF on, announces cluster_g2 :{}",
                p.proxy_cluster_g2
            ),
        ),
    ];
    for (name, port) in p.sentinels() {
        parts.push((
            format!("sentinel {name}"),
            local(port),
            format!(
                "Sentinel, master `{MASTER_NAME}`, quorum {QUORUM}, down-after {DOWN_AFTER_MS} ms"
            ),
        ));
    }
    parts.push(("proxy".into(), api, proxy_what.into()));
    for (name, link) in [
        (G1, format!("apps -> g1 :{}", p.redis_g1)),
        (G2, format!("apps -> g2 :{}", p.redis_g2)),
        (
            CLUSTER_G1,
            format!("sentinels, replication -> g1 :{}", p.redis_g1),
        ),
        (
            CLUSTER_G2,
            format!("sentinels, replication -> g2 :{}", p.redis_g2),
        ),
        (SENTINELS, format!("apps -> s1 :{}", p.sentinel_s1)),
    ] {
        let port = p.proxy(name).unwrap_or(0);
        parts.push((format!("proxy {name}"), local(port), link));
    }
    for (name, url, mode) in [
        ("app_cp", record.cp_url(), "CP"),
        ("app_ap", record.ap_url(), "AP"),
    ] {
        parts.push((
            name.into(),
            url,
            format!("{mode} personality, via proxies g1, g2 and sentinels"),
        ));
    }
    if let Some(url) = &record.console_url {
        parts.push((
            "console".into(),
            url.clone(),
            "the lab console: live charts and controls in a browser".into(),
        ));
    }
    for (name, address, what) in parts {
        let pid = if name.starts_with("proxy ") {
            "".to_string()
        } else {
            pid(&name)
        };
        rows.push([name, pid, address, what]);
    }
    if let Some(health) = health {
        rows[0][3] = "health".into();
        for row in rows.iter_mut().skip(1) {
            if let Some(h) = health.iter().find(|h| h.part == row[0]) {
                row[3] = format!("{} {}", if h.ok { "ok  " } else { "DOWN" }, h.detail);
            }
        }
    }
    let widths: Vec<usize> = (0..3)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            format!(
                "{:w0$}  {:w1$}  {:w2$}  {}\n",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            )
        })
        .collect()
}
