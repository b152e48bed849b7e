//! One proxy entry: its addresses, whether it listens, its toxics, and the `watch` channels through
//! which its live connections follow the toxics.
//!
//! Control plane: owned by the registry ([`super::registry`]), changed only by the control task,
//! so no lock guards it. Its bridge to the data path is the two toxic chains it publishes (one
//! per direction) and the [`Listening`] it starts and stops, which carries the [`Route`]
//! (upstream policy and byte counters) every connection shares.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use super::addr;
use super::connection::ChainWatch;
use super::error::{ApiError, ListenError};
use super::listener::{Listening, Route};
use super::metrics::ProxyMetrics;
use super::model::{ProxyJson, Stream, ToxicJson};
use super::signal::Wakers;
use super::toxics::{Chain, ToxicConfig};
use super::upstream::UpstreamPolicy;

/// Binds `listen` as Go's `net.Listen("tcp", listen)` would (resolved to its first IPv4
/// address, `SO_REUSEADDR` on), with Go's wording on failure; `""` is
/// [`addr::DEFAULT_LISTEN`], `":port"` is every interface. Returns the listener and the
/// address it bound.
async fn bind(listen: &str) -> Result<(TcpListener, String), ListenError> {
    let addr = addr::resolve_listen(listen)
        .await
        .map_err(ListenError::Resolve)?;
    let failed = |call| move |error| ListenError::Syscall { addr, call, error };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(failed("socket"))?;
    socket.set_reuseaddr(true).map_err(failed("setsockopt"))?;
    socket.bind(addr).map_err(failed("bind"))?;
    let listener = socket.listen(LISTEN_BACKLOG).map_err(failed("listen"))?;
    let bound = listener.local_addr().map_err(failed("getsockname"))?;
    Ok((listener, bound.to_string()))
}

/// The accept queue asked for (the kernel caps it at `net.core.somaxconn`, as Go's is).
const LISTEN_BACKLOG: u32 = 4096;

/// A proxy and its state.
pub struct ProxyEntry {
    name: String,
    listen: String,
    upstream: String,
    listening: Option<Listening>,
    toxics: Vec<Arc<ToxicConfig>>,
    upstream_chain: watch::Sender<Chain>,
    downstream_chain: watch::Sender<Chain>,
    wakers: Arc<Wakers>,
}

impl ProxyEntry {
    /// A stopped proxy with no toxics.
    pub fn new(name: String, listen: String, upstream: String) -> ProxyEntry {
        ProxyEntry {
            name,
            listen,
            upstream,
            listening: None,
            toxics: Vec::new(),
            upstream_chain: watch::Sender::new(Arc::new(Vec::new())),
            downstream_chain: watch::Sender::new(Arc::new(Vec::new())),
            wakers: Arc::default(),
        }
    }

    /// The listen address (the bound one once it has listened).
    pub fn listen(&self) -> &str {
        &self.listen
    }

    /// The upstream address.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Whether it accepts connections.
    pub fn enabled(&self) -> bool {
        self.listening.is_some()
    }

    /// The proxy as the API shows it.
    pub fn to_json(&self) -> ProxyJson {
        ProxyJson {
            name: self.name.clone(),
            listen: self.listen.clone(),
            upstream: self.upstream.clone(),
            enabled: self.enabled(),
            toxics: self.toxics_json(),
        }
    }

    /// Its toxics as the API shows them: upstream ones first, each stream in order added.
    pub fn toxics_json(&self) -> Vec<ToxicJson> {
        let ordered = self.toxics.iter().filter(|t| t.stream == Stream::Upstream);
        let ordered = ordered.chain(
            self.toxics
                .iter()
                .filter(|t| t.stream == Stream::Downstream),
        );
        ordered.map(|t| toxic_json(t)).collect()
    }

    /// Starts listening; binding the same address again after a stop. Already listening is
    /// not an error. New connections dial the upstream under `policy` and count their bytes
    /// in `metrics`.
    pub async fn start(
        &mut self,
        policy: UpstreamPolicy,
        metrics: &ProxyMetrics,
    ) -> Result<(), ApiError> {
        if self.listening.is_some() {
            return Ok(());
        }
        let (listener, bound) = bind(&self.listen).await.map_err(ApiError::Listen)?;
        self.listen = bound;
        let chains = ChainWatch {
            upstream: self.upstream_chain.subscribe(),
            downstream: self.downstream_chain.subscribe(),
            wakers: self.wakers.clone(),
        };
        let route = Route {
            proxy: self.name.as_str().into(),
            upstream: self.upstream.as_str().into(),
            policy,
            counters: metrics.counters(&self.name, &self.listen, &self.upstream),
        };
        self.listening = Some(Listening::start(listener, route, chains));
        tracing::info!(proxy = %self.name, listen = %self.listen, upstream = %self.upstream, "proxy listening");
        Ok(())
    }

    /// Stops listening; the caller awaits [`Listening::shutdown`] to close every connection.
    #[must_use = "await shutdown() on it so connections are closed before answering"]
    pub fn stop(&mut self) -> Option<Listening> {
        self.listening.take()
    }

    /// New addresses; only while stopped.
    pub fn set_addresses(&mut self, listen: String, upstream: String) {
        self.listen = listen;
        self.upstream = upstream;
    }

    /// The toxic with that name.
    pub fn toxic(&self, name: &str) -> Option<&Arc<ToxicConfig>> {
        self.toxics.iter().find(|t| t.name == name)
    }

    /// Adds a toxic at the end of its stream's chain.
    pub fn add_toxic(&mut self, toxic: ToxicConfig) -> ToxicJson {
        let json = toxic_json(&toxic);
        let stream = toxic.stream;
        self.toxics.push(Arc::new(toxic));
        self.publish(stream);
        json
    }

    /// Replaces a toxic of the same name, keeping its place.
    pub fn replace_toxic(&mut self, toxic: ToxicConfig) -> ToxicJson {
        let json = toxic_json(&toxic);
        let stream = toxic.stream;
        if let Some(slot) = self.toxics.iter_mut().find(|t| t.name == toxic.name) {
            *slot = Arc::new(toxic);
        }
        self.publish(stream);
        json
    }

    /// Removes a toxic; false if there was none by that name.
    pub fn remove_toxic(&mut self, name: &str) -> bool {
        let Some(pos) = self.toxics.iter().position(|t| t.name == name) else {
            return false;
        };
        let removed = self.toxics.remove(pos);
        self.publish(removed.stream);
        true
    }

    /// Removes every toxic.
    pub fn clear_toxics(&mut self) {
        if self.toxics.is_empty() {
            return;
        }
        self.toxics.clear();
        self.publish(Stream::Upstream);
        self.publish(Stream::Downstream);
    }

    fn publish(&self, stream: Stream) {
        let chain: Vec<Arc<ToxicConfig>> = self
            .toxics
            .iter()
            .filter(|t| t.stream == stream)
            .cloned()
            .collect();
        let sender = match stream {
            Stream::Upstream => &self.upstream_chain,
            Stream::Downstream => &self.downstream_chain,
        };
        sender.send_replace(Arc::new(chain));
        self.wakers.wake_all();
    }
}

fn toxic_json(t: &ToxicConfig) -> ToxicJson {
    ToxicJson {
        name: t.name.clone(),
        kind: t.kind.type_name().to_string(),
        stream: t.stream.as_str().to_string(),
        toxicity: t.toxicity,
        attributes: t.kind.attributes(),
    }
}
