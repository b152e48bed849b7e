//! AP's write-behind queue: writes accepted while the primary is away, drained when one is back.
//!
//! Data path: second layer, inside the AP policy. A write that cannot reach the primary
//! (unreachable, timed out, its breaker open, or a replica now) is accepted here and answered
//! 202 `queued: true`; when the
//! queue is full the write is refused (503). The queue is bounded and in memory only: a crash
//! loses what it holds (the README says so). The drain (in `mode::ap`) applies entries in
//! order, to whichever node is the primary then, each only if no newer write landed meanwhile. Each entry remembers the session that
//! wrote it (if any), so a session can read its own queued write ([`WriteQueue::lookup_for`]).

use std::collections::VecDeque;
use std::sync::Mutex;

use prometheus::IntGauge;

use crate::node::WriteRequest;
use crate::session::SessionId;

/// One queued write and the session that made it.
#[derive(Debug, Clone)]
struct Entry {
    write: WriteRequest,
    session: Option<SessionId>,
}

/// The queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the write-behind queue is full ({capacity} writes)")]
pub struct QueueFull {
    /// Its capacity.
    pub capacity: usize,
}

/// A bounded FIFO of writes waiting for the primary. The lock is synchronous and never held across an
/// `.await`.
#[derive(Debug)]
pub struct WriteQueue {
    entries: Mutex<VecDeque<Entry>>,
    capacity: usize,
    depth: IntGauge,
}

impl WriteQueue {
    /// An empty queue of `capacity`, reporting its depth to `depth`.
    pub fn new(capacity: usize, depth: IntGauge) -> WriteQueue {
        depth.set(0);
        WriteQueue {
            entries: Mutex::new(VecDeque::new()),
            capacity,
            depth,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut VecDeque<Entry>) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update; the deque is intact.
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let result = f(&mut entries);
        self.depth
            .set(i64::try_from(entries.len()).unwrap_or(i64::MAX));
        result
    }

    /// Appends a write made outside any session; returns the new depth.
    pub fn push(&self, write: WriteRequest) -> Result<usize, QueueFull> {
        self.push_for(write, None)
    }

    /// Appends a write made by `session` (if any); returns the new depth.
    pub fn push_for(
        &self,
        write: WriteRequest,
        session: Option<SessionId>,
    ) -> Result<usize, QueueFull> {
        let capacity = self.capacity;
        self.with(|q| {
            if q.len() >= capacity {
                return Err(QueueFull { capacity });
            }
            q.push_back(Entry { write, session });
            Ok(q.len())
        })
    }

    /// The oldest write, still queued.
    pub fn front(&self) -> Option<WriteRequest> {
        self.with(|q| q.front().map(|e| e.write.clone()))
    }

    /// Removes the oldest write if it is `write_id` (the drain's confirmation).
    pub fn pop_if(&self, write_id: &str) -> bool {
        self.with(|q| {
            let matches = q.front().is_some_and(|e| e.write.write_id == write_id);
            if matches {
                q.pop_front();
            }
            matches
        })
    }

    /// The newest queued write to `key`, if any.
    pub fn lookup(&self, key: &str) -> Option<WriteRequest> {
        self.with(|q| {
            q.iter()
                .rev()
                .find(|e| e.write.key == key)
                .map(|e| e.write.clone())
        })
    }

    /// For a read by `session`: the newest queued write to `key` (by anyone), if `session`
    /// itself has a write to `key` in the queue; `None` otherwise. The newest one is what the
    /// drain will leave on the primary (by writer timestamp), so it is at least as new as the
    /// session's own.
    pub fn lookup_for(&self, key: &str, session: SessionId) -> Option<WriteRequest> {
        self.with(|q| {
            let mine = q
                .iter()
                .any(|e| e.write.key == key && e.session == Some(session));
            if !mine {
                return None;
            }
            q.iter()
                .rev()
                .find(|e| e.write.key == key)
                .map(|e| e.write.clone())
        })
    }

    /// How many writes wait.
    pub fn len(&self) -> usize {
        self.with(|q| q.len())
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn queue(capacity: usize) -> Result<WriteQueue, prometheus::Error> {
        Ok(WriteQueue::new(capacity, IntGauge::new("depth", "test")?))
    }

    #[test]
    fn bounded_fifo_with_lookup_by_key() -> TestResult {
        let q = queue(2)?;
        let a = WriteRequest::new("k".into(), "1".into());
        let b = WriteRequest::new("k".into(), "2".into());
        assert_eq!(q.push(a.clone()), Ok(1));
        assert_eq!(q.push(b.clone()), Ok(2));
        assert_eq!(
            q.push(WriteRequest::new("x".into(), "3".into())),
            Err(QueueFull { capacity: 2 })
        );
        assert_eq!(
            q.lookup("k").ok_or("no queued write for k")?.value,
            "2",
            "newest write of the key"
        );
        assert_eq!(q.lookup("x"), None);
        assert_eq!(q.depth.get(), 2);
        assert!(!q.pop_if(&b.write_id), "only the front can be popped");
        assert!(q.pop_if(&a.write_id));
        assert_eq!(
            q.front().ok_or("the queue has no front")?.write_id,
            b.write_id
        );
        assert!(q.pop_if(&b.write_id));
        assert!(q.is_empty());
        assert_eq!(q.depth.get(), 0);
        Ok(())
    }

    #[test]
    fn a_session_finds_the_newest_write_to_a_key_it_wrote() -> TestResult {
        let q = queue(10)?;
        let (me, other) = (SessionId([1; 16]), SessionId([2; 16]));
        q.push_for(WriteRequest::new("k".into(), "mine".into()), Some(me))?;
        q.push_for(WriteRequest::new("k".into(), "theirs".into()), Some(other))?;
        q.push(WriteRequest::new("j".into(), "anon".into()))?;
        assert_eq!(
            q.lookup_for("k", me)
                .ok_or("no write to k by this session")?
                .value,
            "theirs"
        );
        assert_eq!(q.lookup_for("j", me), None, "not written by this session");
        assert_eq!(q.lookup_for("k", SessionId([3; 16])), None);
        assert_eq!(q.lookup("j").ok_or("no queued write for j")?.value, "anon");
        Ok(())
    }
}
