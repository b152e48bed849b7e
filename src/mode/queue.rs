//! AP's write-behind queue: writes accepted while g1 is away, drained when it returns.
//!
//! Data path: second layer, inside the AP policy. A write that cannot reach g1 (unreachable,
//! timed out, or its breaker open) is accepted here and answered 202 `queued: true`; when the
//! queue is full the write is refused (503). The queue is bounded and in memory only: a crash
//! loses what it holds (the README says so). The drain (in `mode::ap`) applies entries in
//! order, each only if no newer write landed meanwhile. Entries can be looked up by key, so a
//! session can read its own queued write.

use std::collections::VecDeque;
use std::sync::Mutex;

use prometheus::IntGauge;

use crate::node::WriteRequest;

/// The queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the write-behind queue is full ({capacity} writes)")]
pub struct QueueFull {
    /// Its capacity.
    pub capacity: usize,
}

/// A bounded FIFO of writes waiting for g1. The lock is synchronous and never held across an
/// `.await`.
#[derive(Debug)]
pub struct WriteQueue {
    entries: Mutex<VecDeque<WriteRequest>>,
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

    fn with<T>(&self, f: impl FnOnce(&mut VecDeque<WriteRequest>) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update; the deque is intact.
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let result = f(&mut entries);
        self.depth
            .set(i64::try_from(entries.len()).unwrap_or(i64::MAX));
        result
    }

    /// Appends a write; returns the new depth.
    pub fn push(&self, write: WriteRequest) -> Result<usize, QueueFull> {
        let capacity = self.capacity;
        self.with(|q| {
            if q.len() >= capacity {
                return Err(QueueFull { capacity });
            }
            q.push_back(write);
            Ok(q.len())
        })
    }

    /// The oldest write, still queued.
    pub fn front(&self) -> Option<WriteRequest> {
        self.with(|q| q.front().cloned())
    }

    /// Removes the oldest write if it is `write_id` (the drain's confirmation).
    pub fn pop_if(&self, write_id: &str) -> bool {
        self.with(|q| {
            let matches = q.front().is_some_and(|w| w.write_id == write_id);
            if matches {
                q.pop_front();
            }
            matches
        })
    }

    /// The newest queued write to `key`, if any.
    pub fn lookup(&self, key: &str) -> Option<WriteRequest> {
        self.with(|q| q.iter().rev().find(|w| w.key == key).cloned())
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

    fn queue(capacity: usize) -> WriteQueue {
        WriteQueue::new(capacity, IntGauge::new("depth", "test").unwrap())
    }

    #[test]
    fn bounded_fifo_with_lookup_by_key() {
        let q = queue(2);
        let a = WriteRequest::new("k".into(), "1".into());
        let b = WriteRequest::new("k".into(), "2".into());
        assert_eq!(q.push(a.clone()), Ok(1));
        assert_eq!(q.push(b.clone()), Ok(2));
        assert_eq!(
            q.push(WriteRequest::new("x".into(), "3".into())),
            Err(QueueFull { capacity: 2 })
        );
        assert_eq!(q.lookup("k").unwrap().value, "2", "newest write of the key");
        assert_eq!(q.lookup("x"), None);
        assert_eq!(q.depth.get(), 2);
        assert!(!q.pop_if(&b.write_id), "only the front can be popped");
        assert!(q.pop_if(&a.write_id));
        assert_eq!(q.front().unwrap().write_id, b.write_id);
        assert!(q.pop_if(&b.write_id));
        assert!(q.is_empty());
        assert_eq!(q.depth.get(), 0);
    }
}
