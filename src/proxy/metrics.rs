//! The proxy's own Prometheus registry, served on the API's `/metrics` as Toxiproxy serves it
//! with `-proxy-metrics` and `-runtime-metrics`. Every name is defined once, here.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `toxiproxy_proxy_received_bytes_total` | counter | direction, listener, proxy, upstream |
//! | `toxiproxy_proxy_sent_bytes_total` | counter | direction, listener, proxy, upstream |
//! | `process_*` (runtime metrics only) | the prometheus crate's process collector | none |
//!
//! Beside the data path: a proxy that starts listening takes its four counters here once
//! ([`ProxyMetrics::counters`]), and each link of each connection adds to two of them per
//! chunk, one atomic add each (received when read, sent when written). `direction` is
//! `upstream` (client to upstream) or `downstream`; `listener` is the bound listen address.

use prometheus::{Encoder, IntCounter, IntCounterVec, Opts, Registry, TextEncoder};

use super::model::Stream;

/// `toxiproxy_proxy_received_bytes_total`: bytes read from the source of a direction.
pub const RECEIVED_BYTES: &str = "toxiproxy_proxy_received_bytes_total";
/// `toxiproxy_proxy_sent_bytes_total`: bytes written to the destination of a direction.
pub const SENT_BYTES: &str = "toxiproxy_proxy_sent_bytes_total";
/// The proxy's metric names (the runtime ones come from the prometheus crate).
pub const ALL_NAMES: &[&str] = &[RECEIVED_BYTES, SENT_BYTES];
/// Toxiproxy's labels of both counters.
pub const LABELS: &[&str] = &["direction", "proxy", "listener", "upstream"];

/// Which metrics `/metrics` serves; with neither, there is no `/metrics` (as Toxiproxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsOptions {
    /// Bytes per proxy and direction (`-proxy-metrics`).
    pub proxy: bool,
    /// The process's CPU, memory, threads and file descriptors (`-runtime-metrics`).
    pub runtime: bool,
}

/// The registry and the byte counters.
pub struct ProxyMetrics {
    registry: Registry,
    bytes: Option<(IntCounterVec, IntCounterVec)>,
}

/// The counters of one direction of one proxy.
#[derive(Clone)]
pub struct DirectionCounters {
    /// Bytes read from the direction's source.
    pub received: IntCounter,
    /// Bytes written to the direction's destination.
    pub sent: IntCounter,
}

/// The counters of both directions of one listening proxy, cloned into each connection.
#[derive(Clone)]
pub struct ProxyCounters {
    /// Client to upstream.
    pub upstream: DirectionCounters,
    /// Upstream to client.
    pub downstream: DirectionCounters,
}

impl ProxyMetrics {
    /// A registry with what `options` asks for.
    pub fn new(options: MetricsOptions) -> Result<ProxyMetrics, prometheus::Error> {
        let registry = Registry::new();
        let bytes = if options.proxy {
            let received = IntCounterVec::new(
                Opts::new(
                    RECEIVED_BYTES,
                    "Bytes read from the source of each proxy and direction.",
                ),
                LABELS,
            )?;
            let sent = IntCounterVec::new(
                Opts::new(
                    SENT_BYTES,
                    "Bytes written to the destination of each proxy and direction.",
                ),
                LABELS,
            )?;
            registry.register(Box::new(received.clone()))?;
            registry.register(Box::new(sent.clone()))?;
            Some((received, sent))
        } else {
            None
        };
        if options.runtime {
            registry.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))?;
        }
        Ok(ProxyMetrics { registry, bytes })
    }

    /// The counters of a proxy that starts listening on `listener`; their series appear at 0
    /// at once. `None` when byte metrics are off (the links then count nothing).
    pub fn counters(&self, proxy: &str, listener: &str, upstream: &str) -> Option<ProxyCounters> {
        let (received, sent) = self.bytes.as_ref()?;
        let direction = |stream: Stream| {
            let values = [stream.as_str(), proxy, listener, upstream];
            DirectionCounters {
                received: received.with_label_values(&values),
                sent: sent.with_label_values(&values),
            }
        };
        Some(ProxyCounters {
            upstream: direction(Stream::Upstream),
            downstream: direction(Stream::Downstream),
        })
    }

    /// The text exposition format of everything registered.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn counters_carry_toxiproxys_names_and_labels() -> TestResult {
        let m = ProxyMetrics::new(MetricsOptions {
            proxy: true,
            runtime: false,
        })?;
        let c = m
            .counters("g1", "127.0.0.1:26379", "127.0.0.1:16379")
            .ok_or("no counters")?;
        c.upstream.received.inc_by(7);
        c.downstream.sent.inc_by(5);
        let text = m.render()?;
        assert!(text.contains(
            "toxiproxy_proxy_received_bytes_total{direction=\"upstream\",listener=\"127.0.0.1:26379\",proxy=\"g1\",upstream=\"127.0.0.1:16379\"} 7"
        ), "{text}");
        assert!(text.contains(
            "toxiproxy_proxy_sent_bytes_total{direction=\"downstream\",listener=\"127.0.0.1:26379\",proxy=\"g1\",upstream=\"127.0.0.1:16379\"} 5"
        ), "{text}");
        assert!(!text.contains("process_"), "{text}");
        Ok(())
    }

    #[test]
    fn runtime_metrics_alone_count_no_bytes() -> TestResult {
        let m = ProxyMetrics::new(MetricsOptions {
            proxy: false,
            runtime: true,
        })?;
        assert!(m.counters("g1", "a", "b").is_none());
        let text = m.render()?;
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
        assert!(!text.contains("toxiproxy_"), "{text}");
        Ok(())
    }
}
