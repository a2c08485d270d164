//! Configuration files of `hepml convert` and `hepml train`.
//!
//! Every block rejects unknown keys (`deny_unknown_fields`), so a typo such as `lerning_rate`
//! is an error that names the key instead of a silently ignored setting. After parsing,
//! [`ConvertConfig::validate`] / [`TrainConfig::validate`] check what serde cannot: feature
//! expressions parse, fractions add up, fold counts make sense.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use injector::expr::Expr;
use serde::Deserialize;

/// A configuration file that could not be read, parsed or validated.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// yaml_serde's message names the unknown or missing key and its line/column.
    #[error("config {path}: {source}")]
    Parse {
        path: PathBuf,
        source: yaml_serde::Error,
    },
    #[error("config {path}: {what}")]
    Invalid { path: PathBuf, what: String },
}

fn read_yaml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_yaml(&text, path)
}

fn parse_yaml<T: for<'de> Deserialize<'de>>(text: &str, path: &Path) -> Result<T, ConfigError> {
    yaml_serde::from_str(text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

fn check_exprs(path: &Path, what: &str, exprs: &[String]) -> Result<(), ConfigError> {
    for e in exprs {
        Expr::parse(e).map_err(|err| ConfigError::Invalid {
            path: path.to_owned(),
            what: format!("{what} `{e}`: {err}"),
        })?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// convert
// ---------------------------------------------------------------------------------------------

/// `hepml convert` config: which columns to compute from which samples.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConvertConfig {
    /// Tree name, shared by all samples unless a sample overrides it.
    pub tree: String,
    /// Output columns: a branch name or an expression (`log(pt)`, `Jet_pt[0]`). The column is
    /// named by `name` when given, else by the expression text.
    pub columns: Vec<Column>,
    /// Selection applied to every sample (an expression; events where it is non-zero are kept).
    #[serde(default)]
    pub selection: Option<String>,
    /// Per-event weight expression applied to every sample (default 1).
    #[serde(default)]
    pub weight: Option<String>,
    /// Event-number branch copied to the output (needed for k-fold splitting).
    #[serde(default)]
    pub event_number: Option<String>,
    pub samples: Vec<Sample>,
    /// Events per chunk while streaming (memory bound).
    #[serde(default = "default_chunk")]
    pub chunk_size: usize,
    /// pandas layout of the output: `fixed` (default, fastest) or `table` (queryable with
    /// `pd.read_hdf(f, key, where=...)`).
    #[serde(default)]
    pub format: crate::h5::Format,
}

fn default_chunk() -> usize {
    100_000
}

/// One output column.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Column {
    Expr(String),
    Named(NamedColumn),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NamedColumn {
    pub name: String,
    pub expr: String,
}

impl Column {
    pub fn name(&self) -> &str {
        match self {
            Column::Expr(e) => e,
            Column::Named(n) => &n.name,
        }
    }
    pub fn expr(&self) -> &str {
        match self {
            Column::Expr(e) => e,
            Column::Named(n) => &n.expr,
        }
    }
}

/// One input sample: a set of files with a class label.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    pub name: String,
    /// Paths or glob patterns.
    pub files: Vec<String>,
    /// Class label written to the `label` column (1 signal, 0 background).
    pub label: u32,
    #[serde(default)]
    pub tree: Option<String>,
    /// Extra selection for this sample, and-ed with the global one.
    #[serde(default)]
    pub selection: Option<String>,
    /// Weight expression for this sample, multiplied with the global one.
    #[serde(default)]
    pub weight: Option<String>,
    /// Constant extra columns, e.g. `{mass: 500}` for a PNN signal sample.
    #[serde(default)]
    pub extra: BTreeMap<String, f64>,
}

impl ConvertConfig {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let c: Self = read_yaml(path)?;
        c.validate(path)?;
        Ok(c)
    }

    pub fn from_str(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let c: Self = parse_yaml(text, path)?;
        c.validate(path)?;
        Ok(c)
    }

    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |what: String| ConfigError::Invalid {
            path: path.to_owned(),
            what,
        };
        if self.columns.is_empty() {
            return Err(bad("`columns` is empty".into()));
        }
        if self.samples.is_empty() {
            return Err(bad("`samples` is empty".into()));
        }
        if self.chunk_size == 0 {
            return Err(bad("`chunk_size` must be positive".into()));
        }
        let exprs: Vec<String> = self.columns.iter().map(|c| c.expr().to_owned()).collect();
        check_exprs(path, "column", &exprs)?;
        let mut names = std::collections::HashSet::new();
        for c in &self.columns {
            if !names.insert(c.name()) {
                return Err(bad(format!("column name `{}` appears twice", c.name())));
            }
        }
        check_exprs(path, "selection", self.selection.as_slice())?;
        check_exprs(path, "weight", self.weight.as_slice())?;
        let mut labels = std::collections::BTreeSet::new();
        for s in &self.samples {
            if s.files.is_empty() {
                return Err(bad(format!("sample `{}` has no files", s.name)));
            }
            check_exprs(path, "selection", s.selection.as_slice())?;
            check_exprs(path, "weight", s.weight.as_slice())?;
            for k in s.extra.keys() {
                if names.contains(k.as_str()) {
                    return Err(bad(format!(
                        "sample `{}`: extra column `{k}` clashes with a column",
                        s.name
                    )));
                }
            }
            labels.insert(s.label);
        }
        if labels.len() < 2 {
            return Err(bad(format!(
                "all samples have label {:?}: training needs signal (1) and background (0)",
                labels
            )));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// train
// ---------------------------------------------------------------------------------------------

/// `hepml train` config, in the blocks physicists know.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub model: ModelConfig,
    pub data: DataConfig,
    #[serde(default)]
    pub preparation: PreparationConfig,
    pub features: FeaturesConfig,
    #[serde(default)]
    pub training: TrainingConfig,
    #[serde(default)]
    pub evaluation: EvaluationConfig,
}

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
        use serde::de::Error;
        let mut v = yaml_serde::Value::deserialize(d)?;
        if let yaml_serde::Value::Mapping(m) = &mut v {
            if !m.contains_key("type") {
                m.insert("type".into(), "dnn".into());
            }
        }
        let t: TaggedModel =
            yaml_serde::from_value(v).map_err(|e| D::Error::custom(format!("model: {e}")))?;
        Ok(match t {
            TaggedModel::Dnn(n) => ModelConfig::Dnn(n),
            TaggedModel::Pnn(n) => ModelConfig::Pnn(n),
            TaggedModel::Bdt(b) => ModelConfig::Bdt(b),
            TaggedModel::RandomForest(f) => ModelConfig::RandomForest(f),
        })
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

/// HDF5 inputs written by `hepml convert` (or pandas `table`/`fixed` files).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Files whose events are all signal (label 1).
    #[serde(default)]
    pub signal: Vec<PathBuf>,
    /// Files whose events are all background (label 0).
    #[serde(default)]
    pub background: Vec<PathBuf>,
    /// Files with a label column (what `hepml convert` writes).
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// HDF5 key (pandas `key=`); default `events`.
    #[serde(default = "default_key")]
    pub key: String,
}

fn default_key() -> String {
    "events".into()
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PreparationConfig {
    #[serde(default = "default_train")]
    pub train_fraction: f64,
    #[serde(default = "default_valid")]
    pub valid_fraction: f64,
    #[serde(default = "default_test")]
    pub test_fraction: f64,
    /// k-fold by event number: fold i trains on `event % k != i`, scores `event % k == i`.
    #[serde(default)]
    pub kfold: Option<KFoldConfig>,
    /// Reweight classes to equal total weight in the loss.
    #[serde(default = "default_true")]
    pub balance_classes: bool,
}

impl Default for PreparationConfig {
    fn default() -> Self {
        Self {
            train_fraction: default_train(),
            valid_fraction: default_valid(),
            test_fraction: default_test(),
            kfold: None,
            balance_classes: true,
        }
    }
}

fn default_train() -> f64 {
    0.6
}
fn default_valid() -> f64 {
    0.2
}
fn default_test() -> f64 {
    0.2
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KFoldConfig {
    pub k: u32,
    /// Event-number column.
    #[serde(default = "default_event_branch")]
    pub branch: String,
}

fn default_event_branch() -> String {
    "event".into()
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeaturesConfig {
    /// Input columns, in order.
    pub inputs: Vec<String>,
    /// Weight column (default: unit weights).
    #[serde(default)]
    pub weight: Option<String>,
    /// Label column.
    #[serde(default = "default_label")]
    pub label: String,
    /// PNN parameter column (e.g. `mass`); required for `model.type: pnn`.
    #[serde(default)]
    pub parameter: Option<String>,
}

fn default_label() -> String {
    "label".into()
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    Adam,
    Adamw,
    Sgd,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    Onecycle,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    #[serde(default = "default_optimizer")]
    pub optimizer: Optimizer,
    #[serde(default = "default_lr")]
    pub learning_rate: f64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Stop after this many epochs without a better validation loss.
    #[serde(default)]
    pub patience: Option<usize>,
    #[serde(default = "default_schedule")]
    pub schedule: Schedule,
    /// Run an LR range test before training and report the suggested rate.
    #[serde(default)]
    pub lr_finder: bool,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            optimizer: default_optimizer(),
            learning_rate: default_lr(),
            weight_decay: 0.0,
            batch_size: default_batch(),
            epochs: default_epochs(),
            patience: None,
            schedule: default_schedule(),
            lr_finder: false,
        }
    }
}

fn default_optimizer() -> Optimizer {
    Optimizer::Adam
}
fn default_lr() -> f64 {
    1e-3
}
fn default_batch() -> usize {
    1024
}
fn default_epochs() -> usize {
    20
}
fn default_schedule() -> Schedule {
    Schedule::Constant
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvaluationConfig {
    #[serde(default = "default_true")]
    pub plots: bool,
    /// Run `hepml explain` on the trained model (train and valid samples) into RUN_DIR/explain.
    #[serde(default)]
    pub explain: bool,
    /// PNN: parameter values to evaluate at (default: every value seen in signal).
    #[serde(default)]
    pub parameter_values: Vec<f64>,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        Self {
            plots: true,
            explain: false,
            parameter_values: Vec::new(),
        }
    }
}

impl TrainConfig {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let c: Self = read_yaml(path)?;
        c.validate(path)?;
        Ok(c)
    }

    pub fn from_str(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let c: Self = parse_yaml(text, path)?;
        c.validate(path)?;
        Ok(c)
    }

    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |what: String| ConfigError::Invalid {
            path: path.to_owned(),
            what,
        };
        self.validate_model().map_err(bad)?;
        let d = &self.data;
        if d.files.is_empty() && (d.signal.is_empty() || d.background.is_empty()) {
            return Err(bad(
                "data needs `files` (tables with a label column) or `signal` and `background`"
                    .into(),
            ));
        }
        let p = &self.preparation;
        for (n, f) in [
            ("train_fraction", p.train_fraction),
            ("valid_fraction", p.valid_fraction),
            ("test_fraction", p.test_fraction),
        ] {
            if !(0.0..=1.0).contains(&f) {
                return Err(bad(format!("preparation.{n} {f} not in [0, 1]")));
            }
        }
        let sum = p.train_fraction + p.valid_fraction + p.test_fraction;
        if (sum - 1.0).abs() > 1e-9 || p.train_fraction == 0.0 {
            return Err(bad(format!(
                "preparation fractions must add up to 1 with train > 0 (got {sum})"
            )));
        }
        if let Some(kf) = &p.kfold {
            if kf.k < 2 {
                return Err(bad(format!("preparation.kfold.k = {} must be >= 2", kf.k)));
            }
        }
        if self.features.inputs.is_empty() {
            return Err(bad("features.inputs is empty".into()));
        }
        match (self.model.kind(), &self.features.parameter) {
            (ModelKind::Pnn, None) => {
                return Err(bad(
                    "model.type pnn needs features.parameter (e.g. `mass`)".into()
                ))
            }
            (ModelKind::Pnn, Some(_)) => {}
            (_, Some(_)) => {
                return Err(bad(
                    "features.parameter is only used by model.type pnn".into()
                ))
            }
            _ => {}
        }
        let t = &self.training;
        if t.batch_size == 0 || t.epochs == 0 {
            return Err(bad(
                "training.batch_size and training.epochs must be positive".into(),
            ));
        }
        if !(t.learning_rate > 0.0 && t.learning_rate.is_finite()) {
            return Err(bad(format!(
                "training.learning_rate {} must be positive",
                t.learning_rate
            )));
        }
        Ok(())
    }

    /// The model block's ranges; tree models take no `training` block.
    fn validate_model(&self) -> Result<(), String> {
        let range = |name: &str, v: f64, lo: f64, hi: f64, lo_open: bool| {
            let ok = v.is_finite() && v <= hi && if lo_open { v > lo } else { v >= lo };
            if ok {
                Ok(())
            } else {
                let open = if lo_open { "(" } else { "[" };
                Err(format!("model.{name} {v} not in {open}{lo}, {hi}]"))
            }
        };
        let bins = |b: usize| {
            if (2..=crate::trees::MAX_BINS).contains(&b) {
                Ok(())
            } else {
                Err(format!(
                    "model.max_bins {b} not in [2, {}]",
                    crate::trees::MAX_BINS
                ))
            }
        };
        let depth = |d: Option<usize>| match d {
            Some(d) if !(1..=crate::trees::MAX_DEPTH).contains(&d) => Err(format!(
                "model.max_depth {d} not in [1, {}]",
                crate::trees::MAX_DEPTH
            )),
            _ => Ok(()),
        };
        if self.model.kind().is_trees() && self.training != TrainingConfig::default() {
            return Err(format!(
                "model.type {}: the `training` block is for dnn and pnn; tree models take their parameters (learning_rate, n_trees, patience) in `model`",
                if self.model.kind() == ModelKind::Bdt { "bdt" } else { "random_forest" }
            ));
        }
        match &self.model {
            ModelConfig::Dnn(m) | ModelConfig::Pnn(m) => {
                if m.width == 0 || m.depth == 0 {
                    return Err("model.width and model.depth must be positive".into());
                }
                if !(0.0..1.0).contains(&m.dropout) {
                    return Err(format!("model.dropout {} not in [0, 1)", m.dropout));
                }
            }
            ModelConfig::Bdt(b) => {
                if b.n_trees == 0 {
                    return Err("model.n_trees must be positive".into());
                }
                range("learning_rate", b.learning_rate, 0.0, 1.0, true)?;
                depth(b.max_depth)?;
                if let Some(l) = b.max_leaves {
                    if !(2..=1 << 16).contains(&l) {
                        return Err(format!("model.max_leaves {l} not in [2, 65536]"));
                    }
                }
                range("min_child_weight", b.min_child_weight, 0.0, f64::MAX, false)?;
                range("l2", b.l2, 0.0, f64::MAX, false)?;
                range("subsample", b.subsample, 0.0, 1.0, true)?;
                range("colsample", b.colsample, 0.0, 1.0, true)?;
                bins(b.max_bins)?;
                if b.patience == Some(0) {
                    return Err("model.patience must be at least 1 tree".into());
                }
            }
            ModelConfig::RandomForest(f) => {
                if f.n_trees == 0 {
                    return Err("model.n_trees must be positive".into());
                }
                depth(f.max_depth)?;
                if let MaxFeatures::Number(x) = f.max_features {
                    if !(x > 0.0 && x.is_finite()) {
                        return Err(format!("model.max_features {x} must be positive"));
                    }
                }
                bins(f.max_bins)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("test.yaml")
    }

    const TRAIN: &str = "
model: {type: dnn, width: 100, depth: 2, activation: swish, dropout: 0.1, batch_norm: true}
data: {signal: [sig.h5], background: [bkg.h5]}
preparation: {train_fraction: 0.6, valid_fraction: 0.2, test_fraction: 0.2, kfold: {k: 2, branch: event}}
features: {inputs: [x0, x1, x2], weight: weight}
training: {optimizer: adam, learning_rate: 0.001, batch_size: 1024, epochs: 5, patience: 3, schedule: onecycle}
";

    #[test]
    fn train_config_parses() {
        let c = TrainConfig::from_str(TRAIN, p()).unwrap();
        assert_eq!(c.model.net().unwrap().activation, Activation::Swish);
        assert_eq!(c.preparation.kfold.as_ref().unwrap().k, 2);
        assert_eq!(c.training.schedule, Schedule::Onecycle);
        assert_eq!(c.features.label, "label");
    }

    #[test]
    fn unknown_key_is_named() {
        let text = TRAIN.replace("learning_rate", "lerning_rate");
        let e = TrainConfig::from_str(&text, p()).unwrap_err().to_string();
        assert!(e.contains("unknown field `lerning_rate`"), "{e}");
        let text = format!("{TRAIN}trainig: {{}}\n");
        let e = TrainConfig::from_str(&text, p()).unwrap_err().to_string();
        assert!(e.contains("unknown field `trainig`"), "{e}");
    }

    #[test]
    fn bad_values_rejected() {
        let text = TRAIN.replace("test_fraction: 0.2", "test_fraction: 0.3");
        let e = TrainConfig::from_str(&text, p()).unwrap_err().to_string();
        assert!(e.contains("add up to 1"), "{e}");
        let text = TRAIN.replace("type: dnn", "type: pnn");
        let e = TrainConfig::from_str(&text, p()).unwrap_err().to_string();
        assert!(e.contains("features.parameter"), "{e}");
        let text = TRAIN.replace("k: 2", "k: 1");
        assert!(TrainConfig::from_str(&text, p()).is_err());
    }

    const CONVERT: &str = "
tree: Events
columns: [x0, 'log(pt)', {name: lead_jet, expr: 'Jet_pt[0]'}]
selection: 'pt > 20'
event_number: event
samples:
  - {name: sig, files: [sig.root], label: 1, extra: {mass: 500}}
  - {name: bkg, files: ['bkg_*.root'], label: 0, weight: w}
";

    #[test]
    fn convert_config_parses() {
        let c = ConvertConfig::from_str(CONVERT, p()).unwrap();
        let names: Vec<_> = c.columns.iter().map(Column::name).collect();
        assert_eq!(names, ["x0", "log(pt)", "lead_jet"]);
        assert_eq!(c.columns[2].expr(), "Jet_pt[0]");
        assert_eq!(c.samples[0].extra["mass"], 500.0);
        assert_eq!(c.chunk_size, 100_000);
    }

    #[test]
    fn convert_config_errors() {
        let e = ConvertConfig::from_str(&CONVERT.replace("label: 0", "label: 1"), p())
            .unwrap_err()
            .to_string();
        assert!(e.contains("signal (1) and background (0)"), "{e}");
        let e = ConvertConfig::from_str(&CONVERT.replace("selection:", "selektion:"), p())
            .unwrap_err()
            .to_string();
        assert!(e.contains("selektion"), "{e}");
        let e = ConvertConfig::from_str(&CONVERT.replace("'log(pt)'", "'log(pt'"), p())
            .unwrap_err()
            .to_string();
        assert!(e.contains("log(pt"), "{e}");
    }
}
