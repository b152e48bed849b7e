//! The queue file (`AP_QUEUE_FILE`): AP's write-behind queue made to survive a crash.
//!
//! Data path: under [`super::WriteQueue`]. Every write the queue accepts is appended here as a
//! framed record ([`super::frame`]) before the app answers 202; every write that leaves the
//! queue (applied, superseded or refused) appends a `Done` record. On start, [`QueueFile::open`]
//! takes an exclusive `flock` on the file (a second instance on the same file is refused),
//! replays it (the queued writes without a `Done`, in file order) and hands them back to the
//! queue, whose drain applies them with the same last-writer-wins rule as any queued write.
//!
//! **Durability.** One writer thread owns the file and commits in groups: it takes every record
//! waiting, appends them with one `write`, and with `AP_QUEUE_FSYNC=on` (the default) calls
//! `fdatasync` once for the group before any of their 202s is sent. So a 202 means the record
//! is on disk and survives a crash of the app or of the machine; a group is as long as one
//! fsync, and concurrent writers share it (BENCHMARKS.md, "AP queue file"). With `off` the
//! record is in the kernel before the 202 (survives a crash of the app, not of the machine).
//! `Done` records ride along unsynced: losing one only replays a write whose id the primary
//! already holds, which the drain recognises and does not apply twice.
//!
//! **Compaction.** When every queued write is done the file is truncated to empty (at start and
//! as soon as the drain empties the queue), so it holds at most the records since the queue was
//! last empty.
//!
//! **A bad tail.** Replay stops at the first frame that is cut short (a crash in the middle of a
//! write, never answered 202) or fails its checksum; what follows is copied aside to
//! `<file>.corrupt-<unix ms>`, counted in `ap_queue_file_corrupt_total`, logged at ERROR
//! (`AP_QUEUE_FILE_CORRUPT`) and cut off, so new records never follow garbage.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use nix::fcntl::{Flock, FlockArg};

use super::frame::{self, Decoded, LogRecord};
use crate::node::WriteRequest;
use crate::session::SessionId;

/// Why the queue file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum QueueFileError {
    /// Another process holds the file.
    #[error(
        "AP_QUEUE_FILE {path} is in use by another process (it holds the file's lock); each AP instance needs its own queue file"
    )]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be opened, locked, read or repaired.
    #[error("AP_QUEUE_FILE {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// A record could not be made durable (definite: the write was not queued).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the queue file could not record the write: {0}")]
pub struct AppendFailed(pub String);

/// A bad tail found and cut off at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTail {
    /// Where the last good record ends.
    pub offset: u64,
    /// How many bytes followed it.
    pub bytes: u64,
    /// Cut short (`torn`) or what was wrong.
    pub reason: &'static str,
    /// Where those bytes were copied.
    pub saved_to: Option<PathBuf>,
}

/// What the file held at start.
#[derive(Debug, Default)]
pub struct Replay {
    /// The queued writes not yet done, in file order.
    pub writes: Vec<(WriteRequest, Option<SessionId>)>,
    /// A bad tail, if the file had one.
    pub bad_tail: Option<BadTail>,
}

/// What runs on the writer thread once a queued write's record is durable (or failed): the
/// queue takes the write in there, so a request cancelled meanwhile cannot leave a record on
/// disk that the queue never holds.
pub type OnDurable = Box<dyn FnOnce(Result<(), AppendFailed>) + Send>;

/// One append for the writer thread; `then` runs once the record is on disk (or written, with
/// fsync off), or could not be.
struct Job {
    bytes: Vec<u8>,
    queued: bool,
    then: Option<OnDurable>,
}

/// The open, locked queue file and its writer thread. Dropping it lets the writer finish what
/// was sent (the last `Done` records) and releases the lock.
#[derive(Debug)]
pub struct QueueFile {
    path: PathBuf,
    jobs: mpsc::Sender<Job>,
    writer: Option<std::thread::JoinHandle<()>>,
    fsync: bool,
}

