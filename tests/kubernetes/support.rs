//! Rendering the overlays once per test run, and reading what they render.
//!
//! The manifests, and the repository folders their kustomizations read (prometheus/, grafana/,
//! sentinel/), are copied into a temporary workspace with test keys written where a user
//! writes theirs (`secret.env`, never committed), so a key in the working tree is neither read
//! nor needed. Four builds are checked: the overlays `lab` and `zones`, a per-student lab made
//! by `deploy/kubernetes/new-lab.sh` as the README says, and `zones` with the
//! `prometheus-operator` component, as the component's kustomization says.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use yaml_rust2::{Yaml, YamlLoader};

/// The builds every test looks at: (name, directory under the workspace's deploy/kubernetes).
pub const BUILDS: [(&str, &str); 4] = [
    ("lab", "overlays/lab"),
    ("zones", "overlays/zones"),
    ("student", "labs/student-1"),
    ("operator", "overlays/zones-operator"),
];

/// The session key the test workspace uses (64 hex characters, as `openssl rand -hex 32`).
pub const TEST_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The Redis password the test workspace uses.
pub const TEST_PASSWORD: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// kubectl (with kustomize v5) and kubernetes-validate.
pub struct Tools {
    pub kubectl: PathBuf,
    pub validator: PathBuf,
}

/// Where scripts/deps.sh puts the tools the machine lacks.
pub fn tools_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/nonexistent"));
    cache.join("caplab").join("kubernetes")
}

/// The kustomize major version `kubectl version --client` reports, if it runs.
fn kustomize_major(kubectl: &Path) -> Option<u32> {
    let out = Command::new(kubectl)
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["kustomizeVersion"]
        .as_str()?
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

fn find_tools() -> Result<Tools, String> {
    let dir = tools_dir();
    let kubectl = [dir.join("bin/kubectl"), PathBuf::from("kubectl")]
        .into_iter()
        .find(|k| kustomize_major(k).is_some_and(|m| m >= 5))
        .ok_or_else(|| {
            format!(
                "no kubectl with kustomize v5 on PATH or in {} (Debian bookworm's own kubectl, \
                 1.20, is too old)",
                dir.join("bin").display()
            )
        })?;
    let validator = [
        dir.join("venv/bin/kubernetes-validate"),
        PathBuf::from("kubernetes-validate"),
    ]
    .into_iter()
    .find(|v| {
        Command::new(v)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
    .ok_or_else(|| {
        format!(
            "no kubernetes-validate on PATH or in {}",
            dir.join("venv/bin").display()
        )
    })?;
    Ok(Tools { kubectl, validator })
}

/// The tools, or `None` (with a note) when they are missing outside CI.
pub fn tools() -> Option<&'static Tools> {
    static TOOLS: OnceLock<Result<Tools, String>> = OnceLock::new();
    match TOOLS.get_or_init(find_tools) {
        Ok(tools) => Some(tools),
        Err(why) if std::env::var_os("CI").is_none() => {
            println!(
                "note: SKIPPING the Kubernetes manifest checks: {why}; scripts/deps.sh \
                 (run by ./test.sh) installs the tools"
            );
            None
        }
        Err(why) => panic!("{why}: scripts/deps.sh should have installed it"),
    }
}

/// Copies `from` into `to`, leaving out `secret.env` files (a user's keys) and stamped labs.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name == "secret.env" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            if name == "labs" {
                continue;
            }
            copy_tree(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).expect("copy");
        }
    }
}

/// A fresh copy of what the manifests read, with no key written yet.
pub fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["deploy/kubernetes", "prometheus", "grafana", "sentinel"] {
        copy_tree(&root().join(sub), &dir.path().join(sub));
    }
    dir
}

