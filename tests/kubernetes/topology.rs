//! The topology on Kubernetes is the lab's (docs/design.md "Topology"): the five proxies with
//! their names, ports and upstreams, the nodes' replica settings and announced addresses, g2
//! starting as g1's replica through `cluster_g1`, three sentinels with the lab's master name,
//! quorum and timings, and the apps reaching everything through Toxiproxy.

use caplab::faults::LAB_PROXIES;
use caplab::lab::LabPorts;
use caplab::lab::sentinel::MASTER_NAME;
use yaml_rust2::{Yaml, YamlLoader};

use super::support::{
    BUILDS, Build, build, builds, container, data, env_value, int, list, name, read, strings,
};

/// The nodes: (StatefulSet, Toxiproxy upstream, the cluster proxy port it announces).
fn nodes(ports: &LabPorts) -> [(&'static str, &'static str, u16); 2] {
    [
        ("db-g1", "db-g1:6379", ports.proxy_cluster_g1),
        ("db-g2", "db-g2:6379", ports.proxy_cluster_g2),
    ]
}

/// The port a Service named `service` exposes as `port`, if it does.
fn service_has_port(build: &Build, service: &str, port: i64) -> bool {
    build.find("Service", service).is_some_and(|s| {
        list(&s["spec"]["ports"])
            .iter()
            .any(|p| int(&p["port"]) == Some(port))
    })
}

#[test]
fn toxiproxy_has_the_lab_proxies_on_the_lab_ports() {
    let Some(builds) = builds() else {
        return;
    };
    let ports = LabPorts::default();
    let expect = [
        (ports.proxy_g1, "db-g1:6379"),
        (ports.proxy_g2, "db-g2:6379"),
        (ports.proxy_cluster_g1, "db-g1:6379"),
        (ports.proxy_cluster_g2, "db-g2:6379"),
        (ports.proxy_sentinels, "sentinel-0.sentinel:26379"),
    ];
    for b in builds {
        let proxies: serde_json::Value =
            serde_json::from_str(data(b.get("ConfigMap", "caplab-toxiproxy"), "proxies.json"))
                .expect("proxies.json is JSON");
        let proxies = proxies.as_array().expect("an array");
        let names: Vec<&str> = proxies.iter().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(names, LAB_PROXIES, "{}", b.name);
        let service = b.get("Service", "toxiproxy");
        for (proxy, (port, upstream)) in proxies.iter().zip(expect) {
            assert_eq!(
                proxy["listen"],
                format!("0.0.0.0:{port}"),
                "{}: {proxy}",
                b.name
            );
            assert_eq!(proxy["upstream"], upstream, "{}", b.name);
            assert_eq!(proxy["enabled"], true);
            // Reachable: the Toxiproxy Service exposes the listen port, and the upstream is a
            // Service of this build with that port (sentinel-0.sentinel: the headless
            // Service of the sentinels' StatefulSet).
            assert!(
                service_has_port(b, "toxiproxy", i64::from(port)),
                "{}: Service toxiproxy lacks {port}",
                b.name
            );
            let (host, up_port) = upstream.rsplit_once(':').expect("host:port");
            let host = host.strip_prefix("sentinel-0.").unwrap_or(host);
            assert!(
                service_has_port(b, host, up_port.parse().expect("port")),
                "{}: no Service {host} with port {up_port}",
                b.name
            );
        }
        assert!(service_has_port(b, "toxiproxy", i64::from(ports.proxy_api)));
        assert_eq!(
            service["spec"]["type"].as_str().unwrap_or("ClusterIP"),
            "ClusterIP",
            "the unauthenticated API must not leave the cluster"
        );
    }
}

