//! C ABI to hepml inference (`libhepml.so` / `libhepml.a`), for C++ analysis code and ROOT
//! macros through the header-only wrapper `include/hepml/hepml.hpp` (declarations in
//! `include/hepml/hepml.h`).
//!
//! A model is an opaque handle; every function takes it by const pointer and may be called from
//! any number of threads at once (the engines are `Sync`: the native evaluators keep their
//! scratch per thread, tract plans are shared, ONNX Runtime keeps a pool of sessions). Errors
//! come back as a status and a message string (freed with [`hepml_free_string`]); panics are
//! caught at the boundary and reported the same way, never unwound into C++.
//!
//! The per-event fast path: a dense network on the native evaluator, inputs given in graph
//! order, runs without allocating (see [`hepml_run`]).

// The exported functions are the C ABI: their pointer contracts are stated in hepml.h and
// checked for null here; marking them `unsafe fn` would change nothing for C callers.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use engine::{Engine, EngineError, EngineOptions, Opened, Tensor};
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A bad argument from the caller (null pointer, bad shape, unknown name).
    #[error("{0}")]
    Arg(String),
    /// A Rust panic caught at the boundary.
    #[error("internal error in hepml: {0}")]
    Panic(String),
}

/// What the allocation-free path needs: values per event of each input (graph order) and
/// output.
struct Fast {
    inputs: Vec<usize>,
    outputs: Vec<usize>,
}

/// An opened model (opaque to C).
pub struct Model {
    /// The engine, by type: the native evaluators have the allocation-free path.
    inner: Opened,
    describe: CString,
    input_names: Vec<CString>,
    output_names: Vec<CString>,
    metadata: Vec<(CString, CString)>,
    /// Per input (graph order): the branch/expression names from `hepml.inputs`.
    features: Vec<Vec<CString>>,
    default_output: usize,
    fast: Option<Fast>,
}

impl Model {
    fn engine(&self) -> &dyn Engine {
        self.inner.engine()
    }

    fn open(path: &str, kind: &str) -> Result<Model, BridgeError> {
        let opts = EngineOptions {
            kind: kind.parse()?,
            ..Default::default()
        };
        let model = engine::Model::read(Path::new(path))?;
        let inner = engine::open(&model, &opts)?;
        // The native evaluators (picked by type) have the allocation-free path.
        let fast = match &inner {
            Opened::Native(e) => Some(Fast {
                inputs: e.input_widths().collect(),
                outputs: (0..e.output_names().count())
                    .map(|i| e.output_width(i))
                    .collect(),
            }),
            Opened::Trees(e) => match e.info().inputs[0].shape.as_slice() {
                [_, Some(w)] => Some(Fast {
                    inputs: vec![*w],
                    outputs: (0..e.info().outputs.len())
                        .map(|i| e.output_width(i).unwrap_or(0))
                        .collect(),
                }),
                _ => None,
            },
            Opened::Other(_) => None,
        };
        let info = model.info();
        let cstr = |s: &str| CString::new(s.replace('\0', " ")).unwrap_or_default();
        let map: std::collections::BTreeMap<String, Vec<String>> = info
            .metadata
            .get("hepml.inputs")
            .or_else(|| info.metadata.get("hepml.features"))
            .map(|j| serde_json::from_str(j))
            .transpose()
            .map_err(|err| {
                BridgeError::Arg(format!(
                    "{}: metadata hepml.inputs is not {{input: [features]}}: {err}",
                    info.path.display()
                ))
            })?
            .unwrap_or_default();
        let default_output = info
            .metadata
            .get("hepml.outputs")
            .and_then(|j| {
                serde_json::from_str::<std::collections::BTreeMap<String, serde_json::Value>>(j)
                    .ok()
            })
            .and_then(|m| {
                m.keys()
                    .find_map(|k| info.outputs.iter().position(|o| &o.name == k))
            })
            .or_else(|| info.outputs.iter().position(|o| o.elem == "float"))
            .unwrap_or(0);
        Ok(Model {
            describe: cstr(&inner.engine().describe()),
            input_names: info.inputs.iter().map(|p| cstr(&p.name)).collect(),
            output_names: info.outputs.iter().map(|p| cstr(&p.name)).collect(),
            metadata: info
                .metadata
                .iter()
                .map(|(k, v)| (cstr(k), cstr(v)))
                .collect(),
            features: info
                .inputs
                .iter()
                .map(|p| {
                    map.get(&p.name)
                        .map(|v| v.iter().map(|s| cstr(s)).collect())
                        .unwrap_or_default()
                })
                .collect(),
            default_output,
            fast,
            inner,
        })
    }

