//! The node client: one fred client to one Redis node, behind that node's circuit breaker.
//!
//! Data path: third layer. A mode policy calls [`Node`] methods (read a record, write one,
//! heartbeat, INFO); each call asks the breaker first, runs with the fred settings docs/design.md
//! requires, and reports to the breaker how it went. fred settings: every command carries an
//! explicit timeout (`NETWORK_TIMEOUT_SEC`) and a single attempt, fails fast while the
//! connection is down (so a refused node is a definite, instant failure rather than a queued
//! command replayed later, perhaps twice), and the connection is re-established in the
//! background with a short exponential backoff. The write path (the record script, CP's
//! `WAIT`) is in `node::write`.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use fred::clients::Client;
use fred::error::{Error as FredError, ErrorKind};
use fred::interfaces::{ClientLike, HashesInterface, KeysInterface};
use fred::prelude::{Config as FredConfig, Expiration, Options, ReconnectPolicy, TcpConfig};
use fred::types::{Builder, ClusterHash, CustomCommand, InfoKind, Value};

use super::NodeId;
use super::breaker::{Breaker, BreakerSettings};
use super::error::NodeError;
use super::record::{Record, record_key};
use super::role::Role;
use crate::config::RedisPassword;
use crate::metrics::Metrics;

/// Reconnection backoff: 50 ms doubling to 250 ms, forever. A refused connection costs one
/// local round trip, and the ceiling bounds how long after a heal the connection is back
/// (the breaker's recovery starts from it).
const RECONNECT_MIN_MS: u32 = 50;
const RECONNECT_MAX_MS: u32 = 250;

/// What a write left behind on the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteAck {
    /// The version the primary assigned.
    pub version: u64,
    /// The primary's replication offset from `ROLE`, sent right after the write in the same
    /// pipeline: a safe upper bound of the write's own offset (read-your-writes tokens use it).
    pub primary_offset: u64,
    /// CP only: how many replicas `WAIT 1` counted.
    pub replicas_acked: Option<u64>,
}

/// A heartbeat's two `ROLE` answers: the primary's replication offset just before the beat and
/// just after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeatOffsets {
    /// Counts every write the node took before the beat's pipeline was sent.
    pub before: u64,
    /// Counts the beat too: a replica that has reached it holds the beat.
    pub after: u64,
}

/// Builds (does not connect) a fred client for `url` with the settings above, authenticating
/// with `password` when there is one (fred sends `AUTH` on every connection and reconnection).
pub fn build_client(
    url: &str,
    timeout: Duration,
    password: Option<&RedisPassword>,
) -> Result<Client, FredError> {
    let mut config = FredConfig::from_url(url)?;
    if let Some(password) = password {
        config.password = Some(password.expose().to_string());
    }
    // Keep reconnecting in the background even if the first connection fails: AP must come
    // up with a node down, and CP must come back when it returns.
    config.fail_fast = false;
    Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = timeout;
            c.internal_command_timeout = timeout;
            c.max_command_attempts = 1;
            c.tcp = TcpConfig {
                nodelay: Some(true),
                ..TcpConfig::default()
            };
        })
        .with_performance_config(|p| p.default_command_timeout = timeout)
        .set_policy(ReconnectPolicy::new_exponential(
            0,
            RECONNECT_MIN_MS,
            RECONNECT_MAX_MS,
            2,
        ))
        .build()
}

/// The per-command options: one attempt, explicit timeout, fail fast while disconnected.
pub fn command_options(timeout: Duration) -> Options {
    Options {
        max_attempts: Some(1),
        timeout: Some(timeout),
        fail_fast: true,
        ..Options::default()
    }
}

pub(super) fn role_command() -> CustomCommand {
    CustomCommand::new_static("ROLE", ClusterHash::Random, false)
}

pub(super) struct Inner {
    pub(super) id: NodeId,
    pub(super) name: &'static str,
    pub(super) client: Client,
    pub(super) options: Options,
    pub(super) timeout: Duration,
    pub(super) breaker: Breaker,
    pub(super) metrics: Metrics,
    pub(super) script_sha: RwLock<Option<String>>,
    /// The password its connections authenticate with (WAIT pools open more).
    password: Option<RedisPassword>,
}

