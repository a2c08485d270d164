//! `hepml export`: a trained run directory -> ONNX (one file per fold), standardisation inside
//! the graph, a sigmoid score output, dynamic batch, and the metadata `hepml inject` and the C++
//! bridge read (feature -> branch map, output branch, fold routing, hashes, version).

use std::path::{Path, PathBuf};

use engine::onnx_build::Dense;

use crate::train::{FoldModel, SavedModel, TrainError};

/// The ONNX file names for `out`: itself for one model, `stem.fold<i>.onnx` beside it for k.
pub fn fold_paths(out: &Path, k: usize) -> Vec<PathBuf> {
    if k <= 1 {
        return vec![out.to_owned()];
    }
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    (0..k)
        .map(|i| out.with_file_name(format!("{stem}.fold{i}.onnx")))
        .collect()
}

/// Reads `RUN_DIR/model.json`.
pub fn load(run: &Path) -> Result<SavedModel, TrainError> {
    let p = run.join("model.json");
    let text = std::fs::read_to_string(&p).map_err(|source| TrainError::Io {
        path: p.clone(),
        source,
    })?;
    serde_json::from_str(&text)
        .map_err(|e| TrainError::Data(format!("{}: not a hepml model: {e}", p.display())))
}

/// ONNX bytes of every fold (in fold order), scores written to branch `branch` by inject: a
/// dense network with its standardisation, or an ONNX-ML tree ensemble (with `hepml.mdi`, the
/// fold's mean decrease in impurity per feature, for `hepml explain`, and `hepml.nan` =
/// `pass`: NaN inputs are missing values the trees route).
pub fn export(m: &SavedModel, branch: &str) -> Result<Vec<Vec<u8>>, TrainError> {
    // `hepml.inputs` says what inject computes from the ntuple: each input's source branch or
    // expression (a renamed convert column is computed again from its expression), then the
    // PNN parameter by name (`hepml inject --param NAME=VALUE` sets it, or a branch of that
    // name). `hepml.features` keeps the names the model was trained on.
    let mut columns = m.inputs.clone();
    columns.extend(m.parameter.clone());
    let mut branches: Vec<String> = if m.sources.len() == m.inputs.len() {
        m.sources.clone()
    } else {
        m.inputs.clone()
    };
    branches.extend(m.parameter.clone());
    let feature_map: serde_json::Map<String, serde_json::Value> = columns
        .iter()
        .zip(&branches)
        .map(|(c, b)| (c.clone(), serde_json::Value::from(b.as_str())))
        .collect();
    let act = match m.activation.as_str() {
        "relu" => "Relu",
        "swish" => "Swish",
        "tanh" => "Tanh",
        "elu" => "Elu",
        "gelu" => "Gelu",
        other => other,
    };
    m.folds
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut metadata = vec![
                (
                    "hepml.inputs".to_string(),
                    serde_json::json!({ "x": branches }).to_string(),
                ),
                (
                    "hepml.outputs".into(),
                    serde_json::json!({ "score": branch }).to_string(),
                ),
                (
                    "hepml.features".into(),
                    serde_json::json!(columns).to_string(),
                ),
                (
                    "hepml.feature_map".into(),
                    serde_json::Value::Object(feature_map.clone()).to_string(),
                ),
                ("hepml.label".into(), m.label.clone()),
                ("hepml.config_hash".into(), m.config_hash.clone()),
                ("hepml.version".into(), m.hepml_version.clone()),
            ];
            if let Some(p) = &m.parameter {
                metadata.push(("hepml.parameter".into(), p.clone()));
            }
            if let Some(k) = &m.kfold {
                metadata.push((
                    "hepml.fold".into(),
                    serde_json::json!({"k": k.k, "branch": k.branch, "rule": "branch % k == i"})
                        .to_string(),
                ));
                metadata.push(("hepml.fold_index".into(), i.to_string()));
            }
            match f {
                FoldModel::Dense(f) => Ok(Dense {
                    input: "x".into(),
                    output: "score".into(),
                    layers: f
                        .layers
                        .iter()
                        .map(|l| (l.n_in, l.n_out, l.w.clone(), l.b.clone()))
                        .collect(),
                    hidden: act.into(),
                    final_act: "Sigmoid".into(),
                    metadata,
                    standardise: Some((f.mean.clone(), f.std.clone())),
                }
                .to_bytes()),
                FoldModel::Trees(e) => {
                    let mdi = crate::trees::mdi(&e.trees, columns.len());
                    let named: serde_json::Map<String, serde_json::Value> = columns
                        .iter()
                        .zip(mdi)
                        .map(|(c, v)| (c.clone(), v.into()))
                        .collect();
                    metadata.push((
                        "hepml.mdi".into(),
                        serde_json::Value::Object(named).to_string(),
                    ));
                    // Every split sends NaN to a side learned in training (or to the heavier
                    // child): the model takes missing values, and inject passes them on.
                    metadata.push(("hepml.nan".into(), "pass".into()));
                    e.to_onnx("x", "score", &metadata)
                        .map_err(|e| TrainError::Data(format!("fold {i}: {e}")))
                }
            }
        })
        .collect()
}
