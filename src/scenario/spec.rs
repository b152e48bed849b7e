//! A validated scenario: what the runner executes. Built only by [`super::validate`] from a
//! parsed file ([`super::file`]), so everything here is known to make sense (offsets inside
//! the run, proxies and toxics that exist, thresholds on metrics that can be measured).

use std::time::Duration;

use crate::faults::ToxicSpec;
use crate::lab::{LabNode, NodeAction};

/// A personality a scenario loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The CP personality (port 5001 by default).
    Cp,
    /// The AP personality (port 5002 by default).
    Ap,
}

impl Target {
    /// `cp` or `ap`, as in the history's `mode` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Cp => "cp",
            Target::Ap => "ap",
        }
    }

    /// Parses `cp` or `ap`.
    pub fn parse(s: &str) -> Option<Target> {
        match s {
            "cp" => Some(Target::Cp),
            "ap" => Some(Target::Ap),
            _ => None,
        }
    }
}

/// Where the targets and Toxiproxy are, as far as the file says (the command line wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileEndpoints {
    /// CP's base URL.
    pub cp: Option<String>,
    /// AP's base URL.
    pub ap: Option<String>,
    /// Toxiproxy's API, `host:port`.
    pub toxiproxy: Option<String>,
}

/// How keys are picked.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum KeyDistribution {
    /// Every key equally likely.
    Uniform,
    /// Zipf with this exponent: key 0 is the hottest.
    Zipf {
        /// The exponent `s` (> 0).
        exponent: f64,
    },
}

/// The open-loop workload, per target.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Workload {
    /// Operations per second per target at offset 0.
    pub rate: f64,
    /// Later rates: (offset, rate), offsets increasing (a ramp for load tests).
    pub stages: Vec<(Duration, f64)>,
    /// How long load is generated.
    pub duration: Duration,
    /// Fraction of operations that are reads.
    pub read_ratio: f64,
    /// Fraction of operations that are compare-and-set (`read_ratio + cas_ratio <= 1`; the
    /// rest are writes). Above 0 the workload is Jepsen's register mix: written and expected
    /// values are small integers (`0..REGISTER_VALUES`), so a cas often matches.
    pub cas_ratio: f64,
    /// Distinct keys per target.
    pub keys: u64,
    /// How keys are picked.
    pub distribution: KeyDistribution,
    /// Bytes per written value.
    pub value_size: usize,
    /// Clients (connections, each with one operation outstanding) per target.
    pub clients: usize,
    /// How many of those clients carry a session token.
    pub session_clients: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Per-request timeout; an operation past it is `info`.
    pub timeout: Duration,
    /// Whether every key is read once after the load (the `final` phase, for lost writes).
    pub final_reads: bool,
    /// Pause between the end of the load and the final reads.
    pub settle: Duration,
}

impl Workload {
    /// The arrival rate at offset `t`.
    pub fn rate_at(&self, t: Duration) -> f64 {
        self.stages
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .map_or(self.rate, |(_, r)| *r)
    }
}

/// What a timeline step does.
#[derive(Debug, Clone, PartialEq)]
pub enum StepAction {
    /// Disable a proxy (a hard partition: connections closed, new ones refused).
    Down(String),
    /// Enable it again.
    Up(String),
    /// Add (or replace) a toxic on a proxy.
    Toxic {
        /// The proxy.
        proxy: String,
        /// The toxic.
        toxic: ToxicSpec,
    },
    /// Remove the toxic named `<type>_<stream>` from a proxy.
    RemoveToxic {
        /// The proxy.
        proxy: String,
        /// Its name.
        name: String,
    },
    /// Reset Toxiproxy: every proxy enabled, no toxics.
    Heal,
    /// Act on a Redis process of the local lab.
    Node(LabNode, NodeAction),
    /// Force a failover in the local lab (`SENTINEL FAILOVER caplab`): the sentinels promote
    /// the replica; the step is applied once they name it as primary.
    Failover,
}

impl StepAction {
    /// Whether this step ends faults (the start of "converge after heal").
    pub fn heals(&self) -> bool {
        matches!(
            self,
            StepAction::Up(_)
                | StepAction::RemoveToxic { .. }
                | StepAction::Heal
                | StepAction::Node(_, NodeAction::Continue | NodeAction::Restart)
        )
    }

    /// Whether it acts on the local lab's processes rather than on a proxy (node steps, a
    /// failover).
    pub fn needs_lab(&self) -> bool {
        matches!(self, StepAction::Node(..) | StepAction::Failover)
    }

    /// A one-line description, for logs and reports.
    pub fn describe(&self) -> String {
        match self {
            StepAction::Down(p) => format!("{p} down"),
            StepAction::Up(p) => format!("{p} up"),
            StepAction::Toxic { proxy, toxic } => {
                let attrs: Vec<String> = toxic
                    .kind
                    .fields()
                    .into_iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect();
                let mut s = format!("{proxy} +{} {}", toxic.name(), attrs.join(" "));
                if toxic.toxicity < 1.0 {
                    s.push_str(&format!(" toxicity={}", toxic.toxicity));
                }
                s
            }
            StepAction::RemoveToxic { proxy, name } => format!("{proxy} -{name}"),
            StepAction::Heal => "heal (reset all proxies)".to_string(),
            StepAction::Node(node, action) => format!("{action} {node}"),
            StepAction::Failover => "failover (SENTINEL FAILOVER caplab)".to_string(),
        }
    }

