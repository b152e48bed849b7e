//! Recovery after a heal: `cargo bench --bench recovery`.
//!
//! How long after a fault is healed do CP and AP answer normally again? Over a real
//! redis-server pair, g2 replicating from g1 through the `cluster_g1` proxy of an embedded
//! `caplab proxy` (on its own thread and runtime), the apps reaching g1 and g2 through the `g1`
//! and `g2` proxies, a CP and an AP app with the service's default settings (breaker threshold
//! 5, open 1 s doubling to 30 s, `CP_WAIT_TIMEOUT_MS` 500, heartbeat 100 ms, replication poll
//! 500 ms). No sentinels: a `down cluster_g1` is a plain replication cut. Each case is a fault
//! of a given length, then the heal, while one client loop per app sends its request every
//! 10 ms:
//!
//! - `replication cut`: `cluster_g1` disabled; CP writes (`replication` breaker);
//! - `replica stopped`: g2's process SIGSTOPped, then SIGCONTed; CP writes;
//! - `apps cut from g1`: proxy `g1` disabled; CP writes (`g1` breaker);
//! - `apps cut from g2`: proxy `g2` disabled; AP reads served by g2 (`g2` breaker).
//!
//! For each it prints: the heal; when the system could serve again (for the two replication
//! faults, the first raw `SET` + `WAIT 1 20` on g1 that a replica confirms, probed every 10 ms
//! from the heal on; for the link faults, the heal itself); and the first answer of the app
//! that shows it recovered (a CP write answered 200; an AP read answered by g2). Times are
//! from the heal, in ms.
//!
//! `RECOVERY_OUTAGES` (seconds, comma-separated, default `5,20,60`) sets the outage lengths of
//! every case. `RECOVERY_CASES` (comma-separated case
//! names: `cut`, `stop`, `g1`, `g2`) runs some of them. Without `--bench` (`cargo test
//! --all-targets`) it runs one 1 s replication cut as a smoke check.

use std::time::{Duration, Instant};

use caplab::config::{Config, Mode};
use caplab::faults::{CLUSTER_G1, FaultDriver, G1, G2, ProxySpec};
use caplab::lab::ports::free_port;
use caplab::lab::redis_node::RedisNode;
use fred::interfaces::{ClientLike, KeysInterface, ServerInterface};

#[path = "support/mod.rs"]
mod support;

use support::Failure;
use support::http::send;
use support::pair::pair_through_cluster_proxy;
use support::proxy_thread::Proxy;

fn main() -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn raw(url: &str) -> Result<fred::clients::Client, Failure> {
    let config = fred::prelude::Config::from_url(url)?;
    let client = fred::types::Builder::from_config(config)
        .with_connection_config(|c| c.max_command_attempts = 1)
        .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(2))
        .build()?;
    client.init().await?;
    Ok(client)
}

/// Whether a raw `SET` + `WAIT 1 20` on g1 is confirmed by a replica now.
async fn replication_confirms(g1: &fred::clients::Client) -> bool {
    let set: Result<(), _> = g1.set("bench:recovery:probe", "1", None, None, false).await;
    if set.is_err() {
        return false;
    }
    let acked: Result<i64, _> = g1.wait(1, 20).await;
    matches!(acked, Ok(n) if n >= 1)
}

struct Lab {
    g1: RedisNode,
    g2: RedisNode,
    faults: FaultDriver,
    cp: caplab::app::RunningApp,
    ap: caplab::app::RunningApp,
    _proxy: Proxy,
    _dir: tempfile::TempDir,
}

async fn start_lab() -> Result<Lab, Failure> {
    let dir = tempfile::tempdir()?;
    let proxy = Proxy::start()?;
    let faults = FaultDriver::new(&proxy.api.to_string())?;
    let (g1, g2) = pair_through_cluster_proxy(dir.path(), &faults).await?;
    let listen = |port: u16| format!("127.0.0.1:{port}");
    let (p1, p2) = (free_port()?, free_port()?);
    faults
        .ensure_proxies(&[
            ProxySpec::new(G1, &listen(p1), &listen(g1.port())),
            ProxySpec::new(G2, &listen(p2), &listen(g2.port())),
        ])
        .await?;
    let probe = raw(&g1.url()).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !replication_confirms(&probe).await {
        if Instant::now() > deadline {
            return Err("the primary never streamed to the replica".into());
        }
    }
    let _ = probe.quit().await;
    let mut config = Config::new(Mode::Cp, &format!("redis://{}", listen(p1)), "");
    config.g2_url = format!("redis://{}", listen(p2));
    config.port = 0;
    let cp = caplab::app::start(config.clone(), loopback().await?).await?;
    config.mode = Mode::Ap;
    config.instance_id = "ap-recovery-bench".into();
    let ap = caplab::app::start(config, loopback().await?).await?;
    Ok(Lab {
        g1,
        g2,
        faults,
        cp,
        ap,
        _proxy: proxy,
        _dir: dir,
    })
}

