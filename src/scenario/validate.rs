//! Validation: a parsed file ([`super::file::RawScenario`]) into a [`Scenario`] the runner can
//! trust, or every problem found, each naming the file, line and field.
//!
//! Where it sits: between [`super::file`] and the runner. Checks: offsets parse and fall inside
//! the load, phases start at 0 and increase, steps name a known proxy (`g1`, `g2`,
//! `replication`) or node, toxics are known types with only their own attributes, thresholds
//! name a target the scenario loads, a phase it defines, a metric that exists and one bound
//! of the right kind, and carry a lesson.

use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::file::{FieldError, FileErrors, Lines, RawScenario, RawStep, RawThreshold, parse};
use super::spec::{
    Bound, FINAL_PHASE, FileEndpoints, KeyDistribution, Metric, Phase, Scenario, Step, StepAction,
    Target, Threshold, Workload,
};
use crate::faults::{LAB_PROXIES, Stream, ToxicKind, ToxicSpec};

/// Loads and validates the scenario file at `path`.
pub fn load(path: &Path) -> Result<Scenario, FileErrors> {
    let text = super::file::read(path)?;
    validate_str(&path.display().to_string(), &text)
}

/// Validates scenario text; `file` names it in errors.
pub fn validate_str(file: &str, text: &str) -> Result<Scenario, FileErrors> {
    let raw = parse(file, text).map_err(|e| FileErrors::Invalid(vec![e]))?;
    let mut v = Validator {
        file,
        lines: Lines::new(text),
        errors: Vec::new(),
    };
    let scenario = v.scenario(raw);
    if v.errors.is_empty() {
        Ok(scenario)
    } else {
        v.errors.sort_by_key(|e| e.line);
        Err(FileErrors::Invalid(v.errors))
    }
}

struct Validator<'a> {
    file: &'a str,
    lines: Lines,
    errors: Vec<FieldError>,
}