/// A Redis node (`g1` or `g2`) behind its breaker. Cloning shares it.
#[derive(Clone)]
pub struct Node(pub(super) Arc<Inner>);

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("name", &self.0.name).finish()
    }
}

impl Node {
    /// Starts connecting to `url` in the background and returns at once.
    pub fn connect(
        id: NodeId,
        url: &str,
        timeout: Duration,
        breaker: BreakerSettings,
        metrics: &Metrics,
    ) -> Result<Node, FredError> {
        Node::connect_with(id, url, None, timeout, breaker, metrics)
    }

    /// [`connect`](Node::connect), authenticating with `password`.
    pub fn connect_with(
        id: NodeId,
        url: &str,
        password: Option<&RedisPassword>,
        timeout: Duration,
        breaker: BreakerSettings,
        metrics: &Metrics,
    ) -> Result<Node, FredError> {
        let name = id.as_str();
        let client = build_client(url, timeout, password)?;
        // The connection task runs until `quit`; its handle is not needed.
        let _task = client.connect();
        Ok(Node(Arc::new(Inner {
            id,
            name,
            client,
            options: command_options(timeout),
            timeout,
            breaker: Breaker::new(name, breaker, metrics),
            metrics: metrics.clone(),
            script_sha: RwLock::new(None),
            password: password.cloned(),
        })))
    }

    /// The password this node's connections authenticate with.
    pub fn password(&self) -> Option<&RedisPassword> {
        self.0.password.as_ref()
    }

    /// Which node this is.
    pub fn id(&self) -> NodeId {
        self.0.id
    }

