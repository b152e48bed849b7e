//! `caplab demo` end to end: the lab comes up (with its sentinels), the partition experiment
//! runs against both personalities (a replication cut, a cut of g2, a split brain), the table
//! has measured rows for CP and AP in every phase, AP lost acknowledged writes in the split
//! brain and CP none, and the lab is down afterwards (every pid the demo printed is gone, `lab.json` removed).

use std::process::Command;

use caplab::lab::LabRecord;
use caplab::lab::process::proc_stat;

const PHASES: [&str; 7] = [
    "before",
    "replication cut",
    "replication healed",
    "g2 cut",
    "g2 healed",
    "split brain",
    "split healed",
];

/// The cells of a table line (columns are separated by at least two spaces).
fn cells(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[test]
fn demo_prints_measured_rows_for_cp_and_ap_and_stops_the_lab() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    let output = Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args(["demo", "--phase", "2s", "--dir", &dir.display().to_string()])
        .output()
        .expect("run caplab demo");
    let out = String::from_utf8_lossy(&output.stdout).to_string();
    let err = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "demo failed:\n{out}\n{err}");

    // The lab's processes, as the demo printed them, are all gone.
    let pids: Vec<u32> = out
        .lines()
        .filter(|l| {
            ["redis g", "sentinel s", "app_", "proxy  "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .filter_map(|l| cells(l).get(1)?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 8, "pids in the lab table:\n{out}");
    for pid in pids {
        assert!(
            proc_stat(pid).is_none_or(|(state, _)| state == 'Z'),
            "pid {pid} still runs after the demo"
        );
    }
    assert!(
        LabRecord::read(&dir).expect("read").is_none(),
        "lab.json left behind"
    );

    // One measured row per phase and personality.
    let mut availability = std::collections::HashMap::new();
    let mut lost = std::collections::HashMap::new();
    for phase in PHASES {
        for mode in ["cp", "ap"] {
            let row = out
                .lines()
                .map(cells)
                .find(|c| c.len() == 10 && c[0] == phase && c[1] == mode)
                .unwrap_or_else(|| panic!("no row for {phase} / {mode}:\n{out}"));
            let ops: usize = row[2].parse().expect("ops");
            assert!(ops > 20, "{phase}/{mode}: only {ops} operations");
            let avail: f64 = row[3].trim_end_matches('%').parse().expect("availability");
            assert!((0.0..=100.0).contains(&avail));
            assert!(row[7].ends_with(" ms"), "p99 not measured: {row:?}");
            availability.insert((phase, mode), avail);
            lost.insert((phase, mode), row[9].parse::<usize>().expect("lost writes"));
        }
    }
    // What the personalities are for: with replication cut, CP refuses the writes it cannot
    // have confirmed, AP keeps answering.
    let cp = availability[&("replication cut", "cp")];
    let ap = availability[&("replication cut", "ap")];
    assert!(
        cp < 90.0 && ap > cp,
        "replication cut: CP {cp}%, AP {ap}%\n{out}"
    );
    // The split brain: the writes the deposed g1 acknowledged for AP are gone; CP lost none.
    assert!(lost[&("split brain", "ap")] >= 1, "{out}");
    for phase in PHASES {
        assert_eq!(lost[&(phase, "cp")], 0, "CP lost writes in {phase}:\n{out}");
    }
    // Before any fault CP answers (a margin for a loaded machine).
    assert!(availability[&("before", "cp")] > 80.0, "{out}");
}

/// `caplab demo --console`: after the table the lab stays up and the console serves it
/// (its tick sees both apps answering); Ctrl-C stops the console and the lab, leaving
/// nothing running.
#[test]
fn demo_with_console_keeps_the_lab_up_until_interrupted() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    let port = caplab::lab::ports::free_port().expect("free port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args([
            "demo",
            "--phase",
            "1s",
            "--workers",
            "2",
            "--dir",
            &dir.display().to_string(),
            "--console",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run caplab demo --console");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // Stop the demo (and so its lab) whatever happens below.
    struct Interrupt(nix::unistd::Pid);
    impl Drop for Interrupt {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGINT);
        }
    }
    let guard = Interrupt(pid);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut out = String::new();
    let url = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the demo ended without serving the console:\n{out}"))
            .expect("read");
        out.push_str(&line);
        out.push('\n');
        if let Some(rest) = line.strip_prefix("The lab console: ") {
            break rest.split_whitespace().next().expect("url").to_string();
        }
    };
    assert_eq!(url, format!("http://127.0.0.1:{port}"));
    assert!(out.contains("the lab stays up"), "{out}");
    let record = LabRecord::read(&dir)
        .expect("read")
        .expect("lab.json while the console serves");
    assert!(
        record.processes.iter().all(|p| p.is_running()),
        "{record:?}"
    );
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let state: serde_json::Value = loop {
        let state = client
            .get(format!("{url}/api/state"))
            .send()
            .ok()
            .filter(|r| r.status().is_success())
            .and_then(|r| r.json().ok());
        match state {
            Some(s) => break s,
            None if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(200))
            }
            None => panic!("no state from the console within 10 s"),
        }
    };
    assert_eq!(state["apps"][0]["up"], true, "{}", state["apps"][0]);
    assert_eq!(state["apps"][1]["up"], true, "{}", state["apps"][1]);

    drop(guard);
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    for line in lines.map_while(Result::ok) {
        out.push_str(&line);
        out.push('\n');
    }
    assert!(out.contains("the console and the lab are down"), "{out}");
    common_gone(&record);
    assert!(
        LabRecord::read(&dir).expect("read").is_none(),
        "lab.json left behind"
    );
    caplab::lab::ports::ensure_free("console", port).expect("the console's port is free");
}

fn common_gone(record: &LabRecord) {
    for p in &record.processes {
        assert!(!p.is_running(), "{} (pid {}) still runs", p.name, p.pid);
    }
}
