//! The fault driver: how the rest of caplab talks to any Toxiproxy, the real one of
//! `docker-compose.yml` or `caplab proxy`.
//!
//! Control plane of the fault path: the scenario runner and the lab call
//! [`FaultDriver`] to create the lab's proxies ([`G1`], [`G2`], [`REPLICATION`]), take one
//! down and up, add, update and remove toxics ([`ToxicSpec`] over the typed
//! [`ToxicKind`]), and reset. It is built on the `toxiproxy_rust`
//! client, run off the async runtime with a fresh client per call, panics caught, and every
//! change confirmed by reading the proxy back.
//!
//! | module | what |
//! |---|---|
//! | [`driver`] | [`FaultDriver`], the async API |
//! | [`session`] | one blocking call: client, change, read-back |
//! | [`spec`] | [`ProxySpec`], [`ToxicSpec`] |
//! | [`error`] | [`FaultError`], definite or not |
//!
//! ```no_run
//! use caplab::faults::{FaultDriver, ProxySpec, Stream, ToxicKind, ToxicSpec, G1, G2, REPLICATION};
//! # async fn lab() -> Result<(), caplab::faults::FaultError> {
//! let toxiproxy = FaultDriver::new("127.0.0.1:8474")?;
//! toxiproxy
//!     .ensure_lab_proxies(&[
//!         ProxySpec::new(G1, "127.0.0.1:26379", "127.0.0.1:6379"),
//!         ProxySpec::new(G2, "127.0.0.1:26380", "127.0.0.1:6380"),
//!         ProxySpec::new(REPLICATION, "127.0.0.1:26381", "127.0.0.1:6379"),
//!     ])
//!     .await?;
//! let lag = ToxicKind::Latency { latency: 300, jitter: 20 };
//! toxiproxy.add_toxic(REPLICATION, ToxicSpec::new(lag, Stream::Downstream)).await?;
//! toxiproxy.set_enabled(G1, false).await?; // partition the apps from the primary
//! toxiproxy.reset().await?; // heal: everything enabled, no toxics
//! # Ok(()) }
//! ```

pub mod driver;
pub mod error;
pub mod session;
pub mod spec;

pub use driver::FaultDriver;
pub use error::FaultError;
pub use spec::{ProxySpec, ToxicSpec};

pub use crate::proxy::model::{Stream, ToxicKind};

/// The proxy between the apps and the primary `g1`.
pub const G1: &str = "g1";
/// The proxy between the apps and the replica `g2`.
pub const G2: &str = "g2";
/// The proxy through which `g2` replicates from `g1`.
pub const REPLICATION: &str = "replication";
/// The lab's proxies (docs/design.md's names).
pub const LAB_PROXIES: [&str; 3] = [G1, G2, REPLICATION];
/// Where Toxiproxy's API listens by default.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:8474";