    /// The proxy or node the step acts on (`None` for a heal, and for a failover, which is
    /// an event rather than a fault window on one part).
    pub fn subject(&self) -> Option<String> {
        match self {
            StepAction::Down(p) | StepAction::Up(p) => Some(p.clone()),
            StepAction::Toxic { proxy, .. } | StepAction::RemoveToxic { proxy, .. } => {
                Some(proxy.clone())
            }
            StepAction::Heal | StepAction::Failover => None,
            StepAction::Node(n, _) => Some(n.name().to_string()),
        }
    }
}

/// A step at an offset from the start of the load.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// When.
    pub at: Duration,
    /// What.
    pub action: StepAction,
    /// The line of the file it came from.
    pub line: usize,
}

/// A named phase: from `at` to the next phase (or the end of the load).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Phase {
    /// Its name.
    pub name: String,
    /// Its start offset.
    #[serde(serialize_with = "ser_ms")]
    pub at: Duration,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// The phase of the reads made after the load.
pub const FINAL_PHASE: &str = "final";

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Fraction of operations that completed `ok`.
    Availability,
    /// Same, reads only.
    ReadAvailability,
    /// Same, writes only.
    WriteAvailability,
    /// Median latency from the scheduled time, ms.
    LatencyP50Ms,
    /// 99th percentile latency, ms.
    LatencyP99Ms,
    /// Largest latency, ms.
    LatencyMaxMs,
    /// Fraction of reads the checker found stale.
    StaleReadRate,
    /// Largest `staleness_ms` a read answer reported.
    MaxStalenessMs,
    /// Read-your-writes plus monotonic-read violations (whole run).
    SessionViolations,
    /// Acknowledged writes lost (whole run).
    LostWrites,
    /// Whether the target's history is linearizable (whole run).
    Linearizable,
    /// Time from the last healing step until every operation is ok and fresh again and the
    /// replica has caught up (sampled g2 staleness at most 500 ms), ms.
    ConvergeMs,
    /// From the moment the new primary has a linked replica again (after the target switched
    /// primaries) to the target's first `ok` read answered by the new primary, ms.
    ReadRecoveryMs,
    /// `ok` writes completed after the first fault step and before the new primary had a
    /// linked replica again (whole run).
    AckedWritesWithoutReplica,
}

impl Metric {
    /// Every metric, by file name.
    pub const ALL: [(&'static str, Metric); 14] = [
        ("availability", Metric::Availability),
        ("read_availability", Metric::ReadAvailability),
        ("write_availability", Metric::WriteAvailability),
        ("latency_p50_ms", Metric::LatencyP50Ms),
        ("latency_p99_ms", Metric::LatencyP99Ms),
        ("latency_max_ms", Metric::LatencyMaxMs),
        ("stale_read_rate", Metric::StaleReadRate),
        ("max_staleness_ms", Metric::MaxStalenessMs),
        ("session_violations", Metric::SessionViolations),
        ("lost_writes", Metric::LostWrites),
        ("linearizable", Metric::Linearizable),
        ("converge_ms", Metric::ConvergeMs),
        ("read_recovery_ms", Metric::ReadRecoveryMs),
        (
            "acked_writes_without_replica",
            Metric::AckedWritesWithoutReplica,
        ),
    ];

    /// Its name in files and reports.
    pub fn name(self) -> &'static str {
        Metric::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("?", |(n, _)| n)
    }

    /// Whether it is measured over the whole run only (no `phase`).
    pub fn whole_run_only(self) -> bool {
        matches!(
            self,
            Metric::SessionViolations
                | Metric::LostWrites
                | Metric::Linearizable
                | Metric::ConvergeMs
                | Metric::ReadRecoveryMs
                | Metric::AckedWritesWithoutReplica
        )
    }

    /// Whether it is a yes/no verdict (compared with `equals`).
    pub fn is_bool(self) -> bool {
        self == Metric::Linearizable
    }
}

/// The bound a threshold holds a metric to.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// At least this.
    Min(f64),
    /// At most this.
    Max(f64),
    /// Exactly this verdict.
    Equals(bool),
}

/// A threshold: a metric of one target (in one phase) held to a bound, and why it matters.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Threshold {
    /// Which personality.
    pub target: Target,
    /// Which phase (`None`: the whole load, final reads excluded).
    pub phase: Option<String>,
    /// What is measured.
    pub metric: Metric,
    /// The bound.
    pub bound: Bound,
    /// The CAP lesson it demonstrates.
    pub lesson: String,
}

/// A validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// The personalities it loads.
    pub targets: Vec<Target>,
    /// Endpoints named in the file.
    pub endpoints: FileEndpoints,
    /// The load.
    pub workload: Workload,
    /// The timeline, in offset order.
    pub steps: Vec<Step>,
    /// Phases, in offset order; the first starts at 0.
    pub phases: Vec<Phase>,
    /// Thresholds.
    pub thresholds: Vec<Threshold>,
}

impl Scenario {
    /// The phase at offset `t` of the load.
    pub fn phase_at(&self, t: Duration) -> &str {
        self.phases
            .iter()
            .take_while(|p| p.at <= t)
            .last()
            .map_or("run", |p| p.name.as_str())
    }

    /// Whether a step acts on the local lab's processes (a node step or a failover), and so
    /// needs the local lab.
    pub fn has_node_steps(&self) -> bool {
        self.steps.iter().any(|s| s.action.needs_lab())
    }

    /// Offset of the last healing step, if any.
    pub fn last_heal(&self) -> Option<Duration> {
        self.steps
            .iter()
            .filter(|s| s.action.heals())
            .map(|s| s.at)
            .max()
    }
}
