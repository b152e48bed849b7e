//! The app's connections to the sentinels, and the one question it asks them.
//!
//! Beside the data path: the [`Tracker`](super::Tracker) asks `SENTINEL MASTER <name>` and
//! `SENTINEL REPLICAS <name>` every poll, in one pipeline. The second answer gives the
//! `runid` the sentinel knows for each replica's address: right after a promotion Sentinel
//! reports the new primary's address with an empty `runid` for several seconds (until its
//! first `INFO` of the new primary, measured at about six seconds on Redis 7.0), and the
//! address it knew as a replica's names it at once. One fred client per configured URL, built like the node clients (explicit timeout,
//! one attempt, fail fast while disconnected, reconnecting in the background), so a sentinel
//! cut off by a proxy costs an instant refusal, not a hang. The URLs are asked in their
//! order until one gives an answer as new as the newest taken so far (its configuration epoch
//! is not lower): a sentinel that has not heard of the last failover yet does not turn the
//! belief back.

use std::time::Duration;

use fred::clients::Client;
use fred::error::Error as FredError;
use fred::interfaces::ClientLike;
use fred::prelude::Options;
use fred::types::{ClusterHash, CustomCommand, Value};

use crate::config::RedisPassword;
use crate::lab::sentinel::SentinelView;
use crate::node::client::{build_client, command_options};

/// One sentinel: where it is (for logs, without credentials) and the client.
#[derive(Debug, Clone)]
struct Sentinel {
    addr: String,
    client: Client,
}

/// The configured sentinels. Cloning shares the connections.
#[derive(Debug, Clone)]
pub struct SentinelClients {
    sentinels: Vec<Sentinel>,
    options: Options,
    master: String,
}

/// A node's address as a sentinel sees it.
pub type Addr = (String, u16);

/// What one sentinel said in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Which sentinel (`host:port`).
    pub from: String,
    /// What it says of the primary.
    pub view: SentinelView,
    /// The replicas it knows: address and `runid` (empty before the sentinel's first INFO).
    pub replicas: Vec<(Addr, String)>,
}

/// What one round of asking gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// A sentinel answered, at least as new as the newest answer taken before.
    Answer(Answer),
    /// Sentinels answered, but only with an older configuration epoch than one already taken.
    Behind {
        /// The newest epoch they offered.
        epoch: u64,
    },
    /// No sentinel answered: each one's failure, in order.
    Unreachable(Vec<String>),
}

/// `host:port` of a `redis://` URL, without any credentials it carries.
pub fn display_addr(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split('/').next().unwrap_or(rest).to_string()
}

impl SentinelClients {
    /// Starts connecting to every URL in the background; asks about `master`.
    pub fn connect(
        urls: &[String],
        master: &str,
        password: Option<&RedisPassword>,
        timeout: Duration,
    ) -> Result<SentinelClients, FredError> {
        let mut sentinels = Vec::with_capacity(urls.len());
        for url in urls {
            let client = build_client(url, timeout, password)?;
            // The connection task runs until `quit`.
            let _task = client.connect();
            sentinels.push(Sentinel {
                addr: display_addr(url),
                client,
            });
        }
        Ok(SentinelClients {
            sentinels,
            options: command_options(timeout),
            master: master.to_string(),
        })
    }

    /// Asks each sentinel in turn until one answers with an epoch of at least `min_epoch`.
    pub async fn ask(&self, min_epoch: u64) -> Asked {
        let mut failures = Vec::new();
        let mut behind: Option<u64> = None;
        for sentinel in &self.sentinels {
            match self.ask_one(sentinel).await {
                Ok(answer) if answer.view.config_epoch >= min_epoch => {
                    return Asked::Answer(answer);
                }
                Ok(answer) => behind = behind.max(Some(answer.view.config_epoch)),
                Err(e) => failures.push(format!("{}: {e}", sentinel.addr)),
            }
        }
        match behind {
            Some(epoch) => Asked::Behind { epoch },
            None => Asked::Unreachable(failures),
        }
    }

