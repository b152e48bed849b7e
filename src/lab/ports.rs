//! Loopback ports for the lab and the tests: find a free one, or say by name which is taken.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

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

/// Asks the kernel for a free loopback port. Another process may take it before it is used,
/// so callers that bind it later should be ready to retry.
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(listener.local_addr()?.port())
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
}
