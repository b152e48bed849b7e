//! The Docker topology agrees with the lab: `docker-compose config -q` accepts the compose
//! file, and its service names, ports, proxy names, replica settings, announced addresses and
//! sentinels are the ones `caplab lab` uses (docs/design.md). `toxiproxy/proxies.json` and
//! `sentinel/sentinel.conf` are checked without Docker. Compose is validated only: no Docker
//! engine runs these containers here.
//!
//! Without `docker-compose` on PATH the compose checks are skipped with a note, unless `CI`
//! is set (CI installs it through scripts/deps.sh).

use std::path::PathBuf;
use std::process::Command;

use caplab::faults::LAB_PROXIES;
use caplab::lab::LabPorts;
use caplab::lab::sentinel::{DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS, MASTER_NAME, QUORUM};
use yaml_rust2::{Yaml, YamlLoader};

const SERVICES: [&str; 10] = [
    "db_g1",
    "db_g2",
    "sentinel1",
    "sentinel2",
    "sentinel3",
    "toxiproxy",
    "app_cp",
    "app_ap",
    "prometheus",
    "grafana",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// `docker-compose config` (merged and normalised), or `None` when docker-compose is missing
/// outside CI.
fn compose_config(quiet: bool) -> Option<std::process::Output> {
    let mut command = Command::new("docker-compose");
    command
        .current_dir(root())
        .args(["-f", "docker-compose.yml", "config"])
        .env("GRAFANA_ADMIN_PASSWORD", "test-grafana-password");
    if quiet {
        command.arg("-q");
    }
    match command.output() {
        Ok(output) => Some(output),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && std::env::var_os("CI").is_none() => {
            println!(
                "note: docker-compose is not installed; skipping (scripts/deps.sh installs it)"
            );
            None
        }
        Err(e) => panic!("cannot run docker-compose: {e}"),
    }
}

#[test]
fn compose_file_is_valid() {
    let Some(output) = compose_config(true) else {
        return;
    };
    assert!(
        output.status.success(),
        "docker-compose config -q: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Grafana's admin password has no default: without it compose refuses.
    let refused = Command::new("docker-compose")
        .current_dir(root())
        .args(["-f", "docker-compose.yml", "config", "-q"])
        .env_remove("GRAFANA_ADMIN_PASSWORD")
        .output()
        .expect("docker-compose");
    assert!(
        !refused.status.success(),
        "a compose file without GRAFANA_ADMIN_PASSWORD was accepted"
    );
}

/// `(published, target)` of each port of a service, from either form docker-compose prints
/// (`{published, target}`, or `ip:published:target/proto`).
fn published(service: &Yaml) -> Vec<(String, i64)> {
    let ports = service["ports"].as_vec().cloned().unwrap_or_default();
    ports
        .iter()
        .map(|p| match p {
            Yaml::String(short) => {
                let short = short.split('/').next().unwrap_or(short);
                let mut parts = short.rsplit(':');
                let target = parts
                    .next()
                    .and_then(|t| t.parse().ok())
                    .expect("target port");
                (parts.next().expect("published port").to_string(), target)
            }
            long => {
                let published = match &long["published"] {
                    Yaml::Integer(n) => n.to_string(),
                    Yaml::String(s) => s.clone(),
                    other => panic!("published port {other:?}"),
                };
                (published, long["target"].as_i64().expect("target port"))
            }
        })
        .collect()
}

/// The file as `docker-compose config` resolves it (`None` when the tool is missing).
fn resolved_compose() -> Option<Yaml> {
    let output = compose_config(false)?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    Some(YamlLoader::load_from_str(&text).expect("YAML").remove(0))
}

fn strings(yaml: &Yaml) -> Vec<String> {
    yaml.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_services_ports_and_proxies_match_the_lab() {
    let Some(doc) = resolved_compose() else {
        return;
    };
    let services = &doc["services"];
    let names: Vec<&str> = services
        .as_hash()
        .expect("services")
        .keys()
        .filter_map(Yaml::as_str)
        .collect();
    for name in SERVICES {
        assert!(names.contains(&name), "no service {name} in {names:?}");
        let service = &services[name];
        assert_eq!(
            service["restart"].as_str(),
            Some("unless-stopped"),
            "{name}"
        );
        assert!(
            !service["healthcheck"]["test"].is_badvalue(),
            "{name} has no healthcheck"
        );
        assert!(
            !service["deploy"]["resources"]["limits"]["memory"].is_badvalue(),
            "{name} has no memory limit"
        );
    }
    let ports = LabPorts::default();
    assert_eq!(
        services["toxiproxy"]["image"].as_str(),
        Some("ghcr.io/shopify/toxiproxy:2.9.0")
    );
    assert_eq!(
        published(&services["toxiproxy"]),
        vec![(ports.proxy_api.to_string(), i64::from(ports.proxy_api))]
    );
    assert_eq!(
        published(&services["app_cp"]),
        vec![(ports.app_cp.to_string(), i64::from(ports.app_cp))]
    );
    // The apps are published on loopback unless the operator says otherwise.
    for app in ["app_cp", "app_ap"] {
        let raw = strings(&services[app]["ports"]).join(" ");
        let long = services[app]["ports"][0]["host_ip"].as_str().unwrap_or("");
        assert!(
            raw.starts_with("127.0.0.1:") || long == "127.0.0.1",
            "{app} ports {:?}",
            services[app]["ports"]
        );
    }
    let ap = published(&services["app_ap"]);
    assert_eq!(ap.len(), 1);
    assert_eq!(ap[0].1, i64::from(ports.app_ap));
    assert!(
        ap[0].0.starts_with(&format!("{}-", ports.app_ap)),
        "app_ap ports {ap:?}: a range for --scale"
    );

    // The apps reach the nodes only through the proxies g1 and g2, and s1 through `sentinels`.
    for (app, mode, port) in [
        ("app_cp", "cp", ports.app_cp),
        ("app_ap", "ap", ports.app_ap),
    ] {
        let env = &services[app]["environment"];
        assert_eq!(env["MODE"].as_str(), Some(mode));
        assert_eq!(env["PORT"].as_str(), Some(port.to_string().as_str()));
        assert_eq!(
            env["REDIS_G1_URL"].as_str(),
            Some(format!("redis://toxiproxy:{}", ports.proxy_g1).as_str())
        );
        assert_eq!(
            env["REDIS_G2_URL"].as_str(),
            Some(format!("redis://toxiproxy:{}", ports.proxy_g2).as_str())
        );
        // The key is a Docker secret, read from its file; never in the environment.
        assert_eq!(
            env["SECRET_KEY_FILE"].as_str(),
            Some("/run/secrets/secret_key")
        );
        assert!(
            env["SECRET_KEY"].is_badvalue(),
            "{app}: SECRET_KEY in the environment"
        );
        assert!(
            strings(&services[app]["secrets"]).contains(&"secret_key".to_string())
                || !services[app]["secrets"][0]["source"].is_badvalue(),
            "{app} does not get the secret"
        );
        assert_eq!(
            env["SENTINEL_URLS"].as_str(),
            Some(format!("redis://toxiproxy:{}", ports.proxy_sentinels).as_str()),
            "{app}"
        );
    }
    // Both nodes carry the design's replica settings and an AOF, run from a config file in
    // their volume (where Sentinel persists a role), and announce their cluster proxy; db_g2
    // starts as a replica of db_g1 through `cluster_g1`.
    for (node, cluster) in [
        ("db_g1", ports.proxy_cluster_g1),
        ("db_g2", ports.proxy_cluster_g2),
    ] {
        let command = strings(&services[node]["command"]).join(" ");
        for needle in [
            "redis-server /data/redis.conf".to_string(),
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
                "{node} command lacks {needle}: {command}"
            );
        }
    }
    let g2 = strings(&services["db_g2"]["command"]).join(" ");
    assert!(
        g2.contains(&format!(
            "|| echo \"replicaof toxiproxy {}\" > /data/redis.conf",
            ports.proxy_cluster_g1
        )),
        "db_g2 does not start as a replica through cluster_g1: {g2}"
    );
    assert!(
        !services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].is_badvalue(),
        "Grafana's admin password is set from the environment"
    );
    let g1 = strings(&services["db_g1"]["command"]).join(" ");
    assert!(!g1.contains("replicaof"), "{g1}");
    // Three sentinels, each from a writable copy of the mounted sentinel.conf, in sentinel
    // mode, announcing its own name, with a volume of its own.
    for name in ["sentinel1", "sentinel2", "sentinel3"] {
        let service = &services[name];
        let command = strings(&service["command"]).join(" ");
        assert!(
            command.contains("cp /config/sentinel.conf /data/sentinel.conf")
                && command.contains("redis-server /data/sentinel.conf --sentinel")
                && command.contains("sentinel announce-ip $"),
            "{name}: {command}"
        );
        assert_eq!(service["environment"]["SENTINEL_NAME"].as_str(), Some(name));
        let volumes = strings(&service["volumes"]).join(" ");
        assert!(
            volumes.contains("sentinel/sentinel.conf:/config/sentinel.conf:ro")
                && volumes.contains(&format!("{name}_data:/data")),
            "{name}: {volumes}"
        );
    }
    for volume in [
        "db_g1_data",
        "db_g2_data",
        "sentinel1_data",
        "sentinel2_data",
        "sentinel3_data",
    ] {
        assert!(!doc["volumes"][volume].is_badvalue(), "no volume {volume}");
    }
}

#[test]
fn the_compose_sentinels_watch_g1_as_the_lab_does() {
    let conf = read("sentinel/sentinel.conf");
    let lines: Vec<&str> = conf
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let ports = LabPorts::default();
    let want = [
        "sentinel resolve-hostnames yes".to_string(),
        "sentinel announce-hostnames yes".into(),
        format!(
            "sentinel monitor {MASTER_NAME} toxiproxy {} {QUORUM}",
            ports.proxy_cluster_g1
        ),
        format!("sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}"),
        format!("sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}"),
        format!("sentinel parallel-syncs {MASTER_NAME} 1"),
    ];
    for line in &want {
        assert!(lines.contains(&line.as_str()), "sentinel.conf lacks {line}");
    }
    // The monitored host is a name: Sentinel accepts it only if resolve-hostnames comes first.
    let at = |l: &str| lines.iter().position(|x| *x == l);
    assert!(
        at(&want[0]) < at(&want[2]),
        "resolve-hostnames after monitor"
    );
}

#[test]
fn toxiproxy_populate_file_has_the_lab_proxies_on_the_lab_ports() {
    let proxies: serde_json::Value =
        serde_json::from_str(&read("toxiproxy/proxies.json")).expect("JSON");
    let proxies = proxies.as_array().expect("an array of proxies");
    let names: Vec<&str> = proxies.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, LAB_PROXIES);
    let ports = LabPorts::default();
    let expect = [
        ("g1", ports.proxy_g1, "db_g1:6379"),
        ("g2", ports.proxy_g2, "db_g2:6379"),
        ("cluster_g1", ports.proxy_cluster_g1, "db_g1:6379"),
        ("cluster_g2", ports.proxy_cluster_g2, "db_g2:6379"),
        ("sentinels", ports.proxy_sentinels, "sentinel1:26379"),
    ];
    for (proxy, (name, port, upstream)) in proxies.iter().zip(expect) {
        assert_eq!(proxy["name"], name);
        assert_eq!(proxy["listen"], format!("0.0.0.0:{port}"), "{name}");
        assert_eq!(proxy["upstream"], upstream, "{name}");
        assert_eq!(proxy["enabled"], true, "{name}");
    }
}

