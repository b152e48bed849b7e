//! The Kubernetes manifests (`deploy/kubernetes`), checked without a cluster: every overlay is
//! rendered with `kubectl kustomize` and every object validated against the Kubernetes OpenAPI
//! schemas offline (`kubernetes-validate`, for the oldest and the newest Kubernetes it knows);
//! then what a schema cannot see: the proxies, ports, replica settings and sentinels are the
//! lab's (as `tests/compose.rs` checks docker-compose.yml), every Secret, ConfigMap, Service,
//! selector and named port resolves, the probes are routes the app serves, AP queues to a file on
//! its pod's own volume, every container runs as non-root, the NetworkPolicies let only Toxiproxy reach Redis, and the monitoring objects
//! are the repository's own files.
//!
//! The tools come from `scripts/deps.sh` (kubectl with kustomize v5 and a venv with
//! kubernetes-validate, in `~/.cache/caplab/kubernetes` when the machine has no kubectl of its
//! own). Without them the tests are skipped with a note, unless `CI` is set.

#[path = "../common/mod.rs"]
mod common;

mod monitoring;
mod network;
mod probes;
mod queue;
mod references;
mod security;
mod support;
mod topology;
mod validate;
