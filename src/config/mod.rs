//! Configuration of `caplab serve`: the flags (with environment fallbacks) and the validated
//! [`Config`] every other part of the service reads.
//!
//! This sits before the data path: it is parsed once at start, validated once, and then handed
//! around by value. A flag wins over the environment, the environment over the default; nothing
//! else in the crate reads the environment. An invalid value is refused with a message naming
//! the setting (`NETWORK_TIMEOUT_SEC must be ...`), so an operator knows which line of `.env`
//! to fix.

use std::fmt;
use std::time::Duration;

use crate::node::BreakerSettings;

mod args;
mod secret_file;
mod server;

pub use args::ServeArgs;
pub use secret_file::read_secret_file;
pub use server::{RateLimit, ServerArgs, ServerSettings, TlsFiles};

/// The default port of the CP personality (docs/design.md).
pub const CP_PORT: u16 = 5001;
/// The default port of the AP personality (docs/design.md).
pub const AP_PORT: u16 = 5002;

/// Secret keys that ship in examples and must never run in production.
const PLACEHOLDER_SECRETS: &[&str] = &["change-me", "changeme", "secret", "dev-secret-key"];
/// `SESSION_TOKEN_TTL_SEC`'s default: an hour.
pub const DEFAULT_SESSION_TOKEN_TTL_SEC: u64 = 3600;
/// `SESSION_TOKEN_TTL_SEC`'s largest value: 30 days.
const MAX_SESSION_TOKEN_TTL_SEC: u64 = 30 * 24 * 3600;
/// `SENTINEL_MASTER`'s default, the name the lab's sentinels monitor the pair under.
pub const DEFAULT_SENTINEL_MASTER: &str = "caplab";
/// The shortest secret key accepted in production.
const MIN_PRODUCTION_SECRET_BYTES: usize = 32;

/// Which personality this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Mode {
    /// Consistency over availability (port 5001).
    Cp,
    /// Availability over consistency (port 5002).
    Ap,
}

