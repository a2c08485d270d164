//! The training data: reading the tables into f32 rows, the train/valid/test splits (k-fold by
//! event number), standardisation, class balance and the PNN parameter values.

use std::path::{Path, PathBuf};

use crate::config::{FeaturesConfig, ModelKind, TrainConfig};
use crate::h5::{read_sources, read_table_chunks, Table};
use crate::rng::Rng;

use super::{data_err, Outcome, TrainError};

/// The training data, row-major, all sources together.
pub struct Data {
    /// Input columns in model order (the PNN parameter last).
    pub names: Vec<String>,
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub w: Vec<f32>,
    pub event: Option<Vec<i64>>,
    /// Column of the PNN parameter in `x`.
    pub param: Option<usize>,
    /// Per input column (not the parameter): the branch or expression `hepml convert` made it
    /// from (the column name for tables written by anything else).
    pub sources: Vec<String>,
}

impl Data {
    pub fn rows(&self) -> usize {
        self.y.len()
    }
    pub fn width(&self) -> usize {
        self.names.len()
    }
    fn row(&self, r: usize) -> &[f32] {
        let f = self.width();
        &self.x[r * f..(r + 1) * f]
    }
}

/// Reads the configured sources: `data.signal` (label 1), `data.background` (label 0) and
/// `data.files` (label from the label column).
pub fn load(cfg: &TrainConfig, seed: u64) -> Result<Data, TrainError> {
    let feats = &cfg.features;
    let mut names = feats.inputs.clone();
    let pnn = cfg.model.kind() == ModelKind::Pnn;
    if pnn {
        let p = feats
            .parameter
            .clone()
            .ok_or_else(|| data_err("model type pnn needs features.parameter"))?;
        names.push(p);
    }
    let event_col = cfg.preparation.kfold.as_ref().map(|k| k.branch.clone());
    let mut sources: Vec<(PathBuf, Option<f32>)> = Vec::new();
    sources.extend(cfg.data.signal.iter().map(|p| (p.clone(), Some(1.0))));
    sources.extend(cfg.data.background.iter().map(|p| (p.clone(), Some(0.0))));
    sources.extend(cfg.data.files.iter().map(|p| (p.clone(), None)));
    let f = names.len();
    let mut d = Data {
        names: names.clone(),
        x: Vec::new(),
        y: Vec::new(),
        w: Vec::new(),
        event: event_col.as_ref().map(|_| Vec::new()),
        param: pnn.then_some(f - 1),
        sources: feats.inputs.clone(),
    };
    // Which file recorded each input's source (to name both when two files disagree).
    let mut recorded_in: Vec<Option<&Path>> = vec![None; feats.inputs.len()];
    // Chunk by chunk: only the f32 rows are kept, never a whole f64 copy of the table.
    for (path, label) in &sources {
        let recorded = read_sources(path, &cfg.data.key)?;
        for (i, name) in feats.inputs.iter().enumerate() {
            let Some(src) = recorded.get(name) else {
                continue;
            };
            if let Some(at) = recorded_in[i] {
                if d.sources[i] != *src {
                    return Err(data_err(format!(
                        "column `{name}` is `{}` in {} but `{src}` in {}",
                        d.sources[i],
                        at.display(),
                        path.display()
                    )));
                }
            }
            d.sources[i] = src.clone();
            recorded_in[i] = Some(path.as_path());
        }
        read_table_chunks(path, &cfg.data.key, |r0, t: &Table| {
            load_chunk(
                &mut d,
                (cfg.model.kind().is_trees(), cfg.model.is_classifier()),
                feats,
                &names,
                event_col.as_deref(),
                path,
                *label,
                r0,
                t,
            )
        })?;
    }
    let n_sig = d.y.iter().filter(|&&y| y == 1.0).count();
    let n_bkg = d.y.iter().filter(|&&y| y == 0.0).count();
    if cfg.model.is_classifier() && (n_sig == 0 || n_bkg == 0) {
        return Err(data_err(format!(
            "a class has no events ({n_sig} signal, {n_bkg} background)"
        )));
    }
    if let Some(p) = d.param {
        // Background events get parameter values drawn from the signal's distribution.
        let sig: Vec<f32> = (0..d.rows())
            .filter(|&r| d.y[r] == 1.0)
            .map(|r| d.x[r * f + p])
            .collect();
        let mut rng = Rng::new(seed ^ 0x5EED);
        for r in 0..d.rows() {
            if d.y[r] == 0.0 {
                d.x[r * f + p] = sig[rng.below(sig.len())];
            }
        }
    }
    Ok(d)
}

