//! The `model` block of `hepml train`: a network (`dnn`, `pnn`) or a tree ensemble (`bdt`,
//! `random_forest`), one set of keys per type.

use serde::Deserialize;

use super::default_true;

/// What `model.type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Plain multi-layer perceptron.
    Dnn,
    /// Parameterised NN: the parameter (e.g. mass) is an extra input.
    Pnn,
    /// Histogram gradient-boosted trees.
    Bdt,
    /// A random forest of classification trees.
    RandomForest,
}

impl ModelKind {
    pub fn is_trees(self) -> bool {
        matches!(self, ModelKind::Bdt | ModelKind::RandomForest)
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Swish,
    Tanh,
    Elu,
    Gelu,
}

/// The `model` block: `type` (default `dnn`) says which of the blocks below it is, and each
/// rejects the keys of the others.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    Dnn(NetConfig),
    Pnn(NetConfig),
    Bdt(BdtConfig),
    RandomForest(ForestConfig),
}

/// The tagged form serde reads once `type` is known to be there.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TaggedModel {
    Dnn(NetConfig),
    Pnn(NetConfig),
    Bdt(BdtConfig),
    RandomForest(ForestConfig),
}

impl<'de> Deserialize<'de> for ModelConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The block is read as a map inside the visitor, so that an error in it (an unknown
        // key, a missing one) carries the block's line and column like the other blocks'.
        struct Block;
        impl<'de> serde::de::Visitor<'de> for Block {
            type Value = ModelConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a model block such as {type: dnn, width: 64, depth: 3}")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ModelConfig, A::Error> {
                use serde::de::Error;
                let mut m = yaml_serde::Mapping::new();
                while let Some((k, v)) = map.next_entry::<yaml_serde::Value, yaml_serde::Value>()? {
                    m.insert(k, v);
                }
                if !m.contains_key("type") {
                    m.insert("type".into(), "dnn".into());
                }
                let t: TaggedModel = yaml_serde::from_value(yaml_serde::Value::Mapping(m))
                    .map_err(A::Error::custom)?;
                Ok(match t {
                    TaggedModel::Dnn(n) => ModelConfig::Dnn(n),
                    TaggedModel::Pnn(n) => ModelConfig::Pnn(n),
                    TaggedModel::Bdt(b) => ModelConfig::Bdt(b),
                    TaggedModel::RandomForest(f) => ModelConfig::RandomForest(f),
                })
            }
        }
        d.deserialize_map(Block)
    }
}

impl ModelConfig {
    pub fn kind(&self) -> ModelKind {
        match self {
            ModelConfig::Dnn(_) => ModelKind::Dnn,
            ModelConfig::Pnn(_) => ModelKind::Pnn,
            ModelConfig::Bdt(_) => ModelKind::Bdt,
            ModelConfig::RandomForest(_) => ModelKind::RandomForest,
        }
    }

    /// The network of a `dnn` or `pnn`.
    pub fn net(&self) -> Option<&NetConfig> {
        match self {
            ModelConfig::Dnn(n) | ModelConfig::Pnn(n) => Some(n),
            _ => None,
        }
    }

    /// Whether the loss is the binary cross-entropy on 0/1 labels (everything but a `bdt`
    /// with `objective: regression`).
    pub fn is_classifier(&self) -> bool {
        !matches!(
            self,
            ModelConfig::Bdt(BdtConfig {
                objective: Objective::Regression,
                ..
            })
        )
    }
}

/// `model: {type: dnn | pnn, ...}`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// Hidden layer width.
    #[serde(default = "default_width")]
    pub width: usize,
    /// Number of hidden layers.
    #[serde(default = "default_depth")]
    pub depth: usize,
    #[serde(default = "default_activation")]
    pub activation: Activation,
    #[serde(default)]
    pub dropout: f64,
    #[serde(default)]
    pub batch_norm: bool,
}