impl Mode {
    /// `cp` or `ap`, as it appears in metric labels and JSON bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Cp => "cp",
            Mode::Ap => "ap",
        }
    }

    /// The port docs/design.md gives this personality.
    pub fn default_port(self) -> u16 {
        match self {
            Mode::Cp => CP_PORT,
            Mode::Ap => AP_PORT,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the process runs: production refuses a missing or placeholder `SECRET_KEY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Environment {
    /// A laptop or the local lab: a missing `SECRET_KEY` is replaced by a random one.
    Development,
    /// A real deployment: `SECRET_KEY` must be set, not a placeholder, at least 32 bytes.
    Production,
}

/// An `on`/`off` setting (`CP_READ_FENCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// The HMAC key for session tokens. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl SecretKey {
    /// The key's bytes, for signing.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// A random 256-bit key, hex-encoded (what the lab generates).
    pub fn generate() -> SecretKey {
        let bytes: [u8; 32] = rand::random();
        SecretKey(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl From<&str> for SecretKey {
    fn from(key: &str) -> Self {
        SecretKey(key.to_string())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(<{} bytes, redacted>)", self.0.len())
    }
}

/// A setting with a value the service refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting} {reason}")]
pub struct ConfigError {
    /// The environment name of the setting (`NETWORK_TIMEOUT_SEC`).
    pub setting: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

pub(crate) fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        reason: reason.into(),
    }
}

/// Size limits on keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Longest value, in bytes.
    pub max_value_bytes: usize,
}

/// The validated configuration of one personality.
#[derive(Debug, Clone)]
pub struct Config {
    /// CP or AP.
    pub mode: Mode,
    /// Address to bind.
    pub host: String,
    /// Port to listen on (0 picks a free one).
    pub port: u16,
    /// URL of the primary.
    pub g1_url: String,
    /// URL of the replica.
    pub g2_url: String,
    /// Timeout of every Redis command.
    pub network_timeout: Duration,
    /// AP staleness bound.
    pub max_staleness: Duration,
    /// HMAC key of session tokens.
    pub secret_key: SecretKey,
    /// The key before the last rotation: tokens it signed are still accepted.
    pub secret_key_previous: Option<SecretKey>,
    /// How long an issued session token is accepted (renewed by every answer).
    pub session_token_ttl: Duration,
    /// Development or production.
    pub environment: Environment,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// `INFO replication` polling period.
    pub replication_poll: Duration,
    /// The sentinels asked which node is primary; empty: g1 is always the primary.
    pub sentinel_urls: Vec<String>,
    /// The master name the sentinels monitor.
    pub sentinel_master: String,
    /// How often the sentinels are asked.
    pub sentinel_poll: Duration,
    /// Threshold and open intervals of every breaker.
    pub breaker: BreakerSettings,
    /// CP: the `WAIT 1 <ms>` timeout.
    pub cp_wait_timeout: Duration,
    /// CP: size of the dedicated WAIT connection pool.
    pub cp_wait_pool_size: usize,
    /// CP: confirm every read with a replicated fence write (`CP_READ_FENCE`).
    pub cp_read_fence: bool,
    /// AP: capacity of the write-behind queue.
    pub ap_queue_capacity: usize,
    /// Key and value limits.
    pub limits: Limits,
    /// Name of this instance (its heartbeat key).
    pub instance_id: String,
    /// Bound on the graceful shutdown.
    pub shutdown_grace: Duration,
    /// The HTTP server: timeouts, connection cap, rate limit, HTTPS.
    pub server: ServerSettings,
}

impl Config {
    /// The defaults of `caplab serve` for `mode` over these two nodes, as the lab and the tests
    /// start from. Change fields, then [`validate`](Config::validate) (the app does it too).
    pub fn new(mode: Mode, g1_url: &str, g2_url: &str) -> Config {
        Config {
            mode,
            host: "127.0.0.1".to_string(),
            port: mode.default_port(),
            g1_url: g1_url.to_string(),
            g2_url: g2_url.to_string(),
            network_timeout: Duration::from_secs(1),
            max_staleness: Duration::from_millis(1000),
            secret_key: SecretKey::generate(),
            secret_key_previous: None,
            session_token_ttl: Duration::from_secs(DEFAULT_SESSION_TOKEN_TTL_SEC),
            environment: Environment::Development,
            heartbeat_interval: Duration::from_millis(100),
            replication_poll: Duration::from_millis(500),
            sentinel_urls: Vec::new(),
            sentinel_master: DEFAULT_SENTINEL_MASTER.to_string(),
            sentinel_poll: Duration::from_millis(200),
            breaker: BreakerSettings {
                failure_threshold: 5,
                open_interval: Duration::from_millis(1000),
                max_open_interval: Duration::from_secs(30),
            },
            cp_wait_timeout: Duration::from_millis(500),
            cp_wait_pool_size: 16,
            cp_read_fence: true,
            ap_queue_capacity: 10_000,
            limits: Limits {
                max_key_bytes: 512,
                max_value_bytes: 65_536,
            },
            instance_id: default_instance_id(mode),
            shutdown_grace: Duration::from_secs(10),
            server: ServerSettings::default(),
        }
    }

    /// Checks every cross-field rule; the first broken one is reported by setting name.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (setting, url) in [
            ("REDIS_G1_URL", &self.g1_url),
            ("REDIS_G2_URL", &self.g2_url),
        ] {
            check_redis_url(setting, url)?;
        }
        let timeout = self.network_timeout;
        if timeout < Duration::from_millis(1) || timeout > Duration::from_secs(300) {
            return Err(invalid(
                "NETWORK_TIMEOUT_SEC",
                format!("must be between 0.001 and 300 seconds, got {timeout:?}"),
            ));
        }
        if self.max_staleness.is_zero() {
            return Err(invalid("MAX_STALENESS_MS", "must be at least 1 ms"));
        }
        let hb = self.heartbeat_interval;
        if hb < Duration::from_millis(10) || hb > Duration::from_secs(60) {
            return Err(invalid(
                "HEARTBEAT_INTERVAL_MS",
                format!("must be between 10 and 60000 ms, got {}", hb.as_millis()),
            ));
        }
        if self.replication_poll < Duration::from_millis(10) {
            return Err(invalid("REPLICATION_POLL_MS", "must be at least 10 ms"));
        }
        self.validate_sentinels()?;
        let b = &self.breaker;
        if b.failure_threshold == 0 {
            return Err(invalid("BREAKER_FAILURE_THRESHOLD", "must be at least 1"));
        }
        if b.open_interval < Duration::from_millis(1) {
            return Err(invalid("BREAKER_OPEN_MS", "must be at least 1 ms"));
        }
        if b.max_open_interval < b.open_interval {
            return Err(invalid(
                "BREAKER_MAX_OPEN_MS",
                format!(
                    "must be at least BREAKER_OPEN_MS ({} ms), got {} ms",
                    b.open_interval.as_millis(),
                    b.max_open_interval.as_millis()
                ),
            ));
        }
        if self.cp_wait_timeout.is_zero() || self.cp_wait_timeout >= timeout {
            return Err(invalid(
                "CP_WAIT_TIMEOUT_MS",
                format!(
                    "must be at least 1 ms and below NETWORK_TIMEOUT_SEC ({} ms), got {} ms",
                    timeout.as_millis(),
                    self.cp_wait_timeout.as_millis()
                ),
            ));
        }
        if !(1..=1024).contains(&self.cp_wait_pool_size) {
            return Err(invalid("CP_WAIT_POOL_SIZE", "must be between 1 and 1024"));
        }
        if !(1..=10_000_000).contains(&self.ap_queue_capacity) {
            return Err(invalid(
                "AP_QUEUE_CAPACITY",
                "must be between 1 and 10000000",
            ));
        }
        if !(1..=65_536).contains(&self.limits.max_key_bytes) {
            return Err(invalid("MAX_KEY_BYTES", "must be between 1 and 65536"));
        }
        if !(1..=512 * 1024 * 1024).contains(&self.limits.max_value_bytes) {
            return Err(invalid(
                "MAX_VALUE_BYTES",
                "must be between 1 and 536870912 (512 MiB)",
            ));
        }
        if self.instance_id.is_empty()
            || self.instance_id.len() > 128
            || !self.instance_id.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(invalid(
                "INSTANCE_ID",
                "must be 1 to 128 printable ASCII characters without spaces",
            ));
        }
        let ttl = self.session_token_ttl;
        if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(MAX_SESSION_TOKEN_TTL_SEC) {
            return Err(invalid(
                "SESSION_TOKEN_TTL_SEC",
                format!(
                    "must be between 1 and {MAX_SESSION_TOKEN_TTL_SEC} seconds (30 days), got {}",
                    ttl.as_secs()
                ),
            ));
        }
        self.server.validate()?;
        if self.environment == Environment::Production {
            check_production_secret("SECRET_KEY", &self.secret_key)?;
            if let Some(previous) = &self.secret_key_previous {
                check_production_secret("SECRET_KEY_PREVIOUS", previous)?;
            }
        }
        Ok(())
    }
}

