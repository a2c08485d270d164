//! `hepml train`: a DNN or parameterised NN on burn's `flex` CPU backend, from the tables
//! `hepml convert` writes (or any pandas `fixed` HDF5 file), with k-fold ensembles routed by
//! event number, weighted and class-balanced loss, early stopping, OneCycle and an LR finder.
//!
//! The run directory holds `model.json` (per fold: standardisation and dense layers, batch norm
//! folded in), `metrics.json`, the resolved config, and per fold the raw test inputs with burn's
//! scores (`test_fold<i>_x.npy`, `test_fold<i>_score.npy`) so an export can be checked against
//! the trained model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, SgdConfig};
use burn::tensor::{activation, Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::config::{Activation, FeaturesConfig, ModelKind, Optimizer, Schedule, TrainConfig};
use crate::h5::{read_sources, read_table_chunks, H5Error, Table};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    H5(#[from] H5Error),
    #[error("{0}")]
    Data(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A tensor read back from burn was not the float32 data the network computes in.
    #[error("reading {what} back from burn: {source}")]
    Tensor {
        what: &'static str,
        source: burn::tensor::DataError,
    },
}

/// The values of `data` as f32 (`what` names the tensor in the error): a tensor of another
/// element type is an error, never an empty vector.
fn f32_values(data: TensorData, what: &'static str) -> Result<Vec<f32>, TrainError> {
    data.try_to_vec::<f32>()
        .map_err(|source| TrainError::Tensor { what, source })
}

fn data_err(msg: impl Into<String>) -> TrainError {
    TrainError::Data(msg.into())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_owned(),
        source,
    }
}

/// SplitMix64: small, seedable, reproducible everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

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
    let pnn = cfg.model.kind == ModelKind::Pnn;
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
    let n_bkg = d.rows() - n_sig;
    if n_sig == 0 || n_bkg == 0 {
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

/// Appends one chunk of a source (rows `r0..` of `path`) to `d`: its features as f32 rows, the
/// label (`label`, or the label column), the weight and the event number.
#[allow(clippy::too_many_arguments)]
fn load_chunk(
    d: &mut Data,
    feats: &FeaturesConfig,
    names: &[String],
    event_col: Option<&str>,
    path: &Path,
    label: Option<f32>,
    r0: usize,
    t: &Table,
) -> Result<(), TrainError> {
    let col = |name: &str| -> Result<&[f64], TrainError> {
        t.column(name).ok_or_else(|| {
            data_err(format!(
                "{}: no column `{name}` (columns: {})",
                path.display(),
                t.names.join(", ")
            ))
        })
    };
    let cols: Vec<&[f64]> = names.iter().map(|n| col(n)).collect::<Result<_, _>>()?;
    let n = t.rows();
    for (c, name) in cols.iter().zip(names) {
        if let Some(r) = c.iter().position(|v| !v.is_finite()) {
            return Err(data_err(format!(
                "{}: column `{name}` has a NaN/inf value (row {}); select such events away in convert",
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
            if let Some(v) = l.iter().find(|v| **v != 0.0 && **v != 1.0) {
                return Err(data_err(format!(
                    "{}: label column `{}` has the value {v}; labels are 0 or 1",
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
            if let Some(v) = w.iter().find(|v| !v.is_finite()) {
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

/// The network: hidden dense layers (optional batch norm), activation, dropout, one logit.
#[derive(Module, Debug)]
pub struct Net {
    hidden: Vec<Linear>,
    norms: Vec<BatchNorm>,
    out: Linear,
    dropout: Dropout,
    act: usize,
}

/// Rows scored per forward pass when evaluating a split: big enough to amortise the call, small
/// enough that its activations (rows x width x layers) stay a few MB.
const EVAL_ROWS: usize = 8192;

const ACTS: [Activation; 5] = [
    Activation::Relu,
    Activation::Swish,
    Activation::Tanh,
    Activation::Elu,
    Activation::Gelu,
];

impl Net {
    pub fn new(cfg: &TrainConfig, inputs: usize, device: &Device) -> Self {
        let m = &cfg.model;
        let mut hidden = Vec::new();
        let mut norms = Vec::new();
        let mut prev = inputs;
        for _ in 0..m.depth {
            hidden.push(LinearConfig::new(prev, m.width).init(device));
            if m.batch_norm {
                norms.push(BatchNormConfig::new(m.width).init(device));
            }
            prev = m.width;
        }
        Net {
            hidden,
            norms,
            out: LinearConfig::new(prev, 1).init(device),
            dropout: DropoutConfig::new(m.dropout).init(),
            act: ACTS.iter().position(|a| *a == m.activation).unwrap_or(0),
        }
    }

    /// Logits `[N, 1]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut h = x;
        for (i, l) in self.hidden.iter().enumerate() {
            h = l.forward(h);
            if let Some(bn) = self.norms.get(i) {
                h = bn.forward(h);
            }
            h = match ACTS[self.act] {
                Activation::Relu => activation::relu(h),
                Activation::Swish => activation::silu(h),
                Activation::Tanh => activation::tanh(h),
                Activation::Elu => activation::elu(h, 1.0),
                Activation::Gelu => activation::gelu(h),
            };
            h = self.dropout.forward(h);
        }
        self.out.forward(h)
    }

    /// Dense layers with batch norm folded in (evaluation mode), weights row-major [in, out].
    pub fn dense_layers(&self) -> Result<Vec<Layer>, TrainError> {
        let vals = |t: Tensor<1>, what| f32_values(t.into_data(), what);
        let mut out = Vec::new();
        for (i, l) in self.hidden.iter().chain([&self.out]).enumerate() {
            let dims = l.weight.val().dims();
            let mut w = f32_values(l.weight.val().into_data(), "a dense layer's weights")?;
            let mut b = match l.bias.as_ref() {
                Some(b) => vals(b.val(), "a dense layer's bias")?,
                None => vec![0.0; dims[1]],
            };
            if let Some(bn) = self.norms.get(i).filter(|_| i < self.hidden.len()) {
                let (g, be) = (
                    vals(bn.gamma.val(), "a batch norm's gamma")?,
                    vals(bn.beta.val(), "a batch norm's beta")?,
                );
                let (mu, var) = (
                    vals(bn.running_mean.value(), "a batch norm's running mean")?,
                    vals(bn.running_var.value(), "a batch norm's running variance")?,
                );
                for j in 0..dims[1] {
                    let s = g[j] / (var[j] + bn.epsilon as f32).sqrt();
                    for r in 0..dims[0] {
                        w[r * dims[1] + j] *= s;
                    }
                    b[j] = (b[j] - mu[j]) * s + be[j];
                }
            }
            out.push(Layer {
                n_in: dims[0],
                n_out: dims[1],
                w,
                b,
            });
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Layer {
    pub n_in: usize,
    pub n_out: usize,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FoldModel {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub layers: Vec<Layer>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KFold {
    pub k: usize,
    pub branch: String,
}

/// `model.json`: everything `hepml export` needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedModel {
    pub hepml_version: String,
    pub inputs: Vec<String>,
    /// Per input: the branch or expression it is computed from in the ntuples (what `hepml
    /// convert` recorded; the input's own name when nothing was). Empty in older runs.
    #[serde(default)]
    pub sources: Vec<String>,
    pub parameter: Option<String>,
    pub label: String,
    pub activation: String,
    pub kfold: Option<KFold>,
    pub config_hash: String,
    pub folds: Vec<FoldModel>,
}

/// Per-epoch history of one fold.
#[derive(Debug, Clone, Default, Serialize)]
pub struct History {
    pub train_loss: Vec<f64>,
    pub valid_loss: Vec<f64>,
    pub train_accuracy: Vec<f64>,
    pub valid_accuracy: Vec<f64>,
    pub learning_rate: Vec<f64>,
    pub best_epoch: usize,
}

/// What a training run produced (the caller writes it out).
pub struct Outcome {
    pub model: SavedModel,
    pub histories: Vec<History>,
    /// Per fold: test rows (indices into the data) and burn's scores for them.
    pub test: Vec<(Vec<usize>, Vec<f32>)>,
    /// PNN only, per evaluated parameter value: the scores of every test background event
    /// (all folds, in `test` order) with its parameter set to that value.
    pub background_at: Vec<(f32, Vec<f32>)>,
    pub lr_finder: Option<(Vec<f64>, Vec<f64>, f64)>,
    pub events_per_second: f64,
}

fn standardise(d: &Data, rows: &[usize]) -> (Vec<f32>, Vec<f32>) {
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
fn gather(d: &Data, rows: &[usize], mean: &[f32], std: &[f32], param_at: Option<f32>) -> Vec<f32> {
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

/// Weighted binary cross-entropy on logits: sum w (softplus(z) - y z) / sum w.
fn loss(z: Tensor<2>, y: Tensor<2>, w: Tensor<2>, wsum: f32) -> Tensor<1> {
    let l = activation::softplus(z.clone(), 1.0) - z * y;
    (l * w).sum().div_scalar(wsum.max(1e-12))
}

enum Opt {
    Adam(burn::optim::ModuleOptimizer),
}

fn optimizer(cfg: &TrainConfig) -> Opt {
    let t = &cfg.training;
    let wd = (t.weight_decay > 0.0)
        .then(|| burn::optim::decay::WeightDecayConfig::new(t.weight_decay as f32));
    Opt::Adam(match t.optimizer {
        Optimizer::Adam => AdamConfig::new().with_weight_decay(wd).init(),
        Optimizer::Adamw => AdamWConfig::new()
            .with_weight_decay(t.weight_decay as f32)
            .init(),
        Optimizer::Sgd => SgdConfig::new().with_weight_decay(wd).init(),
    })
}

/// Learning rate at `step` of `total`: constant, or OneCycle (cosine warm-up over the first
/// 30% from lr/25 to lr, then cosine annealing to lr/25e4).
fn lr_at(cfg: &TrainConfig, step: usize, total: usize) -> f64 {
    let lr = cfg.training.learning_rate;
    match cfg.training.schedule {
        Schedule::Constant => lr,
        Schedule::Onecycle => {
            let warm = (0.3 * total as f64).max(1.0);
            let s = step as f64;
            let cos = |a: f64, b: f64, t: f64| {
                b + (a - b) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0
            };
            if s < warm {
                cos(lr / 25.0, lr, s / warm)
            } else {
                cos(
                    lr,
                    lr / 25e4,
                    ((s - warm) / (total as f64 - warm).max(1.0)).min(1.0),
                )
            }
        }
    }
}

/// Per-class factors making both classes weigh the same in the loss (training split).
fn class_factors(d: &Data, rows: &[usize], balance: bool) -> [f32; 2] {
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

struct Batcher<'a> {
    d: &'a Data,
    mean: &'a [f32],
    std: &'a [f32],
    cls: [f32; 2],
    /// Evaluate at this PNN parameter value instead of each event's own.
    param_at: Option<f32>,
}

impl Batcher<'_> {
    /// (x, y, w, sum w) tensors of `rows`.
    fn tensors(&mut self, rows: &[usize], dev: &Device) -> (Tensor<2>, Tensor<2>, Tensor<2>, f32) {
        let buf = gather(self.d, rows, self.mean, self.std, self.param_at);
        let n = rows.len();
        let x = Tensor::<2>::from_data(TensorData::new(buf, [n, self.d.width()]), dev);
        let y: Vec<f32> = rows.iter().map(|&r| self.d.y[r]).collect();
        let w: Vec<f32> = rows
            .iter()
            .map(|&r| self.d.w[r] * self.cls[self.d.y[r] as usize])
            .collect();
        let ws = w.iter().sum();
        (
            x,
            Tensor::<2>::from_data(TensorData::new(y, [n, 1]), dev),
            Tensor::<2>::from_data(TensorData::new(w, [n, 1]), dev),
            ws,
        )
    }
}

fn values(t: Tensor<2>, what: &'static str) -> Result<Vec<f32>, TrainError> {
    f32_values(t.into_data(), what)
}

/// Weighted loss and accuracy of `net` (evaluation mode) on `rows`.
fn evaluate(
    net: &Net,
    b: &mut Batcher,
    rows: &[usize],
    dev: &Device,
) -> Result<(f64, f64, Vec<f32>), TrainError> {
    let (mut lsum, mut wsum, mut correct) = (0f64, 0f64, 0f64);
    let mut scores = Vec::with_capacity(rows.len());
    for part in rows.chunks(EVAL_ROWS) {
        let (x, y, w, ws) = b.tensors(part, dev);
        let z = net.forward(x);
        lsum += values(loss(z.clone(), y, w, 1.0).reshape([1, 1]), "the loss")?[0] as f64;
        wsum += ws as f64;
        for (&r, zi) in part.iter().zip(values(z, "the scores")?) {
            let s = 1.0 / (1.0 + (-zi).exp());
            correct += ((s > 0.5) == (b.d.y[r] == 1.0)) as u8 as f64
                * (b.d.w[r] * b.cls[b.d.y[r] as usize]) as f64;
            scores.push(s);
        }
    }
    Ok((lsum / wsum.max(1e-12), correct / wsum.max(1e-12), scores))
}

/// The device `name` names: `cpu` (burn's flex backend) or, built with the `gpu` feature,
/// `wgpu`.
pub fn device(name: &str) -> Result<Device, TrainError> {
    match name {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "gpu")]
        "wgpu" | "gpu" => Ok(Device::wgpu(Default::default())),
        #[cfg(not(feature = "gpu"))]
        "wgpu" | "gpu" => Err(data_err(
            "device wgpu: this hepml was built without the `gpu` feature (cargo build --features gpu)",
        )),
        other => Err(data_err(format!("unknown device `{other}` (cpu, wgpu)"))),
    }
}

/// Trains every fold; `progress(fold, epoch, valid_loss)` after each epoch.
pub fn train(
    cfg: &TrainConfig,
    d: &Data,
    seed: u64,
    config_hash: &str,
    base: Device,
    mut progress: impl FnMut(usize, usize, f64),
) -> Result<Outcome, TrainError> {
    base.seed(seed);
    let dev = base.clone().autodiff();
    let t = &cfg.training;
    let folds = splits(cfg, d, seed);
    for (i, s) in folds.iter().enumerate() {
        if s.train.is_empty() || s.valid.is_empty() || s.test.is_empty() {
            return Err(data_err(format!(
                "fold {i}: {} train, {} valid, {} test events: too few events for the split",
                s.train.len(),
                s.valid.len(),
                s.test.len()
            )));
        }
    }
    let mut saved = Vec::new();
    let mut histories = Vec::new();
    let mut tests = Vec::new();
    let mut lr_finder = None;
    // Events through the epoch loops (training steps and each epoch's validation) over the
    // time spent in them: preparation and the LR finder are not counted.
    let mut seen = 0usize;
    let mut looped = std::time::Duration::ZERO;
    let mut rng = Rng::new(seed ^ 0xB47C);
    let mut background_at: Vec<(f32, Vec<f32>)> = parameter_values(cfg, d)
        .into_iter()
        .map(|v| (v, Vec::new()))
        .collect();
    for (fi, s) in folds.iter().enumerate() {
        let (mean, std) = standardise(d, &s.train);
        let cls = class_factors(d, &s.train, cfg.preparation.balance_classes);
        let mut b = Batcher {
            d,
            mean: &mean,
            std: &std,
            cls,
            param_at: None,
        };
        if t.lr_finder && fi == 0 {
            lr_finder = Some(find_lr(cfg, d, s, &mut b, &dev, &mut rng)?);
        }
        let mut net = Net::new(cfg, d.width(), &dev);
        let Opt::Adam(mut opt) = optimizer(cfg);
        let steps_per_epoch = s.train.len().div_ceil(t.batch_size);
        let total = steps_per_epoch * t.epochs;
        let mut h = History::default();
        let mut best: Option<(f64, Net)> = None;
        let mut order = s.train.clone();
        let mut step = 0;
        let t0 = std::time::Instant::now();
        for epoch in 0..t.epochs {
            rng.shuffle(&mut order);
            let (mut lsum, mut wsum, mut correct) = (0f64, 0f64, 0f64);
            for rows in order.chunks(t.batch_size) {
                let (x, y, w, ws) = b.tensors(rows, &dev);
                let z = net.forward(x);
                let l = loss(z.clone(), y, w, ws);
                let lv = values(l.clone().reshape([1, 1]), "the loss")?[0] as f64;
                for (&r, zi) in rows.iter().zip(values(z.detach(), "the scores")?) {
                    correct += ((zi > 0.0) == (d.y[r] == 1.0)) as u8 as f64
                        * (d.w[r] * cls[d.y[r] as usize]) as f64;
                }
                lsum += lv * ws as f64;
                wsum += ws as f64;
                let lr = lr_at(cfg, step, total);
                let grads = GradientsParams::from_grads(l.backward(), &net);
                net = opt.step(lr, net, grads);
                step += 1;
                seen += rows.len();
            }
            let (vl, va, _) = evaluate(&net.valid(), &mut b, &s.valid, &base)?;
            h.train_loss.push(lsum / wsum.max(1e-12));
            h.train_accuracy.push(correct / wsum.max(1e-12));
            h.valid_loss.push(vl);
            h.valid_accuracy.push(va);
            h.learning_rate
                .push(lr_at(cfg, step.saturating_sub(1), total));
            progress(fi, epoch, vl);
            if best.as_ref().is_none_or(|(bl, _)| vl < *bl) {
                best = Some((vl, net.clone()));
                h.best_epoch = epoch;
            } else if t.patience.is_some_and(|p| epoch - h.best_epoch >= p) {
                break;
            }
        }
        looped += t0.elapsed();
        let net = best.map(|(_, n)| n).unwrap_or(net).valid();
        let (_, _, scores) = evaluate(&net, &mut b, &s.test, &base)?;
        saved.push(FoldModel {
            mean: mean.clone(),
            std: std.clone(),
            layers: net.dense_layers()?,
        });
        tests.push((s.test.clone(), scores));
        // A search at parameter value v scores its background at v: every test background
        // event once per value.
        let bkg: Vec<usize> = if background_at.is_empty() {
            Vec::new()
        } else {
            s.test.iter().copied().filter(|&r| d.y[r] == 0.0).collect()
        };
        for (v, acc) in background_at.iter_mut() {
            b.param_at = Some(*v);
            acc.extend(evaluate(&net, &mut b, &bkg, &base)?.2);
        }
        histories.push(h);
    }
    let model = SavedModel {
        hepml_version: env!("CARGO_PKG_VERSION").into(),
        inputs: cfg.features.inputs.clone(),
        sources: d.sources.clone(),
        parameter: d.param.map(|p| d.names[p].clone()),
        label: cfg.features.label.clone(),
        activation: format!("{:?}", cfg.model.activation).to_lowercase(),
        kfold: cfg.preparation.kfold.as_ref().map(|k| KFold {
            k: k.k as usize,
            branch: k.branch.clone(),
        }),
        config_hash: config_hash.into(),
        folds: saved,
    };
    Ok(Outcome {
        model,
        histories,
        test: tests,
        background_at,
        lr_finder,
        events_per_second: seen as f64 / looped.as_secs_f64().max(1e-9),
    })
}

/// LR range test: one pass of up to 200 batches with the rate growing exponentially from 1e-6
/// to 1, recording the smoothed loss; suggests the rate of the steepest descent.
fn find_lr(
    cfg: &TrainConfig,
    d: &Data,
    s: &Split,
    b: &mut Batcher,
    dev: &Device,
    rng: &mut Rng,
) -> Result<(Vec<f64>, Vec<f64>, f64), TrainError> {
    let mut net = Net::new(cfg, d.width(), dev);
    let Opt::Adam(mut opt) = optimizer(cfg);
    let mut order = s.train.clone();
    rng.shuffle(&mut order);
    let batches: Vec<&[usize]> = order.chunks(cfg.training.batch_size).take(200).collect();
    let n = batches.len().max(2);
    let (mut lrs, mut losses) = (Vec::new(), Vec::new());
    let (mut avg, mut best) = (0f64, f64::INFINITY);
    for (i, rows) in batches.iter().enumerate() {
        let lr = 1e-6 * (1e6f64).powf(i as f64 / (n - 1) as f64);
        let (x, y, w, ws) = b.tensors(rows, dev);
        let l = loss(net.forward(x), y, w, ws);
        let lv = values(l.clone().reshape([1, 1]), "the loss")?[0] as f64;
        avg = 0.98 * avg + 0.02 * lv;
        let smooth = avg / (1.0 - 0.98f64.powi(i as i32 + 1));
        lrs.push(lr);
        losses.push(smooth);
        best = best.min(smooth);
        if !smooth.is_finite() || smooth > 4.0 * best {
            break;
        }
        let grads = GradientsParams::from_grads(l.backward(), &net);
        net = opt.step(lr, net, grads);
    }
    let suggested = (1..losses.len())
        .min_by(|&a, &c| {
            let g = |k: usize| (losses[k] - losses[k - 1]) / (lrs[k].ln() - lrs[k - 1].ln());
            g(a).total_cmp(&g(c))
        })
        .map_or(cfg.training.learning_rate, |k| lrs[k]);
    Ok((lrs, losses, suggested))
}

/// Area under the ROC curve (ties count half), unweighted.
pub fn auc(scores: &[f32], labels: &[f32]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut npos) = (0f64, 0f64);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] == 1.0 {
                rank_sum += avg_rank;
                npos += 1.0;
            }
        }
        i = j + 1;
    }
    let nneg = scores.len() as f64 - npos;
    if npos == 0.0 || nneg == 0.0 {
        return f64::NAN;
    }
    (rank_sum - npos * (npos + 1.0) / 2.0) / (npos * nneg)
}

/// ROC curve points (false and true positive rates) at `n` score thresholds.
pub fn roc(scores: &[f32], labels: &[f32], n: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut fpr, mut tpr) = (Vec::new(), Vec::new());
    let npos = labels.iter().filter(|&&l| l == 1.0).count().max(1) as f64;
    let nneg = (labels.len() as f64 - npos).max(1.0);
    for k in 0..=n {
        let cut = 1.0 - k as f32 / n as f32;
        let (mut tp, mut fp) = (0f64, 0f64);
        for (s, l) in scores.iter().zip(labels) {
            if *s >= cut {
                if *l == 1.0 {
                    tp += 1.0;
                } else {
                    fp += 1.0;
                }
            }
        }
        fpr.push(fp / nneg);
        tpr.push(tp / npos);
    }
    (fpr, tpr)
}

/// Writes a little-endian float32 .npy array.
pub fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), TrainError> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let dims = if dims.len() == 1 {
        format!("{},", dims[0])
    } else {
        dims.join(", ")
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for v in data {
        out.extend(v.to_le_bytes());
    }
    std::fs::write(path, out).map_err(io(path))
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

/// Test-split metrics over all folds (each event scored by the fold that did not train on it).
pub fn metrics(d: &Data, out: &Outcome) -> serde_json::Value {
    let mut scores = Vec::new();
    let mut labels = Vec::new();
    for (rows, s) in &out.test {
        scores.extend(s);
        labels.extend(rows.iter().map(|&r| d.y[r]));
    }
    let (fpr, tpr) = roc(&scores, &labels, 100);
    let mut conf = [[0u64; 2]; 2];
    for (s, l) in scores.iter().zip(&labels) {
        conf[*l as usize][(*s > 0.5) as usize] += 1;
    }
    let per_param: BTreeMap<String, f64> = per_parameter(d, out)
        .into_iter()
        .map(|(v, s, l)| (v.to_string(), auc(&s, &l)))
        .collect();
    let acc = (conf[0][0] + conf[1][1]) as f64 / scores.len().max(1) as f64;
    serde_json::json!({
        "test": {
            "auc": auc(&scores, &labels),
            "accuracy": acc,
            "confusion": {"rows": "true class (0 background, 1 signal)", "columns": "predicted (score > 0.5)", "matrix": conf},
            "events": scores.len(),
            "roc": {"fpr": fpr, "tpr": tpr},
            "auc_per_parameter": per_param,
        },
        "folds": out.histories,
        "lr_finder": out.lr_finder.as_ref().map(|(l, s, sug)| serde_json::json!({"lr": l, "loss": s, "suggested": sug})),
        "events_per_second": out.events_per_second,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tensor that is not float32 cannot come out of the network from any config (burn
    /// computes in f32 on both backends), so the error path is exercised here directly.
    #[test]
    fn non_f32_tensor_is_an_error_not_an_empty_vector() {
        let ints = TensorData::new(vec![1i32, 2, 3], [3]);
        let err = f32_values(ints, "the scores").unwrap_err();
        assert!(
            matches!(
                err,
                TrainError::Tensor {
                    what: "the scores",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("reading the scores back from burn"),
            "{err}"
        );
        let floats = TensorData::new(vec![1f32, 2.0], [2]);
        assert_eq!(f32_values(floats, "x").unwrap(), vec![1.0, 2.0]);
    }
}
