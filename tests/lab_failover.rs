//! The lab's failover experiments against real sentinels and real promotions, through the Lab
//! API and `caplab lab status` (docs/design.md, "Topology"): a split brain (`down cluster_g1`:
//! g2 promoted, two nodes claiming primary flagged, g1 back as g2's replica through
//! `cluster_g2`), the forced failover as a scenario step and as a control, the double cut that
//! stops replication without a promotion, and a killed primary restarted into the role
//! Sentinel gave it.

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use caplab::faults::{CLUSTER_G1, CLUSTER_G2};
use caplab::lab::primary::{NodeRole, node_role};
use caplab::lab::sentinel::sentinel_view;
use caplab::lab::{Lab, LabNode, NodeAction};
use caplab::scenario::{RunOptions, run_scenario, validate_str};
use common::lab::quick_lab_options;
use common::sentinels::{LabLogsOnPanic, PROMOTION_WITHIN, REJOIN_WITHIN};

/// Polls `check` every 100 ms until it gives `Some`, or panics after `within` naming `what`.
async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return (value, start.elapsed());
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the sentinels name `node` as primary.
async fn wait_primary(lab: &Lab, node: LabNode, within: Duration) -> Duration {
    let what = format!("the sentinels name {node} as primary");
    wait_for(&what, within, || async {
        (lab.primary().await.ok() == Some(node)).then_some(())
    })
    .await
    .1
}

