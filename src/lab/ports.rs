//! Loopback ports for the lab and the tests: find a free one, or say by name which is taken.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Mutex;

/// A port the lab needs is already taken by something else.
#[derive(Debug, thiserror::Error)]
#[error(
    "port {port} for {what} is already in use on 127.0.0.1 ({source}); stop what holds it or choose another port"
)]
pub struct PortTaken {
    /// What the port was meant for, such as `app_cp` or `redis g1`.
    pub what: String,
    /// The port.
    pub port: u16,
    /// What the bind said.
    #[source]
    pub source: std::io::Error,
}

/// Finds a free loopback port. Another process may take it before it is used, so callers
/// that bind it later should be ready to retry.
///
/// The port is drawn at random below the kernel's ephemeral range (and outside the lab's
/// default ports, 16379 to 16383 and 26379 to 26383): a port the kernel hands out for
/// `bind(0)` is also one it hands to outgoing connections, so with several labs running (the
/// test suite) a redis replica's or an app's connection could take it between the check and
/// the bind. A port is handed out once per process: labs started side by side in one process
/// (the tests of one test binary run as threads) never draw the same one, which the bind check
/// alone cannot promise while neither has bound it yet. Only when no such port is found does
/// it fall back to asking the kernel.
pub fn free_port() -> std::io::Result<u16> {
    let below = ephemeral_start().unwrap_or(32768);
    for _ in 0..200 {
        let port = rand::random_range(17000..below.max(17001));
        if (26000..27000).contains(&port) || !first_time_drawn(port) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))) {
            return Ok(listener.local_addr()?.port());
        }
    }
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(listener.local_addr()?.port())
}

/// Records `port` as drawn by this process; false when it was drawn before.
fn first_time_drawn(port: u16) -> bool {
    static DRAWN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    // A poisoned set only means a panic elsewhere while inserting: the set is still usable.
    let mut drawn = DRAWN.lock().unwrap_or_else(|e| e.into_inner());
    drawn.insert(port)
}

/// The first port of the kernel's ephemeral range (`ip_local_port_range`), when it can be read.
fn ephemeral_start() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

/// Checks that `port` can be bound on loopback, naming `what` it is for when it cannot.
pub fn ensure_free(what: &str, port: u16) -> Result<(), PortTaken> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .map(drop)
        .map_err(|source| PortTaken {
            what: what.to_string(),
            port,
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn a_held_port_is_reported_by_name() -> TestResult {
        let held = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let port = held.local_addr()?.port();
        let Err(err) = ensure_free("app_cp", port) else {
            return Err("expected a held port to be reported".into());
        };
        let err = err.to_string();
        assert!(
            err.contains("app_cp") && err.contains(&port.to_string()),
            "{err}"
        );
        drop(held);
        ensure_free("app_cp", port)?;
        Ok(())
    }

    #[test]
    fn free_ports_stay_out_of_the_ephemeral_range_and_the_lab_defaults() -> TestResult {
        let below = ephemeral_start().unwrap_or(32768);
        for _ in 0..50 {
            let port = free_port()?;
            ensure_free("a free port", port)?;
            if below > 17001 {
                assert!((17000..below).contains(&port), "{port}");
                assert!(!(26000..27000).contains(&port), "{port}");
            }
        }
        Ok(())
    }

    #[test]
    fn a_process_never_draws_the_same_port_twice() -> TestResult {
        // Threads drawing at once, as the tests of one binary do: without the record of what
        // was drawn, two could be handed a port neither has bound yet.
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..100).map(|_| free_port()).collect::<Vec<_>>()))
            .collect();
        let mut seen = BTreeSet::new();
        for thread in threads {
            for port in thread.join().map_err(|_| "a drawing thread panicked")? {
                let port = port?;
                assert!(seen.insert(port), "port {port} drawn twice");
            }
        }
        Ok(())
    }
}
