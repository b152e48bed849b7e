//! CP's read fence: after a record was read from a node, proof that the node was still the
//! primary of a live replica.
//!
//! Data path: third layer, under the CP policy. A fence round is one pipeline on one of the
//! node's dedicated [`WaitPool`] connections (`WAIT` blocks its connection and counts only that
//! connection's writes):
//!
//! 1. `INCR caplab:fence:<instance>`: a write, which a replica refuses with `READONLY`;
//! 2. `ROLE`: the node's offset after it (for read-your-writes tokens);
//! 3. `WAIT 1 <CP_WAIT_TIMEOUT_MS>`: how many replicas acknowledged the fence write.
//!
//! A fence write the node took as a primary, acknowledged by a replica, proves that when it ran
//! the node was a primary whose replica held everything it held. It confirms every read of that
//! node answered before the round was sent: the node ran those reads first. So concurrent reads
//! share rounds: [`Fence::after_read`] is called once a read's answer is in, joins the next
//! round to start, and one round at a time runs per node, for everyone who joined before it
//! started (group commit). The argument and its cost are in docs/decisions.md ("Following the
//! primary and CP's read fence").

use std::sync::{Arc, Mutex};

use fred::error::Error as FredError;
use fred::interfaces::{ClientLike, KeysInterface, ServerInterface};
use fred::types::Value;
use tokio::sync::oneshot;

use super::client::{all_answers, role_command};
use super::error::NodeError;
use super::role::Role;
use super::wait_pool::WaitPool;

/// The key one app instance increments to fence its reads.
pub fn fence_key(instance_id: &str) -> String {
    format!("caplab:fence:{instance_id}")
}

/// What one fence round proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FenceProof {
    /// The node's replication offset after the fence write.
    pub offset_after: u64,
    /// How many replicas `WAIT 1` counted for the fence write: 0 means the node could not
    /// prove it was still the primary of a live replica, and the reads must not be served.
    pub replicas_acked: u64,
}

/// Readers waiting for the next round, and whether a round is under way: the group-commit
/// bookkeeping of [`Fence`], apart from Redis so its one rule can be tested alone.
#[derive(Debug)]
struct Batches<T> {
    rounds: Mutex<Rounds<T>>,
}

#[derive(Debug)]
struct Rounds<T> {
    running: bool,
    waiting: Vec<oneshot::Sender<T>>,
}

