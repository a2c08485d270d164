//! The fit: loss, optimiser, learning-rate schedule, batching, the epoch loop with early
//! stopping per fold, and the LR finder.

use burn::module::Module;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, SgdConfig};
use burn::tensor::{activation, Device, Tensor, TensorData};
use serde::Serialize;

use crate::config::{Optimizer, Schedule, TrainConfig};
use crate::metrics::auc_weighted;
use crate::rng::Rng;

use super::data::{class_factors, gather, parameter_values, splits, standardise, Data, Split};
use super::net::{DenseFold, FoldModel, Net, SavedModel};
use super::{data_err, f32_values, TrainError};

/// Rows scored per forward pass when evaluating a split: big enough to amortise the call, small
/// enough that its activations (rows x width x layers) stay a few MB.
const EVAL_ROWS: usize = 8192;

/// Per-epoch history of one fold.
#[derive(Debug, Clone, Default, Serialize)]
pub struct History {
    pub train_loss: Vec<f64>,
    pub valid_loss: Vec<f64>,
    pub train_accuracy: Vec<f64>,
    pub valid_accuracy: Vec<f64>,
    pub learning_rate: Vec<f64>,
    pub best_epoch: usize,
    /// AUC of the kept (best-epoch) network on this fold's training events, event weights
    /// applied: against `valid_auc` it shows overfitting, and hyperparameter scans plot both.
    pub train_auc: f64,
    /// AUC of the kept network on this fold's validation events, event weights applied.
    pub valid_auc: f64,
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
    /// Training events x epochs (trees) per second.
    pub events_per_second: f64,
    /// Tree ensembles: the importance per feature.
    pub importance: Option<super::trees::TreeImportance>,
    /// What the user should know but did not stop the training (one line each).
    pub warnings: Vec<String>,
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

/// Weighted AUC of `scores` on `rows` (the events' own weights, not the class balancing).
pub(super) fn split_auc(d: &Data, rows: &[usize], scores: &[f32]) -> f64 {
    let y: Vec<f32> = rows.iter().map(|&r| d.y[r]).collect();
    let w: Vec<f32> = rows.iter().map(|&r| d.w[r]).collect();
    auc_weighted(scores, &y, Some(&w))
}

/// Where training runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// burn's flex backend on the CPU.
    Cpu,
    /// burn's wgpu backend on the first GPU (Vulkan/Metal/DX12); needs the `gpu` feature.
    Wgpu,
}

/// The burn device of `kind`; an error for wgpu in a build without the `gpu` feature.
pub fn device(kind: DeviceKind) -> Result<Device, TrainError> {
    match kind {
        DeviceKind::Cpu => Ok(Device::flex()),
        #[cfg(feature = "gpu")]
        DeviceKind::Wgpu => Ok(Device::wgpu(Default::default())),
        #[cfg(not(feature = "gpu"))]
        DeviceKind::Wgpu => Err(data_err(
            "device wgpu: this hepml was built without the `gpu` feature (cargo build --features gpu)",
        )),
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
    let Some(net_cfg) = cfg.model.net() else {
        return Err(data_err(
            "this trainer fits networks (model.type dnn or pnn)",
        ));
    };
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
        let mut net = Net::new(net_cfg, d.width(), &dev);
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
            // The epoch's loss and accuracy are summed on the device and read once per epoch:
            // a read per step makes a GPU wait at every step (on an H200 with wgpu, 6-256x3-1 at
            // batch 4096: 395k events/s this way, 357k with the reads).
            let mut lsum_t = Tensor::<1>::zeros([1], &dev);
            let mut correct_t = Tensor::<1>::zeros([1], &dev);
            let mut wsum = 0f64;
            for rows in order.chunks(t.batch_size) {
                let (x, y, w, ws) = b.tensors(rows, &dev);
                let z = net.forward(x);
                let hit = (z.clone().detach().greater_elem(0.0))
                    .equal(y.clone().greater_elem(0.5))
                    .float();
                correct_t = correct_t + (hit * w.clone()).sum();
                let l = loss(z, y, w, ws);
                lsum_t = lsum_t + l.clone().detach().mul_scalar(ws);
                wsum += ws as f64;
                let lr = lr_at(cfg, step, total);
                let grads = GradientsParams::from_grads(l.backward(), &net);
                net = opt.step(lr, net, grads);
                step += 1;
                seen += rows.len();
            }
            let lsum = values(lsum_t.reshape([1, 1]), "the loss")?[0] as f64;
            let correct = values(correct_t.reshape([1, 1]), "the accuracy")?[0] as f64;
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
        h.train_auc = split_auc(d, &s.train, &evaluate(&net, &mut b, &s.train, &base)?.2);
        h.valid_auc = split_auc(d, &s.valid, &evaluate(&net, &mut b, &s.valid, &base)?.2);
        saved.push(FoldModel::Dense(DenseFold {
            mean: mean.clone(),
            std: std.clone(),
            layers: net.dense_layers()?,
        }));
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
    let activation = format!("{:?}", net_cfg.activation).to_lowercase();
    let model = SavedModel::new(cfg, d, config_hash, activation, saved);
    Ok(Outcome {
        model,
        histories,
        test: tests,
        background_at,
        lr_finder,
        events_per_second: seen as f64 / looped.as_secs_f64().max(1e-9),
        importance: None,
        warnings: Vec::new(),
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
    let net_cfg = cfg
        .model
        .net()
        .ok_or_else(|| data_err("the LR finder is for networks"))?;
    let mut net = Net::new(net_cfg, d.width(), dev);
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
