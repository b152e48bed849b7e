//! The monitoring objects are the repository's own files: the Prometheus scrape config and
//! rules ConfigMaps hold prometheus/ byte for byte (and promtool accepts them as mounted), the
//! Grafana dashboard ConfigMap holds grafana/dashboards/caplab.json with the sidecar's label,
//! and the Prometheus Operator's PrometheusRule holds the same groups as the rule files, its
//! PodMonitors giving the jobs and the mode label the alerts select.

use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

use super::support::{build, builds, data, labels, list, name, read};

#[test]
fn the_prometheus_and_grafana_config_maps_are_the_repository_files() {
    let Some(builds) = builds() else {
        return;
    };
    for b in builds {
        let config = b.get("ConfigMap", "caplab-prometheus");
        let rules = b.get("ConfigMap", "caplab-prometheus-rules");
        let dashboard = b.get("ConfigMap", "caplab-grafana-dashboard");
        // Not mounted by caplab's pods, so no hash: an update replaces them in place.
        assert_eq!(name(config), "caplab-prometheus");
        assert_eq!(name(rules), "caplab-prometheus-rules");
        assert_eq!(name(dashboard), "caplab-grafana-dashboard");
        assert_eq!(
            data(config, "prometheus.yml"),
            read("prometheus/prometheus-kubernetes.yml")
        );
        assert_eq!(
            data(rules, "recording.yml"),
            read("prometheus/rules/recording.yml")
        );
        assert_eq!(
            data(rules, "alerts.yml"),
            read("prometheus/rules/alerts.yml")
        );
        assert_eq!(
            data(dashboard, "caplab.json"),
            read("grafana/dashboards/caplab.json")
        );
        assert_eq!(
            labels(&dashboard["metadata"]["labels"])
                .get("grafana_dashboard")
                .map(String::as_str),
            Some("1"),
            "{}: the Grafana sidecar's label",
            b.name
        );
    }
}

#[test]
fn promtool_accepts_the_config_maps_as_prometheus_mounts_them() {
    let Some(b) = build("lab") else {
        return;
    };
    // /etc/prometheus from caplab-prometheus, /etc/prometheus/rules from the rules.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = b.get("ConfigMap", "caplab-prometheus");
    let rules = b.get("ConfigMap", "caplab-prometheus-rules");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        data(config, "prometheus.yml"),
    )
    .expect("w");
    std::fs::create_dir(dir.path().join("rules")).expect("mkdir");
    for f in ["recording.yml", "alerts.yml"] {
        std::fs::write(dir.path().join("rules").join(f), data(rules, f)).expect("w");
    }
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(dir.path().join("prometheus.yml"))
        .output()
        .expect("promtool (Debian's prometheus package; scripts/deps.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("SUCCESS: 2 rule files found"), "{text}");
    // The jobs the alerts select, found through the apps' headless metrics Services.
    let doc = &YamlLoader::load_from_str(data(config, "prometheus.yml")).expect("YAML")[0];
    for (job, service, port) in [
        ("app_cp", "app-cp-metrics", 5001),
        ("app_ap", "app-ap-metrics", 5002),
    ] {
        let j = list(&doc["scrape_configs"])
            .iter()
            .find(|j| j["job_name"].as_str() == Some(job))
            .unwrap_or_else(|| panic!("no job {job}"));
        let sd = &list(&j["dns_sd_configs"])[0];
        assert_eq!(super::support::strings(&sd["names"]), [service]);
        assert_eq!(sd["port"].as_i64(), Some(port));
        let s = b.get("Service", service);
        assert_eq!(
            s["spec"]["clusterIP"].as_str(),
            Some("None"),
            "{service}: one A record per pod"
        );
        assert_eq!(
            s["spec"]["publishNotReadyAddresses"].as_bool(),
            Some(true),
            "{service}"
        );
    }
}

