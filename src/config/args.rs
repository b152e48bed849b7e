//! The flags of `caplab serve`, each with its environment fallback, and their conversion into
//! the validated [`Config`].
//!
//! This sits before the data path, in the command line. Every value name is the environment
//! name, so even clap's own parse errors name the setting (`--port <PORT>`).

use std::time::Duration;

use super::{
    Config, ConfigError, Environment, Limits, Mode, RedisPassword, SecretKey, Switch, invalid,
};
use crate::node::BreakerSettings;

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
    /// A file holding SECRET_KEY (a Docker secret, `/run/secrets/...`); exclusive with
    /// SECRET_KEY. Surrounding whitespace, such as a final newline, is not part of the key.
    #[arg(long, env = "SECRET_KEY_FILE", value_name = "SECRET_KEY_FILE")]
    pub secret_key_file: Option<std::path::PathBuf>,
    /// A file holding SECRET_KEY_PREVIOUS; exclusive with SECRET_KEY_PREVIOUS.
    #[arg(
        long,
        env = "SECRET_KEY_PREVIOUS_FILE",
        value_name = "SECRET_KEY_PREVIOUS_FILE"
    )]
    pub secret_key_previous_file: Option<std::path::PathBuf>,
    /// The key before the last rotation: tokens it signed are still accepted (empty = none).
    #[arg(
        long,
        env = "SECRET_KEY_PREVIOUS",
        value_name = "SECRET_KEY_PREVIOUS",
        hide_env_values = true
    )]
    pub secret_key_previous: Option<String>,
    /// How long a session token is accepted after the answer that issued it, in seconds.
    #[arg(
        long,
        env = "SESSION_TOKEN_TTL_SEC",
        value_name = "SESSION_TOKEN_TTL_SEC",
        default_value_t = super::DEFAULT_SESSION_TOKEN_TTL_SEC
    )]
    pub session_token_ttl_sec: u64,
    /// `production` refuses a missing or placeholder SECRET_KEY.
    #[arg(long, env = "ENVIRONMENT", value_name = "ENVIRONMENT", value_enum, default_value_t = Environment::Development)]
    pub environment: Environment,
    /// How often the heartbeat is written to the primary and the replica's offset read, in ms
    /// (every 10 ms while the replica is behind).
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
    /// The sentinels to ask which node is primary: comma-separated `redis://` URLs (in the
    /// lab: the `sentinels` proxy). Empty: no sentinels, g1 is always the primary.
    #[arg(
        long,
        env = "SENTINEL_URLS",
        value_name = "SENTINEL_URLS",
        default_value = ""
    )]
    pub sentinel_urls: String,
    /// The master name the sentinels monitor the pair under.
    #[arg(
        long,
        env = "SENTINEL_MASTER",
        value_name = "SENTINEL_MASTER",
        default_value = super::DEFAULT_SENTINEL_MASTER
    )]
    pub sentinel_master: String,
    /// How often the sentinels are asked which node is primary, in ms.
    #[arg(
        long,
        env = "SENTINEL_POLL_MS",
        value_name = "SENTINEL_POLL_MS",
        default_value_t = 200
    )]
    pub sentinel_poll_ms: u64,
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
    /// CP: confirm every read with a replicated fence write on the primary (`on`), or serve
    /// reads unfenced (`off`, for the experiment that shows why the fence is there).
    #[arg(
        long,
        env = "CP_READ_FENCE",
        value_name = "CP_READ_FENCE",
        value_enum,
        default_value_t = Switch::On
    )]
    pub cp_read_fence: Switch,
    /// The password of the Redis nodes and sentinels (prefer REDIS_PASSWORD_FILE).
    #[arg(
        long,
        env = "REDIS_PASSWORD",
        value_name = "REDIS_PASSWORD",
        hide_env_values = true
    )]
    pub redis_password: Option<String>,
    /// A file holding the password of the Redis nodes and sentinels (a Docker or Kubernetes
    /// secret); preferred over REDIS_PASSWORD.
    #[arg(long, env = "REDIS_PASSWORD_FILE", value_name = "REDIS_PASSWORD_FILE")]
    pub redis_password_file: Option<std::path::PathBuf>,
    /// AP: writes the write-behind queue holds while g1 is away (then 503).
    #[arg(
        long,
        env = "AP_QUEUE_CAPACITY",
        value_name = "AP_QUEUE_CAPACITY",
        default_value_t = 10_000
    )]
    pub ap_queue_capacity: usize,
    /// AP: the queue file that makes a 202 survive a crash (replayed on start; one AP
    /// instance per file) [default: none, the queue is in memory only].
    #[arg(long, env = "AP_QUEUE_FILE", value_name = "AP_QUEUE_FILE")]
    pub ap_queue_file: Option<std::path::PathBuf>,
    /// AP: fsync the queue file before answering 202 (`on`: survives a machine crash;
    /// `off`: written to the kernel only, survives a crash of the app).
    #[arg(
        long,
        env = "AP_QUEUE_FSYNC",
        value_name = "AP_QUEUE_FSYNC",
        value_enum,
        default_value_t = Switch::On
    )]
    pub ap_queue_fsync: Switch,
    /// When the primary's version counter goes back (it came back without its data):
    /// `refuse` holds `/ready` at 503 until `POST /admin/ack-data-loss` (from loopback);
    /// `serve` only logs and counts.
    #[arg(
        long,
        env = "ON_PRIMARY_DATA_LOSS",
        value_name = "ON_PRIMARY_DATA_LOSS",
        value_enum,
        default_value_t = crate::primary::DataLossPolicy::Refuse
    )]
    pub on_primary_data_loss: crate::primary::DataLossPolicy,
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
    /// The HTTP server: timeouts, connection cap, rate limit, HTTPS.
    #[command(flatten)]
    pub server: super::ServerArgs,
}