    /// The allocation-free path of the native evaluators: inputs in graph order with shapes
    /// `[batch, width]`. `None` when it does not apply (the general path then checks the inputs
    /// and reports what is wrong).
    fn run_fast(
        &self,
        names: Option<&[*const c_char]>,
        data: &[*const f32],
        shapes: &[*const i64],
        ranks: &[usize],
        output: usize,
        out: &mut [f32],
    ) -> Option<Result<usize, BridgeError>> {
        const MAX: usize = 8;
        let fast = self.fast.as_ref()?;
        let n = fast.inputs.len();
        if data.len() != n || n > MAX {
            return None;
        }
        if let Some(names) = names {
            // Only graph order (cheap to check); other orders take the general path.
            for (p, want) in names.iter().zip(&self.input_names) {
                // SAFETY: a non-null NUL-terminated string from the caller.
                if p.is_null() || unsafe { CStr::from_ptr(*p) } != want.as_c_str() {
                    return None;
                }
            }
        }
        let mut xs: [&[f32]; MAX] = [&[]; MAX];
        let mut batch = None;
        for (k, &w) in fast.inputs.iter().enumerate() {
            if ranks[k] != 2 || shapes[k].is_null() || data[k].is_null() {
                return None;
            }
            // SAFETY: the caller passes `ranks[k]` dimensions for input k.
            let s = unsafe { std::slice::from_raw_parts(shapes[k], 2) };
            if s[1] != w as i64 || s[0] < 0 || batch.is_some_and(|b| b != s[0]) {
                return None;
            }
            batch = Some(s[0]);
            // SAFETY: input k holds the product of its shape's dimensions.
            xs[k] = unsafe { std::slice::from_raw_parts(data[k], s[0] as usize * w) };
        }
        let batch = batch? as usize;
        let need = batch * fast.outputs[output];
        if out.len() < need {
            return Some(Ok(need));
        }
        let out = &mut out[..need];
        let r = match &self.inner {
            Opened::Native(e) => e.run_into(&xs[..n], batch, output, out),
            Opened::Trees(e) => e.run_into(xs[0], batch, output, out),
            Opened::Other(_) => return None,
        };
        Some(r.map(|_| need).map_err(BridgeError::from))
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// Runs `f`, turning errors and panics into a message in `*error` (when `error` is not null).
fn guard<T>(error: *mut *mut c_char, fail: T, f: impl FnOnce() -> Result<T, BridgeError>) -> T {
    let r = catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(BridgeError::Panic(panic_message(p))));
    match r {
        Ok(v) => v,
        Err(e) => {
            if !error.is_null() {
                let msg = CString::new(e.to_string().replace('\0', " ")).unwrap_or_default();
                // SAFETY: `error` is a valid out-pointer (checked non-null).
                unsafe { *error = msg.into_raw() };
            }
            fail
        }
    }
}

fn c_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, BridgeError> {
    if p.is_null() {
        return Err(BridgeError::Arg(format!("{what} is null")));
    }
    // SAFETY: a non-null pointer from the caller to a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| BridgeError::Arg(format!("{what} is not UTF-8")))
}

fn model<'a>(m: *const Model) -> Result<&'a Model, BridgeError> {
    // SAFETY: a handle from hepml_open, not yet closed (the caller's contract).
    unsafe { m.as_ref() }.ok_or_else(|| BridgeError::Arg("model handle is null".into()))
}

/// Opens `path` on `engine` ("auto" when null: tree ensembles and dense networks on the native
/// evaluators, other graphs on tract; or "native", "tract", "trees", "ort"). Null on failure,
/// with the message in `*error`.
#[no_mangle]
pub extern "C" fn hepml_open(
    path: *const c_char,
    engine: *const c_char,
    error: *mut *mut c_char,
) -> *mut Model {
    guard(error, std::ptr::null_mut(), || {
        let path = c_str(path, "model path")?;
        let kind = if engine.is_null() {
            "auto"
        } else {
            c_str(engine, "engine")?
        };
        Ok(Box::into_raw(Box::new(Model::open(path, kind)?)))
    })
}

/// Frees a model (null is ignored).
#[no_mangle]
pub extern "C" fn hepml_close(m: *mut Model) {
    if !m.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: a handle from hepml_open, closed once.
            drop(unsafe { Box::from_raw(m) })
        }));
    }
}

/// Frees a message from `*error`.
#[no_mangle]
pub extern "C" fn hepml_free_string(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: a string hepml handed out with CString::into_raw.
        drop(unsafe { CString::from_raw(s) });
    }
}

fn name_at(v: &[CString], i: usize) -> *const c_char {
    v.get(i).map_or(std::ptr::null(), |s| s.as_ptr())
}

