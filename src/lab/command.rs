//! `caplab lab up | status | down | cert`: the lab as a command, left running between commands.
//!
//! `up` starts a [`Lab`] in its own process groups, prints what runs where and leaves it
//! running, recorded in `<dir>/lab.json`; `status` probes each recorded part; `down` stops
//! exactly the recorded processes, by pid and start time, never by name.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::error::LabError;
use super::health::{Health, probe_record};
use super::options::{self as d, LabOptions, LabPorts};
use super::record::LabRecord;
use super::topology::Lab;

/// `caplab lab ...`
#[derive(Debug, clap::Args)]
pub struct LabArgs {
    #[command(subcommand)]
    command: LabCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LabCommand {
    /// Start g1, g2, the proxy and both apps, wait until all are healthy, and leave them
    /// running.
    Up(UpArgs),
    /// Show each part of the lab and whether it is healthy (exit 1 if one is not).
    Status(DirArg),
    /// Stop what `up` started (by recorded pid) and leave nothing running.
    Down(DirArg),
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
    /// Listen port of proxy `g1`.
    #[arg(long, default_value_t = d::DEFAULT_PROXY_G1_PORT)]
    proxy_g1_port: u16,
    /// Listen port of proxy `g2`.
    #[arg(long, default_value_t = d::DEFAULT_PROXY_G2_PORT)]
    proxy_g2_port: u16,
    /// Listen port of proxy `replication`.
    #[arg(long, default_value_t = d::DEFAULT_PROXY_REPLICATION_PORT)]
    replication_port: u16,
    /// Port of app_cp.
    #[arg(long, default_value_t = d::DEFAULT_APP_CP_PORT)]
    cp_port: u16,
    /// Port of app_ap.
    #[arg(long, default_value_t = d::DEFAULT_APP_AP_PORT)]
    ap_port: u16,
    /// Port of the embedded proxy's API.
    #[arg(long, default_value_t = d::DEFAULT_PROXY_API_PORT)]
    proxy_api_port: u16,
}

impl UpArgs {
    fn ports(&self) -> LabPorts {
        LabPorts {
            redis_g1: self.redis_g1_port,
            redis_g2: self.redis_g2_port,
            proxy_g1: self.proxy_g1_port,
            proxy_g2: self.proxy_g2_port,
            proxy_replication: self.replication_port,
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
                    let record = lab.detach();
                    println!("caplab lab is up in {}\n", record.dir.display());
                    print!("{}", table(&record, None));
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
            let health = probe_record(&record).await;
            print!("{}", table(&record, Some(&health)));
            let all_ok = health.iter().all(|h| h.ok);
            if !all_ok {
                println!(
                    "\nnot every part is healthy; logs are in {}",
                    record.dir.display()
                );
            }
            Ok(if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        LabCommand::Down(arg) => {
            let Some(record) = LabRecord::read(&arg.dir)? else {
                println!(
                    "no lab is recorded in {}; nothing to stop",
                    arg.dir.display()
                );
                return Ok(ExitCode::SUCCESS);
            };
            let mut stopped = 0;
            for process in record.processes.iter().rev() {
                if process.is_running() {
                    process.stop(Duration::from_secs(5)).await?;
                    stopped += 1;
                }
            }
            LabRecord::remove(&arg.dir)?;
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
    let parts: [(&str, String, String); 8] = [
        (
            "redis g1",
            format!("127.0.0.1:{}", p.redis_g1),
            "primary, AOF on".into(),
        ),
        (
            "redis g2",
            format!("127.0.0.1:{}", p.redis_g2),
            "replica of g1 through proxy replication".into(),
        ),
        ("proxy", api, proxy_what.into()),
        (
            "proxy g1",
            format!("127.0.0.1:{}", p.proxy_g1),
            format!("apps -> g1 :{}", p.redis_g1),
        ),
        (
            "proxy g2",
            format!("127.0.0.1:{}", p.proxy_g2),
            format!("apps -> g2 :{}", p.redis_g2),
        ),
        (
            "proxy replication",
            format!("127.0.0.1:{}", p.proxy_replication),
            format!("g2 -> g1 :{}", p.redis_g1),
        ),
        (
            "app_cp",
            record.cp_url(),
            "CP personality, via proxies g1 and g2".into(),
        ),
        (
            "app_ap",
            record.ap_url(),
            "AP personality, via proxies g1 and g2".into(),
        ),
    ];
    for (name, address, what) in parts {
        let pid = if name.starts_with("proxy ") {
            "".to_string()
        } else {
            pid(name)
        };
        rows.push([name.to_string(), pid, address, what]);
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
