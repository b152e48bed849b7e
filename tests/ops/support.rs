//! Shared helpers of the ops tests: the repository's files, the rules read from YAML, the
//! dashboard's queries, and running `promtool`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

/// Rule files, in the order Prometheus loads them (prometheus/prometheus.yml).
pub const RULE_FILES: [&str; 2] = [
    "prometheus/rules/recording.yml",
    "prometheus/rules/alerts.yml",
];

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

pub fn yaml(rel: &str) -> Yaml {
    let docs = YamlLoader::load_from_str(&read(rel))
        .unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"));
    docs.into_iter()
        .next()
        .unwrap_or_else(|| panic!("{rel} is empty"))
}

/// Files of a folder of the repository whose names end with `suffix`, sorted, as paths from the root.
pub fn files_in(dir: &str, suffix: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    out.sort();
    out
}

/// One rule of a rule file: an alert or a recording rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub file: String,
    pub alert: Option<String>,
    pub record: Option<String>,
    pub expr: String,
    pub for_: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl Rule {
    pub fn name(&self) -> &str {
        self.alert
            .as_deref()
            .or(self.record.as_deref())
            .unwrap_or("?")
    }
}

fn string_map(y: &Yaml, what: &str) -> BTreeMap<String, String> {
    match y {
        Yaml::BadValue | Yaml::Null => BTreeMap::new(),
        Yaml::Hash(h) => h
            .iter()
            .map(|(k, v)| {
                let k = k
                    .as_str()
                    .unwrap_or_else(|| panic!("{what}: key {k:?} is not a string"));
                let v = v
                    .as_str()
                    .unwrap_or_else(|| panic!("{what}: {k} is not a string"));
                (k.to_string(), v.to_string())
            })
            .collect(),
        other => panic!("{what} is not a map: {other:?}"),
    }
}

pub fn rules_of(file: &str) -> Vec<Rule> {
    let doc = yaml(file);
    let groups = doc["groups"]
        .as_vec()
        .unwrap_or_else(|| panic!("{file}: no `groups` list"));
    let mut out = Vec::new();
    for g in groups {
        let rules = g["rules"]
            .as_vec()
            .unwrap_or_else(|| panic!("{file}: a group has no `rules` list"));
        for r in rules {
            let s = |k: &str| r[k].as_str().map(str::to_string);
            let rule = Rule {
                file: file.to_string(),
                alert: s("alert"),
                record: s("record"),
                expr: s("expr")
                    .unwrap_or_else(|| panic!("{file}: a rule has no string `expr`: {r:?}")),
                for_: s("for"),
                labels: string_map(&r["labels"], &format!("{file} labels")),
                annotations: string_map(&r["annotations"], &format!("{file} annotations")),
            };
            assert!(
                rule.alert.is_some() != rule.record.is_some(),
                "{file}: a rule must be an alert or a record: {r:?}"
            );
            out.push(rule);
        }
    }
    out
}

pub fn all_rules() -> Vec<Rule> {
    RULE_FILES.iter().flat_map(|f| rules_of(f)).collect()
}

pub fn alerts() -> Vec<Rule> {
    all_rules()
        .into_iter()
        .filter(|r| r.alert.is_some())
        .collect()
}

pub fn recordings() -> Vec<Rule> {
    all_rules()
        .into_iter()
        .filter(|r| r.record.is_some())
        .collect()
}

/// A PromQL expression of a dashboard, with where it is (for messages).
#[derive(Debug, Clone)]
pub struct Query {
    pub place: String,
    pub expr: String,
}

pub fn dashboard_files() -> Vec<String> {
    let files = files_in("grafana/dashboards", ".json");
    assert!(!files.is_empty(), "no dashboard in grafana/dashboards");
    files
}

pub fn dashboard(file: &str) -> Value {
    serde_json::from_str(&read(file)).unwrap_or_else(|e| panic!("{file} is not valid JSON: {e}"))
}

