//! What the console reads from an app's `/metrics`: the request counters and the latency
//! histogram of reads and writes, and the stale-read counter, turned into per-tick rates,
//! availability and p50/p99 by the difference between two scrapes.
//!
//! Beside the data path: the apps' own Prometheus text, parsed for the few series the page
//! shows (names from [`crate::metrics`]). Percentiles are interpolated inside the histogram
//! bucket the rank falls in, as Prometheus's `histogram_quantile` does, so they are as
//! coarse as the buckets.

use crate::metrics::{REQUEST_LATENCY, REQUESTS_TOTAL, STALE_READS};

/// The counters of one scrape, summed over reads and writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// Read and write requests answered.
    pub requests: f64,
    /// Of those, answered as available: 200, 202 (AP queued) or a read's 404.
    pub available: f64,
    /// Cumulative latency buckets `(le, count)`, ascending, `+Inf` last.
    pub buckets: Vec<(f64, f64)>,
    /// `stale_reads_total`, every node.
    pub stale_reads: f64,
}

/// The value of a label in a `{a="x",b="y"}` list.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// One sample line: name, labels (without braces) and value.
fn sample(line: &str) -> Option<(&str, &str, f64)> {
    if line.starts_with('#') {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        v => v.parse().ok()?,
    };
    match series.split_once('{') {
        Some((name, rest)) => Some((name, rest.strip_suffix('}')?, value)),
        None => Some((series, "", value)),
    }
}

fn is_data_operation(labels: &str) -> bool {
    matches!(label(labels, "operation"), Some("read" | "write"))
}

impl Scrape {
    /// Reads the series the console needs from Prometheus text.
    pub fn parse(text: &str) -> Scrape {
        let mut scrape = Scrape::default();
        let bucket_name = format!("{REQUEST_LATENCY}_bucket");
        for (name, labels, value) in text.lines().filter_map(sample) {
            if name == REQUESTS_TOTAL && is_data_operation(labels) {
                scrape.requests += value;
                let status = label(labels, "status").unwrap_or("");
                let read = label(labels, "operation") == Some("read");
                if status == "200" || status == "202" || (read && status == "404") {
                    scrape.available += value;
                }
            } else if name == bucket_name && is_data_operation(labels) {
                let le = match label(labels, "le") {
                    Some("+Inf") => f64::INFINITY,
                    Some(le) => match le.parse() {
                        Ok(le) => le,
                        Err(_) => continue,
                    },
                    None => continue,
                };
                match scrape.buckets.iter_mut().find(|(b, _)| *b == le) {
                    Some((_, count)) => *count += value,
                    None => scrape.buckets.push((le, value)),
                }
            } else if name == STALE_READS {
                scrape.stale_reads += value;
            }
        }
        scrape.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        scrape
    }
}

/// What happened between two scrapes `seconds` apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Rates {
    /// Read and write requests per second.
    pub requests_per_s: f64,
    /// Available answers / answers, `None` when there were none.
    pub availability: Option<f64>,
    /// Median latency, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
    /// Stale reads (`"stale": true` answers) per second.
    pub stale_reads_per_s: f64,
}

impl Rates {
    /// The rates from `before` to `now`. A counter that went down (the app restarted) counts
    /// as starting again from zero.
    pub fn between(before: &Scrape, now: &Scrape, seconds: f64) -> Rates {
        let delta = |a: f64, b: f64| if b >= a { b - a } else { b };
        let seconds = seconds.max(1e-3);
        let requests = delta(before.requests, now.requests);
        let available = delta(before.available, now.available);
        let buckets: Vec<(f64, f64)> = now
            .buckets
            .iter()
            .map(|&(le, count)| {
                let old = before
                    .buckets
                    .iter()
                    .find(|(b, _)| *b == le)
                    .map_or(0.0, |(_, c)| *c);
                (le, delta(old, count))
            })
            .collect();
        Rates {
            requests_per_s: requests / seconds,
            availability: (requests > 0.0).then(|| (available / requests).min(1.0)),
            p50_ms: quantile(0.5, &buckets).map(|s| s * 1000.0),
            p99_ms: quantile(0.99, &buckets).map(|s| s * 1000.0),
            stale_reads_per_s: delta(before.stale_reads, now.stale_reads) / seconds,
        }
    }
}