impl Drop for QueueFile {
    fn drop(&mut self) {
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.jobs, closed));
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl QueueFile {
    /// Opens (creating it, mode 0600) and locks `path`, replays it and cuts a bad tail.
    pub fn open(path: &Path, fsync: bool) -> Result<(QueueFile, Replay), QueueFileError> {
        let io = |source| QueueFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let mut file = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(
            |(_, errno)| match errno {
                nix::errno::Errno::EWOULDBLOCK => QueueFileError::InUse {
                    path: path.to_path_buf(),
                },
                other => io(std::io::Error::from(other)),
            },
        )?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let (mut replay, good) = replay(&bytes);
        if let Some(tail) = &mut replay.bad_tail {
            tail.saved_to = save_aside(path, &bytes[good..]);
            file.set_len(good as u64).map_err(io)?;
        }
        if replay.writes.is_empty() && good > 0 {
            file.set_len(0).map_err(io)?;
        }
        file.sync_all().map_err(io)?;
        let live = replay.writes.len();
        let (jobs, inbox) = mpsc::channel();
        let writer = Writer {
            file,
            len: if live == 0 { 0 } else { good as u64 },
            live,
            fsync,
        };
        let writer = std::thread::Builder::new()
            .name("ap-queue-file".into())
            .spawn(move || writer.run(inbox))
            .map_err(io)?;
        Ok((
            QueueFile {
                path: path.to_path_buf(),
                jobs,
                writer: Some(writer),
                fsync,
            },
            replay,
        ))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a 202 waits for fsync.
    pub fn fsync(&self) -> bool {
        self.fsync
    }

    /// Appends a queued write; `then` runs on the writer thread once it is durable (see the
    /// module doc) or could not be made so.
    pub fn append_queued(&self, write: &WriteRequest, session: Option<SessionId>, then: OnDurable) {
        let record = LogRecord::Queued {
            write: write.clone(),
            session,
        };
        self.send(Job {
            bytes: frame::encode(&record),
            queued: true,
            then: Some(then),
        });
    }

    /// Records that the queued write `write_id` left the queue (not waited for).
    pub fn append_done(&self, write_id: &str) {
        let record = LogRecord::Done {
            write_id: write_id.to_string(),
        };
        self.send(Job {
            bytes: frame::encode(&record),
            queued: false,
            then: None,
        });
    }

    fn send(&self, job: Job) {
        if let Err(mpsc::SendError(job)) = self.jobs.send(job)
            && let Some(then) = job.then
        {
            then(Err(AppendFailed("the queue file's writer stopped".into())));
        }
    }
}

/// Replays `bytes`: the writes not done, a bad tail, and where the good records end.
pub fn replay(bytes: &[u8]) -> (Replay, usize) {
    let mut order: Vec<Option<(WriteRequest, Option<SessionId>)>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut at = 0;
    let mut bad_tail = None;
    while at < bytes.len() {
        match frame::decode(&bytes[at..]) {
            Decoded::Record(LogRecord::Queued { write, session }, used) => {
                index.insert(write.write_id.clone(), order.len());
                order.push(Some((write, session)));
                at += used;
            }
            Decoded::Record(LogRecord::Done { write_id }, used) => {
                if let Some(i) = index.remove(&write_id) {
                    order[i] = None; // ok: the index only holds positions of `order`
                }
                at += used;
            }
            bad => {
                let reason = match bad {
                    Decoded::Corrupt(why) => why,
                    _ => "cut short (a write interrupted by a crash)",
                };
                bad_tail = Some(BadTail {
                    offset: at as u64,
                    bytes: (bytes.len() - at) as u64,
                    reason,
                    saved_to: None,
                });
                break;
            }
        }
    }
    let writes = order.into_iter().flatten().collect();
    (Replay { writes, bad_tail }, at)
}

/// Copies a bad tail next to the file, so nothing is destroyed unseen; `None` if that failed.
fn save_aside(path: &Path, tail: &[u8]) -> Option<PathBuf> {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".corrupt-{}", crate::time::unix_ms()));
    let aside = PathBuf::from(name);
    let saved = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&aside)
        .and_then(|mut f| f.write_all(tail).and_then(|()| f.sync_all()));
    saved.ok().map(|()| aside)
}

