//! The operations artefacts, tested: Prometheus rules and their promtool unit tests, the
//! scrape configs, the Grafana dashboard and provisioning, the runbooks, and the list of metric
//! names they all use (`prometheus/metric-names.txt`).
//!
//! These sit beside the data path, not on it: they read what caplab exports on `/metrics`.
//! Every check that needs a parser uses the real one: `promtool` (Debian's `prometheus`
//! package, installed by `./test.sh`); a missing one is a failure with the install command,
//! never a skip; a real `prometheus` server loads the rules in `server.rs`. Prometheus
//! scraping live apps and seeing the breaker alert go pending during a partition is
//! `tests/ops_prometheus_partition.rs`.

mod dashboard;
mod metric_names;
mod promql;
mod rules;
mod runbooks;
mod server;
mod support;
