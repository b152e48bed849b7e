//! Every name a build uses points at something the build has: the Secrets and ConfigMaps the
//! pods read (and each key they read, unless marked optional), the Services a StatefulSet and
//! Toxiproxy's upstreams name, the pods every Service, PodDisruptionBudget, NetworkPolicy and
//! PodMonitor selects, and the container ports probes and Services name.

use std::collections::BTreeMap;

use yaml_rust2::Yaml;

use super::support::{Build, builds, containers, is_named, kind, labels, list, name, selects};

/// The keys of a Secret or ConfigMap.
fn keys(o: &Yaml) -> Vec<String> {
    ["data", "stringData", "binaryData"]
        .iter()
        .flat_map(|f| o[*f].as_hash().into_iter().flatten())
        .filter_map(|(k, _)| k.as_str().map(str::to_string))
        .collect()
}

/// Every problem with the references of one build.
fn problems(b: &Build) -> Vec<String> {
    let mut out = Vec::new();
    let object = |k: &str, n: &str| b.objects.iter().find(|o| kind(o) == k && name(o) == n);
    let check_key =
        |what: &str, k: &str, n: &str, key: Option<&str>, optional: bool| match (object(k, n), key)
        {
            (None, _) => Some(format!("{what}: no {k} {n}")),
            (Some(o), Some(key)) if !optional && !keys(o).iter().any(|x| x == key) => {
                Some(format!("{what}: {k} {n} has no key {key}"))
            }
            _ => None,
        };
    for (workload, t) in b.templates() {
        let spec = &t["spec"];
        for v in list(&spec["volumes"]) {
            if let Some(n) = v["configMap"]["name"].as_str() {
                out.extend(check_key(&workload, "ConfigMap", n, None, false));
            }
            if let Some(n) = v["secret"]["secretName"].as_str() {
                out.extend(check_key(&workload, "Secret", n, None, false));
            }
        }
        for c in containers(t) {
            let what = format!("{workload}/{}", c["name"].as_str().unwrap_or("?"));
            for e in list(&c["env"]) {
                for (field, k) in [("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")] {
                    let r = &e["valueFrom"][field];
                    if let Some(n) = r["name"].as_str() {
                        let optional = r["optional"].as_bool() == Some(true);
                        out.extend(check_key(&what, k, n, r["key"].as_str(), optional));
                    }
                }
            }
            for e in list(&c["envFrom"]) {
                if let Some(n) = e["secretRef"]["name"].as_str() {
                    out.extend(check_key(&what, "Secret", n, None, false));
                }
                if let Some(n) = e["configMapRef"]["name"].as_str() {
                    out.extend(check_key(&what, "ConfigMap", n, None, false));
                }
            }
            // Every volume mounted is declared, and every named port a probe uses exists.
            for m in list(&c["volumeMounts"]) {
                let v = m["name"].as_str().unwrap_or("");
                let declared = list(&spec["volumes"])
                    .iter()
                    .any(|x| x["name"].as_str() == Some(v))
                    || list(&b.get_workload(&workload)["spec"]["volumeClaimTemplates"])
                        .iter()
                        .any(|x| name(x) == v);
                if !declared {
                    out.push(format!("{what}: mounts undeclared volume {v}"));
                }
            }
            let named: Vec<&str> = list(&c["ports"])
                .iter()
                .filter_map(|p| p["name"].as_str())
                .collect();
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                for via in ["httpGet", "tcpSocket"] {
                    if let Some(p) = c[probe][via]["port"].as_str()
                        && !named.contains(&p)
                    {
                        out.push(format!("{what}: {probe} names port {p}, which it lacks"));
                    }
                }
            }
        }
        let sts = b.get_workload(&workload);
        if let Some(service) = sts["spec"]["serviceName"].as_str()
            && object("Service", service).is_none()
        {
            out.push(format!("{workload}: serviceName {service} is no Service"));
        }
    }
    // Selectors select pods of this build, and a Service's target ports are named there.
    let pods: Vec<(String, BTreeMap<String, String>, &Yaml)> = b
        .templates()
        .into_iter()
        .map(|(w, t)| (w, labels(&t["metadata"]["labels"]), t))
        .collect();
    let selected = |selector: &Yaml| -> Vec<&Yaml> {
        pods.iter()
            .filter(|(_, l, _)| selects(selector, l))
            .map(|(_, _, t)| *t)
            .collect()
    };
    for o in &b.objects {
        let what = format!("{} {}", kind(o), name(o));
        let selector = match kind(o) {
            "Service" => {
                let s = o["spec"]["selector"].clone();
                let mut wrapped = yaml_rust2::yaml::Hash::new();
                wrapped.insert(Yaml::String("matchLabels".into()), s);
                Some(Yaml::Hash(wrapped))
            }
            "PodDisruptionBudget" | "PodMonitor" => Some(o["spec"]["selector"].clone()),
            "NetworkPolicy" => Some(o["spec"]["podSelector"].clone()),
            _ => None,
        };
        let Some(selector) = selector else { continue };
        let chosen = selected(&selector);
        let everything = labels(&selector["matchLabels"]).is_empty();
        if chosen.is_empty() || (everything && kind(o) != "NetworkPolicy") {
            out.push(format!("{what} selects no pod of this build"));
            continue;
        }
        let ports: Vec<&str> = chosen
            .iter()
            .flat_map(|t| containers(t))
            .flat_map(|c| list(&c["ports"]))
            .filter_map(|p| p["name"].as_str())
            .collect();
        for p in list(&o["spec"]["ports"]) {
            if let Some(target) = p["targetPort"].as_str()
                && !ports.contains(&target)
            {
                out.push(format!(
                    "{what}: targetPort {target} is no port of its pods"
                ));
            }
        }
        for e in list(&o["spec"]["podMetricsEndpoints"]) {
            let port = e["port"].as_str().unwrap_or("");
            if !ports.contains(&port) {
                out.push(format!("{what}: port {port} is no port of its pods"));
            }
        }
        for rule in list(&o["spec"]["ingress"]) {
            for from in list(&rule["from"]) {
                let sel = &from["podSelector"];
                if !sel.is_badvalue()
                    && !labels(&sel["matchLabels"]).is_empty()
                    && selected(sel).is_empty()
                {
                    out.push(format!("{what}: a rule admits pods that do not exist"));
                }
            }
        }
    }
    // The autoscaler's target.
    for h in b.all("HorizontalPodAutoscaler") {
        let t = &h["spec"]["scaleTargetRef"];
        let (k, n) = (
            t["kind"].as_str().unwrap_or(""),
            t["name"].as_str().unwrap_or(""),
        );
        if object(k, n).is_none() {
            out.push(format!("HorizontalPodAutoscaler {}: no {k} {n}", name(h)));
        }
    }
    out
}

