//! The run's timeline as a self-contained SVG: packet rates in and out at the
//! participants, and one-way latency (mean and worst per second), over time.

use std::fmt::Write as _;

use super::report::{MediaReport, TimelinePoint};

const WIDTH: f64 = 800.0;
const PANEL: f64 = 220.0;
const MARGIN: f64 = 50.0;

/// A line: its legend, colour, and the value it takes from each point.
type Series = (
    &'static str,
    &'static str,
    fn(&TimelinePoint) -> Option<f64>,
);

/// Two stacked line charts sharing the time axis.
pub fn svg(report: &MediaReport) -> String {
    let points = &report.timeline;
    let end = points.last().map_or(1.0, |p| p.t_secs).max(1.0);
    let mut out = String::new();
    let height = 2.0 * PANEL + 3.0 * MARGIN;
    let _ = writeln!(
        out,
        "<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' \
         font-family='sans-serif' font-size='12'>"
    );
    let _ = writeln!(
        out,
        "<text x='{MARGIN}' y='20' font-size='14'>{} — {} rooms × {} ({} sending)</text>",
        escape(&report.label),
        report.rooms,
        report.participants_per_room,
        report.senders_per_room
    );
    let rates: [Series; 2] = [
        ("packets/s in", "#1f77b4", |p| Some(p.packets_in_per_sec)),
        ("packets/s out", "#ff7f0e", |p| Some(p.packets_out_per_sec)),
    ];
    panel(&mut out, points, end, MARGIN, "packets per second", &rates);
    let latency: [Series; 2] = [
        ("one-way mean ms", "#2ca02c", |p| p.one_way_mean_ms),
        ("one-way worst ms", "#d62728", |p| p.one_way_max_ms),
    ];
    panel(
        &mut out,
        points,
        end,
        2.0 * MARGIN + PANEL,
        "milliseconds",
        &latency,
    );
    out.push_str("</svg>\n");
    out
}

fn panel(
    out: &mut String,
    points: &[TimelinePoint],
    end: f64,
    top: f64,
    unit: &str,
    series: &[Series],
) {
    let max = series
        .iter()
        .flat_map(|(_, _, f)| points.iter().filter_map(f))
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let left = MARGIN;
    let right = WIDTH - MARGIN;
    let bottom = top + PANEL;
    let x = |t: f64| left + (right - left) * t / end;
    let y = |v: f64| bottom - PANEL * v / max;
    let _ = writeln!(
        out,
        "<rect x='{left}' y='{top}' width='{}' height='{PANEL}' fill='none' stroke='#999'/>",
        right - left
    );
    let _ = writeln!(out, "<text x='{}' y='{}'>{max:.1}</text>", 4.0, top + 10.0);
    let _ = writeln!(out, "<text x='{}' y='{bottom}'>0</text>", 4.0);
    let _ = writeln!(out, "<text x='{left}' y='{}'>{unit}</text>", top - 6.0);
    let _ = writeln!(
        out,
        "<text x='{}' y='{}' text-anchor='end'>{end:.0} s</text>",
        right,
        bottom + 14.0
    );
    for (i, (name, colour, f)) in series.iter().enumerate() {
        let mut path = String::new();
        for p in points {
            if let Some(v) = f(p) {
                let cmd = if path.is_empty() { 'M' } else { 'L' };
                let _ = write!(path, "{cmd}{:.1},{:.1} ", x(p.t_secs), y(v));
            }
        }
        let _ = writeln!(
            out,
            "<path d='{path}' fill='none' stroke='{colour}' stroke-width='1.5'/>"
        );
        let _ = writeln!(
            out,
            "<text x='{}' y='{}' fill='{colour}'>{name}</text>",
            right - 140.0,
            top + 16.0 + 14.0 * i as f64
        );
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_both_panels_from_the_timeline() {
        let report = MediaReport {
            label: "a<b".into(),
            timeline: (0..5)
                .map(|i| TimelinePoint {
                    t_secs: i as f64,
                    packets_in_per_sec: 100.0 * i as f64,
                    packets_out_per_sec: 300.0,
                    one_way_mean_ms: (i > 1).then_some(2.0),
                    one_way_max_ms: (i > 1).then_some(9.0),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let svg = svg(&report);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<path").count(), 4, "two series per panel");
        assert!(svg.contains("a&lt;b"), "the label is escaped");
        assert!(
            svg.contains(">400.0<"),
            "the rate axis tops at the highest rate"
        );
    }
}
