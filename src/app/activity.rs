//! What one connection is doing, for its timeouts: idle, reading a request's headers, or
//! inside a request.
//!
//! Data path: under the HTTP handler, at the socket. [`WatchedIo`](super::watched_io) records
//! each read; the connection's service marks each request's start and end. From that
//! [`Activity::check`] tells the connection's task when to close it:
//!
//! - **header read**: bytes of a request arrived but its headers are not complete after
//!   `HTTP_HEADER_READ_TIMEOUT_SEC` (a connection that has not finished a first request is
//!   held to the same bound from its start, so a silent connection is no cheaper to hold);
//! - **idle**: after a request, nothing arrives for `HTTP_IDLE_TIMEOUT_SEC` (a client that
//!   stops reading its answer is idle too, so a slow reader is bounded by it).
//!
//! While a request runs, neither applies: the body has its own deadline (`HTTP_BODY_TIMEOUT_SEC`,
//! in the handler), and every Redis call its timeout. hyper's own `header_read_timeout` is not
//! used: it runs from the moment hyper waits for the next request, so it cannot tell an idle
//! keep-alive connection from a slow client.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Which timeout closed a connection (the `phase` label of `http_connection_timeouts_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// The headers did not arrive in time.
    Header,
    /// Nothing happened on a kept-alive connection.
    Idle,
}

impl Expired {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Expired::Header => "header",
            Expired::Idle => "idle",
        }
    }
}

/// What [`Activity::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Close the connection.
    Expired(Expired),
    /// Look again at this instant.
    Until(Instant),
}

/// The shared record of one connection's activity (its IO and its service both hold it).
#[derive(Debug)]
pub struct Activity {
    origin: Instant,
    in_flight: AtomicU32,
    /// Requests started on this connection.
    calls: AtomicU64,
    /// When the connection last became idle (its start, or a request's end), in ms from
    /// `origin`.
    idle_since_ms: AtomicU64,
    /// When the first byte after `idle_since_ms` arrived, in ms from `origin`, plus one; 0 =
    /// none yet.
    first_byte_ms: AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

impl Activity {
    /// A connection that starts now.
    pub fn new() -> Activity {
        Activity {
            origin: Instant::now(),
            in_flight: AtomicU32::new(0),
            calls: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(0),
            first_byte_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.origin + Duration::from_millis(ms)
    }

    /// Bytes were read from the client.
    pub fn on_read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.first_byte_ms.load(Ordering::Relaxed) == 0
        {
            self.first_byte_ms
                .store(self.now_ms().saturating_add(1), Ordering::Relaxed);
        }
    }

    /// A request's headers were parsed and its handling starts; the returned guard marks its
    /// end when dropped (also when the request is abandoned).
    pub fn start_request(self: &std::sync::Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.first_byte_ms.store(0, Ordering::Relaxed);
        RequestGuard {
            activity: self.clone(),
        }
    }

    /// Requests started on this connection so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn end_request(&self) {
        if self.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.first_byte_ms.store(0, Ordering::Relaxed);
            self.idle_since_ms.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// Whether the connection has overstayed, at `now`.
    pub fn check(&self, now: Instant, header: Duration, idle: Duration) -> Check {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Check::Until(now + header.min(idle));
        }
        let first_byte = self.first_byte_ms.load(Ordering::Relaxed);
        let (deadline, phase) = if first_byte > 0 {
            (self.at(first_byte - 1) + header, Expired::Header)
        } else if self.calls() == 0 {
            (self.origin + header, Expired::Header)
        } else {
            let since = self.idle_since_ms.load(Ordering::Relaxed);
            (self.at(since) + idle, Expired::Idle)
        };
        if now >= deadline {
            Check::Expired(phase)
        } else {
            Check::Until(deadline)
        }
    }
}

/// Marks the end of a request when dropped.
#[derive(Debug)]
pub struct RequestGuard {
    activity: std::sync::Arc<Activity>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.activity.end_request();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const HEADER: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(75);

    #[test]
    fn a_silent_new_connection_has_the_header_bound() {
        let a = Activity::new();
        let start = a.origin;
        assert_eq!(a.check(start, HEADER, IDLE), Check::Until(start + HEADER));
        assert_eq!(
            a.check(start + HEADER, HEADER, IDLE),
            Check::Expired(Expired::Header)
        );
    }

    #[test]
    fn after_a_request_the_idle_bound_applies_until_bytes_come() {
        let a = Arc::new(Activity::new());
        let guard = a.start_request();
        let during = Instant::now() + Duration::from_secs(500);
        assert!(matches!(a.check(during, HEADER, IDLE), Check::Until(_)));
        drop(guard);
        let now = Instant::now();
        let Check::Until(deadline) = a.check(now, HEADER, IDLE) else {
            panic!("expired at once");
        };
        assert!(deadline > now + HEADER, "idle, not header: {deadline:?}");
        assert_eq!(
            a.check(deadline, HEADER, IDLE),
            Check::Expired(Expired::Idle)
        );
        a.on_read();
        let Check::Until(deadline) = a.check(Instant::now(), HEADER, IDLE) else {
            panic!("expired at once");
        };
        assert!(deadline <= Instant::now() + HEADER);
        assert_eq!(
            a.check(deadline, HEADER, IDLE),
            Check::Expired(Expired::Header)
        );
        assert_eq!(a.calls(), 1);
    }
}