impl Build {
    /// The workload "Kind name" of [`Build::templates`].
    fn get_workload(&self, workload: &str) -> &Yaml {
        let (k, n) = workload.split_once(' ').expect("Kind name");
        self.get(k, n)
    }
}

#[test]
fn every_reference_resolves() {
    let Some(builds) = builds() else {
        return;
    };
    for b in builds {
        let found = problems(b);
        assert!(found.is_empty(), "{}:\n{}", b.name, found.join("\n"));
    }
}

#[test]
fn the_secret_is_generated_from_the_users_file_and_never_a_literal() {
    let Some(builds) = builds() else {
        return;
    };
    for b in builds {
        let secrets = b.all("Secret");
        assert_eq!(secrets.len(), 1, "{}: one Secret", b.name);
        // Generated (a content hash in the name, so a new key rolls the apps) from the file
        // the test wrote where the user writes theirs.
        assert!(is_named(name(secrets[0]), "caplab") && name(secrets[0]) != "caplab");
        let data = secrets[0]["data"].as_hash().expect("data");
        let mut keys: Vec<&str> = data.keys().filter_map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["REDIS_PASSWORD", "SECRET_KEY"], "{}", b.name);
        // What each app reads from SECRET_KEY_FILE is that key.
        let t = b.template("Deployment", "app-cp");
        let c = super::support::container(t, "caplab");
        let path = super::support::env_value(c, "SECRET_KEY_FILE").expect("SECRET_KEY_FILE");
        let decoded = super::support::secret_file(b, t, c, path)
            .unwrap_or_else(|e| panic!("{}: SECRET_KEY_FILE={path}: {e}", b.name));
        // And from REDIS_PASSWORD_FILE, the password.
        let path =
            super::support::env_value(c, "REDIS_PASSWORD_FILE").expect("REDIS_PASSWORD_FILE");
        let password = super::support::secret_file(b, t, c, path)
            .unwrap_or_else(|e| panic!("{}: REDIS_PASSWORD_FILE={path}: {e}", b.name));
        if b.name == "student" {
            // new-lab.sh made a fresh key and a fresh password, 32 random bytes each, in hex.
            assert_eq!(decoded.len(), 64);
            assert_ne!(decoded, super::support::TEST_KEY.as_bytes());
            assert_eq!(password.len(), 64);
            assert_ne!(password, decoded);
        } else {
            assert_eq!(decoded, super::support::TEST_KEY.as_bytes(), "{}", b.name);
            assert_eq!(
                password,
                super::support::TEST_PASSWORD.as_bytes(),
                "{}",
                b.name
            );
        }
        // No container is handed a secret as a literal value: a `*_FILE` setting names a file
        // of a Secret it mounts, anything else comes from a Secret.
        for (workload, t) in b.templates() {
            for c in containers(t) {
                for e in list(&c["env"]) {
                    let n = e["name"].as_str().unwrap_or("");
                    if n.ends_with("_FILE") && (n.contains("SECRET") || n.contains("PASSWORD")) {
                        let path = e["value"].as_str().unwrap_or("");
                        super::support::secret_file(b, t, c, path)
                            .unwrap_or_else(|err| panic!("{}: {workload} {n}: {err}", b.name));
                    } else if n.contains("SECRET") || n.contains("PASSWORD") || n.contains("AUTH") {
                        assert!(
                            e["value"].is_badvalue()
                                && !e["valueFrom"]["secretKeyRef"].is_badvalue(),
                            "{}: {workload} gets {n} as a literal",
                            b.name
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn the_reference_check_finds_a_dangling_name() {
    // problems() proves something only if it can fail: rename the Secret and look.
    let Some(b) = super::support::build("lab") else {
        return;
    };
    let mut broken = Build {
        name: "broken",
        text: String::new(),
        objects: b.objects.clone(),
    };
    for o in &mut broken.objects {
        if kind(o) == "Secret"
            && let Yaml::Hash(h) = &mut o["metadata"]
        {
            h.insert(Yaml::String("name".into()), Yaml::String("renamed".into()));
        }
    }
    let found = problems(&broken);
    assert!(
        found.iter().any(|p| p.contains("no Secret caplab")),
        "{found:?}"
    );
}
