//! The sampler: every quarter second, each target's breaker states (`GET /circuit-breaker`)
//! and what `GET /replication` says of the pair (the believed primary, whether it has a linked
//! replica, each node's measured staleness), for the report's plots, `converge_ms` and the
//! failover measures ([`super::failover`]).
//!
//! Where it sits: beside the load, on its own short-timeout requests; a sample that does not
//! come back in time is simply missing (a gap in the plot), never a failed operation.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::spec::Target;

/// How often the sampler asks.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// One sample of one target.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sample {
    /// Offset from the start of the load, ms.
    pub t_ms: u64,
    /// Breaker name to state: 0 closed, 1 half-open, 2 open (the metric's encoding).
    pub breakers: BTreeMap<String, u8>,
    /// g2's staleness as the target measures it, ms.
    pub g2_staleness_ms: Option<u64>,
    /// The pair as the target sees it (`None`: `/replication` did not answer in time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pair: Option<PairView>,
}

/// What one target's `GET /replication` says of the pair.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PairView {
    /// The node the target believes is primary (`g1`, `g2`).
    pub primary: String,
    /// The believed primary says `primary`, the other node says `replica` with its link up:
    /// a second copy can be made.
    pub whole: bool,
    /// The other node's measured staleness, ms.
    pub replica_staleness_ms: Option<u64>,
    /// When the target's replication poll that saw the roles and the link was made, Unix ms
    /// (the view is as of then, up to `REPLICATION_POLL_MS` before the sample).
    pub polled_at_unix_ms: Option<u64>,
}

impl PairView {
    /// Reads a `/replication` body; `None` when it lacks the believed primary.
    pub fn parse(r: &serde_json::Value) -> Option<PairView> {
        let primary = r.get("primary")?.as_str()?.to_string();
        let other = if primary == "g1" { "g2" } else { "g1" };
        let role = |n: &str| {
            r.get("roles")
                .and_then(|x| x.get(n))
                .and_then(|v| v.as_str())
        };
        let whole = role(&primary) == Some("primary")
            && role(other) == Some("replica")
            && r.get("link_status").and_then(|v| v.as_str()) == Some("up");
        let replica_staleness_ms = r
            .get("staleness_ms")
            .and_then(|s| s.get(other))
            .and_then(|v| v.as_u64());
        let polled_at_unix_ms = r
            .get("poll")
            .and_then(|p| p.get("polled_at_unix_ms"))
            .and_then(|v| v.as_u64());
        Some(PairView {
            primary,
            whole,
            replica_staleness_ms,
            polled_at_unix_ms,
        })
    }

    /// Whole, and the replica caught up (staleness at most [`CAUGHT_UP_MS`]).
    pub fn settled(&self) -> bool {
        self.whole && self.replica_staleness_ms.is_some_and(|s| s <= CAUGHT_UP_MS)
    }
}

/// `closed` 0, `half_open` 1, `open` 2 (`circuit_breaker_state`'s values).
pub fn breaker_code(state: &str) -> Option<u8> {
    match state.to_ascii_lowercase().as_str() {
        "closed" => Some(0),
        "half_open" | "half-open" | "halfopen" => Some(1),
        "open" => Some(2),
        _ => None,
    }
}

/// Takes one sample of the target at `base`.
pub async fn sample(http: &reqwest::Client, base: &str, t_ms: u64) -> Sample {
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move {
            let resp = http
                .get(url)
                .timeout(Duration::from_millis(400))
                .send()
                .await
                .ok()?;
            resp.json::<serde_json::Value>().await.ok()
        }
    };
    let (breakers, replication) = futures::join!(get("/circuit-breaker"), get("/replication"));
    let breakers = breakers
        .as_ref()
        .and_then(|b| b.get("breakers"))
        .and_then(|b| b.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(name, b)| {
                    let state = b.get("state")?.as_str()?;
                    Some((name.clone(), breaker_code(state)?))
                })
                .collect()
        })
        .unwrap_or_default();
    let g2_staleness_ms = replication
        .as_ref()
        .and_then(|r| r.get("staleness_ms"))
        .and_then(|s| s.get("g2"))
        .and_then(|v| v.as_u64());
    Sample {
        t_ms,
        breakers,
        g2_staleness_ms,
        pair: replication.as_ref().and_then(PairView::parse),
    }
}

