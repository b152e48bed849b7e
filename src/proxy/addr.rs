//! Addresses as Toxiproxy's Go code reads them: `host:port` split like `net.SplitHostPort`,
//! resolved like `net.ResolveTCPAddr("tcp", ...)` (the first IPv4 address, else the first one),
//! and failures worded like Go's `net` errors, so a client that compares messages sees the
//! same text.
//!
//! Control plane only: the registry ([`super::registry`]) resolves a listen address before it
//! binds it or compares it with a proxy's (populate and update keep a proxy whose listen
//! resolves the same), and [`super::upstream`] resolves upstreams to check where they lead.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Where a proxy with no `listen` address listens: loopback, a free port.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:0";

/// Why an address could not be read or resolved, in Go's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// `host:port` could not be split.
    #[error("address {addr}: {what}")]
    Malformed {
        /// The address given.
        addr: String,
        /// Go's reason: `missing port in address`, `too many colons in address`, ...
        what: &'static str,
    },
    /// The port is a number outside 0..=65535.
    #[error("address {port}: invalid port")]
    InvalidPort {
        /// The port given.
        port: String,
    },
    /// The port is not a number (Go would look it up as a service name; this server does not).
    #[error("lookup tcp/{port}: unknown port")]
    UnknownPort {
        /// The port given.
        port: String,
    },
    /// The host name did not resolve.
    #[error("lookup {host}: {reason}")]
    Lookup {
        /// The host given.
        host: String,
        /// What the resolver said.
        reason: String,
    },
}

/// Splits `host:port` as Go's `net.SplitHostPort` does: `[v6]:port`, `host:port`, `:port`.
pub fn split_host_port(addr: &str) -> Result<(&str, &str), AddrError> {
    let malformed = |what| AddrError::Malformed {
        addr: addr.to_string(),
        what,
    };
    let Some(colon) = addr.rfind(':') else {
        return Err(malformed("missing port in address"));
    };
    let (host, port) = (&addr[..colon], &addr[colon + 1..]);
    if let Some(inner) = host.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return Err(malformed("missing ']' in address"));
        };
        if inner.contains('[') || inner.contains(']') {
            return Err(malformed("unexpected '[' in address"));
        }
        return Ok((inner, port));
    }
    if host.contains(':') {
        return Err(malformed("too many colons in address"));
    }
    if host.contains('[') {
        return Err(malformed("unexpected '[' in address"));
    }
    if host.contains(']') {
        return Err(malformed("unexpected ']' in address"));
    }
    Ok((host, port))
}

/// Reads a port as Go does for numbers (an empty port is 0).
fn parse_port(port: &str) -> Result<u16, AddrError> {
    if port.is_empty() {
        return Ok(0);
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddrError::UnknownPort {
            port: port.to_string(),
        });
    }
    port.parse::<u16>().map_err(|_| AddrError::InvalidPort {
        port: port.to_string(),
    })
}

/// Every address `host:port` resolves to, in the resolver's order; an empty host is the
/// unspecified IPv4 address (every interface), as Go listens on it.
pub async fn resolve_all(addr: &str) -> Result<Vec<SocketAddr>, AddrError> {
    let (host, port) = split_host_port(addr)?;
    let port = parse_port(port)?;
    if host.is_empty() {
        return Ok(vec![SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)]);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let lookup_failed = |reason: String| AddrError::Lookup {
        host: host.to_string(),
        reason,
    };
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| lookup_failed(lookup_reason(&e)))?
        .collect();
    if found.is_empty() {
        return Err(lookup_failed("no such host".into()));
    }
    Ok(found)
}

/// The resolver's reason without the std prefix, as short as Go's `no such host`.
fn lookup_reason(e: &io::Error) -> String {
    let text = e.to_string();
    text.strip_prefix("failed to lookup address information: ")
        .unwrap_or(&text)
        .to_string()
}

