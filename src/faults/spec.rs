//! What the fault driver is asked to create: proxies and toxics, typed, with the checks that
//! keep them sendable through `toxiproxy_rust` (whose attributes are `u32`).
//!
//! Control plane: scenario steps and the lab build these; the driver
//! ([`super::FaultDriver`]) sends them and compares what it reads back against them.

use crate::proxy::model::{Stream, ToxicKind};

use super::error::FaultError;

/// A proxy to ensure: `listen` on this side, forwarding to `upstream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySpec {
    /// Its name (for the lab, one of [`super::LAB_PROXIES`]).
    pub name: String,
    /// `host:port` to listen on; port 0 lets the server choose.
    pub listen: String,
    /// `host:port` to forward to.
    pub upstream: String,
}

impl ProxySpec {
    /// A proxy spec.
    pub fn new(name: &str, listen: &str, upstream: &str) -> ProxySpec {
        ProxySpec {
            name: name.to_string(),
            listen: listen.to_string(),
            upstream: upstream.to_string(),
        }
    }
}

/// A toxic to add or update. Its name is Toxiproxy's default, `<type>_<stream>`, so a
/// proxy holds at most one toxic of a type per direction (what `toxiproxy_rust` creates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToxicSpec {
    /// Type and attributes.
    pub kind: ToxicKind,
    /// Direction.
    pub stream: Stream,
    /// Probability (0 to 1) that a connection gets it.
    pub toxicity: f32,
}

impl ToxicSpec {
    /// A toxic on every connection (toxicity 1).
    pub fn new(kind: ToxicKind, stream: Stream) -> ToxicSpec {
        ToxicSpec {
            kind,
            stream,
            toxicity: 1.0,
        }
    }

    /// The same toxic with another toxicity.
    pub fn with_toxicity(self, toxicity: f32) -> ToxicSpec {
        ToxicSpec { toxicity, ..self }
    }

    /// Its name on the proxy: `<type>_<stream>`.
    pub fn name(&self) -> String {
        format!("{}_{}", self.kind.type_name(), self.stream.as_str())
    }

    /// The attributes as `toxiproxy_rust` sends them.
    pub fn attributes_u32(&self) -> Result<Vec<(&'static str, u32)>, FaultError> {
        self.kind
            .fields()
            .into_iter()
            .map(|(name, value)| {
                u32::try_from(value)
                    .map(|v| (name, v))
                    .map_err(|_| FaultError::InvalidSpec {
                        what: format!("toxic {}", self.name()),
                        reason: format!("{name} = {value} is outside 0..={}", u32::MAX),
                    })
            })
            .collect()
    }

    /// Checks that the toxic can be sent as asked.
    pub fn validate(&self) -> Result<(), FaultError> {
        if !(0.0..=1.0).contains(&self.toxicity) {
            return Err(FaultError::InvalidSpec {
                what: format!("toxic {}", self.name()),
                reason: format!("toxicity {} is outside 0..=1", self.toxicity),
            });
        }
        self.attributes_u32().map(drop)
    }

    /// The value of attribute `name` (for the helpers that take them one by one).
    pub fn attr(&self, name: &str) -> u32 {
        self.attributes_u32()
            .ok()
            .and_then(|a| a.into_iter().find(|(n, _)| *n == name).map(|(_, v)| v))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn names_and_ranges() -> TestResult {
        let t = ToxicSpec::new(
            ToxicKind::Latency {
                latency: 200,
                jitter: 10,
            },
            Stream::Upstream,
        );
        assert_eq!(t.name(), "latency_upstream");
        assert_eq!(t.attr("latency"), 200);
        t.validate()?;
        assert!(t.with_toxicity(1.5).validate().is_err());
        let negative = ToxicSpec::new(ToxicKind::Timeout { timeout: -1 }, Stream::Downstream);
        assert!(matches!(
            negative.validate(),
            Err(FaultError::InvalidSpec { .. })
        ));
        Ok(())
    }
}
