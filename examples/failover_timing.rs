//! Failover timing: how long from a fault to the promotion, to CP's first write accepted on the
//! new primary, and to AP's first write on it, over several runs in a private lab (real
//! sentinels, real promotions). Used for BENCHMARKS.md, "Failover timing".
//!
//! Each run takes the current primary P and the replica R and applies one fault: a split brain
//! (`cluster_P` down while the apps still reach P) or a crash (P killed with SIGKILL). From the
//! fault on, three loops run at once: the sentinels are asked every 20 ms which node is
//! primary, and CP and AP each get a write every 20 ms until one is answered 200 by R. As soon
//! as the sentinels name R the fault is healed (`cluster_P` up, or P restarted), so CP's time
//! includes Sentinel's wait before it reconfigures the returning P into R's replica: with two
//! nodes CP has no second copy, and takes no write, until then. The next run starts once P is
//! R's replica again and CP takes writes, the roles swapped.
//!
//! ```text
//! cargo build --bin caplab
//! cargo run --example failover_timing -- --runs 5 --bin target/debug/caplab --dir /tmp/ft
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use caplab::lab::primary::{NodeRole, node_role};
use caplab::lab::{Lab, LabNode, LabOptions, LabPorts, NodeAction};

/// Every loop's period.
const POLL: Duration = Duration::from_millis(20);
/// A run that takes longer than this is reported as failed.
const LIMIT: Duration = Duration::from_secs(40);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    SplitBrain,
    Crash,
}

/// One run's times from the fault, ms.
struct Times {
    promoted: f64,
    cp_write: f64,
    ap_write: f64,
    rejoined: f64,
}

fn other(node: LabNode) -> LabNode {
    match node {
        LabNode::G1 => LabNode::G2,
        LabNode::G2 => LabNode::G1,
    }
}

fn cluster_proxy(node: LabNode) -> &'static str {
    match node {
        LabNode::G1 => caplab::faults::CLUSTER_G1,
        LabNode::G2 => caplab::faults::CLUSTER_G2,
    }
}

/// Writes to `base` every [`POLL`] until one is answered 200 by `node`; when, from `t0`.
async fn first_write_on(http: &reqwest::Client, base: &str, node: LabNode, t0: Instant) -> f64 {
    let mut n = 0u64;
    while t0.elapsed() < LIMIT {
        n += 1;
        let url = format!("{base}/write/failover-timing-{n}/v{n}");
        if let Ok(r) = http.post(&url).send().await
            && r.status().as_u16() == 200
        {
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            if body["node"] == node.to_string() {
                return t0.elapsed().as_secs_f64() * 1000.0;
            }
        }
        tokio::time::sleep(POLL).await;
    }
    f64::NAN
}

async fn one_run(lab: &mut Lab, http: &reqwest::Client, fault: Fault) -> Result<Times, String> {
    let p = lab.primary().await.map_err(|e| e.to_string())?;
    let r = other(p);
    let t0 = Instant::now();
    match fault {
        Fault::SplitBrain => lab
            .faults()
            .set_enabled(cluster_proxy(p), false)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())?,
        Fault::Crash => lab
            .node_action(p, NodeAction::Kill)
            .await
            .map_err(|e| e.to_string())?,
    }
    let (cp, ap) = (lab.cp_url(), lab.ap_url());
    let writes = async {
        tokio::join!(
            first_write_on(http, &cp, r, t0),
            first_write_on(http, &ap, r, t0)
        )
    };
    let promotion = async {
        while t0.elapsed() < LIMIT {
            if lab.primary().await.ok() == Some(r) {
                return Some(t0.elapsed().as_secs_f64() * 1000.0);
            }
            tokio::time::sleep(POLL).await;
        }
        None
    };
    let (promoted, (cp_write, ap_write)) = {
        // Heal as soon as the sentinels name R (the writes keep going meanwhile).
        tokio::pin!(writes);
        let promoted = tokio::select! {
            p = promotion => p,
            _ = &mut writes => return Err("the writes ended before the promotion".into()),
        };
        let promoted = promoted.ok_or("no promotion")?;
        let heal = async {
            match fault {
                Fault::SplitBrain => lab
                    .faults()
                    .set_enabled(cluster_proxy(p), true)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Fault::Crash => lab
                    .node_action(p, NodeAction::Restart)
                    .await
                    .map_err(|e| e.to_string()),
            }
        };
        let (healed, w) = tokio::join!(heal, writes);
        healed?;
        (promoted, w)
    };
    let ports = lab.options().ports;
    let rejoined = loop {
        if let Ok(NodeRole::Replica { link_up: true, .. }) =
            node_role(&ports, Some(lab.redis_password()), p).await
        {
            break t0.elapsed().as_secs_f64() * 1000.0;
        }
        if t0.elapsed() > LIMIT {
            return Err(format!("{p} never rejoined"));
        }
        tokio::time::sleep(POLL).await;
    };
    Ok(Times {
        promoted,
        cp_write,
        ap_write,
        rejoined,
    })
}

