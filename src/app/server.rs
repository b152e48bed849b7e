//! The HTTP server: caplab's accept loop in front of hyper, with a cap on connections, the
//! connection timeouts, HTTPS, and a graceful stop.
//!
//! Data path: the very top, the socket. axum's own `serve` has no header-read or idle timeout
//! and no connection limit, so a client that sends half a request line could hold a
//! connection (and its buffers) forever, and enough of them exhaust the process's file
//! descriptors. Here each accepted connection first takes a slot:
//!
//! - a **regular** slot, while fewer than `MAX_CONNECTIONS` are open;
//! - else a **reserved** slot (`RESERVED_CONNECTIONS`), on which only `/health`, `/ready`
//!   and `/metrics` are served, so probes and scrapes still get through a full server;
//! - else it is **refused**: a short JSON 503 with `Retry-After` is written and the
//!   connection closed, by at most [`MAX_REFUSING`] small tasks at once; past that, the
//!   connection is closed unanswered. Either way `http_connections_rejected_total` counts it.
//!
//! A served connection is a hyper HTTP/1.1 connection over [`WatchedIo`] (after the TLS
//! handshake when HTTPS is on), watched by its task: [`Activity::check`] closes it when a
//! request's headers take longer than the header timeout or it stays idle past the idle
//! timeout (`http_connection_timeouts_total`). hyper's read buffer is capped
//! ([`MAX_READ_BUFFER`]), so a connection holds a bounded amount of memory. An accept error
//! (out of file descriptors) is logged at most once a second and the loop backs off briefly
//! instead of spinning.
//!
//! Stopping: [`Stop::Graceful`] stops accepting and lets each connection finish the request
//! it is in before closing; [`Stop::Now`] closes them all. [`serve`] returns once every
//! connection is closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::activity::{Activity, Check};
use super::conn_service::{ConnService, ConnShared};
use super::memory::ConnectionCount;
use super::watched_io::WatchedIo;
use crate::config::ServerSettings;

/// Refusals written at once; past this a refused connection is closed unanswered.
pub const MAX_REFUSING: usize = 64;
/// hyper's read buffer limit per connection: the longest request target hyper accepts
/// (65,534 bytes) plus room for headers.
pub const MAX_READ_BUFFER: usize = 96 * 1024;
/// How long a refusal may take (TLS handshake, writing the answer, the client's close).
const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// How long a refusal waits for the client to close after the answer: long enough for a
/// client to read it, short enough that a flood that never closes frees the slot quickly.
const REFUSAL_DRAIN: Duration = Duration::from_millis(500);
/// Pause after an accept error (out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How the server is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Serving.
    Running,
    /// No new connections; open ones finish their request and close.
    Graceful,
    /// Close every connection now.
    Now,
}

/// Which kind of slot a connection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Regular,
    Reserved,
}

impl Slot {
    fn label(self) -> &'static str {
        match self {
            Slot::Regular => "regular",
            Slot::Reserved => "reserved",
        }
    }
}

/// Everything the accept loop and the connections need.
pub struct Server {
    /// The per-connection service parts.
    pub shared: ConnShared,
    /// Open connections, for giving memory back after a burst.
    pub count: Arc<ConnectionCount>,
    /// Timeouts and limits.
    pub settings: ServerSettings,
    /// HTTPS, when configured.
    pub tls: Option<TlsAcceptor>,
}

/// The answer written to a connection refused at the limit.
fn refusal_bytes(max_connections: usize) -> Vec<u8> {
    let body = serde_json::json!({
        "error": format!("connection limit reached (MAX_CONNECTIONS={max_connections}); try again later"),
        "code": "too_many_connections",
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Accepts and serves until `stop` leaves [`Stop::Running`]; returns once every connection
/// it started is closed.
pub async fn serve(
    listener: TcpListener,
    server: Server,
    mut stop: watch::Receiver<Stop>,
) -> std::io::Result<()> {
    let server = Arc::new(server);
    let max = server.settings.max_connections;
    let reserved = server.settings.reserved_connections;
    let regular_slots = Arc::new(Semaphore::new(max));
    let reserved_slots = Arc::new(Semaphore::new(reserved));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let refusal = Arc::new(refusal_bytes(max));
    let mode = server.shared.metrics.mode();
    let mut last_accept_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s != Stop::Running) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                if last_accept_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    tracing::warn!(mode, error = %e, "ACCEPT_ERROR: cannot accept a connection; backing off");
                    last_accept_warning = Some(Instant::now());
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let slot = match regular_slots.clone().try_acquire_owned() {
            Ok(permit) => Some((Slot::Regular, permit)),
            Err(_) => reserved_slots
                .clone()
                .try_acquire_owned()
                .ok()
                .map(|permit| (Slot::Reserved, permit)),
        };
        match slot {
            Some((slot, permit)) => {
                let server = server.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    serve_connection(stream, peer, slot, permit, &server, stop).await;
                });
            }
            None => match refusing.clone().try_acquire_owned() {
                Ok(permit) => {
                    server.count_rejected("limit");
                    let tls = server.tls.clone();
                    let answer = refusal.clone();
                    tokio::spawn(async move {
                        let _ =
                            tokio::time::timeout(REFUSAL_TIME, refuse(stream, tls, &answer)).await;
                        drop(permit);
                    });
                }
                Err(_) => {
                    server.count_rejected("overload");
                    drop(stream);
                }
            },
        }
    }
    drop(listener);
    // Every slot back means every connection (and refusal) has ended.
    let all = |s: &Arc<Semaphore>, n: usize| {
        let s = s.clone();
        async move { s.acquire_many_owned(n as u32).await.map(drop) }
    };
    let _ = tokio::join!(
        all(&regular_slots, max),
        all(&reserved_slots, reserved),
        all(&refusing, MAX_REFUSING)
    );
    Ok(())
}

