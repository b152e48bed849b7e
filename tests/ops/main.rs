//! The operations artefacts, tested: Prometheus rules and their promtool unit tests, the
//! scrape configs, the Grafana dashboard and provisioning, the runbooks, and the list of metric
//! names they all use (`prometheus/metric-names.txt`).
//!
//! These sit beside the data path, not on it: they read what caplab exports on `/metrics`.
//! Every check that needs a parser uses the real one: `promtool` (Debian's `prometheus`
//! package, installed by `./test.sh`), which is missing is a failure with the install command,
//! never a skip. Not here yet: a test against a running lab (every `caplab` name of
//! metric-names.txt is on /metrics; a real Prometheus sees the breaker alert go pending).

mod dashboard;
mod metric_names;
mod promql;
mod rules;
mod runbooks;
mod support;