impl Validator<'_> {
    fn err<T>(&mut self, at: &Spanned<T>, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            file: self.file.to_string(),
            line: self.lines.line_of(at.span().start),
            field: field.into(),
            message: message.into(),
        });
    }

    fn duration(&mut self, s: &Spanned<String>, field: &str) -> Option<Duration> {
        match humantime::parse_duration(s.get_ref().trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(
                    s,
                    field,
                    format!(
                        "bad duration {:?} ({e}); write e.g. \"5s\" or \"500ms\"",
                        s.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// An offset inside the load (`0 <= at <= duration`).
    fn offset(&mut self, s: &Spanned<String>, field: &str, duration: Duration) -> Option<Duration> {
        let at = self.duration(s, field)?;
        if at > duration {
            self.err(
                s,
                field,
                format!(
                    "offset {} is after the end of the load ({})",
                    humantime::format_duration(at),
                    humantime::format_duration(duration)
                ),
            );
            return None;
        }
        Some(at)
    }

    fn count(&mut self, s: &Spanned<i64>, field: &str, min: i64, max: i64) -> u64 {
        let n = *s.get_ref();
        if !(min..=max).contains(&n) {
            self.err(s, field, format!("{n} is outside {min}..={max}"));
            return min.max(0) as u64;
        }
        n as u64
    }

    fn scenario(&mut self, raw: RawScenario) -> Scenario {
        if raw.name.get_ref().trim().is_empty() {
            self.err(&raw.name, "name", "must not be empty");
        }
        let mut targets = Vec::new();
        for t in raw.targets.get_ref() {
            match Target::parse(t.get_ref()) {
                Some(target) if !targets.contains(&target) => targets.push(target),
                Some(_) => self.err(t, "targets", format!("{:?} is listed twice", t.get_ref())),
                None => self.err(
                    t,
                    "targets",
                    format!("unknown target {:?} (expected cp, ap)", t.get_ref()),
                ),
            }
        }
        if raw.targets.get_ref().is_empty() {
            self.err(&raw.targets, "targets", "name at least one of cp, ap");
        }
        let workload = self.workload(raw.workload);
        let phases = self.phases(&raw.phases, workload.duration);
        let steps = raw
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| self.step(i, s, workload.duration))
            .collect::<Vec<_>>();
        let mut steps = steps;
        steps.sort_by_key(|s| s.at);
        let thresholds = raw
            .thresholds
            .iter()
            .enumerate()
            .filter_map(|(i, t)| self.threshold(i, t, &targets, &phases, &steps))
            .collect();
        Scenario {
            name: raw.name.into_inner(),
            description: raw.description,
            targets,
            endpoints: FileEndpoints {
                cp: raw.endpoints.cp,
                ap: raw.endpoints.ap,
                toxiproxy: raw.endpoints.toxiproxy,
            },
            workload,
            steps,
            phases,
            thresholds,
        }
    }

    fn workload(&mut self, w: super::file::RawWorkload) -> Workload {
        let rate = *w.rate.get_ref();
        if !(rate > 0.0 && rate <= 1_000_000.0) {
            self.err(
                &w.rate,
                "workload.rate",
                format!("{rate} ops/s is outside (0, 1000000]"),
            );
        }
        let duration = self
            .duration(&w.duration, "workload.duration")
            .unwrap_or(Duration::ZERO);
        if duration.is_zero() || duration > Duration::from_secs(24 * 3600) {
            self.err(
                &w.duration,
                "workload.duration",
                "must be more than 0 and at most 24h",
            );
        }
        let read_ratio = w.read_ratio.as_ref().map_or(0.5, |r| *r.get_ref());
        if let Some(r) = &w.read_ratio {
            if !(0.0..=1.0).contains(r.get_ref()) {
                self.err(
                    r,
                    "workload.read_ratio",
                    format!("{} is outside 0..=1", r.get_ref()),
                );
            }
        }
        let keys = self.count(&w.keys, "workload.keys", 1, 10_000_000);
        let distribution = match w.distribution.as_ref().map(|d| (d, d.get_ref().as_str())) {
            None | Some((_, "uniform")) => KeyDistribution::Uniform,
            Some((_, "zipf")) => {
                let exponent = w.zipf_exponent.as_ref().map_or(1.0, |e| *e.get_ref());
                if let Some(e) = &w.zipf_exponent {
                    if e.get_ref().partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                        self.err(e, "workload.zipf_exponent", "must be more than 0");
                    }
                }
                KeyDistribution::Zipf { exponent }
            }
            Some((d, other)) => {
                self.err(
                    d,
                    "workload.distribution",
                    format!("unknown distribution {other:?} (expected uniform, zipf)"),
                );
                KeyDistribution::Uniform
            }
        };
        let value_size =
            w.value_size
                .as_ref()
                .map_or(16, |v| self.count(v, "workload.value_size", 8, 4096)) as usize;
        let clients =
            w.clients
                .as_ref()
                .map_or(8, |v| self.count(v, "workload.clients", 1, 4096)) as usize;
        let session_clients = w
            .session_clients
            .as_ref()
            .map_or(0, |v| self.count(v, "workload.session_clients", 0, 4096))
            as usize;
        if let Some(s) = &w.session_clients {
            if session_clients > clients {
                self.err(
                    s,
                    "workload.session_clients",
                    format!("{session_clients} is more than the {clients} clients"),
                );
            }
        }
        let timeout = w
            .timeout
            .as_ref()
            .and_then(|t| self.duration(t, "workload.timeout"))
            .unwrap_or(Duration::from_secs(1));
        if let Some(t) = &w.timeout {
            if timeout.is_zero() {
                self.err(t, "workload.timeout", "must be more than 0");
            }
        }
        let settle = w
            .settle
            .as_ref()
            .and_then(|t| self.duration(t, "workload.settle"))
            .unwrap_or(Duration::from_secs(1));
        let mut stages: Vec<(Duration, f64)> = Vec::new();
        for (i, s) in w.stages.iter().enumerate() {
            let field = format!("workload.stage[{i}].at");
            let Some(at) = self.offset(&s.at, &field, duration) else {
                continue;
            };
            if stages.last().is_some_and(|(prev, _)| *prev >= at) {
                self.err(&s.at, field, "stages must be in increasing offset order");
            }
            let r = *s.rate.get_ref();
            if !(r > 0.0 && r <= 1_000_000.0) {
                self.err(
                    &s.rate,
                    format!("workload.stage[{i}].rate"),
                    format!("{r} ops/s is outside (0, 1000000]"),
                );
            }
            stages.push((at, r));
        }
        Workload {
            rate,
            stages,
            duration,
            read_ratio,
            keys,
            distribution,
            value_size,
            clients,
            session_clients,
            seed: w.seed.unwrap_or(1),
            timeout,
            final_reads: w.final_reads.unwrap_or(true),
            settle,
        }
    }

    fn phases(&mut self, raw: &[super::file::RawPhase], duration: Duration) -> Vec<Phase> {
        let mut phases: Vec<Phase> = Vec::new();
        for (i, p) in raw.iter().enumerate() {
            let field = format!("phase[{i}]");
            let name = p.name.get_ref().trim().to_string();
            if name.is_empty() || name == FINAL_PHASE {
                self.err(&p.name, format!("{field}.name"), format!("{name:?} is reserved or empty (the runner names the reads after the load \"{FINAL_PHASE}\")"));
            }
            if phases.iter().any(|q| q.name == name) {
                self.err(
                    &p.name,
                    format!("{field}.name"),
                    format!("phase {name:?} is defined twice"),
                );
            }
            let Some(at) = self.offset(&p.at, &format!("{field}.at"), duration) else {
                continue;
            };
            if i == 0 && !at.is_zero() {
                self.err(
                    &p.at,
                    format!("{field}.at"),
                    "the first phase must start at \"0s\"",
                );
            }
            if phases.last().is_some_and(|q| q.at >= at) {
                self.err(
                    &p.at,
                    format!("{field}.at"),
                    "phases must be in increasing offset order",
                );
            }
            phases.push(Phase { name, at });
        }
        if phases.is_empty() {
            // No phases named: the whole load is one phase, `run`.
            phases.push(Phase {
                name: "run".to_string(),
                at: Duration::ZERO,
            });
        }
        phases
    }

    fn step(&mut self, i: usize, s: &RawStep, duration: Duration) -> Option<Step> {
        let field = format!("step[{i}]");
        let at = self.offset(&s.at, &format!("{field}.at"), duration);
        let line = self.lines.line_of(s.at.span().start);
        let action = match s.action.get_ref().as_str() {
            "down" | "up" | "toxic" | "remove_toxic" => self.proxy_step(&field, s),
            "heal" => {
                self.no_extra(&field, s, &[]);
                Some(StepAction::Heal)
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
                self.err(&s.action, format!("{field}.action"), format!("unknown action {other:?} (expected down, up, toxic, remove_toxic, heal, kill, stop, continue, restart)"));
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
            if let Some(span) = span {
                if !allowed.contains(&name) {
                    self.errors.push(FieldError {
                        file: self.file.to_string(),
                        line: self.lines.line_of(span.start),
                        field: format!("{field}.{name}"),
                        message: format!(
                            "`{name}` does not apply to a `{}` step{}",
                            s.action.get_ref(),
                            s.toxic.as_ref().map_or(String::new(), |t| format!(
                                " with toxic {:?}",
                                t.get_ref()
                            ))
                        ),
                    });
                }
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
                    format!("a `{action}` step names its proxy (g1, g2, replication)"),
                );
                None
            }
            Some(p) if LAB_PROXIES.contains(&p.get_ref().as_str()) => Some(p.get_ref().clone()),
            Some(p) => {
                self.err(
                    p,
                    format!("{field}.proxy"),
                    format!(
                        "unknown proxy {:?} (expected g1, g2, replication)",
                        p.get_ref()
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
                if let Some(t) = &s.toxicity {
                    if !(0.0..=1.0).contains(t.get_ref()) {
                        self.err(
                            t,
                            format!("{field}.toxicity"),
                            format!("{} is outside 0..=1", t.get_ref()),
                        );
                    }
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

    fn threshold(
        &mut self,
        i: usize,
        t: &RawThreshold,
        targets: &[Target],
        phases: &[Phase],
        steps: &[Step],
    ) -> Option<Threshold> {
        let field = format!("threshold[{i}]");
        let target = match Target::parse(t.target.get_ref()) {
            Some(target) if targets.contains(&target) => Some(target),
            Some(_) => {
                self.err(
                    &t.target,
                    format!("{field}.target"),
                    format!(
                        "{:?} is not among this scenario's targets",
                        t.target.get_ref()
                    ),
                );
                None
            }
            None => {
                self.err(
                    &t.target,
                    format!("{field}.target"),
                    format!("unknown target {:?} (expected cp, ap)", t.target.get_ref()),
                );
                None
            }
        };
        let metric = Metric::ALL
            .iter()
            .find(|(n, _)| n == t.metric.get_ref())
            .map(|(_, m)| *m);
        if metric.is_none() {
            let names: Vec<&str> = Metric::ALL.iter().map(|(n, _)| *n).collect();
            self.err(
                &t.metric,
                format!("{field}.metric"),
                format!(
                    "unknown metric {:?} (expected one of: {})",
                    t.metric.get_ref(),
                    names.join(", ")
                ),
            );
        }
        if let Some(p) = &t.phase {
            if metric.is_some_and(Metric::whole_run_only) {
                self.err(
                    p,
                    format!("{field}.phase"),
                    format!(
                        "{} is measured over the whole run; drop `phase`",
                        t.metric.get_ref()
                    ),
                );
            } else if !phases.iter().any(|q| &q.name == p.get_ref()) && p.get_ref() != FINAL_PHASE {
                self.err(
                    p,
                    format!("{field}.phase"),
                    format!("no phase named {:?} in this scenario", p.get_ref()),
                );
            }
        }
        if metric == Some(Metric::ConvergeMs) && !steps.iter().any(|s| s.action.heals()) {
            self.err(
                &t.metric,
                format!("{field}.metric"),
                "converge_ms needs a healing step (up, remove_toxic, heal, continue, restart)",
            );
        }
        if t.lesson.get_ref().trim().is_empty() {
            self.err(
                &t.lesson,
                format!("{field}.lesson"),
                "state the CAP lesson this threshold shows",
            );
        }
        let bound = match (&t.min, &t.max, &t.equals) {
            (Some(v), None, None) => Some(Bound::Min(*v.get_ref())),
            (None, Some(v), None) => Some(Bound::Max(*v.get_ref())),
            (None, None, Some(v)) => Some(Bound::Equals(*v.get_ref())),
            _ => {
                self.err(
                    &t.metric,
                    field.to_string(),
                    "give exactly one of min, max, equals",
                );
                None
            }
        };
        let metric = metric?;
        match bound? {
            Bound::Equals(_) if !metric.is_bool() => {
                self.err(
                    &t.metric,
                    format!("{field}.equals"),
                    format!("{} is a number: use min or max", metric.name()),
                );
                return None;
            }
            Bound::Min(_) | Bound::Max(_) if metric.is_bool() => {
                self.err(
                    &t.metric,
                    format!("{field}.min"),
                    format!("{} is a verdict: use equals = true or false", metric.name()),
                );
                return None;
            }
            _ => {}
        }
        Some(Threshold {
            target: target?,
            phase: t.phase.as_ref().map(|p| p.get_ref().clone()),
            metric,
            bound: bound?,
            lesson: t.lesson.get_ref().trim().to_string(),
        })
    }
}
