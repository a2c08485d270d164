//! `hepml inject`: the command line onto [`injector::inject::Plan`]: globs expanded, options
//! mapped, a progress bar and one log line per output.

use anyhow::{bail, Context, Result};
use batch::manifest::{Grouping, Row};
use batch::task::Counts;
use engine::OrtLibrary;
use indicatif::ProgressBar;
use injector::inject::{tree_name, Event, Options, Plan};
use rootio::RootFile;
use std::path::{Path, PathBuf};

use super::batch::{run_task, shard, write_plan, Shard};
use crate::cli::InjectArgs;

pub(crate) fn expand(inputs: &[String]) -> Result<Vec<PathBuf>> {
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

/// The library's options from the command line.
fn options(a: InjectArgs) -> Result<Options> {
    let mut o = Options::new(expand(&a.inputs)?, a.models, a.output);
    o.features = a.features;
    o.tree = a.tree;
    o.friend = a.friend;
    o.engine = a.engine.into();
    o.device = a.device.into();
    o.ort_library = match a.ort_lib {
        None => OrtLibrary::Search,
        Some(p) if p.as_os_str() == "none" => OrtLibrary::Off,
        Some(p) => OrtLibrary::Path(p),
    };
    o.fold_branch = a.fold_branch;
    o.params = a.params;
    o.length = a.length;
    o.nan = a.nan.map(Into::into);
    o.threads = a.threads;
    o.chunk = a.chunk;
    o.compression = a.compression;
    Ok(o)
}

/// Runs a plan with a progress bar (unless `quiet`) and a log line per output on stderr.
/// With `timing`, a second line per output gives each stage's events/s.
pub fn run_plan(plan: &Plan, quiet: bool, timing: bool) -> Result<()> {
    plan_events(plan, quiet, timing, &mut 0)
}

/// [`run_plan`], adding the events written to `events`.
fn plan_events(plan: &Plan, quiet: bool, timing: bool, events: &mut u64) -> Result<()> {
    let style = super::progress::events_style("{msg}")?;
    let mut bar = ProgressBar::hidden();
    let mut loaded = None;
    // Inputs of the run, and how many have started: a glob's bar says which one it is on.
    let (mut inputs_total, mut started) = (0, 0);
    plan.run(&mut |e| match e {
        Event::Note(n) => eprintln!("hepml: note: {n}"),
        // Logged with the first output, so that a failing run still logs one line.
        Event::Loaded {
            jobs,
            inputs,
            seconds,
        } => {
            inputs_total = inputs;
            loaded = Some(format!(
                "hepml: {jobs} model job(s) loaded in {seconds:.2} s, once for {inputs} input(s)"
            ))
        }
        Event::Start { input, entries } => {
            bar = if quiet {
                ProgressBar::hidden()
            } else {
                ProgressBar::new(entries)
            };
            bar.set_style(style.clone());
            started += 1;
            let name = input
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            bar.set_message(if inputs_total > 1 {
                format!("[{started}/{inputs_total}] {name}")
            } else {
                name
            });
        }
        Event::Advance(n) => bar.inc(n),
        Event::Done(w) => {
            bar.finish_and_clear();
            if let Some(l) = loaded.take() {
                eprintln!("{l}");
            }
            *events += w.entries;
            eprintln!(
                "hepml: {} -> {} ({} events, {:.0} events/s, {}; {})",
                w.input.display(),
                w.output.display(),
                w.entries,
                w.entries as f64 / w.seconds.max(1e-9),
                w.models
                    .iter()
                    .zip(&w.engines)
                    .map(|(m, c)| format!("{m} [engine {c}]"))
                    .collect::<Vec<_>>()
                    .join(", "),
                w.branches
                    .iter()
                    .map(|(n, t)| format!("{n} {t}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if timing {
                eprintln!("hepml timing: {}", w.stages.report(w.entries));
            }
        }
    })?;
    Ok(())
}

/// The tasks of `hepml inject ... --manifest`: the inputs grouped, each task writing a folder
/// `OUTPUT/part-N` of decorated copies (entries read from the tree headers).
pub(crate) fn rows(a: &InjectArgs, g: Grouping) -> Result<Vec<Row>> {
    let inputs = expand(&a.inputs)?;
    if inputs.is_empty() {
        bail!("give the input files to group into the tasks of --manifest");
    }
    let tree = a.tree.as_deref();
    let count = |p: &Path| -> Result<u64, String> {
        let f = RootFile::open(p).map_err(|e| e.to_string())?;
        let t = tree_name(&f, tree).map_err(|e| e.to_string())?;
        Ok(f.tree(&t).map_err(|e| e.to_string())?.entries)
    };
    Ok(batch::manifest::plan(&[inputs], g, &a.output, "", &count)?)
}

pub fn run(a: InjectArgs) -> Result<()> {
    let (quiet, timing) = (a.quiet, a.timing);
    match shard(&a.shard)? {
        None => run_plan(&Plan::new(options(a)?)?, quiet, timing),
        Some(Shard::Plan(m, g)) => write_plan(&m, &a.output, rows(&a, g)?),
        Some(Shard::Task(m, task)) => {
            if !a.inputs.is_empty() {
                bail!("a --task reads its inputs from the manifest: drop the input files");
            }
            let models: Vec<PathBuf> = a.models.iter().chain(&a.features).cloned().collect();
            let out_dir = a.output.clone();
            let o = options(a)?;
            run_task(&m, task, &out_dir, &models, |row, tmp| -> Result<Counts> {
                std::fs::create_dir_all(tmp)?;
                let mut o = o;
                o.inputs = row.inputs.clone();
                o.output = tmp.to_path_buf();
                let mut n = 0;
                let plan = Plan::new(o)?;
                plan_events(&plan, quiet, timing, &mut n)?;
                Ok(Counts {
                    entries_in: n,
                    entries_out: n,
                })
            })
        }
    }
}