#[test]
fn toxiproxy_runs_as_in_compose() {
    let Some(b) = build("lab") else {
        return;
    };
    let compose = YamlLoader::load_from_str(&read("docker-compose.yml")).expect("YAML");
    let compose = &compose[0]["services"]["toxiproxy"];
    let deployment = b.get("Deployment", "toxiproxy");
    assert_eq!(
        int(&deployment["spec"]["replicas"]),
        Some(1),
        "one Toxiproxy"
    );
    assert_eq!(
        deployment["spec"]["strategy"]["type"].as_str(),
        Some("Recreate")
    );
    let c = container(&deployment["spec"]["template"], "toxiproxy");
    assert_eq!(c["image"], compose["image"], "the same real image");
    let args = strings(&c["args"]);
    assert_eq!(
        args,
        strings(&compose["command"]),
        "the same flags (-proxy-metrics too)"
    );
    let mount = list(&c["volumeMounts"])
        .iter()
        .find(|m| m["mountPath"].as_str() == Some("/config"))
        .expect("proxies mounted at /config");
    let volume = list(&deployment["spec"]["template"]["spec"]["volumes"])
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("volume");
    assert!(super::support::is_named(
        volume["configMap"]["name"].as_str().unwrap_or(""),
        "caplab-toxiproxy"
    ));
}

/// The node's `redis-server` command line, joined.
fn node_command(b: &Build, node: &str) -> String {
    strings(&container(b.template("StatefulSet", node), "redis")["command"]).join(" ")
}

/// The node's init container script.
fn node_init(b: &Build, node: &str) -> String {
    strings(&container(b.template("StatefulSet", node), "config")["command"]).join(" ")
}

#[test]
fn the_nodes_carry_the_replica_settings_and_announce_their_cluster_proxy() {
    let Some(builds) = builds() else {
        return;
    };
    let ports = LabPorts::default();
    for b in builds {
        for (node, _, cluster) in nodes(&ports) {
            let set = b.get("StatefulSet", node);
            assert_eq!(int(&set["spec"]["replicas"]), Some(1), "{}: {node}", b.name);
            let command = node_command(b, node);
            for needle in [
                "redis-server /data/redis.conf".to_string(),
                "--dir /data".into(),
                "--appendonly yes".into(),
                "--repl-timeout 5".into(),
                "--repl-ping-replica-period 1".into(),
                "--replica-serve-stale-data yes".into(),
                "--repl-diskless-sync-delay 0".into(),
                "--hz 100".into(),
                format!("--replica-announce-ip toxiproxy --replica-announce-port {cluster}"),
            ] {
                assert!(
                    command.contains(&needle),
                    "{}: {node} lacks {needle}: {command}",
                    b.name
                );
            }
            // /data, where the AOF and the role file live, is the node's own volume.
            let claims = list(&set["spec"]["volumeClaimTemplates"]);
            assert_eq!(claims.len(), 1, "{}: {node}", b.name);
            let claim = name(&claims[0]);
            for c in super::support::containers(&set["spec"]["template"]) {
                assert!(
                    list(&c["volumeMounts"])
                        .iter()
                        .any(|m| m["name"].as_str() == Some(claim)
                            && m["mountPath"].as_str() == Some("/data")),
                    "{}: {node}/{}: /data is not the claim {claim}",
                    b.name,
                    c["name"].as_str().unwrap_or("?")
                );
            }
        }
        // g2 starts as the replica of g1 through cluster_g1, at its first start only; g1 as a
        // primary.
        let g2 = node_init(b, "db-g2");
        assert!(
            g2.contains(&format!(
                "[ -f /data/redis.conf ] || echo \"replicaof toxiproxy {}\" > /data/redis.conf",
                ports.proxy_cluster_g1
            )),
            "{}: {g2}",
            b.name
        );
        let g1 = node_init(b, "db-g1");
        assert!(
            g1.contains("[ -f /data/redis.conf ] || touch /data/redis.conf"),
            "{g1}"
        );
        assert!(!g1.contains("replicaof") && !node_command(b, "db-g1").contains("replicaof"));
        // The announced host is the Toxiproxy Service, with the cluster ports.
        for (_, _, cluster) in nodes(&ports) {
            assert!(service_has_port(b, "toxiproxy", i64::from(cluster)));
        }
    }
}

