//! The rate limit per client address (`RATE_LIMIT_PER_MINUTE`, `RATE_LIMIT_PER_HOUR`).
//!
//! Data path: the very top, before the router: a request over the limit is answered 429 with
//! `Retry-After` (whole seconds until the request would be allowed) and counted in
//! `rate_limited_total`, and no handler runs. The limiters are governor's keyed GCRA
//! limiters: "100 a minute" allows a burst of 100 and then one more every 0.6 s, so a client
//! is never locked out for a whole window the way a fixed-window counter does. A request must
//! pass both limits (the minute one is asked first). IPv6 clients are keyed by their /64
//! prefix, the smallest block one host is usually given, so a host cannot walk its own
//! addresses to escape the limit. `/health`, `/ready` and `/metrics` are never limited:
//! probes and scrapes must keep working when a client is being throttled.
//!
//! The address is the TCP peer's: behind a proxy or Docker's published ports every client
//! shares the proxy's address, which is why the limit is off by default (docs/decisions.md).

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::config::RateLimit;

type Keyed = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

/// Per-address limiters for the configured quotas.
#[derive(Debug)]
pub struct AddressLimiter {
    per_minute: Option<Keyed>,
    per_hour: Option<Keyed>,
    clock: DefaultClock,
}

/// Paths never limited.
pub fn is_exempt(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics")
}

/// The key of a client address: IPv4 as is (also when mapped into IPv6), IPv6 by its /64.
pub fn key_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

impl AddressLimiter {
    /// The limiters of `limit`, or `None` when it is off.
    pub fn new(limit: RateLimit) -> Option<AddressLimiter> {
        if !limit.is_on() {
            return None;
        }
        let clock = DefaultClock::default();
        let keyed =
            |quota: Option<Quota>| quota.map(|q| RateLimiter::dashmap_with_clock(q, clock.clone()));
        Some(AddressLimiter {
            per_minute: keyed(NonZeroU32::new(limit.per_minute).map(Quota::per_minute)),
            per_hour: keyed(NonZeroU32::new(limit.per_hour).map(Quota::per_hour)),
            clock,
        })
    }

    /// Counts one request from `ip`: `Err(retry_after)` when it is over a limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let key = key_of(ip);
        for limiter in [&self.per_minute, &self.per_hour].into_iter().flatten() {
            if let Err(not_until) = limiter.check_key(&key) {
                return Err(not_until.wait_time_from(self.clock.now()));
            }
        }
        Ok(())
    }

    /// Forgets addresses whose limits are back to full, so the state does not grow with every
    /// address ever seen (run periodically).
    pub fn forget_idle(&self) {
        for limiter in [&self.per_minute, &self.per_hour].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Addresses currently tracked (the larger of the two limiters).
    pub fn tracked(&self) -> usize {
        [&self.per_minute, &self.per_hour]
            .into_iter()
            .flatten()
            .map(|l| l.len())
            .max()
            .unwrap_or(0)
    }
}

/// How often addresses whose quota is full again are forgotten.
const FORGET_IDLE_EVERY: Duration = Duration::from_secs(60);

/// Forgets idle addresses every minute, until the task is stopped.
pub async fn forget_idle_periodically(limiter: Arc<AddressLimiter>) {
    let mut tick = tokio::time::interval(FORGET_IDLE_EVERY);
    loop {
        tick.tick().await;
        limiter.forget_idle();
    }
}

/// `Retry-After` for a wait: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_minute_quota_passes_then_the_next_waits_its_share() {
        let Some(limiter) = AddressLimiter::new(RateLimit {
            per_minute: 3,
            per_hour: 0,
        }) else {
            panic!("a limit of 3 is on");
        };
        let a: IpAddr = "192.0.2.1".parse().unwrap_or(IpAddr::V4([0; 4].into()));
        let b: IpAddr = "192.0.2.2".parse().unwrap_or(IpAddr::V4([0; 4].into()));
        for _ in 0..3 {
            assert_eq!(limiter.check(a), Ok(()));
        }
        let Err(wait) = limiter.check(a) else {
            panic!("the fourth request passed");
        };
        // One request every 20 s replenishes.
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert_eq!(retry_after_secs(wait), wait.as_secs() + 1);
        assert_eq!(
            limiter.check(b),
            Ok(()),
            "another address has its own quota"
        );
        assert_eq!(limiter.tracked(), 2);
    }

    #[test]
    fn the_hour_quota_applies_too_and_off_is_none() {
        assert!(AddressLimiter::new(RateLimit::default()).is_none());
        let Some(limiter) = AddressLimiter::new(RateLimit {
            per_minute: 0,
            per_hour: 2,
        }) else {
            panic!("a limit of 2 is on");
        };
        let a = IpAddr::V4([192, 0, 2, 9].into());
        assert!(limiter.check(a).is_ok() && limiter.check(a).is_ok());
        let Err(wait) = limiter.check(a) else {
            panic!("the third request passed");
        };
        assert!(wait > Duration::from_secs(1700), "{wait:?}");
    }

    #[test]
    fn ipv6_hosts_share_their_64_and_mapped_v4_is_v4() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::V6(Ipv6Addr::LOCALHOST));
        let two: IpAddr = "2001:db8:1:2:bbbb::2"
            .parse()
            .unwrap_or(IpAddr::V6(Ipv6Addr::LOCALHOST));
        let other: IpAddr = "2001:db8:1:3::1"
            .parse()
            .unwrap_or(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(key_of(one), key_of(two));
        assert_ne!(key_of(one), key_of(other));
        let mapped: IpAddr = "::ffff:192.0.2.7"
            .parse()
            .unwrap_or(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(key_of(mapped), IpAddr::V4([192, 0, 2, 7].into()));
        assert!(is_exempt("/health") && !is_exempt("/read/k"));
    }
}
