//! Toxics that shape timing and pass every byte: `latency`, `bandwidth`, `slow_close`,
//! `slicer`.
//!
//! Data path, toxic branch: stages of a link's chain (see [`super`]). Each keeps at most one
//! computed deadline for the chunk at its head, derived from absolute times, so latency is
//! `arrival + latency ± jitter` for every chunk and never accumulates across chunks.

use std::collections::VecDeque;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::{Item, Step, after, millis, pass};

/// `latency`: each chunk leaves at the time it reached this stage plus `latency` ± `jitter` ms,
/// in order.
#[derive(Debug)]
pub struct Latency {
    latency: i64,
    jitter: i64,
    deadline: Option<Instant>,
}

impl Latency {
    /// A latency of `latency` ± `jitter` ms.
    pub fn new(latency: i64, jitter: i64) -> Latency {
        Latency {
            latency,
            jitter,
            deadline: None,
        }
    }

    fn delay(&self) -> Duration {
        let mut ms = self.latency;
        if self.jitter > 0 {
            ms = ms.saturating_add(rand::rng().random_range(-self.jitter..self.jitter));
        }
        millis(ms)
    }

    /// Releases the head once its deadline has come.
    pub fn step(&mut self, q: &mut VecDeque<Item>, now: Instant) -> Step {
        let arrived = match q.front() {
            None => return Step::Idle,
            Some(Item::End(_)) => return pass(q),
            Some(Item::Data(_, at)) => *at,
        };
        let deadline = match self.deadline {
            Some(d) => d,
            None => {
                let d = after(arrived, self.delay());
                self.deadline = Some(d);
                d
            }
        };
        if now < deadline {
            return Step::Wait(deadline);
        }
        self.deadline = None;
        match q.pop_front() {
            Some(Item::Data(b, _)) => Step::Emit(Item::Data(b, deadline)),
            other => other.map_or(Step::Idle, Step::Emit),
        }
    }
}

/// `bandwidth`: at most `rate` KB/s (1 KB = 1000 bytes), in pieces of at most 100 ms worth, as
/// Toxiproxy sends them; a rate of 0 or less is unlimited. Idle time earns no credit.
#[derive(Debug)]
pub struct Bandwidth {
    rate: i64,
    busy_until: Instant,
    next: Option<(Instant, usize)>,
}

fn transfer_time(len: usize, rate_kb: i64) -> Duration {
    let nanos = (len as u128 * 1_000_000) / rate_kb.max(1) as u128;
    Duration::from_nanos(nanos.min(u64::MAX as u128) as u64)
}

impl Bandwidth {
    /// A limit of `rate` KB/s, starting now.
    pub fn new(rate: i64, now: Instant) -> Bandwidth {
        Bandwidth {
            rate,
            busy_until: now,
            next: None,
        }
    }

    /// A new rate; the piece in progress is rescheduled.
    pub fn set_rate(&mut self, rate: i64) {
        self.rate = rate;
        self.next = None;
    }

    /// Releases the next piece of the head when the link has had time to send it.
    pub fn step(&mut self, q: &mut VecDeque<Item>, now: Instant) -> Step {
        let len = match q.front() {
            None => return Step::Idle,
            Some(Item::End(_)) => return pass(q),
            Some(Item::Data(b, _)) => b.len(),
        };
        if self.rate <= 0 {
            return pass(q);
        }
        let (at, piece) = match self.next {
            Some(n) => n,
            None => {
                let max_piece = (self.rate as u128 * 100).clamp(1, usize::MAX as u128) as usize;
                let piece = len.min(max_piece);
                let start = now.max(self.busy_until);
                let n = (after(start, transfer_time(piece, self.rate)), piece);
                self.next = Some(n);
                n
            }
        };
        if now < at {
            return Step::Wait(at);
        }
        self.next = None;
        self.busy_until = at;
        if piece >= len {
            return match q.pop_front() {
                Some(Item::Data(b, _)) => Step::Emit(Item::Data(b, at)),
                other => other.map_or(Step::Idle, Step::Emit),
            };
        }
        match q.front_mut() {
            Some(Item::Data(b, _)) => Step::Emit(Item::Data(b.split_to(piece), at)),
            _ => Step::Idle, // ok: the head was checked to be data above
        }
    }
}

/// `slow_close`: data passes; the end of the stream waits `delay` ms.
#[derive(Debug)]
pub struct SlowClose {
    delay: i64,
    deadline: Option<Instant>,
}

impl SlowClose {
    /// A close delayed by `delay` ms.
    pub fn new(delay: i64) -> SlowClose {
        SlowClose {
            delay,
            deadline: None,
        }
    }

