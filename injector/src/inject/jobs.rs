//! Planning the models of a run: a [`ModelJob`] per model (or per k-fold ensemble, and per
//! `--param` value), fed as its feature spec says and checked against the model's ports. The
//! models are decoded and their engines built once per run ([`build_jobs`]); each input's tree
//! is then checked for the branches they read ([`Jobs::check`]) before any event is read.

use super::error::{config, Context, InjectError};
use super::pipeline::{Engine, Folds, ModelJob, Models};
use super::plan::Options;
use super::spec::{self, ColumnsDecl, FeatureSpec, OutputDecl};
use crate::inject::inputs::InputKind;
use engine::{Choice, EngineOptions, Model};
use rootio::Chain;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A `--param NAME=V1,V2,...`: a parameterised model's input column set to constants.
pub(crate) type Param = (String, Vec<String>);

/// `NAME=V1,V2,...` -> (NAME, [V1, V2, ...]); every value a finite number, every name once.
pub(crate) fn parse_params(args: &[String]) -> Result<Vec<Param>, InjectError> {
    let mut out: Vec<Param> = Vec::new();
    for p in args {
        let (name, values) = p
            .split_once('=')
            .ok_or_else(|| config(format!("--param {p}: expected NAME=VALUE[,VALUE...]")))?;
        let name = name.trim();
        if name.is_empty() || out.iter().any(|(n, _)| n == name) {
            return Err(config(format!(
                "--param {p}: give each parameter once, with a name"
            )));
        }
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_owned()).collect();
        for v in &values {
            if !v.parse::<f64>().is_ok_and(f64::is_finite) {
                return Err(config(format!("--param {p}: `{v}` is not a number")));
            }
        }
        out.push((name.to_owned(), values));
    }
    Ok(out)
}

/// The suffix of the branches a parameter value writes: `_mass500`, `_mass1p5`, `_shiftm1`
/// (no `.` or `-` in branch names, which TTree::Draw would read as operators).
fn param_suffix(name: &str, value: &str) -> String {
    format!("_{name}{}", value.replace('.', "p").replace('-', "m"))
}

/// A feature spec file: hepml's YAML, or a CMS preprocess.json (whose `output_names` name the
/// classes of the model's single output: one branch per column, prefixed `pnet_`).
fn load_spec(
    path: &Path,
    length: Option<usize>,
    model: &Model,
) -> Result<FeatureSpec, InjectError> {
    let text = std::fs::read_to_string(path).map_err(|err| InjectError::Io {
        what: format!("reading {}", path.display()),
        err,
    })?;
    if path.extension().is_none_or(|e| e != "json") {
        return FeatureSpec::from_yaml(&text).context_with(|| path.display().to_string());
    }
    let inputs =
        spec::from_preprocess_json(&text, length).context_with(|| path.display().to_string())?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| config(format!("{}: {e}", path.display())))?;
    let tensor = match model.info().outputs.as_slice() {
        [one] => one.name.clone(),
        many => {
            return Err(config(format!(
                "{}: names one output's classes but {} has {} outputs",
                path.display(),
                model.path().display(),
                many.len()
            )))
        }
    };
    // The names are data: the spec is built directly, never through YAML text.
    let names = v["output_names"]
        .as_array()
        .ok_or_else(|| config(format!("{}: no output_names", path.display())))?;
    let branches = names
        .iter()
        .map(|n| n.as_str().map(|n| format!("pnet_{n}")))
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| {
            config(format!(
                "{}: output_names holds a non-string",
                path.display()
            ))
        })?;
    Ok(FeatureSpec {
        inputs,
        outputs: BTreeMap::from([(
            tensor,
            OutputDecl::Columns(ColumnsDecl { branches, ty: None }),
        )]),
        folds: None,
        nan: None,
    })
}

/// Loads one model on the engine the options ask for ("auto": see [`engine::open_with_choice`]),
/// with the choice and its reason for the log line and the provenance. Inference runs on the
/// scoring thread, one batch at a time: ONNX Runtime gets one session whose intra-op pool has
/// the `--threads`.
fn load_engine(o: &Options, model: &Model) -> Result<(Box<dyn Engine>, Choice), InjectError> {
    let opts = EngineOptions {
        kind: o.engine,
        device: o.device,
        ort_library: o.ort_library.clone(),
        ort_sessions: 1,
        threads: o.threads.unwrap_or(0),
    };
    let (e, choice) = engine::open_with_choice(model, &opts)?;
    Ok((e.into_engine(), choice))
}

