//! `Lab::up` on free ports: every part checked through its own interface (Redis PING, ROLE and
//! announced address, the three sentinels' views, the proxy API and its five proxies, both
//! apps' /health, a write through CP read back through AP), then `down` leaves no recorded pid
//! running and every port free; node actions kill and restart g2 and replication resumes.

mod common;

use std::time::Duration;

use caplab::faults::LAB_PROXIES;
use caplab::lab::password::auth_url;
use caplab::lab::redis_node::{info_field, info_replication, ping};
use caplab::lab::sentinel::sentinel_view;
use caplab::lab::{Lab, LabNode, LabRecord, NodeAction};
use common::lab::quick_lab_options;
use fred::interfaces::ClientLike;
use fred::types::{ClusterHash, CustomCommand, Value};

/// `ROLE` as Redis answers it: its first element, and for a replica the master's port.
async fn role(url: &str) -> (String, Option<i64>) {
    let client = fred::prelude::Client::new(
        fred::prelude::Config::from_url(url).expect("url"),
        None,
        None,
        None,
    );
    client.init().await.expect("connect");
    let answer: Value = client
        .custom(
            CustomCommand::new_static("ROLE", ClusterHash::Random, false),
            Vec::<Value>::new(),
        )
        .await
        .expect("ROLE");
    let _ = client.quit().await;
    let Value::Array(parts) = answer else {
        panic!("ROLE answered {answer:?}")
    };
    let name = parts[0].as_string().expect("role name");
    let port = (name == "slave").then(|| parts[2].as_i64().expect("master port"));
    (name, port)
}

