//! The connections the console's tick keeps from one tick to the next: one to each sentinel,
//! and the proxy API read over the console's own keep-alive HTTP client.
//!
//! Beside the data path, under [`super::poller`]: a tick that opened new connections each
//! time (a fred client per sentinel, a blocking Toxiproxy client with its own thread and TLS
//! context per proxy listing) cost most of the console's CPU. A kept connection that fails
//! (its sentinel killed, or restarted on the same port) is dropped at once, and the next ask
//! connects again, so the console follows a restarted part within a tick or two.

use std::collections::BTreeMap;

use fred::interfaces::ClientLike;

use crate::lab::LabPassword;
use crate::lab::password::auth_url;
use crate::lab::primary::SentinelState;
use crate::lab::redis_node::{RedisNodeError, probe_client};
use crate::lab::sentinel::{SentinelView, sentinel_view_on};
use crate::proxy::model::ProxyJson;

/// One sentinel, asked over one connection for as long as that connection works.
pub struct KeptSentinel {
    name: &'static str,
    port: u16,
    url: String,
    client: Option<fred::prelude::Client>,
}

impl KeptSentinel {
    /// The sentinel `name` on loopback `port`, authenticating with `password` when the lab
    /// has one. Nothing is contacted until the first [`KeptSentinel::ask`].
    pub fn new(name: &'static str, port: u16, password: Option<&LabPassword>) -> KeptSentinel {
        KeptSentinel {
            name,
            port,
            url: auth_url(password, port),
            client: None,
        }
    }

    /// Whether a connection is kept now (none before the first ask, or after a failure).
    pub fn connected(&self) -> bool {
        self.client.is_some()
    }

    /// `SENTINEL MASTER caplab`, on the kept connection (connecting first if there is
    /// none). On any failure the connection is closed and forgotten: the next ask connects
    /// afresh.
    pub async fn ask(&mut self) -> Result<SentinelView, RedisNodeError> {
        let client = match self.client.take() {
            Some(client) => client,
            None => probe_client(&self.url).await?,
        };
        let view = sentinel_view_on(&client, &self.url).await;
        if view.is_ok() {
            self.client = Some(client);
        } else {
            let _ = client.quit().await;
        }
        view
    }

    /// [`KeptSentinel::ask`], as the lab's primary report states it.
    pub async fn state(&mut self) -> SentinelState {
        SentinelState {
            name: self.name,
            port: self.port,
            view: self.ask().await.map_err(|e| e.to_string()),
        }
    }
}

/// `GET /proxies` of the proxy API at `api` (`host:port`, Toxiproxy or `caplab proxy`), over
/// `http` (a pooled client: the connection is reused from tick to tick, and a new one made
/// when the API restarted).
pub async fn proxies(
    http: &reqwest::Client,
    api: &str,
) -> Result<BTreeMap<String, ProxyJson>, String> {
    let url = format!("http://{api}/proxies");
    let resp = http
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("the proxy API at {api} does not answer: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("the proxy API at {api} answered {status}"));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("the proxy API at {api}: {e}"))?;
    serde_json::from_slice(&body)
        .map_err(|e| format!("the proxy API at {api} answered something not a proxy list: {e}"))
}