    /// Passes data at once and the end after the delay.
    pub fn step(&mut self, q: &mut VecDeque<Item>, now: Instant) -> Step {
        match q.front() {
            None => Step::Idle,
            Some(Item::Data(..)) => pass(q),
            Some(Item::End(_)) => {
                let delay = millis(self.delay);
                let deadline = *self.deadline.get_or_insert_with(|| after(now, delay));
                if now < deadline {
                    Step::Wait(deadline)
                } else {
                    pass(q)
                }
            }
        }
    }
}

/// `slicer`: cuts each chunk into slices of about `average_size` ± `size_variation` bytes and
/// waits `delay` µs after each slice. An `average_size` of 0 or less leaves chunks whole
/// (Toxiproxy would panic on some such values).
#[derive(Debug)]
pub struct Slicer {
    average: i64,
    variation: i64,
    delay_us: i64,
    pieces: VecDeque<Item>,
    next_at: Option<Instant>,
}

/// Where to cut a chunk of `len` bytes: halves, shifted by up to ± `variation`, until each
/// piece is within `variation` of `average` (Toxiproxy's rule, without its recursion).
pub fn slice_bounds(len: usize, average: i64, variation: i64) -> Vec<(usize, usize)> {
    if average <= 0 || len == 0 {
        return vec![(0, len)];
    }
    let variation = variation.max(0);
    let mut rng = rand::rng();
    let mut out = Vec::new();
    let mut stack = vec![(0usize, len)];
    while let Some((s, e)) = stack.pop() {
        let size = (e - s) as i128;
        if size - average as i128 <= variation as i128 || size < 2 {
            out.push((s, e));
            continue;
        }
        let shift = if variation > 0 {
            rng.random_range(-variation..variation) as i128
        } else {
            0
        };
        let mid = (s as i128 + size / 2 + shift).clamp(s as i128 + 1, e as i128 - 1) as usize;
        stack.push((mid, e));
        stack.push((s, mid));
    }
    out
}

impl Slicer {
    /// A slicer with Toxiproxy's attributes.
    pub fn new(average: i64, variation: i64, delay_us: i64) -> Slicer {
        Slicer {
            average,
            variation,
            delay_us,
            pieces: VecDeque::new(),
            next_at: None,
        }
    }

    /// New attributes; slices already cut stay as they are.
    pub fn set(&mut self, average: i64, variation: i64, delay_us: i64) {
        self.average = average;
        self.variation = variation;
        self.delay_us = delay_us;
    }

    /// The slices not yet passed on.
    pub fn take_pieces(&mut self) -> VecDeque<Item> {
        std::mem::take(&mut self.pieces)
    }

