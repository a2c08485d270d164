//! The native evaluator of particle-cloud networks (ParticleNet's EdgeConv family, recognised
//! by `edgeconv`), event by event, with every event's tensors in per-thread buffers that stay
//! in cache.
//!
//! It computes what the graph computes, in another order where that is cheaper:
//! - the first edge convolution `W [x_i, x_j - x_i] + b` is `((W_a - W_b) x_i + b) + W_b x_j`:
//!   two pointwise convolutions over the points, then one addition per edge, instead of a
//!   convolution over every edge (a third of the network's multiply-adds);
//! - the following edge convolutions run over a few points' edges at a time and are averaged
//!   over the neighbours at once;
//! - batch norm is folded into the convolution after it.
//!
//! The neighbour search follows the export's arithmetic (`(-|q_j|^2 - (q_i . q_j) * -2) -
//! |q_i|^2`, TopK of k + 1 with ties to the lower index, the first dropped), so the neighbours
//! are those ONNX Runtime finds, up to the rounding of the dot products (near-ties). Results
//! agree with ONNX Runtime within float rounding; the tests hold them to 1e-5 of the outputs'
//! scale.

use super::edgeconv::{recognise, Knn, Program, Stem};
use super::events::{refusal, softmax, split};
use super::gemm::{conv, Block as X};
use super::kernels::{relu, Simd};
use crate::{Engine, EngineError, Model, ModelInfo, Tensor};

/// Points whose edges go through the edge convolutions together.
const CHUNK: usize = 8;

/// A recognised particle-cloud network, ready to run. `Sync`: the program is read-only.
pub struct EdgeConvEngine {
    pub info: ModelInfo,
    prog: Program,
    simd: Simd,
    summary: String,
    /// Events of a batch are split across this many threads.
    pub threads: usize,
}

/// Whether a graph is a particle-cloud network this evaluator runs: `Ok(())`, or why not.
pub fn recognise_graph(model: &Model) -> Result<(), String> {
    recognise(model.proto(), model.info()).map(|_| ())
}

impl EdgeConvEngine {
    /// Loads a particle-cloud network; [`EngineError::Unsupported`] (naming the first node that
    /// does not fit) for any other graph.
    pub fn load(model: &Model) -> Result<Self, EngineError> {
        let info = model.info().clone();
        let prog = recognise(model.proto(), &info).map_err(refusal(&info, "EdgeConv"))?;
        let simd = Simd::detect();
        let blocks: Vec<String> = prog
            .blocks
            .iter()
            .map(|b| format!("k={} {}->{}", b.k, b.first.ci, b.cout))
            .collect();
        let summary = format!(
            "EdgeConv [{}], fusion {}, dense {}, {}",
            blocks.join(", "),
            prog.fusion
                .as_ref()
                .map_or("none".to_string(), |f| f.co.to_string()),
            prog.fc
                .iter()
                .map(|l| l.n.to_string())
                .collect::<Vec<_>>()
                .join("-"),
            simd.name()
        );
        Ok(EdgeConvEngine {
            info,
            prog,
            simd,
            summary,
            threads: crate::parts::cores(),
        })
    }

    fn err(&self, msg: String) -> EngineError {
        EngineError::Run {
            path: self.info.path.clone(),
            msg,
        }
    }

    /// Per stem: points per event; and the batch.
    fn sizes(&self, xs: &[&Tensor]) -> Result<(usize, Vec<usize>), EngineError> {
        let mut batch = None;
        let mut sizes = Vec::new();
        for s in &self.prog.stems {
            let (f, p, m) = (xs[s.features], xs[s.points], xs[s.mask]);
            let bad = |t: &Tensor, want: String| EngineError::Input {
                path: self.info.path.clone(),
                input: t.name.clone(),
                msg: format!("shape {:?}, expected {want}", t.shape),
            };
            let [n, c, np] = f.shape[..] else {
                return Err(bad(f, "[N, C, P]".into()));
            };
            if c != s.ci {
                return Err(bad(f, format!("[N, {}, P]", s.ci)));
            }
            if p.shape != [n, self.prog.dims, np] {
                return Err(bad(p, format!("[{n}, {}, {np}]", self.prog.dims)));
            }
            if m.shape != [n, 1, np] {
                return Err(bad(m, format!("[{n}, 1, {np}]")));
            }
            if *batch.get_or_insert(n) != n {
                return Err(bad(f, "the batch of the other inputs".into()));
            }
            sizes.push(np);
        }
        let total: usize = sizes.iter().sum();
        if let Some(b) = self.prog.blocks.iter().find(|b| total < b.k + 1) {
            return Err(self.err(format!(
                "{total} points per event; the neighbour search takes {} (k + 1)",
                b.k + 1
            )));
        }
        Ok((batch.unwrap_or(0), sizes))
    }