/// The address a proxy's `listen` means, resolved as Go's `net.ResolveTCPAddr("tcp", ...)`
/// resolves it (the first IPv4 address, else the first): `""` is [`DEFAULT_LISTEN`].
pub async fn resolve_listen(listen: &str) -> Result<SocketAddr, AddrError> {
    let listen = if listen.is_empty() {
        DEFAULT_LISTEN
    } else {
        listen
    };
    let all = resolve_all(listen).await?;
    let first_v4 = all.iter().find(|a| a.is_ipv4()).or(all.first()).copied();
    first_v4.ok_or_else(|| AddrError::Lookup {
        host: listen.to_string(),
        reason: "no such host".into(),
    })
}

/// Whether two listen addresses mean the same socket (Toxiproxy's `Differs`, which resolves
/// the new one). Port 0 asks for a new free port, so it never matches a bound address.
pub async fn same_listen(current: &str, wanted: &str) -> Result<bool, AddrError> {
    let wanted = resolve_listen(wanted).await?;
    if wanted.port() == 0 {
        return Ok(false);
    }
    // The current address is the bound one (an IP literal) once the proxy has listened;
    // one that never resolved cannot match.
    Ok(resolve_listen(current).await.ok() == Some(wanted))
}

/// An OS error as Go prints it: the C library's text with a lowercase first letter
/// (`address already in use`), without Rust's `(os error 98)`.
pub fn os_error_text(e: &io::Error) -> String {
    let Some(code) = e.raw_os_error() else {
        return e.to_string();
    };
    let text = io::Error::from_raw_os_error(code).to_string();
    let text = text
        .strip_suffix(&format!(" (os error {code})"))
        .unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn splits_like_go() -> TestResult {
        assert_eq!(split_host_port("localhost:7070")?, ("localhost", "7070"));
        assert_eq!(split_host_port("[::1]:80")?, ("::1", "80"));
        assert_eq!(split_host_port(":80")?, ("", "80"));
        let text = |a: &str| split_host_port(a).err().map(|e| e.to_string());
        assert_eq!(
            text("localhost").as_deref(),
            Some("address localhost: missing port in address")
        );
        assert_eq!(
            text("::1:80").as_deref(),
            Some("address ::1:80: too many colons in address")
        );
        assert_eq!(
            text("[::1:80").as_deref(),
            Some("address [::1:80: missing ']' in address")
        );
        Ok(())
    }

    #[tokio::test]
    async fn resolves_like_go_and_prefers_ipv4() -> TestResult {
        assert_eq!(
            resolve_listen("localhost:7070").await?,
            "127.0.0.1:7070".parse()?
        );
        assert_eq!(resolve_listen("").await?, "127.0.0.1:0".parse()?);
        assert_eq!(resolve_listen(":7070").await?, "0.0.0.0:7070".parse()?);
        assert_eq!(resolve_listen("[::1]:7070").await?, "[::1]:7070".parse()?);
        let err = |a: &'static str| async move { resolve_listen(a).await.err() };
        assert_eq!(
            err("127.0.0.1:99999")
                .await
                .map(|e| e.to_string())
                .as_deref(),
            Some("address 99999: invalid port")
        );
        assert_eq!(
            err("127.0.0.1:redis")
                .await
                .map(|e| e.to_string())
                .as_deref(),
            Some("lookup tcp/redis: unknown port")
        );
        Ok(())
    }

    #[tokio::test]
    async fn the_same_socket_spelled_differently_is_the_same_listen() -> TestResult {
        assert!(same_listen("127.0.0.1:7070", "localhost:7070").await?);
        assert!(same_listen("localhost:7070", "127.0.0.1:7070").await?);
        assert!(!same_listen("127.0.0.1:7070", "127.0.0.1:7071").await?);
        assert!(!same_listen("127.0.0.1:7070", "127.0.0.1:0").await?);
        assert!(!same_listen("127.0.0.1:7070", "").await?);
        assert!(same_listen("127.0.0.1:7070", "nonsense").await.is_err());
        Ok(())
    }

    #[test]
    fn os_errors_read_like_gos() {
        let e = io::Error::from_raw_os_error(98);
        assert_eq!(os_error_text(&e), "address already in use");
        let e = io::Error::from_raw_os_error(13);
        assert_eq!(os_error_text(&e), "permission denied");
        let e = io::Error::other("plain");
        assert_eq!(os_error_text(&e), "plain");
    }
}
