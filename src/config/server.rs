//! The settings of the HTTP server itself, as opposed to the personality behind it: how long a
//! client may take to send its headers and body, how long an idle connection is kept, how
//! many connections are served at once, the rate limit per client address, and HTTPS.
//!
//! This sits before the data path, in the configuration: [`ServerArgs`] is flattened into
//! `caplab serve`'s flags and becomes the validated [`ServerSettings`] that `app::server`
//! reads. Every value name is its environment name, so an error names the line of `.env` to
//! fix.

use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, invalid};

/// Default `HTTP_HEADER_READ_TIMEOUT_SEC`.
pub const DEFAULT_HEADER_READ_TIMEOUT_SEC: f64 = 10.0;
/// Default `HTTP_IDLE_TIMEOUT_SEC`: above the 60 s idle timeout of common load balancers, so
/// the balancer, not the app, closes an idle pooled connection first.
pub const DEFAULT_IDLE_TIMEOUT_SEC: f64 = 75.0;
/// Default `HTTP_BODY_TIMEOUT_SEC`.
pub const DEFAULT_BODY_TIMEOUT_SEC: f64 = 10.0;
/// Default `MAX_CONNECTIONS`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default `RESERVED_CONNECTIONS`.
pub const DEFAULT_RESERVED_CONNECTIONS: usize = 16;

/// The server's flags, each with its environment fallback (flattened into `caplab serve`).
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Seconds a client may take to send a request's headers, from its first byte (or from
    /// the connection's start); then the connection is closed.
    #[arg(
        long,
        env = "HTTP_HEADER_READ_TIMEOUT_SEC",
        value_name = "HTTP_HEADER_READ_TIMEOUT_SEC",
        default_value_t = DEFAULT_HEADER_READ_TIMEOUT_SEC
    )]
    pub http_header_read_timeout_sec: f64,
    /// Seconds an idle keep-alive connection (no request under way) is kept open.
    #[arg(
        long,
        env = "HTTP_IDLE_TIMEOUT_SEC",
        value_name = "HTTP_IDLE_TIMEOUT_SEC",
        default_value_t = DEFAULT_IDLE_TIMEOUT_SEC
    )]
    pub http_idle_timeout_sec: f64,
    /// Seconds a client may take to send a whole request body (`PUT /kv/{key}`); then 408.
    #[arg(
        long,
        env = "HTTP_BODY_TIMEOUT_SEC",
        value_name = "HTTP_BODY_TIMEOUT_SEC",
        default_value_t = DEFAULT_BODY_TIMEOUT_SEC
    )]
    pub http_body_timeout_sec: f64,
    /// Connections served at once; past it (and the reserve) a connection gets a 503 and is
    /// closed.
    #[arg(
        long,
        env = "MAX_CONNECTIONS",
        value_name = "MAX_CONNECTIONS",
        default_value_t = DEFAULT_MAX_CONNECTIONS
    )]
    pub max_connections: usize,
    /// Extra connections kept for `/health`, `/ready` and `/metrics` once MAX_CONNECTIONS are
    /// open (0 = no reserve).
    #[arg(
        long,
        env = "RESERVED_CONNECTIONS",
        value_name = "RESERVED_CONNECTIONS",
        default_value_t = DEFAULT_RESERVED_CONNECTIONS
    )]
    pub reserved_connections: usize,
    /// Requests per minute per client address (0 = no limit).
    #[arg(
        long,
        env = "RATE_LIMIT_PER_MINUTE",
        value_name = "RATE_LIMIT_PER_MINUTE",
        default_value_t = 0
    )]
    pub rate_limit_per_minute: u32,
    /// Requests per hour per client address (0 = no limit).
    #[arg(
        long,
        env = "RATE_LIMIT_PER_HOUR",
        value_name = "RATE_LIMIT_PER_HOUR",
        default_value_t = 0
    )]
    pub rate_limit_per_hour: u32,
    /// PEM certificate chain: with TLS_KEY_FILE, the app serves HTTPS instead of HTTP.
    #[arg(long, env = "TLS_CERT_FILE", value_name = "TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of TLS_CERT_FILE.
    #[arg(long, env = "TLS_KEY_FILE", value_name = "TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
}

/// Where the certificate and key of HTTPS are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The rate limit per client address; a zero field is no limit of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimit {
    /// Requests per minute.
    pub per_minute: u32,
    /// Requests per hour.
    pub per_hour: u32,
}

impl RateLimit {
    /// Whether any limit applies.
    pub fn is_on(&self) -> bool {
        self.per_minute > 0 || self.per_hour > 0
    }
}

/// The validated server settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// Time allowed for a request's headers.
    pub header_read_timeout: Duration,
    /// Time an idle keep-alive connection is kept.
    pub idle_timeout: Duration,
    /// Time allowed for a whole request body.
    pub body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Extra connections for the status endpoints once `max_connections` are open.
    pub reserved_connections: usize,
    /// Requests allowed per client address.
    pub rate_limit: RateLimit,
    /// HTTPS, when set.
    pub tls: Option<TlsFiles>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            header_read_timeout: Duration::from_secs_f64(DEFAULT_HEADER_READ_TIMEOUT_SEC),
            idle_timeout: Duration::from_secs_f64(DEFAULT_IDLE_TIMEOUT_SEC),
            body_timeout: Duration::from_secs_f64(DEFAULT_BODY_TIMEOUT_SEC),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            reserved_connections: DEFAULT_RESERVED_CONNECTIONS,
            rate_limit: RateLimit::default(),
            tls: None,
        }
    }
}

