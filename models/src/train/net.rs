//! The network and what is saved of it: dense layers with optional batch norm, folded into
//! plain dense layers for `model.json`.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{activation, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::{Activation, NetConfig};
use crate::trees::Ensemble;

use super::{f32_values, TrainError};

/// The network: hidden dense layers (optional batch norm), activation, dropout, one logit.
#[derive(Module, Debug)]
pub struct Net {
    hidden: Vec<Linear>,
    norms: Vec<BatchNorm>,
    out: Linear,
    dropout: Dropout,
    act: usize,
}

const ACTS: [Activation; 5] = [
    Activation::Relu,
    Activation::Swish,
    Activation::Tanh,
    Activation::Elu,
    Activation::Gelu,
];

impl Net {
    pub fn new(m: &NetConfig, inputs: usize, device: &Device) -> Self {
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

/// One fold's model: dense layers with the inputs' standardisation, or a tree ensemble.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FoldModel {
    Dense(DenseFold),
    Trees(Ensemble),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DenseFold {
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
    /// The hidden layers' activation (empty for tree ensembles).
    pub activation: String,
    pub kfold: Option<KFold>,
    pub config_hash: String,
    pub folds: Vec<FoldModel>,
}

impl SavedModel {
    /// The model of a run of `cfg` on `d`: its inputs, label, fold routing and `folds`.
    pub fn new(
        cfg: &crate::config::TrainConfig,
        d: &super::Data,
        config_hash: &str,
        activation: String,
        folds: Vec<FoldModel>,
    ) -> Self {
        SavedModel {
            hepml_version: env!("CARGO_PKG_VERSION").into(),
            inputs: cfg.features.inputs.clone(),
            sources: d.sources.clone(),
            parameter: d.param.map(|p| d.names[p].clone()),
            label: cfg.features.label.clone(),
            activation,
            kfold: cfg.preparation.kfold.as_ref().map(|k| KFold {
                k: k.k as usize,
                branch: k.branch.clone(),
            }),
            config_hash: config_hash.into(),
            folds,
        }
    }
}
