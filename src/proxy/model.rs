//! The wire model of the Toxiproxy 2.x HTTP API: proxies, toxics and their typed attributes.
//!
//! Control plane only, never on the data path: the API handlers ([`super::api`]) turn request
//! bodies into these types, the registry ([`super::registry`]) stores them, and the per-connection
//! links ([`super::link`]) read a snapshot of them when the chain changes. The fault driver
//! ([`crate::faults`]) speaks the same model to any Toxiproxy, so a scenario's toxic maps to one
//! [`ToxicKind`] whichever server runs it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Which way through a proxy a toxic acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Client to upstream (requests).
    Upstream,
    /// Upstream to client (answers); Toxiproxy's default.
    Downstream,
}

impl Stream {
    /// Toxiproxy's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }

    /// Parses a stream name, case-insensitively, as Toxiproxy does.
    pub fn parse(s: &str) -> Option<Stream> {
        match s.to_ascii_lowercase().as_str() {
            "upstream" => Some(Stream::Upstream),
            "downstream" => Some(Stream::Downstream),
            _ => None,
        }
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A toxic's type with its attributes, as Toxiproxy names them. Times are milliseconds except
/// the slicer's `delay` (microseconds); `bandwidth.rate` is KB/s (1 KB = 1000 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToxicKind {
    /// Delays each chunk by `latency` ± `jitter` ms from the time it arrived.
    Latency { latency: i64, jitter: i64 },
    /// Passes at most `rate` KB/s; 0 or less is unlimited.
    Bandwidth { rate: i64 },
    /// Delays the close of the connection by `delay` ms.
    SlowClose { delay: i64 },
    /// Drops all data; closes the connection after `timeout` ms without data (never when 0).
    Timeout { timeout: i64 },
    /// Resets the connection (TCP RST) `timeout` ms after data first arrives.
    ResetPeer { timeout: i64 },
    /// Cuts data into slices of `average_size` ± `size_variation` bytes, `delay` µs apart.
    Slicer {
        average_size: i64,
        size_variation: i64,
        delay: i64,
    },
    /// Closes the connection once `bytes` bytes have passed.
    LimitData { bytes: i64 },
    /// Passes everything through untouched.
    Noop,
}

/// An attribute that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    /// The type is not one this server knows.
    #[error("invalid toxic type {0:?}")]
    UnknownType(String),
    /// `attributes` is not a JSON object.
    #[error("attributes must be a JSON object, got {0}")]
    NotAnObject(String),
    /// An attribute is not an integer.
    #[error("attribute {name:?} of a {toxic} toxic must be an integer, got {got}")]
    NotAnInteger {
        /// The toxic type.
        toxic: &'static str,
        /// The attribute.
        name: &'static str,
        /// What was sent.
        got: String,
    },
}

impl ToxicKind {
    /// Every type this server implements, by Toxiproxy name.
    pub const TYPES: [&'static str; 8] = [
        "latency",
        "bandwidth",
        "slow_close",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
        "noop",
    ];

    /// The type with every attribute zero, as Toxiproxy starts a new toxic before reading its
    /// attributes.
    pub fn zeroed(type_name: &str) -> Result<ToxicKind, AttributeError> {
        Ok(match type_name {
            "latency" => ToxicKind::Latency {
                latency: 0,
                jitter: 0,
            },
            "bandwidth" => ToxicKind::Bandwidth { rate: 0 },
            "slow_close" => ToxicKind::SlowClose { delay: 0 },
            "timeout" => ToxicKind::Timeout { timeout: 0 },
            "reset_peer" => ToxicKind::ResetPeer { timeout: 0 },
            "slicer" => ToxicKind::Slicer {
                average_size: 0,
                size_variation: 0,
                delay: 0,
            },
            "limit_data" => ToxicKind::LimitData { bytes: 0 },
            "noop" => ToxicKind::Noop,
            other => return Err(AttributeError::UnknownType(other.to_string())),
        })
    }