/// `CONFIG GET replica-announce-port`.
async fn announced_port(url: &str) -> String {
    let client = common::app::raw_client(url).await;
    let answer: Value = client
        .custom(
            CustomCommand::new_static("CONFIG", ClusterHash::Random, false),
            vec![Value::from("GET"), Value::from("replica-announce-port")],
        )
        .await
        .expect("CONFIG GET");
    let _ = client.quit().await;
    let Value::Array(pair) = answer else {
        panic!("CONFIG GET answered {answer:?}")
    };
    pair[1].as_string().expect("a port")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_up_checks_every_part_and_down_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = Lab::up(quick_lab_options(dir.path()))
        .await
        .expect("lab up");
    let ports = lab.options().ports;
    let record = LabRecord::read(dir.path())
        .expect("read")
        .expect("lab.json written");
    assert_eq!(record, lab.record());
    assert_eq!(record.processes.len(), 8, "{record:?}");

    // Redis: both answer PING; g1 is a master, g2 a replica of g1's cluster proxy, and each
    // announces its own cluster proxy as its address.
    for node in [LabNode::G1, LabNode::G2] {
        ping(&lab.redis_url(node)).await.expect("PING");
    }
    assert_eq!(role(&lab.redis_url(LabNode::G1)).await.0, "master");
    assert_eq!(
        role(&lab.redis_url(LabNode::G2)).await,
        ("slave".to_string(), Some(i64::from(ports.proxy_cluster_g1)))
    );
    for (node, cluster) in [
        (LabNode::G1, ports.proxy_cluster_g1),
        (LabNode::G2, ports.proxy_cluster_g2),
    ] {
        assert_eq!(
            announced_port(&lab.redis_url(node)).await,
            cluster.to_string(),
            "{node} announces its cluster proxy"
        );
    }

    // The sentinels run, know each other and the replica, and name g1 at cluster_g1.
    let pids = lab.sentinel_pids();
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(Option::is_some), "{pids:?}");
    for url in lab.sentinel_urls() {
        let view = sentinel_view(&url).await.expect("SENTINEL MASTER");
        assert!(view.ready(), "{url}: {view:?}");
        assert_eq!(view.addr.1, ports.proxy_cluster_g1, "{url}");
        assert_eq!(view.config_epoch, 0);
    }
    assert_eq!(lab.primary().await.expect("primary"), LabNode::G1);
    let report = lab.primary_report().await;
    assert_eq!(report.problem(), None, "{report}");
    // The apps' way to s1 is the `sentinels` proxy.
    let through = sentinel_view(&auth_url(Some(lab.redis_password()), ports.proxy_sentinels))
        .await
        .expect("s1 through proxy sentinels");
    assert_eq!(through.addr.1, ports.proxy_cluster_g1);
    let info = info_replication(&lab.redis_url(LabNode::G2))
        .await
        .expect("INFO");
    assert_eq!(info_field(&info, "master_link_status"), Some("up"));

    // The proxy API lists the five proxies, enabled, on the lab's ports.
    let proxies = lab.faults().proxies().await.expect("proxies");
    for name in LAB_PROXIES {
        let proxy = proxies
            .get(name)
            .unwrap_or_else(|| panic!("no proxy {name}"));
        assert!(proxy.enabled, "{name} disabled");
    }
    for (name, upstream) in [
        ("g1", ports.redis_g1),
        ("g2", ports.redis_g2),
        ("cluster_g1", ports.redis_g1),
        ("cluster_g2", ports.redis_g2),
        ("sentinels", ports.sentinel_s1),
    ] {
        let port = ports.proxy(name).expect("a lab proxy");
        assert_eq!(proxies[name].listen, format!("127.0.0.1:{port}"), "{name}");
        assert_eq!(
            proxies[name].upstream,
            format!("127.0.0.1:{upstream}"),
            "{name}"
        );
    }

    // Both apps ask s1 through the `sentinels` proxy.
    for name in ["app_cp", "app_ap"] {
        let app = record
            .processes
            .iter()
            .find(|p| p.name == name)
            .expect("app recorded");
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", app.pid)).expect("cmdline");
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).to_string())
            .collect();
        let at = args
            .iter()
            .position(|a| a == "--sentinel-urls")
            .unwrap_or_else(|| panic!("{name} has no --sentinel-urls: {args:?}"));
        assert_eq!(args[at + 1], lab.sentinels_proxy_url(), "{name}");
    }

    // Both apps are healthy and say which personality they are.
    let client = http();
    for (url, mode) in [(lab.cp_url(), "cp"), (lab.ap_url(), "ap")] {
        let resp = client
            .get(format!("{url}/health"))
            .send()
            .await
            .expect("/health");
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(body["mode"], mode);
    }

    // A write through CP (acknowledged by the replica) is read back through AP.
    let resp = client
        .post(format!("{}/write/lab-key/from-cp", lab.cp_url()))
        .send()
        .await
        .expect("write");
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let resp = client
        .get(format!("{}/read/lab-key", lab.ap_url()))
        .send()
        .await
        .expect("read");
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["value"], "from-cp", "{body}");

    lab.down().await.expect("down");
    common::lab::assert_processes_gone(&record);
    common::lab::assert_ports_free(&ports, "port free after down");
    assert!(
        LabRecord::read(dir.path()).expect("read").is_none(),
        "lab.json left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_and_restarting_g2_resumes_replication() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lab = Lab::up(quick_lab_options(dir.path()))
        .await
        .expect("lab up");
    let g2 = lab.redis_url(LabNode::G2);
    let old = lab.redis_pid(LabNode::G2).expect("g2 pid");

    lab.node_action(LabNode::G2, NodeAction::Kill)
        .await
        .expect("kill");
    assert!(lab.redis_pid(LabNode::G2).is_none());
    assert!(ping(&g2).await.is_err(), "a killed g2 still answers");

    lab.node_action(LabNode::G2, NodeAction::Restart)
        .await
        .expect("restart");
    let new = lab.redis_pid(LabNode::G2).expect("g2 runs again");
    assert_ne!(new, old);
    let recorded = LabRecord::read(dir.path()).expect("read").expect("record");
    assert!(
        recorded.processes.iter().any(|p| p.pid == new),
        "lab.json not updated"
    );

    // Replication resumes: the link comes up and a CP write is confirmed by g2 again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let info = info_replication(&g2).await.ok();
        if info
            .as_deref()
            .and_then(|i| info_field(i, "master_link_status"))
            == Some("up")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "g2 never linked up again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = http();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let resp = client
            .post(format!("{}/write/after-restart/v", lab.cp_url()))
            .send()
            .await
            .expect("write");
        if resp.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "CP never confirmed a write after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Stop and continue: a frozen g2 does not answer, a resumed one does.
    lab.node_action(LabNode::G2, NodeAction::Stop)
        .await
        .expect("stop");
    assert!(ping(&g2).await.is_err(), "a stopped g2 answers");
    lab.node_action(LabNode::G2, NodeAction::Continue)
        .await
        .expect("continue");
    ping(&g2).await.expect("PING after continue");

    let pids: Vec<u32> = lab.record().processes.iter().map(|p| p.pid).collect();
    lab.down().await.expect("down");
    for pid in pids {
        assert!(
            caplab::lab::process::proc_stat(pid).is_none_or(|(s, _)| s == 'Z'),
            "pid {pid} still runs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_named_and_nothing_is_left_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = quick_lab_options(dir.path());
    let held = std::net::TcpListener::bind(("127.0.0.1", options.ports.app_ap)).expect("hold");
    let err = Lab::up(options.clone())
        .await
        .expect_err("port taken")
        .to_string();
    assert!(
        err.contains("app_ap") && err.contains(&options.ports.app_ap.to_string()),
        "{err}"
    );
    drop(held);
    common::lab::assert_ports_free(&options.ports, "nothing started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_toxiproxy_is_used_and_left_running() {
    let toxiproxy = caplab::proxy::ProxyServer::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("proxy server");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = quick_lab_options(dir.path());
    options.toxiproxy_url = Some(toxiproxy.api_url());
    let lab = Lab::up(options).await.expect("lab up");
    let record = lab.record();
    assert!(record.external_toxiproxy);
    assert_eq!(record.toxiproxy_url, toxiproxy.api_url());
    assert!(
        record.processes.iter().all(|p| p.name != "proxy"),
        "{record:?}"
    );
    assert_eq!(record.processes.len(), 7);

    // The apps' traffic crosses the given Toxiproxy: disabling its g1 makes CP refuse.
    let client = http();
    let write = |client: reqwest::Client, url: String| async move {
        client
            .post(format!("{url}/write/ext/v"))
            .send()
            .await
            .expect("write")
            .status()
    };
    assert_eq!(write(client.clone(), lab.cp_url()).await, 200);
    lab.faults()
        .set_enabled("g1", false)
        .await
        .expect("disable g1");
    assert_eq!(write(client.clone(), lab.cp_url()).await, 503);
    lab.faults()
        .set_enabled("g1", true)
        .await
        .expect("enable g1");

    lab.down().await.expect("down");
    // Not the lab's to stop: the external Toxiproxy still answers.
    let faults = caplab::faults::FaultDriver::new(&toxiproxy.api_url()).expect("driver");
    faults.version().await.expect("external Toxiproxy still up");
    toxiproxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_does_not_come_up_is_named_with_its_log_and_the_rest_is_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = quick_lab_options(dir.path());
    // Valid for clap, refused by the validated config: app_cp exits at once.
    options.app_args = ["--cp-wait-timeout-ms", "5000"].map(String::from).to_vec();
    let ports = options.ports;
    let err = Lab::up(options).await.expect_err("app_cp cannot start");
    let msg = err.to_string();
    assert!(msg.contains("app_cp did not come up"), "{msg}");
    assert!(msg.contains("app_cp.log"), "{msg}");
    assert!(
        msg.contains("CP_WAIT_TIMEOUT_MS"),
        "the log's last line is quoted: {msg}"
    );
    common::lab::assert_ports_free(&ports, "everything started was stopped");
    assert!(LabRecord::read(dir.path()).expect("read").is_none());
}
