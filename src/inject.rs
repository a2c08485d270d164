//! `hepml inject`: score ROOT ntuples with ONNX models and write the scores as new branches,
//! into a decorated copy (original baskets copied byte for byte) or a friend tree.

use anyhow::{bail, Context, Result};
use clap::Args;
use engine::{Device, EngineKind, EngineOptions, Model, ModelInfo};
use indicatif::{ProgressBar, ProgressStyle};
use injector::inject::inputs::{InputKind, NonFinite};
use injector::inject::pipeline::{self, Engine, Folds, ModelJob, Models, OutColumn};
use injector::inject::spec::{self, FeatureSpec};
use injector::rootio::object::{default_object, Value};
use injector::rootio::rbuf::WBuf;
use injector::rootio::write::{clone_tree, copy_other_keys, BranchSpec, FileWriter, TreeWriter};
use injector::rootio::{Array, Chain, Compression, Data, Prim, RootFile, Shape};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct InjectArgs {
    /// Input ROOT files (globs allowed).
    #[arg(required = true)]
    inputs: Vec<String>,
    /// ONNX model (repeat for several models; with --fold-branch, the fold members in order).
    #[arg(long = "model", required = true)]
    models: Vec<PathBuf>,
    /// Feature spec (YAML, or a CMS preprocess.json) per model, or one for all; without it the
    /// model's own metadata (written by `hepml export`) says which branches feed it.
    #[arg(long = "features")]
    features: Vec<PathBuf>,
    /// Tree to read (default: the file's only tree).
    #[arg(long)]
    tree: Option<String>,
    /// Output file (one input) or folder (several inputs).
    #[arg(long, short)]
    output: PathBuf,
    /// Write a friend tree holding only the new branches instead of a decorated copy.
    #[arg(long)]
    friend: bool,
    /// Inference engine: auto (tree ensembles and dense networks to hepml's native evaluators,
    /// every other graph to tract), or one forced: tract, native, trees, ort.
    #[arg(long, default_value = "auto", value_parser = ["auto", "tract", "native", "trees", "ort"])]
    engine: String,
    /// Device for the engine (cuda: ONNX Runtime's CUDA execution provider, never a silent
    /// CPU fallback).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    device: String,
    /// libonnxruntime.so for --engine ort (default: ORT_DYLIB_PATH, else the project venv's
    /// pip onnxruntime).
    #[arg(long)]
    ort_lib: Option<PathBuf>,
    /// The models are the members of a k-fold ensemble routed by this branch: member i scores
    /// events whose value % k == i.
    #[arg(long)]
    fold_branch: Option<String>,
    /// A parameterised model's parameter (a PNN's mass) set to constants: NAME=V1,V2,...
    /// (repeatable). Each value writes its own branches, suffixed `_NAME<V>` (score_mass500).
    #[arg(long = "param")]
    params: Vec<String>,
    /// Object length for a preprocess.json spec without max_length.
    #[arg(long)]
    length: Option<usize>,
    /// NaN/inf in inputs: error (default) or pass them to the model.
    #[arg(long, value_parser = ["error", "pass"])]
    nan: Option<String>,
    /// Decoding threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Events per chunk.
    #[arg(long, default_value_t = 10_000)]
    chunk: u64,
    /// Compression of new baskets (default: ROOT's 101, zlib level 1).
    #[arg(long, default_value = "zlib-1")]
    compression: String,
    /// Progress bar off.
    #[arg(long)]
    quiet: bool,
}

fn expand(inputs: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for i in inputs {
        if i.contains(['*', '?', '[']) {
            let mut found: Vec<PathBuf> = glob::glob(i)
                .with_context(|| format!("bad glob '{i}'"))?
                .filter_map(|p| p.ok())
                .collect();
            found.sort();
            if found.is_empty() {
                bail!("no file matches '{i}'");
            }
            out.extend(found);
        } else {
            out.push(PathBuf::from(i));
        }
    }
    Ok(out)
}

