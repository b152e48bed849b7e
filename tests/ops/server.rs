//! A real Prometheus server (Debian's `prometheus`, beside promtool) loads the rule files with
//! the lab's scrape config and evaluates them: every rule is healthy, and with no app answering
//! on the scraped ports, `up` carries the `mode` the scrape config gives it and CaplabAppDown
//! goes pending for cp and ap. The same server scraping live apps during a partition, with
//! the breaker alert going pending, is `tests/ops_prometheus_partition.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use caplab::lab::ports::free_port;
use serde_json::Value;

use crate::support::{RULE_FILES, read, root};

/// The Prometheus process, killed by pid when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(port: u16, path: &str) -> Option<Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    serde_json::from_str(body).ok()
}

#[test]
fn a_real_prometheus_loads_the_rules_and_app_down_goes_pending_with_mode() {
    let (Ok(port), Ok(dead)) = (free_port(), free_port()) else {
        panic!("no free port")
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    for f in RULE_FILES {
        std::fs::copy(
            root().join(f),
            dir.path().join(f.trim_start_matches("prometheus/")),
        )
        .unwrap();
    }
    // The lab's config, with both apps on a port where nothing listens.
    let config = read("prometheus/prometheus-local.yml")
        .replace("127.0.0.1:5001", &format!("127.0.0.1:{dead}"))
        .replace("127.0.0.1:5002", &format!("127.0.0.1:{dead}"));
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.path().join("prometheus.log")).unwrap()))
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start prometheus ({e}); it comes with Debian's `prometheus` package, which ./test.sh installs")
        });
    let _server = Server(child);
    let log = || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();

    // Evaluation every 5 s and a scrape every 5 s: pending well within a minute on a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(60);
    let want = crate::support::all_rules().len();
    let mut rules_ok = false;
    let mut pending_modes = Vec::new();
    while Instant::now() < deadline && !(rules_ok && pending_modes.len() == 2) {
        std::thread::sleep(Duration::from_millis(500));
        if let Some(r) = get(port, "/api/v1/rules") {
            let groups = r["data"]["groups"].as_array().cloned().unwrap_or_default();
            let rules: Vec<&Value> = groups
                .iter()
                .flat_map(|g| g["rules"].as_array().into_iter().flatten())
                .collect();
            let evaluated = rules.iter().all(|r| {
                !r["lastEvaluation"]
                    .as_str()
                    .unwrap_or("0001")
                    .starts_with("0001")
            });
            for r in &rules {
                assert!(
                    r["health"] != "err",
                    "rule {} fails in Prometheus: {}\n{}",
                    r["name"],
                    r["lastError"],
                    log()
                );
            }
            rules_ok = groups.len() == 2 && rules.len() == want && evaluated;
        }
        if let Some(a) = get(port, "/api/v1/alerts") {
            pending_modes = a["data"]["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| a["labels"]["alertname"] == "CaplabAppDown" && a["state"] == "pending")
                .filter_map(|a| a["labels"]["mode"].as_str().map(str::to_string))
                .collect();
            pending_modes.sort();
        }
    }
    assert!(
        rules_ok,
        "Prometheus did not load and evaluate the {want} rules in 60 s:\n{}",
        log()
    );
    assert_eq!(
        pending_modes,
        ["ap", "cp"],
        "CaplabAppDown pending per mode:\n{}",
        log()
    );
}
