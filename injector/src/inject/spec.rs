//! The feature spec of a model: which branches (or expressions) feed which input, and which
//! output goes to which new branch. Written by hand for third-party models (YAML), or read
//! from the model's own metadata (`hepml.inputs` / `hepml.outputs`, written by `hepml export`).
//!
//! ```yaml
//! inputs:
//!   x: [E1, px1, py1, pz1, "sqrt(px1**2 + py1**2)"]   # columns of a [batch, 5] input
//!   pf_features:                                      # [batch, vars, length] from jagged branches
//!     objects: [pf_pt, pf_eta]
//!     length: 50
//!     layout: vars_first                               # or objects_first ([batch, length, vars])
//!     transform: {pf_pt: {median: 1.0, norm_factor: 0.5, lower_bound: -5, upper_bound: 5, pad: 0}}
//!   pf_mask: {objects: [], mask: true, length: 50}
//!   jets: {rows: [Jet_pt, Jet_eta]}                    # one row per object: per-object outputs
//! outputs:
//!   y: score                                           # one-column output -> float branch
//!   probabilities: {branch: score_sig, column: 1, type: double}
//!   output: {branches: [p_b, p_c, p_uds]}              # one branch per column
//! folds: {branch: event, rule: "event % k == i"}       # with one model file per fold
//! nan: error                                           # or pass
//! ```

use super::inputs::{InputKind, InputSpec, NonFinite, ObjectVar, VarTransform};
use super::pipeline::OutputSpec;
use crate::expr::Expr;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{0}")]
    Invalid(String),
}

