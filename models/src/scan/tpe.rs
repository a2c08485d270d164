//! The next point of a search: uniform within the domains for the first points, then a
//! tree-structured Parzen estimator (Bergstra et al. 2011, as in hyperopt and optuna): the
//! trained points are split into the best quarter by valid AUC and the rest, each parameter's
//! values in both groups become a density (Gaussian kernels, or smoothed counts for listed
//! values), and of 24 candidates drawn from the good density the one with the largest ratio
//! good / rest is proposed. Parameters are treated as independent.

use yaml_serde::Value;

use super::{number, Domain, Param, Point};
use crate::rng::Rng;

/// Candidates drawn from the good density per proposal.
const CANDIDATES: usize = 24;
/// Fraction of the trained points that count as good.
const GAMMA: f64 = 0.25;

/// A parameter's value on the axis the densities live on: the value (uniform), its logarithm
/// (log) or its index (listed values).
fn coordinate(d: &Domain, v: &Value) -> Option<f64> {
    match d {
        Domain::List(l) => l.iter().position(|x| x == v).map(|i| i as f64),
        Domain::Uniform { .. } => v.as_f64(),
        Domain::Log { .. } => v.as_f64().filter(|x| *x > 0.0).map(f64::ln),
    }
}

fn bounds(d: &Domain) -> (f64, f64) {
    match d {
        Domain::List(l) => (0.0, l.len() as f64),
        Domain::Uniform { lo, hi, .. } => (*lo, *hi),
        Domain::Log { lo, hi, .. } => (lo.ln(), hi.ln()),
    }
}

fn value(d: &Domain, c: f64) -> Value {
    match d {
        Domain::List(l) => l[(c as usize).min(l.len() - 1)].clone(),
        Domain::Uniform { lo, hi, integer } => number(c.clamp(*lo, *hi), *integer),
        Domain::Log { lo, hi, integer } => number(c.exp().clamp(*lo, *hi), *integer),
    }
}

fn uniform(d: &Domain, rng: &mut Rng) -> f64 {
    match d {
        Domain::List(l) => rng.below(l.len()) as f64,
        _ => {
            let (lo, hi) = bounds(d);
            lo + (hi - lo) * rng.uniform()
        }
    }
}

/// A density over one parameter built from observed coordinates, with a flat prior weighing
/// as one observation so that no region has density zero.
struct Parzen<'a> {
    domain: &'a Domain,
    obs: Vec<f64>,
    width: f64,
}

impl<'a> Parzen<'a> {
    fn new(domain: &'a Domain, obs: Vec<f64>) -> Self {
        let (lo, hi) = bounds(domain);
        // Scott-like bandwidth, shrinking slowly with the number of points.
        let width = (hi - lo) / (1.0 + obs.len() as f64).powf(0.2) / 2.0;
        Parzen { domain, obs, width }
    }

    fn density(&self, c: f64) -> f64 {
        let (lo, hi) = bounds(self.domain);
        let n = self.obs.len() as f64 + 1.0;
        match self.domain {
            Domain::List(l) => {
                let hits = self.obs.iter().filter(|&&o| o == c.floor()).count() as f64;
                (hits + 1.0 / l.len() as f64) / n
            }
            _ => {
                let kernel: f64 = self
                    .obs
                    .iter()
                    .map(|o| {
                        let z = (c - o) / self.width;
                        (-0.5 * z * z).exp() / (self.width * (2.0 * std::f64::consts::PI).sqrt())
                    })
                    .sum();
                (kernel + 1.0 / (hi - lo)) / n
            }
        }
    }

    fn sample(&self, rng: &mut Rng) -> f64 {
        let k = rng.below(self.obs.len() + 1);
        if k == self.obs.len() {
            return uniform(self.domain, rng);
        }
        match self.domain {
            Domain::List(_) => self.obs[k],
            _ => {
                // A kernel truncated to the domain (clamping would pile candidates on the
                // bounds, where the ratio to the rest is often largest).
                let (lo, hi) = bounds(self.domain);
                (0..32)
                    .map(|_| self.obs[k] + self.width * rng.normal())
                    .find(|c| (lo..=hi).contains(c))
                    .unwrap_or_else(|| uniform(self.domain, rng))
            }
        }
    }
}