/// Engine and model, e.g. "native dense (dense 80-100-100-1, avx+fma) on m.onnx (xxh64 ...)".
#[no_mangle]
pub extern "C" fn hepml_describe(m: *const Model) -> *const c_char {
    model(m).map_or(std::ptr::null(), |m| m.describe.as_ptr())
}

#[no_mangle]
pub extern "C" fn hepml_num_inputs(m: *const Model) -> usize {
    model(m).map_or(0, |m| m.input_names.len())
}

/// Input `i`'s name (graph order), valid while the model lives; null past the end.
#[no_mangle]
pub extern "C" fn hepml_input_name(m: *const Model, i: usize) -> *const c_char {
    model(m).map_or(std::ptr::null(), |m| name_at(&m.input_names, i))
}

#[no_mangle]
pub extern "C" fn hepml_num_outputs(m: *const Model) -> usize {
    model(m).map_or(0, |m| m.output_names.len())
}

#[no_mangle]
pub extern "C" fn hepml_output_name(m: *const Model, i: usize) -> *const c_char {
    model(m).map_or(std::ptr::null(), |m| name_at(&m.output_names, i))
}

/// The output `evaluate` returns by default: the first named in `hepml.outputs`, else the
/// first float output (an sklearn classifier's probabilities, not its label).
#[no_mangle]
pub extern "C" fn hepml_default_output(m: *const Model) -> usize {
    model(m).map_or(0, |m| m.default_output)
}

fn shape_of(p: &engine::Port, dims: *mut i64, cap: usize) -> usize {
    for (k, d) in p.shape.iter().enumerate().take(cap) {
        if !dims.is_null() {
            // SAFETY: the caller provides `cap` slots.
            unsafe { *dims.add(k) = d.map_or(-1, |d| d as i64) };
        }
    }
    p.shape.len()
}

fn port_shape(m: *const Model, i: usize, dims: *mut i64, cap: usize, output: bool) -> usize {
    model(m)
        .ok()
        .and_then(|m| {
            let info = m.engine().info();
            if output { &info.outputs } else { &info.inputs }.get(i)
        })
        .map_or(0, |p| shape_of(p, dims, cap))
}

/// Writes up to `cap` dimensions of input `i` (the batch included; -1 for a symbolic one) and
/// returns its rank (0 past the end).
#[no_mangle]
pub extern "C" fn hepml_input_shape(
    m: *const Model,
    i: usize,
    dims: *mut i64,
    cap: usize,
) -> usize {
    port_shape(m, i, dims, cap, false)
}

/// As [`hepml_input_shape`] for output `i`.
#[no_mangle]
pub extern "C" fn hepml_output_shape(
    m: *const Model,
    i: usize,
    dims: *mut i64,
    cap: usize,
) -> usize {
    port_shape(m, i, dims, cap, true)
}

/// How many features `hepml.inputs` lists for input `i` (0 without that metadata).
#[no_mangle]
pub extern "C" fn hepml_num_features(m: *const Model, i: usize) -> usize {
    model(m).map_or(0, |m| m.features.get(i).map_or(0, Vec::len))
}

/// Feature `j` (a branch or expression) of input `i`, from `hepml.inputs`.
#[no_mangle]
pub extern "C" fn hepml_feature(m: *const Model, i: usize, j: usize) -> *const c_char {
    model(m).map_or(std::ptr::null(), |m| {
        m.features
            .get(i)
            .map_or(std::ptr::null(), |f| name_at(f, j))
    })
}

#[no_mangle]
pub extern "C" fn hepml_num_metadata(m: *const Model) -> usize {
    model(m).map_or(0, |m| m.metadata.len())
}

/// Key `i` of the model's metadata_props.
#[no_mangle]
pub extern "C" fn hepml_metadata_key(m: *const Model, i: usize) -> *const c_char {
    model(m).map_or(std::ptr::null(), |m| {
        m.metadata
            .get(i)
            .map_or(std::ptr::null(), |(k, _)| k.as_ptr())
    })
}

/// The metadata value under `key`, or null.
#[no_mangle]
pub extern "C" fn hepml_metadata(m: *const Model, key: *const c_char) -> *const c_char {
    let Ok(m) = model(m) else {
        return std::ptr::null();
    };
    if key.is_null() {
        return std::ptr::null();
    }
    // SAFETY: a NUL-terminated string from the caller.
    let key = unsafe { CStr::from_ptr(key) };
    m.metadata
        .iter()
        .find(|(k, _)| k.as_c_str() == key)
        .map_or(std::ptr::null(), |(_, v)| v.as_ptr())
}