    /// Passes the next slice when the delay after the previous one has passed.
    ///
    /// The next slice is due `delay` after this one was *due*, not after the link woke:
    /// tokio's timer wheel has 1 ms ticks and every sleep ends on the tick after its deadline,
    /// so counting from the wake-up added up to 1 ms per slice (2 ms delays took 3 ms). A slice
    /// more than one delay late (a stall) starts the cadence again from now, so slices never
    /// leave in a burst to catch up. Delays under 1 ms are kept on average: several slices may
    /// leave on one tick.
    pub fn step(&mut self, q: &mut VecDeque<Item>, now: Instant) -> Step {
        let mut due = None;
        if let Some(t) = self.next_at {
            if now < t {
                return Step::Wait(t);
            }
            self.next_at = None;
            due = Some(t);
        }
        if self.pieces.is_empty() {
            match q.pop_front() {
                None => return Step::Idle,
                Some(Item::End(kind)) => return Step::Emit(Item::End(kind)),
                Some(Item::Data(b, at)) => {
                    for (s, e) in slice_bounds(b.len(), self.average, self.variation) {
                        self.pieces.push_back(Item::Data(b.slice(s..e), at));
                    }
                }
            }
        }
        match self.pieces.pop_front() {
            Some(item) => {
                if self.delay_us > 0 {
                    let delay = Duration::from_micros(self.delay_us as u64);
                    let base = match due {
                        Some(t) if now.duration_since(t) < delay => t,
                        _ => now,
                    };
                    self.next_at = Some(after(base, delay));
                }
                Step::Emit(item)
            }
            None => Step::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn data(n: usize, at: Instant) -> Item {
        Item::Data(Bytes::from(vec![7u8; n]), at)
    }

    #[test]
    fn latency_counts_from_arrival_so_delays_do_not_stack() {
        let t0 = Instant::now();
        let mut l = Latency::new(200, 0);
        let mut q: VecDeque<Item> = (0..5)
            .map(|i| data(10, t0 + Duration::from_millis(20 * i)))
            .collect();
        let mut released = vec![];
        let mut now = t0;
        while !q.is_empty() {
            match l.step(&mut q, now) {
                Step::Wait(t) => now = t,
                Step::Emit(Item::Data(_, at)) => released.push(at - t0),
                other => panic!("{other:?}"),
            }
        }
        let want: Vec<Duration> = (0..5)
            .map(|i| Duration::from_millis(200 + 20 * i))
            .collect();
        assert_eq!(released, want);
    }

    #[test]
    fn bandwidth_paces_bytes_and_splits_large_chunks() {
        let t0 = Instant::now();
        let mut b = Bandwidth::new(10, t0); // 10 KB/s: 1000 bytes per 100 ms piece
        let mut q = VecDeque::from([data(2500, t0)]);
        let mut now = t0;
        let mut pieces = vec![];
        while !q.is_empty() {
            match b.step(&mut q, now) {
                Step::Wait(t) => now = t,
                Step::Emit(item) => pieces.push((item.len(), now - t0)),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            pieces,
            vec![
                (1000, Duration::from_millis(100)),
                (1000, Duration::from_millis(200)),
                (500, Duration::from_millis(250)),
            ]
        );
        // Any rate is safe, including absurd ones.
        for rate in [i64::MIN, -1, 0, 1, i64::MAX] {
            let mut b = Bandwidth::new(rate, t0);
            let mut q = VecDeque::from([data(100_000, t0)]);
            let _ = b.step(&mut q, t0);
        }
    }

    #[test]
    fn slicer_cuts_within_bounds_and_never_loses_bytes() -> TestResult {
        for (len, avg, var) in [(1000, 100, 20), (1000, 10, 0), (5, 1, 100), (64, 0, 0)] {
            let bounds = slice_bounds(len, avg, var);
            assert_eq!(bounds.first().ok_or("no slices")?.0, 0);
            assert_eq!(bounds.last().ok_or("no slices")?.1, len);
            for w in bounds.windows(2) {
                assert_eq!(w[0].1, w[1].0, "contiguous");
            }
            for (s, e) in &bounds {
                let size = (e - s) as i64;
                assert!(
                    avg <= 0 || size - avg <= var || size == 1,
                    "{len} {avg} {var}: {bounds:?}"
                );
            }
            assert_eq!(bounds.len() > 1, len as i64 - avg > var && avg > 0);
        }
        Ok(())
    }

    /// Runs a slicer over `len` bytes, the link waking `late` after each deadline; returns
    /// when each slice left, from the first.
    fn slice_times(len: usize, delay_us: i64, late: impl Fn(usize) -> Duration) -> Vec<Duration> {
        let t0 = Instant::now();
        let mut s = Slicer::new(10, 0, delay_us);
        let mut q = VecDeque::from([data(len, t0)]);
        let mut now = t0;
        let mut out = vec![];
        loop {
            match s.step(&mut q, now) {
                Step::Emit(Item::Data(..)) => out.push(now - t0),
                Step::Wait(t) => now = t + late(out.len()),
                _ => return out,
            }
        }
    }

    #[test]
    fn slicer_lateness_does_not_add_up() {
        // 2,560 bytes in 10-byte slices, 2 ms apart, each wake-up 0.9 ms late (a 1 ms timer).
        let times = slice_times(2560, 2000, |_| Duration::from_micros(900));
        assert_eq!(times.len(), 256);
        // On schedule: 255 delays plus one wake-up's lateness (counting from the wake-up,
        // it was 255 x 2.9 ms = 740 ms).
        assert_eq!(times[255], Duration::from_micros(255 * 2000 + 900));
        for w in times.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_micros(1100), "{w:?}");
        }
    }

    #[test]
    fn slicer_restarts_its_cadence_after_a_stall_instead_of_bursting() {
        // The 10th wake-up is 50 ms late; the slices after it keep 2 ms apart.
        let times = slice_times(320, 2000, |i| {
            Duration::from_millis(if i == 10 { 50 } else { 0 })
        });
        assert_eq!(times.len(), 32);
        for w in times.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_millis(2), "{w:?}");
        }
        assert_eq!(times[31], Duration::from_millis(31 * 2 + 50));
    }

    #[test]
    fn slow_close_delays_only_the_end() {
        let t0 = Instant::now();
        let mut s = SlowClose::new(300);
        let mut q = VecDeque::from([data(3, t0), Item::End(super::super::EndKind::Eof)]);
        assert!(matches!(s.step(&mut q, t0), Step::Emit(Item::Data(..))));
        assert!(
            matches!(s.step(&mut q, t0), Step::Wait(t) if t == t0 + Duration::from_millis(300))
        );
        assert!(matches!(
            s.step(&mut q, t0 + Duration::from_millis(300)),
            Step::Emit(Item::End(_))
        ));
    }
}