impl Config {
    fn validate_sentinels(&self) -> Result<(), ConfigError> {
        for (i, url) in self.sentinel_urls.iter().enumerate() {
            check_redis_url("SENTINEL_URLS", url)?;
            if self.sentinel_urls[..i].contains(url) {
                return Err(invalid("SENTINEL_URLS", format!("lists {url:?} twice")));
            }
        }
        let name = &self.sentinel_master;
        if name.is_empty() || name.len() > 128 || !name.chars().all(|c| c.is_ascii_graphic()) {
            return Err(invalid(
                "SENTINEL_MASTER",
                "must be 1 to 128 printable ASCII characters without spaces",
            ));
        }
        let poll = self.sentinel_poll;
        if poll < Duration::from_millis(10) || poll > Duration::from_secs(60) {
            return Err(invalid(
                "SENTINEL_POLL_MS",
                format!("must be between 10 and 60000 ms, got {}", poll.as_millis()),
            ));
        }
        Ok(())
    }
}

fn check_redis_url(setting: &'static str, url: &str) -> Result<(), ConfigError> {
    if !(url.starts_with("redis://") || url.starts_with("redis-unix://")) {
        return Err(invalid(
            setting,
            format!("must be a redis:// URL such as redis://127.0.0.1:6379, got {url:?}"),
        ));
    }
    fred::prelude::Config::from_url(url)
        .map(drop)
        .map_err(|e| invalid(setting, format!("is not a usable Redis URL ({url:?}): {e}")))
}

