//! Validation plots of a training run, as PNG (plotters' bitmap backend, text with the DejaVu
//! font embedded in the binary: no system font or library needed).

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use crate::metrics::{auc, roc};
use crate::train::{Data, Outcome};

#[derive(Debug, thiserror::Error)]
#[error("plot {file}: {msg}")]
pub struct PlotError {
    file: String,
    msg: String,
}

pub(crate) fn font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

pub(crate) type Res = Result<(), Box<dyn std::error::Error>>;

pub(crate) fn wrap(path: &Path, r: Res) -> Result<(), PlotError> {
    r.map_err(|e| PlotError {
        file: path.display().to_string(),
        msg: e.to_string(),
    })
}

pub(crate) const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Lines y(x) with a legend.
pub(crate) fn lines(
    path: &Path,
    title: &str,
    xl: &str,
    yl: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Res {
    lines_over(path, title, xl, yl, series, &[])
}

/// Lines y(x) with a legend, over thin grey lines without one (ICE curves).
pub(crate) fn lines_over(
    path: &Path,
    title: &str,
    xl: &str,
    yl: &str,
    series: &[(String, Vec<(f64, f64)>)],
    thin: &[Vec<(f64, f64)>],
) -> Res {
    let root = BitMapBackend::new(path, (800, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let pts = series
        .iter()
        .flat_map(|s| s.1.iter())
        .chain(thin.iter().flatten());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in pts.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 26))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(x0..x1.max(x0 + 1e-9), (y0 - pad)..(y1 + pad))?;
    chart
        .configure_mesh()
        .x_desc(xl)
        .y_desc(yl)
        .label_style(("sans-serif", 16))
        .draw()?;
    for t in thin {
        chart.draw_series(LineSeries::new(t.iter().copied(), RGBColor(170, 170, 170)))?;
    }
    for (i, (name, s)) in series.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(s.iter().copied(), c.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Normalised histograms (same binning) of several samples.
fn hists(path: &Path, title: &str, xl: &str, samples: &[(String, Vec<f32>)], bins: usize) -> Res {
    let all = samples
        .iter()
        .flat_map(|s| s.1.iter())
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = (f32::MAX, f32::MIN);
    for v in all {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    if lo >= hi {
        (lo, hi) = (lo.min(0.0), lo.max(0.0) + 1.0);
    }
    let width = (hi - lo) / bins as f32;
    let series: Vec<(String, Vec<(f64, f64)>)> = samples
        .iter()
        .map(|(name, v)| {
            let mut h = vec![0f64; bins];
            for x in v.iter().filter(|x| x.is_finite()) {
                let b = (((x - lo) / width) as usize).min(bins - 1);
                h[b] += 1.0;
            }
            let n = v.len().max(1) as f64;
            // Step outline: both edges of every bin.
            let pts = h
                .iter()
                .enumerate()
                .flat_map(|(b, c)| {
                    let x = (lo + b as f32 * width) as f64;
                    [(x, c / n), (x + width as f64, c / n)]
                })
                .collect();
            (name.clone(), pts)
        })
        .collect();
    lines(path, title, xl, "fraction of events", &series)
}

/// Horizontal bars, the largest on top (at most 25), each named left of its bar and its
/// value written at its end.
pub(crate) fn bars(path: &Path, title: &str, xl: &str, items: &[(String, f64)]) -> Res {
    let mut order: Vec<&(String, f64)> = items.iter().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    order.truncate(25);
    order.reverse();
    let rows = order.len().max(1);
    let root = BitMapBackend::new(path, (900, 120 + 34 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let hi = order.iter().map(|i| i.1).fold(1e-12, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(200)
        .build_cartesian_2d(0.0..hi, 0f64..rows as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc(xl)
        .label_style(("sans-serif", 15))
        .draw()?;
    let x0 = chart.plotting_area().get_pixel_range().0.start;
    for (i, (name, v)) in order.iter().enumerate() {
        let (y0, y1) = (i as f64 + 0.15, i as f64 + 0.85);
        chart.draw_series([Rectangle::new([(0.0, y0), (*v, y1)], COLOURS[0].filled())])?;
        chart.draw_series([Text::new(
            format!("{v:.4}"),
            (*v + hi * 0.01, i as f64 + 0.62),
            ("sans-serif", 14),
        )])?;
        let (_, y) = chart.backend_coord(&(0.0, i as f64 + 0.5));
        let label: String = if name.chars().count() > 26 {
            format!("{}...", name.chars().take(24).collect::<String>())
        } else {
            name.clone()
        };
        root.draw(&Text::new(label, (x0 - 195, y - 8), ("sans-serif", 15)))?;
    }
    root.present()?;
    Ok(())
}

fn confusion(path: &Path, m: [[u64; 2]; 2]) -> Res {
    let root = BitMapBackend::new(path, (600, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("confusion matrix (score > 0.5)", ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..2f64, 0f64..2f64)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted")
        .y_desc("true")
        .x_labels(3)
        .y_labels(3)
        .x_label_formatter(&|v| ["background", "signal", ""][(*v as usize).min(2)].into())
        .y_label_formatter(&|v| ["background", "signal", ""][(*v as usize).min(2)].into())
        .label_style(("sans-serif", 16))
        .draw()?;
    let total = (m[0][0] + m[0][1] + m[1][0] + m[1][1]).max(1) as f64;
    for (t, row) in m.iter().enumerate() {
        for (p, &c) in row.iter().enumerate() {
            let frac = c as f64 / total;
            let shade = RGBColor(255 - (200.0 * frac) as u8, 255 - (120.0 * frac) as u8, 255);
            let (x, y) = (p as f64, t as f64);
            chart.draw_series([Rectangle::new([(x, y), (x + 1.0, y + 1.0)], shade.filled())])?;
            chart.draw_series([Text::new(
                format!("{c} ({:.1}%)", 100.0 * frac),
                (x + 0.3, y + 0.55),
                ("sans-serif", 20),
            )])?;
        }
    }
    root.present()?;
    Ok(())
}

fn correlation(path: &Path, title: &str, names: &[String], d: &Data, rows: &[usize]) -> Res {
    let f = names.len();
    let n = rows.len().max(1) as f64;
    let col = |j: usize| -> Vec<f64> {
        rows.iter()
            .map(|&r| d.x[r * d.width() + j] as f64)
            .collect()
    };
    let cols: Vec<Vec<f64>> = (0..f).map(col).collect();
    let mean: Vec<f64> = cols.iter().map(|c| c.iter().sum::<f64>() / n).collect();
    let sd: Vec<f64> = cols
        .iter()
        .zip(&mean)
        .map(|(c, m)| {
            (c.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n)
                .sqrt()
                .max(1e-12)
        })
        .collect();
    let root = BitMapBackend::new(path, (700, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..f as f64, 0f64..f as f64)?;
    let label = |v: &f64| names.get(*v as usize).cloned().unwrap_or_default();
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(f + 1)
        .y_labels(f + 1)
        .x_label_formatter(&label)
        .y_label_formatter(&label)
        .label_style(("sans-serif", 13))
        .draw()?;
    for i in 0..f {
        for j in 0..f {
            let c = cols[i]
                .iter()
                .zip(&cols[j])
                .map(|(a, b)| (a - mean[i]) * (b - mean[j]))
                .sum::<f64>()
                / n
                / sd[i]
                / sd[j];
            let shade = if c >= 0.0 {
                RGBColor(255, (255.0 * (1.0 - c)) as u8, (255.0 * (1.0 - c)) as u8)
            } else {
                RGBColor((255.0 * (1.0 + c)) as u8, (255.0 * (1.0 + c)) as u8, 255)
            };
            let (x, y) = (i as f64, j as f64);
            chart.draw_series([Rectangle::new([(x, y), (x + 1.0, y + 1.0)], shade.filled())])?;
            chart.draw_series([Text::new(
                format!("{c:.2}"),
                (x + 0.2, y + 0.6),
                ("sans-serif", 13),
            )])?;
        }
    }
    root.present()?;
    Ok(())
}

/// Writes every plot of a run into `dir`: loss/accuracy vs epoch per fold, ROC with AUC, score
/// distributions per class, confusion matrix, input distributions signal vs background,
/// correlation matrices per class, LR finder curve, and for PNNs the ROC per parameter value.
pub fn write_all(dir: &Path, d: &Data, out: &Outcome) -> Result<(), PlotError> {
    font();
    let p = |name: &str| dir.join(name);
    for (i, h) in out.histories.iter().enumerate() {
        let ep = |v: &[f64]| -> Vec<(f64, f64)> {
            v.iter().enumerate().map(|(e, y)| (e as f64, *y)).collect()
        };
        let f = p(&format!("loss_fold{i}.png"));
        wrap(
            &f,
            lines(
                &f,
                &format!("loss, fold {i}"),
                "epoch",
                "weighted BCE",
                &[
                    ("train".into(), ep(&h.train_loss)),
                    ("valid".into(), ep(&h.valid_loss)),
                ],
            ),
        )?;
        let f = p(&format!("accuracy_fold{i}.png"));
        wrap(
            &f,
            lines(
                &f,
                &format!("accuracy, fold {i}"),
                "epoch",
                "weighted accuracy",
                &[
                    ("train".into(), ep(&h.train_accuracy)),
                    ("valid".into(), ep(&h.valid_accuracy)),
                ],
            ),
        )?;
    }
    let (mut scores, mut labels, mut rows): (Vec<f32>, Vec<f32>, Vec<usize>) =
        (Vec::new(), Vec::new(), Vec::new());
    for (r, s) in &out.test {
        scores.extend(s);
        labels.extend(r.iter().map(|&k| d.y[k]));
        rows.extend(r);
    }
    let (fpr, tpr) = roc(&scores, &labels, 200);
    let f = p("roc.png");
    wrap(
        &f,
        lines(
            &f,
            &format!("ROC (test), AUC = {:.4}", auc(&scores, &labels)),
            "background efficiency",
            "signal efficiency",
            &[
                (
                    "model".into(),
                    fpr.iter().copied().zip(tpr.iter().copied()).collect(),
                ),
                ("random".into(), vec![(0.0, 0.0), (1.0, 1.0)]),
            ],
        ),
    )?;
    let by_class = |c: f32, v: &[f32]| -> Vec<f32> {
        v.iter()
            .zip(&labels)
            .filter(|(_, l)| **l == c)
            .map(|(s, _)| *s)
            .collect()
    };
    let f = p("scores.png");
    wrap(
        &f,
        hists(
            &f,
            "score distributions (test)",
            "score",
            &[
                ("signal".into(), by_class(1.0, &scores)),
                ("background".into(), by_class(0.0, &scores)),
            ],
            40,
        ),
    )?;
    let mut conf = [[0u64; 2]; 2];
    for (s, l) in scores.iter().zip(&labels) {
        conf[(*l == 1.0) as usize][(*s > 0.5) as usize] += 1;
    }
    let f = p("confusion.png");
    wrap(&f, confusion(&f, conf))?;
    let all: Vec<usize> = (0..d.rows()).collect();
    for (j, name) in d.names.iter().enumerate() {
        let col = |c: f32| -> Vec<f32> {
            all.iter()
                .filter(|&&r| d.y[r] == c)
                .map(|&r| d.x[r * d.width() + j])
                .collect()
        };
        let f = p(&format!("input_{j}_{}.png", sanitize(name)));
        wrap(
            &f,
            hists(
                &f,
                &format!("input {name}"),
                name,
                &[("signal".into(), col(1.0)), ("background".into(), col(0.0))],
                50,
            ),
        )?;
    }
    for (c, cname) in [(1.0, "signal"), (0.0, "background")] {
        let rows_c: Vec<usize> = all.iter().copied().filter(|&r| d.y[r] == c).collect();
        let f = p(&format!("correlation_{cname}.png"));
        wrap(
            &f,
            correlation(
                &f,
                &format!("input correlations, {cname}"),
                &d.names,
                d,
                &rows_c,
            ),
        )?;
    }
    if let Some((lrs, losses, sug)) = &out.lr_finder {
        let f = p("lr_finder.png");
        wrap(
            &f,
            lines(
                &f,
                &format!("LR finder (suggested {sug:.2e})"),
                "log10 learning rate",
                "smoothed loss",
                &[(
                    "loss".into(),
                    lrs.iter()
                        .map(|l| l.log10())
                        .zip(losses.iter().copied())
                        .collect(),
                )],
            ),
        )?;
    }
    if let Some(imp) = &out.importance {
        let f = p("importance.png");
        let items: Vec<(String, f64)> = imp
            .features
            .iter()
            .cloned()
            .zip(imp.mdi.iter().copied())
            .collect();
        wrap(
            &f,
            bars(
                &f,
                "tree importance: mean decrease in impurity",
                "MDI (normalised, all folds)",
                &items,
            ),
        )?;
    }
    let per = crate::train::per_parameter(d, out);
    if !per.is_empty() {
        let mut series = Vec::new();
        for (v, s, l) in per.iter().take(6) {
            let (fp, tp) = roc(s, l, 100);
            series.push((
                format!("{v}: AUC {:.3}", auc(s, l)),
                fp.into_iter().zip(tp).collect(),
            ));
        }
        let f = p("roc_per_parameter.png");
        wrap(
            &f,
            lines(
                &f,
                "ROC per parameter value (test)",
                "background efficiency",
                "signal efficiency",
                &series,
            ),
        )?;
    }
    Ok(())
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}