/// The meaningful lines of a config file.
fn conf_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn three_sentinels_watch_g1_as_the_lab_does() {
    let Some(builds) = builds() else {
        return;
    };
    for b in builds {
        let set = b.get("StatefulSet", "sentinel");
        assert_eq!(int(&set["spec"]["replicas"]), Some(3), "{}", b.name);
        assert_eq!(set["spec"]["serviceName"].as_str(), Some("sentinel"));
        let headless = b.get("Service", "sentinel");
        assert_eq!(headless["spec"]["clusterIP"].as_str(), Some("None"));
        assert_eq!(
            headless["spec"]["publishNotReadyAddresses"].as_bool(),
            Some(true)
        );
        assert_eq!(
            list(&set["spec"]["volumeClaimTemplates"]).len(),
            1,
            "a volume each"
        );

        // The file the sentinels start from is sentinel/sentinel.conf itself, whose lab
        // settings tests/compose.rs checks line by line; here it must listen where the
        // Service sends the other sentinels and the apps.
        let conf_map = b.get("ConfigMap", "caplab-sentinel");
        let conf = data(conf_map, "sentinel.conf");
        assert_eq!(conf, read("sentinel/sentinel.conf"), "{}", b.name);
        assert!(
            conf_lines(conf).contains(&"port 26379"),
            "{}: sentinel.conf does not listen on 26379",
            b.name
        );

        // A writable copy in the sentinel's own volume, made at the first start only, with
        // the pod's own DNS name announced; Sentinel then runs from the copy.
        let template = &set["spec"]["template"];
        let init = strings(&container(template, "config")["command"]).join(" ");
        for needle in [
            "if [ ! -f /data/sentinel.conf ]",
            "cp /config/sentinel.conf /data/sentinel.conf",
            "echo \"sentinel announce-ip $POD_NAME.sentinel\" >> /data/sentinel.conf",
        ] {
            assert!(
                init.contains(needle),
                "{}: init lacks {needle}: {init}",
                b.name
            );
        }
        let pod_name = list(&container(template, "config")["env"])
            .iter()
            .find(|e| e["name"].as_str() == Some("POD_NAME"))
            .expect("POD_NAME");
        assert_eq!(
            pod_name["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
            Some("metadata.name")
        );
        let run = strings(&container(template, "sentinel")["command"]).join(" ");
        assert_eq!(run, "redis-server /data/sentinel.conf --sentinel");
        assert_eq!(
            int(&list(&headless["spec"]["ports"])[0]["port"]),
            Some(26379),
            "the announced sentinels listen on the port in sentinel.conf"
        );
    }
}

#[test]
fn the_apps_reach_everything_through_toxiproxy_on_the_lab_ports() {
    let Some(builds) = builds() else {
        return;
    };
    let ports = LabPorts::default();
    for b in builds {
        for (app, mode, port) in [
            ("app-cp", "cp", ports.app_cp),
            ("app-ap", "ap", ports.app_ap),
        ] {
            let c = container(b.template("Deployment", app), "caplab");
            let env = |n: &str| env_value(c, n).map(str::to_string);
            assert_eq!(env("MODE").as_deref(), Some(mode), "{}: {app}", b.name);
            assert_eq!(env("PORT"), Some(port.to_string()));
            assert_eq!(env("HOST").as_deref(), Some("0.0.0.0"));
            assert_eq!(
                env("REDIS_G1_URL"),
                Some(format!("redis://toxiproxy:{}", ports.proxy_g1))
            );
            assert_eq!(
                env("REDIS_G2_URL"),
                Some(format!("redis://toxiproxy:{}", ports.proxy_g2))
            );
            assert_eq!(
                env("SENTINEL_URLS"),
                Some(format!("redis://toxiproxy:{}", ports.proxy_sentinels))
            );
            assert_eq!(env("ENVIRONMENT").as_deref(), Some("production"));
            assert_eq!(env("LOG_FORMAT").as_deref(), Some("json"), "as in compose");
            let container_port = list(&c["ports"])
                .iter()
                .find(|p| p["name"].as_str() == Some("http"))
                .and_then(|p| int(&p["containerPort"]));
            assert_eq!(container_port, Some(i64::from(port)), "{}: {app}", b.name);
            assert!(
                service_has_port(b, app, i64::from(port)),
                "{}: Service {app}",
                b.name
            );
        }
    }
}

#[test]
fn cp_has_fixed_instances_and_ap_scales_with_an_autoscaler() {
    let Some(builds) = builds() else {
        return;
    };
    for b in builds {
        let cp = b.get("Deployment", "app-cp");
        assert!(
            int(&cp["spec"]["replicas"]).is_some_and(|n| n >= 1),
            "{}",
            b.name
        );
        // The autoscaler owns AP's count: a replicas field would be reset by every apply.
        let ap = b.get("Deployment", "app-ap");
        assert!(
            ap["spec"]["replicas"].is_badvalue(),
            "{}: app-ap sets replicas",
            b.name
        );
        let hpa = b.get("HorizontalPodAutoscaler", "app-ap");
        let target = &hpa["spec"]["scaleTargetRef"];
        assert_eq!(target["kind"].as_str(), Some("Deployment"));
        assert_eq!(target["name"].as_str(), Some("app-ap"));
        let min = int(&hpa["spec"]["minReplicas"]).expect("minReplicas");
        let max = int(&hpa["spec"]["maxReplicas"]).expect("maxReplicas");
        assert!(
            min >= 2 && max > min,
            "{}: AP {min}..{max}: several instances",
            b.name
        );
        // A disruption budget for each personality.
        for app in ["app-cp", "app-ap"] {
            let pdb = b
                .all("PodDisruptionBudget")
                .into_iter()
                .find(|p| {
                    super::support::selects(
                        &p["spec"]["selector"],
                        &super::support::labels(
                            &b.template("Deployment", app)["metadata"]["labels"],
                        ),
                    )
                })
                .unwrap_or_else(|| panic!("{}: no PodDisruptionBudget for {app}", b.name));
            assert_eq!(
                int(&pdb["spec"]["maxUnavailable"]),
                Some(1),
                "{}: {app}",
                b.name
            );
        }
    }
}

#[test]
fn each_lab_lives_in_its_own_namespace() {
    let Some(builds) = builds() else {
        return;
    };
    let expected = |build: &str| match build {
        "lab" => "caplab-lab",
        "student" => "caplab-student-1",
        _ => "caplab",
    };
    for b in builds {
        let ns = expected(b.name);
        let namespace = b.get("Namespace", ns);
        assert_eq!(name(namespace), ns);
        // Every pod meets the restricted Pod Security Standard (security.rs), and the
        // namespace enforces it.
        assert_eq!(
            super::support::labels(&namespace["metadata"]["labels"])
                .get("pod-security.kubernetes.io/enforce")
                .map(String::as_str),
            Some("restricted"),
            "{}",
            b.name
        );
        for o in &b.objects {
            if super::support::kind(o) == "Namespace" {
                continue;
            }
            assert_eq!(
                o["metadata"]["namespace"].as_str(),
                Some(ns),
                "{}: {} {}",
                b.name,
                super::support::kind(o),
                name(o)
            );
        }
    }
    assert_eq!(BUILDS.len(), builds.len());
}

#[test]
fn the_lab_is_smaller_and_the_zones_build_spreads_over_zones() {
    let (Some(lab), Some(zones)) = (build("lab"), build("zones")) else {
        return;
    };
    let request = |b: &Build, k: &str, n: &str| -> String {
        let c = &list(&b.template(k, n)["spec"]["containers"])[0];
        c["resources"]["requests"]["memory"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    for (k, n) in [
        ("StatefulSet", "db-g1"),
        ("StatefulSet", "sentinel"),
        ("Deployment", "toxiproxy"),
        ("Deployment", "app-ap"),
    ] {
        assert_ne!(
            request(lab, k, n),
            request(zones, k, n),
            "{n}: the lab is not smaller"
        );
    }
    // In a lab, "not ready" is the experiment: the personalities' Services keep listing such
    // instances, so a client sees CP's own 503; the production shape lets Kubernetes drop them.
    for app in ["app-cp", "app-ap"] {
        let listed =
            |b: &Build| b.get("Service", app)["spec"]["publishNotReadyAddresses"].as_bool();
        assert_eq!(listed(lab), Some(true), "lab: {app}");
        assert_ne!(listed(zones), Some(true), "zones: {app}");
    }
    let zone_spread = |t: &Yaml| -> Vec<(String, String)> {
        list(&t["spec"]["topologySpreadConstraints"])
            .iter()
            .filter(|c| c["topologyKey"].as_str() == Some("topology.kubernetes.io/zone"))
            .map(|c| {
                (
                    c["whenUnsatisfiable"].as_str().unwrap_or("").to_string(),
                    super::support::labels(&c["labelSelector"]["matchLabels"])
                        .into_iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect(),
                )
            })
            .collect()
    };
    // g1 and g2 (one selector over both nodes, at least two zones) and the sentinels must
    // spread; the lab does not ask for zones.
    for (set, selector) in [
        ("db-g1", "app.kubernetes.io/component=redis"),
        ("db-g2", "app.kubernetes.io/component=redis"),
        ("sentinel", "app.kubernetes.io/component=sentinel"),
    ] {
        let t = zones.template("StatefulSet", set);
        assert_eq!(
            zone_spread(t),
            vec![("DoNotSchedule".to_string(), selector.to_string())],
            "{set}"
        );
        assert!(zone_spread(lab.template("StatefulSet", set)).is_empty());
        // The selector covers the pod itself (else the constraint counts nothing).
        let own = super::support::labels(&t["metadata"]["labels"]);
        let (k, v) = selector.split_once('=').expect("k=v");
        assert_eq!(own.get(k).map(String::as_str), Some(v));
    }
    let nodes_spread =
        list(&zones.template("StatefulSet", "db-g1")["spec"]["topologySpreadConstraints"]);
    assert_eq!(
        int(&nodes_spread[0]["minDomains"]),
        Some(2),
        "g1 and g2 in two zones"
    );
}

/// Whether the container's environment variable `n` comes from the Secret's REDIS_PASSWORD.
fn from_the_password(b: &Build, c: &Yaml, n: &str) -> bool {
    list(&c["env"]).iter().any(|e| {
        let r = &e["valueFrom"]["secretKeyRef"];
        e["name"].as_str() == Some(n)
            && r["key"].as_str() == Some("REDIS_PASSWORD")
            && r["name"]
                .as_str()
                .is_some_and(|s| b.all("Secret").iter().any(|secret| name(secret) == s))
    })
}

/// Whether the readiness probe asks for a PONG: redis-cli exits 0 on an error reply, so a
/// bare `redis-cli ping` would pass on NOAUTH.
fn probe_wants_pong(c: &Yaml) -> bool {
    strings(&c["readinessProbe"]["exec"]["command"])
        .join(" ")
        .contains("ping | grep -q PONG")
}

#[test]
fn every_redis_process_requires_the_lab_password() {
    let Some(builds) = builds() else {
        return;
    };
    let ports = LabPorts::default();
    for b in builds {
        for (node, _, _) in nodes(&ports) {
            // Required from every client and used as a replica, from the Secret, never a
            // literal; the probe's redis-cli authenticates.
            let command = node_command(b, node);
            for needle in [
                "--requirepass $(REDIS_PASSWORD)",
                "--masterauth $(REDIS_PASSWORD)",
                "--protected-mode yes",
            ] {
                assert!(
                    command.contains(needle),
                    "{}: {node} lacks {needle}",
                    b.name
                );
            }
            let c = container(b.template("StatefulSet", node), "redis");
            assert!(probe_wants_pong(c), "{}: {node}", b.name);
            assert!(
                from_the_password(b, c, "REDIS_PASSWORD"),
                "{}: {node}",
                b.name
            );
            assert!(
                from_the_password(b, c, "REDISCLI_AUTH"),
                "{}: {node}",
                b.name
            );
        }
        // The sentinels: the init container writes requirepass and auth-pass at every start
        // (outside the first-start block), from the Secret.
        let t = b.template("StatefulSet", "sentinel");
        let init = container(t, "config");
        let script = strings(&init["command"]).join(" ");
        let after_first_start = &script[script.find("\nfi\n").expect("the first-start block")..];
        for needle in [
            "requirepass",
            &format!("sentinel auth-pass {MASTER_NAME}"),
            "$REDIS_PASSWORD",
        ] {
            assert!(
                after_first_start.contains(needle),
                "{}: the sentinels' init lacks {needle}: {script}",
                b.name
            );
        }
        assert!(from_the_password(b, init, "REDIS_PASSWORD"), "{}", b.name);
        assert!(probe_wants_pong(container(t, "sentinel")), "{}", b.name);
        assert!(
            from_the_password(b, container(t, "sentinel"), "REDISCLI_AUTH"),
            "{}",
            b.name
        );
    }
}