/// What a `bdt` minimises.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Binary log loss on 0/1 labels; the score is the logistic function of the sum.
    Binary,
    /// Squared error on the label's value; the score is the sum.
    Regression,
}

/// `model: {type: bdt, ...}`: histogram gradient boosting (second-order, as XGBoost's `hist`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BdtConfig {
    #[serde(default = "default_objective")]
    pub objective: Objective,
    #[serde(default = "default_n_trees")]
    pub n_trees: usize,
    #[serde(default = "default_eta")]
    pub learning_rate: f64,
    /// Splits on the longest path (default 6 unless `max_leaves` is given).
    #[serde(default)]
    pub max_depth: Option<usize>,
    /// Leaves per tree, grown best gain first.
    #[serde(default)]
    pub max_leaves: Option<usize>,
    /// Hessian sum each child keeps.
    #[serde(default = "default_one")]
    pub min_child_weight: f64,
    /// L2 regularisation of the leaf values.
    #[serde(default = "default_one")]
    pub l2: f64,
    /// Fraction of the training events each tree sees.
    #[serde(default = "default_one")]
    pub subsample: f64,
    /// Fraction of the features each tree may split on.
    #[serde(default = "default_one")]
    pub colsample: f64,
    /// Bin edges (candidate thresholds) per feature, 2 to 254.
    #[serde(default = "default_bins")]
    pub max_bins: usize,
    /// Stop after this many trees without a lower valid loss (the best iteration is kept).
    #[serde(default)]
    pub patience: Option<usize>,
}

/// What a forest's splits lower.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Criterion {
    Gini,
    Entropy,
}

/// Features tried at each split of a forest's tree.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum MaxFeatures {
    /// `sqrt`, `log2` or `all`.
    Rule(FeatureRule),
    /// A count (>= 1) or a fraction (< 1) of the features.
    Number(f64),
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FeatureRule {
    Sqrt,
    Log2,
    All,
}

impl MaxFeatures {
    /// Features per split out of `n` (at least 1, at most `n`).
    pub fn count(self, n: usize) -> usize {
        let k = match self {
            MaxFeatures::Rule(FeatureRule::Sqrt) => (n as f64).sqrt() as usize,
            MaxFeatures::Rule(FeatureRule::Log2) => (n as f64).log2() as usize,
            MaxFeatures::Rule(FeatureRule::All) => n,
            MaxFeatures::Number(x) if x < 1.0 => (x * n as f64) as usize,
            MaxFeatures::Number(x) => x as usize,
        };
        k.clamp(1, n.max(1))
    }
}

/// `model: {type: random_forest, ...}`: classification trees on bootstrap samples, averaged.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ForestConfig {
    #[serde(default = "default_n_trees")]
    pub n_trees: usize,
    /// Splits on the longest path (default: grown until the leaves are pure).
    #[serde(default)]
    pub max_depth: Option<usize>,
    #[serde(default = "default_max_features")]
    pub max_features: MaxFeatures,
    #[serde(default = "default_criterion")]
    pub criterion: Criterion,
    /// Each tree on a bootstrap sample (else on all training events).
    #[serde(default = "default_true")]
    pub bootstrap: bool,
    /// Bin edges (candidate thresholds) per feature, 2 to 254.
    #[serde(default = "default_bins")]
    pub max_bins: usize,
}

fn default_objective() -> Objective {
    Objective::Binary
}
fn default_n_trees() -> usize {
    100
}
fn default_eta() -> f64 {
    0.1
}
fn default_one() -> f64 {
    1.0
}
fn default_bins() -> usize {
    crate::trees::MAX_BINS
}
fn default_max_features() -> MaxFeatures {
    MaxFeatures::Rule(FeatureRule::Sqrt)
}
fn default_criterion() -> Criterion {
    Criterion::Gini
}
fn default_width() -> usize {
    100
}
fn default_depth() -> usize {
    2
}
fn default_activation() -> Activation {
    Activation::Relu
}
