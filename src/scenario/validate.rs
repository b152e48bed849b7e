//! Validation: a parsed file ([`super::file::RawScenario`]) into a [`Scenario`] the runner can
//! trust, or every problem found, each naming the file, line and field.
//!
//! Where it sits: between [`super::file`] and the runner. Checks: offsets parse and fall inside
//! the load, phases start at 0 and increase, steps name a known proxy (`g1`, `g2`,
//! `cluster_g1`, `cluster_g2`, `sentinels`) or node, toxics are known types with only their own attributes, thresholds
//! name a target the scenario loads, a phase it defines, a metric that exists and one bound
//! of the right kind, and carry a lesson.

use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::file::{FieldError, FileErrors, Lines, RawScenario, parse};
use super::spec::{FINAL_PHASE, FileEndpoints, KeyDistribution, Phase, Scenario, Target, Workload};

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

pub(super) struct Validator<'a> {
    pub(super) file: &'a str,
    pub(super) lines: Lines,
    pub(super) errors: Vec<FieldError>,
}

impl Validator<'_> {
    pub(super) fn err<T>(
        &mut self,
        at: &Spanned<T>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.errors.push(FieldError {
            file: self.file.to_string(),
            line: self.lines.line_of(at.span().start),
            field: field.into(),
            message: message.into(),
        });
    }

    pub(super) fn duration(&mut self, s: &Spanned<String>, field: &str) -> Option<Duration> {
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
    pub(super) fn offset(
        &mut self,
        s: &Spanned<String>,
        field: &str,
        duration: Duration,
    ) -> Option<Duration> {
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
        if let Some(r) = &w.read_ratio
            && !(0.0..=1.0).contains(r.get_ref())
        {
            self.err(
                r,
                "workload.read_ratio",
                format!("{} is outside 0..=1", r.get_ref()),
            );
        }
        let cas_ratio = w.cas_ratio.as_ref().map_or(0.0, |r| *r.get_ref());
        if let Some(r) = &w.cas_ratio {
            if !(0.0..=1.0).contains(r.get_ref()) {
                self.err(
                    r,
                    "workload.cas_ratio",
                    format!("{} is outside 0..=1", r.get_ref()),
                );
            } else if read_ratio + cas_ratio > 1.0 + 1e-9 {
                self.err(
                    r,
                    "workload.cas_ratio",
                    format!(
                        "read_ratio + cas_ratio is {} (read_ratio {read_ratio}); the two \
                         shares together must be at most 1 (the rest are writes)",
                        read_ratio + cas_ratio
                    ),
                );
            }
        }
        let keys = self.count(&w.keys, "workload.keys", 1, 10_000_000);
        let distribution = match w.distribution.as_ref().map(|d| (d, d.get_ref().as_str())) {
            None | Some((_, "uniform")) => KeyDistribution::Uniform,
            Some((_, "zipf")) => {
                let exponent = w.zipf_exponent.as_ref().map_or(1.0, |e| *e.get_ref());
                if let Some(e) = &w.zipf_exponent
                    && e.get_ref().partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
                {
                    self.err(e, "workload.zipf_exponent", "must be more than 0");
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
        if let Some(s) = &w.session_clients
            && session_clients > clients
        {
            self.err(
                s,
                "workload.session_clients",
                format!("{session_clients} is more than the {clients} clients"),
            );
        }
        let timeout = w
            .timeout
            .as_ref()
            .and_then(|t| self.duration(t, "workload.timeout"))
            .unwrap_or(Duration::from_secs(1));
        if let Some(t) = &w.timeout
            && timeout.is_zero()
        {
            self.err(t, "workload.timeout", "must be more than 0");
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
            cas_ratio,
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
}
