//! AP's write-behind queue: writes accepted while the primary is away, drained when one is back.
//!
//! Data path: second layer, inside the AP policy. A write that cannot reach the primary
//! (unreachable, timed out, its breaker open, or a replica now) is accepted here and answered
//! 202 `queued: true`; when the queue is full the write is refused (503). The queue is bounded
//! and held in memory; with `AP_QUEUE_FILE` every accepted write is first recorded in the queue
//! file ([`journal`]), so it survives a crash of the app and is replayed on the next start
//! (without one, a crash loses what the queue holds: the 202 says which). The drain (in
//! `mode::ap`) applies entries in order, to whichever node is the primary then, each only if no
//! newer write landed meanwhile. Each entry remembers the session that wrote it (if any), so a
//! session can read its own queued write ([`WriteQueue::lookup_for`]).
//!
//! | module | what |
//! |---|---|
//! | [`frame`] | the queue file's records and their framing (length, crc32) |
//! | [`journal`] | the queue file: lock, replay, group-committed appends, compaction |

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use prometheus::IntGauge;

use crate::node::WriteRequest;
use crate::session::SessionId;

pub mod frame;
pub mod journal;

pub use journal::{AppendFailed, BadTail, QueueFile, QueueFileError, Replay};

/// What a 202 promises about a queued write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// In memory only: lost if the app crashes.
    Memory,
    /// Written to the queue file (in the kernel): survives a crash of the app, not of the
    /// machine.
    Written,
    /// Written and fsynced to the queue file: survives a crash of the app or of the machine.
    Fsynced,
}

impl Durability {
    /// The name in the 202 body (`durability`).
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Memory => "memory",
            Durability::Written => "written",
            Durability::Fsynced => "fsynced",
        }
    }

    /// The sentence in the 202 body (`promise`).
    pub fn promise(self) -> &'static str {
        match self {
            Durability::Memory => {
                "queued in this app's memory only: applied to the primary when one is reachable, unless a newer write to the key landed first; lost if this app crashes"
            }
            Durability::Written => {
                "recorded in the AP queue file (not fsynced): applied to the primary when one is reachable, unless a newer write to the key landed first; survives a crash of this app (replayed on restart), not a crash of the machine"
            }
            Durability::Fsynced => {
                "recorded and fsynced in the AP queue file: applied to the primary when one is reachable, unless a newer write to the key landed first; survives a crash of this app or of the machine (replayed on restart)"
            }
        }
    }
}

/// One queued write and the session that made it.
#[derive(Debug, Clone)]
struct Entry {
    write: WriteRequest,
    session: Option<SessionId>,
}

/// Why a write could not be queued (definite: it was not queued and will not be applied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The queue is full.
    #[error("the write-behind queue is full ({capacity} writes)")]
    Full {
        /// Its capacity.
        capacity: usize,
    },
    /// The queue file could not record it.
    #[error("{0}")]
    File(String),
}

/// The entries and the places taken by writes on their way to the file.
#[derive(Debug, Default)]
struct Slots {
    entries: VecDeque<Entry>,
    reserved: usize,
}

/// The in-memory side, shared with the queue file's writer thread.
#[derive(Debug)]
struct Shared {
    slots: Mutex<Slots>,
    capacity: usize,
    depth: IntGauge,
}

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut Slots) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update; the deque is intact.
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let result = f(&mut slots);
        self.depth
            .set(i64::try_from(slots.entries.len()).unwrap_or(i64::MAX));
        result
    }

    /// Takes a place for one write, or says the queue is full.
    fn reserve(&self) -> Result<(), QueueError> {
        let capacity = self.capacity;
        self.with(|s| {
            if s.entries.len() + s.reserved >= capacity {
                return Err(QueueError::Full { capacity });
            }
            s.reserved += 1;
            Ok(())
        })
    }

    /// Turns a reserved place into the entry; returns the new depth.
    fn commit(&self, entry: Entry) -> usize {
        self.with(|s| {
            s.reserved = s.reserved.saturating_sub(1);
            s.entries.push_back(entry);
            s.entries.len()
        })
    }

    /// Gives a reserved place back.
    fn release(&self) {
        self.with(|s| s.reserved = s.reserved.saturating_sub(1));
    }
}

/// A bounded FIFO of writes waiting for the primary, optionally backed by the queue file. The
/// lock is synchronous and never held across an `.await`.
#[derive(Debug)]
pub struct WriteQueue {
    shared: Arc<Shared>,
    file: Option<QueueFile>,
}

