//! The writer loop of one input: open it, check it against the run's jobs, plan its output
//! branches, and stream the scored chunks into a decorated copy (original baskets byte for
//! byte) or a friend tree.

use super::error::{config, Context, InjectError};
use super::jobs::Jobs;
use super::output::{restore, to_array, Outputs};
use super::pipeline;
use super::plan::{tree_name, Event, Options, Plan, Written};
use super::provenance;
use rootio::write::{clone_tree, copy_other_keys, FileWriter, TreeWriter};
use rootio::{Chain, RootFile};
use std::path::Path;

/// An input opened for scoring: the tree's name and the tree.
pub(crate) struct Opened {
    tree: String,
    chain: Chain,
}

/// Opens `input` and its tree (the one `--tree` names, or its only one).
pub(crate) fn open(o: &Options, input: &Path) -> Result<Opened, InjectError> {
    let file = RootFile::open(input)?;
    let tree = tree_name(&file, o.tree.as_deref())?;
    let chain = Chain::from_files(vec![file], &tree)?;
    Ok(Opened { tree, chain })
}

/// Scores `input` (opened by [`open`]) with the run's `jobs` and writes `out`.
pub(crate) fn one(
    plan: &Plan,
    jobs: &Jobs,
    input: &Path,
    Opened { tree, chain }: Opened,
    out: &Path,
    progress: &mut dyn FnMut(Event),
) -> Result<Written, InjectError> {
    let o = &plan.options;
    let mut notes = Vec::new();
    jobs.check(&chain, &mut notes)?;
    let jobs = &jobs.jobs;
    for n in notes {
        progress(Event::Note(n));
    }
    let outputs = Outputs::new(jobs, &chain, o.friend)?;
    let m = &chain.members[0];
    let mut fw = FileWriter::create(out, o.compression)?;
    progress(Event::Start {
        input,
        entries: chain.entries(),
    });
    let t0 = std::time::Instant::now();
    // The output is started (a decorated copy's original baskets copied) on this, the writing
    // thread, while the first chunks are read and scored.
    let stages = pipeline::run(&chain, jobs, o.chunk, plan.threads, |scored| {
        let mut tw = if o.friend {
            // Same name and directory as the input tree, so AddFriend("dir/tree", file) works.
            let (dir, base) = tree.rsplit_once('/').unwrap_or(("", &tree));
            let mut tw = TreeWriter::new(
                &mut fw,
                base,
                &format!("hepml scores for {}", input.display()),
                &outputs.all(),
            )?;
            tw.set_directory(fw.mkdir_path(dir)?);
            tw
        } else {
            clone_tree(&m.file, &m.tree, &mut fw, &outputs.specs)?
        };
        // Where each branch sits: after the counters in a friend tree, after the original
        // branches in a decorated copy.
        let find = |name: &str| {
            tw.branch_index(name)
                .ok_or_else(|| config(format!("branch '{name}' missing from the output tree")))
        };
        let counter_index = outputs
            .counters
            .iter()
            .map(|c| find(&c.spec.name))
            .collect::<Result<Vec<_>, _>>()?;
        let index = outputs
            .specs
            .iter()
            .map(|s| find(&s.name))
            .collect::<Result<Vec<_>, _>>()?;
        while let Some(mut chunk) = scored.recv()? {
            for (c, &k) in outputs.counters.iter().zip(&counter_index) {
                tw.append(&mut fw, k, &c.array(&chunk.cols)?)?;
            }
            for ((col, spec), &k) in chunk.cols.iter_mut().zip(&outputs.specs).zip(&index) {
                let a = to_array(col, spec);
                let r = tw.append(&mut fw, k, &a);
                restore(col, a);
                r?;
            }
            progress(Event::Advance(chunk.len as u64));
            scored.recycle(chunk.cols);
        }
        tw.finish(&mut fw)?;
        Ok(())
    })
    .context_with(|| input.display().to_string())?;
    if !o.friend {
        for s in copy_other_keys(&m.file, &tree, &mut fw)? {
            progress(Event::Note(format!(
                "{s} of {} is not copied",
                input.display()
            )));
        }
    }
    provenance::write(&mut fw, jobs, o.engine, input)?;
    let output = fw.finish()?;
    Ok(Written {
        input: input.to_path_buf(),
        output,
        entries: chain.entries(),
        models: jobs.iter().flat_map(|j| j.models.describe()).collect(),
        engines: jobs.iter().flat_map(|j| j.choices.clone()).collect(),
        branches: outputs
            .specs
            .iter()
            .map(|s| (s.name.clone(), s.interp.type_name()))
            .collect(),
        seconds: t0.elapsed().as_secs_f64(),
        stages,
    })
}