/// Writes the test key and password where each build expects its user's, the student lab (through
/// new-lab.sh) and the operator overlay.
fn prepare(dir: &Path) {
    let k8s = dir.join("deploy/kubernetes");
    for overlay in ["lab", "zones"] {
        std::fs::write(
            k8s.join("overlays").join(overlay).join("secret.env"),
            format!("SECRET_KEY={TEST_KEY}\nREDIS_PASSWORD={TEST_PASSWORD}\n"),
        )
        .expect("key");
    }
    let out = Command::new("sh")
        .arg(k8s.join("new-lab.sh"))
        .arg("student-1")
        .current_dir(dir)
        .output()
        .expect("run new-lab.sh");
    assert!(
        out.status.success(),
        "new-lab.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let operator = k8s.join("overlays/zones-operator");
    std::fs::create_dir_all(&operator).expect("mkdir");
    std::fs::write(
        operator.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
         namespace: caplab\nresources:\n  - ../zones\n\
         components:\n  - ../../components/prometheus-operator\n",
    )
    .expect("write");
}

/// `kubectl kustomize <dir>`: its output, or its error.
pub fn kustomize(tools: &Tools, dir: &Path) -> Result<String, String> {
    let out = Command::new(&tools.kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("run kubectl");
    if out.status.success() {
        // A deprecated field or a patch that matched nothing is only a warning to kustomize.
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(
            warnings.trim().is_empty(),
            "kubectl kustomize warns: {warnings}"
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// One rendered build: its text and its objects.
pub struct Build {
    pub name: &'static str,
    pub text: String,
    pub objects: Vec<Yaml>,
}

/// Every build of [`BUILDS`], rendered once; `None` when the tools are missing outside CI.
pub fn builds() -> Option<&'static [Build]> {
    static BUILT: OnceLock<Vec<Build>> = OnceLock::new();
    let tools = tools()?;
    Some(BUILT.get_or_init(|| {
        let dir = workspace();
        prepare(dir.path());
        BUILDS
            .iter()
            .map(|(name, sub)| {
                let text = kustomize(tools, &dir.path().join("deploy/kubernetes").join(sub))
                    .unwrap_or_else(|e| panic!("kubectl kustomize {sub}: {e}"));
                let objects = YamlLoader::load_from_str(&text)
                    .unwrap_or_else(|e| panic!("{sub} renders invalid YAML: {e}"));
                Build {
                    name,
                    text,
                    objects,
                }
            })
            .collect()
    }))
}

/// The build called `name`.
pub fn build(name: &str) -> Option<&'static Build> {
    builds().map(|all| all.iter().find(|b| b.name == name).expect("a known build"))
}

pub fn kind(o: &Yaml) -> &str {
    o["kind"].as_str().unwrap_or("")
}

pub fn name(o: &Yaml) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

/// Whether `actual` is `wanted`, or `wanted` with the hash suffix a generator adds.
pub fn is_named(actual: &str, wanted: &str) -> bool {
    actual == wanted
        || actual
            .strip_prefix(wanted)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|hash| hash.len() == 10 && hash.chars().all(|c| c.is_ascii_alphanumeric()))
}

impl Build {
    pub fn all(&self, k: &str) -> Vec<&Yaml> {
        self.objects.iter().filter(|o| kind(o) == k).collect()
    }

    /// The object of kind `k` named `n` (or `n` with a generator's hash).
    pub fn get(&self, k: &str, n: &str) -> &Yaml {
        self.find(k, n)
            .unwrap_or_else(|| panic!("{}: no {k} {n}", self.name))
    }

    pub fn find(&self, k: &str, n: &str) -> Option<&Yaml> {
        self.objects
            .iter()
            .find(|o| kind(o) == k && is_named(name(o), n))
    }

    /// Every pod template: (workload kind and name, the template).
    pub fn templates(&self) -> Vec<(String, &Yaml)> {
        self.objects
            .iter()
            .filter(|o| matches!(kind(o), "Deployment" | "StatefulSet"))
            .map(|o| (format!("{} {}", kind(o), name(o)), &o["spec"]["template"]))
            .collect()
    }

    /// The template of the workload of kind `k` named `n`.
    pub fn template(&self, k: &str, n: &str) -> &Yaml {
        &self.get(k, n)["spec"]["template"]
    }
}

/// `data.<key>` of a ConfigMap as text.
pub fn data<'a>(config_map: &'a Yaml, key: &str) -> &'a str {
    config_map["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{} has no data key {key}", name(config_map)))
}