fn seconds(setting: &'static str, value: f64) -> Result<Duration, ConfigError> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        invalid(
            setting,
            format!("must be a positive number of seconds, got {value}"),
        )
    })
}

/// `SENTINEL_URLS` split on commas; blanks around and between the commas are dropped, so an
/// empty value (`${SENTINEL_URLS:-}` in compose) means no sentinels.
fn split_urls(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_string)
        .collect()
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
        let secret_key = super::read_secret_file(
            ("SECRET_KEY", self.secret_key),
            ("SECRET_KEY_FILE", self.secret_key_file.as_deref()),
        )?;
        let secret_key_previous = super::read_secret_file(
            ("SECRET_KEY_PREVIOUS", self.secret_key_previous),
            (
                "SECRET_KEY_PREVIOUS_FILE",
                self.secret_key_previous_file.as_deref(),
            ),
        )?;
        config.secret_key = match secret_key {
            Some(key) => SecretKey(key),
            None if self.environment == Environment::Production => SecretKey(String::new()),
            None => SecretKey::generate(),
        };
        // An empty SECRET_KEY_PREVIOUS (`${SECRET_KEY_PREVIOUS:-}` in compose) means none.
        config.secret_key_previous = secret_key_previous
            .filter(|k| !k.trim().is_empty())
            .map(SecretKey);
        config.session_token_ttl = Duration::from_secs(self.session_token_ttl_sec);
        config.heartbeat_interval = Duration::from_millis(self.heartbeat_interval_ms);
        config.replication_poll = Duration::from_millis(self.replication_poll_ms);
        config.sentinel_urls = split_urls(&self.sentinel_urls);
        config.sentinel_master = self.sentinel_master;
        config.sentinel_poll = Duration::from_millis(self.sentinel_poll_ms);
        config.breaker = BreakerSettings {
            failure_threshold: self.breaker_failure_threshold,
            open_interval: Duration::from_millis(self.breaker_open_ms),
            max_open_interval: Duration::from_millis(self.breaker_max_open_ms),
        };
        config.cp_wait_timeout = Duration::from_millis(self.cp_wait_timeout_ms);
        config.cp_wait_pool_size = self.cp_wait_pool_size;
        config.cp_read_fence = self.cp_read_fence == Switch::On;
        config.ap_queue_capacity = self.ap_queue_capacity;
        config.redis_password = super::read_secret_file(
            ("REDIS_PASSWORD", self.redis_password),
            ("REDIS_PASSWORD_FILE", self.redis_password_file.as_deref()),
        )?
        .map(|p| RedisPassword::from(p.as_str()));
        config.ap_queue_file = self.ap_queue_file.filter(|p| !p.as_os_str().is_empty());
        config.ap_queue_fsync = self.ap_queue_fsync == Switch::On;
        config.on_primary_data_loss = self.on_primary_data_loss;
        config.limits = Limits {
            max_key_bytes: self.max_key_bytes,
            max_value_bytes: self.max_value_bytes,
        };
        if let Some(id) = self.instance_id {
            config.instance_id = id;
        }
        config.shutdown_grace = seconds("SHUTDOWN_GRACE_SEC", self.shutdown_grace_sec)?;
        config.server = self.server.into_settings()?;
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

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn defaults_follow_the_design() -> TestResult {
        let cp = parse(&["--mode", "cp"])?;
        assert_eq!(cp.port, 5001);
        assert_eq!(cp.heartbeat_interval, Duration::from_millis(100));
        let ap = parse(&["--mode", "ap"])?;
        assert_eq!(ap.port, 5002);
        assert_ne!(cp.instance_id, ap.instance_id);
        Ok(())
    }

    #[test]
    fn fractional_network_timeout_is_accepted() -> TestResult {
        let c = parse(&[
            "--mode",
            "cp",
            "--network-timeout-sec",
            "0.25",
            "--cp-wait-timeout-ms",
            "100",
        ])?;
        assert_eq!(c.network_timeout, Duration::from_millis(250));
        Ok(())
    }

    #[test]
    fn each_invalid_value_names_its_setting() -> TestResult {
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
            (&["--session-token-ttl-sec", "0"], "SESSION_TOKEN_TTL_SEC"),
            (&["--sentinel-urls", "http://s1:26379"], "SENTINEL_URLS"),
            (
                &["--sentinel-urls", "redis://a:1,redis://a:1"],
                "SENTINEL_URLS",
            ),
            (&["--sentinel-master", ""], "SENTINEL_MASTER"),
            (&["--sentinel-master", "two words"], "SENTINEL_MASTER"),
            (&["--sentinel-poll-ms", "1"], "SENTINEL_POLL_MS"),
            (&["--cp-read-fence", "maybe"], "CP_READ_FENCE"),
        ];
        for (args, setting) in cases {
            let mut all = vec!["--mode", "cp"];
            all.extend_from_slice(args);
            let Err(err) = parse(&all) else {
                return Err(format!("{setting}: expected an error").into());
            };
            assert!(err.contains(setting), "{args:?}: {err}");
        }
        Ok(())
    }

    #[test]
    fn production_refuses_missing_placeholder_or_short_secret() -> TestResult {
        let base = ["--mode", "ap", "--environment", "production"];
        let Err(err) = parse(&base) else {
            return Err("expected a missing secret to be refused".into());
        };
        assert!(
            err.contains("SECRET_KEY") && err.contains("must be set"),
            "{err}"
        );
        let mut args = base.to_vec();
        args.extend(["--secret-key", "change-me"]);
        let Err(err) = parse(&args) else {
            return Err("expected the placeholder secret to be refused".into());
        };
        assert!(err.contains("placeholder"));
        let mut args = base.to_vec();
        args.extend(["--secret-key", "short"]);
        let Err(err) = parse(&args) else {
            return Err("expected a short secret to be refused".into());
        };
        assert!(err.contains("at least 32 bytes"));
        let mut args = base.to_vec();
        let good = "0123456789abcdef0123456789abcdef";
        args.extend(["--secret-key", good]);
        assert_eq!(parse(&args)?.secret_key.as_bytes(), good.as_bytes());
        Ok(())
    }

    #[test]
    fn session_settings_default_and_parse() -> TestResult {
        let c = parse(&["--mode", "ap"])?;
        assert_eq!(c.session_token_ttl, Duration::from_secs(3600));
        assert_eq!(c.secret_key_previous, None);
        let c = parse(&[
            "--mode",
            "ap",
            "--secret-key-previous",
            "old",
            "--session-token-ttl-sec",
            "60",
        ])?;
        assert_eq!(c.secret_key_previous, Some(SecretKey::from("old")));
        assert_eq!(c.session_token_ttl, Duration::from_secs(60));
        let c = parse(&["--mode", "ap", "--secret-key-previous", " "])?;
        assert_eq!(c.secret_key_previous, None);
        Ok(())
    }

    #[test]
    fn development_generates_a_secret_and_never_prints_it() -> TestResult {
        let c = parse(&["--mode", "cp"])?;
        assert_eq!(c.secret_key.as_bytes().len(), 64);
        let shown = format!("{:?}", c.secret_key);
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(std::str::from_utf8(c.secret_key.as_bytes())?));
        Ok(())
    }

    #[test]
    fn sentinel_settings_default_to_none_and_parse_a_list() -> TestResult {
        let c = parse(&["--mode", "cp"])?;
        assert!(c.sentinel_urls.is_empty());
        assert_eq!(c.sentinel_master, "caplab");
        assert_eq!(c.sentinel_poll, Duration::from_millis(200));
        assert!(c.cp_read_fence);
        let c = parse(&["--mode", "cp", "--sentinel-urls", " "])?;
        assert!(c.sentinel_urls.is_empty());
        let c = parse(&[
            "--mode",
            "cp",
            "--sentinel-urls",
            "redis://127.0.0.1:26379, redis://127.0.0.1:26380,",
            "--sentinel-master",
            "mymaster",
            "--sentinel-poll-ms",
            "50",
            "--cp-read-fence",
            "off",
        ])?;
        assert_eq!(
            c.sentinel_urls,
            ["redis://127.0.0.1:26379", "redis://127.0.0.1:26380"]
        );
        assert_eq!(c.sentinel_master, "mymaster");
        assert_eq!(c.sentinel_poll, Duration::from_millis(50));
        assert!(!c.cp_read_fence);
        Ok(())
    }
}
