//! The explanation's PNGs: ranked importance bars (train against held-out, with error bars),
//! per-event attributions (beeswarm-style, coloured by the feature's value), the neurons x
//! features heatmap, partial dependence with ICE curves, the 2-D partial dependence and the
//! surrogate tree.

use super::attrib::{Attributions, Conductance};
use super::data::{Dataset, Sample};
use super::pdp::{Pdp, Pdp2};
use super::perm::{GroupImportance, Metric};
use super::surrogate::Surrogate;
use super::ExplainError;
use crate::plots::{font, lines_over, wrap, Res, COLOURS};
use crate::rng::Rng;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Rows shown in ranked plots.
const SHOWN: usize = 25;

fn done(path: &Path, r: Res) -> Result<(), ExplainError> {
    wrap(path, r).map_err(ExplainError::Plot)
}

type Chart<'a> = ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The row names left of a chart whose row i spans y in [i, i + 1].
fn label_rows(root: &DrawingArea<BitMapBackend, Shift>, chart: &Chart, names: &[String]) -> Res {
    let x = chart.plotting_area().get_pixel_range().0.start;
    for (i, n) in names.iter().enumerate() {
        let (_, y) = chart.backend_coord(&(0.0, i as f64 + 0.5));
        root.draw(&Text::new(
            row_label(n),
            (x - 195, y - 8),
            ("sans-serif", 15),
        ))?;
    }
    Ok(())
}

/// A row name that fits the label area.
fn row_label(n: &str) -> String {
    if n.chars().count() > 26 {
        format!("{}...", n.chars().take(24).collect::<String>())
    } else {
        n.to_string()
    }
}

/// Blue (low) to red (high).
fn heat(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    RGBColor(
        (40.0 + 200.0 * t) as u8,
        (60.0 + 80.0 * (1.0 - (2.0 * t - 1.0).abs())) as u8,
        (240.0 - 200.0 * t) as u8,
    )
}

/// Horizontal bars per group and sample, most important on top, one standard deviation drawn.
pub fn permutation(
    path: &Path,
    data: &Dataset,
    groups: &[GroupImportance],
    metric: Metric,
) -> Result<(), ExplainError> {
    font();
    let held = data
        .samples
        .iter()
        .rposition(|s| s.name != "train")
        .unwrap_or(0);
    let mut order: Vec<&GroupImportance> = groups.iter().collect();
    order.sort_by(|a, b| b.per_sample[held].mean.total_cmp(&a.per_sample[held].mean));
    order.truncate(SHOWN);
    order.reverse();
    let r = (|| -> Res {
        let rows = order.len().max(1);
        let root = BitMapBackend::new(path, (900, 120 + 34 * rows as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        let hi = order
            .iter()
            .flat_map(|g| g.per_sample.iter().map(|i| i.mean + i.std))
            .fold(1e-6, f64::max);
        let lo = order
            .iter()
            .flat_map(|g| g.per_sample.iter().map(|i| i.mean - i.std))
            .fold(0.0, f64::min);
        let names: Vec<String> = order.iter().map(|g| g.group.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "permutation importance ({} {})",
                    metric.name(),
                    if metric == Metric::Auc {
                        "drop"
                    } else {
                        "rise"
                    }
                ),
                ("sans-serif", 24),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(200)
            .build_cartesian_2d(lo..hi * 1.05, 0f64..rows as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc(format!("{} change when shuffled", metric.name()))
            .label_style(("sans-serif", 15))
            .draw()?;
        label_rows(&root, &chart, &names)?;
        let k = data.samples.len().max(1);
        let h = 0.8 / k as f64;
        for (si, s) in data.samples.iter().enumerate() {
            let c = COLOURS[si % COLOURS.len()];
            let bars: Vec<_> = order
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    let y0 = i as f64 + 0.1 + si as f64 * h;
                    Rectangle::new([(0.0, y0), (g.per_sample[si].mean, y0 + h)], c.filled())
                })
                .collect();
            chart
                .draw_series(bars)?
                .label(s.name.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], c.filled()));
            let errs: Vec<_> = order
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    let y = i as f64 + 0.1 + (si as f64 + 0.5) * h;
                    let m = &g.per_sample[si];
                    PathElement::new(vec![(m.mean - m.std, y), (m.mean + m.std, y)], BLACK)
                })
                .collect();
            chart.draw_series(errs)?;
        }
        for (i, g) in order.iter().enumerate() {
            if g.overfit {
                chart.draw_series([Text::new(
                    "overfit?",
                    (hi * 0.8, i as f64 + 0.35),
                    ("sans-serif", 14).into_font().color(&RED),
                )])?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()?;
        root.present()?;
        Ok(())
    })();
    done(path, r)
}