/// A YAML list (empty when absent).
pub fn list(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

/// A list of strings.
pub fn strings(y: &Yaml) -> Vec<String> {
    list(y)
        .iter()
        .map(|s| match s {
            Yaml::String(s) => s.clone(),
            Yaml::Integer(n) => n.to_string(),
            other => panic!("not a string: {other:?}"),
        })
        .collect()
}

/// A map of string labels.
pub fn labels(y: &Yaml) -> BTreeMap<String, String> {
    y.as_hash()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether every `matchLabels` pair of `selector` is among `labels` (no matchExpressions are
/// used in these manifests: one is a failure, so this stays exact).
pub fn selects(selector: &Yaml, labels_of: &BTreeMap<String, String>) -> bool {
    assert!(
        selector["matchExpressions"].is_badvalue(),
        "matchExpressions are not evaluated here"
    );
    labels(&selector["matchLabels"])
        .iter()
        .all(|(k, v)| labels_of.get(k) == Some(v))
}

/// The containers of a template, init containers first.
pub fn containers(template: &Yaml) -> Vec<&Yaml> {
    list(&template["spec"]["initContainers"])
        .iter()
        .chain(list(&template["spec"]["containers"]))
        .collect()
}

/// The one container named `n` in `template`.
pub fn container<'a>(template: &'a Yaml, n: &str) -> &'a Yaml {
    containers(template)
        .into_iter()
        .find(|c| c["name"].as_str() == Some(n))
        .unwrap_or_else(|| panic!("no container {n}"))
}

/// A container's `env` value `n` (a literal value), if set.
pub fn env_value<'a>(c: &'a Yaml, n: &str) -> Option<&'a str> {
    list(&c["env"])
        .iter()
        .find(|e| e["name"].as_str() == Some(n))
        .and_then(|e| e["value"].as_str())
}

/// An integer field.
pub fn int(y: &Yaml) -> Option<i64> {
    y.as_i64()
}

/// What a container reads at `path` when that path is a file of a Secret volume it mounts:
/// the Secret's key, decoded from this build. An error says which link is missing.
pub fn secret_file(b: &Build, template: &Yaml, c: &Yaml, path: &str) -> Result<Vec<u8>, String> {
    let (dir, file) = path.rsplit_once('/').ok_or("not an absolute path")?;
    let mount = list(&c["volumeMounts"])
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(dir))
        .ok_or_else(|| format!("nothing is mounted at {dir}"))?;
    let volume = list(&template["spec"]["volumes"])
        .iter()
        .find(|v| v["name"] == mount["name"])
        .ok_or("the mount's volume is not declared")?;
    let secret_name = volume["secret"]["secretName"]
        .as_str()
        .ok_or_else(|| format!("{dir} is not a Secret volume"))?;
    let items = list(&volume["secret"]["items"]);
    let key = if items.is_empty() {
        file.to_string()
    } else {
        items
            .iter()
            .find(|i| i["path"].as_str() == Some(file))
            .and_then(|i| i["key"].as_str())
            .ok_or_else(|| format!("no item of the volume is {file}"))?
            .to_string()
    };
    let secret = b
        .objects
        .iter()
        .find(|o| kind(o) == "Secret" && name(o) == secret_name)
        .ok_or_else(|| format!("no Secret {secret_name}"))?;
    let encoded: String = secret["data"][key.as_str()]
        .as_str()
        .ok_or_else(|| format!("Secret {secret_name} has no key {key}"))?
        .split_whitespace()
        .collect();
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded)
        .map_err(|e| format!("Secret {secret_name} {key}: {e}"))
}

/// The emptyDir volume a container's `path` lies on (the mount's path and the volume), if the
/// container mounts one there writable.
pub fn empty_dir_under<'a>(
    template: &'a Yaml,
    c: &'a Yaml,
    path: &str,
) -> Option<(&'a str, &'a Yaml)> {
    let mount = list(&c["volumeMounts"]).iter().find(|m| {
        m["mountPath"]
            .as_str()
            .is_some_and(|dir| path.starts_with(&format!("{}/", dir.trim_end_matches('/'))))
            && m["readOnly"].as_bool() != Some(true)
    })?;
    let volume = list(&template["spec"]["volumes"])
        .iter()
        .find(|v| v["name"] == mount["name"])?;
    (!volume["emptyDir"].is_badvalue())
        .then(|| (mount["mountPath"].as_str().unwrap_or("/"), volume))
}

/// A Kubernetes quantity of bytes (`1Gi`, `256Mi`, `500M`, `1024`).
pub fn bytes_quantity(q: &str) -> Option<u64> {
    let (digits, unit) = q.split_at(q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len()));
    let n: u64 = digits.parse().ok()?;
    let scale: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(scale)
}