impl WriteQueue {
    /// An empty in-memory queue of `capacity`, reporting its depth to `depth`.
    pub fn new(capacity: usize, depth: IntGauge) -> WriteQueue {
        depth.set(0);
        WriteQueue {
            shared: Arc::new(Shared {
                slots: Mutex::new(Slots::default()),
                capacity,
                depth,
            }),
            file: None,
        }
    }

    /// A queue backed by `file`, holding what it replayed (even beyond `capacity`: nothing
    /// replayed is dropped; new writes wait for room).
    pub fn with_file(
        capacity: usize,
        depth: IntGauge,
        file: QueueFile,
        replayed: Vec<(WriteRequest, Option<SessionId>)>,
    ) -> WriteQueue {
        let mut queue = WriteQueue::new(capacity, depth);
        queue.shared.with(|s| {
            s.entries.extend(
                replayed
                    .into_iter()
                    .map(|(write, session)| Entry { write, session }),
            )
        });
        queue.file = Some(file);
        queue
    }

    /// What a 202 of this queue promises.
    pub fn durability(&self) -> Durability {
        match &self.file {
            None => Durability::Memory,
            Some(file) if file.fsync() => Durability::Fsynced,
            Some(_) => Durability::Written,
        }
    }

    /// Appends a write made outside any session; returns the new depth.
    pub async fn push(&self, write: WriteRequest) -> Result<usize, QueueError> {
        self.push_for(write, None).await
    }

