//! Why it failed, as a picture: the failing key's operations as bars on a timeline, one lane
//! per process, in one self-contained HTML page (`caplab check --html FILE`) or as a section
//! of the scenario report.
//!
//! Where it sits: draws a [`FailureView`] from [`super::explain`]. The SVG is written by hand
//! (no script, nothing fetched): each bar carries a `<title>` (the browser shows it on
//! hover) and its label is clipped to the room its lane leaves it. Colours and page style are those of the
//! scenario report, which takes them from here. What the marks mean:
//! - blue bars with `#n`: the longest prefix the search could linearize, `n` its order;
//! - the red bar: the operation no linearization could place, with a dashed red line at its
//!   deadline and the register's value at the end of that prefix;
//! - grey bars: operations not in that prefix; dashed outlines: `info` (open to the right:
//!   no completion) and `fail` (did not happen);
//! - orange labels: stale reads (with their age); purple: lost acknowledged writes and the
//!   final read that lost them.

use std::fmt::Write as _;

use super::explain::{FailureView, ViewOp, view};
use super::history::{History, Outcome};
use super::report::{CheckReport, Validity};
use super::{OpKind, render};

/// The palette of every page caplab draws (matplotlib's, as the scenario plots use).
pub const BLUE: (u8, u8, u8) = (31, 119, 180);
/// See [`BLUE`].
pub const ORANGE: (u8, u8, u8) = (255, 127, 14);
/// See [`BLUE`].
pub const GREEN: (u8, u8, u8) = (44, 160, 44);
/// See [`BLUE`].
pub const RED: (u8, u8, u8) = (214, 39, 40);
/// See [`BLUE`].
pub const PURPLE: (u8, u8, u8) = (148, 103, 189);

/// The style sheet of caplab's pages.
pub const STYLE: &str = "body{font-family:sans-serif;max-width:1240px;margin:1em auto;color:#222}\ntable{border-collapse:collapse;margin:.5em 0;font-size:14px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}\n.pass{color:#1a7f37}.fail{color:#c62828;font-weight:bold}figure{margin:.5em 0}.note{color:#666}\n.legend span{display:inline-block;width:14px;height:10px;margin:0 4px 0 12px;vertical-align:middle}\nfigure svg{max-width:100%;height:auto}\npre{background:#f6f8fa;padding:.6em;font-size:13px;white-space:pre-wrap}\n";

fn rgb(c: (u8, u8, u8)) -> String {
    format!("rgb({},{},{})", c.0, c.1, c.2)
}

/// Escapes text for HTML and SVG.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn value(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "nil".into())
}

/// `w 3`, `r nil`, `cas 1→3`: the text on a bar.
fn label(o: &ViewOp) -> String {
    let r = &o.op;
    let what = match r.f {
        OpKind::Read => format!("r {}", value(&r.value)),
        OpKind::Write => format!("w {}", value(&r.value)),
        OpKind::Cas => format!(
            "cas {}→{}",
            value(r.expected.as_ref().unwrap_or(&None)),
            value(&r.value)
        ),
    };
    let outcome = match r.outcome {
        Outcome::Ok => "",
        Outcome::Fail => " fail",
        Outcome::Info => " info",
    };
    match o.order {
        Some(n) => format!("#{n} {what}{outcome}"),
        None => format!("{what}{outcome}"),
    }
}

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 100.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 46.0;
const LANE: f64 = 30.0;
const BAR: f64 = 18.0;
const BOTTOM: f64 = 44.0;

/// The time of a drawn operation in the axis's unit (ms, or positions for logical time).
fn unit(v: &FailureView, ns: u64) -> f64 {
    if v.logical_time {
        ns as f64
    } else {
        ns as f64 / 1e6
    }
}

