//! The model being explained, seen as a function of one flat feature row: the columns of every
//! model input side by side (a PNN's features and its mass; a per-object input's padded
//! values), one score out. Scores come from whichever engine runs the model; gradients are
//! exact (backpropagation through the native dense evaluator) where the graph allows it, and
//! central finite differences anywhere else, with the method named.

use super::ExplainError;
use engine::native::{Backprop, Target};
use engine::{Opened, Tensor};
use std::borrow::Cow;

/// How gradients are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradMethod {
    /// Backpropagation through the network (dense networks on the native evaluator).
    Exact,
    /// Central finite differences of the scores, steps of `FD_STEP` x the feature's spread.
    FiniteDifferences,
}

impl GradMethod {
    pub fn name(self) -> &'static str {
        match self {
            GradMethod::Exact => "exact (backpropagation)",
            GradMethod::FiniteDifferences => "central finite differences",
        }
    }
}

/// Events scored per engine call.
const SCORE_CHUNK: usize = 4096;

/// Values in one block of finite-difference rows (bounds memory: 32 MB).
const FD_FLOATS: usize = 8 << 20;

/// Finite-difference step relative to a feature's standard deviation.
pub const FD_STEP: f32 = 1e-2;

/// One model input: its name, dimensions after the batch, and where its columns start.
#[derive(Debug, Clone)]
pub struct InputCols {
    pub name: String,
    pub row_shape: Vec<usize>,
    pub start: usize,
    pub width: usize,
}

/// A model, the flat feature layout it is fed, and the score it is explained by.
pub struct Scorer {
    opened: Opened,
    pub inputs: Vec<InputCols>,
    /// Output index and column of the score.
    pub output: usize,
    pub column: usize,
    pub output_name: String,
    /// For each model input in graph order, its index in `inputs`.
    port_order: Vec<usize>,
}