/// The writer thread's side: the file, its length, and how many queued writes are not done.
struct Writer {
    file: Flock<File>,
    len: u64,
    live: usize,
    fsync: bool,
}

impl Writer {
    /// Commits groups until the queue drops its sender.
    fn run(mut self, inbox: mpsc::Receiver<Job>) {
        while let Ok(first) = inbox.recv() {
            let mut group = vec![first];
            group.extend(inbox.try_iter());
            let result = self.commit(&group);
            for job in group {
                if let Some(then) = job.then {
                    then(result.clone());
                }
            }
        }
    }

    fn commit(&mut self, group: &[Job]) -> Result<(), AppendFailed> {
        let bytes: Vec<u8> = group.iter().flat_map(|j| j.bytes.iter().copied()).collect();
        let waited = group.iter().any(|j| j.then.is_some());
        let written = self
            .file
            .write_all(&bytes)
            .and_then(|()| match self.fsync && waited {
                true => self.file.sync_data(),
                false => Ok(()),
            });
        if let Err(e) = written {
            // Cut a partial append, so later records do not follow garbage.
            let _ = self.file.set_len(self.len);
            tracing::error!(error = %e, "AP_QUEUE_FILE_WRITE_FAILED: queued writes refused");
            return Err(AppendFailed(e.to_string()));
        }
        self.len += bytes.len() as u64;
        for job in group {
            if job.queued {
                self.live += 1;
            } else {
                self.live = self.live.saturating_sub(1);
            }
        }
        if self.live == 0 && self.len > 0 {
            // Everything queued is done: compact to empty.
            if self.file.set_len(0).is_ok() {
                self.len = 0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(key: &str, value: &str) -> WriteRequest {
        WriteRequest::new(key.into(), value.into())
    }

    #[test]
    fn replay_keeps_undone_writes_in_order() {
        let (a, b, c) = (write("a", "1"), write("b", "2"), write("a", "3"));
        let mut bytes = Vec::new();
        for record in [
            LogRecord::Queued {
                write: a.clone(),
                session: None,
            },
            LogRecord::Queued {
                write: b.clone(),
                session: Some(SessionId([9; 16])),
            },
            LogRecord::Done {
                write_id: a.write_id.clone(),
            },
            LogRecord::Queued {
                write: c.clone(),
                session: None,
            },
        ] {
            bytes.extend(frame::encode(&record));
        }
        let (replay, good) = replay(&bytes);
        assert_eq!(good, bytes.len());
        assert_eq!(replay.bad_tail, None);
        assert_eq!(
            replay.writes,
            vec![(b, Some(SessionId([9; 16]))), (c, None)]
        );
    }

    #[test]
    fn a_torn_or_corrupt_tail_is_reported_and_the_good_records_kept() {
        let a = write("a", "1");
        let good = frame::encode(&LogRecord::Queued {
            write: a.clone(),
            session: None,
        });
        let next = frame::encode(&LogRecord::Queued {
            write: write("b", "2"),
            session: None,
        });
        let mut torn = good.clone();
        torn.extend_from_slice(&next[..next.len() - 3]);
        let (r, at) = replay(&torn);
        assert_eq!((r.writes.len(), at), (1, good.len()));
        let tail = r.bad_tail.expect("a torn tail is reported"); // ok: test code
        assert_eq!(
            (tail.offset, tail.bytes),
            (good.len() as u64, next.len() as u64 - 3)
        );

        let mut flipped = good.clone();
        let mut bad = next.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x40;
        flipped.extend_from_slice(&bad);
        flipped.extend_from_slice(&next);
        let (r, at) = replay(&flipped);
        assert_eq!((r.writes, at), (vec![(a, None)], good.len()));
        assert_eq!(r.bad_tail.map(|t| t.reason), Some("checksum mismatch"));
    }
}
