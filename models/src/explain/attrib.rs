//! Gradient attributions per event and feature: saliency (the gradient), integrated gradients
//! (the gradient averaged along the straight path from a baseline, times the distance; the
//! midpoint rule over `steps`), expected gradients (baselines drawn from a background sample,
//! a random point on each path), and the conductance of hidden neurons (the integrated
//! gradient flowing through each unit of a dense network, and for the top units, their
//! attribution to each input feature).

use super::data::{binary, Sample};
use super::perm::parallel_with;
use super::scorer::Scorer;
use super::ExplainError;
use crate::rng::Rng;
use engine::native::Target;

/// Per-event attributions (`rows x width`) and the score of each event.
#[derive(Debug, Clone)]
pub struct Attributions {
    pub values: Vec<f32>,
    pub scores: Vec<f32>,
    /// Integrated and expected gradients: f(x) - f(baseline) per event (the expected baseline
    /// score for expected gradients), which the attributions of an event add up to.
    pub delta: Option<Vec<f32>>,
}

/// The integrated gradients' baseline.
#[derive(Debug, Clone)]
pub enum Baseline {
    Zeros,
    /// The mean of each feature (over the training sample when there is one).
    Mean(Vec<f32>),
    /// Expected gradients: baselines drawn from these rows (`n x width`).
    Sample(Vec<f32>),
}

impl Baseline {
    pub fn name(&self) -> &'static str {
        match self {
            Baseline::Zeros => "zeros",
            Baseline::Mean(_) => "mean",
            Baseline::Sample(_) => "background sample (expected gradients)",
        }
    }
}

/// Events per gradient batch (bounds memory: a few batches of `rows x width` floats per
/// thread; batches run in parallel).
pub const BATCH: usize = 4096;

/// Saliency: d score / d feature at each event.
pub fn saliency(scorer: &Scorer, s: &Sample, spread: &[f32]) -> Result<Attributions, ExplainError> {
    let f = scorer.width();
    let n = s.rows(f);
    let mut values = Vec::with_capacity(n * f);
    let mut scores = Vec::with_capacity(n);
    for r0 in (0..n).step_by(BATCH) {
        let m = BATCH.min(n - r0);
        let (sc, g) = scorer.gradient(&s.x[r0 * f..(r0 + m) * f], m, spread)?;
        scores.extend(sc);
        values.extend(g);
    }
    Ok(Attributions {
        values,
        scores,
        delta: None,
    })
}

/// Integrated gradients from `baseline` with `steps` midpoint steps, or expected gradients
/// (`steps` draws of a background event and a point on the path) for a sample baseline.
pub fn integrated(
    scorer: &Scorer,
    s: &Sample,
    baseline: &Baseline,
    steps: usize,
    seed: u64,
    spread: &[f32],
    mut tick: impl FnMut(),
) -> Result<Attributions, ExplainError> {
    let f = scorer.width();
    let n = s.rows(f);
    let steps = steps.max(1);
    let scores = scorer.score(&s.x, n)?;
    let starts: Vec<usize> = (0..n).step_by(BATCH).collect();
    let mut values = Vec::with_capacity(n * f);
    let mut base_scores = Vec::with_capacity(n);
    // Batches run in parallel on every core, `steps` ticks as each ends.
    let batch = |_: &mut (), &r0: &usize| {
        let m = BATCH.min(n - r0);
        let x = &s.x[r0 * f..(r0 + m) * f];
        let mut rng = Rng::new(seed ^ (r0 as u64).wrapping_mul(0x9E37_79B9));
        path_batch(scorer, x, m, baseline, steps, &mut rng, spread)
    };
    let ended = || {
        for _ in 0..steps {
            tick();
        }
    };
    for (v, b) in parallel_with(&starts, || (), batch, ended)? {
        values.extend(v);
        base_scores.extend(b);
    }
    let delta = scores
        .iter()
        .zip(&base_scores)
        .map(|(a, b)| a - b)
        .collect();
    Ok(Attributions {
        values,
        scores,
        delta: Some(delta),
    })
}