/// The timeline as an SVG element.
pub fn svg(v: &FailureView) -> String {
    let mut lanes: Vec<u64> = v.ops.iter().map(|o| o.op.process).collect();
    lanes.sort_unstable();
    lanes.dedup();
    // An ordinal time axis: every distinct invoke and completion time gets one slot, in
    // order, so real-time order (before, after, overlapping) is exact and every bar is
    // wide enough to read, however far apart the times are.
    let mut slots: Vec<u64> = v
        .ops
        .iter()
        .flat_map(|o| [Some(o.op.invoke_ns), o.op.complete_ns])
        .flatten()
        .collect();
    slots.sort_unstable();
    slots.dedup();
    let open = v.ops.iter().any(|o| o.op.complete_ns.is_none());
    let plot_w = WIDTH - LEFT - RIGHT;
    let step = plot_w / (slots.len() as f64 + if open { 1.5 } else { 0.0 });
    let x = |t: u64| LEFT + (slots.partition_point(|&s| s < t) as f64 + 0.5) * step;
    let height = TOP + LANE * lanes.len() as f64 + BOTTOM;
    let mut s = String::with_capacity(16 * 1024 + v.ops.len() * 600);
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\" aria-label=\"operations on key {key} by process over time\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        key = escape(&v.key)
    );
    // Lanes and their names.
    for (i, p) in lanes.iter().enumerate() {
        let y = TOP + LANE * i as f64;
        if i % 2 == 0 {
            let _ = writeln!(
                s,
                "<rect x=\"{LEFT}\" y=\"{y}\" width=\"{plot_w}\" height=\"{LANE}\" fill=\"#f7f7f7\"/>"
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#444\">process {p}</text>",
            LEFT - 8.0,
            y + LANE / 2.0 + 4.0
        );
    }
    // Time axis: a tick at every slot, its time written at about eight of them.
    let axis_y = TOP + LANE * lanes.len() as f64;
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" stroke=\"#888\"/>",
        LEFT + plot_w
    );
    let every = slots.len().div_ceil(8).max(1);
    for (k, &t) in slots.iter().enumerate() {
        let tx = x(t);
        let long = k % every == 0;
        let _ = write!(
            s,
            "<line x1=\"{tx:.1}\" y1=\"{axis_y}\" x2=\"{tx:.1}\" y2=\"{}\" stroke=\"#888\"/>",
            axis_y + if long { 6.0 } else { 3.0 }
        );
        if long {
            let text = if v.logical_time {
                format!("{t}")
            } else {
                format!("{:.3}", unit(v, t))
            };
            let _ = write!(
                s,
                "<text x=\"{tx:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444\">{text}</text>",
                axis_y + 19.0
            );
        }
        s.push('\n');
    }
    let axis_name = if v.logical_time {
        "invokes and completions in time order, evenly spaced (labels: position in the file, which has no times)"
    } else {
        "invokes and completions in time order, evenly spaced (labels: ms on the history's clock)"
    };
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444\">{axis_name}</text>",
        LEFT + plot_w / 2.0,
        axis_y + 36.0
    );
    // The deadline the search could not get past.
    if let Some(stuck) = v.stuck() {
        let at = stuck.op.complete_ns.unwrap_or(stuck.op.invoke_ns);
        let lx = x(at);
        let register = value(&v.register_then);
        let anchor = if lx > LEFT + plot_w * 0.6 {
            "end"
        } else {
            "start"
        };
        let _ = writeln!(
            s,
            "<line x1=\"{lx:.1}\" y1=\"{}\" x2=\"{lx:.1}\" y2=\"{axis_y}\" stroke=\"{red}\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n<text x=\"{lx:.1}\" y=\"{}\" text-anchor=\"{anchor}\" fill=\"{red}\" font-weight=\"bold\">stuck after {n} linearized operations: the register held {reg}; no order places {what}</text>",
            TOP - 22.0,
            TOP - 26.0,
            red = rgb(RED),
            n = v.linearized_before,
            reg = escape(&register),
            what = escape(&label(&ViewOp {
                order: None,
                ..stuck.clone()
            })),
        );
    }
    for (i, o) in v.ops.iter().enumerate() {
        let lane = lanes.iter().position(|&p| p == o.op.process).unwrap_or(0);
        // The label may run past a short bar, up to the next operation in its lane.
        let room = v.ops[i + 1..]
            .iter()
            .find(|n| n.op.process == o.op.process)
            .map_or(LEFT + plot_w, |n| x(n.op.invoke_ns))
            - x(o.op.invoke_ns)
            - 3.0;
        let y = TOP + LANE * lane as f64 + (LANE - BAR) / 2.0;
        let x0 = x(o.op.invoke_ns);
        let x1 = o.op.complete_ns.map_or(LEFT + plot_w, x);
        let w = (x1 - x0).max(3.0);
        let (fill, stroke, width) = if o.stuck {
            ("#f9d0d0".to_string(), rgb(RED), 3.0)
        } else if o.order.is_some() {
            ("#d6e6f4".to_string(), rgb(BLUE), 1.2)
        } else if o.op.outcome == Outcome::Fail {
            ("white".to_string(), "#999".to_string(), 1.0)
        } else {
            ("#e6e6e6".to_string(), "#888".to_string(), 1.0)
        };
        let dash = match o.op.outcome {
            Outcome::Ok => "",
            _ => " stroke-dasharray=\"5 3\"",
        };
        let text = label(o);
        let _ = write!(
            s,
            "<g data-index=\"{idx}\"{stuck}><title>{title}</title><rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BAR}\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{width}\"{dash}/>",
            idx = o.op.index,
            stuck = if o.stuck { " data-stuck=\"true\"" } else { "" },
            title = escape(&o.op.describe()),
        );
        // The label, clipped by a nested viewport to the room its lane leaves it.
        let _ = write!(
            s,
            "<svg x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{BAR}\"><text x=\"4\" y=\"13\" fill=\"#222\">{}</text></svg>",
            room.max(w),
            escape(&text)
        );
        let mut marks = Vec::new();
        if let Some(age) = o.stale_ms {
            marks.push((format!("stale, {age:.1} ms old"), ORANGE));
        }
        if o.lost {
            marks.push(("lost".to_string(), PURPLE));
        }
        if o.final_read {
            marks.push(("final read".to_string(), PURPLE));
        }
        let mut mx = x0;
        for (m, c) in marks {
            let _ = write!(
                s,
                "<text x=\"{mx:.1}\" y=\"{:.1}\" font-size=\"10\" font-weight=\"bold\" fill=\"{}\">{}</text>",
                y - 2.0,
                rgb(c),
                escape(&m)
            );
            mx += 7.0 * m.len() as f64;
        }
        s.push_str("</g>\n");
    }
    s.push_str("</svg>\n");
    s
}

