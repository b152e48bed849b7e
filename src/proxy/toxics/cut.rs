//! Toxics that drop data or end the connection: `timeout`, `reset_peer`, `limit_data`.
//!
//! Data path, toxic branch: stages of a link's chain (see [`super`]). Dropped bytes are added
//! to the link's `dropped` count so its flow-control budget stays exact.

use std::collections::VecDeque;

use tokio::time::Instant;

use super::{Item, Step, after, millis};

/// `timeout`: drops every byte; closes the connection once no data has arrived for `timeout`
/// ms (Toxiproxy restarts its timer on each chunk it drops), never when `timeout` is 0.
/// Removing it closes the connection (see [`super::Stage::closes_on_removal`]).
#[derive(Debug)]
pub struct Timeout {
    timeout: i64,
    last: Instant,
}

impl Timeout {
    /// A timeout of `timeout` ms, counted from `now`.
    pub fn new(timeout: i64, now: Instant) -> Timeout {
        Timeout { timeout, last: now }
    }

    /// Drops what arrived; closes when the time is up or the stream ended.
    pub fn step(&mut self, q: &mut VecDeque<Item>, now: Instant, dropped: &mut usize) -> Step {
        while let Some(item) = q.pop_front() {
            match item {
                Item::Data(b, _) => {
                    *dropped += b.len();
                    self.last = now;
                }
                Item::End(_) => return Step::Close,
            }
        }
        if self.timeout <= 0 {
            return Step::Idle;
        }
        let deadline = after(self.last, millis(self.timeout));
        if now >= deadline {
            Step::Close
        } else {
            Step::Wait(deadline)
        }
    }
}

/// `reset_peer`: when data (or the end) first arrives, drops it and resets the connection
/// (TCP RST) `timeout` ms later.
#[derive(Debug)]
pub struct ResetPeer {
    timeout: i64,
    fire_at: Option<Instant>,
}

impl ResetPeer {
    /// A reset `timeout` ms after the first data.
    pub fn new(timeout: i64) -> ResetPeer {
        ResetPeer {
            timeout,
            fire_at: None,
        }
    }

    /// Arms on the first item, resets when armed and due.
    pub fn step(&mut self, q: &mut VecDeque<Item>, now: Instant, dropped: &mut usize) -> Step {
        let fire_at = match self.fire_at {
            Some(t) => t,
            None => match q.pop_front() {
                None => return Step::Idle,
                Some(item) => {
                    *dropped += item.len();
                    let t = after(now, millis(self.timeout));
                    self.fire_at = Some(t);
                    t
                }
            },
        };
        if now >= fire_at {
            Step::Reset
        } else {
            Step::Wait(fire_at)
        }
    }
}

/// `limit_data`: passes `bytes` bytes, then closes the connection. The count is kept for the
/// life of the connection, across updates.
#[derive(Debug)]
pub struct LimitData {
    bytes: i64,
    sent: i64,
    closing: bool,
}

impl LimitData {
    /// A limit of `bytes`.
    pub fn new(bytes: i64) -> LimitData {
        LimitData {
            bytes,
            sent: 0,
            closing: false,
        }
    }

    /// A new limit; bytes already passed still count.
    pub fn set_limit(&mut self, bytes: i64) {
        self.bytes = bytes;
    }

    /// Passes what fits under the limit; closes once it is reached.
    pub fn step(&mut self, q: &mut VecDeque<Item>, dropped: &mut usize) -> Step {
        if self.closing {
            return Step::Close;
        }
        match q.pop_front() {
            None => Step::Idle,
            Some(Item::End(_)) => Step::Close,
            Some(Item::Data(mut b, at)) => {
                let remaining = self.bytes.saturating_sub(self.sent).max(0);
                let remaining = usize::try_from(remaining).unwrap_or(usize::MAX);
                if b.len() > remaining {
                    *dropped += b.len() - remaining;
                    b.truncate(remaining);
                }
                self.sent = self.sent.saturating_add(b.len() as i64);
                if self.bytes.saturating_sub(self.sent) <= 0 {
                    self.closing = true;
                }
                if b.is_empty() {
                    Step::Close
                } else {
                    Step::Emit(Item::Data(b, at))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::EndKind;
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    fn data(n: usize, at: Instant) -> Item {
        Item::Data(Bytes::from(vec![1u8; n]), at)
    }

    #[test]
    fn timeout_drops_data_and_closes_after_quiet_time() {
        let t0 = Instant::now();
        let mut dropped = 0;
        let mut t = Timeout::new(100, t0);
        let mut q = VecDeque::from([data(10, t0)]);
        let later = t0 + Duration::from_millis(50);
        assert!(
            matches!(t.step(&mut q, later, &mut dropped), Step::Wait(d) if d == later + Duration::from_millis(100))
        );
        assert_eq!(dropped, 10);
        assert!(matches!(
            t.step(&mut q, later + Duration::from_millis(100), &mut dropped),
            Step::Close
        ));
        let mut never = Timeout::new(0, t0);
        assert!(matches!(
            never.step(&mut q, t0 + Duration::from_secs(3600), &mut dropped),
            Step::Idle
        ));
        let mut q = VecDeque::from([Item::End(EndKind::Eof)]);
        assert!(matches!(never.step(&mut q, t0, &mut dropped), Step::Close));
    }

    #[test]
    fn reset_peer_arms_on_first_data() {
        let t0 = Instant::now();
        let mut dropped = 0;
        let mut r = ResetPeer::new(100);
        let mut q = VecDeque::new();
        assert!(matches!(r.step(&mut q, t0, &mut dropped), Step::Idle));
        q.push_back(data(4, t0));
        assert!(matches!(r.step(&mut q, t0, &mut dropped), Step::Wait(_)));
        assert!(matches!(
            r.step(&mut q, t0 + Duration::from_millis(100), &mut dropped),
            Step::Reset
        ));
    }

    #[test]
    fn limit_data_passes_exactly_the_limit_then_closes() {
        let t0 = Instant::now();
        let mut dropped = 0;
        let mut l = LimitData::new(15);
        let mut q = VecDeque::from([data(10, t0), data(10, t0), data(10, t0)]);
        assert!(matches!(l.step(&mut q, &mut dropped), Step::Emit(i) if i.len() == 10));
        assert!(matches!(l.step(&mut q, &mut dropped), Step::Emit(i) if i.len() == 5));
        assert!(matches!(l.step(&mut q, &mut dropped), Step::Close));
        assert_eq!(dropped, 5);
        let mut zero = LimitData::new(0);
        let mut q = VecDeque::from([data(3, t0)]);
        assert!(matches!(zero.step(&mut q, &mut dropped), Step::Close));
    }
}
