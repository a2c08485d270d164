//! `hepml explain`: the command line onto [`models::explain`]: the events (a run directory's
//! own splits, or ntuples read as inject reads them), the models on their engines, a progress
//! bar per stage, the output folder written under a temporary name and renamed when complete.

use anyhow::{anyhow, bail, Context, Result};
use engine::{EngineKind, EngineOptions, Model};
use indicatif::{ProgressBar, ProgressStyle};
use injector::inject::{Options, Plan};
use models::explain::data::{Dataset, InputShapes, Sample};
use models::explain::scorer::Scorer;
use models::explain::{self, Progress};
use std::path::{Path, PathBuf};

use super::inject::expand;
use crate::cli::{ExplainArgs, GroupBy};

/// One model to explain: the model (read and decoded once), its name in the report, its
/// events, and its folder under the output (empty: the output itself).
struct Job {
    model: Model,
    label: String,
    data: Dataset,
    folder: String,
}

pub fn run(a: ExplainArgs) -> Result<()> {
    let out = a.output.clone();
    if out.exists() && !a.force {
        bail!(
            "{} exists; choose another output folder or pass --force",
            out.display()
        );
    }
    let opts = options(&a)?;
    let jobs: Vec<Job> = match (&a.run, a.models.is_empty()) {
        (Some(run), true) => vec![from_run(run, a.seed, &a.split, &a.groups, &scratch(&out))?],
        (Some(_), false) => bail!("give a run directory or --model, not both"),
        (None, true) => bail!("give a training run directory, or --model with --data"),
        (None, false) => from_ntuples(&a)?,
    };
    let tmp = rootio::write::file::tmp_name(&out);
    let r = write_all(
        &jobs,
        &opts,
        a.engine.into(),
        a.output_name.as_deref(),
        a.quiet,
        &tmp,
    );
    // A run directory's model is exported into a scratch folder beside the output.
    if a.run.is_some() {
        let _ = std::fs::remove_dir_all(scratch(&out));
    }
    if let Err(e) = r {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("replacing {}", out.display()))?;
    }
    std::fs::rename(&tmp, &out)
        .with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))?;
    eprintln!("hepml: explanation in {}", out.display());
    Ok(())
}

fn options(a: &ExplainArgs) -> Result<explain::Options> {
    let pairs = a
        .pdp_pairs
        .iter()
        .map(|p| {
            p.split_once(':')
                .map(|(x, y)| (x.to_string(), y.to_string()))
                .ok_or_else(|| anyhow!("--pdp-pair {p}: expected FEATURE:FEATURE"))
        })
        .collect::<Result<Vec<_>>>()?;
    if a.repeats == 0 || a.steps == 0 || a.events == 0 {
        bail!("--repeats, --steps and --events must be at least 1");
    }
    Ok(explain::Options {
        methods: a.methods.iter().map(|m| (*m).into()).collect(),
        repeats: a.repeats,
        seed: a.seed,
        steps: a.steps,
        baseline: a.baseline.into(),
        exact: a.exact,
        events: a.events,
        pdp: a.pdp.clone(),
        pdp_pairs: pairs,
        surrogate_depth: a.surrogate_depth,
        ..Default::default()
    })
}

fn scratch(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".model");
    PathBuf::from(s)
}

/// What `hepml train` writes into a run directory with `evaluation: {explain: true}`: every
/// method with its defaults, on the run's train and valid samples, into `out`.
pub fn for_run(run: &Path, out: &Path, quiet: bool) -> Result<()> {
    let opts = explain::Options::default();
    let split = ["train".to_string(), "valid".to_string()];
    let model_dir = scratch(out);
    let job = from_run(run, opts.seed, &split, &[], &model_dir)?;
    let r = write_all(&[job], &opts, EngineKind::Auto, None, quiet, out);
    let _ = std::fs::remove_dir_all(&model_dir);
    r
}

/// A run directory: its fold-0 model exported as `hepml export` would (into `model_dir`), on
/// the run's splits (rebuilt with the seed in its run.json, else `seed`).
fn from_run(
    run: &Path,
    seed: u64,
    split: &[String],
    groups: &[String],
    model_dir: &Path,
) -> Result<Job> {
    let saved = models::export::load(run)?;
    let seed = match std::fs::read_to_string(run.join("run.json")) {
        Ok(t) => serde_json::from_str::<serde_json::Value>(&t)
            .ok()
            .and_then(|v| v["seed"].as_u64())
            .ok_or_else(|| anyhow!("{}: no seed in run.json", run.display()))?,
        Err(_) => {
            eprintln!(
                "hepml: {} has no run.json (an older run): rebuilding its splits with --seed {seed}",
                run.display(),
            );
            seed
        }
    };
    let mut ds = explain::data::from_run(run, seed)?;
    ds.keep_samples(split)?;
    ds.set_groups(groups, false)?;
    let bytes = models::export::export(&saved, "score")?;
    let first = bytes
        .first()
        .ok_or_else(|| anyhow!("{}: the run holds no model", run.display()))?;
    let dir = model_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("model.onnx");
    std::fs::write(&path, first).with_context(|| format!("writing {}", path.display()))?;
    Ok(Job {
        label: format!("{} (fold 0, exported)", run.display()),
        model: Model::read(&path)?,
        data: ds,
        folder: String::new(),
    })
}