impl Server {
    fn count_rejected(&self, reason: &str) {
        let metrics = &self.shared.metrics;
        metrics
            .server
            .connections_rejected
            .with_label_values(&[metrics.mode(), reason])
            .inc();
    }

    fn count_timeout(&self, phase: &str) {
        let metrics = &self.shared.metrics;
        metrics
            .server
            .connection_timeouts
            .with_label_values(&[metrics.mode(), phase])
            .inc();
    }
}

/// Writes the refusal (after the handshake under HTTPS), closes the sending side, and reads
/// what the client still sends until it closes (at most [`REFUSAL_DRAIN`]), so the close is
/// not a reset that could destroy the answer before the client reads it.
async fn refuse(stream: TcpStream, tls: Option<TlsAcceptor>, answer: &[u8]) {
    async fn answer_on<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, answer: &[u8]) {
        if s.write_all(answer).await.is_err() || s.shutdown().await.is_err() {
            return;
        }
        let mut sink = [0u8; 1024];
        let drain = async {
            while let Ok(n) = s.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(REFUSAL_DRAIN, drain).await;
    }
    match tls {
        None => answer_on(stream, answer).await,
        Some(acceptor) => {
            if let Ok(tls) = acceptor.accept(stream).await {
                answer_on(tls, answer).await;
            }
        }
    }
}

/// Keeps the open-connections gauge and count true for as long as a connection lives.
struct OpenGauge(prometheus::IntGauge, Arc<ConnectionCount>);

impl OpenGauge {
    fn new(server: &Server, slot: Slot) -> OpenGauge {
        let metrics = &server.shared.metrics;
        let gauge = metrics
            .server
            .connections_open
            .with_label_values(&[metrics.mode(), slot.label()]);
        gauge.inc();
        server.count.opened();
        OpenGauge(gauge, server.count.clone())
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        self.0.dec();
        self.1.closed();
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    permit: OwnedSemaphorePermit,
    server: &Server,
    stop: watch::Receiver<Stop>,
) {
    let _permit = permit;
    let _open = OpenGauge::new(server, slot);
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    match &server.tls {
        None => serve_io(stream, peer, slot, activity, server, stop).await,
        Some(acceptor) => {
            let limit = server.settings.header_read_timeout;
            match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve_io(tls, peer, slot, activity, server, stop).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => server.count_timeout("tls_handshake"),
            }
        }
    }
}

async fn serve_io<S>(
    io: S,
    peer: SocketAddr,
    slot: Slot,
    activity: Arc<Activity>,
    server: &Server,
    mut stop: watch::Receiver<Stop>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let settings = &server.settings;
    let service = ConnService::new(
        server.shared.clone(),
        activity.clone(),
        peer,
        slot == Slot::Reserved,
    );
    let io = TokioIo::new(WatchedIo::new(io, activity.clone()));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(MAX_READ_BUFFER)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let watch = tokio::time::sleep(settings.header_read_timeout);
    tokio::pin!(watch);
    let mut draining = false;
    match *stop.borrow_and_update() {
        Stop::Now => return,
        Stop::Graceful => {
            draining = true;
            conn.as_mut().graceful_shutdown();
        }
        Stop::Running => {}
    }
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = watch.as_mut() => {
                let now = Instant::now();
                match activity.check(now, settings.header_read_timeout, settings.idle_timeout) {
                    Check::Expired(phase) => {
                        server.count_timeout(phase.as_str());
                        tracing::debug!(%peer, phase = phase.as_str(), "connection closed by its timeout");
                        return;
                    }
                    Check::Until(at) => watch.as_mut().reset(at.into()),
                }
            }
            changed = stop.changed() => {
                let now = if changed.is_err() { Stop::Now } else { *stop.borrow_and_update() };
                match now {
                    Stop::Now => return,
                    Stop::Graceful if !draining => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    _ => {}
                }
            }
        }
    }
}
