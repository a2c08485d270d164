//! Evaluating rows: leaf weights summed per class in tree order, the post-transforms and
//! ONNX Runtime's rules for binary classifiers.

use super::layout::goes_yes;
use super::{Kind, Mode, Post, TreeEngine, LANES};
use std::path::PathBuf;

/// ONNX Runtime's logistic (same rounding): the trees' LOGISTIC post-transform, and what the
/// native evaluator computes for a `Sigmoid` after a regressor.
#[inline]
pub fn logistic(v: f32) -> f32 {
    let a = 1.0 / (1.0 + (-v.abs()).exp());
    if v < 0.0 {
        1.0 - a
    } else {
        a
    }
}

/// ONNX Runtime's inverse error function (Winitzki's approximation, a = 0.147), with its
/// constants as written there (3.14159, not π) so the results agree to the bit.
#[allow(clippy::approx_constant)]
fn erf_inv(x: f32) -> f32 {
    let sgn = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (3.14159f32 * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147f32 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sgn * v3.sqrt()
}

#[inline]
fn probit(v: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * v - 1.0)
}

fn softmax(v: &mut [f32]) {
    let m = v.iter().copied().fold(-f32::MAX, f32::max);
    let mut sum = 0.0f32;
    for x in v.iter_mut() {
        *x = (*x - m).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

/// Softmax skipping (near-)zero scores, as ONNX Runtime's SOFTMAX_ZERO.
fn softmax_zero(v: &mut [f32]) {
    let m = v.iter().copied().fold(-f32::MAX, f32::max);
    let exp_neg_max = (-m).exp();
    let mut sum = 0.0f32;
    for x in v.iter_mut() {
        if *x > 0.0000001 || *x < -0.0000001 {
            *x = (*x - m).exp();
            sum += *x;
        } else {
            *x *= exp_neg_max;
        }
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

pub(super) fn transform(post: Post, v: &mut [f32]) {
    match post {
        Post::None => {}
        Post::Logistic => v.iter_mut().for_each(|x| *x = logistic(*x)),
        Post::Softmax => softmax(v),
        Post::SoftmaxZero => softmax_zero(v),
        Post::Probit => v.iter_mut().for_each(|x| *x = probit(*x)),
    }
}

impl TreeEngine {
    pub(super) fn path(&self) -> PathBuf {
        self.info.path.clone()
    }

    /// Sums the leaf weights the row reaches, per class/target, in tree order (f32, as ONNX
    /// Runtime); `has` marks the classes some leaf gave a weight.
    #[inline]
    fn accumulate(&self, x: &[f32], acc: &mut [f32], has: &mut [bool]) {
        acc.iter_mut().for_each(|a| *a = 0.0);
        has.iter_mut().for_each(|h| *h = false);
        if let (Some(flat), Some(c)) = (&self.flat, self.single_target) {
            acc[c as usize] = flat.sum(x);
            has[c as usize] = !self.roots.is_empty();
            return;
        }
        // Same additions in the same (tree) order either way: the sums agree to the bit.
        let (mut sum, mut any) = (0f32, false);
        let single = self.single_target;
        let mut add = |w0: u32, w1: u32| {
            if single.is_some() {
                for &(_, w) in &self.weights[w0 as usize..w1 as usize] {
                    sum += w;
                    any = true;
                }
                return;
            }
            for &(c, w) in &self.weights[w0 as usize..w1 as usize] {
                acc[c as usize] += w;
                has[c as usize] = true;
            }
        };
        if let Some(lv) = &self.levelled {
            let (ni, nl) = ((1usize << lv.depth) - 1, 1usize << lv.depth);
            for g in (0..self.roots.len()).step_by(LANES) {
                let lanes = LANES.min(self.roots.len() - g);
                let mut pos = [0usize; LANES];
                for _ in 0..lv.depth {
                    for (l, p) in pos[..lanes].iter_mut().enumerate() {
                        let n = &lv.inner[(g + l) * ni + *p];
                        *p = 2 * *p + 1 + usize::from(!goes_yes(n, x));
                    }
                }
                for (l, p) in pos[..lanes].iter().enumerate() {
                    let (w0, w1) = lv.leaves[(g + l) * nl + p - ni];
                    add(w0, w1);
                }
            }
        } else {
            for &root in &self.roots {
                let mut n = &self.nodes[root as usize];
                while n.mode != Mode::Leaf {
                    n = &self.nodes[if goes_yes(n, x) { n.yes } else { n.no } as usize];
                }
                add(n.w0, n.w1);
            }
        }
        if let Some(c) = single {
            acc[c as usize] = sum;
            has[c as usize] = any;
        }
    }

    /// One row: scores into `out` (n_out columns), the label (classifiers) returned.
    pub(super) fn eval_row(
        &self,
        x: &[f32],
        acc: &mut [f32],
        has: &mut [bool],
        out: &mut [f32],
    ) -> f32 {
        self.accumulate(x, acc, has);
        match &self.kind {
            Kind::Regressor { average } => {
                let n_trees = self.roots.len() as f32;
                for (k, o) in out.iter_mut().enumerate() {
                    let mut s = acc[k];
                    if *average {
                        s /= n_trees;
                    }
                    if let Some(b) = self.base.get(k) {
                        s += b;
                    }
                    *o = s;
                }
                if self.n_out == 1 {
                    // ONNX Runtime's one-target path applies PROBIT only.
                    if self.post == Post::Probit {
                        out[0] = probit(out[0]);
                    }
                } else {
                    transform(self.post, out);
                }
                f32::NAN
            }
            Kind::Classifier { labels, .. } if self.n_out > 2 => {
                for (k, b) in self.base.iter().enumerate() {
                    acc[k] += b;
                    has[k] = true;
                }
                let mut best: Option<usize> = None;
                for k in 0..self.n_out {
                    if has[k] && best.is_none_or(|b| acc[k] > acc[b]) {
                        best = Some(k);
                    }
                }
                for k in 0..self.n_out {
                    out[k] = if has[k] { acc[k] } else { 0.0 };
                }
                transform(self.post, out);
                best.map_or(f32::NAN, |b| labels[b] as f32)
            }
            Kind::Classifier {
                labels,
                binary,
                all_positive,
            } => self.binary_row(acc, has, out, labels, *binary, *all_positive),
        }
    }

    /// ONNX Runtime's two-class rules (TreeAggregatorClassifier::FinalizeScores).
    fn binary_row(
        &self,
        acc: &mut [f32],
        has: &mut [bool],
        out: &mut [f32],
        labels: &[i64],
        binary: bool,
        all_positive: bool,
    ) -> f32 {
        let (mut s0, mut s1) = (acc[0], acc[1]);
        match self.base.as_slice() {
            [b0, b1] => {
                if has[1] {
                    s1 = b1 + s0;
                    s0 = -s1;
                } else {
                    s1 += b1;
                    s0 += b0;
                }
            }
            [b0] => s0 += b0,
            _ => {}
        }
        let two = has[1];
        let pos = if two {
            s1
        } else if has[0] {
            s0
        } else {
            0.0
        };
        let (positive, half) = if binary && all_positive {
            (pos > 0.5, true)
        } else {
            (pos > 0.0, false)
        };
        let label = labels[usize::from(positive)] as f32;
        if two {
            out[0] = if has[0] { s0 } else { 0.0 };
            out[1] = s1;
            transform(self.post, out);
        } else if self.post == Post::Logistic {
            out[0] = logistic(-s0);
            out[1] = logistic(s0);
        } else if half {
            out[0] = 1.0 - s0;
            out[1] = s0;
        } else {
            out[0] = -s0;
            out[1] = s0;
        }
        label
    }

    pub(super) fn eval_rows(&self, x: &[f32], cols: usize, scores: &mut [f32], labels: &mut [f32]) {
        let mut acc = vec![0f32; self.n_out];
        let mut has = vec![false; self.n_out];
        for (r, (out, label)) in scores
            .chunks_mut(self.n_out)
            .zip(labels.iter_mut())
            .enumerate()
        {
            *label = self.eval_row(&x[r * cols..(r + 1) * cols], &mut acc, &mut has, out);
        }
    }
}
