//! The tract backend: one optimised plan with a symbolic batch, shared by all threads, plus
//! plans optimised for the fixed batch sizes actually seen (tract runs fixed shapes 1.2-3x
//! faster), built on first use and cached.

use super::{read_info, EngineError, ModelInfo};
use crate::inject::pipeline::{Scorer, Tensor};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tract_onnx::prelude::*;

type Plan = Arc<TypedRunnableModel>;

pub struct TractEngine {
    pub info: ModelInfo,
    /// None when tract cannot optimise the graph with symbolic shapes (ParticleNet's
    /// `n_pf + n_sv`): such models run on fixed-shape plans only.
    symbolic: Option<Plan>,
    symbolic_error: String,
    fixed: Mutex<HashMap<Vec<Vec<usize>>, Plan>>,
    /// Build fixed-shape plans (off for models whose shapes vary chunk to chunk).
    pub fixed_plans: bool,
    /// Batches of at least 2 x `SPLIT_MIN` rows are split across this many threads.
    pub threads: usize,
}

/// Smallest part worth a thread of its own.
const SPLIT_MIN: usize = 2048;

impl TractEngine {
    pub fn load(path: &Path) -> Result<Self, EngineError> {
        let info = read_info(path)?;
        for i in &info.inputs {
            if i.elem != "float" {
                return Err(EngineError::Input {
                    path: path.to_path_buf(),
                    input: i.name.clone(),
                    msg: format!("element type {} (only float inputs are supported)", i.elem),
                });
            }
        }
        let (symbolic, symbolic_error) = match Self::plan(path, None, &info) {
            Ok(p) => (Some(p), String::new()),
            Err(e) => {
                let msg = format!("{e:#}");
                // A graph tract cannot even load is an error now; one it cannot optimise with
                // symbolic shapes is tried with the first fixed shapes instead.
                if tract_onnx::onnx().model_for_path(path).is_err() {
                    return Err(EngineError::Load {
                        path: path.to_path_buf(),
                        msg: format!("tract: {msg}"),
                    });
                }
                (None, msg)
            }
        };
        Ok(TractEngine {
            info,
            symbolic,
            symbolic_error,
            fixed: Mutex::new(HashMap::new()),
            fixed_plans: true,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        })
    }

    /// A plan for fixed input shapes, or (None) with every undeclared dimension a symbol: the
    /// first is the batch `N`, others `D<input>_<axis>` (anonymous dims as skl2onnx writes them
    /// would leave tract without a fact).
    fn plan(path: &Path, shapes: Option<&[Vec<usize>]>, info: &ModelInfo) -> TractResult<Plan> {
        let mut m = tract_onnx::onnx().model_for_path(path)?;
        match shapes {
            Some(shapes) => {
                for (i, s) in shapes.iter().enumerate() {
                    m = m.with_input_fact(i, f32::fact(s).into())?;
                }
            }
            None => {
                let n = m.sym("N");
                for (i, port) in info.inputs.iter().enumerate() {
                    let dims: TVec<TDim> = port
                        .shape
                        .iter()
                        .enumerate()
                        .map(
                            |(k, d)| match (d, port.dim_names.get(k).cloned().flatten()) {
                                (Some(v), _) => v.to_dim(),
                                (None, _) if k == 0 => n.clone().into(),
                                (None, Some(name)) => m.sym(&name).into(),
                                (None, None) => m.sym(&format!("D{i}_{k}")).into(),
                            },
                        )
                        .collect();
                    m = m.with_input_fact(i, f32::fact(dims).into())?;
                }
            }
        }
        m.into_optimized()?.into_runnable()
    }

    fn run_plan(&self, plan: &Plan, inputs: &[Tensor]) -> TractResult<Vec<Tensor>> {
        let tv: TVec<TValue> = inputs
            .iter()
            .map(|t| {
                tract_ndarray::ArrayD::from_shape_vec(t.shape.clone(), t.data.clone())
                    .map(|a| a.into_tvalue())
            })
            .collect::<Result<_, _>>()?;
        let out = plan.run(tv)?;
        out.iter()
            .zip(&self.info.outputs)
            .map(|(v, port)| {
                let t = v.cast_to::<f32>()?;
                Ok(Tensor {
                    name: port.name.clone(),
                    shape: t.shape().to_vec(),
                    data: t.to_plain_array_view::<f32>()?.iter().copied().collect(),
                })
            })
            .collect()
    }
}

