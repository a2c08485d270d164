//! The branches inject writes: one per model output column, plus, for per-object models whose
//! objects have no counter branch in the output tree, a counter of their own.

use super::error::{config, InjectError};
use super::pipeline::{ModelJob, OutColumn};
use rootio::write::BranchSpec;
use rootio::{Array, Chain, Data, Prim, Shape};

/// A counter branch written with the outputs, and the output column whose per-event counts it
/// holds (the first output of its per-object model).
pub(crate) struct Counter {
    pub spec: BranchSpec,
    pub column: usize,
}

impl Counter {
    /// This chunk's counts, from the column the counter belongs to.
    pub fn array(&self, cols: &[OutColumn]) -> Result<Array, InjectError> {
        let col = &cols[self.column];
        let counts = col.counts.as_ref().ok_or_else(|| {
            config(format!(
                "output '{}' has no per-event counts for '{}'",
                col.branch, self.spec.name
            ))
        })?;
        Ok(Array {
            interp: self.spec.interp.clone(),
            start: 0,
            entries: counts.len() as u64,
            data: Data::I32(counts.iter().map(|&x| x as i32).collect()),
            offsets: None,
            outer: Vec::new(),
        })
    }
}

/// Every branch one input's jobs write: the counters, and one spec per output column (in the
/// order the pipeline hands the columns over).
pub(crate) struct Outputs {
    pub counters: Vec<Counter>,
    pub specs: Vec<BranchSpec>,
}

impl Outputs {
    /// The output branches of `jobs` over `chain`. A per-object output reuses its objects'
    /// counter in a decorated copy; a friend tree (which has no such branch) or objects in a
    /// `std::vector` get a counter `n<first output>`. Names must be new and distinct.
    pub fn new(jobs: &[ModelJob], chain: &Chain, friend: bool) -> Result<Outputs, InjectError> {
        let mut specs = Vec::new();
        let mut counters = Vec::new();
        for j in jobs {
            let counter = if j.per_object {
                let first = j
                    .inputs
                    .iter()
                    .flat_map(|i| i.branches())
                    .next()
                    .ok_or_else(|| config("per-object model without inputs"))?;
                match chain.interp(&first)?.shape {
                    Shape::Var { counter, .. } if !friend => Some(Shape::Var {
                        counter,
                        inner: vec![],
                    }),
                    Shape::Var { .. } | Shape::Vector => {
                        let name = format!("n{}", j.outputs[0].branch);
                        counters.push(Counter {
                            spec: BranchSpec::scalar(&name, Prim::I32),
                            column: specs.len(),
                        });
                        Some(Shape::Var {
                            counter: name,
                            inner: vec![],
                        })
                    }
                    _ => return Err(config(format!("per-object input '{first}' is not jagged"))),
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
                return Err(config(format!("two outputs write branch '{}'", s.name)));
            }
            if !friend && chain.members[0].tree.branch(&s.name).is_ok() {
                return Err(config(format!(
                    "branch '{}' exists already in the input tree; choose another output name",
                    s.name
                )));
            }
        }
        Ok(Outputs { counters, specs })
    }

    /// Counters first, then the output columns: the branches of a friend tree, in order.
    pub fn all(&self) -> Vec<BranchSpec> {
        let mut all: Vec<BranchSpec> = self.counters.iter().map(|c| c.spec.clone()).collect();
        all.extend(self.specs.iter().cloned());
        all
    }
}

/// One chunk of an output column as the writer takes it (per-event counts become offsets).
/// Float values move into the array; [`restore`] gives them back to the column afterwards, so
/// that their buffer is reused.
pub(crate) fn to_array(col: &mut OutColumn, spec: &BranchSpec) -> Array {
    let n = col.counts.as_ref().map_or(col.values.len(), |c| c.len());
    let data = if col.double {
        Data::F64(col.values.iter().map(|&v| v as f64).collect())
    } else {
        Data::F32(std::mem::take(&mut col.values))
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
        outer: Vec::new(),
    }
}

/// Gives `col` back the values [`to_array`] moved into `a`.
pub(crate) fn restore(col: &mut OutColumn, a: Array) {
    if let Data::F32(v) = a.data {
        col.values = v;
    }
}