/// The `q` quantile of cumulative buckets `(le, count)`, ascending with `+Inf` last: linear
/// inside the bucket the rank falls in; the highest finite bound when it falls in `+Inf`.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let in_bucket = count - lower.1;
            let fraction = if in_bucket > 0.0 {
                (rank - lower.1) / in_bucket
            } else {
                1.0
            };
            return Some(lower.0 + (le - lower.0) * fraction);
        }
        lower = (le, count);
    }
    Some(lower.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP app_requests_total x
app_requests_total{mode="ap",operation="read",status="200"} 90
app_requests_total{mode="ap",operation="read",status="404"} 5
app_requests_total{mode="ap",operation="write",status="202"} 3
app_requests_total{mode="ap",operation="write",status="503"} 2
app_requests_total{mode="ap",operation="metrics",status="200"} 1000
app_request_latency_seconds_bucket{mode="ap",operation="read",le="0.001"} 50
app_request_latency_seconds_bucket{mode="ap",operation="read",le="0.01"} 95
app_request_latency_seconds_bucket{mode="ap",operation="read",le="+Inf"} 95
app_request_latency_seconds_bucket{mode="ap",operation="write",le="0.001"} 0
app_request_latency_seconds_bucket{mode="ap",operation="write",le="0.01"} 5
app_request_latency_seconds_bucket{mode="ap",operation="write",le="+Inf"} 5
app_request_latency_seconds_bucket{mode="ap",operation="metrics",le="+Inf"} 1000
stale_reads_total{mode="ap",node="g2"} 7
stale_reads_total{mode="ap",node="g1"} 1
"#;

    #[test]
    fn reads_and_writes_are_counted_and_status_calls_are_not() {
        let s = Scrape::parse(TEXT);
        assert_eq!(s.requests, 100.0);
        assert_eq!(s.available, 98.0);
        assert_eq!(
            s.buckets,
            vec![(0.001, 50.0), (0.01, 100.0), (f64::INFINITY, 100.0)]
        );
        assert_eq!(s.stale_reads, 8.0);
    }

    #[test]
    fn rates_come_from_the_difference_between_scrapes() {
        let before = Scrape {
            requests: 40.0,
            available: 40.0,
            buckets: vec![(0.001, 40.0), (0.01, 40.0), (f64::INFINITY, 40.0)],
            stale_reads: 2.0,
        };
        let now = Scrape::parse(TEXT);
        let r = Rates::between(&before, &now, 0.5);
        assert_eq!(r.requests_per_s, 120.0);
        assert_eq!(r.availability, Some(58.0 / 60.0));
        // 60 new answers: 10 under 1 ms, 50 between 1 and 10 ms.
        let p50 = r.p50_ms.unwrap_or_default();
        assert!((p50 - (1.0 + 9.0 * 20.0 / 50.0)).abs() < 1e-9, "{p50}");
        assert!(r.p99_ms.unwrap_or_default() > 9.0);
        assert_eq!(r.stale_reads_per_s, 12.0);
        let idle = Rates::between(&now, &now, 0.5);
        assert_eq!((idle.availability, idle.p50_ms), (None, None));
    }

    #[test]
    fn a_restarted_app_counts_from_zero() {
        let now = Scrape::parse(TEXT);
        let later = Scrape {
            requests: 4.0,
            available: 2.0,
            ..Scrape::default()
        };
        let r = Rates::between(&now, &later, 1.0);
        assert_eq!((r.requests_per_s, r.availability), (4.0, Some(0.5)));
    }

    #[test]
    fn quantiles_interpolate_inside_a_bucket() {
        let b = [(0.1, 10.0), (0.2, 20.0), (f64::INFINITY, 20.0)];
        assert_eq!(quantile(0.5, &b), Some(0.1));
        assert_eq!(quantile(0.75, &b), Some(0.15000000000000002));
        assert_eq!(quantile(0.5, &[(f64::INFINITY, 0.0)]), None);
        assert_eq!(
            quantile(0.99, &[(0.1, 1.0), (f64::INFINITY, 100.0)]),
            Some(0.1)
        );
    }
}
