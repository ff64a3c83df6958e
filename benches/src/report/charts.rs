//! The report's charts, drawn as SVG with plotters: log-log line charts of a figure
//! against batch size, one line per backend, with the disk's ceiling as a reference. Add a
//! chart: an entry in [`CHARTS`], its drawing in [`all_charts`], and its place in
//! `markdown.rs`.

use plotters::prelude::*;

use super::fmt::fmt_num;
use super::model::{Report, HEADLINE_ENTRY_BYTES};
use crate::BenchError;

/// The charts a report refers to: file name (under `charts/`) and title.
pub const CHARTS: [(&str, &str); 3] = [
    ("appends-immediate.svg", "Durable (Immediate) appends of 128-byte entries"),
    ("appends-buffered.svg", "Buffered and in-memory appends of 128-byte entries"),
    ("replica.svg", "3-replica cluster, upfront appends: entries decided per second"),
];

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// The legend label.
    pub name: String,
    /// The backend the line belongs to (picks its colour).
    pub backend: String,
    /// `(x, y)` points, x ascending.
    pub points: Vec<(f64, f64)>,
}

/// A fixed colour per backend, so a backend looks the same in every chart.
fn color_of(backend: &str) -> RGBColor {
    match backend {
        "wal" => RGBColor(214, 39, 40),
        "rocksdb" => RGBColor(31, 119, 180),
        "redb" => RGBColor(44, 160, 44),
        "sled" => RGBColor(255, 127, 14),
        "fjall" => RGBColor(148, 103, 189),
        "raft-engine" => RGBColor(140, 86, 75),
        "memory" => RGBColor(127, 127, 127),
        other => {
            let h = other.bytes().fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b.into()));
            let c = Palette99::pick(h).to_rgba();
            RGBColor(c.0, c.1, c.2)
        }
    }
}

/// Short axis labels: `1k`, `20k`, `3M`.
fn short_num(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{}M", trim_float(x / 1e6)),
        x if x >= 1e3 => format!("{}k", trim_float(x / 1e3)),
        x => trim_float(x),
    }
}

fn trim_float(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// A log-log line chart as an SVG document. `reference` draws a horizontal line with a
/// label (the disk's ceiling).
pub fn line_chart(
    name: &str,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    reference: Option<(&str, f64)>,
) -> Result<String, BenchError> {
    let err = |e: &dyn std::fmt::Display| BenchError::Chart {
        name: name.to_owned(),
        detail: e.to_string(),
    };
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(reference.map(|r| r.1))
        .filter(|y| *y > 0.0);
    let (x_min, x_max) = xs.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (y_min, y_max) = ys.fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    if x_min > x_max || y_min > y_max {
        return Err(err(&"no points to draw"));
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (860, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(
                (x_min / 1.4..x_max * 1.4).log_scale(),
                (y_min / 2.0..y_max * 3.0).log_scale(),
            )
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|x| short_num(*x))
            .y_label_formatter(&|y| short_num(*y))
            .draw()
            .map_err(|e| err(&e))?;
        if let Some((label, y)) = reference {
            let style = BLACK.stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x_min / 1.4, y), (x_max * 1.4, y)],
                    6,
                    4,
                    style,
                ))
                .map_err(|e| err(&e))?
                .label(label.to_owned())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        for s in series {
            let color = color_of(&s.backend);
            // Thin: buffered figures, and OmniPaxos beside paxstore's replica.
            let thin = s.name.contains("buffered") || s.name.starts_with("omnipaxos");
            let style = color.stroke_width(if thin { 1 } else { 2 });
            chart
                .draw_series(LineSeries::new(s.points.clone(), style))
                .map_err(|e| err(&e))?
                .label(s.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            chart
                .draw_series(s.points.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

fn append_series(report: &Report, durability: &str) -> Vec<Series> {
    report
        .backends
        .iter()
        .map(|b| Series {
            name: format!("{b} ({durability})"),
            backend: b.clone(),
            points: report
                .storage
                .iter()
                .filter(|r| {
                    &r.backend == b
                        && r.durability == durability
                        && r.op == "append"
                        && r.entry_bytes == HEADLINE_ENTRY_BYTES
                })
                .map(|r| (r.batch as f64, r.entries_per_s))
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

/// Every chart of the report, as `(file name, SVG)`, in the order of
/// [`CHARTS`]; a chart with nothing to draw is left out.
pub fn all_charts(report: &Report) -> Result<Vec<(String, String)>, BenchError> {
    let ceiling = report.ceiling.sync_writes_per_s;
    let ceiling_label = format!("disk ceiling: {} synced 4 KiB writes/s", fmt_num(ceiling));
    let mut out = Vec::new();
    let [(f0, t0), (f1, t1), (f2, t2)] = CHARTS;
    let durable = append_series(report, "immediate");
    if !durable.is_empty() {
        out.push((
            f0.to_owned(),
            line_chart(
                f0,
                t0,
                "entries per batch",
                "entries/s",
                &durable,
                Some((&ceiling_label, ceiling)),
            )?,
        ));
    }
    let mut fast = append_series(report, "buffered");
    fast.extend(append_series(report, "none"));
    if !fast.is_empty() {
        out.push((
            f1.to_owned(),
            line_chart(f1, t1, "entries per batch", "entries/s", &fast, None)?,
        ));
    }
    let mut replica = Vec::new();
    let mut keys: Vec<(&str, &str, &str)> = Vec::new();
    // The floor is a yardstick, not a replica: it stays in the tables.
    for r in report.replica.iter().filter(|r| r.mode == "upfront" && r.replica != "floor") {
        let key = (r.replica.as_str(), r.backend.as_str(), r.durability.as_str());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    for (imp, b, d) in keys {
        let points: Vec<(f64, f64)> = report
            .replica
            .iter()
            .filter(|r| {
                r.mode == "upfront" && r.replica == imp && r.backend == b && r.durability == d
            })
            .map(|r| (r.batch_size as f64, r.decided_per_s))
            .collect();
        let name = format!("{imp} over {b} ({d})");
        replica.push(Series { name, backend: b.to_owned(), points });
    }
    if !replica.is_empty() {
        out.push((
            f2.to_owned(),
            line_chart(
                f2,
                t2,
                "replica batch_size",
                "entries decided/s",
                &replica,
                Some((&ceiling_label, ceiling)),
            )?,
        ));
    }
    Ok(out)
}
