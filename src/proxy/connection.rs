//! One proxied connection: dials the upstream for an accepted client and runs the two links
//! (client to upstream, upstream to client) until the connection ends.
//!
//! Data path: between the accept loop ([`super::listener`]) and the links ([`super::link`]).
//! As in Toxiproxy, a connection ends as a whole: when one direction ends (its source closed, a
//! toxic closed it, or a write failed) the other is told to finish, drains what it already
//! accepted through its toxics, and both sockets are closed. A `reset_peer` toxic ends both at
//! once with a TCP RST.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::{Either, select};
use futures::task::AtomicWaker;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::link::{Link, LinkEnd};
use super::listener::Route;
use super::signal::{Controls, Wakers};
use super::toxics::Chain;

/// The toxic chains of both directions of a proxy, as a connection follows them, and the list
/// through which the proxy wakes its connections when they change.
#[derive(Clone)]
pub struct ChainWatch {
    /// Client to upstream.
    pub upstream: watch::Receiver<Chain>,
    /// Upstream to client.
    pub downstream: watch::Receiver<Chain>,
    /// The proxy's connection wakers.
    pub wakers: Arc<Wakers>,
}

/// Serves one accepted client until its connection ends.
pub async fn serve(client: TcpStream, route: Arc<Route>, chains: ChainWatch) {
    let (proxy, upstream) = (&route.proxy, &route.upstream);
    let mut server = match route.policy.dial(upstream).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%proxy, %upstream, error = %e, "cannot connect to upstream; closing the client");
            return;
        }
    };
    let mut client = client;
    // Go dials with TCP_NODELAY on; so do we, or small answers wait for Nagle.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);

    let waker = Arc::new(AtomicWaker::new());
    chains.wakers.register(&waker);
    let reset = {
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = server.split();
        let stop_up = AtomicBool::new(false);
        let stop_down = AtomicBool::new(false);
        let (up_counters, down_counters) = match &route.counters {
            Some(c) => (Some(c.upstream.clone()), Some(c.downstream.clone())),
            None => (None, None),
        };
        let up = Link::new(
            Controls::new(chains.upstream, &waker, &stop_up),
            up_counters,
        );
        let down = Link::new(
            Controls::new(chains.downstream, &waker, &stop_down),
            down_counters,
        );
        let up = std::pin::pin!(up.run(&mut client_read, &mut server_write));
        let down = std::pin::pin!(down.run(&mut server_read, &mut client_write));
        let (first, second) = match select(up, down).await {
            Either::Left((end, other)) => finish(end, other, &stop_down).await,
            Either::Right((end, other)) => finish(end, other, &stop_up).await,
        };
        tracing::debug!(%proxy, ?first, ?second, "connection ended");
        matches!(first, LinkEnd::Reset) || matches!(second, Some(LinkEnd::Reset))
    };
    if reset {
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
    // Dropping both sockets closes them: FIN, or RST after a zero linger.
}

/// After one direction ended: unless it was a reset, lets the other drain and end. The other
/// link sees its stop flag when it is polled next, which is at once, below.
async fn finish<F>(end: LinkEnd, other: F, stop_other: &AtomicBool) -> (LinkEnd, Option<LinkEnd>)
where
    F: std::future::Future<Output = LinkEnd> + Unpin,
{
    if matches!(end, LinkEnd::Reset) {
        return (end, None);
    }
    stop_other.store(true, Ordering::Release);
    let second = other.await;
    (end, Some(second))
}
