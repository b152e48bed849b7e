//! The records of the queue file and how each is framed on disk.
//!
//! Data path: below [`super::journal`], which appends and replays these frames. A frame is
//! `length (u32 LE) | crc32 of the payload (u32 LE) | payload`; the payload is one
//! [`LogRecord`]: a queued write (`Queued`: its key, value, writer timestamp, write id and
//! session) or the end of one (`Done`: applied, superseded or refused, by write id). Decoding is
//! pure and never panics: a frame that runs past the end of the bytes is [`Decoded::Torn`], one
//! whose checksum or fields do not hold is [`Decoded::Corrupt`].

use crate::node::WriteRequest;
use crate::session::SessionId;

/// Bytes before the payload: its length and its checksum.
pub const HEADER_BYTES: usize = 8;
/// The largest payload read back: above the largest value `MAX_VALUE_BYTES` allows (512 MiB)
/// plus its key and fields. A longer length is a corrupt length, not a record.
pub const MAX_PAYLOAD_BYTES: usize = 513 * 1024 * 1024;

const KIND_QUEUED: u8 = 1;
const KIND_DONE: u8 = 2;

/// One record of the queue file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogRecord {
    /// A write accepted into the queue (answered 202 once this record is written).
    Queued {
        /// The write as it will be applied.
        write: WriteRequest,
        /// The session that made it, if any.
        session: Option<SessionId>,
    },
    /// The queued write with this id left the queue (applied, superseded or refused).
    Done {
        /// Its write id.
        write_id: String,
    },
}

/// What the bytes at an offset hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A whole, valid record, and the bytes its frame took.
    Record(LogRecord, usize),
    /// A frame that starts but does not end before the bytes do (a write cut by a crash).
    Torn,
    /// A frame whose checksum or content is wrong.
    Corrupt(&'static str),
}

/// The framed bytes of `record`, ready to append.
pub fn encode(record: &LogRecord) -> Vec<u8> {
    let mut payload = Vec::new();
    match record {
        LogRecord::Queued { write, session } => {
            payload.push(KIND_QUEUED);
            payload.extend_from_slice(&write.written_at_ms.to_le_bytes());
            match session {
                Some(id) => {
                    payload.push(1);
                    payload.extend_from_slice(&id.0);
                }
                None => payload.push(0),
            }
            put_bytes(&mut payload, write.write_id.as_bytes());
            put_bytes(&mut payload, write.key.as_bytes());
            put_bytes(&mut payload, write.value.as_bytes());
        }
        LogRecord::Done { write_id } => {
            payload.push(KIND_DONE);
            put_bytes(&mut payload, write_id.as_bytes());
        }
    }
    let mut frame = Vec::with_capacity(HEADER_BYTES + payload.len());
    // Payloads are bounded by the key and value limits, far below 4 GiB.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// Decodes the frame at the start of `bytes`.
pub fn decode(bytes: &[u8]) -> Decoded {
    let Some(header) = bytes.get(..HEADER_BYTES) else {
        return Decoded::Torn;
    };
    let len = u32_at(header, 0) as usize;
    let crc = u32_at(header, 4);
    if len > MAX_PAYLOAD_BYTES {
        return Decoded::Corrupt("frame length beyond any record");
    }
    let Some(payload) = bytes.get(HEADER_BYTES..HEADER_BYTES + len) else {
        return Decoded::Torn;
    };
    if crc32fast::hash(payload) != crc {
        return Decoded::Corrupt("checksum mismatch");
    }
    match parse(payload) {
        Some(record) => Decoded::Record(record, HEADER_BYTES + len),
        None => Decoded::Corrupt("checksum holds but the record does not parse"),
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]); // ok: callers pass at least at + 4 bytes
    u32::from_le_bytes(word)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A cursor over a payload; every read is checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u64(&mut self) -> Option<u64> {
        let mut word = [0u8; 8];
        word.copy_from_slice(self.take(8)?);
        Some(u64::from_le_bytes(word))
    }

    fn string(&mut self) -> Option<String> {
        let mut word = [0u8; 4];
        word.copy_from_slice(self.take(4)?);
        let bytes = self.take(u32::from_le_bytes(word) as usize)?;
        String::from_utf8(bytes.to_vec()).ok()
    }
}

fn parse(payload: &[u8]) -> Option<LogRecord> {
    let mut r = Reader(payload);
    let record = match r.byte()? {
        KIND_QUEUED => {
            let written_at_ms = r.u64()?;
            let session = match r.byte()? {
                0 => None,
                1 => {
                    let mut id = [0u8; 16];
                    id.copy_from_slice(r.take(16)?);
                    Some(SessionId(id))
                }
                _ => return None,
            };
            let write_id = r.string()?;
            let key = r.string()?;
            let value = r.string()?;
            LogRecord::Queued {
                write: WriteRequest {
                    key,
                    value,
                    written_at_ms,
                    write_id,
                },
                session,
            }
        }
        KIND_DONE => LogRecord::Done {
            write_id: r.string()?,
        },
        _ => return None,
    };
    r.0.is_empty().then_some(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(key: &str, value: &str, session: Option<SessionId>) -> LogRecord {
        LogRecord::Queued {
            write: WriteRequest::new(key.into(), value.into()),
            session,
        }
    }

    #[test]
    fn records_round_trip() {
        for record in [
            queued("k", "v", None),
            queued("ключ", "", Some(SessionId([7; 16]))),
            LogRecord::Done {
                write_id: "00ff".into(),
            },
        ] {
            let bytes = encode(&record);
            assert_eq!(decode(&bytes), Decoded::Record(record, bytes.len()));
        }
    }

    #[test]
    fn every_cut_of_a_frame_is_torn_never_a_record() {
        let bytes = encode(&queued("key", "value", Some(SessionId([1; 16]))));
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), Decoded::Torn, "cut at {cut}");
        }
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let bytes = encode(&queued("key", "value", None));
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[at] ^= 1 << bit;
                match decode(&bad) {
                    Decoded::Record(..) => panic!("flip of bit {bit} at byte {at} was accepted"),
                    Decoded::Torn | Decoded::Corrupt(_) => {}
                }
            }
        }
    }

    #[test]
    fn a_huge_length_is_corrupt_not_an_allocation() {
        let mut bytes = vec![0xff; HEADER_BYTES];
        bytes.extend_from_slice(b"rest");
        assert!(matches!(decode(&bytes), Decoded::Corrupt(_)));
    }
}
