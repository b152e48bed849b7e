//! Validation of timeline steps: the action, its proxy or node, the toxic type and only its
//! own attributes, stream and toxicity. A file naming the retired `replication` proxy is told
//! how to migrate to the cluster links.
//!
//! Where it sits: part of [`super::validate`] (the same `Validator`), split out because steps
//! are the largest part of a scenario file.

use std::time::Duration;

use toml::Spanned;

use super::file::{FieldError, RawStep};
use super::spec::{Step, StepAction};
use super::validate::Validator;
use crate::faults::{
    LAB_PROXIES, REPLICATION_MIGRATION, RETIRED_REPLICATION, Stream, ToxicKind, ToxicSpec,
};

impl Validator<'_> {
    pub(super) fn step(&mut self, i: usize, s: &RawStep, duration: Duration) -> Option<Step> {
        let field = format!("step[{i}]");
        let at = self.offset(&s.at, &format!("{field}.at"), duration);
        let line = self.lines.line_of(s.at.span().start);
        let action = match s.action.get_ref().as_str() {
            "down" | "up" | "toxic" | "remove_toxic" => self.proxy_step(&field, s),
            "heal" => {
                self.no_extra(&field, s, &[]);
                Some(StepAction::Heal)
            }
            "failover" => {
                self.no_extra(&field, s, &[]);
                Some(StepAction::Failover)
            }
            "kill" | "stop" | "continue" | "restart" => {
                self.no_extra(&field, s, &["node"]);
                let node = match &s.node {
                    None => {
                        self.err(
                            &s.action,
                            format!("{field}.node"),
                            "a node step names its node (g1 or g2)",
                        );
                        None
                    }
                    Some(n) => match n.get_ref().parse() {
                        Ok(node) => Some(node),
                        Err(e) => {
                            self.err(n, format!("{field}.node"), format!("{e}"));
                            None
                        }
                    },
                };
                let action = s.action.get_ref().parse().ok();
                node.zip(action).map(|(n, a)| StepAction::Node(n, a))
            }
            other => {
                self.err(&s.action, format!("{field}.action"), format!("unknown action {other:?} (expected down, up, toxic, remove_toxic, heal, kill, stop, continue, restart, failover)"));
                None
            }
        };
        Some(Step {
            at: at?,
            action: action?,
            line,
        })
    }

    /// Complains about every set field not in `allowed` (toxic attributes included).
    fn no_extra(&mut self, field: &str, s: &RawStep, allowed: &[&str]) {
        let set: [(&str, Option<std::ops::Range<usize>>); 13] = [
            ("proxy", s.proxy.as_ref().map(|v| v.span())),
            ("node", s.node.as_ref().map(|v| v.span())),
            ("toxic", s.toxic.as_ref().map(|v| v.span())),
            ("stream", s.stream.as_ref().map(|v| v.span())),
            ("toxicity", s.toxicity.as_ref().map(|v| v.span())),
            ("latency", s.latency.as_ref().map(|v| v.span())),
            ("jitter", s.jitter.as_ref().map(|v| v.span())),
            ("rate", s.rate.as_ref().map(|v| v.span())),
            ("delay", s.delay.as_ref().map(|v| v.span())),
            ("timeout", s.timeout.as_ref().map(|v| v.span())),
            ("average_size", s.average_size.as_ref().map(|v| v.span())),
            (
                "size_variation",
                s.size_variation.as_ref().map(|v| v.span()),
            ),
            ("bytes", s.bytes.as_ref().map(|v| v.span())),
        ];
        for (name, span) in set {
            if let Some(span) = span
                && !allowed.contains(&name)
            {
                self.errors.push(FieldError {
                    file: self.file.to_string(),
                    line: self.lines.line_of(span.start),
                    field: format!("{field}.{name}"),
                    message: format!(
                        "`{name}` does not apply to a `{}` step{}",
                        s.action.get_ref(),
                        s.toxic
                            .as_ref()
                            .map_or(String::new(), |t| format!(" with toxic {:?}", t.get_ref()))
                    ),
                });
            }
        }
    }

    fn proxy_step(&mut self, field: &str, s: &RawStep) -> Option<StepAction> {
        let action = s.action.get_ref().as_str();
        let proxy = match &s.proxy {
            None => {
                self.err(
                    &s.action,
                    format!("{field}.proxy"),
                    format!(
                        "a `{action}` step names its proxy ({})",
                        LAB_PROXIES.join(", ")
                    ),
                );
                None
            }
            Some(p) if LAB_PROXIES.contains(&p.get_ref().as_str()) => Some(p.get_ref().clone()),
            Some(p) if p.get_ref() == RETIRED_REPLICATION => {
                self.err(p, format!("{field}.proxy"), REPLICATION_MIGRATION);
                None
            }
            Some(p) => {
                self.err(
                    p,
                    format!("{field}.proxy"),
                    format!(
                        "unknown proxy {:?} (expected {})",
                        p.get_ref(),
                        LAB_PROXIES.join(", ")
                    ),
                );
                None
            }
        };
        match action {
            "down" | "up" => {
                self.no_extra(field, s, &["proxy"]);
                let p = proxy?;
                Some(if action == "down" {
                    StepAction::Down(p)
                } else {
                    StepAction::Up(p)
                })
            }
            _ => {
                let toxic = match &s.toxic {
                    None => {
                        self.err(
                            &s.action,
                            format!("{field}.toxic"),
                            format!("a `{action}` step names its toxic type"),
                        );
                        return None;
                    }
                    Some(t) => t,
                };
                let kind = match ToxicKind::zeroed(toxic.get_ref()) {
                    Ok(k) => k,
                    Err(_) => {
                        self.err(
                            toxic,
                            format!("{field}.toxic"),
                            format!(
                                "unknown toxic {:?} (expected {})",
                                toxic.get_ref(),
                                ToxicKind::TYPES.join(", ")
                            ),
                        );
                        return None;
                    }
                };
                let stream = match s.stream.as_ref().map(|v| (v, v.get_ref().as_str())) {
                    None | Some((_, "downstream")) => Stream::Downstream,
                    Some((_, "upstream")) => Stream::Upstream,
                    Some((v, other)) => {
                        self.err(
                            v,
                            format!("{field}.stream"),
                            format!("unknown stream {other:?} (expected upstream, downstream)"),
                        );
                        Stream::Downstream
                    }
                };
                if action == "remove_toxic" {
                    self.no_extra(field, s, &["proxy", "toxic", "stream"]);
                    let name = ToxicSpec::new(kind, stream).name();
                    return Some(StepAction::RemoveToxic {
                        proxy: proxy?,
                        name,
                    });
                }
                let kind = self.toxic_kind(field, s, kind);
                let toxicity = s.toxicity.as_ref().map_or(1.0, |t| *t.get_ref());
                if let Some(t) = &s.toxicity
                    && !(0.0..=1.0).contains(t.get_ref())
                {
                    self.err(
                        t,
                        format!("{field}.toxicity"),
                        format!("{} is outside 0..=1", t.get_ref()),
                    );
                }
                let spec = ToxicSpec::new(kind, stream).with_toxicity(toxicity as f32);
                Some(StepAction::Toxic {
                    proxy: proxy?,
                    toxic: spec,
                })
            }
        }
    }

    /// Fills the attributes of `kind` from the step; other attributes are errors.
    fn toxic_kind(&mut self, field: &str, s: &RawStep, mut kind: ToxicKind) -> ToxicKind {
        let names: Vec<&'static str> = kind.fields().into_iter().map(|(n, _)| n).collect();
        let mut allowed = vec!["proxy", "toxic", "stream", "toxicity"];
        allowed.extend(names.iter().copied());
        self.no_extra(field, s, &allowed);
        let get = |n: &str| -> Option<&Spanned<i64>> {
            match n {
                "latency" => s.latency.as_ref(),
                "jitter" => s.jitter.as_ref(),
                "rate" => s.rate.as_ref(),
                "delay" => s.delay.as_ref(),
                "timeout" => s.timeout.as_ref(),
                "average_size" => s.average_size.as_ref(),
                "size_variation" => s.size_variation.as_ref(),
                "bytes" => s.bytes.as_ref(),
                _ => None,
            }
        };
        let mut attrs = serde_json::Map::new();
        for n in names {
            if let Some(v) = get(n) {
                if !(0..=i64::from(u32::MAX)).contains(v.get_ref()) {
                    self.err(
                        v,
                        format!("{field}.{n}"),
                        format!("{} is outside 0..={}", v.get_ref(), u32::MAX),
                    );
                } else {
                    attrs.insert(n.to_string(), (*v.get_ref()).into());
                }
            }
        }
        // ok: every value is an integer of a name `kind` has, so merge cannot fail.
        let _ = kind.merge(&serde_json::Value::Object(attrs));
        kind
    }
}