/// Whether `v` is finite as the float32 that training computes with: 1e300 is a finite
/// double but an infinite float, and turned a network's scores into NaN.
fn finite32(v: f64) -> bool {
    (v as f32).is_finite()
}

/// Appends one chunk of a source (rows `r0..` of `path`) to `d`: its features as f32 rows, the
/// label (`label`, or the label column), the weight and the event number.
#[allow(clippy::too_many_arguments)]
fn load_chunk(
    d: &mut Data,
    (cfg_trees, classifier): (bool, bool),
    feats: &FeaturesConfig,
    names: &[String],
    event_col: Option<&str>,
    path: &Path,
    label: Option<f32>,
    r0: usize,
    t: &Table,
) -> Result<(), TrainError> {
    let col = |name: &str| -> Result<&[f64], TrainError> {
        t.column(name).ok_or_else(|| match t.skipped(name) {
            Some(holds) => data_err(format!(
                "{}: column `{name}` holds {holds}, which hepml does not read: a column has \
                 one number or bool per row",
                path.display()
            )),
            None => data_err(format!(
                "{}: no column `{name}` (columns: {})",
                path.display(),
                t.names.join(", ")
            )),
        })
    };
    let cols: Vec<&[f64]> = names.iter().map(|n| col(n)).collect::<Result<_, _>>()?;
    let n = t.rows();
    // Trees send NaN (missing) to a learned side; networks cannot take it.
    let nan_ok = cfg_trees;
    for (c, name) in cols.iter().zip(names) {
        if let Some(r) = c
            .iter()
            .position(|&v| !(finite32(v) || nan_ok && v.is_nan()))
        {
            let what = if c[r].is_finite() {
                format!("the value {:e}, beyond float32's range", c[r])
            } else {
                "a NaN/inf value".into()
            };
            return Err(data_err(format!(
                "{}: column `{name}` has {what} (row {}); select such events away in convert",
                path.display(),
                r0 + r
            )));
        }
    }
    d.x.reserve(n * cols.len());
    for r in 0..n {
        d.x.extend(cols.iter().map(|c| c[r] as f32));
    }
    match label {
        Some(l) => d.y.extend(std::iter::repeat_n(l, n)),
        None => {
            let l = col(&feats.label)?;
            let bad = |v: &&f64| {
                if classifier {
                    **v != 0.0 && **v != 1.0
                } else {
                    !finite32(**v)
                }
            };
            if let Some(v) = l.iter().find(bad) {
                return Err(data_err(format!(
                    "{}: label column `{}` has the value {v}; labels are 0 or 1 (finite for a regression)",
                    path.display(),
                    feats.label
                )));
            }
            d.y.extend(l.iter().map(|&v| v as f32));
        }
    }
    match &feats.weight {
        Some(wc) => {
            let w = col(wc)?;
            if let Some(v) = w.iter().find(|&&v| !finite32(v)) {
                return Err(data_err(format!(
                    "{}: weight column `{wc}` has the value {v}",
                    path.display()
                )));
            }
            d.w.extend(w.iter().map(|&v| v as f32));
        }
        None => d.w.extend(std::iter::repeat_n(1.0, n)),
    }
    if let (Some(ev), Some(name)) = (d.event.as_mut(), event_col) {
        ev.extend(col(name)?.iter().map(|&v| v as i64));
    }
    Ok(())
}

/// Row indices of one fold: train, valid, test.
pub struct Split {
    pub train: Vec<usize>,
    pub valid: Vec<usize>,
    pub test: Vec<usize>,
}

pub fn splits(cfg: &TrainConfig, d: &Data, seed: u64) -> Vec<Split> {
    let p = &cfg.preparation;
    let mut rng = Rng::new(seed);
    match (&p.kfold, &d.event) {
        (Some(k), Some(ev)) => (0..k.k as i64)
            .map(|i| {
                let test: Vec<usize> = (0..d.rows())
                    .filter(|&r| ev[r].rem_euclid(k.k as i64) == i)
                    .collect();
                let mut rest: Vec<usize> = (0..d.rows())
                    .filter(|&r| ev[r].rem_euclid(k.k as i64) != i)
                    .collect();
                rng.shuffle(&mut rest);
                let frac = p.valid_fraction / (p.train_fraction + p.valid_fraction);
                let nv = (rest.len() as f64 * frac).round() as usize;
                let valid = rest.split_off(rest.len() - nv);
                Split {
                    train: rest,
                    valid,
                    test,
                }
            })
            .collect(),
        _ => {
            let mut all: Vec<usize> = (0..d.rows()).collect();
            rng.shuffle(&mut all);
            let tot = p.train_fraction + p.valid_fraction + p.test_fraction;
            let nt = (all.len() as f64 * p.train_fraction / tot).round() as usize;
            let nv = (all.len() as f64 * p.valid_fraction / tot).round() as usize;
            let test = all.split_off((nt + nv).min(all.len()));
            let valid = all.split_off(nt.min(all.len()));
            vec![Split {
                train: all,
                valid,
                test,
            }]
        }
    }
}

