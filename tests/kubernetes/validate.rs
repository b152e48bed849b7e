//! Every build renders and every object passes the Kubernetes OpenAPI schemas, strictly (an
//! unknown field is an error), for the oldest Kubernetes the manifests target and the newest
//! the validator knows; a build without its key is refused.

use std::process::Command;

use super::support::{Tools, builds, kind, kustomize, tools, workspace};

/// The oldest Kubernetes the manifests are written for (PodDisruptionBudget's
/// unhealthyPodEvictionPolicy, topology spread's minDomains and matchLabelKeys) and the
/// newest kubernetes-validate 1.37.0 carries schemas for.
const VERSIONS: [&str; 2] = ["1.27.0", "1.37.0"];

/// Kinds the Kubernetes schemas do not cover: the Prometheus Operator's, checked in
/// monitoring.rs.
const CUSTOM_KINDS: [&str; 2] = ["PrometheusRule", "PodMonitor"];

fn validate(tools: &Tools, files: &[std::path::PathBuf], version: &str) -> (bool, String) {
    let out = Command::new(&tools.validator)
        .args(["--strict", "--kubernetes-version", version])
        .args(files)
        .output()
        .expect("run kubernetes-validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn every_build_passes_the_kubernetes_schemas() {
    let (Some(tools), Some(builds)) = (tools(), builds()) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let files: Vec<_> = builds
        .iter()
        .map(|b| {
            let path = dir.path().join(format!("{}.yaml", b.name));
            std::fs::write(&path, &b.text).expect("write");
            path
        })
        .collect();
    let objects: usize = builds.iter().map(|b| b.objects.len()).sum();
    for version in VERSIONS {
        let (ok, report) = validate(tools, &files, version);
        assert!(ok, "Kubernetes {version}:\n{report}");
        // One verdict per object: everything was looked at, and only the custom kinds lacked
        // a schema.
        let passed = report.lines().filter(|l| l.starts_with("INFO")).count();
        let custom: Vec<&str> = report.lines().filter(|l| l.starts_with("WARN")).collect();
        assert!(
            custom
                .iter()
                .all(|l| CUSTOM_KINDS.iter().any(|k| l.contains(k))),
            "{custom:#?}"
        );
        assert_eq!(
            passed + custom.len(),
            objects,
            "Kubernetes {version}:\n{report}"
        );
    }
    let operator = builds
        .iter()
        .find(|b| b.name == "operator")
        .expect("operator");
    for k in CUSTOM_KINDS {
        assert!(operator.objects.iter().any(|o| kind(o) == k), "no {k}");
    }
}

#[test]
fn the_validator_rejects_a_broken_object() {
    // The check above proves something only if the validator, run this way, can fail.
    let Some(tools) = tools() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  selector: \
         {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      \
         containers: [{name: c, image: i, readinessProbe: {httpGet: {path: /ready}}, \
         runAsNonRoot: true}]\n",
    )
    .expect("write");
    let (ok, report) = validate(tools, &[broken], VERSIONS[0]);
    assert!(
        !ok,
        "a misplaced field and a probe without a port passed:\n{report}"
    );
}

#[test]
fn a_build_without_its_key_is_refused() {
    let Some(tools) = tools() else {
        return;
    };
    let dir = workspace();
    let lab = dir.path().join("deploy/kubernetes/overlays/lab");
    let err = kustomize(tools, &lab).expect_err("rendered without secret.env");
    assert!(
        err.contains("secret.env"),
        "the error does not name the file: {err}"
    );
}