fn bad(msg: impl Into<String>) -> SpecError {
    SpecError::Invalid(msg.into())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    pub inputs: BTreeMap<String, InputDecl>,
    pub outputs: BTreeMap<String, OutputDecl>,
    #[serde(default)]
    pub folds: Option<FoldDecl>,
    #[serde(default)]
    pub nan: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum InputDecl {
    Columns(Vec<String>),
    Objects(ObjectsDecl),
    Rows(RowsDecl),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectsDecl {
    pub objects: Vec<String>,
    pub length: usize,
    #[serde(default)]
    pub layout: Option<String>,
    #[serde(default)]
    pub mask: bool,
    /// For a mask-only input: a jagged branch whose per-event length gives the object count.
    #[serde(default)]
    pub count: Option<String>,
    #[serde(default)]
    pub transform: BTreeMap<String, TransformDecl>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowsDecl {
    pub rows: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TransformDecl {
    #[serde(default)]
    pub median: f32,
    #[serde(default = "one")]
    pub norm_factor: f32,
    #[serde(default)]
    pub lower_bound: Option<f32>,
    #[serde(default)]
    pub upper_bound: Option<f32>,
    #[serde(default)]
    pub pad: f32,
    #[serde(default)]
    pub replace_inf_value: Option<f32>,
}

fn one() -> f32 {
    1.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OutputDecl {
    Branch(String),
    Column(ColumnDecl),
    Columns(ColumnsDecl),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnDecl {
    pub branch: String,
    #[serde(default)]
    pub column: Option<usize>,
    #[serde(default, rename = "type")]
    pub ty: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnsDecl {
    pub branches: Vec<String>,
    #[serde(default, rename = "type")]
    pub ty: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FoldDecl {
    pub branch: String,
    #[serde(default)]
    pub k: Option<usize>,
    #[serde(default)]
    pub rule: Option<String>,
}

/// A spec resolved into pipeline pieces.
#[derive(Debug)]
pub struct Resolved {
    pub inputs: Vec<InputSpec>,
    pub outputs: Vec<OutputSpec>,
    pub per_object: bool,
    pub folds: Option<FoldDecl>,
    pub nan: NonFinite,
}

impl FeatureSpec {
    pub fn from_yaml(text: &str) -> Result<Self, SpecError> {
        yaml_serde::from_str(text).map_err(|e| bad(format!("feature spec: {e}")))
    }

    /// From the model's metadata: `hepml.inputs` = {"input": ["branch or expression", ...]},
    /// `hepml.outputs` = {"output": "branch"}, optional `hepml.fold` = {"k":K,"branch":B,...}
    /// and `hepml.nan` (`pass`: the model takes NaN as a missing value).
    pub fn from_metadata(meta: &BTreeMap<String, String>) -> Result<Self, SpecError> {
        let inputs = meta.get("hepml.inputs").ok_or_else(|| {
            bad("the model has no hepml.inputs metadata: give a feature spec with --features")
        })?;
        let inputs: BTreeMap<String, Vec<String>> = serde_json::from_str(inputs)
            .map_err(|e| bad(format!("model metadata hepml.inputs: {e}")))?;
        let outputs: BTreeMap<String, String> = match meta.get("hepml.outputs") {
            Some(o) => serde_json::from_str(o)
                .map_err(|e| bad(format!("model metadata hepml.outputs: {e}")))?,
            None => return Err(bad("the model has no hepml.outputs metadata")),
        };
        let folds = match meta.get("hepml.fold") {
            Some(f) => Some(
                serde_json::from_str(f)
                    .map_err(|e| bad(format!("model metadata hepml.fold: {e}")))?,
            ),
            None => None,
        };
        Ok(FeatureSpec {
            inputs: inputs
                .into_iter()
                .map(|(k, v)| (k, InputDecl::Columns(v)))
                .collect(),
            outputs: outputs
                .into_iter()
                .map(|(k, v)| (k, OutputDecl::Branch(v)))
                .collect(),
            folds,
            // Models that take missing values say so (hepml's tree ensembles).
            nan: meta.get("hepml.nan").cloned(),
        })
    }

    /// Replaces every event column that is exactly `name` (a PNN's parameter, e.g. `mass`) by
    /// the constant `value`.
    pub fn set_constant(&mut self, name: &str, value: &str) {
        for d in self.inputs.values_mut() {
            if let InputDecl::Columns(cols) = d {
                for c in cols.iter_mut().filter(|c| c.as_str() == name) {
                    *c = value.to_owned();
                }
            }
        }
    }

    /// Appends `suffix` to every output branch name.
    pub fn suffix_outputs(&mut self, suffix: &str) {
        for d in self.outputs.values_mut() {
            match d {
                OutputDecl::Branch(b) => b.push_str(suffix),
                OutputDecl::Column(c) => c.branch.push_str(suffix),
                OutputDecl::Columns(c) => c.branches.iter_mut().for_each(|b| b.push_str(suffix)),
            }
        }
    }

    /// Whether some event column is exactly `name`.
    pub fn has_column(&self, name: &str) -> bool {
        self.inputs
            .values()
            .any(|d| matches!(d, InputDecl::Columns(c) if c.iter().any(|c| c == name)))
    }

    /// Resolves against the model's output widths (`width(name)` = columns of that output).
    pub fn resolve(&self, width: &dyn Fn(&str) -> Option<usize>) -> Result<Resolved, SpecError> {
        let mut inputs = Vec::new();
        let mut rows = 0;
        for (name, d) in &self.inputs {
            let kind = match d {
                InputDecl::Columns(cols) => {
                    if cols.is_empty() {
                        return Err(bad(format!("input '{name}' has no columns")));
                    }
                    InputKind::Event {
                        columns: cols
                            .iter()
                            .map(|c| {
                                Expr::parse(c).map_err(|e| bad(format!("input '{name}': {e}")))
                            })
                            .collect::<Result<_, _>>()?,
                    }
                }
                InputDecl::Objects(o) => {
                    let vars_first = match o.layout.as_deref() {
                        None | Some("vars_first") => true,
                        Some("objects_first") => false,
                        Some(x) => {
                            return Err(bad(format!(
                                "input '{name}': layout '{x}' (vars_first or objects_first)"
                            )))
                        }
                    };
                    if o.length == 0 {
                        return Err(bad(format!("input '{name}': length must be positive")));
                    }
                    for k in o.transform.keys() {
                        if !o.objects.contains(k) {
                            return Err(bad(format!("input '{name}': transform for '{k}', which is not among its objects")));
                        }
                    }
                    let mut vars: Vec<ObjectVar> = o
                        .objects
                        .iter()
                        .map(|b| ObjectVar::Branch {
                            name: b.clone(),
                            transform: o.transform.get(b).map(to_transform).unwrap_or_default(),
                        })
                        .collect();
                    if o.mask {
                        vars.push(ObjectVar::Mask);
                    }
                    if vars.is_empty() {
                        return Err(bad(format!("input '{name}' has no variables")));
                    }
                    if o.objects.is_empty() && o.count.is_none() {
                        return Err(bad(format!(
                            "input '{name}': a mask-only input needs 'count: <jagged branch>'"
                        )));
                    }
                    InputKind::Objects {
                        vars,
                        length: o.length,
                        vars_first,
                        count_branch: o.count.clone(),
                    }
                }
                InputDecl::Rows(r) => {
                    rows += 1;
                    InputKind::ObjectRows {
                        columns: r.rows.clone(),
                    }
                }
            };
            inputs.push(InputSpec {
                name: name.clone(),
                unit_dims: 0,
                kind,
            });
        }
        if rows > 0 && rows != inputs.len() {
            return Err(bad(
                "per-object 'rows' inputs cannot be mixed with per-event inputs",
            ));
        }
        // Object inputs with a mask need the objects' counts: a mask-only input takes them from
        // the other object inputs of the same length.
        let mut outputs = Vec::new();
        for (tensor, d) in &self.outputs {
            let double = |ty: &Option<String>| match ty.as_deref() {
                None | Some("float") => Ok(false),
                Some("double") => Ok(true),
                Some(x) => Err(bad(format!(
                    "output '{tensor}': type '{x}' (float or double)"
                ))),
            };
            match d {
                OutputDecl::Branch(b) => outputs.push(OutputSpec {
                    tensor: tensor.clone(),
                    column: None,
                    branch: b.clone(),
                    double: false,
                }),
                OutputDecl::Column(c) => outputs.push(OutputSpec {
                    tensor: tensor.clone(),
                    column: c.column,
                    branch: c.branch.clone(),
                    double: double(&c.ty)?,
                }),
                OutputDecl::Columns(c) => {
                    if let Some(w) = width(tensor) {
                        if w != c.branches.len() {
                            return Err(bad(format!(
                                "output '{tensor}' has {w} columns but {} branch names are given",
                                c.branches.len()
                            )));
                        }
                    }
                    for (j, b) in c.branches.iter().enumerate() {
                        outputs.push(OutputSpec {
                            tensor: tensor.clone(),
                            column: Some(j),
                            branch: b.clone(),
                            double: double(&c.ty)?,
                        });
                    }
                }
            }
        }
        if outputs.is_empty() {
            return Err(bad("no outputs: map at least one model output to a branch"));
        }
        let nan = match self.nan.as_deref() {
            None | Some("error") => NonFinite::Error,
            Some("pass") => NonFinite::PassThrough,
            Some(x) => return Err(bad(format!("nan: '{x}' (error or pass)"))),
        };
        Ok(Resolved {
            inputs,
            outputs,
            per_object: rows > 0,
            folds: self.folds.clone(),
            nan,
        })
    }
}

fn to_transform(t: &TransformDecl) -> VarTransform {
    VarTransform {
        center: t.median,
        scale: t.norm_factor,
        lo: t.lower_bound.unwrap_or(f32::NEG_INFINITY),
        hi: t.upper_bound.unwrap_or(f32::INFINITY),
        pad: t.pad,
        replace_inf: t.replace_inf_value,
    }
}

/// Reads the CMS `preprocess.json` format (input_names; per input var_names, var_infos with
/// median/norm_factor/bounds/pad/replace_inf_value, min_length/max_length) into object inputs.
/// Variables named like `*_mask` become the mask.
pub fn from_preprocess_json(
    text: &str,
    length: Option<usize>,
) -> Result<BTreeMap<String, InputDecl>, SpecError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("preprocess.json: {e}")))?;
    let names = v["input_names"]
        .as_array()
        .ok_or_else(|| bad("preprocess.json: no input_names"))?;
    let mut out = BTreeMap::new();
    for n in names {
        let n = n
            .as_str()
            .ok_or_else(|| bad("preprocess.json: input name not a string"))?;
        let g = &v[n];
        let vars: Vec<String> = g["var_names"]
            .as_array()
            .ok_or_else(|| bad(format!("preprocess.json: {n} has no var_names")))?
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect();
        let len = length
            .or_else(|| g["max_length"].as_u64().map(|x| x as usize))
            .or_else(|| g["min_length"].as_u64().map(|x| x as usize))
            .ok_or_else(|| bad(format!("preprocess.json: {n} has no length; pass one")))?;
        let mask = vars.len() == 1 && vars[0].ends_with("mask");
        let mut transform = BTreeMap::new();
        if !mask {
            for var in &vars {
                let i = &g["var_infos"][var];
                let f = |k: &str| i[k].as_f64().map(|x| x as f32);
                transform.insert(
                    var.clone(),
                    TransformDecl {
                        median: f("median").unwrap_or(0.0),
                        norm_factor: f("norm_factor").unwrap_or(1.0),
                        lower_bound: f("lower_bound"),
                        upper_bound: f("upper_bound"),
                        pad: f("pad").unwrap_or(0.0),
                        replace_inf_value: f("replace_inf_value"),
                    },
                );
            }
        }
        out.insert(
            n.to_string(),
            InputDecl::Objects(ObjectsDecl {
                objects: if mask { Vec::new() } else { vars },
                length: len,
                layout: None,
                mask,
                count: None,
                transform,
            }),
        );
    }
    // A mask counts the objects of the group sharing its prefix (pf_mask <- pf_features).
    let firsts: Vec<(String, String)> = out
        .iter()
        .filter_map(|(k, d)| match d {
            InputDecl::Objects(o) if !o.mask => o.objects.first().map(|f| (k.clone(), f.clone())),
            _ => None,
        })
        .collect();
    for (k, d) in out.iter_mut() {
        if let InputDecl::Objects(o) = d {
            if o.mask {
                let prefix = k.split('_').next().unwrap_or("");
                o.count = firsts
                    .iter()
                    .find(|(g, _)| g.split('_').next() == Some(prefix))
                    .map(|(_, f)| f.clone());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_example_and_typos() {
        let s = FeatureSpec::from_yaml(
            "inputs:\n  x: [E1, px1, py1, pz1, pt1]\noutputs:\n  y: score\n",
        )
        .unwrap();
        let r = s.resolve(&|_| Some(1)).unwrap();
        assert_eq!(r.inputs.len(), 1);
        assert_eq!(r.outputs[0].branch, "score");
        let e = FeatureSpec::from_yaml("inputs:\n  x: [a]\noutputs:\n  y: s\nfoldz: 2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("foldz"), "{e}");
        let e = FeatureSpec::from_yaml("inputs:\n  x: [a]\noutputs:\n  y: {branches: [a, b]}\n")
            .unwrap()
            .resolve(&|_| Some(3))
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 columns"), "{e}");
        let e = FeatureSpec::from_yaml("inputs:\n  x: [log(]\noutputs:\n  y: s\n")
            .unwrap()
            .resolve(&|_| Some(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("input 'x'"), "{e}");
    }

    #[test]
    fn particlenet_preprocess_json() {
        let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/onnx/cms-particlenet-ak4-hlt/preprocess.json");
        let m = from_preprocess_json(&std::fs::read_to_string(p).unwrap(), Some(20)).unwrap();
        assert_eq!(m.len(), 6);
        match &m["pf_features"] {
            InputDecl::Objects(o) => {
                assert_eq!(o.objects.len(), 23);
                assert_eq!(o.transform["jet_pfcand_pt_log"].norm_factor, 0.5);
                assert_eq!(o.length, 20);
            }
            _ => panic!(),
        }
        assert!(
            matches!(&m["pf_mask"], InputDecl::Objects(o) if o.mask && o.objects.is_empty() && o.count.as_deref() == Some("jet_pfcand_pt_log"))
        );
    }
}
