//! Toxics as stages of a link's chain: each one holds the chunks that reached it and decides,
//! given the time, whether to pass the head on, wait, drop, close or reset.
//!
//! Data path, toxic branch: a link ([`super::link`]) with toxics reads a chunk, stamps it with
//! its arrival time and pushes it into the first stage; every stage releases chunks in order
//! into the next, the last into the socket. Times are absolute (a chunk's deadline is computed
//! from when it arrived), so stages never stack delays per chunk, and a stage that waits does
//! not stop the link from reading, which is how Toxiproxy's goroutine-per-toxic chain behaves.
//! Stages that shape timing live in [`shape`]; stages that drop data or end the connection in
//! [`cut`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::model::{Stream, ToxicKind};

pub mod cut;
pub mod shape;

/// The longest delay any toxic applies; larger attributes are capped here so a timer can
/// always be set (Toxiproxy would sleep for centuries).
const MAX_DELAY: Duration = Duration::from_secs(365 * 24 * 3600);

/// `ms` milliseconds as a delay: negative is zero, more than a year is a year.
pub fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64).min(MAX_DELAY)
}

/// `t` plus `d`, saturating far in the future instead of overflowing.
pub fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d.min(MAX_DELAY)).unwrap_or(t)
}

/// A toxic as the registry publishes it to links. `revision` changes whenever the toxic is
/// created or updated, so a link can tell a changed toxic from an unchanged one.
#[derive(Debug, Clone, PartialEq)]
pub struct ToxicConfig {
    /// Unique within the proxy.
    pub name: String,
    /// Type and attributes.
    pub kind: ToxicKind,
    /// Direction.
    pub stream: Stream,
    /// Probability that a connection gets it.
    pub toxicity: f32,
    /// Changes on every create or update.
    pub revision: u64,
}

/// The toxics of one direction of a proxy, in chain order.
pub type Chain = Arc<Vec<Arc<ToxicConfig>>>;

/// Why a link's output ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndKind {
    /// The source closed (or the other direction ended); every accepted byte was passed on.
    Eof,
    /// A toxic closed the connection (timeout, limit_data, a removed timeout).
    Closed,
}

/// What flows through a chain.
#[derive(Debug)]
pub enum Item {
    /// Bytes and the time they were last released (arrival, for the first stage).
    Data(Bytes, Instant),
    /// The end of the stream.
    End(EndKind),
}

impl Item {
    /// Payload bytes (0 for the end marker).
    pub fn len(&self) -> usize {
        match self {
            Item::Data(b, _) => b.len(),
            Item::End(_) => 0,
        }
    }

    /// Whether it carries no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a stage wants next.
#[derive(Debug)]
pub enum Step {
    /// Pass this item to the next stage.
    Emit(Item),
    /// Nothing to do before this time.
    Wait(Instant),
    /// Nothing to do until an item arrives.
    Idle,
    /// End the connection (FIN), after what was already passed on.
    Close,
    /// Reset the connection (RST) now.
    Reset,
}

/// A toxic's behaviour, with its per-connection state.
#[derive(Debug)]
enum Behaviour {
    Pass,
    Latency(shape::Latency),
    Bandwidth(shape::Bandwidth),
    SlowClose(shape::SlowClose),
    Slicer(shape::Slicer),
    Timeout(cut::Timeout),
    ResetPeer(cut::ResetPeer),
    LimitData(cut::LimitData),
}

impl Behaviour {
    fn new(kind: &ToxicKind, now: Instant) -> Behaviour {
        match *kind {
            ToxicKind::Latency { latency, jitter } => {
                Behaviour::Latency(shape::Latency::new(latency, jitter))
            }
            ToxicKind::Bandwidth { rate } => Behaviour::Bandwidth(shape::Bandwidth::new(rate, now)),
            ToxicKind::SlowClose { delay } => Behaviour::SlowClose(shape::SlowClose::new(delay)),
            ToxicKind::Slicer {
                average_size,
                size_variation,
                delay,
            } => Behaviour::Slicer(shape::Slicer::new(average_size, size_variation, delay)),
            ToxicKind::Timeout { timeout } => Behaviour::Timeout(cut::Timeout::new(timeout, now)),
            ToxicKind::ResetPeer { timeout } => Behaviour::ResetPeer(cut::ResetPeer::new(timeout)),
            ToxicKind::LimitData { bytes } => Behaviour::LimitData(cut::LimitData::new(bytes)),
            ToxicKind::Noop => Behaviour::Pass,
        }
    }

