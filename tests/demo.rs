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