/// Every panel of a dashboard, rows' nested panels included (collapsed rows keep theirs inside).
pub fn panels(dash: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dash["panels"], &mut out);
    out
}

pub fn panel_title(p: &Value) -> String {
    p["title"].as_str().unwrap_or("<untitled>").to_string()
}

/// Every PromQL expression of a dashboard: panel targets and Prometheus annotation queries.
pub fn dashboard_queries(file: &str, dash: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for p in panels(dash) {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = t["expr"].as_str() {
                let place = format!(
                    "{file}: panel \"{}\" query {}",
                    panel_title(p),
                    t["refId"].as_str().unwrap_or("?")
                );
                out.push(Query {
                    place,
                    expr: expr.to_string(),
                });
            }
        }
    }
    for a in dash["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(expr) = a["expr"].as_str().or(a["target"]["expr"].as_str()) {
            let place = format!(
                "{file}: annotation \"{}\"",
                a["name"].as_str().unwrap_or("?")
            );
            out.push(Query {
                place,
                expr: expr.to_string(),
            });
        }
    }
    out
}

/// Replaces the Grafana variables our dashboards use by values Prometheus accepts, the way
/// Grafana would before sending the query. Panics on any variable it does not know.
pub fn substitute_grafana_vars(q: &Query) -> String {
    let mut e = q.expr.clone();
    for (var, value) in [
        ("${__rate_interval}", "1m"),
        ("$__rate_interval", "1m"),
        ("${__interval}", "5s"),
        ("$__interval", "5s"),
        ("${__range}", "15m"),
        ("$__range", "15m"),
        ("${mode}", "cp"),
        ("$mode", "cp"),
    ] {
        e = e.replace(var, value);
    }
    assert!(
        !e.contains('$'),
        "{}: unknown Grafana variable left in `{e}`",
        q.place
    );
    e
}

/// The output of one `promtool` run.
pub struct PromtoolRun {
    pub ok: bool,
    pub output: String,
}

/// Runs `promtool ARGS` in `cwd`. A missing promtool fails the test with the install command.
pub fn promtool(args: &[&str], cwd: &Path) -> PromtoolRun {
    let out = match Command::new("promtool")
        .args(args)
        .current_dir(cwd)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "promtool is not installed, so the alert rules cannot be checked. It comes with \
             Debian's `prometheus` package: `apt-get install --no-install-recommends prometheus` \
             (./test.sh installs it)"
        ),
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    PromtoolRun {
        ok: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Runs `promtool ARGS` in the repository root and fails the test with its output if it fails.
pub fn promtool_ok(args: &[&str]) -> String {
    let run = promtool(args, &root());
    assert!(
        run.ok,
        "promtool {} failed:\n{}",
        args.join(" "),
        run.output
    );
    run.output
}

/// Writes each expression as a recording rule of a temporary rule file and runs
/// `promtool check rules` on it: the way to make promtool parse arbitrary PromQL.
pub fn promtool_parse(exprs: &[(String, String)]) -> PromtoolRun {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("groups:\n  - name: parse_check\n    rules:\n");
    for (i, (place, expr)) in exprs.iter().enumerate() {
        // A JSON string is a valid YAML double-quoted scalar.
        text.push_str(&format!(
            "      # {}\n      - record: parse_check:q{i}\n        expr: {}\n",
            place.replace('\n', " "),
            serde_json::to_string(expr).unwrap()
        ));
    }
    let path = dir.path().join("queries.yml");
    std::fs::write(&path, text).unwrap();
    let mut run = promtool(&["check", "rules", path.to_str().unwrap()], dir.path());
    if !run.ok {
        run.output.push_str("\nqueries:\n");
        for (i, (place, expr)) in exprs.iter().enumerate() {
            run.output.push_str(&format!("  q{i}: {place}: {expr}\n"));
        }
    }
    run
}