#[test]
fn dockerfile_is_multi_stage_and_runs_as_a_user() {
    let dockerfile = read("Dockerfile");
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(stages >= 2, "not multi-stage");
    let user = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("a USER line");
    assert!(!["root", "0"].contains(&user.trim()), "runs as {user}");
    // What the image copies must exist (and the manifest's benches with it).
    for copied in ["Cargo.toml", "Cargo.lock", "src", "benches"] {
        assert!(root().join(copied).exists(), "{copied} missing");
    }
}

#[test]
fn compose_redis_and_sentinels_require_the_password_from_a_secret() {
    let Some(doc) = resolved_compose() else {
        return;
    };
    let services = &doc["services"];
    let secret = "/run/secrets/redis_password";
    // Every node and sentinel gets the secret and writes it into its config file at start;
    // the apps read it as REDIS_PASSWORD_FILE, never from the environment.
    for (service, lines) in [
        ("db_g1", ["requirepass", "masterauth"]),
        ("db_g2", ["requirepass", "masterauth"]),
        ("sentinel1", ["requirepass", "sentinel auth-pass caplab"]),
        ("sentinel2", ["requirepass", "sentinel auth-pass caplab"]),
        ("sentinel3", ["requirepass", "sentinel auth-pass caplab"]),
    ] {
        assert!(
            secret_sources(&services[service]).contains(&"redis_password".to_string()),
            "{service} does not get the redis_password secret"
        );
        let command = strings(&services[service]["command"]).join(" ");
        assert!(
            command.contains(&format!("password=\"$$(cat {secret})\"")),
            "{service} does not read the secret: {command}"
        );
        for line in lines {
            assert!(
                command.contains(&format!("{line} \"%s\"")),
                "{service} does not write {line} from the secret: {command}"
            );
        }
        let health = strings(&services[service]["healthcheck"]["test"]).join(" ");
        assert!(
            health.contains(&format!("REDISCLI_AUTH=\"$$(cat {secret})\"")),
            "{service}'s healthcheck does not authenticate: {health}"
        );
    }
    for app in ["app_cp", "app_ap"] {
        assert!(
            secret_sources(&services[app]).contains(&"redis_password".to_string()),
            "{app} does not get the redis_password secret"
        );
        let env = &services[app]["environment"];
        assert_eq!(env["REDIS_PASSWORD_FILE"].as_str(), Some(secret), "{app}");
        assert!(
            env["REDIS_PASSWORD"].is_badvalue(),
            "{app}: REDIS_PASSWORD in the environment"
        );
    }
    // The password is never a literal: every requirepass, masterauth and auth-pass in the
    // compose file takes it from the secret.
    let raw = read("docker-compose.yml");
    for line in raw.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for word in ["requirepass", "masterauth", "auth-pass", "--requirepass"] {
            if line.contains(word) {
                assert!(
                    line.contains("$$password") || line.contains("sed -i"),
                    "a password that is not the secret: {line}"
                );
            }
        }
    }
    assert!(
        !read("sentinel/sentinel.conf")
            .lines()
            .any(|l| l.starts_with("requirepass") || l.contains("auth-pass")),
        "sentinel.conf holds a password"
    );
}

/// The secrets a service gets, in either form docker-compose prints (`[name]` or
/// `[{source: name, ...}]`).
fn secret_sources(service: &Yaml) -> Vec<String> {
    let mut names = strings(&service["secrets"]);
    if let Some(list) = service["secrets"].as_vec() {
        names.extend(
            list.iter()
                .filter_map(|s| s["source"].as_str().map(String::from)),
        );
    }
    names
}