    /// Appends a write made by `session` (if any); returns the new depth once it is as durable
    /// as [`durability`](WriteQueue::durability) says.
    pub async fn push_for(
        &self,
        write: WriteRequest,
        session: Option<SessionId>,
    ) -> Result<usize, QueueError> {
        self.shared.reserve()?;
        let Some(file) = &self.file else {
            return Ok(self.shared.commit(Entry { write, session }));
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let shared = self.shared.clone();
        let entry = Entry {
            write: write.clone(),
            session,
        };
        file.append_queued(
            &write,
            session,
            Box::new(move |result| {
                let outcome = match result {
                    Ok(()) => Ok(shared.commit(entry)),
                    Err(e) => {
                        shared.release();
                        Err(QueueError::File(e.0))
                    }
                };
                let _ = tx.send(outcome);
            }),
        );
        rx.await
            .unwrap_or_else(|_| Err(QueueError::File("the queue file's writer stopped".into())))
    }

    /// The oldest write, still queued.
    pub fn front(&self) -> Option<WriteRequest> {
        self.shared
            .with(|s| s.entries.front().map(|e| e.write.clone()))
    }

    /// Removes the oldest write if it is `write_id` (the drain's confirmation), and records
    /// that in the queue file.
    pub fn pop_if(&self, write_id: &str) -> bool {
        let popped = self.shared.with(|s| {
            let matches = s
                .entries
                .front()
                .is_some_and(|e| e.write.write_id == write_id);
            if matches {
                s.entries.pop_front();
            }
            matches
        });
        if let (true, Some(file)) = (popped, &self.file) {
            file.append_done(write_id);
        }
        popped
    }

    /// The newest queued write to `key`, if any.
    pub fn lookup(&self, key: &str) -> Option<WriteRequest> {
        self.shared.with(|s| {
            s.entries
                .iter()
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
        self.shared.with(|s| {
            let mine = s
                .entries
                .iter()
                .any(|e| e.write.key == key && e.session == Some(session));
            if !mine {
                return None;
            }
            s.entries
                .iter()
                .rev()
                .find(|e| e.write.key == key)
                .map(|e| e.write.clone())
        })
    }

    /// How many writes wait.
    pub fn len(&self) -> usize {
        self.shared.with(|s| s.entries.len())
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn queue(capacity: usize) -> Result<WriteQueue, prometheus::Error> {
        Ok(WriteQueue::new(capacity, IntGauge::new("depth", "test")?))
    }

    #[tokio::test]
    async fn bounded_fifo_with_lookup_by_key() -> TestResult {
        let q = queue(2)?;
        let a = WriteRequest::new("k".into(), "1".into());
        let b = WriteRequest::new("k".into(), "2".into());
        assert_eq!(q.push(a.clone()).await, Ok(1));
        assert_eq!(q.push(b.clone()).await, Ok(2));
        assert_eq!(
            q.push(WriteRequest::new("x".into(), "3".into())).await,
            Err(QueueError::Full { capacity: 2 })
        );
        assert_eq!(
            q.lookup("k").ok_or("no queued write for k")?.value,
            "2",
            "newest write of the key"
        );
        assert_eq!(q.lookup("x"), None);
        assert_eq!(q.shared.depth.get(), 2);
        assert!(!q.pop_if(&b.write_id), "only the front can be popped");
        assert!(q.pop_if(&a.write_id));
        assert_eq!(
            q.front().ok_or("the queue has no front")?.write_id,
            b.write_id
        );
        assert!(q.pop_if(&b.write_id));
        assert!(q.is_empty());
        assert_eq!(q.shared.depth.get(), 0);
        Ok(())
    }

    #[tokio::test]
    async fn a_session_finds_the_newest_write_to_a_key_it_wrote() -> TestResult {
        let q = queue(10)?;
        let (me, other) = (SessionId([1; 16]), SessionId([2; 16]));
        q.push_for(WriteRequest::new("k".into(), "mine".into()), Some(me))
            .await?;
        q.push_for(WriteRequest::new("k".into(), "theirs".into()), Some(other))
            .await?;
        q.push(WriteRequest::new("j".into(), "anon".into())).await?;
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

    fn file_queue(
        path: &std::path::Path,
    ) -> Result<(WriteQueue, Replay), Box<dyn std::error::Error>> {
        let (file, replay) = QueueFile::open(path, true)?;
        let writes = replay.writes.clone();
        let q = WriteQueue::with_file(10, IntGauge::new("depth", "test")?, file, writes);
        Ok((q, replay))
    }

    #[tokio::test]
    async fn a_file_backed_queue_replays_what_it_held_and_compacts_once_drained() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("queue");
        let (q, replay) = file_queue(&path)?;
        assert!(replay.writes.is_empty());
        assert_eq!(q.durability(), Durability::Fsynced);
        let (a, b, c) = (
            WriteRequest::new("a".into(), "1".into()),
            WriteRequest::new("b".into(), "2".into()),
            WriteRequest::new("a".into(), "3".into()),
        );
        q.push(a.clone()).await?;
        q.push_for(b.clone(), Some(SessionId([4; 16]))).await?;
        q.push(c.clone()).await?;
        assert!(q.pop_if(&a.write_id));
        drop(q);
        assert!(std::fs::metadata(&path)?.len() > 0);

        let (q, replay) = file_queue(&path)?;
        assert_eq!(
            replay.writes,
            vec![(b.clone(), Some(SessionId([4; 16]))), (c.clone(), None)]
        );
        assert_eq!(q.len(), 2);
        assert_eq!(
            q.lookup_for("b", SessionId([4; 16])).map(|w| w.value),
            Some("2".to_string()),
            "a replayed write keeps its session"
        );
        assert!(q.pop_if(&b.write_id) && q.pop_if(&c.write_id));
        drop(q);
        assert_eq!(std::fs::metadata(&path)?.len(), 0, "compacted once drained");
        let (_q, replay) = file_queue(&path)?;
        assert!(replay.writes.is_empty());
        Ok(())
    }

    #[test]
    fn a_second_instance_on_the_same_file_is_refused() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("queue");
        let (_first, _) = QueueFile::open(&path, true)?;
        match QueueFile::open(&path, true) {
            Err(QueueFileError::InUse { path: p }) => assert_eq!(p, path),
            other => panic!("expected InUse, got {other:?}"),
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_bad_tail_is_cut_saved_aside_and_new_records_replay() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("queue");
        let kept = WriteRequest::new("k".into(), "kept".into());
        {
            let (q, _) = file_queue(&path)?;
            q.push(kept.clone()).await?;
        }
        let good = std::fs::metadata(&path)?.len();
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&path)?;
            f.write_all(&[0x20, 0, 0, 0, 1, 2, 3, 4, 5])?;
        }
        let (q, replay) = file_queue(&path)?;
        let tail = replay.bad_tail.ok_or("the bad tail is reported")?;
        assert_eq!((tail.offset, tail.bytes), (good, 9));
        let aside = tail.saved_to.ok_or("the tail is saved aside")?;
        assert_eq!(std::fs::read(aside)?, vec![0x20, 0, 0, 0, 1, 2, 3, 4, 5]);
        assert_eq!(std::fs::metadata(&path)?.len(), good, "the tail is cut off");
        assert_eq!(replay.writes, vec![(kept.clone(), None)]);
        let later = WriteRequest::new("k2".into(), "later".into());
        q.push(later.clone()).await?;
        drop(q);
        let (_q, replay) = file_queue(&path)?;
        assert_eq!(replay.bad_tail, None);
        assert_eq!(replay.writes, vec![(kept, None), (later, None)]);
        Ok(())
    }
}
