//! The writer loop of one input: open it, check it against the run's jobs, plan its output
//! branches, and stream the scored chunks into a decorated copy (original baskets byte for
//! byte) or a friend tree.

use super::error::{config, Context, InjectError};
use super::jobs::Jobs;
use super::output::{restore, to_array, Outputs};
use super::pipeline::{self, ModelJob, ScoredChunks, Stages};
use super::plan::{tree_name, Event, Options, Plan, Written};
use super::provenance;
use rootio::write::{clone_tree, copy_other_keys, FileWriter, TreeWriter};
use rootio::{Chain, RootFile};
use std::path::{Path, PathBuf};

/// An input opened for scoring and checked against the run's jobs: its path, the tree's name,
/// the tree, and the notes the check made.
pub(crate) struct Opened {
    input: PathBuf,
    tree: String,
    chain: Chain,
    notes: Vec<String>,
}

impl pipeline::Input for Opened {
    fn chain(&self) -> &Chain {
        &self.chain
    }
}

/// Opens `input` and its tree (the one `--tree` names, or its only one), and checks that it has
/// what the jobs read.
fn open(o: &Options, jobs: &Jobs, input: &Path) -> Result<Opened, InjectError> {
    let file = RootFile::open(input)?;
    let tree = tree_name(&file, o.tree.as_deref())?;
    let chain = Chain::from_files(vec![file], &tree)?;
    let mut notes = Vec::new();
    jobs.check(&chain, &mut notes)?;
    Ok(Opened {
        input: input.to_path_buf(),
        tree,
        chain,
        notes,
    })
}

/// Scores every input of the run with its `jobs` and writes each one's output (`out` names it),
/// in one pipeline: the next input is opened and read while the previous one is scored and
/// written. Stops at the first error; the outputs written before it stay.
pub(crate) fn all(
    plan: &Plan,
    jobs: &Jobs,
    out: &dyn Fn(&Path) -> Result<PathBuf, InjectError>,
    progress: &mut dyn FnMut(Event),
) -> Result<Vec<Written>, InjectError> {
    let o = &plan.options;
    let inputs = o.inputs.iter().map(|i| open(o, jobs, i));
    pipeline::run(inputs, &jobs.jobs, o.chunk, plan.threads, |scored| {
        let mut done = Vec::new();
        while let Some(opened) = scored.next_input()? {
            let out = out(&opened.input)?;
            let w = one(plan, &jobs.jobs, &opened, &out, scored, progress)?;
            progress(Event::Done(&w));
            done.push(w);
        }
        Ok(done)
    })
}

/// Writes `out` for one opened input from its scored chunks.
fn one(
    plan: &Plan,
    jobs: &[ModelJob],
    opened: &Opened,
    out: &Path,
    scored: &mut ScoredChunks<Opened>,
    progress: &mut dyn FnMut(Event),
) -> Result<Written, InjectError> {
    let o = &plan.options;
    let Opened {
        input,
        tree,
        chain,
        notes,
    } = opened;
    let input = input.as_path();
    for n in notes {
        progress(Event::Note(n.clone()));
    }
    let outputs = Outputs::new(jobs, chain, o.friend)?;
    let m = &chain.members[0];
    let t0 = std::time::Instant::now();
    let waited = scored.waited();
    let mut fw = FileWriter::create(out, o.compression)?;
    progress(Event::Start {
        input,
        entries: chain.entries(),
    });
    // Errors while the tree is written name the input.
    let mut write_tree = || -> Result<Stages, InjectError> {
        // The output is started (a decorated copy's original baskets copied) while the first
        // chunks are read and scored.
        let mut tw = if o.friend {
            // Same name and directory as the input tree, so AddFriend("dir/tree", file) works.
            let (dir, base) = tree.rsplit_once('/').unwrap_or(("", tree));
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
        let mut stages = Stages::default();
        while let Some(mut chunk) = scored.recv()? {
            stages.add(&chunk.stages);
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
        Ok(stages)
    };
    let mut stages = write_tree().context_with(|| input.display().to_string())?;
    if !o.friend {
        for s in copy_other_keys(&m.file, tree, &mut fw)? {
            progress(Event::Note(format!(
                "{s} of {} is not copied",
                input.display()
            )));
        }
    }
    provenance::write(&mut fw, jobs, o.engine, input)?;
    let output = fw.finish()?;
    stages.write_wait = scored.waited() - waited;
    stages.write = t0.elapsed().saturating_sub(stages.write_wait);
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
