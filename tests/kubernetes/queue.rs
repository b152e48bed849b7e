//! AP's write-behind queue on Kubernetes: every AP instance records its queue in a file of its
//! own pod's emptyDir volume, fsynced before each 202, so a crash of the app (the container
//! restarts in the same pod, the volume stays) replays it as `caplab lab up` does locally. The
//! volume is writable under a read-only root filesystem, never shared between instances, and
//! large enough for a full queue of the largest records (the kubelet evicts a pod whose
//! emptyDir passes its limit, which would lose the queue it exists to keep).

use caplab::cli::{Cli, Command};
use clap::Parser;

use super::support::{builds, bytes_quantity, container, empty_dir_under, env_value};

#[test]
fn every_ap_instance_queues_to_a_file_on_its_own_pod_volume() {
    let Some(builds) = builds() else {
        return;
    };
    let cli =
        Cli::try_parse_from(["caplab", "serve", "--mode", "ap"]).unwrap_or_else(|e| panic!("{e}"));
    let Command::Serve(defaults) = cli.command else {
        panic!("not caplab serve");
    };
    for b in builds {
        let t = b.template("Deployment", "app-ap");
        let c = container(t, "caplab");
        // A full queue of the largest records, with the manifest's settings or the defaults.
        let setting = |name: &str, default: usize| {
            env_value(c, name).map_or(default as u64, |v| v.parse().expect("a number"))
        };
        let full_queue = setting("AP_QUEUE_CAPACITY", defaults.ap_queue_capacity)
            * (setting("MAX_VALUE_BYTES", defaults.max_value_bytes)
                + setting("MAX_KEY_BYTES", defaults.max_key_bytes));
        let file = env_value(c, "AP_QUEUE_FILE")
            .unwrap_or_else(|| panic!("{}: app-ap has no AP_QUEUE_FILE", b.name));
        assert_eq!(
            env_value(c, "AP_QUEUE_FSYNC"),
            Some("on"),
            "{}: a 202 is fsynced",
            b.name
        );
        let (dir, volume) = empty_dir_under(t, c, file).unwrap_or_else(|| {
            panic!(
                "{}: {file} is not on a writable emptyDir of the pod",
                b.name
            )
        });
        let limit = volume["emptyDir"]["sizeLimit"]
            .as_str()
            .and_then(bytes_quantity)
            .unwrap_or_else(|| panic!("{}: {dir} has no readable sizeLimit", b.name));
        assert!(
            limit > full_queue,
            "{}: {dir} holds {limit} bytes, a full queue needs {full_queue}",
            b.name
        );
    }
}