/// Ntuples: each model's inputs as inject builds them, the label and weight expressions; with
/// --valid, a `train` and a `valid` sample.
fn from_ntuples(a: &ExplainArgs) -> Result<Vec<Job>> {
    if a.data.is_empty() {
        bail!("give the events to explain on with --data (ROOT files)");
    }
    let mut sets = vec![("data", &a.data)];
    if !a.valid.is_empty() {
        sets = vec![("train", &a.data), ("valid", &a.valid)];
    }
    let mut plans = Vec::new();
    for (name, files) in &sets {
        let mut o = Options::new(expand(files)?, a.models.clone(), a.output.clone());
        o.features = a.features.clone();
        o.tree = a.tree.clone();
        o.params = a.params.clone();
        o.length = a.length;
        o.nan = a.nan.map(Into::into);
        o.engine = a.engine.into();
        plans.push((*name, files.join(", "), Plan::new(o)?));
    }
    let mut exprs = Vec::new();
    exprs.extend(a.label.clone());
    exprs.extend(a.weight.clone());
    // Every model's inputs, per sample, read with the models decoded once per sample.
    let mut features = Vec::new();
    for (_, _, plan) in &plans {
        let read = plan.read_features(&exprs, a.max_events).with_context(|| {
            let names: Vec<_> = a.models.iter().map(|m| m.display().to_string()).collect();
            names.join(", ")
        })?;
        features.push(read.into_iter());
    }
    let mut out = Vec::new();
    for (i, m) in a.models.iter().enumerate() {
        let model = Model::read(m)?;
        let mut ds: Option<Dataset> = None;
        for ((name, files, _), f) in plans.iter().zip(features.iter_mut()) {
            let f = f
                .next()
                .ok_or_else(|| anyhow!("{}: no inputs read for model {i}", m.display()))?;
            let (names, inputs, sample) = flatten(a, f, name);
            match &mut ds {
                None => {
                    let parameter = model
                        .info()
                        .metadata
                        .get("hepml.parameter")
                        .and_then(|p| names.iter().position(|n| n == p));
                    ds = Some(Dataset {
                        names,
                        inputs,
                        groups: Vec::new(),
                        source: format!("{name}: {files} ({} events)", sample.w.len()),
                        samples: vec![sample],
                        parameter,
                    });
                }
                Some(d) => {
                    d.source += &format!("; {name}: {files} ({} events)", sample.w.len());
                    d.samples.push(sample);
                }
            }
        }
        let mut ds = ds.ok_or_else(|| anyhow!("no events"))?;
        ds.set_groups(&a.groups, a.group_by == GroupBy::Object)?;
        let name = if a.models.len() == 1 {
            String::new()
        } else {
            m.file_stem()
                .map_or(format!("model{i}"), |s| s.to_string_lossy().into_owned())
        };
        out.push(Job {
            model,
            label: m.display().to_string(),
            data: ds,
            folder: name,
        });
    }
    Ok(out)
}

/// One sample's flat rows (every input's columns side by side), labels and weights.
fn flatten(
    a: &ExplainArgs,
    f: injector::inject::Features,
    name: &str,
) -> (Vec<String>, InputShapes, Sample) {
    let names: Vec<String> = f
        .inputs
        .iter()
        .flat_map(|i| i.columns.iter().cloned())
        .collect();
    let width = names.len();
    let mut x = vec![0f32; f.events * width];
    let mut start = 0;
    for inp in &f.inputs {
        let w = inp.columns.len();
        for r in 0..f.events {
            x[r * width + start..r * width + start + w]
                .copy_from_slice(&inp.data[r * w..(r + 1) * w]);
        }
        start += w;
    }
    let inputs = f
        .inputs
        .iter()
        .map(|i| (i.name.clone(), i.row_shape.clone()))
        .collect();
    let mut extra = f.extra.into_iter();
    let y = a
        .label
        .as_ref()
        .and_then(|_| extra.next())
        .map(|v| v.into_iter().map(|v| v as f32).collect());
    let w = a
        .weight
        .as_ref()
        .and_then(|_| extra.next())
        .map(|v| v.into_iter().map(|v| v as f32).collect())
        .unwrap_or_else(|| vec![1.0; f.events]);
    (
        names,
        inputs,
        Sample {
            name: name.into(),
            x,
            y,
            w,
        },
    )
}

fn write_all(
    jobs: &[Job],
    opts: &explain::Options,
    kind: EngineKind,
    output_name: Option<&str>,
    quiet: bool,
    tmp: &Path,
) -> Result<()> {
    std::fs::create_dir_all(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    for Job {
        model,
        label,
        data: ds,
        folder: sub,
    } in jobs
    {
        let dir = if jobs.len() == 1 {
            tmp.to_path_buf()
        } else {
            tmp.join(sub)
        };
        std::fs::create_dir_all(&dir)?;
        let opened = engine::open(
            model,
            &EngineOptions {
                kind,
                ..Default::default()
            },
        )?;
        let scorer = Scorer::new(opened, &ds.inputs, output_name).with_context(|| label.clone())?;
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(1)
        };
        bar.set_style(
            ProgressStyle::with_template("explain {msg:24} [{bar:30}] {pos}/{len} eta {eta}")
                .map_err(|e| anyhow!("{e}"))?
                .progress_chars("=> "),
        );
        let report = explain::explain(&scorer, label, ds, opts, &dir, &mut |p| match p {
            Progress::Stage(name, n) => {
                bar.set_message(name.to_string());
                bar.set_length(n);
                bar.set_position(0);
            }
            Progress::Tick => bar.inc(1),
        })
        .with_context(|| label.clone())?;
        bar.finish_and_clear();
        std::fs::write(
            dir.join("explain.json"),
            serde_json::to_string_pretty(&report.json)?,
        )?;
        std::fs::write(dir.join("summary.txt"), &report.summary)?;
        print!("{}", report.summary);
    }
    Ok(())
}
