//! SVG charts (plotters, SVG backend only).

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::kv::System;
use crate::report::{human, quantile_us, Run};
use crate::workload::Outcome;

/// Chart size in pixels.
const CHART_SIZE: (u32, u32) = (1120, 560);
/// Width of the plot; the legend takes the rest, right of it.
const PLOT_WIDTH: u32 = 820;
/// Legend layout: top margin, row height, line length and text offset, in pixels.
const LEGEND_TOP: i32 = 60;
const LEGEND_ROW: i32 = 24;
const LEGEND_LINE: i32 = 28;
const LEGEND_TEXT_DX: i32 = 36;
/// Font of the legend.
const LEGEND_FONT: (&str, u32) = ("sans-serif", 14);
/// Points on a latency CDF curve.
const CDF_POINTS: u32 = 400;
/// Highest quantile plotted on a latency CDF.
const CDF_MAX_QUANTILE: f64 = 0.9999;
/// Dataset size preferred for the threads and CDF charts.
const FOCUS_RECORDS: u64 = 10_000;
/// Headroom factor above and below the plotted data on log axes.
const LOG_AXIS_PAD: f64 = 2.0;
/// Font of titles and labels.
const FONT: (&str, u32) = ("sans-serif", 18);

/// One named curve.
struct Series {
    label: String,
    points: Vec<(f64, f64)>,
    color: RGBColor,
}

/// A stable color per system (its place in [`System::ALL`]).
fn color(s: System) -> RGBColor {
    let i = System::ALL.iter().position(|x| *x == s).unwrap_or(0);
    const PALETTE: [RGBColor; 10] = [
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0x17, 0xbe, 0xcf),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0xbc, 0xbd, 0x22),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
        RGBColor(0x7f, 0x7f, 0x7f),
        RGBColor(0xe3, 0x77, 0xc2),
    ];
    PALETTE[i % PALETTE.len()]
}

/// What one chart shows, apart from its data.
struct Chart {
    /// File name inside the output directory.
    file: String,
    title: String,
    x_desc: &'static str,
    y_desc: &'static str,
    /// Log scale on x as well as on y.
    log_x: bool,
}

/// Draws `series` into `out/chart.file` on log-y axes (log-log when
/// `chart.log_x`); returns the file name.
fn draw(out: &Path, chart: Chart, series: &[Series]) -> Result<String> {
    let Chart { file, title, x_desc, y_desc, log_x } = chart;
    let path = out.join(&file);
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return Ok(file);
    }
    let root = SVGBackend::new(&path, CHART_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let y_range = ((y0 / LOG_AXIS_PAD).max(f64::MIN_POSITIVE)..y1 * LOG_AXIS_PAD).log_scale();
    let (plot, legend) = root.split_horizontally(PLOT_WIDTH);
    draw_legend(&legend, series)?;
    let mut builder = ChartBuilder::on(&plot);
    builder.caption(&title, FONT).margin(12).x_label_area_size(48).y_label_area_size(80);
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(y_desc)
                .x_label_formatter(&|x| human(*x))
                .y_label_formatter(&|y| human(*y))
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
            for s in series {
                chart
                    .draw_series(LineSeries::new(s.points.iter().copied(), s.color.stroke_width(2)))
                    .map_err(|e| anyhow!("{e}"))?;
            }
        }};
    }
    if log_x {
        let x_range = ((x0 / LOG_AXIS_PAD).max(f64::MIN_POSITIVE)..x1 * LOG_AXIS_PAD).log_scale();
        finish!(builder.build_cartesian_2d(x_range, y_range).map_err(|e| anyhow!("{e}"))?);
    } else {
        finish!(builder.build_cartesian_2d(x0..x1, y_range).map_err(|e| anyhow!("{e}"))?);
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(file)
}

/// Draws the legend (one line and label per series) into its own area.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    series: &[Series],
) -> Result<()> {
    for (i, s) in (0i32..).zip(series) {
        let y = LEGEND_TOP + i * LEGEND_ROW;
        area.draw(&PathElement::new(vec![(0, y), (LEGEND_LINE, y)], s.color.stroke_width(2)))
            .map_err(|e| anyhow!("{e:?}"))?;
        let pos = (LEGEND_TEXT_DX, y - i32::try_from(LEGEND_FONT.1 / 2).unwrap_or(0));
        area.draw(&Text::new(s.label.clone(), pos, LEGEND_FONT)).map_err(|e| anyhow!("{e:?}"))?;
    }
    Ok(())
}

