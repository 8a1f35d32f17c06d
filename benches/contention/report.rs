//! Medians, markdown tables and the SVG plot.

use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// One throughput cell's samples: Mops/s per round and misses summed over rounds.
#[derive(Debug, Default, Clone)]
pub struct Cell {
    pub mops: Vec<f64>,
    pub misses: u64,
    pub finds: u64,
}

/// Throughput results keyed by (sessions, workload, threads, store index).
pub type Results = BTreeMap<(usize, &'static str, usize, usize), Cell>;

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() && b.is_finite() {
        format!("{:.2}x", a / b)
    } else {
        "n/a".into()
    }
}

pub fn fmt_n(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

#[allow(clippy::too_many_arguments)]
/// The main table: every store's median Mops/s with its ratio to the scs port, and misses.
pub fn throughput_tables(
    out: &mut String,
    res: &Results,
    stores: &[String],
    scs: Option<usize>,
    memstore: Option<usize>,
    sizes: &[usize],
    workloads: &[&'static str],
    threads: &[usize],
) {
    for &n in sizes {
        for &w in workloads {
            let _ = writeln!(out, "\n#### {w}, {} sessions\n", fmt_n(n));
            let mut head = String::from("| store |");
            let mut sep = String::from("|---|");
            for t in threads {
                let _ = write!(head, " {t} thr Mops/s | vs scs |");
                sep.push_str("---:|---:|");
            }
            head.push_str(" missed reads |");
            sep.push_str("---:|");
            let _ = writeln!(out, "{head}\n{sep}");
            for (si, name) in stores.iter().enumerate() {
                let mut row = format!("| {name} |");
                let mut misses = 0;
                let mut finds = 0;
                for &t in threads {
                    let Some(c) = res.get(&(n, w, t, si)) else {
                        row.push_str(" - | - |");
                        continue;
                    };
                    let m = median(c.mops.clone());
                    let base = scs
                        .and_then(|b| res.get(&(n, w, t, b)))
                        .map_or(f64::NAN, |c| median(c.mops.clone()));
                    let _ = write!(row, " {m:.2} | {} |", ratio(m, base));
                    misses += c.misses;
                    finds += c.finds;
                }
                let _ = writeln!(row, " {misses} of {finds} |");
                out.push_str(&row);
            }
        }
    }
    let Some(ms) = memstore else { return };
    let _ = writeln!(
        out,
        "\n#### memstore against every peer (median Mops/s ratio, memstore / peer)\n"
    );
    let mut head = String::from("| workload | sessions | threads | memstore Mops/s |");
    let mut sep = String::from("|---|---:|---:|---:|");
    for (si, name) in stores.iter().enumerate() {
        if si != ms {
            let _ = write!(head, " vs {} |", short(name));
            sep.push_str("---:|");
        }
    }
    let _ = writeln!(out, "{head}\n{sep}");
    for &w in workloads {
        for &n in sizes {
            for &t in threads {
                let Some(c) = res.get(&(n, w, t, ms)) else {
                    continue;
                };
                let m = median(c.mops.clone());
                let mut row = format!("| {w} | {} | {t} | {m:.2} |", fmt_n(n));
                for si in 0..stores.len() {
                    if si == ms {
                        continue;
                    }
                    let p = res
                        .get(&(n, w, t, si))
                        .map_or(f64::NAN, |c| median(c.mops.clone()));
                    let _ = write!(row, " {} |", ratio(m, p));
                }
                let _ = writeln!(out, "{row}");
            }
        }
    }
}

/// A store's name without its parenthesised description: "scs (RwLock<HashMap>)" -> "scs",
/// "memstore, hash index" kept whole.
fn short(name: &str) -> &str {
    name.split(" (").next().unwrap_or(name)
}

/// Mops/s against threads, one panel per (sessions, workload), one line per store.
pub fn plot(
    path: &std::path::Path,
    res: &Results,
    stores: &[String],
    sizes: &[usize],
    workloads: &[&'static str],
    threads: &[usize],
) -> Result<(), Box<dyn std::error::Error>> {
    let cols = workloads.len().max(1);
    let rows = sizes.len().max(1);
    let root =
        SVGBackend::new(path, (360 * cols as u32, 300 * rows as u32 + 40)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(40);
    title.draw(&Text::new(
        "memstore and peers: Mops/s against threads (median of rounds)",
        (10, 12),
        ("sans-serif", 18).into_font(),
    ))?;
    let panels = body.split_evenly((rows, cols));
    let tmax = *threads.iter().max().unwrap_or(&1) as f64;
    let tmin = *threads.iter().min().unwrap_or(&1) as f64;
    for (pi, panel) in panels.iter().enumerate() {
        let (n, w) = (sizes[pi / cols], workloads[pi % cols]);
        let mut ymax: f64 = 0.0;
        for t in threads {
            for si in 0..stores.len() {
                if let Some(c) = res.get(&(n, w, *t, si)) {
                    ymax = ymax.max(median(c.mops.clone()));
                }
            }
        }
        let ymax = if ymax > 0.0 { ymax * 1.1 } else { 1.0 };
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{w}, {}", fmt_n(n)), ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(40)
            .build_cartesian_2d((tmin - 0.2)..(tmax + 0.2), 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_desc("threads")
            .y_desc("Mops/s")
            .x_labels(threads.len().max(2))
            .label_style(("sans-serif", 11))
            .draw()?;
        for (si, name) in stores.iter().enumerate() {
            let pts: Vec<(f64, f64)> = threads
                .iter()
                .filter_map(|&t| {
                    res.get(&(n, w, t, si))
                        .map(|c| (t as f64, median(c.mops.clone())))
                })
                .collect();
            if pts.is_empty() {
                continue;
            }
            let color = Palette99::pick(si).to_rgba();
            let width = if si == 0 { 3 } else { 1 };
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(width)))?
                .label(short(name).to_string())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color));
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
        if pi == 0 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 11))
                .position(SeriesLabelPosition::UpperLeft)
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}