/// Evaluates a batch.
///
/// `n_inputs` tensors: `names[k]` (or graph order when `names` is null), `data[k]` (row-major
/// floats), `shapes[k]` with `ranks[k]` dimensions, the batch first. Output `output` is written
/// to `out` (`out_cap` floats) and `*out_len` receives its number of values.
///
/// Returns 0 on success; 1 on error (message in `*error`, free it with
/// [`hepml_free_string`]); 2 when `out_cap` is too small (`*out_len` says how many are needed,
/// nothing else happened).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn hepml_run(
    m: *const Model,
    n_inputs: usize,
    names: *const *const c_char,
    data: *const *const f32,
    shapes: *const *const i64,
    ranks: *const usize,
    output: usize,
    out: *mut f32,
    out_cap: usize,
    out_len: *mut usize,
    error: *mut *mut c_char,
) -> c_int {
    guard(error, 1, || {
        let m = model(m)?;
        let arr = |p: *const *const c_char| -> &[*const c_char] {
            // SAFETY: `n_inputs` entries (checked non-null by the caller of this closure).
            unsafe { std::slice::from_raw_parts(p, n_inputs) }
        };
        if n_inputs > 0 && (data.is_null() || shapes.is_null() || ranks.is_null()) {
            return Err(BridgeError::Arg(
                "inputs given without data, shapes or ranks".into(),
            ));
        }
        if out.is_null() && out_cap > 0 {
            return Err(BridgeError::Arg("output buffer is null".into()));
        }
        if output >= m.output_names.len() {
            return Err(BridgeError::Arg(format!(
                "{}: no output {output} (the model has {})",
                m.engine().info().path.display(),
                m.output_names.len()
            )));
        }
        let (data, shapes, ranks): (&[*const f32], &[*const i64], &[usize]) = if n_inputs == 0 {
            (&[], &[], &[])
        } else {
            // SAFETY: `n_inputs` entries each, per the contract above.
            unsafe {
                (
                    std::slice::from_raw_parts(data, n_inputs),
                    std::slice::from_raw_parts(shapes, n_inputs),
                    std::slice::from_raw_parts(ranks, n_inputs),
                )
            }
        };
        let names = (!names.is_null() && n_inputs > 0).then(|| arr(names));
        let out: &mut [f32] = if out_cap == 0 {
            &mut []
        } else {
            // SAFETY: the caller's buffer of `out_cap` floats.
            unsafe { std::slice::from_raw_parts_mut(out, out_cap) }
        };
        let set_len = |n: usize| {
            if !out_len.is_null() {
                // SAFETY: a valid out-pointer.
                unsafe { *out_len = n };
            }
        };
        if let Some(r) = m.run_fast(names, data, shapes, ranks, output, out) {
            let need = r?;
            set_len(need);
            return Ok(if need > out_cap { 2 } else { 0 });
        }
        // General path: named tensors through Engine::run (which checks them).
        let mut tensors = Vec::with_capacity(n_inputs);
        for k in 0..n_inputs {
            let name = match names {
                Some(n) => c_str(n[k], "input name")?.to_string(),
                None => m
                    .input_names
                    .get(k)
                    .ok_or_else(|| {
                        BridgeError::Arg(format!(
                            "{}: {n_inputs} inputs given, the model takes {}",
                            m.engine().info().path.display(),
                            m.input_names.len()
                        ))
                    })?
                    .to_string_lossy()
                    .into_owned(),
            };
            if shapes[k].is_null() && ranks[k] > 0 {
                return Err(BridgeError::Arg(format!("input '{name}': shape is null")));
            }
            let shape: Vec<usize> = if ranks[k] == 0 {
                vec![]
            } else {
                // SAFETY: `ranks[k]` dimensions.
                unsafe { std::slice::from_raw_parts(shapes[k], ranks[k]) }
                    .iter()
                    .map(|&d| {
                        usize::try_from(d).map_err(|_| {
                            BridgeError::Arg(format!("input '{name}': negative dimension {d}"))
                        })
                    })
                    .collect::<Result<_, _>>()?
            };
            let len: usize = shape.iter().product();
            if data[k].is_null() && len > 0 {
                return Err(BridgeError::Arg(format!("input '{name}': data is null")));
            }
            let values = if len == 0 {
                vec![]
            } else {
                // SAFETY: the product of its dimensions.
                unsafe { std::slice::from_raw_parts(data[k], len) }.to_vec()
            };
            tensors.push(Tensor::new(name, shape, values));
        }
        let outs = m.engine().run(&tensors)?;
        let want = &m.output_names[output];
        let t = outs
            .iter()
            .find(|t| t.name.as_bytes() == want.as_bytes())
            .ok_or_else(|| BridgeError::Arg(format!("output '{}' not produced", t_name(want))))?;
        set_len(t.data.len());
        if t.data.len() > out_cap {
            return Ok(2);
        }
        out[..t.data.len()].copy_from_slice(&t.data);
        Ok(0)
    })
}

fn t_name(c: &CString) -> String {
    c.to_string_lossy().into_owned()
}
