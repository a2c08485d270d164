//! `hepml convert CONFIG -o OUT.h5`: ROOT ntuples -> one pandas-readable HDF5 table; with
//! `--manifest`, the files of every sample sharded into tasks writing `OUT/part-N.h5`.

use crate::cli::ConvertArgs;
use anyhow::{bail, Context, Result};
use batch::manifest::{absolute, Grouping, Row};
use batch::task::Counts;
use indicatif::ProgressBar;
use models::config::{ConfigFile, ConvertConfig};
use rootio::RootFile;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::batch::{run_task, shard, write_plan, Shard};

/// Every sample's files (absolute) and trees.
fn sample_files(cfg: &ConvertConfig) -> Result<Vec<(Vec<PathBuf>, String)>> {
    cfg.samples
        .iter()
        .map(|s| {
            let files = models::convert::expand(&s.name, &s.files)?
                .iter()
                .map(|f| absolute(f))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((files, s.tree.clone().unwrap_or_else(|| cfg.tree.clone())))
        })
        .collect()
}

/// The tasks of `hepml convert ... --manifest`: each sample's files grouped (a task never
/// mixes samples), each task writing `OUTPUT/part-N.h5`.
pub(crate) fn rows(a: &ConvertArgs, g: Grouping) -> Result<Vec<Row>> {
    let cfg = ConvertConfig::from_file(&a.config)?;
    let samples = sample_files(&cfg)?;
    let trees: HashMap<&Path, &str> = samples
        .iter()
        .flat_map(|(f, t)| f.iter().map(move |p| (p.as_path(), t.as_str())))
        .collect();
    let count = |p: &Path| -> Result<u64, String> {
        let f = RootFile::open(p).map_err(|e| e.to_string())?;
        let t = trees.get(p).copied().unwrap_or("");
        Ok(f.tree(t).map_err(|e| e.to_string())?.entries)
    };
    let groups: Vec<Vec<PathBuf>> = samples.iter().map(|(f, _)| f.clone()).collect();
    Ok(batch::manifest::plan(&groups, g, &a.output, ".h5", &count)?)
}

/// The config restricted to `inputs`: each sample keeps only its files among them (a sample
/// left without files is skipped, its position and so its `sample` number kept).
fn restrict(cfg: &ConvertConfig, inputs: &[PathBuf]) -> Result<ConvertConfig> {
    let mut out = cfg.clone();
    for (s, (files, _)) in out.samples.iter_mut().zip(sample_files(cfg)?) {
        s.files = files
            .iter()
            .filter(|f| inputs.contains(f))
            .map(|f| glob::Pattern::escape(&f.to_string_lossy()))
            .collect();
    }
    Ok(out)
}

fn convert(cfg: &ConvertConfig, out: &Path, quiet: bool) -> Result<Counts> {
    let total = models::convert::count_entries(cfg)?;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(super::progress::events_style("convert")?);
    let t0 = std::time::Instant::now();
    let stats = models::convert::convert(cfg, out, |n| bar.inc(n))?;
    bar.finish_and_clear();
    let kept: u64 = stats.iter().map(|s| s.kept).sum();
    for s in &stats {
        eprintln!(
            "hepml: sample {}: {} file(s), {} events read, {} kept ({:.1}%), weight sum {:.6}",
            s.name,
            s.files,
            s.read,
            s.kept,
            100.0 * s.kept as f64 / s.read.max(1) as f64,
            s.weight_sum
        );
    }
    eprintln!(
        "hepml: wrote {} ({} events, key `events`) in {:.2} s",
        out.display(),
        kept,
        t0.elapsed().as_secs_f64()
    );
    Ok(Counts {
        entries_in: stats.iter().map(|s| s.read).sum(),
        entries_out: kept,
    })
}

pub fn run(a: ConvertArgs) -> Result<()> {
    match shard(&a.shard)? {
        None => {
            let cfg = ConvertConfig::from_file(&a.config)?;
            convert(&cfg, &a.output, a.quiet)
                .with_context(|| a.config.display().to_string())
                .map(|_| ())
        }
        Some(Shard::Plan(m, g)) => write_plan(&m, &a.output, rows(&a, g)?),
        Some(Shard::Task(m, task)) => {
            let cfg = ConvertConfig::from_file(&a.config)?;
            run_task(
                &m,
                task,
                &a.output,
                std::slice::from_ref(&a.config),
                |row, tmp| {
                    let part = restrict(&cfg, &row.inputs)?;
                    if part.samples.iter().all(|s| s.files.is_empty()) {
                        bail!(
                            "no input of task {task} belongs to a sample of {}",
                            a.config.display()
                        );
                    }
                    convert(&part, tmp, a.quiet).with_context(|| a.config.display().to_string())
                },
            )
        }
    }
}