fn timeout(setting: &'static str, seconds: f64) -> Result<Duration, ConfigError> {
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if d >= Duration::from_millis(10) && d <= Duration::from_secs(3600) => Ok(d),
        _ => Err(invalid(
            setting,
            format!("must be between 0.01 and 3600 seconds, got {seconds}"),
        )),
    }
}

impl ServerArgs {
    /// The validated settings.
    pub fn into_settings(self) -> Result<ServerSettings, ConfigError> {
        let tls = match (self.tls_cert_file, self.tls_key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (Some(_), None) => {
                return Err(invalid("TLS_KEY_FILE", "must be set when TLS_CERT_FILE is"));
            }
            (None, Some(_)) => {
                return Err(invalid("TLS_CERT_FILE", "must be set when TLS_KEY_FILE is"));
            }
        };
        let settings = ServerSettings {
            header_read_timeout: timeout(
                "HTTP_HEADER_READ_TIMEOUT_SEC",
                self.http_header_read_timeout_sec,
            )?,
            idle_timeout: timeout("HTTP_IDLE_TIMEOUT_SEC", self.http_idle_timeout_sec)?,
            body_timeout: timeout("HTTP_BODY_TIMEOUT_SEC", self.http_body_timeout_sec)?,
            max_connections: self.max_connections,
            reserved_connections: self.reserved_connections,
            rate_limit: RateLimit {
                per_minute: self.rate_limit_per_minute,
                per_hour: self.rate_limit_per_hour,
            },
            tls,
        };
        settings.validate()?;
        Ok(settings)
    }
}

impl ServerSettings {
    /// Checks the ranges (the library's callers build settings by hand too).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (setting, d) in [
            ("HTTP_HEADER_READ_TIMEOUT_SEC", self.header_read_timeout),
            ("HTTP_IDLE_TIMEOUT_SEC", self.idle_timeout),
            ("HTTP_BODY_TIMEOUT_SEC", self.body_timeout),
        ] {
            if d < Duration::from_millis(10) || d > Duration::from_secs(3600) {
                return Err(invalid(
                    setting,
                    format!("must be between 0.01 and 3600 seconds, got {d:?}"),
                ));
            }
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(invalid("MAX_CONNECTIONS", "must be between 1 and 1000000"));
        }
        if self.reserved_connections > 10_000 {
            return Err(invalid(
                "RESERVED_CONNECTIONS",
                "must be between 0 and 10000",
            ));
        }
        let r = self.rate_limit;
        if r.per_minute > 0 && r.per_hour > 0 && r.per_hour < r.per_minute {
            return Err(invalid(
                "RATE_LIMIT_PER_HOUR",
                format!(
                    "must be 0 or at least RATE_LIMIT_PER_MINUTE ({}), got {}",
                    r.per_minute, r.per_hour
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServerArgs {
        ServerArgs {
            http_header_read_timeout_sec: DEFAULT_HEADER_READ_TIMEOUT_SEC,
            http_idle_timeout_sec: DEFAULT_IDLE_TIMEOUT_SEC,
            http_body_timeout_sec: DEFAULT_BODY_TIMEOUT_SEC,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            reserved_connections: DEFAULT_RESERVED_CONNECTIONS,
            rate_limit_per_minute: 0,
            rate_limit_per_hour: 0,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }

    #[test]
    fn defaults_are_the_library_defaults() -> Result<(), ConfigError> {
        assert_eq!(args().into_settings()?, ServerSettings::default());
        assert!(!ServerSettings::default().rate_limit.is_on());
        Ok(())
    }

    #[test]
    fn each_bad_value_names_its_setting() {
        let cases: Vec<(ServerArgs, &str)> = vec![
            (
                ServerArgs {
                    http_header_read_timeout_sec: 0.0,
                    ..args()
                },
                "HTTP_HEADER_READ_TIMEOUT_SEC",
            ),
            (
                ServerArgs {
                    http_idle_timeout_sec: -1.0,
                    ..args()
                },
                "HTTP_IDLE_TIMEOUT_SEC",
            ),
            (
                ServerArgs {
                    http_body_timeout_sec: f64::NAN,
                    ..args()
                },
                "HTTP_BODY_TIMEOUT_SEC",
            ),
            (
                ServerArgs {
                    max_connections: 0,
                    ..args()
                },
                "MAX_CONNECTIONS",
            ),
            (
                ServerArgs {
                    reserved_connections: 20_000,
                    ..args()
                },
                "RESERVED_CONNECTIONS",
            ),
            (
                ServerArgs {
                    rate_limit_per_minute: 100,
                    rate_limit_per_hour: 10,
                    ..args()
                },
                "RATE_LIMIT_PER_HOUR",
            ),
            (
                ServerArgs {
                    tls_cert_file: Some("cert.pem".into()),
                    ..args()
                },
                "TLS_KEY_FILE",
            ),
            (
                ServerArgs {
                    tls_key_file: Some("key.pem".into()),
                    ..args()
                },
                "TLS_CERT_FILE",
            ),
        ];
        for (args, setting) in cases {
            match args.into_settings() {
                Err(e) => assert_eq!(e.setting, setting, "{e}"),
                Ok(s) => panic!("{setting}: accepted {s:?}"),
            }
        }
    }
}