/// The picture with its legend and the drawn operations as a table.
pub fn section(v: &FailureView) -> String {
    let mut h = String::new();
    let swatch = |css: &str, text: &str| format!("<span style=\"{css}\"></span>{text}");
    let _ = writeln!(
        h,
        "<p>Key <code>{key}</code>: {n} operations drawn{hidden}; {stale} stale reads and {lost} lost acknowledged writes on this key.</p>",
        key = escape(&v.key),
        n = v.ops.len(),
        hidden = if v.hidden_before + v.hidden_after > 0 {
            format!(
                " ({} earlier and {} later operations of the key not drawn)",
                v.hidden_before, v.hidden_after
            )
        } else {
            String::new()
        },
        stale = v.stale_reads,
        lost = v.lost_writes,
    );
    let _ = writeln!(
        h,
        "<figure data-plot=\"linearizability\">{}</figure>",
        svg(v)
    );
    let _ = writeln!(
        h,
        "<p class=\"legend\">{}{}{}{}{}{}</p>",
        swatch(
            &format!("background:#d6e6f4;border:1px solid {}", rgb(BLUE)),
            "in the longest linearizable prefix (#n: its order)"
        ),
        swatch(
            &format!("background:#f9d0d0;border:2px solid {}", rgb(RED)),
            "the operation no order could place"
        ),
        swatch(
            "background:#e6e6e6;border:1px solid #888",
            "not in that prefix"
        ),
        swatch(
            "background:white;border:1px dashed #888",
            "info (open) or fail"
        ),
        swatch(&format!("background:{}", rgb(ORANGE)), "stale read"),
        swatch(
            &format!("background:{}", rgb(PURPLE)),
            "lost write / its final read"
        ),
    );
    let _ = writeln!(
        h,
        "<details><summary>The {} operations drawn</summary>\n<table><tr><th>#</th><th>index</th><th>line</th><th>process</th><th>operation</th><th>outcome</th><th>invoke</th><th>complete</th><th>found</th></tr>",
        v.ops.len()
    );
    for o in &v.ops {
        let mut found = Vec::new();
        if o.stuck {
            found.push("cannot be placed".to_string());
        }
        if let Some(a) = o.stale_ms {
            found.push(format!("stale read, {a:.1} ms old"));
        }
        if o.lost {
            found.push("lost write".into());
        }
        if o.final_read {
            found.push("final read".into());
        }
        let _ = writeln!(
            h,
            "<tr{cls}><td>{order}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{:.3}</td><td>{}</td><td>{}</td></tr>",
            o.op.index,
            o.op.line,
            o.op.process,
            escape(&o.op.describe()),
            o.op.outcome,
            unit(v, o.op.invoke_ns),
            o.op.complete_ns
                .map_or("-".to_string(), |c| format!("{:.3}", unit(v, c))),
            escape(&found.join(", ")),
            cls = if o.stuck { " class=\"fail\"" } else { "" },
            order = o.order.map_or(String::new(), |n| n.to_string()),
        );
    }
    h.push_str("</table></details>\n");
    h
}

/// The whole page for `caplab check --html`: the verdict, the summary, and the picture of
/// the first failing key.
pub fn page(history: &History, report: &CheckReport, name: &str) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let (cls, word) = match report.valid {
        Validity::Valid => ("pass", "valid"),
        Validity::Invalid => ("fail", "INVALID"),
        Validity::Unknown => ("note", "unknown"),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>caplab check {name}: {word}</title>\n<style>\n{STYLE}</style></head><body>\n<h1>caplab check <code>{name}</code>: <span class=\"{cls}\">{word}</span></h1>\n",
        name = escape(name),
    );
    match view(history, report) {
        Some(v) => {
            let _ = writeln!(
                h,
                "<h2>Why key <code>{}</code> is not linearizable</h2>\n{}",
                escape(&v.key),
                section(&v)
            );
        }
        None => {
            let why = match report.linearizability.valid {
                Validity::Valid => "Every key is linearizable: there is nothing to draw.",
                _ => {
                    "The search did not finish (see the summary): there is no failing key to draw."
                }
            };
            let _ = writeln!(h, "<p class=\"note\">{why}</p>");
        }
    }
    let _ = writeln!(
        h,
        "<h2>Summary</h2>\n<pre>{}</pre>\n</body></html>",
        escape(&render::summary(report))
    );
    h
}