/// Beeswarm-style: one row per feature (largest mean |attribution| on top), a dot per event
/// at its attribution, jittered vertically, coloured by the feature's value (blue low, red
/// high).
pub fn attributions(
    path: &Path,
    title: &str,
    data: &Dataset,
    s: &Sample,
    a: &Attributions,
) -> Result<(), ExplainError> {
    font();
    let f = data.width();
    let n = s.rows(f);
    let mut score: Vec<(usize, f64)> = (0..f)
        .map(|j| {
            let m = (0..n)
                .map(|r| (a.values[r * f + j] as f64).abs())
                .sum::<f64>()
                / n.max(1) as f64;
            (j, m)
        })
        .collect();
    score.sort_by(|x, y| y.1.total_cmp(&x.1));
    score.truncate(SHOWN.min(20));
    score.reverse();
    let shown = n.min(2000);
    let r = (|| -> Res {
        let rows = score.len().max(1);
        let root = BitMapBackend::new(path, (900, 120 + 36 * rows as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut lim = 1e-9f64;
        for &(j, _) in &score {
            for r in 0..shown {
                lim = lim.max((a.values[r * f + j] as f64).abs());
            }
        }
        let names: Vec<String> = score.iter().map(|(j, _)| data.names[*j].clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{title} per event ({shown} events; colour: feature value)"),
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(200)
            .build_cartesian_2d(-lim * 1.05..lim * 1.05, 0f64..rows as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("attribution to the score")
            .label_style(("sans-serif", 15))
            .draw()?;
        label_rows(&root, &chart, &names)?;
        let mut rng = Rng::new(7);
        for (row, &(j, _)) in score.iter().enumerate() {
            let mut v: Vec<f32> = (0..shown).map(|r| s.x[r * f + j]).collect();
            v.sort_by(f32::total_cmp);
            let (lo, hi) = (
                v.get(shown / 50).copied().unwrap_or(0.0),
                v.get(shown - 1 - shown / 50).copied().unwrap_or(1.0),
            );
            let dots: Vec<_> = (0..shown)
                .map(|r| {
                    let t = ((s.x[r * f + j] - lo) / (hi - lo).max(1e-12)) as f64;
                    let y = row as f64 + 0.5 + 0.35 * (rng.uniform() - 0.5);
                    Circle::new((a.values[r * f + j] as f64, y), 2, heat(t).filled())
                })
                .collect();
            chart.draw_series(dots)?;
        }
        chart.draw_series([PathElement::new(
            vec![(0.0, 0.0), (0.0, rows as f64)],
            BLACK.stroke_width(1),
        )])?;
        root.present()?;
        Ok(())
    })();
    done(path, r)
}

/// The top neurons x features heatmap of mean |neuron conductance|, one row per neuron
/// (labelled layer:unit), each row scaled to its largest cell.
pub fn neurons(path: &Path, names: &[String], c: &Conductance) -> Result<(), ExplainError> {
    font();
    let f = names.len();
    let r = (|| -> Res {
        let rows = c.top.len().max(1);
        let root = BitMapBackend::new(
            path,
            ((260 + 40 * f.min(40)) as u32, 160 + 36 * rows as u32),
        )
        .into_drawing_area();
        root.fill(&WHITE)?;
        let labels: Vec<String> = c
            .top
            .iter()
            .map(|n| {
                format!(
                    "layer {} unit {} ({:.3})",
                    n.layer + 1,
                    n.unit,
                    n.mean_abs_conductance
                )
            })
            .collect();
        let cols = f.min(40);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "conductance of the top hidden units to each input (rows scaled to their largest)",
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(110)
            .y_label_area_size(210)
            .build_cartesian_2d(0f64..cols as f64, 0f64..rows as f64)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .draw()?;
        let x0 = chart.plotting_area().get_pixel_range().0.start;
        for (i, l) in labels.iter().enumerate() {
            let (_, y) = chart.backend_coord(&(0.0, (rows - 1 - i) as f64 + 0.5));
            root.draw(&Text::new(l.clone(), (x0 - 205, y - 7), ("sans-serif", 13)))?;
        }
        let y0 = chart.plotting_area().get_pixel_range().1.end;
        for (j, n) in names.iter().take(cols).enumerate() {
            let (x, _) = chart.backend_coord(&(j as f64 + 0.5, 0.0));
            root.draw(&Text::new(
                row_label(n),
                (x - 7, y0 + 6),
                ("sans-serif", 13)
                    .into_font()
                    .transform(FontTransform::Rotate90),
            ))?;
        }
        for (i, n) in c.top.iter().enumerate() {
            let top = n.features.iter().copied().fold(1e-12, f64::max);
            let y = (rows - 1 - i) as f64;
            let cells: Vec<_> = n.features[..cols]
                .iter()
                .enumerate()
                .map(|(j, v)| {
                    Rectangle::new(
                        [(j as f64, y), (j as f64 + 1.0, y + 1.0)],
                        heat(v / top).filled(),
                    )
                })
                .collect();
            chart.draw_series(cells)?;
        }
        root.present()?;
        Ok(())
    })();
    done(path, r)
}

/// Partial dependence (all, signal, background) over thin ICE curves.
pub fn pdp(path: &Path, p: &Pdp) -> Result<(), ExplainError> {
    font();
    let g: Vec<f64> = p.grid.iter().map(|v| *v as f64).collect();
    let mut series: Vec<(String, Vec<(f64, f64)>)> = vec![(
        "partial dependence (all)".into(),
        g.iter().copied().zip(p.mean.iter().copied()).collect(),
    )];
    if let (Some(s), Some(b)) = (&p.signal, &p.background) {
        series.push((
            "signal".into(),
            g.iter().copied().zip(s.iter().copied()).collect(),
        ));
        series.push((
            "background".into(),
            g.iter().copied().zip(b.iter().copied()).collect(),
        ));
    }
    let ice: Vec<Vec<(f64, f64)>> = p
        .ice
        .iter()
        .map(|c| g.iter().copied().zip(c.iter().map(|v| *v as f64)).collect())
        .collect();
    let r = lines_over(
        path,
        &format!("partial dependence on {} (grey: ICE)", p.feature),
        &p.feature,
        "mean score",
        &series,
        &ice,
    );
    done(path, r)
}

/// 2-D partial dependence as a heatmap with the values written in.
pub fn pdp2(path: &Path, p: &Pdp2) -> Result<(), ExplainError> {
    font();
    let r = (|| -> Res {
        let (na, nb) = (p.grid_a.len().max(1), p.grid_b.len().max(1));
        let root = BitMapBackend::new(path, (900, 800)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "partial dependence on {} and {}",
                    p.features[0], p.features[1]
                ),
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..na as f64, 0f64..nb as f64)?;
        let (ga, gb) = (&p.grid_a, &p.grid_b);
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(p.features[0].as_str())
            .y_desc(p.features[1].as_str())
            .x_labels(0)
            .y_labels(0)
            .label_style(("sans-serif", 14))
            .draw()?;
        // Grid values at the cell centres (at most ten per axis).
        let (x0, y1) = (
            chart.plotting_area().get_pixel_range().0.start,
            chart.plotting_area().get_pixel_range().1.end,
        );
        for (i, v) in ga.iter().enumerate().step_by(na.div_ceil(10)) {
            let (x, _) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            root.draw(&Text::new(
                format!("{v:.3}"),
                (x - 20, y1 + 6),
                ("sans-serif", 13),
            ))?;
        }
        for (j, v) in gb.iter().enumerate().step_by(nb.div_ceil(10)) {
            let (_, y) = chart.backend_coord(&(0.0, j as f64 + 0.5));
            root.draw(&Text::new(
                format!("{v:.3}"),
                (x0 - 62, y - 7),
                ("sans-serif", 13),
            ))?;
        }
        let all = p.mean.iter().flatten().copied();
        let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
        for (i, row) in p.mean.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let t = (v - lo) / (hi - lo).max(1e-12);
                let (x, y) = (i as f64, j as f64);
                chart.draw_series([Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    heat(t).filled(),
                )])?;
                if na <= 15 && nb <= 15 {
                    chart.draw_series([Text::new(
                        format!("{v:.2}"),
                        (x + 0.2, y + 0.6),
                        ("sans-serif", 12),
                    )])?;
                }
            }
        }
        root.present()?;
        Ok(())
    })();
    done(path, r)
}