/// One batch of `m` events along their paths: the attributions and the baseline score (its
/// mean over the draws for expected gradients).
fn path_batch(
    scorer: &Scorer,
    x: &[f32],
    m: usize,
    baseline: &Baseline,
    steps: usize,
    rng: &mut Rng,
    spread: &[f32],
) -> Result<(Vec<f32>, Vec<f32>), ExplainError> {
    let f = scorer.width();
    let mut acc = vec![0f32; m * f];
    let mut point = vec![0f32; m * f];
    let mut base = vec![0f32; m * f];
    let mut base_scores = vec![0f32; m];
    if let Baseline::Mean(mu) = baseline {
        for r in 0..m {
            base[r * f..(r + 1) * f].copy_from_slice(mu);
        }
    }
    for k in 0..steps {
        let alpha = match baseline {
            Baseline::Sample(bg) => {
                let nb = bg.len() / f.max(1);
                for r in 0..m {
                    let b = rng.below(nb);
                    base[r * f..(r + 1) * f].copy_from_slice(&bg[b * f..(b + 1) * f]);
                }
                None
            }
            _ => Some((k as f32 + 0.5) / steps as f32),
        };
        for r in 0..m {
            let a = alpha.unwrap_or_else(|| rng.uniform() as f32);
            for ((p, xv), bv) in point[r * f..(r + 1) * f]
                .iter_mut()
                .zip(&x[r * f..(r + 1) * f])
                .zip(&base[r * f..(r + 1) * f])
            {
                *p = bv + a * (xv - bv);
            }
        }
        let (_, g) = scorer.gradient(&point, m, spread)?;
        match baseline {
            // Expected gradients: each draw's own (x - baseline) times its gradient.
            Baseline::Sample(_) => {
                for i in 0..m * f {
                    acc[i] += (x[i] - base[i]) * g[i];
                }
                let bs = scorer.score(&base, m)?;
                for (t, b) in base_scores.iter_mut().zip(bs) {
                    *t += b / steps as f32;
                }
            }
            _ => {
                for (a, g) in acc.iter_mut().zip(&g) {
                    *a += g;
                }
            }
        }
    }
    let values = match baseline {
        Baseline::Sample(_) => acc.iter().map(|a| a / steps as f32).collect(),
        _ => {
            base_scores = scorer.score(&base, m)?;
            (0..m * f)
                .map(|i| (x[i] - base[i]) * acc[i] / steps as f32)
                .collect()
        }
    };
    Ok((values, base_scores))
}

/// How well the attributions add up to f(x) - f(baseline): the summed gap over the summed
/// |f(x) - f(baseline)| of all events, the median per-event relative gap, and the fraction of
/// events within 1%.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Completeness {
    pub relative_gap: f64,
    pub median_event_gap: f64,
    pub within_1pct: f64,
}

pub fn completeness(a: &Attributions, width: usize) -> Option<Completeness> {
    let delta = a.delta.as_ref()?;
    let (mut gap, mut tot) = (0f64, 0f64);
    let mut per: Vec<f64> = Vec::with_capacity(delta.len());
    for (r, d) in delta.iter().enumerate() {
        let sum: f64 = a.values[r * width..(r + 1) * width]
            .iter()
            .map(|v| *v as f64)
            .sum();
        let g = (sum - *d as f64).abs();
        gap += g;
        tot += (*d as f64).abs();
        per.push(g / (*d as f64).abs().max(1e-6));
    }
    per.sort_by(f64::total_cmp);
    let n = per.len().max(1) as f64;
    Some(Completeness {
        relative_gap: gap / tot.max(1e-12),
        median_event_gap: per.get(per.len() / 2).copied().unwrap_or(0.0),
        within_1pct: per.iter().filter(|g| **g <= 0.01).count() as f64 / n,
    })
}

