//! Production habits every container keeps: not root (and the app as the image's own user),
//! no privilege escalation, a read-only root filesystem (Redis and the sentinels write only to
//! their volumes), every capability dropped, the runtime's seccomp profile, no service account
//! token, and resource requests and limits.

use yaml_rust2::Yaml;

use super::support::{builds, container, containers, int, list, read};

/// A security setting of the container, else of its pod.
fn effective<'a>(pod: &'a Yaml, c: &'a Yaml, field: &str) -> &'a Yaml {
    let own = &c["securityContext"][field];
    if own.is_badvalue() {
        &pod["spec"]["securityContext"][field]
    } else {
        own
    }
}

#[test]
fn every_container_runs_as_non_root_and_locked_down() {
    let Some(builds) = builds() else {
        return;
    };
    for b in builds {
        for (workload, t) in b.templates() {
            assert_eq!(
                t["spec"]["automountServiceAccountToken"].as_bool(),
                Some(false),
                "{}: {workload} mounts an API token it does not use",
                b.name
            );
            assert_eq!(
                t["spec"]["securityContext"]["seccompProfile"]["type"].as_str(),
                Some("RuntimeDefault"),
                "{}: {workload}",
                b.name
            );
            for c in containers(t) {
                let what = format!(
                    "{}: {workload}/{}",
                    b.name,
                    c["name"].as_str().unwrap_or("?")
                );
                assert_eq!(
                    effective(t, c, "runAsNonRoot").as_bool(),
                    Some(true),
                    "{what}"
                );
                let uid = int(effective(t, c, "runAsUser"));
                assert!(uid.is_some_and(|u| u > 0), "{what}: runAsUser {uid:?}");
                let sc = &c["securityContext"];
                assert_eq!(
                    sc["allowPrivilegeEscalation"].as_bool(),
                    Some(false),
                    "{what}"
                );
                assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "{what}");
                let dropped: Vec<&str> = list(&sc["capabilities"]["drop"])
                    .iter()
                    .filter_map(Yaml::as_str)
                    .collect();
                assert_eq!(dropped, ["ALL"], "{what}");
                assert!(sc["capabilities"]["add"].is_badvalue(), "{what}");
                assert!(sc["privileged"].as_bool() != Some(true), "{what}");
                for (bound, resource) in [
                    ("requests", "cpu"),
                    ("requests", "memory"),
                    ("limits", "cpu"),
                    ("limits", "memory"),
                ] {
                    assert!(
                        !c["resources"][bound][resource].is_badvalue(),
                        "{what}: no {bound}.{resource}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_apps_run_as_the_images_user() {
    let Some(builds) = builds() else {
        return;
    };
    // The Dockerfile's `useradd --uid N`: the uid the image's files belong to.
    let dockerfile = read("Dockerfile");
    let uid: i64 = dockerfile
        .split("--uid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("a useradd --uid in the Dockerfile");
    for b in builds {
        for app in ["app-cp", "app-ap"] {
            let t = b.template("Deployment", app);
            let c = container(t, "caplab");
            assert_eq!(
                int(effective(t, c, "runAsUser")),
                Some(uid),
                "{}: {app}",
                b.name
            );
        }
    }
}