fn load_spec(path: &Path, length: Option<usize>, model: &Path) -> Result<FeatureSpec> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "json") {
        let inputs = spec::from_preprocess_json(&text, length)
            .with_context(|| path.display().to_string())?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        // preprocess.json names the classes of the model's (single) output: one branch per
        // column, prefixed "pnet_".
        let info = Model::read(model)?.into_info();
        let tensor = match info.outputs.as_slice() {
            [one] => one.name.clone(),
            many => bail!(
                "{}: names one output's classes but {} has {} outputs",
                path.display(),
                model.display(),
                many.len()
            ),
        };
        let outputs = match v["output_names"].as_array() {
            Some(names) => {
                let branches: Vec<String> = names
                    .iter()
                    .filter_map(|n| n.as_str())
                    .map(|n| format!("pnet_{n}"))
                    .collect();
                let yaml = format!("{tensor}: {{branches: [{}]}}", branches.join(", "));
                serde_yaml::from_str(&yaml)?
            }
            None => bail!("{}: no output_names", path.display()),
        };
        return Ok(FeatureSpec {
            inputs,
            outputs,
            folds: None,
            nan: None,
        });
    }
    FeatureSpec::from_yaml(&text).with_context(|| path.display().to_string())
}

/// Tree ensembles (sklearn/xgboost BDTs) and dense networks (MLPs, PNNs) go to hepml's native
/// evaluators; every other graph to tract (or everything to ONNX Runtime with --engine ort). The engine's description (in the
/// log line and the provenance) says which.
fn load_engine(a: &InjectArgs, path: &Path) -> Result<(Box<dyn Engine>, ModelInfo)> {
    let opts = EngineOptions {
        kind: a.engine.parse::<EngineKind>()?,
        device: a.device.parse::<Device>()?,
        ort_library: a.ort_lib.clone(),
        ort_sessions: a.threads.unwrap_or(0),
        threads: 0,
    };
    let model = Model::read(path)?;
    let e = engine::open(&model, &opts)?.into_engine();
    Ok((e, model.into_info()))
}

/// A job per model (or one fold ensemble), with the output branches it writes.
fn build_jobs(a: &InjectArgs, chain: &Chain) -> Result<Vec<ModelJob>> {
    if !a.features.is_empty() && a.features.len() != 1 && a.features.len() != a.models.len() {
        bail!(
            "give one --features for all models or one per model ({} models, {} specs)",
            a.models.len(),
            a.features.len()
        );
    }
    let spec_for = |i: usize| -> Result<FeatureSpec> {
        match a.features.get(i).or(a.features.first()) {
            Some(p) => load_spec(p, a.length, &a.models[i]),
            None => Ok(
                FeatureSpec::from_metadata(&Model::read(&a.models[i])?.info().metadata)
                    .with_context(|| a.models[i].display().to_string())?,
            ),
        }
    };
    let params = parse_params(&a.params)?;
    let mut used = std::collections::BTreeSet::new();
    let mut jobs = Vec::new();
    // Models exported by `hepml export` from a k-fold run say so in their metadata: given
    // together (in fold order), they form one ensemble without --fold-branch.
    let metadata_folds = a.features.is_empty()
        && a.models.len() > 1
        && a.models.iter().enumerate().all(|(i, m)| {
            Model::read(m).is_ok_and(|m| {
                let info = m.info();
                info.metadata.contains_key("hepml.fold")
                    && info
                        .metadata
                        .get("hepml.fold_index")
                        .is_none_or(|f| f.parse() == Ok(i))
            })
        });
    let groups: Vec<Vec<usize>> = if a.fold_branch.is_some() || metadata_folds {
        vec![(0..a.models.len()).collect()]
    } else {
        (0..a.models.len()).map(|i| vec![i]).collect()
    };
    for g in groups {
        let first = g[0];
        let base = spec_for(first)?;
        check_parameter(&a.models[first], &base, &params, chain)?;
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
            let mut name = a.models[first].display().to_string();
            for (n, v) in &variant {
                spec.set_constant(n, v);
                spec.suffix_outputs(&param_suffix(n, v));
                name.push_str(&format!(" {n}={v}"));
            }
            jobs.push(build_job(a, chain, &g, spec, name)?);
        }
    }
    if let Some((n, _)) = params.iter().find(|(n, _)| !used.contains(n.as_str())) {
        bail!("--param {n}: no model has an input column `{n}`");
    }
    Ok(jobs)
}

