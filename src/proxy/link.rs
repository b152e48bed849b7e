//! One direction of one proxied connection: reads from one socket, passes the bytes through the
//! direction's toxics, writes them to the other socket.
//!
//! Data path: the heart of the proxy. With no toxic on its direction a link is a plain copy
//! loop (one reused 64 KiB buffer, no allocation, no lock per chunk: it learns of toxic changes
//! through [`super::signal`], two atomic loads per poll). With toxics, each chunk read is stamped with its
//! arrival time and moves through the stages of [`super::toxics`]; reading goes on while
//! stages hold chunks (up to [`MAX_IN_FLIGHT`] bytes), so latency never stacks. A change of the
//! chain (toxic added, updated, removed) is picked up live: surviving stages keep their queued
//! chunks and state, a removed stage hands its chunks to the next one, so no accepted byte is
//! lost unless a toxic's own meaning drops it. Both paths add each chunk to the direction's
//! byte counters ([`super::metrics`]) when read and when written: one atomic add each.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use super::metrics::DirectionCounters;
use super::signal::{Controls, Signal};
use super::toxics::{Chain, EndKind, Item, Stage, Step};

/// Read size of both paths.
const READ_BUF: usize = 64 * 1024;

/// Bytes a link may hold inside its toxics before it stops reading (flow control).
pub const MAX_IN_FLIGHT: usize = 8 * 1024 * 1024;

/// How a link ended.
#[derive(Debug)]
pub enum LinkEnd {
    /// The source ended (or the other direction did) and everything accepted was written.
    Eof,
    /// A toxic closed the connection.
    Closed,
    /// A toxic reset the connection.
    Reset,
    /// Reading or writing failed.
    Failed(io::Error),
}

/// What woke the plain copy loop.
enum Plain {
    Read(usize),
    Signal(Signal),
    Failed(io::Error),
}

/// One direction of a connection.
pub struct Link<'a> {
    controls: Controls<'a>,
    counters: Option<DirectionCounters>,
    stages: Vec<Stage>,
    out: VecDeque<Bytes>,
    out_end: Option<EndKind>,
    in_flight: usize,
    reading: bool,
}

impl<'a> Link<'a> {
    /// A link following the toxic chain of `controls`, adding the bytes it reads and writes
    /// to `counters` (one atomic add each per chunk).
    pub fn new(mut controls: Controls<'a>, counters: Option<DirectionCounters>) -> Link<'a> {
        let chain = controls.current();
        let now = Instant::now();
        Link {
            controls,
            counters,
            stages: chain.iter().map(|t| Stage::new(t, now)).collect(),
            out: VecDeque::new(),
            out_end: None,
            in_flight: 0,
            reading: true,
        }
    }

    fn is_plain(&self) -> bool {
        self.stages.is_empty() && self.out.is_empty() && self.out_end.is_none() && self.reading
    }

    /// Runs until the stream ends. The connection's stop flag asks the link to finish as if
    /// its source had ended (the other direction is done).
    pub async fn run<R, W>(mut self, src: &mut R, dst: &mut W) -> LinkEnd
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut buf = vec![0u8; READ_BUF];
        let mut read_buf = BytesMut::new();
        loop {
            if self.is_plain() {
                let event = poll_fn(|cx| {
                    if let Some(signal) = self.controls.poll(cx, true) {
                        return Poll::Ready(Plain::Signal(signal));
                    }
                    let mut filled = ReadBuf::new(&mut buf);
                    match Pin::new(&mut *src).poll_read(cx, &mut filled) {
                        Poll::Ready(Ok(())) => Poll::Ready(Plain::Read(filled.filled().len())),
                        Poll::Ready(Err(e)) => Poll::Ready(Plain::Failed(e)),
                        Poll::Pending => Poll::Pending,
                    }
                })
                .await;
                match event {
                    Plain::Read(0) | Plain::Signal(Signal::Stop) => return LinkEnd::Eof,
                    Plain::Read(n) => {
                        self.received(n);
                        if let Err(e) = dst.write_all(&buf[..n]).await {
                            return LinkEnd::Failed(e);
                        }
                        self.sent(n);
                    }
                    Plain::Signal(Signal::Changed) => self.relink(),
                    Plain::Signal(Signal::Gone) => {}
                    Plain::Failed(e) => return LinkEnd::Failed(e),
                }
                continue;
            }

            let wake = match self.advance(Instant::now()) {
                Ok(wake) => wake,
                Err(end) => return end,
            };
            if self.out.is_empty() {
                match self.out_end {
                    Some(EndKind::Eof) => return LinkEnd::Eof,
                    Some(EndKind::Closed) => return LinkEnd::Closed,
                    None => {}
                }
            }
            let can_read = self.reading && self.in_flight < MAX_IN_FLIGHT;
            if can_read && read_buf.capacity() < READ_BUF / 4 {
                read_buf.reserve(READ_BUF);
            }
            let reading = self.reading;
            let controls = &mut self.controls;
            tokio::select! {
                biased;
                signal = poll_fn(|cx| controls.poll(cx, reading).map_or(Poll::Pending, Poll::Ready)) => {
                    match signal {
                        Signal::Stop => self.end_input(EndKind::Eof),
                        Signal::Changed => self.relink(),
                        Signal::Gone => {}
                    }
                }
                written = dst.write(self.out.front().map_or(&[][..], |b| &b[..])), if !self.out.is_empty() => {
                    match written {
                        Ok(0) => return LinkEnd::Failed(io::ErrorKind::WriteZero.into()),
                        Ok(n) => {
                            self.sent(n);
                            self.wrote(n);
                        }
                        Err(e) => return LinkEnd::Failed(e),
                    }
                }
                read = src.read_buf(&mut read_buf), if can_read => match read {
                    Ok(0) => self.end_input(EndKind::Eof),
                    Ok(n) => {
                        self.received(n);
                        self.in_flight += n;
                        let chunk = read_buf.split().freeze();
                        let mut dropped = 0;
                        self.route(0, Item::Data(chunk, Instant::now()), &mut dropped);
                        self.in_flight -= dropped;
                    }
                    Err(e) => return LinkEnd::Failed(e),
                },
                _ = sleep_until_some(wake), if wake.is_some() => {}
            }
        }
    }

