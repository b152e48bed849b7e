//! Where a proxy may forward to. By default only to loopback (127.0.0.0/8, ::1): a proxy API
//! that anyone on the machine can reach must not become a way to reach other hosts (the cloud
//! metadata service at 169.254.169.254, the local network). `--allow-remote-upstreams` lifts
//! the rule, and the server then forwards anywhere, as Toxiproxy does.
//!
//! Checked twice: on the control plane when a proxy is created, populated or given a new
//! upstream ([`UpstreamPolicy::check`], a clear 403 naming the address and the flag), and on
//! the data path when a connection dials ([`UpstreamPolicy::dial`]), which connects only to
//! loopback addresses, so a name that resolves elsewhere later is still refused.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpStream;

use super::addr::{self, AddrError};
use super::error::ApiError;

/// The flag that lifts the rule, as error messages name it.
pub const ALLOW_FLAG: &str = "--allow-remote-upstreams";

/// Whether upstreams outside loopback are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UpstreamPolicy {
    /// Forward anywhere (Toxiproxy's behaviour) rather than to loopback only.
    pub allow_remote: bool,
}

/// Whether `ip` is a loopback address (an IPv4-mapped IPv6 one counts as its IPv4 address).
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

fn refused(upstream: &str, reason: String) -> ApiError {
    ApiError::UpstreamNotAllowed {
        upstream: upstream.to_string(),
        reason,
    }
}

impl UpstreamPolicy {
    /// Checks a new upstream: with remote upstreams not allowed, it must resolve, and only
    /// to loopback addresses.
    pub async fn check(&self, upstream: &str) -> Result<(), ApiError> {
        if self.allow_remote {
            return Ok(());
        }
        let addrs = addr::resolve_all(upstream)
            .await
            .map_err(|e| refused(upstream, format!("cannot be checked ({e})")))?;
        let outside: Vec<String> = addrs
            .iter()
            .filter(|a| !is_loopback(a.ip()))
            .map(|a| a.ip().to_string())
            .collect();
        if outside.is_empty() {
            Ok(())
        } else {
            Err(refused(
                upstream,
                format!("resolves to {}", outside.join(", ")),
            ))
        }
    }

    /// Connects to the upstream: to any address it resolves to when remote upstreams are
    /// allowed, else to its loopback addresses only (tried in order, as `connect` does).
    pub async fn dial(&self, upstream: &str) -> io::Result<TcpStream> {
        if self.allow_remote {
            return TcpStream::connect(upstream).await;
        }
        let addrs = addr::resolve_all(upstream)
            .await
            .map_err(|e: AddrError| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut last = None;
        for a in addrs.iter().filter(|a| is_loopback(a.ip())) {
            match TcpStream::connect(a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            let to: Vec<String> = addrs.iter().map(SocketAddr::to_string).collect();
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{upstream} resolves to {}, outside loopback; {ALLOW_FLAG} allows it",
                    to.join(", ")
                ),
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn loopback_is_127_slash_8_and_ipv6_one() -> TestResult {
        for ip in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse()?), "{ip}");
        }
        for ip in [
            "169.254.169.254",
            "0.0.0.0",
            "10.0.0.1",
            "::",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_loopback(ip.parse()?), "{ip}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn the_check_refuses_what_leaves_loopback() {
        let strict = UpstreamPolicy::default();
        assert!(strict.check("127.0.0.1:6379").await.is_ok());
        assert!(strict.check("localhost:6379").await.is_ok());
        assert!(strict.check("[::1]:6379").await.is_ok());
        // (No unresolvable name here: resolving one would ask the machine's DNS server.)
        for bad in ["169.254.169.254:80", "0.0.0.0:6379", "127.0.0.1", "[::]:1"] {
            assert!(
                matches!(
                    strict.check(bad).await,
                    Err(ApiError::UpstreamNotAllowed { .. })
                ),
                "{bad}"
            );
        }
        let open = UpstreamPolicy { allow_remote: true };
        assert!(open.check("169.254.169.254:80").await.is_ok());
    }

    #[tokio::test]
    async fn dialing_refuses_non_loopback_without_connecting() {
        let strict = UpstreamPolicy::default();
        // Refused before any packet is sent: nothing is dialed outside loopback.
        let e = strict.dial("169.254.169.254:80").await.err();
        assert_eq!(e.map(|e| e.kind()), Some(io::ErrorKind::PermissionDenied));
    }
}
