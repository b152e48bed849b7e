//! The console's memory of the last minute: chart points, fault windows and primary changes,
//! and the control log.
//!
//! Beside the data path: fed once per tick by [`super::poller`]. A fault window opens on the
//! first tick a fault is seen (a link cut or slowed, a node stopped or down, whoever caused
//! it: the page, a scenario, or `curl` to the proxy API) and closes on the first tick it is
//! gone, so the shading is what the lab did, not what was asked.

use std::collections::{BTreeMap, VecDeque};

use super::snapshot::{Fault, LogEntry, Marker, Point, Window};

/// How much the charts show, ms.
pub const SPAN_MS: u64 = 60_000;
/// Control log lines kept.
const LOG_KEPT: usize = 200;
/// Control log lines sent with each tick.
pub const LOG_SENT: usize = 40;

/// The last minute.
#[derive(Debug, Default)]
pub struct History {
    points: VecDeque<Point>,
    open: BTreeMap<String, (String, u64)>,
    closed: VecDeque<Window>,
    markers: VecDeque<Marker>,
    primary: Option<String>,
    log: VecDeque<LogEntry>,
    next_log: u64,
}

impl History {
    /// Records one tick: its point, the faults in force, the sentinels' primary.
    pub fn tick(&mut self, point: Point, faults: &[Fault], primary: Option<&str>) {
        let now = point.t_ms;
        let horizon = now.saturating_sub(SPAN_MS);
        self.points.push_back(point);
        while self.points.front().is_some_and(|p| p.t_ms < horizon) {
            self.points.pop_front();
        }
        let current: BTreeMap<&str, &Fault> =
            faults.iter().map(|f| (f.label.as_str(), f)).collect();
        let ended: Vec<String> = self
            .open
            .keys()
            .filter(|label| !current.contains_key(label.as_str()))
            .cloned()
            .collect();
        for label in ended {
            if let Some((subject, from_ms)) = self.open.remove(&label) {
                self.closed.push_back(Window {
                    subject,
                    label,
                    from_ms,
                    to_ms: Some(now),
                });
            }
        }
        for (label, fault) in current {
            self.open
                .entry(label.to_string())
                .or_insert_with(|| (fault.subject.clone(), now));
        }
        while self
            .closed
            .front()
            .is_some_and(|w| w.to_ms.is_some_and(|t| t < horizon))
        {
            self.closed.pop_front();
        }
        if let Some(primary) = primary {
            match &self.primary {
                Some(before) if before != primary => self.markers.push_back(Marker {
                    t_ms: now,
                    label: format!("primary {before} -> {primary}"),
                }),
                _ => {}
            }
            self.primary = Some(primary.to_string());
        }
        while self.markers.front().is_some_and(|m| m.t_ms < horizon) {
            self.markers.pop_front();
        }
    }

    /// The points of the last minute, oldest first.
    pub fn points(&self) -> Vec<Point> {
        self.points.iter().cloned().collect()
    }

    /// The fault windows of the last minute, the open ones last.
    pub fn windows(&self) -> Vec<Window> {
        let mut out: Vec<Window> = self.closed.iter().cloned().collect();
        let mut open: Vec<Window> = self
            .open
            .iter()
            .map(|(label, (subject, from_ms))| Window {
                subject: subject.clone(),
                label: label.clone(),
                from_ms: *from_ms,
                to_ms: None,
            })
            .collect();
        open.sort_by_key(|w| w.from_ms);
        out.extend(open);
        out
    }

    /// Primary changes of the last minute.
    pub fn markers(&self) -> Vec<Marker> {
        self.markers.iter().cloned().collect()
    }

    /// Adds a control log line; returns it.
    pub fn log(&mut self, entry: LogEntry) -> LogEntry {
        let entry = LogEntry {
            seq: self.next_log,
            ..entry
        };
        self.next_log += 1;
        self.log.push_back(entry.clone());
        while self.log.len() > LOG_KEPT {
            self.log.pop_front();
        }
        entry
    }

    /// The newest `n` log lines, oldest first.
    pub fn recent_log(&self, n: usize) -> Vec<LogEntry> {
        let skip = self.log.len().saturating_sub(n);
        self.log.iter().skip(skip).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t_ms: u64) -> Point {
        Point {
            t_ms,
            apps: Default::default(),
        }
    }

    fn fault(subject: &str, label: &str) -> Fault {
        Fault {
            subject: subject.into(),
            label: label.into(),
        }
    }

    #[test]
    fn a_window_spans_the_ticks_a_fault_was_seen() {
        let mut h = History::default();
        let cut = fault("cluster_g1", "cluster_g1 cut");
        let slow = fault("g2", "g2 latency 300 ms downstream");
        h.tick(point(1_000), &[], Some("g1"));
        h.tick(point(1_500), std::slice::from_ref(&cut), Some("g1"));
        h.tick(point(2_000), &[cut.clone(), slow.clone()], Some("g1"));
        h.tick(point(2_500), std::slice::from_ref(&slow), Some("g2"));
        let w = h.windows();
        assert_eq!(w.len(), 2);
        assert_eq!(
            (w[0].label.as_str(), w[0].from_ms, w[0].to_ms),
            ("cluster_g1 cut", 1_500, Some(2_500))
        );
        assert_eq!(
            (w[1].subject.as_str(), w[1].from_ms, w[1].to_ms),
            ("g2", 2_000, None)
        );
        assert_eq!(h.markers().len(), 1);
        assert_eq!(h.markers()[0].label, "primary g1 -> g2");
        assert_eq!(h.points().len(), 4);
    }

    #[test]
    fn only_the_last_minute_is_kept() {
        let mut h = History::default();
        let cut = fault("g1", "g1 cut");
        h.tick(point(0), std::slice::from_ref(&cut), None);
        h.tick(point(500), &[], None);
        h.tick(point(SPAN_MS + 1_000), &[], None);
        assert_eq!(h.points().len(), 1);
        assert!(h.windows().is_empty());
    }

    #[test]
    fn the_log_is_numbered_and_bounded() {
        let mut h = History::default();
        for i in 0..(LOG_KEPT as u64 + 5) {
            h.log(LogEntry {
                seq: 0,
                t_ms: i,
                action: format!("a{i}"),
                ok: true,
                detail: String::new(),
                took_ms: 0,
            });
        }
        let recent = h.recent_log(3);
        assert_eq!(recent.len(), 3);
        assert_eq!(recent[2].seq, LOG_KEPT as u64 + 4);
        assert_eq!(h.recent_log(1000).len(), LOG_KEPT);
    }
}
