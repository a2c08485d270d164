//! `hepml train`: the config's blocks (model, data, preparation, features, training,
//! evaluation) and their checks.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{default_true, ConfigError, ConfigFile, MaxFeatures, ModelConfig, ModelKind};

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

impl ConfigFile for TrainConfig {
    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
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
}

impl TrainConfig {
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
    // The convert config's tests live here too: they share the fixture files' helpers.
    use crate::config::*;
    use std::path::Path;

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
        // Inside the model block too, with the block's place in the file.
        let text = TRAIN.replace("width:", "widht:");
        let e = TrainConfig::from_str(&text, p()).unwrap_err().to_string();
        assert!(e.contains("model: unknown field `widht`"), "{e}");
        assert!(e.contains(" at line 2 column "), "{e}");
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