/// Per feature: mean |attribution| and mean attribution, over all events and per class.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Global {
    pub feature: String,
    pub mean_abs: f64,
    pub mean: f64,
    pub mean_abs_signal: Option<f64>,
    pub mean_signal: Option<f64>,
    pub mean_abs_background: Option<f64>,
    pub mean_background: Option<f64>,
}

/// Weighted means of the attributions, per feature (and class when labels are 0/1).
pub fn global(a: &Attributions, s: &Sample, names: &[String]) -> Vec<Global> {
    let f = names.len();
    let n = s.rows(f);
    let class = |want: f32| -> Option<Vec<(f64, f64)>> {
        let y = s.y.as_ref()?;
        if !binary(y) {
            return None;
        }
        Some(means(a, s, f, |r| y[r] == want))
    };
    let all = means(a, s, f, |_| true);
    let (sig, bkg) = (class(1.0), class(0.0));
    let _ = n;
    names
        .iter()
        .enumerate()
        .map(|(j, name)| Global {
            feature: name.clone(),
            mean_abs: all[j].0,
            mean: all[j].1,
            mean_abs_signal: sig.as_ref().map(|v| v[j].0),
            mean_signal: sig.as_ref().map(|v| v[j].1),
            mean_abs_background: bkg.as_ref().map(|v| v[j].0),
            mean_background: bkg.as_ref().map(|v| v[j].1),
        })
        .collect()
}

/// Per feature: weighted mean |value| and mean value over the rows `keep` selects.
fn means(a: &Attributions, s: &Sample, f: usize, keep: impl Fn(usize) -> bool) -> Vec<(f64, f64)> {
    let mut out = vec![(0f64, 0f64); f];
    let mut tot = 0f64;
    for r in 0..s.rows(f) {
        if !keep(r) {
            continue;
        }
        let w = s.w.get(r).copied().unwrap_or(1.0) as f64;
        tot += w;
        for (o, v) in out.iter_mut().zip(&a.values[r * f..(r + 1) * f]) {
            o.0 += w * (*v as f64).abs();
            o.1 += w * *v as f64;
        }
    }
    for o in &mut out {
        o.0 /= tot.max(1e-300);
        o.1 /= tot.max(1e-300);
    }
    out
}