/// The next point to train, given the points trained so far with their valid AUC (NaN for a
/// failed point, which counts among the rest) and the points still training (`pending`, not
/// proposed again). Uniform while fewer than `startup` points are done.
pub fn propose(
    params: &[Param],
    done: &[(Point, f64)],
    pending: &[Point],
    startup: usize,
    rng: &mut Rng,
) -> Point {
    let random = |rng: &mut Rng| -> Point {
        params
            .iter()
            .map(|p| value(&p.domain, uniform(&p.domain, rng)))
            .collect()
    };
    let startup = done.len() < startup.max(2);
    let mut order: Vec<usize> = (0..done.len()).collect();
    let key = |i: &usize| {
        let a = done[*i].1;
        if a.is_nan() {
            f64::NEG_INFINITY
        } else {
            a
        }
    };
    order.sort_by(|a, b| key(b).total_cmp(&key(a)));
    let n_good = ((done.len() as f64 * GAMMA).ceil() as usize)
        .max(1)
        .min(done.len());
    let (good, rest) = order.split_at(n_good);
    let guided = |rng: &mut Rng| -> Point {
        params
            .iter()
            .enumerate()
            .map(|(j, p)| {
                let coords = |rows: &[usize]| -> Vec<f64> {
                    rows.iter()
                        .filter_map(|&i| coordinate(&p.domain, &done[i].0[j]))
                        .collect()
                };
                let l = Parzen::new(&p.domain, coords(good));
                let g = Parzen::new(&p.domain, coords(rest));
                let score = |c: f64| l.density(c).ln() - g.density(c).ln();
                let best = (0..CANDIDATES)
                    .map(|_| l.sample(rng))
                    .max_by(|a, b| score(*a).total_cmp(&score(*b)))
                    .unwrap_or_else(|| uniform(&p.domain, rng));
                value(&p.domain, best)
            })
            .collect()
    };
    // Training a point twice teaches nothing (training is deterministic for a seed): a
    // proposal equal to a trained or pending point is drawn again, after a few tries
    // uniformly; only a domain with every point taken gives a repeat.
    let fresh = |pt: &Point| done.iter().all(|(d, _)| d != pt) && !pending.contains(pt);
    let mut pt = if startup { random(rng) } else { guided(rng) };
    for attempt in 0..72 {
        if fresh(&pt) {
            break;
        }
        pt = if attempt < 8 && !startup {
            guided(rng)
        } else {
            random(rng)
        };
    }
    pt
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a one-dimensional problem whose valid AUC peaks at 6, the proposals after the
    /// random start concentrate near the peak: their mean distance to it is well below the
    /// uniform sampler's.
    #[test]
    fn proposals_move_towards_the_best_region() {
        let p = [Param::parse("training.dropout=1.0..20.0").unwrap()];
        let auc = |v: &Value| 0.9 - 0.01 * (v.as_f64().unwrap() - 6.0).abs();
        let mut rng = Rng::new(7);
        let mut done: Vec<(Point, f64)> = Vec::new();
        for _ in 0..40 {
            let pt = propose(&p, &done, &[], 8, &mut rng);
            let a = auc(&pt[0]);
            done.push((pt, a));
        }
        let dist = |pts: &[(Point, f64)]| {
            pts.iter()
                .map(|(pt, _)| (pt[0].as_f64().unwrap() - 6.0).abs())
                .sum::<f64>()
                / pts.len() as f64
        };
        let (random, guided) = done.split_at(8);
        // Uniform on 1..20 is on average 5.8 away from 6.
        assert!(
            dist(guided) < 2.5,
            "guided {} random {}",
            dist(guided),
            dist(random)
        );
        for (pt, _) in &done {
            let v = pt[0].as_f64().unwrap();
            assert!((1.0..=20.0).contains(&v), "{v}");
        }
        // Integer ranges give integers, and a proposal never repeats a trained point.
        let p = [Param::parse("model.depth=1..8").unwrap()];
        let mut done: Vec<(Point, f64)> = Vec::new();
        for _ in 0..6 {
            let pt = propose(&p, &done, &[], 3, &mut rng);
            assert!(
                pt[0].as_i64().is_some_and(|v| (1..=8).contains(&v)),
                "{pt:?}"
            );
            assert!(done.iter().all(|(d, _)| *d != pt), "{pt:?} again");
            let a = auc(&pt[0]);
            done.push((pt, a));
        }
    }

    #[test]
    fn listed_values_and_log_ranges_stay_in_their_domains() {
        let p = [
            Param::parse("model.activation=relu,tanh,swish").unwrap(),
            Param::parse("training.learning_rate=log:1e-4..1e-1").unwrap(),
        ];
        let mut rng = Rng::new(1);
        let mut done: Vec<(Point, f64)> = Vec::new();
        for i in 0..30 {
            let pt = propose(&p, &done, &[], 5, &mut rng);
            let Domain::List(l) = &p[0].domain else {
                unreachable!()
            };
            assert!(l.contains(&pt[0]));
            let lr = pt[1].as_f64().unwrap();
            assert!((1e-4..=1e-1).contains(&lr), "{lr}");
            let a = if pt[0] == l[1] { 0.9 } else { 0.7 } + i as f64 * 1e-6;
            done.push((pt, a));
        }
        let tanh = done[5..]
            .iter()
            .filter(|(pt, _)| pt[0].as_str() == Some("tanh"))
            .count();
        assert!(
            tanh > 15,
            "{tanh} of 25 guided proposals chose the best activation"
        );
    }
}