impl Scorer {
    /// `inputs`: each model input's name and dimensions after the batch, in the order their
    /// columns appear in a feature row. `output`: a name with an optional `:column`; `None`
    /// picks the only output, else one whose name says probabilities, its last column for two
    /// classes.
    pub fn new(
        opened: Opened,
        inputs: &[(String, Vec<usize>)],
        output: Option<&str>,
    ) -> Result<Scorer, ExplainError> {
        let info = opened.engine().info();
        let mut cols = Vec::new();
        let mut start = 0;
        for (name, shape) in inputs {
            let width = shape.iter().product::<usize>().max(1);
            cols.push(InputCols {
                name: name.clone(),
                row_shape: shape.clone(),
                start,
                width,
            });
            start += width;
        }
        let port_order = info
            .inputs
            .iter()
            .map(|p| {
                cols.iter().position(|c| c.name == p.name).ok_or_else(|| {
                    ExplainError::Config(format!("no data for the model's input '{}'", p.name))
                })
            })
            .collect::<Result<Vec<usize>, ExplainError>>()?;
        if port_order.len() != cols.len() {
            return Err(ExplainError::Config(format!(
                "{} inputs given, the model takes {}",
                cols.len(),
                port_order.len()
            )));
        }
        let outs = &info.outputs;
        let (name, column) = match output {
            Some(o) => match o.split_once(':') {
                Some((n, c)) => (
                    n.to_string(),
                    Some(c.parse::<usize>().map_err(|_| {
                        ExplainError::Config(format!("--output {o}: column is not a number"))
                    })?),
                ),
                None => (o.to_string(), None),
            },
            None => {
                let pick = if outs.len() == 1 {
                    outs.first()
                } else {
                    outs.iter()
                        .find(|p| p.name.to_lowercase().contains("prob") && p.elem == "float")
                };
                let p = pick.ok_or_else(|| {
                    let names: Vec<&str> = outs.iter().map(|p| p.name.as_str()).collect();
                    ExplainError::Config(format!(
                        "the model has outputs {}: choose the score with --output NAME[:COLUMN]",
                        names.join(", ")
                    ))
                })?;
                (p.name.clone(), None)
            }
        };
        let index = outs
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| ExplainError::Config(format!("the model has no output '{name}'")))?;
        let width: Option<usize> = outs[index].shape.iter().skip(1).copied().product();
        let column = match (column, width) {
            (Some(c), Some(w)) if c >= w => {
                return Err(ExplainError::Config(format!(
                    "output '{name}' has {w} columns; column {c} asked for"
                )))
            }
            (Some(c), _) => c,
            (None, Some(2)) => 1,
            (None, Some(1)) | (None, None) => 0,
            (None, Some(w)) => {
                return Err(ExplainError::Config(format!(
                    "output '{name}' has {w} columns: choose one with --output {name}:COLUMN"
                )))
            }
        };
        Ok(Scorer {
            opened,
            inputs: cols,
            output: index,
            column,
            output_name: name,
            port_order,
        })
    }

    /// Values in one feature row.
    pub fn width(&self) -> usize {
        self.inputs.iter().map(|i| i.width).sum()
    }

    /// The engine's description and the model hash.
    pub fn describe(&self) -> String {
        self.opened.engine().describe()
    }

    pub fn hash(&self) -> &str {
        &self.opened.engine().info().hash
    }

    pub fn grad_method(&self) -> GradMethod {
        match self.opened {
            Opened::Native(_) => GradMethod::Exact,
            _ => GradMethod::FiniteDifferences,
        }
    }

    /// A tree ensemble's split count per feature (columns the trees never read count 0).
    pub fn tree_importance(&self) -> Option<Vec<u32>> {
        match &self.opened {
            Opened::Trees(t) => {
                let mut c = t.split_counts();
                c.resize(self.width(), 0);
                Some(c)
            }
            _ => None,
        }
    }

    /// A tree ensemble `hepml train` made: its mean decrease in impurity per feature (the
    /// `hepml.mdi` metadata `hepml export` writes), in the metadata's feature order.
    pub fn mdi(&self) -> Option<Vec<(String, f64)>> {
        let text = self.opened.engine().info().metadata.get("hepml.mdi")?;
        let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
        v.into_iter()
            .map(|(k, v)| v.as_f64().map(|x| (k, x)))
            .collect()
    }

    /// The exact-gradient network, for dense networks.
    pub fn backprop(&self) -> Option<Backprop<'_>> {
        match &self.opened {
            Opened::Native(e) => Some(e.backprop()),
            _ => None,
        }
    }

    /// The inputs of `n` rows, column blocks cut out of the flat rows.
    fn tensors(&self, x: &[f32], n: usize) -> Vec<Tensor> {
        let f = self.width();
        self.inputs
            .iter()
            .map(|c| {
                let mut data = Vec::with_capacity(n * c.width);
                for r in 0..n {
                    data.extend_from_slice(&x[r * f + c.start..r * f + c.start + c.width]);
                }
                let mut shape = vec![n];
                shape.extend(&c.row_shape);
                Tensor::new(c.name.clone(), shape, data)
            })
            .collect()
    }

    /// Per-input blocks of flat rows in the model's input order, for the native evaluator (one
    /// input: the rows themselves, not copied).
    pub fn parts<'a>(&self, x: &'a [f32], n: usize) -> Vec<Cow<'a, [f32]>> {
        if self.inputs.len() == 1 {
            return vec![Cow::Borrowed(x)];
        }
        let mut t: Vec<Option<Tensor>> = self.tensors(x, n).into_iter().map(Some).collect();
        self.port_order
            .iter()
            .map(|&i| Cow::Owned(t[i].take().map(|t| t.data).unwrap_or_default()))
            .collect()
    }

    /// The score of each of the `n` rows of `x` (`n x width`, row-major).
    pub fn score(&self, x: &[f32], n: usize) -> Result<Vec<f32>, ExplainError> {
        let f = self.width();
        let mut out = Vec::with_capacity(n);
        // In chunks, on the calling thread: the methods run their own work in parallel.
        for r0 in (0..n).step_by(SCORE_CHUNK) {
            let m = SCORE_CHUNK.min(n - r0);
            self.score_chunk(&x[r0 * f..(r0 + m) * f], m, &mut out)?;
        }
        Ok(out)
    }

    /// The score of each of `n` events given as columns (`width` of them, each `n` long, in
    /// the order of a feature row). The native evaluator reads them in place; other engines get
    /// rows built chunk by chunk.
    pub fn score_columns(&self, cols: &[&[f32]], n: usize) -> Result<Vec<f32>, ExplainError> {
        if let Opened::Native(e) = &self.opened {
            let ins: Vec<Vec<&[f32]>> = self
                .port_order
                .iter()
                .map(|&i| cols[self.inputs[i].start..][..self.inputs[i].width].to_vec())
                .collect();
            let k = e.output_width(self.output);
            let mut buf = vec![0f32; n * k];
            e.run_columns_into(&ins, n, self.output, &mut buf)?;
            let mut out = Vec::with_capacity(n);
            self.pick(&buf, n, k, &mut out);
            return Ok(out);
        }
        let f = self.width();
        let mut out = Vec::with_capacity(n);
        let mut rows = vec![0f32; SCORE_CHUNK.min(n) * f];
        for r0 in (0..n).step_by(SCORE_CHUNK) {
            let m = SCORE_CHUNK.min(n - r0);
            for (j, c) in cols.iter().enumerate() {
                for (r, &v) in c[r0..r0 + m].iter().enumerate() {
                    rows[r * f + j] = v;
                }
            }
            self.score_chunk(&rows[..m * f], m, &mut out)?;
        }
        Ok(out)
    }

    fn score_chunk(&self, x: &[f32], n: usize, out: &mut Vec<f32>) -> Result<(), ExplainError> {
        if let (Opened::Native(e), 1) = (&self.opened, self.inputs.len()) {
            // The allocation-free path: the rows as they are, no tensor copies.
            let k = e.output_width(self.output);
            let mut buf = vec![0f32; n * k];
            e.run_into(&[x], n, self.output, &mut buf)?;
            self.pick(&buf, n, k, out);
            return Ok(());
        }
        let res = self
            .opened
            .engine()
            .run(&self.tensors(x, n))
            .map_err(ExplainError::Engine)?;
        let t = res.get(self.output).ok_or_else(|| {
            ExplainError::Config(format!("the model gave no output '{}'", self.output_name))
        })?;
        let k = t.data.len() / n.max(1);
        if k * n != t.data.len() || self.column >= k {
            return Err(ExplainError::Config(format!(
                "output '{}' has shape {:?} for {n} events",
                self.output_name, t.shape
            )));
        }
        self.pick(&t.data, n, k, out);
        Ok(())
    }

    /// The explained column of each of `n` output rows of `k` values.
    fn pick(&self, rows: &[f32], n: usize, k: usize, out: &mut Vec<f32>) {
        out.extend((0..n).map(|r| rows[r * k + self.column]));
    }

    /// Scores and d score / d feature of the `n` rows of `x` (`n x width`): exact where the
    /// network allows, else central differences with steps `FD_STEP * spread[j]`.
    pub fn gradient(
        &self,
        x: &[f32],
        n: usize,
        spread: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>), ExplainError> {
        let f = self.width();
        if let Some(bp) = self.backprop() {
            let parts = self.parts(x, n);
            let refs: Vec<&[f32]> = parts.iter().map(|p| p.as_ref()).collect();
            let g = bp
                .run(&refs, n, self.target(), false)
                .map_err(ExplainError::Engine)?;
            return Ok((g.value, self.join(g.inputs, n)));
        }
        // Every shifted copy of the rows goes to the engine in a few large batches, scored in
        // parallel: one call per feature and side would pay the engine's per-call cost (a
        // GNN's) a thousand times.
        let base = self.score(x, n)?;
        let mut grad = vec![0f32; n * f];
        let block = (FD_FLOATS / (2 * n * f).max(1)).clamp(1, f.max(1));
        for j0 in (0..f).step_by(block) {
            let js: Vec<usize> = (j0..(j0 + block).min(f)).collect();
            let steps: Vec<f32> = js
                .iter()
                .map(|&j| FD_STEP * spread.get(j).copied().filter(|s| *s > 0.0).unwrap_or(1.0))
                .collect();
            let mut rows = Vec::with_capacity(2 * js.len() * n * f);
            for (&j, &h) in js.iter().zip(&steps) {
                for sign in [1.0f32, -1.0] {
                    let at = rows.len();
                    rows.extend_from_slice(x);
                    for r in 0..n {
                        rows[at + r * f + j] += sign * h;
                    }
                }
            }
            let sc = self.score_parallel(&rows, 2 * js.len() * n)?;
            for (k, (&j, &h)) in js.iter().zip(&steps).enumerate() {
                let (up, down) = (
                    &sc[2 * k * n..(2 * k + 1) * n],
                    &sc[(2 * k + 1) * n..(2 * k + 2) * n],
                );
                for r in 0..n {
                    grad[r * f + j] = (up[r] - down[r]) / (2.0 * h);
                }
            }
        }
        Ok((base, grad))
    }

    /// [`Scorer::score`] with the chunks spread over every core.
    pub fn score_parallel(&self, x: &[f32], n: usize) -> Result<Vec<f32>, ExplainError> {
        let f = self.width();
        let starts: Vec<usize> = (0..n).step_by(SCORE_CHUNK).collect();
        let parts = super::perm::parallel(&starts, |&r0| {
            let m = SCORE_CHUNK.min(n - r0);
            self.score(&x[r0 * f..(r0 + m) * f], m)
        })?;
        Ok(parts.concat())
    }

    /// The backward pass's starting point: the score.
    pub fn target(&self) -> Target {
        Target::Output {
            output: self.output,
            column: self.column,
        }
    }

    /// Per-input blocks (model input order) back into flat rows (one input: as it is).
    pub fn join(&self, mut parts: Vec<Vec<f32>>, n: usize) -> Vec<f32> {
        if self.inputs.len() == 1 {
            return parts.pop().unwrap_or_default();
        }
        let f = self.width();
        let mut out = vec![0f32; n * f];
        for (&i, p) in self.port_order.iter().zip(&parts) {
            let c = &self.inputs[i];
            for r in 0..n {
                out[r * f + c.start..r * f + c.start + c.width]
                    .copy_from_slice(&p[r * c.width..(r + 1) * c.width]);
            }
        }
        out
    }
}
