//! Giving memory back to the operating system after a burst of connections.
//!
//! Beside the data path. Each connection's buffers and task are freed when it closes, but
//! glibc's malloc keeps freed memory in its arenas for reuse: measured, an app that held 6,000
//! half-open connections stayed at 45 MB after they closed (15 MB before), and `malloc_trim`
//! brought it back to 15 MB (BENCHMARKS.md, "Connection flood"). The server counts open
//! connections; a task looks every few seconds and trims once the count has fallen by
//! [`TRIM_AFTER_DROP`] from its high-water mark since the last trim, so a steady load never
//! pays for it. Other allocators (and non-glibc targets) return memory their own way: there
//! the trim does nothing. mimalloc was tried instead and kept more (52 MB after the same flood,
//! from a 25 MB start).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How far the open-connection count must fall from its peak before a trim.
pub const TRIM_AFTER_DROP: usize = 256;
/// How often the count is looked at.
pub const TRIM_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Open connections and their high-water mark since the last trim.
#[derive(Debug, Default)]
pub struct ConnectionCount {
    open: AtomicUsize,
    high: AtomicUsize,
}

impl ConnectionCount {
    /// A connection opened.
    pub fn opened(&self) {
        let now = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.high.fetch_max(now, Ordering::Relaxed);
    }

    /// A connection closed.
    pub fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether a burst has passed: if so, the mark restarts from the current count.
    pub fn burst_passed(&self) -> bool {
        let open = self.open.load(Ordering::Relaxed);
        let high = self.high.load(Ordering::Relaxed);
        if high >= open + TRIM_AFTER_DROP {
            self.high.store(open, Ordering::Relaxed);
            return true;
        }
        false
    }
}

/// Returns freed heap memory to the operating system (glibc only).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas; it takes
    // no pointer and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Trims after each burst, until the task is stopped.
pub async fn trim_after_bursts(count: Arc<ConnectionCount>) {
    let mut tick = tokio::time::interval(TRIM_CHECK_EVERY);
    loop {
        tick.tick().await;
        if count.burst_passed() {
            trim();
            tracing::debug!("freed memory returned after a burst of connections");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_once_the_count_falls_from_its_peak() {
        let count = ConnectionCount::default();
        for _ in 0..300 {
            count.opened();
        }
        assert!(!count.burst_passed(), "still open");
        for _ in 0..290 {
            count.closed();
        }
        assert!(count.burst_passed());
        assert!(!count.burst_passed(), "the mark restarted");
        trim();
    }
}
