//! `report.html`: one self-contained page (inline CSS and inline SVG, no script, nothing
//! fetched) with the verdicts and, per target, plots over the load's seconds: latency
//! percentiles, throughput, errors, staleness and breaker states, fault windows shaded.
//!
//! Where it sits: called by [`super::report::write_all`]. Plots are drawn with `plotters`'
//! SVG backend; a plot that cannot be drawn is replaced by a note, never fails the run.

use std::fmt::Write as _;

use plotters::prelude::*;

use super::report::{Report, TargetReport};
use super::thresholds::describe;
use super::timeline::FaultWindow;
use crate::check::picture;
use crate::check::render::by_age;

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    picture::escape(s)
}

/// One line of a plot.
struct Line {
    label: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

const fn color(c: (u8, u8, u8)) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

// One palette for every page caplab draws (the checker's picture defines it).
const BLUE_: RGBColor = color(picture::BLUE);
const ORANGE_: RGBColor = color(picture::ORANGE);
const GREEN_: RGBColor = color(picture::GREEN);
const RED_: RGBColor = color(picture::RED);
const PURPLE_: RGBColor = color(picture::PURPLE);
const PALETTE: [RGBColor; 5] = [BLUE_, RED_, GREEN_, ORANGE_, PURPLE_];

/// Points further apart than this (seconds) are not joined by a line.
const MAX_GAP_S: f64 = 1.5;

/// `points` split where consecutive x values are more than `gap` apart.
fn segments(points: &[(f64, f64)], gap: f64) -> Vec<&[(f64, f64)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=points.len() {
        if i == points.len() || points[i].0 - points[i - 1].0 > gap {
            if i > start {
                out.push(&points[start..i]);
            }
            start = i;
        }
    }
    out
}

/// Draws one plot as an SVG string.
fn plot(
    title: &str,
    y_desc: &str,
    x_max: f64,
    lines: &[Line],
    windows: &[FaultWindow],
    y_max_floor: f64,
) -> Result<String, String> {
    let mut svg = String::new();
    let y_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(y_max_floor, f64::max)
        * 1.1;
    {
        let root = SVGBackend::with_string(&mut svg, (900, 230)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max.max(1.0), 0f64..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("seconds since the load started")
            .y_desc(y_desc)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| {
                if y_max >= 10.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                }
            })
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(windows.iter().map(|w| {
                Rectangle::new(
                    [(w.from_ms / 1000.0, 0.0), (w.to_ms / 1000.0, y_max)],
                    RGBColor(255, 140, 140).mix(0.25).filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        for l in lines {
            let color = l.color;
            // One series per run of points without a gap, so a missing second (no ok read
            // that second, no sample) shows as a gap instead of a line drawn across it.
            for (i, part) in segments(&l.points, MAX_GAP_S).into_iter().enumerate() {
                let series = chart
                    .draw_series(LineSeries::new(part.iter().copied(), color.stroke_width(2)))
                    .map_err(|e| e.to_string())?;
                if i == 0 {
                    series.label(l.label.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn figure(out: &mut String, name: &str, points: usize, svg: Result<String, String>) {
    let _ = write!(
        out,
        "<figure data-plot=\"{name}\" data-points=\"{points}\">"
    );
    match svg {
        Ok(svg) => out.push_str(&svg),
        Err(e) => {
            let _ = write!(out, "<p class=\"note\">plot not drawn: {}</p>", escape(&e));
        }
    }
    out.push_str("</figure>\n");
}

/// The plots of one target.
fn target_plots(out: &mut String, t: &TargetReport, x_max: f64, windows: &[FaultWindow]) {
    let mid = |i: usize| i as f64 + 0.5;
    let series = |f: &dyn Fn(&super::stats::GroupSummary) -> Option<f64>| -> Vec<(f64, f64)> {
        t.series
            .iter()
            .enumerate()
            .filter_map(|(i, g)| f(g).map(|v| (mid(i), v)))
            .collect()
    };
    let latency = vec![
        Line {
            label: "p50".into(),
            color: BLUE_,
            points: series(&|g| g.latency_ms.p50),
        },
        Line {
            label: "p99".into(),
            color: ORANGE_,
            points: series(&|g| g.latency_ms.p99),
        },
        Line {
            label: "max".into(),
            color: RED_,
            points: series(&|g| g.latency_ms.max),
        },
    ];
    let n = latency[0].points.len();
    figure(
        out,
        "latency",
        n,
        plot(
            "Latency from the scheduled time (per second)",
            "ms",
            x_max,
            &latency,
            windows,
            1.0,
        ),
    );

    let throughput = vec![Line {
        label: "ok/s".into(),
        color: GREEN_,
        points: series(&|g| Some(g.ok as f64)),
    }];
    let n = throughput[0].points.len();
    figure(
        out,
        "throughput",
        n,
        plot(
            "Throughput (ok operations per second)",
            "ops/s",
            x_max,
            &throughput,
            windows,
            1.0,
        ),
    );

    let errors = vec![
        Line {
            label: "fail/s (refused)".into(),
            color: RED_,
            points: series(&|g| Some(g.fail as f64)),
        },
        Line {
            label: "info/s (unknown: timeout, indeterminate, AP queued)".into(),
            color: PURPLE_,
            points: series(&|g| Some(g.info as f64)),
        },
    ];
    let n = errors[0].points.len();
    figure(
        out,
        "errors",
        n,
        plot("Errors per second", "ops/s", x_max, &errors, windows, 1.0),
    );

    let mut staleness = vec![Line {
        label: "max staleness in read answers".into(),
        color: BLUE_,
        points: series(&|g| g.max_staleness_ms.map(|v| v as f64)),
    }];
    let sampled: Vec<(f64, f64)> = t
        .samples
        .iter()
        .filter_map(|s| {
            s.g2_staleness_ms
                .map(|v| (s.t_ms as f64 / 1000.0, v as f64))
        })
        .collect();
    staleness.push(Line {
        label: "g2 staleness (/replication)".into(),
        color: ORANGE_,
        points: sampled,
    });
    let n = staleness[0].points.len();
    figure(
        out,
        "staleness",
        n,
        plot("Staleness", "ms", x_max, &staleness, windows, 10.0),
    );

    let mut names: Vec<&String> = t.samples.iter().flat_map(|s| s.breakers.keys()).collect();
    names.sort();
    names.dedup();
    let breakers: Vec<Line> = names
        .iter()
        .enumerate()
        .map(|(i, name)| Line {
            label: format!("{name} breaker"),
            color: PALETTE[i % PALETTE.len()],
            points: t
                .samples
                .iter()
                .filter_map(|s| {
                    s.breakers
                        .get(*name)
                        .map(|v| (s.t_ms as f64 / 1000.0, f64::from(*v) + 0.03 * i as f64))
                })
                .collect(),
        })
        .collect();
    let n = t.samples.len();
    figure(
        out,
        "breakers",
        n,
        plot(
            "Circuit breaker states (0 closed, 1 half-open, 2 open)",
            "state",
            x_max,
            &breakers,
            windows,
            2.0,
        ),
    );
}

/// The whole page.
pub fn render(r: &Report) -> String {
    let mut h = String::with_capacity(256 * 1024);
    let verdict = if r.passed { "PASSED" } else { "FAILED" };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>caplab scenario {name}: {verdict}</title>\n<style>\n{style}.legend span.fault{{background:rgba(255,140,140,.4)}}\n</style></head><body>\n<h1>Scenario <code>{name}</code>: <span class=\"{cls}\">{verdict}</span></h1>\n<p>{desc}</p>\n",
        name = escape(&r.scenario),
        cls = if r.passed { "pass" } else { "fail" },
        desc = escape(r.description.trim()),
        style = picture::STYLE,
    );
    h.push_str("<h2>Thresholds</h2>\n<table><tr><th></th><th>threshold</th><th>measured</th><th>lesson</th></tr>\n");
    for t in &r.thresholds {
        let measured = match (t.measured, &t.note) {
            (Some(v), _) => format!("{v:.4}"),
            (None, n) => format!(
                "not measured{}",
                n.as_ref().map_or(String::new(), |n| format!(": {n}"))
            ),
        };
        let _ = writeln!(
            h,
            "<tr><td class=\"{}\">{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            if t.passed { "pass" } else { "fail" },
            if t.passed { "pass" } else { "FAIL" },
            escape(&describe(&t.threshold)),
            escape(&measured),
            escape(&t.threshold.lesson)
        );
    }
    h.push_str("</table>\n<h2>Timeline</h2>\n<table><tr><th>step</th><th>planned ms</th><th>applied ms</th><th>result</th></tr>\n");
    for s in &r.steps {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{:.0}</td><td>{:.1}</td><td>{}</td></tr>",
            escape(&s.description),
            s.planned_ms,
            s.applied_ms,
            escape(s.error.as_deref().unwrap_or("ok"))
        );
    }
    h.push_str("</table>\n<p class=\"legend\"><span class=\"fault\"></span>shaded: fault windows (from a fault step to the step that heals it)</p>\n");
    let x_max = r.workload.duration.as_secs_f64();
    for t in &r.targets {
        let _ = writeln!(
            h,
            "<h2 id=\"{}\">{} <small>{}</small></h2>\n<p>{} scheduled, {} sent ({:.1}/s of {:.1}/s scheduled), {} dropped, {} late by more than 10 ms; availability {}; linearizable: {}; stale reads {} of {}; lost acknowledged writes {}.</p>",
            t.target.as_str(),
            t.target.as_str().to_uppercase(),
            escape(&t.url),
            t.scheduled,
            t.sent,
            t.achieved_rate,
            t.scheduled_rate,
            t.dropped,
            t.late,
            t.whole
                .availability
                .map_or("-".into(), |a| format!("{:.2}%", a * 100.0)),
            t.check.linearizability.valid.word(),
            t.check.stale_reads.count,
            t.check.stale_reads.reads,
            t.check.lost_writes.writes_lost,
        );
        let _ = writeln!(
            h,
            "<p>How stale, how often: {}.</p>",
            escape(&by_age(&t.check.stale_reads.by_age))
        );
        if let Some(failure) = &t.failure {
            let _ = writeln!(
                h,
                "<h3>Why {} is not linearizable</h3>\n{}",
                t.target.as_str().to_uppercase(),
                picture::section(failure)
            );
        }
        target_plots(&mut h, t, x_max, &r.fault_windows);
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_break_at_gaps() {
        let pts = [(0.5, 1.0), (1.5, 2.0), (4.5, 3.0), (5.5, 4.0), (9.5, 5.0)];
        let parts = segments(&pts, MAX_GAP_S);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], &pts[..2]);
        assert_eq!(parts[2], &pts[4..]);
        assert!(segments(&[], MAX_GAP_S).is_empty());
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
