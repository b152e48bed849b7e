//! CP's dedicated connections to one node: each carries one write + `WAIT` (or one fenced
//! read) at a time.
//!
//! Data path: between the CP policy and a node; CP keeps one pool per node and uses the pool of
//! whichever node it believes is the primary when it sends. `WAIT` counts only the writes of its own
//! connection and blocks that connection until it answers, so a CP write must not share its
//! connection: on a shared client a `WAIT` would count someone else's write, and every command
//! queued behind it would wait too (docs/design.md measured both). The pool hands out a connection
//! through a semaphore and a short, synchronous lock (never held across `.await`); the write,
//! `ROLE` and `WAIT 1 <ms>` then go out in one pipeline on that connection, behind the node's breaker.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::clients::Client;
use fred::error::Error as FredError;
use fred::interfaces::ClientLike;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::cas::{CasAck, CasRequest};
use super::client::{Node, WriteAck, build_client};
use super::error::NodeError;
use super::record::WriteRequest;

/// A fixed set of dedicated connections to one node.
#[derive(Debug, Clone)]
pub struct WaitPool {
    node: Node,
    idle: Arc<Mutex<Vec<Client>>>,
    permits: Arc<Semaphore>,
    all: Arc<Vec<Client>>,
    wait_timeout: Duration,
}

/// A connection taken from the pool; it goes back when dropped.
pub(super) struct Lease {
    pub(super) client: Option<Client>,
    idle: Arc<Mutex<Vec<Client>>>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let (Some(client), Ok(mut idle)) = (self.client.take(), self.idle.lock()) {
            idle.push(client);
        }
    }
}

impl WaitPool {
    /// Opens `size` connections to `url` (in the background) for calls to `node`, behind its
    /// breaker.
    pub fn connect(
        node: &Node,
        url: &str,
        size: usize,
        wait_timeout: Duration,
    ) -> Result<WaitPool, FredError> {
        let mut clients = Vec::with_capacity(size);
        for _ in 0..size {
            let client = build_client(url, node.timeout(), node.password())?;
            // The connection task runs until `quit`.
            let _task = client.connect();
            clients.push(client);
        }
        Ok(WaitPool {
            node: node.clone(),
            idle: Arc::new(Mutex::new(clients.clone())),
            permits: Arc::new(Semaphore::new(size)),
            all: Arc::new(clients),
            wait_timeout,
        })
    }

    /// The `WAIT` timeout.
    pub fn wait_timeout(&self) -> Duration {
        self.wait_timeout
    }

    /// The node these connections go to.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Writes on a dedicated connection and waits for one replica: script, `ROLE`, `WAIT 1`.
    /// The answer's `replicas_acked` says whether the replica confirmed.
    pub async fn write_and_wait(&self, write: &WriteRequest) -> Result<WriteAck, NodeError> {
        let lease = self.lease().await?;
        let Some(conn) = lease.client.as_ref() else {
            // ok: a lease always holds its client until dropped.
            return Err(self.exhausted(Duration::ZERO));
        };
        self.node
            .write_via(conn, write, Some(self.wait_timeout))
            .await
    }

    /// Compare-and-set on a dedicated connection, then waits for one replica: script,
    /// `ROLE`, `WAIT 1`, as a write does.
    pub async fn cas_and_wait(&self, cas: &CasRequest) -> Result<CasAck, NodeError> {
        let lease = self.lease().await?;
        let Some(conn) = lease.client.as_ref() else {
            // ok: a lease always holds its client until dropped.
            return Err(self.exhausted(Duration::ZERO));
        };
        self.node.cas_via(conn, cas, Some(self.wait_timeout)).await
    }

    pub(super) async fn lease(&self) -> Result<Lease, NodeError> {
        let limit = self.node.timeout();
        let permit = match tokio::time::timeout(limit, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(self.exhausted(limit)),
        };
        let client = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match client {
            Some(client) => Ok(Lease {
                client: Some(client),
                idle: self.idle.clone(),
                _permit: permit,
            }),
            // ok: the semaphore has as many permits as the pool has connections.
            None => Err(self.exhausted(Duration::ZERO)),
        }
    }

    pub(super) fn exhausted(&self, waited: Duration) -> NodeError {
        NodeError::PoolExhausted {
            node: self.node.name(),
            waited,
        }
    }

    /// Waits up to `limit` for every dedicated connection; false if some did not come.
    pub async fn wait_connected(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.connected() < self.all.len() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// How many dedicated connections are up.
    pub fn connected(&self) -> usize {
        self.all.iter().filter(|c| c.is_connected()).count()
    }

    /// Closes every connection.
    pub async fn quit(&self) {
        for client in self.all.iter() {
            let _ = client.quit().await;
        }
    }
}