async fn loopback() -> Result<tokio::net::TcpListener, Failure> {
    Ok(tokio::net::TcpListener::bind("127.0.0.1:0").await?)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Cut,
    Stop,
    CutG1,
    CutG2,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Cut => "replication cut",
            Case::Stop => "replica stopped",
            Case::CutG1 => "apps cut from g1",
            Case::CutG2 => "apps cut from g2",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Case::Cut => "cut",
            Case::Stop => "stop",
            Case::CutG1 => "g1",
            Case::CutG2 => "g2",
        }
    }

    async fn break_it(self, lab: &Lab) -> Result<(), Failure> {
        match self {
            Case::Cut => drop(lab.faults.set_enabled(CLUSTER_G1, false).await?),
            Case::Stop => lab.g2.pause()?,
            Case::CutG1 => drop(lab.faults.set_enabled(G1, false).await?),
            Case::CutG2 => drop(lab.faults.set_enabled(G2, false).await?),
        }
        Ok(())
    }

    async fn heal(self, lab: &Lab) -> Result<(), Failure> {
        match self {
            Case::Cut => drop(lab.faults.set_enabled(CLUSTER_G1, true).await?),
            Case::Stop => lab.g2.resume()?,
            Case::CutG1 => drop(lab.faults.set_enabled(G1, true).await?),
            Case::CutG2 => drop(lab.faults.set_enabled(G2, true).await?),
        }
        Ok(())
    }
}

/// What one run measured, in ms from the heal.
struct Recovery {
    case: Case,
    outage: Duration,
    ready_ms: u128,
    answered_ms: Option<u128>,
}

/// The app's request of `case`, and whether its answer shows recovery.
async fn recovered(lab: &Lab, case: Case, i: u64) -> bool {
    match case {
        Case::CutG2 => matches!(
            send(lab.ap.local_addr(), "GET", "/read/recovery").await,
            Ok((200, body)) if body.contains("\"node\":\"g2\"")
        ),
        _ => matches!(
            send(lab.cp.local_addr(), "POST", &format!("/write/recovery/{i}")).await,
            Ok((200, _))
        ),
    }
}

async fn measure(lab: &Lab, case: Case, outage: Duration) -> Result<Recovery, Failure> {
    // Settled: the app recovered from the previous case.
    let settle = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    while !recovered(lab, case, i).await {
        i += 1;
        if Instant::now() > settle {
            return Err(format!("{}: the app never settled before the fault", case.name()).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    case.break_it(lab).await?;
    let end = Instant::now() + outage;
    while Instant::now() < end {
        i += 1;
        let _ = recovered(lab, case, i).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    case.heal(lab).await?;
    let healed = Instant::now();

    let ready = {
        let lab_ref = lab;
        async move {
            if matches!(case, Case::CutG1 | Case::CutG2) {
                return Ok::<_, Failure>(healed);
            }
            let g1 = raw(&lab_ref.g1.url()).await?;
            let deadline = healed + Duration::from_secs(60);
            while !replication_confirms(&g1).await {
                if Instant::now() > deadline {
                    return Err("replication never confirmed a write after the heal".into());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let at = Instant::now();
            let _ = g1.quit().await;
            Ok(at)
        }
    };
    let answered = async {
        let deadline = healed + Duration::from_secs(60);
        loop {
            i += 1;
            if recovered(lab, case, i).await {
                return Some(Instant::now());
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let (ready, answered) = tokio::join!(ready, answered);
    let ready = ready?;
    Ok(Recovery {
        case,
        outage,
        ready_ms: ready.duration_since(healed).as_millis(),
        answered_ms: answered.map(|a| a.duration_since(healed).as_millis()),
    })
}

async fn run() -> Result<(), Failure> {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let outages: Vec<u64> = if smoke {
        vec![1]
    } else {
        std::env::var("RECOVERY_OUTAGES")
            .unwrap_or_else(|_| "5,20,60".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    };
    let cases_env = std::env::var("RECOVERY_CASES").unwrap_or_default();
    let all = [Case::Cut, Case::Stop, Case::CutG1, Case::CutG2];
    let cases: Vec<Case> = if smoke {
        vec![Case::Cut]
    } else {
        all.into_iter()
            .filter(|c| cases_env.is_empty() || cases_env.split(',').any(|k| k == c.key()))
            .collect()
    };
    let lab = start_lab().await?;
    println!(
        "caplab recovery benchmark{}: CP and AP with the default settings, no sentinels",
        if smoke {
            " (smoke run: use cargo bench for figures)"
        } else {
            ""
        }
    );
    println!();
    println!("| fault | outage | ready after heal | app recovered after heal | after ready |");
    println!("|---|---|---|---|---|");
    for case in cases {
        for &secs in &outages {
            let r = measure(&lab, case, Duration::from_secs(secs)).await?;
            let (answered, after_ready) = match r.answered_ms {
                Some(ms) => (
                    format!("{ms} ms"),
                    format!("{} ms", ms.saturating_sub(r.ready_ms)),
                ),
                None => ("not within 60 s".into(), "-".into()),
            };
            println!(
                "| {} | {} s | {} ms | {answered} | {after_ready} |",
                r.case.name(),
                r.outage.as_secs(),
                r.ready_ms,
            );
        }
    }
    let Lab { cp, ap, .. } = lab;
    cp.shutdown().await?;
    ap.shutdown().await?;
    Ok(())
}