/// Conductance of the hidden units of a dense network.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Conductance {
    /// Per hidden layer (input side first): mean |conductance| and mean conductance per unit.
    pub layers: Vec<LayerConductance>,
    /// The units with the largest mean |conductance|, each with its attribution to each input
    /// feature (mean |.| over events), `features` in column order.
    pub top: Vec<NeuronFeatures>,
    /// Per layer: the summed conductance's gap to f(x) - f(baseline), relative (as
    /// [`Completeness::relative_gap`]).
    pub layer_gaps: Vec<f64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerConductance {
    pub mean_abs: Vec<f64>,
    pub mean: Vec<f64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct NeuronFeatures {
    pub layer: usize,
    pub unit: usize,
    pub mean_abs_conductance: f64,
    pub features: Vec<f64>,
}

/// Layer conductance along the path from `base` (one row) to each event, trapezoid rule over
/// `steps` intervals: sum_k (dF/dh(k-1) + dF/dh(k)) / 2 * (h(k) - h(k-1)); for the `top` units,
/// neuron conductance per input feature: (x - base) * mean_k dF/dh * dh/dx.
pub fn conductance(
    scorer: &Scorer,
    s: &Sample,
    base: &[f32],
    steps: usize,
    top: usize,
    mut tick: impl FnMut(),
) -> Result<Conductance, ExplainError> {
    let bp = scorer.backprop().ok_or_else(|| {
        ExplainError::Config(
            "conductance needs a dense network that the native evaluator runs (this model runs on another engine)"
                .into(),
        )
    })?;
    let f = scorer.width();
    let n = s.rows(f);
    let widths = bp.hidden_widths();
    if widths.is_empty() {
        return Err(ExplainError::Config(
            "conductance needs a network with hidden layers".into(),
        ));
    }
    let steps = steps.max(1);
    // The events at fraction `a` of their way from the baseline.
    let path = |a: f32| -> Vec<f32> {
        let mut p = vec![0f32; n * f];
        for r in 0..n {
            for j in 0..f {
                p[r * f + j] = base[j] + a * (s.x[r * f + j] - base[j]);
            }
        }
        p
    };
    let run = |p: &[f32], t: Target, hidden: bool| {
        let parts = scorer.parts(p, n);
        let refs: Vec<&[f32]> = parts.iter().map(|p| p.as_ref()).collect();
        bp.run(&refs, n, t, hidden).map_err(ExplainError::Engine)
    };
    // Per event and unit, layer by layer.
    let mut cond: Vec<Vec<f32>> = widths.iter().map(|w| vec![0f32; n * w]).collect();
    let at = |k: usize| path(k as f32 / steps as f32);
    let mut prev = run(&at(0), scorer.target(), true)?;
    let f0 = prev.value.clone();
    for k in 1..=steps {
        let cur = run(&at(k), scorer.target(), true)?;
        for (l, c) in cond.iter_mut().enumerate() {
            let ((h0, g0), (h1, g1)) = (&prev.hidden[l], &cur.hidden[l]);
            for i in 0..c.len() {
                c[i] += 0.5 * (g0[i] + g1[i]) * (h1[i] - h0[i]);
            }
        }
        prev = cur;
        tick();
    }
    let f1 = prev.value;
    let mut layers = Vec::new();
    let mut layer_gaps = Vec::new();
    let mut ranked: Vec<(f64, usize, usize)> = Vec::new();
    for (l, c) in cond.iter().enumerate() {
        let w = widths[l];
        let mut lc = LayerConductance {
            mean_abs: vec![0.0; w],
            mean: vec![0.0; w],
        };
        let (mut gap, mut tot) = (0f64, 0f64);
        for r in 0..n {
            let row = &c[r * w..(r + 1) * w];
            for (u, v) in row.iter().enumerate() {
                lc.mean_abs[u] += (*v as f64).abs() / n as f64;
                lc.mean[u] += *v as f64 / n as f64;
            }
            let d = (f1[r] - f0[r]) as f64;
            gap += (row.iter().map(|v| *v as f64).sum::<f64>() - d).abs();
            tot += d.abs();
        }
        layer_gaps.push(gap / tot.max(1e-12));
        for (u, m) in lc.mean_abs.iter().enumerate() {
            ranked.push((*m, l, u));
        }
        layers.push(lc);
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranked.truncate(top);
    // Neuron conductance to the inputs: midpoint rule on the same path. dF/dh at a point
    // serves every top unit; each unit needs its own dh/dx.
    let mut acc: Vec<Vec<f32>> = ranked.iter().map(|_| vec![0f32; n * f]).collect();
    for k in 0..steps {
        let p = path((k as f32 + 0.5) / steps as f32);
        let out = run(&p, scorer.target(), true)?;
        for (&(_, l, u), acc) in ranked.iter().zip(acc.iter_mut()) {
            let unit = run(&p, Target::Hidden { layer: l, unit: u }, false)?;
            let dh = scorer.join(unit.inputs, n);
            let w = widths[l];
            for r in 0..n {
                let dfdh = out.hidden[l].1[r * w + u];
                for j in 0..f {
                    acc[r * f + j] += dfdh * dh[r * f + j];
                }
            }
        }
        tick();
    }
    let tops = ranked
        .iter()
        .zip(&acc)
        .map(|(&(m, l, u), acc)| {
            let mut feats = vec![0f64; f];
            for r in 0..n {
                for j in 0..f {
                    let v = (s.x[r * f + j] - base[j]) * acc[r * f + j] / steps as f32;
                    feats[j] += (v as f64).abs() / n as f64;
                }
            }
            NeuronFeatures {
                layer: l,
                unit: u,
                mean_abs_conductance: m,
                features: feats,
            }
        })
        .collect();
    Ok(Conductance {
        layers,
        top: tops,
        layer_gaps,
    })
}