    /// Events `e0..e0 + out.len() / width` into `out`.
    fn events(&self, xs: &[&Tensor], sizes: &[usize], e0: usize, out: &mut [f32]) {
        let w = self.prog.out_width();
        let mut s = Scratch::default();
        for (i, o) in out.chunks_exact_mut(w).enumerate() {
            self.event(&mut s, xs, sizes, e0 + i, o);
        }
    }

    fn event(&self, s: &mut Scratch, xs: &[&Tensor], sizes: &[usize], e: usize, out: &mut [f32]) {
        let p = &self.prog;
        let np: usize = sizes.iter().sum();
        let c0 = p.stems.first().map_or(0, Stem::width);
        let d = p.dims;
        fit(&mut s.mask, np);
        fit(&mut s.pts, d * np);
        fit(&mut s.x, c0 * np);
        let mut off = 0;
        for (st, &ns) in p.stems.iter().zip(sizes) {
            let m = &xs[st.mask].data[e * ns..(e + 1) * ns];
            s.mask[off..off + ns].copy_from_slice(m);
            let pts = &xs[st.points].data[e * d * ns..(e + 1) * d * ns];
            for k in 0..d {
                s.pts[k * np + off..k * np + off + ns].copy_from_slice(&pts[k * ns..(k + 1) * ns]);
            }
            let ci = st.ci;
            let f = &xs[st.features].data[e * ci * ns..(e + 1) * ci * ns];
            fit(&mut s.tmp, ci * ns);
            for (t, fr) in s.tmp.chunks_exact_mut(ns).zip(f.chunks_exact(ns)) {
                if st.premask {
                    for ((t, v), mv) in t.iter_mut().zip(fr).zip(m) {
                        *t = v * mv;
                    }
                } else {
                    t.copy_from_slice(fr);
                }
            }
            let src = X {
                x: &s.tmp,
                ldx: ns,
                ncols: ns,
            };
            match &st.conv {
                Some(c) => conv(self.simd, c, src, &mut s.x[off..], np, true),
                // No stem: the features as they are.
                None => {
                    for (r, t) in s.x.chunks_exact_mut(np).zip(s.tmp.chunks_exact(ns)) {
                        r[off..off + ns].copy_from_slice(t);
                    }
                }
            }
            for r in s.x.chunks_exact_mut(np).filter(|_| st.mask_out) {
                for (v, mv) in r[off..off + ns].iter_mut().zip(m) {
                    *v *= mv;
                }
            }
            off += ns;
        }
        let Scratch { mask, pts, x, .. } = s;
        if let Some((a, c)) = &p.fts_bn {
            for ((r, a), c) in x.chunks_exact_mut(np).zip(a).zip(c) {
                for v in r {
                    *v = a * *v + c;
                }
            }
        }
        let x = x.chunks_exact_mut(np).filter(|_| p.mask_x);
        for r in x.chain(pts.chunks_exact_mut(np).filter(|_| p.mask_points)) {
            for (v, mv) in r.iter_mut().zip(mask.iter()) {
                *v *= mv;
            }
        }
        fit(&mut s.shift, np);
        for (sh, mv) in s.shift.iter_mut().zip(&s.mask) {
            *sh = f32::from(u8::from(*mv == 0.0)) * p.shift;
        }
        s.outs.resize_with(p.blocks.len(), Vec::new);
        for (bi, b) in p.blocks.iter().enumerate() {
            let (prev, rest) = s.outs.split_at_mut(bi);
            let x: &[f32] = if bi == 0 { &s.x } else { &prev[bi - 1] };
            let cx = b.first.ci;
            let (src, dq) = match b.knn {
                Knn::Points => (&s.pts[..], d),
                Knn::Features => (x, cx),
            };
            fit(&mut s.q, dq * np);
            for (qr, sr) in s.q.chunks_exact_mut(np).zip(src.chunks_exact(np)) {
                for ((q, v), sh) in qr.iter_mut().zip(sr).zip(&s.shift) {
                    *q = v + sh;
                }
            }
            knn(&s.q, dq, np, b.k, &mut s.sq, &mut s.dist, &mut s.nbr);
            // (W_a - W_b) x_i + b and W_b x_j for every point.
            let c1 = b.c1;
            fit(&mut s.ab, 2 * c1 * np);
            let xb = || X {
                x,
                ldx: np,
                ncols: np,
            };
            conv(self.simd, &b.first, xb(), &mut s.ab, np, false);
            let cout = b.cout;
            fit(&mut s.mean, cout * np);
            let k = b.k;
            for i0 in (0..np).step_by(CHUNK) {
                let i1 = (i0 + CHUNK).min(np);
                let ncols = (i1 - i0) * k;
                fit(&mut s.h[0], c1 * ncols);
                for c in 0..c1 {
                    let a = &s.ab[c * np..(c + 1) * np];
                    let bj = &s.ab[(c1 + c) * np..(c1 + c + 1) * np];
                    let h = &mut s.h[0][c * ncols..(c + 1) * ncols];
                    for i in i0..i1 {
                        let nb = &s.nbr[i * k..(i + 1) * k];
                        for (hv, &j) in h[(i - i0) * k..(i - i0 + 1) * k].iter_mut().zip(nb) {
                            *hv = relu(a[i] + bj[j as usize]);
                        }
                    }
                }
                let mut cur = 0;
                let mut width = c1;
                for l in &b.rest {
                    let (h0, h1) = s.h.split_at_mut(1);
                    let (src, dst) = if cur == 0 {
                        (&h0[0], &mut h1[0])
                    } else {
                        (&h1[0], &mut h0[0])
                    };
                    fit(dst, l.co * ncols);
                    let hx = X {
                        x: src,
                        ldx: ncols,
                        ncols,
                    };
                    conv(self.simd, l, hx, dst, ncols, true);
                    cur = 1 - cur;
                    width = l.co;
                }
                let h = &s.h[cur];
                let kf = k as f32;
                for c in 0..width {
                    let hr = &h[c * ncols..(c + 1) * ncols];
                    for i in i0..i1 {
                        let sum = hr[(i - i0) * k..(i - i0 + 1) * k]
                            .iter()
                            .fold(0f32, |a, v| a + v);
                        s.mean[c * np + i] = sum / kf;
                    }
                }
            }
            let o = &mut rest[0];
            fit(o, cout * np);
            match &b.shortcut {
                Some(sc) => conv(self.simd, sc, xb(), o, np, false),
                None => o.copy_from_slice(&x[..cout * np]),
            }
            for (or, mr) in o.chunks_exact_mut(np).zip(s.mean.chunks_exact(np)) {
                for ((v, mv), cm) in or.iter_mut().zip(mr).zip(&s.mask) {
                    let y = relu(*v + mv);
                    *v = if b.masked { y * cm } else { y };
                }
            }
        }
        // Fusion and pooling.
        let cat: usize = p.fused.iter().map(|&i| p.blocks[i].cout).sum();
        fit(&mut s.tmp, cat * np);
        let mut at = 0;
        for &i in &p.fused {
            let n = s.outs[i].len();
            s.tmp[at..at + n].copy_from_slice(&s.outs[i]);
            at += n;
        }
        let pooled = match &p.fusion {
            Some(fusion) => {
                fit(&mut s.q, fusion.co * np);
                let src = X {
                    x: &s.tmp,
                    ldx: np,
                    ncols: np,
                };
                conv(self.simd, fusion, src, &mut s.q, np, true);
                &s.q
            }
            None => &s.tmp,
        };
        // The mean over every slot, or over the real points.
        let count = if p.mean_pool {
            np as f32
        } else {
            s.mask.iter().fold(0f32, |a, v| a + v).max(1.0)
        };
        let mut v: Vec<f32> = pooled
            .chunks_exact(np)
            .map(|r| {
                let sum = if p.pool_mask {
                    r.iter().zip(&s.mask).fold(0f32, |a, (x, m)| a + x * m)
                } else {
                    r.iter().fold(0f32, |a, x| a + x)
                };
                sum / count
            })
            .collect();
        for l in &p.fc {
            v =
                l.w.chunks_exact(l.k)
                    .zip(&l.b)
                    .map(|(wr, b)| {
                        let y = wr.iter().zip(&v).fold(0f32, |a, (w, x)| a + w * x) + b;
                        if l.relu {
                            relu(y)
                        } else {
                            y
                        }
                    })
                    .collect();
        }
        let mut at = 0;
        for part in &p.parts {
            let o = &mut out[at..at + part.end - part.start];
            let y = &v[part.start..part.end];
            o.copy_from_slice(y);
            if part.softmax {
                softmax(o);
            }
            at += o.len();
        }
    }
}

