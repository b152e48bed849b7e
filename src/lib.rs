//! # caplab: a distributed consistency lab
//!
//! Two HTTP personalities of one service run over a real Redis pair (nodes `g1` and `g2`, one
//! primary and its replica, watched by three Redis Sentinels that promote the replica when the
//! primary is lost): **CP** (port 5001) refuses rather than risk a stale or unreplicated answer, **AP**
//! (port 5002) answers from whatever node it can reach and says how stale the answer may be.
//! Partitions are injected through Toxiproxy (or caplab's own compatible server), a load
//! generator records what happened, and a checker turns the history into verdicts.
//!
//! The contract (HTTP, metric names, ports, proxy names, CP/AP semantics) is pinned in
//! `docs/design.md`; the choices made where it is silent are in `docs/decisions.md`.
//!
//! ## Layout
//!
//! | module | what it is |
//! |---|---|
//! | [`cli`] | the `caplab` command line: one subcommand per job, each owned by its module |
//! | [`logging`] | tracing set-up (JSON or pretty, stderr or size-rotated files, the audit trail's routing), shared by every subcommand |
//! | [`check`] | the history checkers (read/write/cas register: linearizability, stale reads, lost writes, sessions), Jepsen's formats in and out, the picture of a failure |
//! | [`proxy`] | `caplab proxy`, an embedded Toxiproxy-compatible server |
//! | [`faults`] | the fault driver: talks to any Toxiproxy through `toxiproxy_rust` |
//! | [`lab`] | the local lab: `redis-server` nodes and sentinels, `caplab lab`, `caplab demo` |
//! | [`scenario`] | scenario files, the open-loop load generator, the runner and its reports |
//! | [`console`] | `caplab console`: the lab's live web page (charts over SSE, controls, traffic, scenarios) |
//! | [`app`] | `caplab serve`: builds one personality, serves it (connection cap, timeouts, HTTPS), shuts it down gracefully |
//! | [`config`] | `ServeArgs` (flags with env fallbacks) and the validated [`config::Config`] |
//! | [`http`] | the HTTP contract: router, kv, compare-and-set and status handlers, input checks, error mapping |
//! | [`session`] | read-your-writes session tokens: HMAC signing, key rotation, refusals |
//! | [`mode`] | the CP and AP policies (reads, writes, compare-and-set) and AP's write-behind queue |
//! | [`primary`] | following the primary: the believed primary, the sentinel-polling tracker |
//! | [`node`] | the node client: fred + circuit breaker and its probe, record format and its write and cas scripts, CP's WAIT pool |
//! | [`staleness`] | staleness from the primary's offsets against time, replication lag/link tracking |
//! | [`metrics`] | the service's Prometheus registry and every metric name (the proxy's own are in [`proxy::metrics`]) |
//! | [`time`] | Unix-millisecond wall clock shared by records, heartbeats and breakers |
//!
//! ## Data path
//!
//! A request to a personality goes, top to bottom:
//!
//! 0. **Server** ([`app::server`]): a connection takes a slot under `MAX_CONNECTIONS` (or is
//!    refused with a 503), is held to its header and idle timeouts, is decrypted when HTTPS is
//!    on, and each request passes the per-address rate limit before the router.
//! 1. **HTTP handler**: parses and validates the key and value, picks the operation, and
//!    checks the `X-Session-Token` a request carries ([`session`]; a bad one is a 401).
//! 2. **Mode policy** (CP or AP): decides which node to ask and what an answer means, by the
//!    roles this instance believes the nodes have when it sends ([`primary`]: g1 until the
//!    sentinels report a promotion).
//! 3. **Node client with breaker**: one per Redis node, a circuit breaker in front of a
//!    fred client with explicit timeouts and a single attempt. Beside it, the node's probe
//!    and the heartbeat tell an open breaker when the node (or replication) works again.
//! 4. **Redis**: the primary (`g1` at start) stores every record; the other node replicates it
//!    with Redis's own replication, through the primary's `cluster_*` proxy. The sentinels
//!    watch the primary through the same proxy and promote the replica when they lose it.
//!
//! Between 3 and 4, every byte crosses a Toxiproxy proxy (`g1`, `g2`; the apps reach the
//! sentinels through `sentinels`): the real Toxiproxy or [`proxy`], whose links copy bytes
//! plainly until a toxic is set; [`faults`] is how the runner, the lab and the [`console`]
//! change those proxies. The console watches from beside the path: it reads the apps' status
//! endpoints once per tick for every open page, never Redis on a page's behalf.

pub mod check;
pub mod cli;
pub mod console;
pub mod faults;
pub mod lab;
pub mod logging;
pub mod proxy;
pub mod scenario;

pub mod app;
pub mod config;
pub mod http;
pub mod metrics;
pub mod mode;
pub mod node;
pub mod primary;
pub mod session;
pub mod staleness;
pub mod time;