    /// `g1` or `g2`.
    pub fn name(&self) -> &'static str {
        self.0.name
    }

    /// The node's breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.0.breaker
    }

    /// The command timeout.
    pub fn timeout(&self) -> Duration {
        self.0.timeout
    }

    /// Whether the shared connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.0.client.is_connected()
    }

    /// Waits up to `limit` for the first connection; false if it did not come.
    pub async fn wait_connected(&self, limit: Duration) -> bool {
        // Polled rather than awaited on fred's connect notification, which is only sent for
        // a connection attempt that ends after the subscription.
        let deadline = tokio::time::Instant::now() + limit;
        while !self.is_connected() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Closes the connection.
    pub async fn quit(&self) {
        let _ = self.0.client.quit().await;
    }

    /// Runs one call behind the breaker and classifies its failure.
    pub async fn guarded<T, F, Fut>(&self, call: F) -> Result<T, NodeError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, FredError>>,
    {
        let permit = self.0.breaker.permit().map_err(NodeError::rejected)?;
        match call().await {
            Ok(value) => {
                permit.success();
                Ok(value)
            }
            Err(e) => {
                let error = NodeError::from_fred(self.0.name, self.0.timeout, &e);
                if error.is_connectivity() {
                    permit.failure();
                    self.connect_failure(&error);
                } else {
                    permit.success();
                }
                Err(error)
            }
        }
    }

    fn connect_failure(&self, error: &NodeError) {
        self.0.metrics.db_failure(self.0.name);
        tracing::warn!(node = self.0.name, mode = self.0.metrics.mode(), error = %error, "DB_CONNECT_FAILURE");
    }

    pub(super) fn protocol(&self, detail: String) -> NodeError {
        NodeError::Protocol {
            node: self.0.name,
            detail,
        }
    }

    /// Reads `key`'s record (`None` when missing; a missing key is not a failure).
    pub async fn read_record(&self, key: &str) -> Result<Option<Record>, NodeError> {
        let cmd = self.0.client.with_options(&self.0.options);
        let fields = self
            .guarded(|| {
                cmd.hgetall::<std::collections::HashMap<String, String>, _>(record_key(key))
            })
            .await?;
        Record::from_hash(fields).map_err(|e| self.protocol(e))
    }

    /// Writes `now_ms` to the heartbeat key (kept for an hour after the last beat) between two
    /// `ROLE`s, in one pipeline: the node's replication offset before the beat counts every
    /// write it took before the pipeline was sent; the one after counts the beat as well.
    pub async fn set_heartbeat(&self, key: &str, now_ms: u64) -> Result<BeatOffsets, NodeError> {
        let pipeline = self.0.client.pipeline().with_options(&self.0.options);
        let expire = Some(Expiration::EX(3600));
        let results = self
            .guarded(|| async {
                let _: () = pipeline.custom(role_command(), Vec::<Value>::new()).await?;
                let _: () = pipeline
                    .set(key, now_ms.to_string(), expire, None, false)
                    .await?;
                let _: () = pipeline.custom(role_command(), Vec::<Value>::new()).await?;
                all_answers(pipeline.try_all::<Value>().await, 3)
            })
            .await?;
        let fred = |e: FredError| NodeError::from_fred(self.0.name, self.0.timeout, &e);
        let mut answers = results.into_iter();
        let mut next = || {
            answers
                .next()
                .ok_or_else(|| self.protocol("short pipeline answer".into()))?
                .map_err(fred)
        };
        let offset = |reply: Value| Role::parse(reply).map(|r| r.offset);
        let before = offset(next()?).map_err(|e| self.protocol(e))?;
        // The beat itself: an error reply (`READONLY`: the node is a replica now) fails it.
        next()?;
        let after = offset(next()?).map_err(|e| self.protocol(e))?;
        Ok(BeatOffsets { before, after })
    }

    /// `INFO replication`, as text.
    pub async fn info_replication(&self) -> Result<String, NodeError> {
        let cmd = self.0.client.with_options(&self.0.options);
        self.guarded(|| cmd.info(Some(InfoKind::Replication))).await
    }

    /// The node's `run_id` (`INFO server`): it names one run of one redis-server process,
    /// which is how Sentinel names the primary it reports.
    pub async fn run_id(&self) -> Result<String, NodeError> {
        let cmd = self.0.client.with_options(&self.0.options);
        let info: String = self.guarded(|| cmd.info(Some(InfoKind::Server))).await?;
        crate::lab::redis_node::info_field(&info, "run_id")
            .map(str::to_string)
            .ok_or_else(|| self.protocol("INFO server has no run_id".into()))
    }

    /// The record version counter (`caplab:version`): the last version this node assigned,
    /// or replicated; 0 when absent.
    pub async fn version_counter(&self) -> Result<u64, NodeError> {
        let cmd = self.0.client.with_options(&self.0.options);
        let text: Option<String> = self
            .guarded(|| cmd.get(super::record::VERSION_COUNTER_KEY))
            .await?;
        match text {
            None => Ok(0),
            Some(t) => t
                .parse()
                .map_err(|_| self.protocol(format!("caplab:version is not a number: {t:?}"))),
        }
    }

    /// `ROLE`: primary or replica, and its replication offset.
    pub async fn role(&self) -> Result<Role, NodeError> {
        let cmd = self.0.client.with_options(&self.0.options);
        let reply: Value = self
            .guarded(|| cmd.custom(role_command(), Vec::<Value>::new()))
            .await?;
        Role::parse(reply).map_err(|e| self.protocol(e))
    }
}

/// A pipeline's per-command results, or the transport failure (timeout, lost connection,
/// not connected) that stopped the whole pipeline, which fred reports as a single error.
pub(super) fn all_answers(
    results: Vec<Result<Value, FredError>>,
    n: usize,
) -> Result<Vec<Result<Value, FredError>>, FredError> {
    if results.len() == n {
        return Ok(results);
    }
    Err(results
        .into_iter()
        .find_map(Result::err)
        .unwrap_or_else(|| {
            FredError::new(
                ErrorKind::Protocol,
                format!("pipeline of {n} commands answered with another number of replies"),
            )
        }))
}