/// The job of one model (or one fold ensemble, `group` in fold order) fed as `spec` says,
/// checked against the model's ports and the tree's branches.
fn build_job(
    a: &InjectArgs,
    chain: &Chain,
    group: &[usize],
    spec: FeatureSpec,
    name: String,
) -> Result<ModelJob> {
    let first = group[0];
    let engines: Vec<(Box<dyn Engine>, ModelInfo)> = group
        .iter()
        .map(|&i| load_engine(a, &a.models[i]))
        .collect::<Result<_>>()?;
    let info = engines[0].1.clone();
    let width = |name: &str| -> Option<usize> {
        info.outputs
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.shape.get(1).copied().flatten())
    };
    let resolved = spec
        .resolve(&width)
        .with_context(|| a.models[first].display().to_string())?;
    for o in &resolved.outputs {
        if !info.outputs.iter().any(|p| p.name == o.tensor) {
            bail!(
                "{}: no output '{}' (outputs: {})",
                a.models[first].display(),
                o.tensor,
                info.outputs
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    for i in &resolved.inputs {
        if !info.inputs.iter().any(|p| p.name == i.name) {
            bail!(
                "{}: the spec feeds '{}' but the model's inputs are {}",
                a.models[first].display(),
                i.name,
                info.inputs
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let (InputKind::Event { columns }, Some(port)) =
            (&i.kind, info.inputs.iter().find(|p| p.name == i.name))
        {
            if let Some(Some(w)) = port.shape.get(1) {
                if *w != columns.len() {
                    bail!(
                        "{}: input '{}' takes {w} features, the spec gives {}",
                        a.models[first].display(),
                        i.name,
                        columns.len()
                    );
                }
            }
        }
        for b in i.branches() {
            chain
                .interp(&b)
                .with_context(|| format!("input '{}' of {}", i.name, a.models[first].display()))?;
        }
    }
    for p in &info.inputs {
        if !resolved.inputs.iter().any(|i| i.name == p.name) {
            bail!(
                "{}: model input '{}' is not fed by the spec",
                a.models[first].display(),
                p.name
            );
        }
    }
    let fold_branch = a
        .fold_branch
        .clone()
        .or(resolved.folds.as_ref().map(|f| f.branch.clone()));
    let mut members: Vec<Box<dyn Engine>> = engines.into_iter().map(|e| e.0).collect();
    let models = match fold_branch {
        Some(branch) if members.len() > 1 => {
            chain.interp(&branch).context("--fold-branch")?;
            Models::Folds(Folds { branch, members })
        }
        Some(_) if a.fold_branch.is_some() => {
            bail!("a fold ensemble needs one --model per fold")
        }
        // One member of a k-fold export given alone scores every event (e.g. data, which
        // no fold trained on).
        Some(_) => {
            eprintln!(
                "hepml: note: {} is one fold of an ensemble; it scores every event",
                a.models[first].display()
            );
            Models::Single(members.remove(0))
        }
        None => Models::Single(members.remove(0)),
    };
    Ok(ModelJob {
        name,
        models,
        inputs: resolved.inputs,
        outputs: resolved.outputs,
        per_object: resolved.per_object,
    })
}

/// `--param NAME=V1,V2,...` -> (NAME, [V1, V2, ...]); every value a finite number.
fn parse_params(args: &[String]) -> Result<Vec<(String, Vec<String>)>> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for p in args {
        let (name, values) = p
            .split_once('=')
            .with_context(|| format!("--param {p}: expected NAME=VALUE[,VALUE...]"))?;
        let name = name.trim();
        if name.is_empty() || out.iter().any(|(n, _)| n == name) {
            bail!("--param {p}: give each parameter once, with a name");
        }
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_owned()).collect();
        for v in &values {
            if !v.parse::<f64>().is_ok_and(f64::is_finite) {
                bail!("--param {p}: `{v}` is not a number");
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

/// A model exported from a PNN says which input column is its parameter (`hepml.parameter`):
/// without `--param` for it, the parameter is read from a branch of that name, and a tree
/// without one is an error that says how to set it.
fn check_parameter(
    model: &Path,
    spec: &FeatureSpec,
    params: &[(String, Vec<String>)],
    chain: &Chain,
) -> Result<()> {
    let info = Model::read(model)?.into_info();
    let Some(p) = info.metadata.get("hepml.parameter") else {
        return Ok(());
    };
    if params.iter().any(|(n, _)| n == p) || !spec.has_column(p) {
        return Ok(());
    }
    if chain.interp(p).is_err() {
        bail!(
            "{}: a parameterised model: give its parameter with --param {p}=VALUE[,VALUE...] (the tree has no branch `{p}`)",
            model.display()
        );
    }
    eprintln!(
        "hepml: note: {}: parameter `{p}` is read from the branch `{p}` (--param {p}=VALUE sets it)",
        model.display()
    );
    Ok(())
}

fn nan_policy(a: &InjectArgs) -> NonFinite {
    if a.nan.as_deref() == Some("pass") {
        NonFinite::PassThrough
    } else {
        NonFinite::Error
    }
}

/// The output branches: their specs, and for per-object models the counter they use.
fn output_specs(
    jobs: &[ModelJob],
    chain: &Chain,
    friend: bool,
) -> Result<(Vec<BranchSpec>, Vec<BranchSpec>)> {
    let mut specs = Vec::new();
    let mut counters = Vec::new();
    for j in jobs {
        let counter = if j.per_object {
            let first = j
                .inputs
                .iter()
                .flat_map(|i| i.branches())
                .next()
                .context("per-object model without inputs")?;
            match chain.interp(&first)?.shape {
                Shape::Var { counter, .. } if !friend => Some(Shape::Var {
                    counter,
                    inner: vec![],
                }),
                Shape::Var { .. } | Shape::Vector => {
                    let name = format!("n{}", j.outputs[0].branch);
                    counters.push(BranchSpec::scalar(&name, Prim::I32));
                    Some(Shape::Var {
                        counter: name,
                        inner: vec![],
                    })
                }
                _ => bail!("per-object input '{first}' is not jagged"),
            }
        } else {
            None
        };
        for o in &j.outputs {
            let prim = if o.double { Prim::F64 } else { Prim::F32 };
            specs.push(BranchSpec::new(
                &o.branch,
                prim,
                counter.clone().unwrap_or(Shape::Scalar),
            ));
        }
    }
    for (i, s) in specs.iter().enumerate() {
        if specs[..i].iter().any(|t| t.name == s.name) {
            bail!("two outputs write branch '{}'", s.name);
        }
        if !friend && chain.members[0].tree.branch(&s.name).is_ok() {
            bail!(
                "branch '{}' exists already in the input tree; choose another output name",
                s.name
            );
        }
    }
    Ok((counters, specs))
}

fn to_array(col: &OutColumn, spec: &BranchSpec) -> Array {
    let n = col.counts.as_ref().map_or(col.values.len(), |c| c.len());
    let data = if col.double {
        Data::F64(col.values.iter().map(|&v| v as f64).collect())
    } else {
        Data::F32(col.values.clone())
    };
    let offsets = col.counts.as_ref().map(|c| {
        let mut o = vec![0];
        for x in c {
            o.push(o.last().copied().unwrap_or(0) + x);
        }
        o
    });
    Array {
        interp: spec.interp.clone(),
        start: 0,
        entries: n as u64,
        data,
        offsets,
    }
}

fn provenance(fw: &mut FileWriter, jobs: &[ModelJob], a: &InjectArgs, input: &Path) -> Result<()> {
    let text = serde_json::json!({
        "hepml": env!("CARGO_PKG_VERSION"),
        "input": input.display().to_string(),
        "engine": a.engine,
        "models": jobs.iter().map(|j| j.models.describe()).collect::<Vec<_>>(),
        "branches": jobs.iter().flat_map(|j| j.outputs.iter().map(|o| o.branch.clone())).collect::<Vec<_>>(),
    })
    .to_string();
    let mut obj = default_object(&fw.streamers, "TNamed")?;
    *obj.get_mut("fName").context("TNamed fName")? = Value::Str(b"hepml_provenance".to_vec());
    *obj.get_mut("fTitle").context("TNamed fTitle")? = Value::Str(text.clone().into_bytes());
    fw.write_object("TNamed", "hepml_provenance", &text, |keylen| {
        let mut w = WBuf::new(keylen);
        injector::rootio::object::Writer::new().write_object(&mut w, &obj)?;
        Ok(w.data)
    })?;
    Ok(())
}

pub fn run(a: InjectArgs) -> Result<()> {
    let inputs = expand(&a.inputs)?;
    let compression = Compression::parse(&a.compression)?;
    let several = inputs.len() > 1 || a.output.is_dir();
    if several {
        std::fs::create_dir_all(&a.output)
            .with_context(|| format!("creating {}", a.output.display()))?;
    }
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    for input in &inputs {
        let out = if several {
            a.output
                .join(input.file_name().context("input without a file name")?)
        } else {
            a.output.clone()
        };
        if out.exists() && std::fs::canonicalize(&out).ok() == std::fs::canonicalize(input).ok() {
            bail!("{}: output would overwrite the input", out.display());
        }
        let file = RootFile::open(input)?;
        let tree_name = match &a.tree {
            Some(t) => t.clone(),
            None => match file.tree_paths()?.as_slice() {
                [one] => one.clone(),
                [] => bail!("{}: no TTree", input.display()),
                many => bail!(
                    "{}: several trees ({}); choose one with --tree",
                    input.display(),
                    many.join(", ")
                ),
            },
        };
        drop(file);
        let chain = Chain::open(std::slice::from_ref(input), &tree_name)?;
        let jobs = build_jobs(&a, &chain)?;
        let (counters, specs) = output_specs(&jobs, &chain, a.friend)?;
        let m = &chain.members[0];
        let mut fw = FileWriter::create(&out, compression)?;
        let mut all_specs = counters.clone();
        all_specs.extend(specs.iter().cloned());
        let mut tw = if a.friend {
            // Same name and directory as the input tree, so AddFriend("dir/tree", file) works.
            let (dir, base) = tree_name.rsplit_once('/').unwrap_or(("", &tree_name));
            let mut tw = TreeWriter::new(
                &mut fw,
                base,
                &format!("hepml scores for {}", input.display()),
                &all_specs,
            )?;
            tw.set_directory(fw.mkdir_path(dir)?);
            tw
        } else {
            clone_tree(&m.file, &m.tree, &mut fw, &specs)?
        };
        let bar = if a.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(chain.entries())
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} events, {per_sec}, eta {eta}",
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .progress_chars("=> "),
        );
        bar.set_message(
            input
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        let t0 = std::time::Instant::now();
        pipeline::run(
            &chain,
            &jobs,
            nan_policy(&a),
            a.chunk,
            threads,
            |chunk, cols| {
                let mut k = 0;
                for (ci, c) in counters.iter().enumerate() {
                    let counts = cols
                        .iter()
                        .find_map(|c| c.counts.clone())
                        .unwrap_or_default();
                    let arr = Array {
                        interp: c.interp.clone(),
                        start: 0,
                        entries: counts.len() as u64,
                        data: Data::I32(counts.iter().map(|&x| x as i32).collect()),
                        offsets: None,
                    };
                    tw.append(&mut fw, ci, &arr)?;
                    k = ci + 1;
                }
                for (j, col) in cols.iter().enumerate() {
                    let idx = if a.friend {
                        k + j
                    } else {
                        tw.branch_index(&specs[j].name).unwrap_or(j)
                    };
                    tw.append(&mut fw, idx, &to_array(col, &specs[j]))?;
                }
                bar.inc(chunk.len() as u64);
                Ok(())
            },
        )
        .with_context(|| input.display().to_string())?;
        tw.finish(&mut fw)?;
        if !a.friend {
            let skipped = copy_other_keys(&m.file, &tree_name, &mut fw)?;
            for s in skipped {
                eprintln!("hepml: note: {s} of {} is not copied", input.display());
            }
        }
        provenance(&mut fw, &jobs, &a, input)?;
        let done = fw.finish()?;
        bar.finish_and_clear();
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "hepml: {} -> {} ({} events, {:.0} events/s, {}; {})",
            input.display(),
            done.display(),
            chain.entries(),
            chain.entries() as f64 / secs.max(1e-9),
            jobs.iter()
                .flat_map(|j| j.models.describe())
                .collect::<Vec<_>>()
                .join(", "),
            specs
                .iter()
                .map(|s| format!("{} {}", s.name, s.interp.type_name()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