/// The surrogate tree's first levels as boxes (split or leaf value), its fidelity in the title.
pub fn surrogate(path: &Path, s: &Surrogate) -> Result<(), ExplainError> {
    font();
    let r = (|| -> Res {
        let depth = s.nodes.iter().map(|n| n.depth).max().unwrap_or(0).min(4);
        let root = BitMapBackend::new(path, (1600, 200 + 150 * depth as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        let title = format!(
            "surrogate tree (depth {}): R² {:.3} to the scores, AUC {:.4} vs model {:.4}",
            s.depth, s.r2, s.auc_surrogate, s.auc_model
        );
        root.draw(&Text::new(title, (20, 15), ("sans-serif", 24)))?;
        let (w, _) = root.dim_in_pixel();
        // Node i sits at its depth, in its slot among 2^depth.
        let pos = |n: &super::surrogate::DrawNode| -> (i32, i32) {
            let slots = 1u64 << n.depth;
            let x = (w as f64 * (n.slot as f64 + 0.5) / slots as f64) as i32;
            (x, 70 + 150 * n.depth as i32)
        };
        for n in s.nodes.iter().filter(|n| n.depth <= depth) {
            let (x, y) = pos(n);
            if let Some(p) = n.parent.and_then(|p| s.nodes.get(p)) {
                let (px, py) = pos(p);
                root.draw(&PathElement::new(vec![(px, py + 44), (x, y)], BLACK))?;
            }
            let (text, colour) = if n.depth == depth && !n.leaf {
                ("...".to_string(), RGBColor(230, 230, 230))
            } else if n.leaf {
                (format!("score {:.3}", n.value), RGBColor(255, 236, 200))
            } else {
                (n.label.clone(), RGBColor(210, 228, 250))
            };
            let half = (w as i32 / (1 << n.depth.min(5)) / 2 - 6).clamp(40, 150);
            root.draw(&Rectangle::new(
                [(x - half, y), (x + half, y + 44)],
                colour.filled(),
            ))?;
            root.draw(&Rectangle::new([(x - half, y), (x + half, y + 44)], BLACK))?;
            let lines = [text, format!("{:.1}% of events", 100.0 * n.fraction)];
            for (k, l) in lines.iter().enumerate() {
                root.draw(&Text::new(
                    l.clone(),
                    (x - half + 4, y + 4 + 20 * k as i32),
                    ("sans-serif", 15),
                ))?;
            }
        }
        root.present()?;
        Ok(())
    })();
    done(path, r)
}
