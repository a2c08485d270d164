//! Partial dependence: the mean score when one feature (or a pair) is set to each value of a
//! grid for every event, weighted, over all events and per class; and ICE curves (the same for
//! single events). For a parameterised network the parameter's own values make the grid:
//! score against mass for signal and background.

use super::data::{binary, Sample};
use super::scorer::Scorer;
use super::ExplainError;

/// Grid points: the distinct values when there are at most `max` of them (a PNN's masses),
/// else `max` quantiles from 2.5% to 97.5%.
pub fn grid(s: &Sample, width: usize, col: usize, max: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..s.rows(width))
        .map(|r| s.x[r * width + col])
        .filter(|v| v.is_finite())
        .collect();
    v.sort_by(f32::total_cmp);
    let mut distinct = v.clone();
    distinct.dedup();
    if distinct.len() <= max {
        return distinct;
    }
    let mut g: Vec<f32> = (0..max)
        .map(|i| {
            let q = 0.025 + 0.95 * i as f64 / (max - 1).max(1) as f64;
            v[((v.len() - 1) as f64 * q).round() as usize]
        })
        .collect();
    g.dedup();
    g
}

/// One feature's partial dependence.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pdp {
    pub feature: String,
    pub grid: Vec<f32>,
    pub mean: Vec<f64>,
    pub signal: Option<Vec<f64>>,
    pub background: Option<Vec<f64>>,
    /// Score of the first events at each grid point.
    pub ice: Vec<Vec<f32>>,
}

/// Two features' partial dependence: `mean[i][j]` at (grid_a[i], grid_b[j]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pdp2 {
    pub features: [String; 2],
    pub grid_a: Vec<f32>,
    pub grid_b: Vec<f32>,
    pub mean: Vec<Vec<f64>>,
}

/// The scores with columns `cols` set to `values`.
fn scores_at(
    scorer: &Scorer,
    s: &Sample,
    width: usize,
    cols: &[usize],
    values: &[f32],
) -> Result<Vec<f32>, ExplainError> {
    let mut x = s.x.clone();
    for r in 0..s.rows(width) {
        for (c, v) in cols.iter().zip(values) {
            x[r * width + c] = *v;
        }
    }
    scorer.score(&x, s.rows(width))
}

/// Weighted mean of the scores over the rows `keep` selects.
fn wmean(scores: &[f32], w: &[f32], keep: impl Fn(usize) -> bool) -> f64 {
    let (mut s, mut t) = (0f64, 0f64);
    for (r, v) in scores.iter().enumerate() {
        if keep(r) {
            s += w[r] as f64 * *v as f64;
            t += w[r] as f64;
        }
    }
    s / t
}

pub fn one(
    scorer: &Scorer,
    s: &Sample,
    names: &[String],
    col: usize,
    grid_points: &[f32],
    ice: usize,
) -> Result<Pdp, ExplainError> {
    let f = names.len();
    let binary = s.y.as_ref().filter(|y| binary(y));
    let mut out = Pdp {
        feature: names[col].clone(),
        grid: grid_points.to_vec(),
        mean: Vec::new(),
        signal: binary.map(|_| Vec::new()),
        background: binary.map(|_| Vec::new()),
        ice: vec![Vec::new(); ice.min(s.rows(f))],
    };
    for v in grid_points {
        let sc = scores_at(scorer, s, f, &[col], &[*v])?;
        out.mean.push(wmean(&sc, &s.w, |_| true));
        if let Some(y) = binary {
            if let Some(sig) = out.signal.as_mut() {
                sig.push(wmean(&sc, &s.w, |r| y[r] == 1.0));
            }
            if let Some(bkg) = out.background.as_mut() {
                bkg.push(wmean(&sc, &s.w, |r| y[r] == 0.0));
            }
        }
        for (e, c) in out.ice.iter_mut().enumerate() {
            c.push(sc[e]);
        }
    }
    Ok(out)
}

pub fn two(
    scorer: &Scorer,
    s: &Sample,
    names: &[String],
    (a, b): (usize, usize),
    (ga, gb): (&[f32], &[f32]),
) -> Result<Pdp2, ExplainError> {
    let f = names.len();
    let mut mean = Vec::new();
    for va in ga {
        let mut row = Vec::new();
        for vb in gb {
            let sc = scores_at(scorer, s, f, &[a, b], &[*va, *vb])?;
            row.push(wmean(&sc, &s.w, |_| true));
        }
        mean.push(row);
    }
    Ok(Pdp2 {
        features: [names[a].clone(), names[b].clone()],
        grid_a: ga.to_vec(),
        grid_b: gb.to_vec(),
        mean,
    })
}