fn median_max(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    (median, v[v.len() - 1])
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut runs, mut bin, mut dir) = (5usize, PathBuf::from("target/debug/caplab"), None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().ok_or("--runs N")?.parse()?,
            "--bin" => bin = args.next().ok_or("--bin PATH")?.into(),
            "--dir" => dir = Some(PathBuf::from(args.next().ok_or("--dir PATH")?)),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let tmp = tempfile::tempdir()?;
    let dir = dir.unwrap_or_else(|| tmp.path().to_path_buf());
    let options = LabOptions::new(&dir, bin)
        .with_ports(LabPorts::free()?)
        .with_quick_apps();
    let mut lab = Lab::up(options).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let mut results: Vec<(Fault, Times)> = Vec::new();
    for fault in [Fault::SplitBrain, Fault::Crash] {
        for run in 1..=runs {
            // Start from a whole pair: CP takes a write.
            let p = lab.primary().await?;
            let t = Instant::now();
            while first_write_on(&http, &lab.cp_url(), p, Instant::now())
                .await
                .is_nan()
            {
                if t.elapsed() > LIMIT {
                    return Err("CP never took a write before the run".into());
                }
            }
            match one_run(&mut lab, &http, fault).await {
                Ok(times) => {
                    println!(
                        "{fault:?} run {run}: promoted {:.0} ms, CP write on the new primary {:.0} ms, AP write {:.0} ms, old primary rejoined {:.0} ms",
                        times.promoted, times.cp_write, times.ap_write, times.rejoined
                    );
                    results.push((fault, times));
                }
                Err(e) => println!("{fault:?} run {run}: failed: {e}"),
            }
        }
    }
    lab.down().await?;
    println!("\nfault        measure                                   median ms   max ms   runs");
    for fault in [Fault::SplitBrain, Fault::Crash] {
        let of: Vec<&Times> = results
            .iter()
            .filter(|(f, _)| *f == fault)
            .map(|(_, t)| t)
            .collect();
        if of.is_empty() {
            continue;
        }
        let rows: [(&str, Vec<f64>); 4] = [
            ("to the promotion", of.iter().map(|t| t.promoted).collect()),
            (
                "to AP's first write on the new primary",
                of.iter().map(|t| t.ap_write).collect(),
            ),
            (
                "to CP's first write on the new primary",
                of.iter().map(|t| t.cp_write).collect(),
            ),
            (
                "to the old primary rejoined as replica",
                of.iter().map(|t| t.rejoined).collect(),
            ),
        ];
        for (what, v) in rows {
            let (median, max) = median_max(v);
            println!(
                "{:<12} {what:<41} {median:>9.0} {max:>8.0} {:>6}",
                format!("{fault:?}"),
                of.len()
            );
        }
    }
    Ok(())
}