impl Scorer for TractEngine {
    /// Scores a batch; large batches are cut into row ranges scored on several threads (rows
    /// are independent, plans are shared) and put back in order.
    fn score(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
        let rows = inputs
            .first()
            .and_then(|t| t.shape.first().copied())
            .unwrap_or(0);
        let parts = self.threads.min(rows / SPLIT_MIN).max(1);
        if parts == 1 || inputs.iter().any(|t| t.shape.first() != Some(&rows)) {
            return self.score_one(inputs);
        }
        let bounds: Vec<(usize, usize)> = (0..parts)
            .map(|p| (rows * p / parts, rows * (p + 1) / parts))
            .collect();
        let results: Vec<Result<Vec<Tensor>, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = bounds
                .iter()
                .map(|&(a, b)| {
                    s.spawn(move || {
                        let part: Vec<Tensor> = inputs
                            .iter()
                            .map(|t| {
                                let w: usize = t.shape[1..].iter().product();
                                let mut shape = t.shape.clone();
                                shape[0] = b - a;
                                Tensor {
                                    name: t.name.clone(),
                                    shape,
                                    data: t.data[a * w..b * w].to_vec(),
                                }
                            })
                            .collect();
                        self.score_one(&part)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("an inference thread panicked".into()))
                })
                .collect()
        });
        let mut merged: Vec<Tensor> = Vec::new();
        for r in results {
            for (k, t) in r?.into_iter().enumerate() {
                match merged.get_mut(k) {
                    Some(m) => {
                        m.shape[0] += t.shape[0];
                        m.data.extend_from_slice(&t.data);
                    }
                    None => merged.push(t),
                }
            }
        }
        Ok(merged)
    }

    fn describe(&self) -> String {
        format!(
            "tract 0.23 on {} (xxh64 {})",
            self.info.path.display(),
            self.info.hash
        )
    }
}

impl TractEngine {
    fn score_one(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
        // Order and check the inputs as the graph declares them.
        let mut ordered = Vec::with_capacity(self.info.inputs.len());
        for port in &self.info.inputs {
            let t = inputs
                .iter()
                .find(|t| t.name == port.name)
                .ok_or_else(|| format!("no data for model input '{}'", port.name))?;
            if t.shape.len() != port.shape.len()
                || t.shape
                    .iter()
                    .zip(&port.shape)
                    .any(|(a, b)| b.is_some_and(|b| b != *a))
            {
                return Err(format!(
                    "input '{}' has shape {:?}, the model expects {:?}",
                    port.name,
                    t.shape,
                    port.shape
                        .iter()
                        .map(|d| d.map_or("?".to_string(), |n| n.to_string()))
                        .collect::<Vec<_>>()
                ));
            }
            ordered.push(t.clone());
        }
        for t in inputs {
            if !self.info.inputs.iter().any(|p| p.name == t.name) {
                return Err(format!("the model has no input named '{}'", t.name));
            }
        }
        if ordered.first().is_some_and(|t| t.shape.first() == Some(&0)) {
            // Nothing to score: empty outputs of the right width.
            return Ok(self
                .info
                .outputs
                .iter()
                .map(|p| {
                    let mut shape: Vec<usize> = p.shape.iter().map(|d| d.unwrap_or(0)).collect();
                    if let Some(s) = shape.first_mut() {
                        *s = 0;
                    }
                    Tensor {
                        name: p.name.clone(),
                        shape,
                        data: Vec::new(),
                    }
                })
                .collect());
        }
        let plan = if self.fixed_plans {
            let key: Vec<Vec<usize>> = ordered.iter().map(|t| t.shape.clone()).collect();
            let mut cache = self
                .fixed
                .lock()
                .map_err(|_| "engine lock poisoned".to_string())?;
            if let Some(p) = cache.get(&key) {
                p.clone()
            } else if cache.len() < 8 || self.symbolic.is_none() {
                let p = Self::plan(&self.info.path, Some(&key), &self.info)
                    .map_err(|e| format!("tract: {e:#}"))?;
                if cache.len() >= 32 {
                    cache.clear();
                }
                cache.insert(key, p.clone());
                p
            } else {
                self.symbolic.clone().expect("checked above")
            }
        } else {
            self.symbolic.clone().ok_or_else(|| {
                format!(
                    "tract cannot run this model with symbolic shapes: {}",
                    self.symbolic_error
                )
            })?
        };
        self.run_plan(&plan, &ordered)
            .map_err(|e| format!("tract: {e:#}"))
    }
}

impl TractEngine {
    /// Runs the symbolic-batch plan (for checks that both paths agree).
    pub fn score_symbolic(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
        let p = self
            .symbolic
            .as_ref()
            .ok_or_else(|| self.symbolic_error.clone())?;
        self.run_plan(p, inputs)
            .map_err(|e| format!("tract: {e:#}"))
    }
}
