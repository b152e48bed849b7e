//! What the lab tests check after a lab stops: nothing it started is left running or
//! listening.

use caplab::lab::ports::ensure_free;
use caplab::lab::{LabPorts, LabRecord};

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
        if let Err(e) = ensure_free(what, port) {
            panic!("{why}: {e}");
        }
    }
}