impl<T> Batches<T> {
    fn new() -> Batches<T> {
        Batches {
            rounds: Mutex::new(Rounds {
                running: false,
                waiting: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rounds<T>> {
        // A poisoned lock only means a panic elsewhere mid-update; the list is intact.
        self.rounds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the next round; true when no round runs and the caller must start the driver.
    fn join(&self) -> (oneshot::Receiver<T>, bool) {
        let (tx, rx) = oneshot::channel();
        let mut rounds = self.lock();
        rounds.waiting.push(tx);
        (rx, !std::mem::replace(&mut rounds.running, true))
    }

    /// The waiters the round about to start serves: everyone who joined before this call.
    /// `None` (and the driver stops) when nobody is waiting.
    fn next_batch(&self) -> Option<Vec<oneshot::Sender<T>>> {
        let mut rounds = self.lock();
        if rounds.waiting.is_empty() {
            rounds.running = false;
            return None;
        }
        Some(std::mem::take(&mut rounds.waiting))
    }
}

/// The fence of one node: rounds on its dedicated connections, shared by concurrent reads.
/// Cloning shares it.
#[derive(Debug, Clone)]
pub struct Fence {
    pool: WaitPool,
    key: Arc<str>,
    batches: Arc<Batches<Result<FenceProof, NodeError>>>,
}

impl Fence {
    /// The fence of `pool`'s node, writing `key`.
    pub fn new(pool: WaitPool, key: &str) -> Fence {
        Fence {
            pool,
            key: key.into(),
            batches: Arc::new(Batches::new()),
        }
    }

    /// The connections the rounds run on.
    pub fn pool(&self) -> &WaitPool {
        &self.pool
    }

    /// Call once a read of this node has answered: resolves with a round that started after
    /// this call, so after that read ran. A node that is a replica answers
    /// [`NodeError::NotPrimary`]; a round no replica confirmed has `replicas_acked == 0`.
    pub async fn after_read(&self) -> Result<FenceProof, NodeError> {
        let (rx, start) = self.batches.join();
        if start {
            // The rounds run on their own task: a read whose request is dropped must not stop
            // the round the others are waiting for.
            tokio::spawn(self.clone().drive());
        }
        rx.await.unwrap_or_else(|_| {
            Err(NodeError::Protocol {
                node: self.pool.node().name(),
                detail: "the fence round ended without an answer".into(),
            })
        })
    }

    /// Runs rounds while reads are waiting, one at a time.
    async fn drive(self) {
        while let Some(batch) = self.batches.next_batch() {
            let result = self.round().await;
            for waiter in batch {
                let _ = waiter.send(result.clone());
            }
        }
    }

    /// One round: `INCR`, `ROLE`, `WAIT 1` on a dedicated connection, behind the node's breaker.
    async fn round(&self) -> Result<FenceProof, NodeError> {
        let node = self.pool.node();
        let lease = self.pool.lease().await?;
        let Some(conn) = lease.client.as_ref() else {
            // ok: a lease always holds its client until dropped.
            return Err(self.pool.exhausted(std::time::Duration::ZERO));
        };
        let wait_ms = i64::try_from(self.pool.wait_timeout().as_millis()).unwrap_or(i64::MAX);
        let pipeline = conn.pipeline().with_options(&node.0.options);
        let results = node
            .guarded(|| async {
                let _: () = pipeline.incr(&*self.key).await?;
                let _: () = pipeline.custom(role_command(), Vec::<Value>::new()).await?;
                let _: () = pipeline.wait(1, wait_ms).await?;
                all_answers(pipeline.try_all::<Value>().await, 3)
            })
            .await?;
        let fred = |e: FredError| NodeError::from_fred(node.0.name, node.0.timeout, &e);
        let mut answers = results.into_iter();
        let mut next = || {
            answers
                .next()
                .ok_or_else(|| node.protocol("short pipeline answer".into()))
        };
        // The fence write decides first: a replica refuses it (NotPrimary), and its WAIT then
        // fails too, for the same reason.
        let _fence = next()?.map_err(fred)?;
        let role = next()?.map_err(fred)?;
        let offset_after = Role::parse(role).map_err(|e| node.protocol(e))?.offset;
        let acked = next()?.map_err(fred)?;
        let replicas_acked = acked
            .as_u64()
            .ok_or_else(|| node.protocol(format!("WAIT answered {acked:?}")))?;
        Ok(FenceProof {
            offset_after,
            replicas_acked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_serves_only_the_reads_that_joined_before_it_started() -> Result<(), String> {
        let batches = Batches::<u32>::new();
        let (mut first, start) = batches.join();
        assert!(start, "the first reader starts the driver");
        let round_1 = batches.next_batch().ok_or("round 1 has a reader")?;
        // A read answered while round 1 is out joins, but must wait for round 2: round 1 may
        // have run on the node before this read did.
        let (mut second, start) = batches.join();
        assert!(!start, "a driver already runs");
        for waiter in round_1 {
            let _ = waiter.send(1);
        }
        assert_eq!(first.try_recv(), Ok(1));
        assert!(
            second.try_recv().is_err(),
            "round 1 did not confirm the later read"
        );
        let round_2 = batches.next_batch().ok_or("round 2 has a reader")?;
        assert_eq!(round_2.len(), 1);
        for waiter in round_2 {
            let _ = waiter.send(2);
        }
        assert_eq!(second.try_recv(), Ok(2));
        assert!(
            batches.next_batch().is_none(),
            "nobody waits: the driver stops"
        );
        let (_third, start) = batches.join();
        assert!(start, "and the next reader starts a new one");
        Ok(())
    }

    #[test]
    fn each_instance_fences_with_its_own_key() {
        assert_eq!(fence_key("cp-1"), "caplab:fence:cp-1");
        assert_ne!(fence_key("cp-1"), fence_key("cp-2"));
    }
}
