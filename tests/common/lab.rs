//! What the lab tests share: a lab's options and `caplab lab up` flags on free ports, and the
//! checks after a lab stops (nothing it started is left running or listening).

use caplab::lab::ports::ensure_free;
use caplab::lab::{LabOptions, LabPorts, LabRecord};

/// A lab in `dir` on free ports whose apps give up on a node quickly (0.5 s network timeout,
/// 200 ms WAIT), so faults show within a test's patience.
pub fn quick_lab_options(dir: &std::path::Path) -> LabOptions {
    LabOptions::new(dir, env!("CARGO_BIN_EXE_caplab"))
        .with_ports(LabPorts::free().expect("free ports"))
        .with_quick_apps()
}

/// `caplab lab up`'s flag for each of `ports`.
pub fn lab_port_args(ports: &LabPorts) -> Vec<String> {
    [
        ("--redis-g1-port", ports.redis_g1),
        ("--redis-g2-port", ports.redis_g2),
        ("--s1-port", ports.sentinel_s1),
        ("--s2-port", ports.sentinel_s2),
        ("--s3-port", ports.sentinel_s3),
        ("--proxy-g1-port", ports.proxy_g1),
        ("--proxy-g2-port", ports.proxy_g2),
        ("--cluster-g1-port", ports.proxy_cluster_g1),
        ("--cluster-g2-port", ports.proxy_cluster_g2),
        ("--sentinels-port", ports.proxy_sentinels),
        ("--cp-port", ports.app_cp),
        ("--ap-port", ports.app_ap),
        ("--proxy-api-port", ports.proxy_api),
    ]
    .iter()
    .flat_map(|(flag, port)| [flag.to_string(), port.to_string()])
    .collect()
}

/// Every process `record` lists has exited.
pub fn assert_processes_gone(record: &LabRecord) {
    for process in &record.processes {
        assert!(
            !process.is_running(),
            "{} (pid {}) still runs",
            process.name,
            process.pid
        );
    }
}

/// Every port of the lab is free again; `why` says what the test expected at this point.
pub fn assert_ports_free(ports: &LabPorts, why: &str) {
    for (what, port) in ports.named() {
        assert_port_free(what, port, why);
    }
}

/// `port` can be bound again within a second. Not at once: a child that another test thread of
/// this process is spawning holds a copy of every socket of the process from its fork until its
/// exec closes them, a moment that a loaded machine can stretch to tens of milliseconds; so a
/// port the test itself just released (or one a stopped process just closed) may still show as
/// taken for that long. Something the lab left listening holds it for good.
pub fn assert_port_free(what: &str, port: u16, why: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while let Err(e) = ensure_free(what, port) {
        if std::time::Instant::now() >= deadline {
            panic!("{why}: {e}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
