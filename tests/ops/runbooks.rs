//! The runbooks: every alert's runbook_url is a runbook that exists and has the sections an
//! operator needs, the index lists them all, and their relative links resolve.

use std::collections::BTreeSet;

use crate::support::{alerts, files_in, read, root};

const ALERT_SECTIONS: &[&str] = &[
    "## What it means",
    "## Confirm",
    "## Likely causes",
    "## Fix",
    "## Verify",
];
const PROCEDURES: &[&str] = &[
    "runbooks/partition-experiment.md",
    "runbooks/redis-backup-restore.md",
    "runbooks/scaling-app-instances.md",
];

/// The text of one `## ` section of a Markdown file, without its heading.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(heading)
        .map(|i| i + heading.len())
        .unwrap_or(text.len());
    let rest = &text[start..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn every_runbook_url_points_to_a_runbook_with_the_sections() {
    let mut confirm_all = String::new();
    for a in alerts() {
        let url = &a.annotations["runbook_url"];
        assert!(
            url.starts_with("runbooks/") && url.ends_with(".md") && !url.contains(".."),
            "{}: runbook_url `{url}` is not a runbooks/*.md path",
            a.name()
        );
        let path = root().join(url);
        assert!(
            path.is_file(),
            "{}: runbook_url `{url}` does not exist",
            a.name()
        );
        let text = read(url);
        let title = text.lines().next().unwrap_or("");
        assert!(
            title.starts_with("# ") && title.contains(a.name()),
            "{url} must start with a title naming {}",
            a.name()
        );
        for s in ALERT_SECTIONS {
            assert!(text.contains(&format!("{s}\n")), "{url}: no `{s}` section");
        }
        let confirm = section(&text, "## Confirm");
        assert!(
            confirm.contains("curl "),
            "{url}: the Confirm section has no curl command"
        );
        confirm_all.push_str(confirm);
    }
    for tool in ["/circuit-breaker", "/replication", "/metrics", "redis-cli"] {
        assert!(
            confirm_all.contains(tool),
            "no runbook confirms anything with {tool}"
        );
    }
}

#[test]
fn procedure_runbooks_exist_with_a_verify_section() {
    for p in PROCEDURES {
        assert!(root().join(p).is_file(), "{p} is missing");
        assert!(
            read(p).contains("## Verify\n"),
            "{p}: no `## Verify` section"
        );
    }
    let backup = read("runbooks/redis-backup-restore.md");
    for word in ["BGSAVE", "appendonly", "appendonlydir"] {
        assert!(
            backup.contains(word),
            "the backup runbook says nothing of {word}"
        );
    }
    assert!(read("runbooks/scaling-app-instances.md").contains("SECRET_KEY"));
}

#[test]
fn index_lists_every_runbook_and_alert() {
    let index = read("runbooks/README.md");
    for f in files_in("runbooks", ".md") {
        let name = f.trim_start_matches("runbooks/");
        if name != "README.md" {
            assert!(
                index.contains(&format!("]({name})")),
                "runbooks/README.md does not link {name}"
            );
        }
    }
    for a in alerts() {
        assert!(
            index.contains(&format!("`{}`", a.name())),
            "runbooks/README.md does not list {}",
            a.name()
        );
    }
}

#[test]
fn relative_links_in_runbooks_resolve() {
    let mut checked = BTreeSet::new();
    for f in files_in("runbooks", ".md") {
        let text = read(&f);
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = rest[..end].split('#').next().unwrap_or("");
            if target.is_empty() || target.contains("://") || target.contains(' ') {
                continue;
            }
            let path = root().join("runbooks").join(target);
            assert!(path.exists(), "{f}: link `{target}` does not resolve");
            checked.insert(target.to_string());
        }
    }
    assert!(
        checked.len() >= 5,
        "only {} relative links found: is the link scan broken?",
        checked.len()
    );
}