pub(super) fn standardise(d: &Data, rows: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let f = d.width();
    let n = rows.len().max(1) as f64;
    let mut mean = vec![0f64; f];
    for &r in rows {
        for (m, v) in mean.iter_mut().zip(d.row(r)) {
            *m += *v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0f64; f];
    for &r in rows {
        for ((s, v), m) in var.iter_mut().zip(d.row(r)).zip(&mean) {
            *s += (*v as f64 - m).powi(2);
        }
    }
    let std: Vec<f32> = var
        .iter()
        .map(|s| {
            let s = (s / n).sqrt();
            if s > 1e-12 {
                s as f32
            } else {
                1.0
            }
        })
        .collect();
    (mean.iter().map(|m| *m as f32).collect(), std)
}

/// Standardised rows, gathered into a new batch buffer (moved into the batch's tensor); with
/// `param_at`, the PNN parameter column set to that value.
pub(super) fn gather(
    d: &Data,
    rows: &[usize],
    mean: &[f32],
    std: &[f32],
    param_at: Option<f32>,
) -> Vec<f32> {
    let f = d.width();
    let mut out = Vec::with_capacity(rows.len() * f);
    for &r in rows {
        out.extend(
            d.row(r)
                .iter()
                .zip(mean.iter().zip(std))
                .map(|(v, (m, s))| (v - m) / s),
        );
        if let (Some(p), Some(v)) = (d.param, param_at) {
            let at = out.len() - f + p;
            out[at] = (v - mean[p]) / std[p];
        }
    }
    out
}

/// Per-class factors making both classes weigh the same in the loss (training split).
pub(super) fn class_factors(d: &Data, rows: &[usize], balance: bool) -> [f32; 2] {
    if !balance {
        return [1.0, 1.0];
    }
    let mut tot = [0f64; 2];
    for &r in rows {
        tot[d.y[r] as usize] += d.w[r] as f64;
    }
    let all = tot[0] + tot[1];
    [
        (all / 2.0 / tot[0].max(1e-12)) as f32,
        (all / 2.0 / tot[1].max(1e-12)) as f32,
    ]
}

/// The parameter values a PNN is evaluated at: `evaluation.parameter_values`, else the
/// signal's distinct values (at most 50); none for a DNN.
pub fn parameter_values(cfg: &TrainConfig, d: &Data) -> Vec<f32> {
    let Some(p) = d.param else {
        return Vec::new();
    };
    let mut values: Vec<f32> = if cfg.evaluation.parameter_values.is_empty() {
        (0..d.rows())
            .filter(|&r| d.y[r] == 1.0)
            .map(|r| d.row(r)[p])
            .collect()
    } else {
        cfg.evaluation
            .parameter_values
            .iter()
            .map(|&v| v as f32)
            .collect()
    };
    values.sort_by(f32::total_cmp);
    values.dedup();
    values.truncate(50);
    values
}

/// Per PNN parameter value v: (v, scores, labels) of the test signal generated at v against
/// every test background event evaluated at v, as a search at v would see them.
pub fn per_parameter(d: &Data, out: &Outcome) -> Vec<(f32, Vec<f32>, Vec<f32>)> {
    let Some(p) = d.param else {
        return Vec::new();
    };
    out.background_at
        .iter()
        .map(|(v, bkg)| {
            let mut s: Vec<f32> = Vec::new();
            for (rows, sc) in &out.test {
                s.extend(
                    rows.iter()
                        .zip(sc)
                        .filter(|(&r, _)| d.y[r] == 1.0 && d.row(r)[p] == *v)
                        .map(|(_, x)| *x),
                );
            }
            let mut l = vec![1.0; s.len()];
            s.extend(bkg);
            l.resize(s.len(), 0.0);
            (*v, s, l)
        })
        .collect()
}