/// A YAML value as JSON, so maps compare whatever the order of their keys (kustomize sorts
/// them).
fn json(y: &Yaml) -> serde_json::Value {
    match y {
        Yaml::String(s) => serde_json::Value::from(s.as_str()),
        Yaml::Integer(n) => serde_json::Value::from(*n),
        Yaml::Real(r) => serde_json::Value::from(r.parse::<f64>().expect("a number")),
        Yaml::Boolean(b) => serde_json::Value::from(*b),
        Yaml::Null => serde_json::Value::Null,
        Yaml::Array(a) => a.iter().map(json).collect(),
        Yaml::Hash(h) => h
            .iter()
            .map(|(k, v)| (k.as_str().expect("a string key").to_string(), json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        other => panic!("unexpected YAML {other:?}"),
    }
}

/// The groups of the rule files, in the order Prometheus loads them.
fn rule_file_groups() -> Vec<Yaml> {
    [
        "prometheus/rules/recording.yml",
        "prometheus/rules/alerts.yml",
    ]
    .iter()
    .flat_map(|f| {
        let doc = YamlLoader::load_from_str(&read(f)).expect("YAML").remove(0);
        list(&doc["groups"]).to_vec()
    })
    .collect()
}

/// The PrometheusRule's file: a header of comments, then the object.
const RULE_FILE: &str = "deploy/kubernetes/components/prometheus-operator/prometheus-rule.yaml";

/// What the PrometheusRule's file should hold: its own header comments, then the object with
/// the rule files' groups.
fn generated_rule_file() -> String {
    let current = read(RULE_FILE);
    let header = &current[..current.find("apiVersion:").expect("an object")];
    let text = "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: caplab\n  \
         labels:\n    app.kubernetes.io/component: monitoring\nspec:\n  groups: []\n";
    let mut doc = YamlLoader::load_from_str(text).expect("YAML").remove(0);
    if let Yaml::Hash(spec) = &mut doc["spec"] {
        spec.insert(
            Yaml::String("groups".into()),
            Yaml::Array(rule_file_groups()),
        );
    }
    let mut out = String::new();
    let mut emitter = yaml_rust2::YamlEmitter::new(&mut out);
    emitter.multiline_strings(true);
    emitter.dump(&doc).expect("emit");
    format!("{header}{}\n", out.trim_start_matches("---\n"))
}

#[test]
fn the_prometheus_rule_is_the_rule_files() {
    // CAPLAB_UPDATE_PROMETHEUS_RULE=1 rewrites the copy from the rule files first.
    if std::env::var_os("CAPLAB_UPDATE_PROMETHEUS_RULE").is_some() {
        std::fs::write(
            super::support::root().join(RULE_FILE),
            generated_rule_file(),
        )
        .expect("write the PrometheusRule");
    }
    let committed = YamlLoader::load_from_str(&read(RULE_FILE))
        .expect("YAML")
        .remove(0);
    assert_eq!(committed["kind"].as_str(), Some("PrometheusRule"));
    assert_eq!(
        committed["apiVersion"].as_str(),
        Some("monitoring.coreos.com/v1")
    );
    let want = rule_file_groups();
    let groups = list(&committed["spec"]["groups"]).to_vec();
    assert_eq!(
        json(&Yaml::Array(groups)),
        json(&Yaml::Array(want.clone())),
        "{RULE_FILE} differs from prometheus/rules; regenerate it with \
         CAPLAB_UPDATE_PROMETHEUS_RULE=1 cargo test --test kubernetes prometheus_rule"
    );
    // The operator build carries it as it is, and only that build has the operator's kinds.
    let Some(b) = build("operator") else {
        return;
    };
    let rule = b.get("PrometheusRule", "caplab");
    assert_eq!(
        json(&rule["spec"]["groups"]),
        json(&Yaml::Array(want)),
        "the build's PrometheusRule"
    );
    for other in ["lab", "zones", "student"] {
        let o = build(other).expect("built");
        assert!(o.all("PrometheusRule").is_empty() && o.all("PodMonitor").is_empty());
    }
}

#[test]
fn the_pod_monitors_give_the_jobs_and_modes_the_alerts_select() {
    let Some(b) = build("operator") else {
        return;
    };
    for (monitor, app, job, mode) in [
        ("app-cp", "app-cp", "app_cp", Some("cp")),
        ("app-ap", "app-ap", "app_ap", Some("ap")),
        ("toxiproxy", "toxiproxy", "toxiproxy", None),
    ] {
        let m = b.get("PodMonitor", monitor);
        let pods = labels(&b.template("Deployment", app)["metadata"]["labels"]);
        assert!(
            super::support::selects(&m["spec"]["selector"], &pods),
            "{monitor}"
        );
        let endpoint = &list(&m["spec"]["podMetricsEndpoints"])[0];
        assert_eq!(endpoint["path"].as_str(), Some("/metrics"));
        let relabel = |label: &str| {
            list(&endpoint["relabelings"])
                .iter()
                .find(|r| r["targetLabel"].as_str() == Some(label))
                .and_then(|r| r["replacement"].as_str())
                .map(str::to_string)
        };
        assert_eq!(relabel("job").as_deref(), Some(job), "{monitor}");
        assert_eq!(relabel("mode").as_deref(), mode, "{monitor}");
        if mode.is_some() {
            assert_eq!(endpoint["honorLabels"].as_bool(), Some(true), "{monitor}");
        }
    }
}