    async fn ask_one(&self, sentinel: &Sentinel) -> Result<Answer, String> {
        let command = || CustomCommand::new_static("SENTINEL", ClusterHash::Random, false);
        let args = |what: &str| vec![Value::from(what), Value::from(self.master.as_str())];
        let pipeline = sentinel.client.pipeline().with_options(&self.options);
        let sent: Result<(), FredError> = async {
            let _: () = pipeline.custom(command(), args("MASTER")).await?;
            let _: () = pipeline.custom(command(), args("REPLICAS")).await?;
            Ok(())
        }
        .await;
        sent.map_err(|e| e.to_string())?;
        let mut answers = pipeline.try_all::<Value>().await.into_iter();
        let master = answers
            .next()
            .ok_or("no answer to SENTINEL MASTER")?
            .map_err(|e| e.to_string())?;
        // The replica list only helps name a just-promoted primary: an error there (a
        // sentinel that does not know REPLICAS) leaves it empty.
        let replicas = match answers.next() {
            Some(Ok(list)) => replica_addresses(list),
            _ => Vec::new(),
        };
        Ok(Answer {
            from: sentinel.addr.clone(),
            view: SentinelView::parse(master)?,
            replicas,
        })
    }

    /// Waits up to `limit` until at least one sentinel is connected; false if none came.
    pub async fn wait_connected(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.sentinels.iter().any(|s| s.client.is_connected()) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Closes every connection.
    pub async fn quit(&self) {
        for sentinel in &self.sentinels {
            let _ = sentinel.client.quit().await;
        }
    }
}

/// The address and `runid` of each replica in a `SENTINEL REPLICAS` answer (a list of flat
/// field/value lists); an entry without an address is skipped.
pub fn replica_addresses(reply: Value) -> Vec<(Addr, String)> {
    let Value::Array(replicas) = reply else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(replicas.len());
    for replica in replicas {
        let Value::Array(items) = replica else {
            continue;
        };
        let (mut ip, mut port, mut run_id) = (None, None, String::new());
        for pair in items.chunks(2) {
            let (Some(name), Some(value)) = (
                pair.first().and_then(Value::as_string),
                pair.get(1).and_then(Value::as_string),
            ) else {
                continue;
            };
            match name.as_str() {
                "ip" => ip = Some(value),
                "port" => port = value.parse::<u16>().ok(),
                "runid" => run_id = value,
                _ => {}
            }
        }
        if let (Some(ip), Some(port)) = (ip, port) {
            out.push(((ip, port), run_id));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_entries_give_address_and_run_id() {
        let entry = |pairs: &[(&str, &str)]| {
            Value::Array(
                pairs
                    .iter()
                    .flat_map(|(n, v)| [Value::from(*n), Value::from(*v)])
                    .collect(),
            )
        };
        let reply = Value::Array(vec![
            entry(&[
                ("name", "x"),
                ("ip", "127.0.0.1"),
                ("port", "7002"),
                ("runid", "b"),
            ]),
            entry(&[("ip", "127.0.0.1"), ("port", "7001"), ("runid", "")]),
            entry(&[("ip", "127.0.0.1"), ("port", "not a port")]),
            Value::from("garbage"),
        ]);
        assert_eq!(
            replica_addresses(reply),
            vec![
                (("127.0.0.1".to_string(), 7002), "b".to_string()),
                (("127.0.0.1".to_string(), 7001), String::new()),
            ]
        );
        assert!(replica_addresses(Value::Null).is_empty());
    }

    #[test]
    fn addresses_are_shown_without_credentials() {
        assert_eq!(display_addr("redis://127.0.0.1:26379"), "127.0.0.1:26379");
        assert_eq!(
            display_addr("redis://user:secret@sentinel-1:26379/0"),
            "sentinel-1:26379"
        );
        assert_eq!(display_addr("s1:26379"), "s1:26379");
    }
}
