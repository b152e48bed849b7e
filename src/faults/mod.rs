//! The fault driver: how the rest of caplab talks to any Toxiproxy, the real one of
//! `docker-compose.yml` or `caplab proxy`.
//!
//! Control plane of the fault path: the scenario runner and the lab call
//! [`FaultDriver`] to create the lab's five proxies ([`LAB_PROXIES`]), take one down and up, add, update and remove toxics ([`ToxicSpec`] over the typed
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
//! use caplab::faults::{FaultDriver, ProxySpec, Stream, ToxicKind, ToxicSpec};
//! use caplab::faults::{CLUSTER_G1, CLUSTER_G2, G1, G2, SENTINELS};
//! # async fn lab() -> Result<(), caplab::faults::FaultError> {
//! let toxiproxy = FaultDriver::new("127.0.0.1:8474")?;
//! toxiproxy
//!     .ensure_lab_proxies(&[
//!         ProxySpec::new(G1, "127.0.0.1:26379", "127.0.0.1:16379"),
//!         ProxySpec::new(G2, "127.0.0.1:26380", "127.0.0.1:16380"),
//!         ProxySpec::new(CLUSTER_G1, "127.0.0.1:26381", "127.0.0.1:16379"),
//!         ProxySpec::new(CLUSTER_G2, "127.0.0.1:26382", "127.0.0.1:16380"),
//!         ProxySpec::new(SENTINELS, "127.0.0.1:26383", "127.0.0.1:16381"),
//!     ])
//!     .await?;
//! // Replication from g1 to g2 slows down (g2 is the proxy's client: downstream).
//! let lag = ToxicKind::Latency { latency: 300, jitter: 20 };
//! toxiproxy.add_toxic(CLUSTER_G1, ToxicSpec::new(lag, Stream::Downstream)).await?;
//! toxiproxy.set_enabled(CLUSTER_G1, false).await?; // isolate g1 from the cluster: split brain
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

/// The proxy between the apps and the node `g1` (whatever its role).
pub const G1: &str = "g1";
/// The proxy between the apps and the node `g2`.
pub const G2: &str = "g2";
/// The rest of the cluster to `g1`: the sentinels, and g2's replication while g1 is primary.
/// `g1` announces this proxy as its address.
pub const CLUSTER_G1: &str = "cluster_g1";
/// The rest of the cluster to `g2`: the sentinels, and g1's replication while g2 is primary.
pub const CLUSTER_G2: &str = "cluster_g2";
/// The apps to the sentinels (to `s1`).
pub const SENTINELS: &str = "sentinels";
/// The lab's proxies (docs/design.md's names), in the order of their default ports.
pub const LAB_PROXIES: [&str; 5] = [G1, G2, CLUSTER_G1, CLUSTER_G2, SENTINELS];
/// The name of the single replication proxy of earlier layouts, which scenario files may
/// still carry: replication now crosses `cluster_g1` (or `cluster_g2` after a failover).
pub const RETIRED_REPLICATION: &str = "replication";
/// What to write instead of [`RETIRED_REPLICATION`], for error messages.
pub const REPLICATION_MIGRATION: &str = "the proxy `replication` no longer exists: replication \
     crosses the primary's cluster link, `cluster_g1` (or `cluster_g2` after a failover), which \
     the sentinels use too, so `down cluster_g1` alone isolates g1 and makes the sentinels \
     promote g2; a replication cut without failover is `down cluster_g2` then `down \
     cluster_g1` (heal `cluster_g1` first), and replication latency is a toxic on \
     `cluster_g1` kept below the sentinels' 1000 ms down-after";
/// Where Toxiproxy's API listens by default.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:8474";
