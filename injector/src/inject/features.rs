//! What `inject` feeds a model, read without scoring: the same feature spec (or the model's
//! metadata), the same expressions, transforms, padding and NaN policy, gathered into one
//! table for tools that run the model themselves (`hepml explain`), together with extra
//! per-event expressions such as a label and a weight.

use super::error::{config, InjectError};
use super::inputs::{branch_index, build, ChunkView, InputKind, ObjectVar};
use super::jobs::build_jobs;
use super::pipeline::ModelJob;
use super::plan::{tree_name, Plan};
use crate::expr::Expr;
use rootio::{Chain, Chunk, RootFile};

/// One model input as read: dimensions after the batch, a name per column, `events x width`
/// values.
#[derive(Debug, Clone)]
pub struct FeatureInput {
    pub name: String,
    pub row_shape: Vec<usize>,
    pub columns: Vec<String>,
    pub data: Vec<f32>,
}

/// The inputs of one model over the first events of the plan's inputs (one chain).
#[derive(Debug, Clone)]
pub struct Features {
    pub inputs: Vec<FeatureInput>,
    /// Each extra expression's value per event.
    pub extra: Vec<Vec<f64>>,
    pub events: usize,
}

impl Plan {
    /// Reads the inputs each model of the plan gets (one [`Features`] per model, in order) from
    /// the plan's input files (read as one chain), at most `max_events` events, and the values
    /// of `exprs` for the same events. The models are decoded once for all of them. Per-object
    /// row models (one score per object) are refused.
    pub fn read_features(
        &self,
        exprs: &[String],
        max_events: u64,
    ) -> Result<Vec<Features>, InjectError> {
        let o = &self.options;
        let first = o
            .inputs
            .first()
            .ok_or_else(|| config("give at least one input"))?;
        let tree = tree_name(&RootFile::open(first)?, o.tree.as_deref())?;
        let chain = Chain::open(&o.inputs, &tree)?;
        let mut notes = Vec::new();
        let jobs = build_jobs(o, &self.params, &mut notes)?;
        jobs.check(&chain, &mut notes)?;
        jobs.jobs
            .iter()
            .map(|job| self.read_job(job, &chain, exprs, max_events))
            .collect()
    }

    fn read_job(
        &self,
        job: &ModelJob,
        chain: &Chain,
        exprs: &[String],
        max_events: u64,
    ) -> Result<Features, InjectError> {
        let o = &self.options;
        if job.per_object {
            return Err(config(format!(
                "model '{}' scores objects, not events: explain needs one score per event",
                job.name
            )));
        }
        let parsed: Vec<Expr> = exprs
            .iter()
            .map(|e| Expr::parse(e).map_err(|err| config(format!("expression '{e}': {err}"))))
            .collect::<Result<_, _>>()?;
        let mut names = job.branches();
        for e in &parsed {
            for (n, _) in e.vars() {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        let index = branch_index(&names);
        let mut out = Features {
            inputs: job
                .inputs
                .iter()
                .map(|s| FeatureInput {
                    name: s.name.clone(),
                    row_shape: s.shape(1, 1)[1..].to_vec(),
                    columns: column_names(&s.name, &s.kind),
                    data: Vec::new(),
                })
                .collect(),
            extra: vec![Vec::new(); parsed.len()],
            events: 0,
        };
        let want = max_events.min(chain.entries()) as usize;
        let mut it = chain.chunks(&names, o.chunk)?.threads(self.threads);
        let mut chunk = Chunk::new();
        let mut buf = Vec::new();
        while out.events < want && it.next_into(&mut chunk)? {
            let view = ChunkView::new(&chunk, &index);
            let take = chunk.len().min(want - out.events);
            for (spec, fi) in job.inputs.iter().zip(out.inputs.iter_mut()) {
                build(spec, &view, job.nan, &mut buf)?;
                let w = buf.len() / chunk.len().max(1);
                fi.data.extend_from_slice(&buf[..take * w]);
            }
            for (e, v) in parsed.iter().zip(out.extra.iter_mut()) {
                let vals = e.eval(chunk.len(), &mut |name, idx, o| {
                    view.event_values(name, idx, o)
                })?;
                v.extend_from_slice(&vals[..take]);
            }
            out.events += take;
        }
        Ok(out)
    }
}

/// A name per column of an input, in the tensor's row-major order.
fn column_names(input: &str, kind: &InputKind) -> Vec<String> {
    match kind {
        InputKind::Event { columns } => columns.iter().map(|e| e.to_string()).collect(),
        InputKind::Objects {
            vars,
            length,
            vars_first,
            ..
        } => {
            let var = |v: &ObjectVar| match v {
                ObjectVar::Branch { name, .. } => name.clone(),
                ObjectVar::Mask => format!("{input}.mask"),
            };
            let mut out = Vec::with_capacity(vars.len() * length);
            if *vars_first {
                for v in vars {
                    for i in 0..*length {
                        out.push(format!("{}[{i}]", var(v)));
                    }
                }
            } else {
                for i in 0..*length {
                    for v in vars {
                        out.push(format!("{}[{i}]", var(v)));
                    }
                }
            }
            out
        }
        InputKind::ObjectRows { columns } => columns.clone(),
    }
}