    fn received(&self, n: usize) {
        if let Some(c) = &self.counters {
            c.received.inc_by(n as u64);
        }
    }

    fn sent(&self, n: usize) {
        if let Some(c) = &self.counters {
            c.sent.inc_by(n as u64);
        }
    }

    fn wrote(&mut self, n: usize) {
        self.in_flight = self.in_flight.saturating_sub(n);
        if let Some(front) = self.out.front_mut() {
            if n >= front.len() {
                self.out.pop_front();
            } else {
                front.advance(n);
            }
        }
    }

    fn end_input(&mut self, kind: EndKind) {
        self.reading = false;
        self.route(0, Item::End(kind), &mut 0);
    }

    /// Gives `item` to stage `index`, or to the socket past the last stage.
    fn route(&mut self, index: usize, item: Item, dropped: &mut usize) {
        if let Some(stage) = self.stages.get_mut(index) {
            stage.push(item, dropped);
            return;
        }
        match item {
            Item::Data(b, _) => self.out.push_back(b),
            Item::End(kind) => {
                if self.out_end.is_none() {
                    self.out_end = Some(kind);
                }
            }
        }
    }

    /// Moves every item that is due through the stages; returns when to look again, or the
    /// end if a toxic reset the connection.
    fn advance(&mut self, now: Instant) -> Result<Option<Instant>, LinkEnd> {
        let mut wake: Option<Instant> = None;
        let mut dropped = 0;
        for i in 0..self.stages.len() {
            loop {
                match self.stages[i].step(now, &mut dropped) {
                    Step::Emit(item) => self.route(i + 1, item, &mut dropped),
                    Step::Wait(t) => {
                        wake = Some(wake.map_or(t, |w| w.min(t)));
                        break;
                    }
                    Step::Idle => break,
                    Step::Close => {
                        self.stages[i].close(&mut dropped);
                        self.reading = false;
                        self.route(i + 1, Item::End(EndKind::Closed), &mut dropped);
                        break;
                    }
                    Step::Reset => return Err(LinkEnd::Reset),
                }
            }
        }
        self.in_flight = self.in_flight.saturating_sub(dropped);
        Ok(wake)
    }

    /// Rebuilds the stages for the chain now published, without losing queued chunks.
    fn relink(&mut self) {
        let chain: Chain = self.controls.current();
        let now = Instant::now();
        let mut dropped = 0;
        let mut kept: Vec<Stage> = Vec::with_capacity(chain.len());
        // Items of removed stages, newest last, waiting for the next surviving stage.
        let mut carry: VecDeque<Item> = VecDeque::new();
        for mut stage in std::mem::take(&mut self.stages) {
            if let Some(config) = chain.iter().find(|t| t.name == stage.name()) {
                stage.update(config, now);
                stage.extend(std::mem::take(&mut carry), &mut dropped);
                kept.push(stage);
            } else if stage.closes_on_removal() {
                // Toxiproxy's timeout cleanup closes the connection where the toxic was:
                // what is before it is dropped, what is after it still drains.
                for earlier in kept.iter_mut() {
                    earlier.close(&mut dropped);
                }
                for item in carry.drain(..).chain(stage.drain()) {
                    dropped += item.len();
                }
                carry.push_back(Item::End(EndKind::Closed));
                self.reading = false;
            } else {
                let mut items = stage.drain();
                items.append(&mut carry);
                carry = items;
            }
        }
        let first_new = kept.len();
        for config in chain.iter() {
            if !kept.iter().any(|s| s.name() == config.name) {
                kept.push(Stage::new(config, now));
            }
        }
        self.stages = kept;
        for item in carry {
            self.route(first_new, item, &mut dropped);
        }
        self.in_flight = self.in_flight.saturating_sub(dropped);
    }
}

async fn sleep_until_some(wake: Option<Instant>) {
    if let Some(t) = wake {
        tokio::time::sleep_until(t).await;
    }
}
