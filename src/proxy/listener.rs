//! A proxy's listening side: the accept loop and the set of its live connections.
//!
//! Data path entry: a client connects to the proxy's `listen` address, the accept loop spawns a
//! [`super::connection`] for it. Disabling or deleting the proxy calls [`Listening::shutdown`],
//! which closes the listening socket and every connection before it returns, so a client sees
//! the cut at once (Toxiproxy's `stop`).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::connection::{self, ChainWatch};
use super::metrics::ProxyCounters;
use super::upstream::UpstreamPolicy;

/// What every connection of a listening proxy shares: where it forwards, under which policy,
/// and the byte counters it adds to.
pub struct Route {
    /// The proxy's name.
    pub proxy: Arc<str>,
    /// The upstream address, as given.
    pub upstream: Arc<str>,
    /// Loopback only, or anywhere.
    pub policy: UpstreamPolicy,
    /// The proxy's byte counters, when metrics are on.
    pub counters: Option<ProxyCounters>,
}

/// A listening proxy. Dropping it without [`Listening::shutdown`] aborts everything anyway,
/// just without waiting.
pub struct Listening {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Listening {
    /// Starts accepting on `listener`, forwarding each client along `route`.
    pub fn start(listener: TcpListener, route: Route, chains: ChainWatch) -> Listening {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, Arc::new(route), chains, stopped));
        Listening {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Closes the listener and every connection, and waits until they are closed.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    route: Arc<Route>,
    chains: ChainWatch,
    mut stopped: oneshot::Receiver<()>,
) {
    let proxy = route.proxy.clone();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    tracing::debug!(%proxy, %peer, "accepted client");
                    connections.spawn(connection::serve(client, route.clone(), chains.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%proxy, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    drop(listener);
    connections.shutdown().await;
    tracing::info!(%proxy, "proxy stopped: listener and connections closed");
}
