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

/// The default port of the CP personality (DESIGN.md).
pub const CP_PORT: u16 = 5001;
/// The default port of the AP personality (DESIGN.md).
pub const AP_PORT: u16 = 5002;

/// Secret keys that ship in examples and must never run in production.
const PLACEHOLDER_SECRETS: &[&str] = &["change-me", "changeme", "secret", "dev-secret-key"];
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

    /// The port DESIGN.md gives this personality.
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

/// `caplab serve`: run one personality (CP or AP) over the Redis pair.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Which personality to run.
    #[arg(long, env = "MODE", value_enum, value_name = "MODE")]
    pub mode: Mode,
    /// TCP port to listen on [default: 5001 for cp, 5002 for ap].
    #[arg(long, env = "PORT", value_name = "PORT")]
    pub port: Option<u16>,
    /// Address to bind (0.0.0.0 in a container).
    #[arg(long, env = "HOST", value_name = "HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// The primary, g1 (in the lab: the `g1` proxy in front of it).
    #[arg(
        long,
        env = "REDIS_G1_URL",
        value_name = "REDIS_G1_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_g1_url: String,
    /// The replica, g2 (in the lab: the `g2` proxy in front of it).
    #[arg(
        long,
        env = "REDIS_G2_URL",
        value_name = "REDIS_G2_URL",
        default_value = "redis://127.0.0.1:6380"
    )]
    pub redis_g2_url: String,
    /// Timeout of every Redis command, in seconds (fractions allowed).
    #[arg(
        long,
        allow_negative_numbers = true,
        env = "NETWORK_TIMEOUT_SEC",
        value_name = "NETWORK_TIMEOUT_SEC",
        default_value_t = 1.0
    )]
    pub network_timeout_sec: f64,
    /// Staleness bound for AP reads, in ms: a staler g2 sends reads to g1.
    #[arg(
        long,
        env = "MAX_STALENESS_MS",
        value_name = "MAX_STALENESS_MS",
        default_value_t = 1000
    )]
    pub max_staleness_ms: u64,
    /// HMAC key of session tokens.
    #[arg(
        long,
        env = "SECRET_KEY",
        value_name = "SECRET_KEY",
        hide_env_values = true
    )]
    pub secret_key: Option<String>,
    /// `production` refuses a missing or placeholder SECRET_KEY.
    #[arg(long, env = "ENVIRONMENT", value_name = "ENVIRONMENT", value_enum, default_value_t = Environment::Development)]
    pub environment: Environment,
    /// How often the heartbeat is written to g1 and read from g2, in ms.
    #[arg(
        long,
        env = "HEARTBEAT_INTERVAL_MS",
        value_name = "HEARTBEAT_INTERVAL_MS",
        default_value_t = 100
    )]
    pub heartbeat_interval_ms: u64,
    /// How often `INFO replication` is polled on both nodes, in ms.
    #[arg(
        long,
        env = "REPLICATION_POLL_MS",
        value_name = "REPLICATION_POLL_MS",
        default_value_t = 500
    )]
    pub replication_poll_ms: u64,
    /// Consecutive failures that open a circuit breaker.
    #[arg(
        long,
        env = "BREAKER_FAILURE_THRESHOLD",
        value_name = "BREAKER_FAILURE_THRESHOLD",
        default_value_t = 5
    )]
    pub breaker_failure_threshold: u32,
    /// First open interval of a breaker, in ms (doubles on each failed trial).
    #[arg(
        long,
        env = "BREAKER_OPEN_MS",
        value_name = "BREAKER_OPEN_MS",
        default_value_t = 1000
    )]
    pub breaker_open_ms: u64,
    /// Longest open interval of a breaker, in ms.
    #[arg(
        long,
        env = "BREAKER_MAX_OPEN_MS",
        value_name = "BREAKER_MAX_OPEN_MS",
        default_value_t = 30_000
    )]
    pub breaker_max_open_ms: u64,
    /// CP: how long `WAIT 1` waits for the replica, in ms (below the network timeout).
    #[arg(
        long,
        env = "CP_WAIT_TIMEOUT_MS",
        value_name = "CP_WAIT_TIMEOUT_MS",
        default_value_t = 500
    )]
    pub cp_wait_timeout_ms: u64,
    /// CP: dedicated g1 connections for write + WAIT (one write at a time each).
    #[arg(
        long,
        env = "CP_WAIT_POOL_SIZE",
        value_name = "CP_WAIT_POOL_SIZE",
        default_value_t = 16
    )]
    pub cp_wait_pool_size: usize,
    /// AP: writes the write-behind queue holds while g1 is away (then 503).
    #[arg(
        long,
        env = "AP_QUEUE_CAPACITY",
        value_name = "AP_QUEUE_CAPACITY",
        default_value_t = 10_000
    )]
    pub ap_queue_capacity: usize,
    /// Longest key accepted, in bytes.
    #[arg(
        long,
        env = "MAX_KEY_BYTES",
        value_name = "MAX_KEY_BYTES",
        default_value_t = 512
    )]
    pub max_key_bytes: usize,
    /// Longest value accepted, in bytes.
    #[arg(
        long,
        env = "MAX_VALUE_BYTES",
        value_name = "MAX_VALUE_BYTES",
        default_value_t = 65_536
    )]
    pub max_value_bytes: usize,
    /// Name of this instance in its heartbeat key [default: the mode and a random suffix].
    #[arg(long, env = "INSTANCE_ID", value_name = "INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// On SIGTERM, how long in-flight requests and the AP queue drain may take, in seconds.
    #[arg(
        long,
        env = "SHUTDOWN_GRACE_SEC",
        value_name = "SHUTDOWN_GRACE_SEC",
        default_value_t = 10.0
    )]
    pub shutdown_grace_sec: f64,
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

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
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
    /// Development or production.
    pub environment: Environment,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// `INFO replication` polling period.
    pub replication_poll: Duration,
    /// Threshold and open intervals of every breaker.
    pub breaker: BreakerSettings,
    /// CP: the `WAIT 1 <ms>` timeout.
    pub cp_wait_timeout: Duration,
    /// CP: size of the dedicated WAIT connection pool.
    pub cp_wait_pool_size: usize,
    /// AP: capacity of the write-behind queue.
    pub ap_queue_capacity: usize,
    /// Key and value limits.
    pub limits: Limits,
    /// Name of this instance (its heartbeat key).
    pub instance_id: String,
    /// Bound on the graceful shutdown.
    pub shutdown_grace: Duration,
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
            environment: Environment::Development,
            heartbeat_interval: Duration::from_millis(100),
            replication_poll: Duration::from_millis(500),
            breaker: BreakerSettings {
                failure_threshold: 5,
                open_interval: Duration::from_millis(1000),
                max_open_interval: Duration::from_secs(30),
            },
            cp_wait_timeout: Duration::from_millis(500),
            cp_wait_pool_size: 16,
            ap_queue_capacity: 10_000,
            limits: Limits {
                max_key_bytes: 512,
                max_value_bytes: 65_536,
            },
            instance_id: default_instance_id(mode),
            shutdown_grace: Duration::from_secs(10),
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
        if self.environment == Environment::Production {
            check_production_secret(&self.secret_key)?;
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

fn check_production_secret(key: &SecretKey) -> Result<(), ConfigError> {
    let text = key.0.trim();
    if text.is_empty() {
        return Err(invalid(
            "SECRET_KEY",
            "must be set when ENVIRONMENT=production (generate one with: openssl rand -hex 32)",
        ));
    }
    if PLACEHOLDER_SECRETS.contains(&text.to_ascii_lowercase().as_str()) {
        return Err(invalid(
            "SECRET_KEY",
            "is the placeholder from .env.example; set a real key for ENVIRONMENT=production",
        ));
    }
    if text.len() < MIN_PRODUCTION_SECRET_BYTES {
        return Err(invalid(
            "SECRET_KEY",
            format!(
                "must be at least {MIN_PRODUCTION_SECRET_BYTES} bytes when ENVIRONMENT=production, got {}",
                text.len()
            ),
        ));
    }
    Ok(())
}

fn default_instance_id(mode: Mode) -> String {
    format!("{mode}-{:08x}", rand::random::<u32>())
}

fn seconds(setting: &'static str, value: f64) -> Result<Duration, ConfigError> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        invalid(
            setting,
            format!("must be a positive number of seconds, got {value}"),
        )
    })
}

