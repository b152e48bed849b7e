//! The run's fault windows as Grafana annotations: `grafana-annotations.jsonl`, one
//! `POST /api/annotations` body per line, tagged `caplab` and `fault` as the dashboard's
//! "Fault windows" layer expects (see `runbooks/partition-experiment.md`).
//!
//! Where it sits: written beside the reports at the end of a run. The runner does not talk to
//! Grafana itself (a run needs no Grafana, and its credentials stay out of caplab); posting the
//! file is one shell loop:
//!
//! ```text
//! while read -r a; do
//!   curl -s -u admin:admin -H 'Content-Type: application/json' \
//!        -X POST http://localhost:3000/api/annotations -d "$a"
//! done < runs/replication-partition/grafana-annotations.jsonl
//! ```

use serde::Serialize;

use super::timeline::FaultWindow;

/// One region annotation, in the body Grafana's HTTP API takes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Annotation {
    /// Start, Unix ms.
    pub time: u64,
    /// End, Unix ms.
    #[serde(rename = "timeEnd")]
    pub time_end: u64,
    /// `caplab`, `fault`, the proxy or node, `scenario:<name>`.
    pub tags: Vec<String>,
    /// What was faulted, and in which scenario.
    pub text: String,
}

/// The annotations of `windows`, whose offsets count from `started_unix_ms`.
pub fn annotations(
    scenario: &str,
    started_unix_ms: u64,
    windows: &[FaultWindow],
) -> Vec<Annotation> {
    let at = |offset_ms: f64| started_unix_ms.saturating_add(offset_ms.max(0.0).round() as u64);
    windows
        .iter()
        .map(|w| Annotation {
            time: at(w.from_ms),
            time_end: at(w.to_ms),
            tags: vec![
                "caplab".to_string(),
                "fault".to_string(),
                w.subject.clone(),
                format!("scenario:{scenario}"),
            ],
            text: format!("{} ({scenario})", w.label),
        })
        .collect()
}

/// JSON Lines: one annotation body per line.
pub fn to_jsonl(annotations: &[Annotation]) -> Result<String, serde_json::Error> {
    let mut out = String::new();
    for a in annotations {
        out.push_str(&serde_json::to_string(a)?);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_become_tagged_regions_in_unix_ms() -> Result<(), serde_json::Error> {
        let windows = [FaultWindow {
            subject: "cluster_g1".into(),
            label: "cluster_g1 down".into(),
            from_ms: 5063.7,
            to_ms: 15079.2,
        }];
        let a = annotations("replication-partition", 1_000_000, &windows);
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].time, a[0].time_end), (1_005_064, 1_015_079));
        assert_eq!(
            a[0].tags,
            [
                "caplab",
                "fault",
                "cluster_g1",
                "scenario:replication-partition"
            ]
        );
        let line = to_jsonl(&a)?;
        assert!(line.ends_with('\n') && line.lines().count() == 1);
        assert!(line.contains(r#""timeEnd":1015079"#), "{line}");
        Ok(())
    }

    #[test]
    fn no_window_no_annotation() -> Result<(), serde_json::Error> {
        assert!(annotations("baseline", 1, &[]).is_empty());
        assert_eq!(to_jsonl(&[])?, "");
        Ok(())
    }
}
