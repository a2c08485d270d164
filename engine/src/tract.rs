//! The tract backend: one optimised plan with a symbolic batch, shared by all threads, plus
//! plans optimised for the fixed batch sizes actually seen (tract runs fixed shapes 1.2-3x
//! faster), built on first use and cached.

use super::{Engine, EngineError, Model, ModelInfo, Tensor};
use crate::parts;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tract_onnx::prelude::*;

type Plan = Arc<TypedRunnableModel>;

pub struct TractEngine {
    pub info: ModelInfo,
    /// The parsed graph, from which each plan is optimised.
    model: InferenceModel,
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
/// Distinct input shapes given plans of their own; later shapes run on the symbolic plan.
const MAX_FIXED: usize = 8;

/// Recurrent-layer attributes tract 0.23 does not read: it always builds a forward layer with
/// the default activations (`Sigmoid`/`Tanh`), so a Keras GRU (`HardSigmoid`, often
/// `direction: reverse`) would run without error and give wrong numbers. Such graphs are
/// refused by name; ONNX Runtime runs them.
fn refuse_what_tract_ignores(
    model: &tract_onnx::pb::ModelProto,
    path: &Path,
) -> Result<(), EngineError> {
    fn walk(g: &tract_onnx::pb::GraphProto, problems: &mut Vec<String>) {
        for n in &g.node {
            for a in &n.attribute {
                for sub in a.g.iter().chain(&a.graphs) {
                    walk(sub, problems);
                }
            }
            let defaults: &[&str] = match n.op_type.as_str() {
                "RNN" => &["tanh"],
                "GRU" => &["sigmoid", "tanh"],
                "LSTM" => &["sigmoid", "tanh", "tanh"],
                _ => continue,
            };
            let attr = |name: &str| n.attribute.iter().find(|a| a.name == name);
            let mut bad = Vec::new();
            if let Some(a) = attr("direction") {
                if a.s.eq_ignore_ascii_case(b"reverse") {
                    bad.push("direction reverse".to_string());
                }
            }
            if let Some(a) = attr("activations") {
                let acts: Vec<String> = a
                    .strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                let default = acts
                    .iter()
                    .enumerate()
                    .all(|(i, s)| s.eq_ignore_ascii_case(defaults[i % defaults.len()]));
                if !default {
                    bad.push(format!("activations {}", acts.join(", ")));
                }
            }
            if attr("clip").is_some() {
                bad.push("clip".into());
            }
            if attr("input_forget").is_some_and(|a| a.i != 0) {
                bad.push("input_forget".into());
            }
            if !bad.is_empty() {
                let name = if n.name.is_empty() {
                    String::new()
                } else {
                    format!("'{}' ", n.name)
                };
                problems.push(format!("node {name}({}): {}", n.op_type, bad.join(", ")));
            }
        }
    }
    let mut problems = Vec::new();
    if let Some(g) = &model.graph {
        walk(g, &mut problems);
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(EngineError::Unsupported {
        path: path.to_path_buf(),
        msg: format!(
            "{} not implemented by tract 0.23 (it would silently run a forward layer with the \
             default activations: wrong values); use the ort engine",
            problems.join("; ")
        ),
    })
}

impl TractEngine {
    pub fn load(model: &Model) -> Result<Self, EngineError> {
        let path = model.path();
        let info = model.info().clone();
        for i in &info.inputs {
            if i.elem != "float" {
                return Err(EngineError::Input {
                    path: path.to_path_buf(),
                    input: i.name.clone(),
                    msg: format!("element type {} (only float inputs are supported)", i.elem),
                });
            }
        }
        refuse_what_tract_ignores(model.proto(), path)?;
        // A graph tract cannot load is an error now; one it cannot optimise with symbolic
        // shapes (ParticleNet's `n_pf + n_sv`) runs on fixed-shape plans only. Parsed from the
        // decoded protobuf as tract's `model_for_path` does (external data beside the file).
        let tract_err = |msg: String| EngineError::Load {
            path: path.to_path_buf(),
            msg: format!("tract: {msg}"),
        };
        let dir = path.parent().and_then(Path::to_str);
        let parsed = tract_onnx::onnx()
            .parse(model.proto(), dir)
            .map_err(|e| tract_err(format!("{e:#}")))?;
        if !parsed.unresolved_inputs.is_empty() {
            return Err(tract_err(format!(
                "Could not resolve inputs at top-level: {:?}",
                parsed.unresolved_inputs
            )));
        }
        let model = parsed.model;
        let (symbolic, symbolic_error) = match Self::plan(&model, None, &info) {
            Ok(p) => (Some(p), String::new()),
            Err(e) => (None, format!("{e:#}")),
        };
        Ok(TractEngine {
            info,
            model,
            symbolic,
            symbolic_error,
            fixed: Mutex::new(HashMap::new()),
            fixed_plans: true,
            threads: crate::parts::cores(),
        })
    }

    /// A plan for fixed input shapes, or (None) with every undeclared dimension a symbol: the
    /// first is the batch `N`, others `D<input>_<axis>` (anonymous dims as skl2onnx writes them
    /// would leave tract without a fact).
    fn plan(
        model: &InferenceModel,
        shapes: Option<&[Vec<usize>]>,
        info: &ModelInfo,
    ) -> TractResult<Plan> {
        // tract 0.23 panics on some graphs it cannot type (a GRU with a symbolic batch): an
        // error here, not a crash.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::plan_inner(model, shapes, info)
        }))
        .unwrap_or_else(|p| {
            let what = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(TractError::msg(format!(
                "tract panicked while optimising the graph: {what}"
            )))
        })
    }

    fn plan_inner(
        model: &InferenceModel,
        shapes: Option<&[Vec<usize>]>,
        info: &ModelInfo,
    ) -> TractResult<Plan> {
        let mut m = model.clone();
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

    fn run_plan(&self, plan: &Plan, inputs: &[&Tensor]) -> TractResult<Vec<Tensor>> {
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

impl Engine for TractEngine {
    /// Runs a batch; large batches are cut into row ranges run on several threads (rows are
    /// independent, plans are shared) and put back in order.
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EngineError> {
        let ordered = self.info.check_inputs(inputs)?;
        let rows = ordered
            .first()
            .and_then(|t| t.shape.first().copied())
            .unwrap_or(0);
        let runs = parts::ranges(rows, self.threads, SPLIT_MIN);
        if runs.len() == 1 || ordered.iter().any(|t| t.shape.first() != Some(&rows)) {
            return self.run_checked(&ordered);
        }
        let inputs = &ordered;
        let results = parts::map(runs, |r| {
            let part: Vec<Tensor> = inputs
                .iter()
                .map(|&t| {
                    let w: usize = t.shape[1..].iter().product();
                    let mut shape = t.shape.clone();
                    shape[0] = r.len();
                    Tensor {
                        name: t.name.clone(),
                        shape,
                        data: t.data[r.start * w..r.end * w].to_vec(),
                    }
                })
                .collect();
            self.run_checked(&part.iter().collect::<Vec<_>>())
        })
        .map_err(|_| self.run_err("an inference thread panicked"))?;
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

    fn info(&self) -> &ModelInfo {
        &self.info
    }
}

impl TractEngine {
    fn run_err(&self, msg: impl std::fmt::Display) -> EngineError {
        EngineError::Run {
            path: self.info.path.clone(),
            msg: format!("tract: {msg}"),
        }
    }

    /// Runs inputs already checked and in graph order, on a fixed-shape plan (built on first
    /// use) or, past `MAX_FIXED` shapes, the symbolic one.
    fn run_checked(&self, ordered: &[&Tensor]) -> Result<Vec<Tensor>, EngineError> {
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
            let key = shapes(ordered);
            match (self.cached(&key)?, &self.symbolic) {
                (Some(p), _) => p,
                (None, Some(sym)) if self.fixed_len() >= MAX_FIXED => sym.clone(),
                (None, _) => self.build_fixed(key)?,
            }
        } else {
            self.symbolic_plan()?
        };
        self.run_on(&plan, ordered)
    }

    /// The fixed-shape plan cached for these shapes, if any.
    fn cached(&self, key: &[Vec<usize>]) -> Result<Option<Plan>, EngineError> {
        Ok(self
            .fixed
            .lock()
            .map_err(|_| self.run_err("plan cache lock poisoned"))?
            .get(key)
            .cloned())
    }

    /// Optimises a plan for these shapes (outside the lock: other shapes keep running
    /// meanwhile) and caches it.
    fn build_fixed(&self, key: Vec<Vec<usize>>) -> Result<Plan, EngineError> {
        let p = Self::plan(&self.model, Some(&key), &self.info)
            .map_err(|e| self.run_err(format!("{e:#}")))?;
        let mut cache = self
            .fixed
            .lock()
            .map_err(|_| self.run_err("plan cache lock poisoned"))?;
        if cache.len() >= 4 * MAX_FIXED {
            cache.clear();
        }
        cache.insert(key, p.clone());
        Ok(p)
    }

    fn symbolic_plan(&self) -> Result<Plan, EngineError> {
        self.symbolic.clone().ok_or_else(|| {
            self.run_err(format!(
                "cannot run this model with symbolic shapes: {}",
                self.symbolic_error
            ))
        })
    }

    fn run_on(&self, plan: &Plan, ordered: &[&Tensor]) -> Result<Vec<Tensor>, EngineError> {
        self.run_plan(plan, ordered)
            .map_err(|e| self.run_err(format!("{e:#}")))
    }

    fn fixed_len(&self) -> usize {
        self.fixed.lock().map_or(0, |c| c.len())
    }
}

impl TractEngine {
    /// Runs the symbolic-batch plan only (for checks that both paths agree).
    pub fn run_symbolic(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EngineError> {
        let ordered = self.info.check_inputs(inputs)?;
        self.run_on(&self.symbolic_plan()?, &ordered)
    }

    /// Runs a plan optimised for these exact shapes only (built and cached on first use).
    pub fn run_fixed(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EngineError> {
        let ordered = self.info.check_inputs(inputs)?;
        let key = shapes(&ordered);
        let p = match self.cached(&key)? {
            Some(p) => p,
            None => self.build_fixed(key)?,
        };
        self.run_on(&p, &ordered)
    }
}

/// The inputs' shapes: the key of the fixed-plan cache.
fn shapes(ordered: &[&Tensor]) -> Vec<Vec<usize>> {
    ordered.iter().map(|t| t.shape.clone()).collect()
}