/// The dataset size the focused charts use: 10k if measured, else the largest.
fn focus_records(run: &Run) -> u64 {
    let all = run.axis(|c| c.records);
    all.iter().copied().find(|r| *r == FOCUS_RECORDS).or_else(|| all.last().copied()).unwrap_or(0)
}

/// Writes every chart for every workload into `out`; returns the file names.
pub fn write_all(run: &Run, out: &Path) -> Result<Vec<String>> {
    let mut written = Vec::new();
    let Some(&doc) = run.axis(|c| c.doc_bytes).first() else {
        return Ok(written);
    };
    let records = focus_records(run);
    let systems = run.axis(|c| c.system);
    let threads = run.axis(|c| c.threads);
    let max_t = threads.last().copied().unwrap_or(1);
    for w in run.axis(|c| c.workload) {
        let thread_xs: Vec<f64> = threads.iter().map(|&t| t as f64).collect();
        let mut by_threads =
            per_system(&systems, &thread_xs, |s, x| run.find(s, w, records, doc, x as usize));
        let raw: Vec<(f64, f64)> = threads
            .iter()
            .filter_map(|&t| run.raw_limit(doc, t).map(|r| (t as f64, r.records_per_sec())))
            .collect();
        by_threads.push(Series {
            label: "raw append+fdatasync (group = threads)".to_owned(),
            points: raw,
            color: BLACK,
        });
        let chart = Chart {
            file: format!("throughput_vs_threads_{}.svg", w.slug()),
            title: format!("{} — {records} docs of {doc} B", w.label()),
            x_desc: "client threads",
            y_desc: "operations/s",
            log_x: true,
        };
        written.push(draw(out, chart, &by_threads)?);

        let record_xs: Vec<f64> = run.axis(|c| c.records).iter().map(|&r| r as f64).collect();
        let by_records = per_system(&systems, &record_xs, |s, x| run.find(s, w, x as u64, doc, 1));
        let chart = Chart {
            file: format!("throughput_vs_records_{}.svg", w.slug()),
            title: format!("{} — 1 thread, docs of {doc} B", w.label()),
            x_desc: "documents in the store",
            y_desc: "operations/s",
            log_x: true,
        };
        written.push(draw(out, chart, &by_records)?);

        let cdf: Vec<Series> = systems
            .iter()
            .filter_map(|&s| {
                let o = run.find(s, w, records, doc, max_t)?;
                Some(Series {
                    label: s.label().to_owned(),
                    points: cdf_points(&o.latency),
                    color: color(s),
                })
            })
            .collect();
        let chart = Chart {
            file: format!("latency_cdf_{}.svg", w.slug()),
            title: format!("{} — latency, {max_t} threads, {records} docs of {doc} B", w.label()),
            x_desc: "percentile (latency CDF, transposed)",
            y_desc: "latency (µs)",
            log_x: false,
        };
        written.push(draw(out, chart, &cdf)?);
    }
    Ok(written)
}

/// One throughput curve per system; `cell(system, x)` is the cell plotted at
/// `x` (points whose cell did not run are left out).
fn per_system<'a>(
    systems: &[System],
    xs: &[f64],
    cell: impl Fn(System, f64) -> Option<&'a Outcome>,
) -> Vec<Series> {
    systems
        .iter()
        .map(|&s| Series {
            label: s.label().to_owned(),
            points: xs.iter().filter_map(|&x| cell(s, x).map(|o| (x, o.ops_per_sec()))).collect(),
            color: color(s),
        })
        .collect()
}

/// (percentile, latency µs) pairs of a histogram: its CDF with the axes swapped.
fn cdf_points(h: &crate::measure::Latencies) -> Vec<(f64, f64)> {
    (0..=CDF_POINTS)
        .map(|i| {
            let q = CDF_MAX_QUANTILE * f64::from(i) / f64::from(CDF_POINTS);
            (q * 100.0, quantile_us(h, q).max(f64::MIN_POSITIVE))
        })
        .collect()
}