impl ServeArgs {
    /// Turns the parsed flags into a validated [`Config`].
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let mut config = Config::new(self.mode, &self.redis_g1_url, &self.redis_g2_url);
        config.host = self.host;
        config.port = self.port.unwrap_or(self.mode.default_port());
        config.network_timeout = seconds("NETWORK_TIMEOUT_SEC", self.network_timeout_sec)?;
        config.max_staleness = Duration::from_millis(self.max_staleness_ms);
        config.environment = self.environment;
        config.secret_key = match self.secret_key {
            Some(key) => SecretKey(key),
            None if self.environment == Environment::Production => SecretKey(String::new()),
            None => SecretKey::generate(),
        };
        config.heartbeat_interval = Duration::from_millis(self.heartbeat_interval_ms);
        config.replication_poll = Duration::from_millis(self.replication_poll_ms);
        config.breaker = BreakerSettings {
            failure_threshold: self.breaker_failure_threshold,
            open_interval: Duration::from_millis(self.breaker_open_ms),
            max_open_interval: Duration::from_millis(self.breaker_max_open_ms),
        };
        config.cp_wait_timeout = Duration::from_millis(self.cp_wait_timeout_ms);
        config.cp_wait_pool_size = self.cp_wait_pool_size;
        config.ap_queue_capacity = self.ap_queue_capacity;
        config.limits = Limits {
            max_key_bytes: self.max_key_bytes,
            max_value_bytes: self.max_value_bytes,
        };
        if let Some(id) = self.instance_id {
            config.instance_id = id;
        }
        config.shutdown_grace = seconds("SHUTDOWN_GRACE_SEC", self.shutdown_grace_sec)?;
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<Config, String> {
        let mut argv = vec!["caplab"];
        argv.extend_from_slice(args);
        let wrapper = Wrapper::try_parse_from(argv).map_err(|e| e.to_string())?;
        wrapper.serve.into_config().map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_follow_the_design() {
        let cp = parse(&["--mode", "cp"]).unwrap();
        assert_eq!(cp.port, 5001);
        assert_eq!(cp.heartbeat_interval, Duration::from_millis(100));
        let ap = parse(&["--mode", "ap"]).unwrap();
        assert_eq!(ap.port, 5002);
        assert_ne!(cp.instance_id, ap.instance_id);
    }

    #[test]
    fn fractional_network_timeout_is_accepted() {
        let c = parse(&[
            "--mode",
            "cp",
            "--network-timeout-sec",
            "0.25",
            "--cp-wait-timeout-ms",
            "100",
        ])
        .unwrap();
        assert_eq!(c.network_timeout, Duration::from_millis(250));
    }

    #[test]
    fn each_invalid_value_names_its_setting() {
        let cases: &[(&[&str], &str)] = &[
            (&["--network-timeout-sec", "0"], "NETWORK_TIMEOUT_SEC"),
            (&["--network-timeout-sec", "-1"], "NETWORK_TIMEOUT_SEC"),
            (&["--network-timeout-sec", "abc"], "NETWORK_TIMEOUT_SEC"),
            (&["--port", "70000"], "PORT"),
            (&["--redis-g1-url", "http://x"], "REDIS_G1_URL"),
            (&["--redis-g2-url", "redis://[::1"], "REDIS_G2_URL"),
            (&["--max-staleness-ms", "0"], "MAX_STALENESS_MS"),
            (&["--heartbeat-interval-ms", "1"], "HEARTBEAT_INTERVAL_MS"),
            (
                &["--breaker-failure-threshold", "0"],
                "BREAKER_FAILURE_THRESHOLD",
            ),
            (
                &["--breaker-open-ms", "5000", "--breaker-max-open-ms", "10"],
                "BREAKER_MAX_OPEN_MS",
            ),
            (&["--cp-wait-timeout-ms", "5000"], "CP_WAIT_TIMEOUT_MS"),
            (&["--cp-wait-pool-size", "0"], "CP_WAIT_POOL_SIZE"),
            (&["--ap-queue-capacity", "0"], "AP_QUEUE_CAPACITY"),
            (&["--max-key-bytes", "0"], "MAX_KEY_BYTES"),
            (&["--max-value-bytes", "0"], "MAX_VALUE_BYTES"),
            (&["--instance-id", "has space"], "INSTANCE_ID"),
        ];
        for (args, setting) in cases {
            let mut all = vec!["--mode", "cp"];
            all.extend_from_slice(args);
            let err = parse(&all).expect_err(setting);
            assert!(err.contains(setting), "{args:?}: {err}");
        }
    }

    #[test]
    fn production_refuses_missing_placeholder_or_short_secret() {
        let base = ["--mode", "ap", "--environment", "production"];
        let err = parse(&base).unwrap_err();
        assert!(
            err.contains("SECRET_KEY") && err.contains("must be set"),
            "{err}"
        );
        let mut args = base.to_vec();
        args.extend(["--secret-key", "change-me"]);
        assert!(parse(&args).unwrap_err().contains("placeholder"));
        let mut args = base.to_vec();
        args.extend(["--secret-key", "short"]);
        assert!(parse(&args).unwrap_err().contains("at least 32 bytes"));
        let mut args = base.to_vec();
        let good = "0123456789abcdef0123456789abcdef";
        args.extend(["--secret-key", good]);
        assert_eq!(parse(&args).unwrap().secret_key.as_bytes(), good.as_bytes());
    }

    #[test]
    fn development_generates_a_secret_and_never_prints_it() {
        let c = parse(&["--mode", "cp"]).unwrap();
        assert_eq!(c.secret_key.as_bytes().len(), 64);
        let shown = format!("{:?}", c.secret_key);
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(std::str::from_utf8(c.secret_key.as_bytes()).unwrap()));
    }
}