/// The target at `base`'s view of the pair now (`None`: no answer within 400 ms).
pub async fn pair_view(http: &reqwest::Client, base: &str) -> Option<PairView> {
    let resp = http
        .get(format!("{base}/replication"))
        .timeout(Duration::from_millis(400))
        .send()
        .await
        .ok()?;
    PairView::parse(&resp.json::<serde_json::Value>().await.ok()?)
}

/// Samples every target until `until` (offset from `t0`); returns the samples per target.
pub async fn run(
    http: reqwest::Client,
    targets: Vec<(Target, String)>,
    t0: Instant,
    until: Duration,
) -> Vec<Vec<Sample>> {
    let mut out: Vec<Vec<Sample>> = targets.iter().map(|_| Vec::new()).collect();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let now = t0.elapsed();
        if now > until {
            return out;
        }
        let t_ms = now.as_millis() as u64;
        let samples =
            futures::future::join_all(targets.iter().map(|(_, base)| sample(&http, base, t_ms)))
                .await;
        for (slot, s) in out.iter_mut().zip(samples) {
            slot.push(s);
        }
    }
}

/// g2 counts as caught up once its measured staleness is at most this.
pub const CAUGHT_UP_MS: u64 = 500;

/// Time from `heal_ms` until the sampled replica staleness stayed at most [`CAUGHT_UP_MS`]:
/// the first sample after the last one above it (0 when none after the heal was above it;
/// `None` when the last sample is still above it). The replica is the node the target does
/// not believe primary (g2 until a failover, g1 after one); missing samples are skipped.
pub fn replica_caught_up(heal_ms: u64, samples: &[Sample]) -> Option<u64> {
    let after: Vec<(u64, u64)> = samples
        .iter()
        .filter(|s| s.t_ms >= heal_ms)
        .filter_map(|s| {
            let staleness = match &s.pair {
                Some(p) => p.replica_staleness_ms,
                None => s.g2_staleness_ms,
            };
            staleness.map(|v| (s.t_ms, v))
        })
        .collect();
    match after.iter().rposition(|(_, v)| *v > CAUGHT_UP_MS) {
        None => Some(0),
        Some(i) => after.get(i + 1).map(|(t, _)| t - heal_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t_ms: u64, g2: Option<u64>) -> Sample {
        Sample {
            t_ms,
            breakers: BTreeMap::new(),
            g2_staleness_ms: g2,
            pair: None,
        }
    }

    #[test]
    fn replica_catch_up_is_the_first_fresh_sample_after_the_last_stale_one() {
        let samples = [
            s(900, Some(9000)),
            s(1000, Some(9100)),
            s(1250, Some(800)),
            s(1500, None),
            s(1750, Some(90)),
            s(2000, Some(80)),
        ];
        assert_eq!(replica_caught_up(1000, &samples), Some(750));
        assert_eq!(replica_caught_up(1500, &samples), Some(0));
        assert_eq!(replica_caught_up(1000, &samples[..3]), None);
    }

    #[test]
    fn the_pair_is_whole_when_the_believed_primary_has_a_linked_replica() {
        let body = serde_json::json!({
            "primary": "g2",
            "roles": {"g1": "replica", "g2": "primary"},
            "link_status": "up",
            "staleness_ms": {"g1": 120, "g2": 3},
            "poll": {"polled_at_unix_ms": 1700000000123u64},
        });
        let view = PairView::parse(&body).unwrap(); // ok: test code
        assert_eq!(view.primary, "g2");
        assert!(view.whole && view.settled());
        assert_eq!(view.replica_staleness_ms, Some(120));
        assert_eq!(view.polled_at_unix_ms, Some(1_700_000_000_123));
        // Both say primary (the deposed one not yet reconfigured): not whole.
        let mut split = body.clone();
        split["roles"]["g1"] = "primary".into();
        assert!(!PairView::parse(&split).unwrap().whole); // ok: test code
        let mut down = body.clone();
        down["link_status"] = "down".into();
        assert!(!PairView::parse(&down).unwrap().whole); // ok: test code
        let mut behind = body;
        behind["staleness_ms"]["g1"] = 9000.into();
        assert!(!PairView::parse(&behind).unwrap().settled()); // ok: test code
        assert_eq!(PairView::parse(&serde_json::json!({})), None);
    }

    #[test]
    fn breaker_states_use_the_metric_encoding() {
        assert_eq!(breaker_code("closed"), Some(0));
        assert_eq!(breaker_code("half_open"), Some(1));
        assert_eq!(breaker_code("OPEN"), Some(2));
        assert_eq!(breaker_code("weird"), None);
    }
}