fn check_production_secret(setting: &'static str, key: &SecretKey) -> Result<(), ConfigError> {
    let text = key.0.trim();
    if text.is_empty() {
        return Err(invalid(
            setting,
            "must be set when ENVIRONMENT=production (generate one with: openssl rand -hex 32)",
        ));
    }
    if PLACEHOLDER_SECRETS.contains(&text.to_ascii_lowercase().as_str()) {
        return Err(invalid(
            setting,
            "is the placeholder from .env.example; set a real key for ENVIRONMENT=production",
        ));
    }
    if text.len() < MIN_PRODUCTION_SECRET_BYTES {
        return Err(invalid(
            setting,
            format!(
                "must be at least {MIN_PRODUCTION_SECRET_BYTES} bytes when ENVIRONMENT=production, got {}",
                text.len()
            ),
        ));
    }
    Ok(())
}

pub(crate) fn default_instance_id(mode: Mode) -> String {
    format!("{mode}-{:08x}", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn with_secret(key: &str) -> Config {
        let mut c = Config::new(Mode::Ap, "redis://127.0.0.1:1", "redis://127.0.0.1:2");
        c.environment = Environment::Production;
        c.secret_key = SecretKey::from(key);
        c
    }

    #[test]
    fn production_checks_the_secret_itself() {
        assert!(matches!(
            with_secret("").validate(),
            Err(e) if e.to_string().contains("must be set")
        ));
        assert!(matches!(
            with_secret("CHANGE-ME").validate(),
            Err(e) if e.to_string().contains("placeholder")
        ));
        assert!(
            with_secret("0123456789abcdef0123456789abcdef")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn production_checks_the_previous_key_too_and_the_ttl_is_bounded() -> TestResult {
        let mut c = with_secret("0123456789abcdef0123456789abcdef");
        c.secret_key_previous = Some(SecretKey::from("change-me"));
        let Err(err) = c.validate() else {
            return Err("expected a placeholder previous key to be refused".into());
        };
        assert_eq!(err.setting, "SECRET_KEY_PREVIOUS", "{err}");
        c.secret_key_previous = Some(SecretKey::from("fedcba9876543210fedcba9876543210"));
        assert!(c.validate().is_ok());
        c.session_token_ttl = Duration::ZERO;
        let Err(err) = c.validate() else {
            return Err("expected a zero ttl to be refused".into());
        };
        assert_eq!(err.setting, "SESSION_TOKEN_TTL_SEC");
        c.session_token_ttl = Duration::from_secs(31 * 24 * 3600);
        let Err(err) = c.validate() else {
            return Err("expected a 31-day ttl to be refused".into());
        };
        assert_eq!(err.setting, "SESSION_TOKEN_TTL_SEC");
        Ok(())
    }

    #[test]
    fn the_library_defaults_are_valid() -> TestResult {
        for mode in [Mode::Cp, Mode::Ap] {
            Config::new(mode, "redis://127.0.0.1:6379", "redis://127.0.0.1:6380").validate()?;
        }
        Ok(())
    }
}
