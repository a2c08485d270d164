//! The scan's summary plot: for each scanned parameter, the train and valid AUC of every point
//! against the parameter's value; for a grid, lines through the best point (by valid AUC) at
//! each value. A valid AUC that falls while the train AUC keeps rising is overfitting; both low
//! is underfitting. The best point overall is ringed.

use std::path::Path;

use plotters::prelude::*;

use super::{show, Domain, Param, Point};
use crate::plots::{font, wrap, PlotError, Res, COLOURS};

/// One trained point: its values and its mean train and valid AUC over folds.
pub struct Trained<'a> {
    pub point: &'a Point,
    pub train_auc: f64,
    pub valid_auc: f64,
}

/// Writes the summary PNG; `best` indexes `points`.
pub fn summary_plot(
    path: &Path,
    params: &[Param],
    points: &[Trained],
    best: Option<usize>,
) -> Result<(), PlotError> {
    font();
    wrap(path, draw(path, params, points, best))
}

/// Listed values that are not all numbers are placed by their index.
fn categorical(p: &Param) -> bool {
    matches!(&p.domain, Domain::List(l) if !l.iter().all(|x| x.as_f64().is_some()))
}

/// A log range, or listed positive numbers spanning more than a factor 20 (0.001, 0.01, 0.1).
fn log_axis(p: &Param) -> bool {
    match &p.domain {
        Domain::Log { .. } => true,
        Domain::List(l) if !categorical(p) => {
            let v: Vec<f64> = l.iter().filter_map(|x| x.as_f64()).collect();
            let (lo, hi) = v
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
            lo > 0.0 && hi / lo >= 20.0
        }
        _ => false,
    }
}

/// The x coordinate of a value: the value itself when numeric (its log10 on a log axis), else
/// its index among the listed values.
fn x_of(p: &Param, v: &yaml_serde::Value) -> f64 {
    match &p.domain {
        Domain::List(l) if categorical(p) => {
            l.iter().position(|x| x == v).map_or(f64::NAN, |i| i as f64)
        }
        _ if log_axis(p) => v.as_f64().filter(|x| *x > 0.0).map_or(f64::NAN, f64::log10),
        _ => v.as_f64().unwrap_or(f64::NAN),
    }
}

/// A linear axis label: at most 4 decimals, without trailing zeros (0.15, not
/// 0.15000000000000002).
fn tick(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

fn draw(path: &Path, params: &[Param], points: &[Trained], best: Option<usize>) -> Res {
    let cols = params.len().clamp(1, 3);
    let rows = params.len().div_ceil(cols).max(1);
    let root = BitMapBackend::new(path, (520 * cols as u32, 420 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let aucs = points
        .iter()
        .flat_map(|t| [t.train_auc, t.valid_auc])
        .filter(|a| a.is_finite());
    let (y0, y1) = aucs.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let (y0, y1) = if y0 > y1 { (0.5, 1.0) } else { (y0, y1) };
    let pad = ((y1 - y0) * 0.1).max(2e-3);
    for (j, (p, area)) in params
        .iter()
        .zip(root.split_evenly((rows, cols)))
        .enumerate()
    {
        let xs: Vec<f64> = points.iter().map(|t| x_of(p, &t.point[j])).collect();
        let (x0, x1) = xs
            .iter()
            .filter(|x| x.is_finite())
            .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
        let (x0, x1) = if x0 > x1 { (0.0, 1.0) } else { (x0, x1) };
        let xpad = if x1 > x0 {
            (x1 - x0) * 0.08
        } else {
            0.5 * x0.abs().max(1.0)
        };
        let labels: Option<Vec<String>> = match &p.domain {
            Domain::List(l) if categorical(p) => Some(l.iter().map(show).collect()),
            _ => None,
        };
        let xpad = if labels.is_some() {
            xpad.max(0.5)
        } else {
            xpad
        };
        let log = log_axis(p);
        let grid = matches!(p.domain, Domain::List(_));
        let fmt = |x: &f64| match &labels {
            Some(l) => {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < l.len() {
                    l[i as usize].clone()
                } else {
                    String::new()
                }
            }
            None if log => format!("{:.0e}", 10f64.powf(*x)),
            None => tick(*x),
        };
        let mut chart = ChartBuilder::on(&area)
            .caption(&p.key, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((x0 - xpad)..(x1 + xpad), (y0 - pad)..(y1 + pad))?;
        chart
            .configure_mesh()
            .x_desc(if log { "value (log scale)" } else { "value" })
            .y_desc("AUC")
            .x_label_formatter(&fmt)
            .label_style(("sans-serif", 14))
            .draw()?;
        // The best point at each value of a grid parameter (the other parameters at their
        // best there): the curves an over- or underfitting shows in.
        let mut tops: Vec<(f64, usize)> = Vec::new();
        if grid {
            for (i, (x, t)) in xs.iter().zip(points).enumerate() {
                if !x.is_finite() || !t.valid_auc.is_finite() {
                    continue;
                }
                match tops.iter_mut().find(|m| m.0 == *x) {
                    Some(m) if points[m.1].valid_auc < t.valid_auc => m.1 = i,
                    Some(_) => {}
                    None => tops.push((*x, i)),
                }
            }
            tops.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        for (k, (name, pick)) in [
            ("train", (|t: &Trained| t.train_auc) as fn(&Trained) -> f64),
            ("valid", |t: &Trained| t.valid_auc),
        ]
        .into_iter()
        .enumerate()
        {
            let c = COLOURS[k];
            let label = if grid {
                format!("{name} (best point per value)")
            } else {
                name.to_owned()
            };
            chart
                .draw_series(LineSeries::new(
                    tops.iter().map(|&(x, i)| (x, pick(&points[i]))),
                    c.stroke_width(2),
                ))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            chart.draw_series(
                xs.iter()
                    .zip(points)
                    .filter(|(x, t)| x.is_finite() && pick(t).is_finite())
                    .map(|(x, t)| Circle::new((*x, pick(t)), 4, c.mix(0.6).filled())),
            )?;
        }
        if let Some(b) = best {
            let t = &points[b];
            if xs[b].is_finite() && t.valid_auc.is_finite() {
                chart
                    .draw_series([Circle::new((xs[b], t.valid_auc), 9, BLACK.stroke_width(2))])?
                    .label("best valid")
                    .legend(|(x, y)| Circle::new((x + 10, y), 6, BLACK.stroke_width(2)));
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ticks_are_short() {
        assert_eq!(super::tick(0.15000000000000002), "0.15");
        assert_eq!(super::tick(8.0), "8");
        assert_eq!(super::tick(-0.00001), "0");
        assert_eq!(super::tick(2.5), "2.5");
    }
}