    /// Toxiproxy's name of the type.
    pub fn type_name(&self) -> &'static str {
        match self {
            ToxicKind::Latency { .. } => "latency",
            ToxicKind::Bandwidth { .. } => "bandwidth",
            ToxicKind::SlowClose { .. } => "slow_close",
            ToxicKind::Timeout { .. } => "timeout",
            ToxicKind::ResetPeer { .. } => "reset_peer",
            ToxicKind::Slicer { .. } => "slicer",
            ToxicKind::LimitData { .. } => "limit_data",
            ToxicKind::Noop => "noop",
        }
    }

    /// The attributes as (name, value) pairs, in Toxiproxy's order.
    pub fn fields(&self) -> Vec<(&'static str, i64)> {
        let mut copy = *self;
        copy.fields_mut()
            .into_iter()
            .map(|(n, v)| (n, *v))
            .collect()
    }

    fn fields_mut(&mut self) -> Vec<(&'static str, &mut i64)> {
        match self {
            ToxicKind::Latency { latency, jitter } => {
                vec![("latency", latency), ("jitter", jitter)]
            }
            ToxicKind::Bandwidth { rate } => vec![("rate", rate)],
            ToxicKind::SlowClose { delay } => vec![("delay", delay)],
            ToxicKind::Timeout { timeout } | ToxicKind::ResetPeer { timeout } => {
                vec![("timeout", timeout)]
            }
            ToxicKind::Slicer {
                average_size,
                size_variation,
                delay,
            } => vec![
                ("average_size", average_size),
                ("size_variation", size_variation),
                ("delay", delay),
            ],
            ToxicKind::LimitData { bytes } => vec![("bytes", bytes)],
            ToxicKind::Noop => vec![],
        }
    }

    /// The attributes as a JSON object.
    pub fn attributes(&self) -> Map<String, Value> {
        self.fields()
            .into_iter()
            .map(|(n, v)| (n.to_string(), Value::from(v)))
            .collect()
    }

    /// Overwrites the attributes named in `attrs` and keeps the others, as Toxiproxy decodes a
    /// body over the current toxic (so a partial update keeps unnamed fields). Unknown names
    /// and `null` are ignored, as Go's decoder does.
    pub fn merge(&mut self, attrs: &Value) -> Result<(), AttributeError> {
        let map = match attrs {
            Value::Null => return Ok(()),
            Value::Object(map) => map,
            other => return Err(AttributeError::NotAnObject(other.to_string())),
        };
        let toxic = self.type_name();
        for (name, slot) in self.fields_mut() {
            match map.get(name) {
                None | Some(Value::Null) => {}
                Some(v) => {
                    *slot = v.as_i64().ok_or_else(|| AttributeError::NotAnInteger {
                        toxic,
                        name,
                        got: v.to_string(),
                    })?
                }
            }
        }
        Ok(())
    }
}

/// A toxic as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToxicJson {
    /// Unique within its proxy; defaults to `<type>_<stream>`.
    pub name: String,
    /// The toxic type, such as `latency`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `upstream` or `downstream`.
    pub stream: String,
    /// Probability (0 to 1) that a connection gets this toxic.
    pub toxicity: f32,
    /// The type's attributes.
    pub attributes: Map<String, Value>,
}

/// A proxy as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyJson {
    /// Unique name.
    pub name: String,
    /// The address it listens on (the bound address once it has listened).
    pub listen: String,
    /// Where it forwards to.
    pub upstream: String,
    /// Whether it accepts connections.
    pub enabled: bool,
    /// Its toxics, upstream ones first, each stream in the order they were added.
    pub toxics: Vec<ToxicJson>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn merge_keeps_unnamed_attributes_and_rejects_non_integers() -> TestResult {
        let mut k = ToxicKind::zeroed("latency")?;
        k.merge(&json!({"latency": 200, "jitter": 10}))?;
        k.merge(&json!({"jitter": 5, "unknown": "x"}))?;
        assert_eq!(
            k,
            ToxicKind::Latency {
                latency: 200,
                jitter: 5
            }
        );
        let Err(err) = k.merge(&json!({"latency": "slow"})) else {
            return Err("expected a string latency to be rejected".into());
        };
        assert!(err.to_string().contains("latency"), "{err}");
        assert!(k.merge(&json!({"latency": 1.5})).is_err());
        assert!(k.merge(&json!([1])).is_err());
        assert!(ToxicKind::zeroed("explode").is_err());
        Ok(())
    }

    #[test]
    fn every_type_round_trips_its_name_and_attributes() -> TestResult {
        for t in ToxicKind::TYPES {
            let k = ToxicKind::zeroed(t)?;
            assert_eq!(k.type_name(), t);
            let mut again = ToxicKind::zeroed(t)?;
            again.merge(&Value::Object(k.attributes()))?;
            assert_eq!(again, k);
        }
        assert_eq!(Stream::parse("UpStream"), Some(Stream::Upstream));
        assert_eq!(Stream::parse("sideways"), None);
        Ok(())
    }
}
