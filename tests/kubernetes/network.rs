//! The NetworkPolicies, evaluated as a cluster would (every pod is isolated for ingress by
//! `default-deny-ingress`; a connection is allowed when a policy selecting the destination
//! admits the source's labels on that port): only Toxiproxy reaches Redis, the sentinels reach
//! each other and are reached by Toxiproxy, the apps reach only the proxies meant for them,
//! and Toxiproxy's API is not open to other namespaces.

use std::collections::BTreeMap;

use yaml_rust2::Yaml;

use super::support::{Build, build, builds, int, labels, list, selects};

/// The labels of the pods of a workload.
fn pod(b: &Build, k: &str, n: &str) -> BTreeMap<String, String> {
    labels(&b.template(k, n)["metadata"]["labels"])
}

/// Whether a pod labelled `from` in the same namespace may open `port` on a pod labelled `to`.
fn allowed(
    b: &Build,
    from: &BTreeMap<String, String>,
    to: &BTreeMap<String, String>,
    port: i64,
) -> bool {
    let policies: Vec<&Yaml> = b
        .all("NetworkPolicy")
        .into_iter()
        .filter(|p| selects(&p["spec"]["podSelector"], to))
        .filter(|p| {
            super::support::strings(&p["spec"]["policyTypes"]).contains(&"Ingress".to_string())
        })
        .collect();
    assert!(!policies.is_empty(), "a pod no policy isolates: {to:?}");
    policies.iter().any(|p| {
        list(&p["spec"]["ingress"]).iter().any(|rule| {
            let sources = list(&rule["from"]);
            let source_ok = rule["from"].is_badvalue()
                || sources.iter().any(|s| {
                    assert!(s["namespaceSelector"].is_badvalue() && s["ipBlock"].is_badvalue());
                    selects(&s["podSelector"], from)
                });
            let port_ok = rule["ports"].is_badvalue()
                || list(&rule["ports"])
                    .iter()
                    .any(|p| int(&p["port"]) == Some(port));
            source_ok && port_ok
        })
    })
}

#[test]
fn only_toxiproxy_reaches_redis_and_every_link_crosses_it() {
    let Some(builds) = builds() else {
        return;
    };
    for b in builds {
        let g1 = pod(b, "StatefulSet", "db-g1");
        let g2 = pod(b, "StatefulSet", "db-g2");
        let sentinel = pod(b, "StatefulSet", "sentinel");
        let toxiproxy = pod(b, "Deployment", "toxiproxy");
        let cp = pod(b, "Deployment", "app-cp");
        let ap = pod(b, "Deployment", "app-ap");
        let mut stranger = BTreeMap::new();
        stranger.insert("app".to_string(), "something-else".to_string());
        let check = |from: &BTreeMap<String, String>,
                     to: &BTreeMap<String, String>,
                     port,
                     want: bool,
                     what: &str| {
            assert_eq!(allowed(b, from, to, port), want, "{}: {what}", b.name);
        };
        for (node, label) in [(&g1, "g1"), (&g2, "g2")] {
            check(
                &toxiproxy,
                node,
                6379,
                true,
                &format!("Toxiproxy to {label}"),
            );
            for (from, who) in [
                (&cp, "CP"),
                (&ap, "AP"),
                (&sentinel, "a sentinel"),
                (&g1, "g1"),
                (&g2, "g2"),
                (&stranger, "another pod"),
            ] {
                check(
                    from,
                    node,
                    6379,
                    false,
                    &format!("{who} straight to {label}"),
                );
            }
        }
        check(&sentinel, &sentinel, 26379, true, "sentinels to each other");
        check(
            &toxiproxy,
            &sentinel,
            26379,
            true,
            "the `sentinels` proxy to s1",
        );
        for (from, who) in [
            (&cp, "CP"),
            (&ap, "AP"),
            (&g1, "g1"),
            (&stranger, "another pod"),
        ] {
            check(
                from,
                &sentinel,
                26379,
                false,
                &format!("{who} straight to a sentinel"),
            );
        }
        for app in [&cp, &ap] {
            for port in [26379, 26380, 26383] {
                check(
                    app,
                    &toxiproxy,
                    port,
                    true,
                    &format!("an app to proxy port {port}"),
                );
            }
            for port in [26381, 26382] {
                check(
                    app,
                    &toxiproxy,
                    port,
                    false,
                    &format!("an app to cluster port {port}"),
                );
            }
        }
        for from in [&g1, &g2, &sentinel] {
            for port in [26381, 26382] {
                check(
                    from,
                    &toxiproxy,
                    port,
                    true,
                    &format!("the cluster to port {port}"),
                );
            }
        }
        check(
            &stranger,
            &toxiproxy,
            26379,
            false,
            "another pod to a proxy",
        );
        check(&cp, &cp, 5001, true, "clients to CP");
        check(&stranger, &ap, 5002, true, "clients to AP");
    }
}

#[test]
fn toxiproxys_api_is_open_to_this_namespace_only() {
    let Some(b) = build("lab") else {
        return;
    };
    let policy = b.get("NetworkPolicy", "toxiproxy");
    let api_rules: Vec<&Yaml> = list(&policy["spec"]["ingress"])
        .iter()
        .filter(|r| {
            list(&r["ports"])
                .iter()
                .any(|p| int(&p["port"]) == Some(8474))
        })
        .collect();
    assert_eq!(api_rules.len(), 1);
    for from in list(&api_rules[0]["from"]) {
        assert!(from["namespaceSelector"].is_badvalue() && from["ipBlock"].is_badvalue());
    }
    assert!(
        !api_rules[0]["from"].is_badvalue(),
        "the API is open to every source"
    );
}