/// What an input tree must hold for the jobs to run on it.
#[derive(Debug)]
enum Need {
    /// A branch the jobs read; `what` says which input (or option) reads it, for the error.
    Branch { branch: String, what: String },
    /// A parameterised model without `--param` for its parameter: read from the branch of
    /// that name, an error without one.
    Parameter { model: String, name: String },
}

/// The jobs of a run, built once, and what each input tree must hold for them.
pub(crate) struct Jobs {
    pub(crate) jobs: Vec<ModelJob>,
    needs: Vec<Need>,
}

impl Jobs {
    /// Checks that `chain` holds every branch the jobs read; notes for the user (a parameter
    /// read from a branch) go to `notes`.
    pub(crate) fn check(&self, chain: &Chain, notes: &mut Vec<String>) -> Result<(), InjectError> {
        for n in &self.needs {
            match n {
                Need::Branch { branch, what } => {
                    chain.interp(branch).context_with(|| what.clone())?;
                }
                Need::Parameter { model, name: p } => {
                    if chain.interp(p).is_err() {
                        return Err(config(format!(
                            "{model}: a parameterised model: give its parameter with --param {p}=VALUE[,VALUE...] (the tree has no branch `{p}`)"
                        )));
                    }
                    notes.push(format!(
                        "{model}: parameter `{p}` is read from the branch `{p}` (--param {p}=VALUE sets it)"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A job per model (or one fold ensemble, and per combination of `--param` values), with the
/// output branches it writes: each model file is read and decoded once, and its engine built
/// once, for every input of the run. Notes for the user (a fold scoring every event) go to
/// `notes`.
pub(crate) fn build_jobs(
    o: &Options,
    params: &[Param],
    notes: &mut Vec<String>,
) -> Result<Jobs, InjectError> {
    // Each model file is read and decoded once: its metadata, ports and engines all come from here.
    let models: Vec<Model> = o
        .models
        .iter()
        .map(|m| Model::read(m))
        .collect::<Result<_, _>>()?;
    let spec_for = |i: usize| -> Result<FeatureSpec, InjectError> {
        match o.features.get(i).or(o.features.first()) {
            Some(p) => load_spec(p, o.length, &models[i]),
            None => FeatureSpec::from_metadata(&models[i].info().metadata)
                .context_with(|| o.models[i].display().to_string()),
        }
    };
    let mut used = BTreeSet::new();
    let mut jobs = Vec::new();
    let mut needs = Vec::new();
    // Models exported by `hepml export` from a k-fold run say so in their metadata: given
    // together (in fold order), they form one ensemble without a fold branch option.
    let metadata_folds = o.features.is_empty()
        && o.models.len() > 1
        && models.iter().enumerate().all(|(i, m)| {
            let metadata = &m.info().metadata;
            metadata.contains_key("hepml.fold")
                && metadata
                    .get("hepml.fold_index")
                    .is_none_or(|f| f.parse() == Ok(i))
        });
    let groups: Vec<Vec<usize>> = if o.fold_branch.is_some() || metadata_folds {
        vec![(0..o.models.len()).collect()]
    } else {
        (0..o.models.len()).map(|i| vec![i]).collect()
    };
    for g in groups {
        let first = g[0];
        let base = spec_for(first)?;
        needs.extend(parameter_need(&models[first], &base, params));
        // One job per combination of the --param values that apply to this model.
        let mut variants: Vec<Vec<(&str, &str)>> = vec![vec![]];
        for (n, values) in params.iter().filter(|(n, _)| base.has_column(n)) {
            used.insert(n.as_str());
            variants = variants
                .iter()
                .flat_map(|v| {
                    values.iter().map(move |x| {
                        let mut v = v.clone();
                        v.push((n.as_str(), x.as_str()));
                        v
                    })
                })
                .collect();
        }
        for variant in variants {
            let mut spec = base.clone();
            let mut name = o.models[first].display().to_string();
            for (n, v) in &variant {
                spec.set_constant(n, v);
                spec.suffix_outputs(&param_suffix(n, v));
                name.push_str(&format!(" {n}={v}"));
            }
            jobs.push(build_job(o, &models, &g, spec, name, &mut needs, notes)?);
        }
    }
    if let Some((n, _)) = params.iter().find(|(n, _)| !used.contains(n.as_str())) {
        return Err(config(format!(
            "--param {n}: no model has an input column `{n}`"
        )));
    }
    Ok(Jobs { jobs, needs })
}

/// The comma-separated names of some ports, for messages.
fn port_names(ports: &[engine::Port]) -> String {
    ports
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The job of one model (or one fold ensemble, `group` in fold order) fed as `spec` says,
/// checked against the model's ports; the branches it reads go to `needs`.
fn build_job(
    o: &Options,
    models: &[Model],
    group: &[usize],
    spec: FeatureSpec,
    name: String,
    needs: &mut Vec<Need>,
    notes: &mut Vec<String>,
) -> Result<ModelJob, InjectError> {
    let model = o.models[group[0]].display().to_string();
    let (mut members, choices): (Vec<Box<dyn Engine>>, Vec<Choice>) = group
        .iter()
        .map(|&i| load_engine(o, &models[i]))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();
    let info = models[group[0]].info();
    let width = |name: &str| -> Option<usize> {
        info.outputs
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.shape.get(1).copied().flatten())
    };
    let mut resolved = spec.resolve(&width).context_with(|| model.clone())?;
    for out in &resolved.outputs {
        if !info.outputs.iter().any(|p| p.name == out.tensor) {
            return Err(config(format!(
                "{model}: no output '{}' (outputs: {})",
                out.tensor,
                port_names(&info.outputs)
            )));
        }
    }
    for i in &mut resolved.inputs {
        let Some(port) = info.inputs.iter().find(|p| p.name == i.name) else {
            return Err(config(format!(
                "{model}: the spec feeds '{}' but the model's inputs are {}",
                i.name,
                port_names(&info.inputs)
            )));
        };
        if let (InputKind::Event { columns }, Some(Some(w))) = (&i.kind, port.shape.get(1)) {
            if *w != columns.len() {
                return Err(config(format!(
                    "{model}: input '{}' takes {w} features, the spec gives {}",
                    i.name,
                    columns.len()
                )));
            }
        }
        // A model input with trailing dimensions of size 1 (MXNet's [N, C, L, 1]) takes the
        // built tensor as it is, in that shape.
        let built = i.shape(1, 1).len();
        if port.shape.len() > built && port.shape[built..].iter().all(|d| *d == Some(1)) {
            i.unit_dims = port.shape.len() - built;
        }
        for branch in i.branches() {
            needs.push(Need::Branch {
                branch,
                what: format!("input '{}' of {model}", i.name),
            });
        }
    }
    for p in &info.inputs {
        if !resolved.inputs.iter().any(|i| i.name == p.name) {
            return Err(config(format!(
                "{model}: model input '{}' is not fed by the spec",
                p.name
            )));
        }
    }
    let fold_branch = o
        .fold_branch
        .clone()
        .or(resolved.folds.as_ref().map(|f| f.branch.clone()));
    let models = match fold_branch {
        Some(branch) if members.len() > 1 => {
            needs.push(Need::Branch {
                branch: branch.clone(),
                what: "--fold-branch".to_string(),
            });
            Models::Folds(Folds { branch, members })
        }
        Some(_) if o.fold_branch.is_some() => {
            return Err(config("a fold ensemble needs one --model per fold"))
        }
        // One member of a k-fold export given alone scores every event (e.g. data, which
        // no fold trained on).
        Some(_) => {
            notes.push(format!(
                "{model} is one fold of an ensemble; it scores every event"
            ));
            Models::Single(members.remove(0))
        }
        None => Models::Single(members.remove(0)),
    };
    Ok(ModelJob {
        name,
        models,
        choices,
        inputs: resolved.inputs,
        outputs: resolved.outputs,
        per_object: resolved.per_object,
        nan: o.nan.unwrap_or(resolved.nan),
    })
}

/// A model exported from a PNN says which input column is its parameter (`hepml.parameter`):
/// without `--param` for it, the parameter is read from a branch of that name, and a tree
/// without one is an error that says how to set it ([`Jobs::check`]).
fn parameter_need(model: &Model, spec: &FeatureSpec, params: &[Param]) -> Option<Need> {
    let p = model.info().metadata.get("hepml.parameter")?;
    if params.iter().any(|(n, _)| n == p) || !spec.has_column(p) {
        return None;
    }
    Some(Need::Parameter {
        model: model.path().display().to_string(),
        name: p.clone(),
    })
}