    /// New attributes for the same type: keeps the state Toxiproxy keeps (bytes sent for
    /// limit_data, the bandwidth schedule), restarts what Toxiproxy restarts.
    fn update(&mut self, kind: &ToxicKind, now: Instant) {
        match (self, *kind) {
            (Behaviour::Latency(l), ToxicKind::Latency { latency, jitter }) => {
                *l = shape::Latency::new(latency, jitter)
            }
            (Behaviour::Bandwidth(b), ToxicKind::Bandwidth { rate }) => b.set_rate(rate),
            (Behaviour::SlowClose(s), ToxicKind::SlowClose { delay }) => {
                *s = shape::SlowClose::new(delay)
            }
            (
                Behaviour::Slicer(s),
                ToxicKind::Slicer {
                    average_size,
                    size_variation,
                    delay,
                },
            ) => s.set(average_size, size_variation, delay),
            (Behaviour::Timeout(t), ToxicKind::Timeout { timeout }) => {
                *t = cut::Timeout::new(timeout, now)
            }
            (Behaviour::ResetPeer(r), ToxicKind::ResetPeer { timeout }) => {
                *r = cut::ResetPeer::new(timeout)
            }
            (Behaviour::LimitData(l), ToxicKind::LimitData { bytes }) => l.set_limit(bytes),
            (me, kind) => *me = Behaviour::new(&kind, now),
        }
    }
}

/// One toxic on one direction of one connection.
#[derive(Debug)]
pub struct Stage {
    name: String,
    revision: u64,
    toxicity: f32,
    active: bool,
    behaviour: Behaviour,
    queue: VecDeque<Item>,
    closed: bool,
}

fn roll(toxicity: f32) -> bool {
    toxicity >= 1.0 || rand::random::<f32>() < toxicity
}

impl Stage {
    /// The toxic on a connection; toxicity is decided here, once for this connection.
    pub fn new(config: &ToxicConfig, now: Instant) -> Stage {
        Stage {
            name: config.name.clone(),
            revision: config.revision,
            toxicity: config.toxicity,
            active: roll(config.toxicity),
            behaviour: Behaviour::new(&config.kind, now),
            queue: VecDeque::new(),
            closed: false,
        }
    }

    /// The toxic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Applies a changed toxic (same name): new attributes keep the queued chunks; toxicity is
    /// decided again only when it changed.
    pub fn update(&mut self, config: &ToxicConfig, now: Instant) {
        if config.revision == self.revision {
            return;
        }
        self.revision = config.revision;
        if config.toxicity != self.toxicity {
            self.toxicity = config.toxicity;
            self.active = roll(config.toxicity);
        }
        self.behaviour.update(&config.kind, now);
    }

    /// Whether removing this toxic ends the connection (Toxiproxy's timeout cleanup).
    pub fn closes_on_removal(&self) -> bool {
        self.active && matches!(self.behaviour, Behaviour::Timeout(_))
    }

    /// Hands over everything it holds, oldest first (for removal).
    pub fn drain(&mut self) -> VecDeque<Item> {
        let mut items = match &mut self.behaviour {
            Behaviour::Slicer(s) => s.take_pieces(),
            _ => VecDeque::new(),
        };
        items.append(&mut self.queue);
        items
    }

    /// Accepts an item from the stage before; a closed stage drops it.
    pub fn push(&mut self, item: Item, dropped: &mut usize) {
        if self.closed {
            *dropped += item.len();
        } else {
            self.queue.push_back(item);
        }
    }

    /// Appends items handed over from a removed stage.
    pub fn extend(&mut self, items: VecDeque<Item>, dropped: &mut usize) {
        for item in items {
            self.push(item, dropped);
        }
    }

    /// Stops the stage: what it holds and whatever reaches it later is dropped.
    pub fn close(&mut self, dropped: &mut usize) {
        self.closed = true;
        for item in self.drain() {
            *dropped += item.len();
        }
    }

    /// What the stage does next at time `now`.
    pub fn step(&mut self, now: Instant, dropped: &mut usize) -> Step {
        if self.closed {
            return Step::Idle;
        }
        let q = &mut self.queue;
        if !self.active {
            return pass(q);
        }
        match &mut self.behaviour {
            Behaviour::Pass => pass(q),
            Behaviour::Latency(t) => t.step(q, now),
            Behaviour::Bandwidth(t) => t.step(q, now),
            Behaviour::SlowClose(t) => t.step(q, now),
            Behaviour::Slicer(t) => t.step(q, now),
            Behaviour::Timeout(t) => t.step(q, now, dropped),
            Behaviour::ResetPeer(t) => t.step(q, now, dropped),
            Behaviour::LimitData(t) => t.step(q, dropped),
        }
    }
}

/// Passes the head on at once.
pub fn pass(queue: &mut VecDeque<Item>) -> Step {
    queue.pop_front().map_or(Step::Idle, Step::Emit)
}
