//! The app's connections to the sentinels, and the one question it asks them.
//!
//! Beside the data path: the [`Tracker`](super::Tracker) asks `SENTINEL MASTER <name>` every
//! poll. One fred client per configured URL, built like the node clients (explicit timeout,
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

/// What one round of asking gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// A sentinel answered, at least as new as the newest answer taken before.
    Answer {
        /// Which sentinel (`host:port`).
        from: String,
        /// What it said.
        view: SentinelView,
    },
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
        timeout: Duration,
    ) -> Result<SentinelClients, FredError> {
        let mut sentinels = Vec::with_capacity(urls.len());
        for url in urls {
            let client = build_client(url, timeout)?;
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
                Ok(view) if view.config_epoch >= min_epoch => {
                    return Asked::Answer {
                        from: sentinel.addr.clone(),
                        view,
                    };
                }
                Ok(view) => behind = behind.max(Some(view.config_epoch)),
                Err(e) => failures.push(format!("{}: {e}", sentinel.addr)),
            }
        }
        match behind {
            Some(epoch) => Asked::Behind { epoch },
            None => Asked::Unreachable(failures),
        }
    }

    async fn ask_one(&self, sentinel: &Sentinel) -> Result<SentinelView, String> {
        let command = CustomCommand::new_static("SENTINEL", ClusterHash::Random, false);
        let args = vec![Value::from("MASTER"), Value::from(self.master.as_str())];
        let reply: Value = sentinel
            .client
            .with_options(&self.options)
            .custom(command, args)
            .await
            .map_err(|e| e.to_string())?;
        SentinelView::parse(reply)
    }

    /// Closes every connection.
    pub async fn quit(&self) {
        for sentinel in &self.sentinels {
            let _ = sentinel.client.quit().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