/// Per-thread buffers, grown to the largest event seen.
#[derive(Default)]
struct Scratch {
    mask: Vec<f32>,
    shift: Vec<f32>,
    pts: Vec<f32>,
    x: Vec<f32>,
    tmp: Vec<f32>,
    q: Vec<f32>,
    sq: Vec<f32>,
    dist: Vec<f32>,
    nbr: Vec<u32>,
    ab: Vec<f32>,
    h: [Vec<f32>; 2],
    mean: Vec<f32>,
    outs: Vec<Vec<f32>>,
}

fn fit(v: &mut Vec<f32>, n: usize) {
    v.resize(n, 0.0);
}

/// The k nearest neighbours of each of `np` points `q` (`dq x np`), the point itself excluded
/// as the graph does it: the k + 1 largest of `D_ij = (-|q_j|^2 - (q_i . q_j) * -2) - |q_i|^2`
/// in row i, ties to the lower j, the first dropped. `nbr`: `np x k`.
fn knn(
    q: &[f32],
    dq: usize,
    np: usize,
    k: usize,
    sq: &mut Vec<f32>,
    dist: &mut Vec<f32>,
    nbr: &mut Vec<u32>,
) {
    sq.clear();
    sq.resize(np, 0.0);
    dist.clear();
    dist.resize(np * np, 0.0);
    for qr in q.chunks_exact(np).take(dq) {
        for (s, v) in sq.iter_mut().zip(qr) {
            *s += v * v;
        }
        for (i, dr) in dist.chunks_exact_mut(np).enumerate() {
            let qi = qr[i];
            for (dv, qj) in dr.iter_mut().zip(qr) {
                *dv += qi * qj;
            }
        }
    }
    nbr.clear();
    nbr.resize(np * k, 0);
    let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 2);
    for (i, dr) in dist.chunks_exact(np).enumerate() {
        best.clear();
        for (j, inner) in dr.iter().enumerate() {
            let v = (-sq[j] - inner * -2.0) - sq[i];
            // Descending; a later index only passes strictly larger values; NaN last.
            let pos = best.partition_point(|(b, _)| v.is_nan() || *b >= v);
            if pos <= k {
                best.insert(pos, (v, j as u32));
                best.truncate(k + 1);
            }
        }
        for (n, (_, j)) in nbr[i * k..(i + 1) * k].iter_mut().zip(&best[1..]) {
            *n = *j;
        }
    }
}

impl Engine for EdgeConvEngine {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EngineError> {
        let xs = self.info.check_inputs(inputs)?;
        let (batch, sizes) = self.sizes(&xs)?;
        let w = self.prog.out_width();
        let mut out = vec![0f32; batch * w];
        split(self.threads, w, &mut out, |e0, o| {
            self.events(&xs, &sizes, e0, o)
        });
        Ok(vec![Tensor::new(
            self.prog.output.clone(),
            vec![batch, w],
            out,
        )])
    }

    fn describe(&self) -> String {
        format!(
            "native ({}) on {} (xxh64 {})",
            self.summary,
            self.info.path.display(),
            self.info.hash
        )
    }

    fn info(&self) -> &ModelInfo {
        &self.info
    }
}