/// Waits until `node` says it is a replica of the node behind `cluster` with its link up; a
/// timeout names what the node last said and what the sentinels and nodes report.
async fn wait_replica_of(lab: &Lab, node: LabNode, cluster: u16, within: Duration) -> Duration {
    let ports = lab.options().ports;
    let start = Instant::now();
    loop {
        let role = node_role(&ports, Some(lab.redis_password()), node).await;
        if let Ok(NodeRole::Replica {
            master,
            link_up: true,
        }) = &role
            && master.1 == cluster
        {
            return start.elapsed();
        }
        if start.elapsed() >= within {
            panic!(
                "{node} replicates through port {cluster}: not within {within:?}; it last said \
                 {role:?}; {}",
                lab.primary_report().await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `caplab lab status` on the lab's directory: exit code and stdout.
async fn status(lab: &Lab) -> (Option<i32>, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args(["lab", "status", "--dir"])
        .arg(lab.dir())
        .output()
        .await
        .expect("run caplab lab status");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolating_g1_from_the_cluster_promotes_g2_and_g1_rejoins_as_its_replica() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _logs = LabLogsOnPanic(dir.path().to_path_buf());
    let lab = Lab::up(quick_lab_options(dir.path()))
        .await
        .expect("lab up");
    let ports = lab.options().ports;

    lab.faults()
        .set_enabled(CLUSTER_G1, false)
        .await
        .expect("down cluster_g1");
    let took = wait_primary(&lab, LabNode::G2, PROMOTION_WITHIN).await;
    eprintln!("promotion seen {took:?} after `down cluster_g1`");
    // g1 cannot hear of it: both nodes say primary, and the lab says so.
    let report = lab.primary_report().await;
    assert_eq!(report.by_sentinels(), Some(LabNode::G2), "{report}");
    assert_eq!(report.claimants(), [LabNode::G1, LabNode::G2], "{report}");
    let (code, out) = status(&lab).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "primary now: g2 (the sentinels, config epoch 1; g1 says master, g2 says master)"
        ) && out.contains("WARNING: SPLIT BRAIN: g1 and g2 both say they are primary"),
        "{out}"
    );

    lab.faults()
        .set_enabled(CLUSTER_G1, true)
        .await
        .expect("up cluster_g1");
    // The sentinels turn g1 into a replica of g2, reached through g2's cluster proxy.
    let took = wait_replica_of(&lab, LabNode::G1, ports.proxy_cluster_g2, REJOIN_WITHIN).await;
    eprintln!("g1 a replica of g2 {took:?} after `up cluster_g1`");
    let report = lab.primary_report().await;
    assert_eq!(report.problem(), None, "{report}");
    assert_eq!(report.claimants(), [LabNode::G2]);
    let (code, out) = status(&lab).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("role slave of g2 through cluster_g2, link up")
            && out.contains("primary now: g2"),
        "{out}"
    );
    lab.down().await.expect("down");
}

const FAILOVER: &str = r#"name = "forced-failover"
targets = ["ap"]
[workload]
rate = 10
duration = "3s"
keys = 2
timeout = "2s"
settle = "500ms"
[[step]]
at = "1s"
action = "failover"
[[threshold]]
target = "ap"
metric = "availability"
min = 0.5
lesson = "AP keeps answering through a forced failover"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failover_step_and_control_promote_the_replica_each_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _logs = LabLogsOnPanic(dir.path().to_path_buf());
    let mut lab = Lab::up(quick_lab_options(dir.path()))
        .await
        .expect("lab up");
    let ports = lab.options().ports;
    assert_eq!(lab.primary().await.expect("primary"), LabNode::G1);

    // As a scenario step, run against the lab itself.
    let scenario = validate_str("failover.toml", FAILOVER).expect("valid");
    let endpoints = caplab::scenario::Endpoints {
        cp: lab.cp_url(),
        ap: lab.ap_url(),
        toxiproxy: lab.toxiproxy_url(),
    };
    let opts = RunOptions {
        out: dir.path().join("run"),
        progress: false,
        check_timeout: Duration::from_secs(5),
    };
    let outcome = run_scenario(&scenario, &endpoints, &mut lab, &opts)
        .await
        .expect("the run");
    let step = &outcome.report.steps[0];
    assert_eq!(step.description, "failover (SENTINEL FAILOVER caplab)");
    assert_eq!(step.error, None);
    // The step was applied once the sentinels named g2: no waiting needed here.
    assert_eq!(lab.primary().await.expect("primary"), LabNode::G2);
    let view = sentinel_view(&lab.sentinel_urls()[0]).await.expect("s1");
    assert_eq!(
        (view.addr.1, view.config_epoch),
        (ports.proxy_cluster_g2, 1)
    );

    // The old primary becomes g2's replica; then the control fails over back to g1.
    wait_replica_of(&lab, LabNode::G1, ports.proxy_cluster_g2, REJOIN_WITHIN).await;
    // Sentinel may refuse for a while (NOGOODSLAVE) until it has re-read the new replica;
    // the refusal says what it knows of it.
    let started = Instant::now();
    let back = loop {
        match lab.failover().await {
            Ok(node) => break node,
            Err(e) if e.to_string().contains("NOGOODSLAVE") => {
                eprintln!("refused after {:?}: {e}", started.elapsed());
                assert!(
                    e.to_string().contains("the replicas it knows"),
                    "the refusal lists the replicas: {e}"
                );
                assert!(started.elapsed() < REJOIN_WITHIN, "never accepted: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("failover back: {e}"),
        }
    };
    assert_eq!(back, LabNode::G1);
    eprintln!(
        "failover back to g1 confirmed {:?} after g1 linked up",
        started.elapsed()
    );
    assert!(matches!(
        node_role(&ports, Some(lab.redis_password()), LabNode::G1).await,
        Ok(NodeRole::Primary { .. })
    ));
    lab.down().await.expect("down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_both_cluster_links_stops_replication_without_a_promotion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _logs = LabLogsOnPanic(dir.path().to_path_buf());
    let lab = Lab::up(quick_lab_options(dir.path()))
        .await
        .expect("lab up");
    let ports = lab.options().ports;
    let s1 = lab.sentinel_urls()[0].clone();

    // The replica's link first, so no sentinel loses the primary while it reaches the replica.
    lab.faults()
        .set_enabled(CLUSTER_G2, false)
        .await
        .expect("down cluster_g2");
    lab.faults()
        .set_enabled(CLUSTER_G1, false)
        .await
        .expect("down cluster_g1");
    // The sentinels do take g1 for down (together: o_down)...
    wait_for("s1 flags g1 o_down", PROMOTION_WITHIN, || async {
        let view = sentinel_view(&s1).await.ok()?;
        view.flags.contains("o_down").then_some(())
    })
    .await;
    // ...and still promote nobody: they cannot reach g2.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(lab.primary().await.expect("primary"), LabNode::G1);
    assert_eq!(sentinel_view(&s1).await.expect("s1").config_epoch, 0);
    assert!(matches!(
        node_role(&ports, Some(lab.redis_password()), LabNode::G2).await,
        Ok(NodeRole::Replica { link_up: false, .. })
    ));

    // Heal the primary's link first; replication resumes, still from g1.
    lab.faults()
        .set_enabled(CLUSTER_G1, true)
        .await
        .expect("up cluster_g1");
    lab.faults()
        .set_enabled(CLUSTER_G2, true)
        .await
        .expect("up cluster_g2");
    wait_replica_of(
        &lab,
        LabNode::G2,
        ports.proxy_cluster_g1,
        Duration::from_secs(15),
    )
    .await;
    let report = lab.primary_report().await;
    assert_eq!(report.problem(), None, "{report}");
    assert_eq!(report.by_sentinels(), Some(LabNode::G1));
    lab.down().await.expect("down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_restarts_as_a_primary_and_is_turned_into_a_replica() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _logs = LabLogsOnPanic(dir.path().to_path_buf());
    let mut lab = Lab::up(quick_lab_options(dir.path()))
        .await
        .expect("lab up");
    let ports = lab.options().ports;

    lab.node_action(LabNode::G1, NodeAction::Kill)
        .await
        .expect("kill g1");
    let took = wait_primary(&lab, LabNode::G2, PROMOTION_WITHIN).await;
    eprintln!("g2 promoted {took:?} after g1 was killed");

    // Restarted from its own config, g1 is a primary again (nobody told it otherwise)...
    lab.node_action(LabNode::G1, NodeAction::Restart)
        .await
        .expect("restart g1");
    assert!(matches!(
        node_role(&ports, Some(lab.redis_password()), LabNode::G1).await,
        Ok(NodeRole::Primary { .. })
    ));
    // ...announcing its cluster proxy, so the sentinels find it there and demote it.
    let took = wait_replica_of(&lab, LabNode::G1, ports.proxy_cluster_g2, REJOIN_WITHIN).await;
    eprintln!("restarted g1 a replica of g2 after {took:?}");

    // Sentinel wrote that role into g1's config: another restart keeps it at once.
    lab.node_action(LabNode::G1, NodeAction::Restart)
        .await
        .expect("restart g1 again");
    match node_role(&ports, Some(lab.redis_password()), LabNode::G1).await {
        Ok(NodeRole::Replica { master, .. }) => assert_eq!(master.1, ports.proxy_cluster_g2),
        other => panic!("g1 came back as {other:?}"),
    }
    assert_eq!(lab.primary().await.expect("primary"), LabNode::G2);
    lab.down().await.expect("down");
}
