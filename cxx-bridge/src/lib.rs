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
//!
//! Every exported function that takes a pointer is an `unsafe extern "C" fn`: Rust cannot check
//! what a pointer from C points to, so each states in `# Safety` what the caller guarantees
//! (the same contract hepml.h states for C). Null pointers are checked and reported, never
//! dereferenced.
#![deny(unsafe_op_in_unsafe_fn)]

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
    /// From `hepml.fold` / `hepml.fold_index`: the k of the fold ensemble the model belongs
    /// to, the branch routing events to folds, and this model's fold.
    fold: Option<(usize, CString)>,
    fold_index: Option<usize>,
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
        // The same selection as `hepml inject` (engine::open_with_choice); the description
        // says which engine and why.
        let (inner, choice) = engine::open_with_choice(&model, &opts)?;
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
        let fold = info
            .metadata
            .get("hepml.fold")
            .map(|j| {
                let v: serde_json::Value = serde_json::from_str(j).map_err(|err| {
                    BridgeError::Arg(format!(
                        "{}: metadata hepml.fold is not JSON: {err}",
                        info.path.display()
                    ))
                })?;
                match (v["k"].as_u64(), v["branch"].as_str()) {
                    (Some(k), Some(b)) if k >= 2 => Ok((k as usize, cstr(b))),
                    _ => Err(BridgeError::Arg(format!(
                        "{}: metadata hepml.fold is not {{\"k\": K >= 2, \"branch\": NAME}}: {j}",
                        info.path.display()
                    ))),
                }
            })
            .transpose()?;
        let fold_index = info
            .metadata
            .get("hepml.fold_index")
            .map(|i| {
                i.parse::<usize>().map_err(|_| {
                    BridgeError::Arg(format!(
                        "{}: metadata hepml.fold_index is not a number: {i}",
                        info.path.display()
                    ))
                })
            })
            .transpose()?;
        Ok(Model {
            fold,
            fold_index,
            describe: cstr(&format!("{} [engine {choice}]", inner.engine().describe())),
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
    ///
    /// # Safety
    /// As [`hepml_run`]: each non-null `names[k]` is NUL-terminated, each non-null `shapes[k]`
    /// holds `ranks[k]` dimensions and each non-null `data[k]` the product of them.
    unsafe fn run_fast(
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
///
/// # Safety
/// `error` is null or valid for writing one pointer.
unsafe fn guard<T>(
    error: *mut *mut c_char,
    fail: T,
    f: impl FnOnce() -> Result<T, BridgeError>,
) -> T {
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

/// # Safety
/// `p` is null or a NUL-terminated string that outlives `'a`.
unsafe fn c_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, BridgeError> {
    if p.is_null() {
        return Err(BridgeError::Arg(format!("{what} is null")));
    }
    // SAFETY: a non-null pointer from the caller to a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| BridgeError::Arg(format!("{what} is not UTF-8")))
}

/// # Safety
/// `m` is null or a handle from [`hepml_open`] not yet closed, living for `'a`.
unsafe fn model<'a>(m: *const Model) -> Result<&'a Model, BridgeError> {
    // SAFETY: a handle from hepml_open, not yet closed (the caller's contract).
    unsafe { m.as_ref() }.ok_or_else(|| BridgeError::Arg("model handle is null".into()))
}

/// Opens `path` on `engine` ("auto" when null: tree ensembles and dense networks on the native
/// evaluators, other graphs on ONNX Runtime when its library is found, else tract; or
/// "native", "tract", "trees", "ort"). Null on failure,
/// with the message in `*error`.
///
/// # Safety
/// `path` and `engine` are null or NUL-terminated strings; `error` is null or valid for writing
/// one pointer.
#[no_mangle]
pub unsafe extern "C" fn hepml_open(
    path: *const c_char,
    engine: *const c_char,
    error: *mut *mut c_char,
) -> *mut Model {
    // SAFETY: the caller's contract above, for `error`, `path` and `engine`.
    unsafe {
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
}

/// Frees a model (null is ignored).
///
/// # Safety
/// `m` is null or a handle from [`hepml_open`], not closed before and not used after.
#[no_mangle]
pub unsafe extern "C" fn hepml_close(m: *mut Model) {
    if !m.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: a handle from hepml_open, closed once (the caller's contract).
            drop(unsafe { Box::from_raw(m) })
        }));
    }
}

/// Frees a message from `*error`.
///
/// # Safety
/// `s` is null or a string hepml handed out through `*error`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn hepml_free_string(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: a string hepml handed out with CString::into_raw (the caller's contract).
        drop(unsafe { CString::from_raw(s) });
    }
}

fn name_at(v: &[CString], i: usize) -> *const c_char {
    v.get(i).map_or(std::ptr::null(), |s| s.as_ptr())
}

/// Applies `f` to the model behind `m`, or gives `none` for a null handle.
///
/// # Safety
/// `m` is null or a handle from [`hepml_open`] that has not been closed.
unsafe fn with_model<T>(m: *const Model, none: T, f: impl FnOnce(&Model) -> T) -> T {
    // SAFETY: the caller's contract.
    unsafe { model(m) }.map_or(none, f)
}

/// Engine and model, e.g. "native dense (dense 80-100-100-1, avx+fma) on m.onnx (xxh64 ...)".
///
/// # Safety
/// `m` is null or a handle from [`hepml_open`] that has not been closed (the same for every
/// function below that takes only a model and indices).
#[no_mangle]
pub unsafe extern "C" fn hepml_describe(m: *const Model) -> *const c_char {
    // SAFETY: the caller's contract.
    unsafe { with_model(m, std::ptr::null(), |m| m.describe.as_ptr()) }
}

/// The number of inputs (0 for a null handle).
///
/// # Safety
/// As [`hepml_describe`].
#[no_mangle]
pub unsafe extern "C" fn hepml_num_inputs(m: *const Model) -> usize {
    // SAFETY: the caller's contract.
    unsafe { with_model(m, 0, |m| m.input_names.len()) }
}

/// Input `i`'s name (graph order), valid while the model lives; null past the end.
///
/// # Safety
/// As [`hepml_describe`].
#[no_mangle]
pub unsafe extern "C" fn hepml_input_name(m: *const Model, i: usize) -> *const c_char {
    // SAFETY: the caller's contract.
    unsafe { with_model(m, std::ptr::null(), |m| name_at(&m.input_names, i)) }
}

/// The number of outputs (0 for a null handle).
///
/// # Safety
/// As [`hepml_describe`].
#[no_mangle]
pub unsafe extern "C" fn hepml_num_outputs(m: *const Model) -> usize {
    // SAFETY: the caller's contract.
    unsafe { with_model(m, 0, |m| m.output_names.len()) }
}

/// Output `i`'s name (graph order), valid while the model lives; null past the end.
///
/// # Safety
/// As [`hepml_describe`].
#[no_mangle]
pub unsafe extern "C" fn hepml_output_name(m: *const Model, i: usize) -> *const c_char {
    // SAFETY: the caller's contract.
    unsafe { with_model(m, std::ptr::null(), |m| name_at(&m.output_names, i)) }
}

/// The output `evaluate` returns by default: the first named in `hepml.outputs`, else the
/// first float output (an sklearn classifier's probabilities, not its label).
///
/// # Safety
/// As [`hepml_describe`].
#[no_mangle]
pub unsafe extern "C" fn hepml_default_output(m: *const Model) -> usize {
    // SAFETY: the caller's contract.
    unsafe { with_model(m, 0, |m| m.default_output) }
}

/// # Safety
/// `dims` is null or valid for writing `cap` values.
unsafe fn shape_of(p: &engine::Port, dims: *mut i64, cap: usize) -> usize {
    if !dims.is_null() {
        for (k, d) in p.shape.iter().enumerate().take(cap) {
            // SAFETY: `k < cap` slots (the caller's contract).
            unsafe { *dims.add(k) = d.map_or(-1, |d| d as i64) };
        }
    }
    p.shape.len()
}

/// # Safety
/// As [`hepml_input_shape`].
unsafe fn port_shape(m: *const Model, i: usize, dims: *mut i64, cap: usize, output: bool) -> usize {
    // SAFETY: the caller's contract (a live handle or null).
    let Ok(m) = (unsafe { model(m) }) else {
        return 0;
    };
    let info = m.engine().info();
    if output { &info.outputs } else { &info.inputs }
        .get(i)
        // SAFETY: the caller's contract (`cap` writable slots or null).
        .map_or(0, |p| unsafe { shape_of(p, dims, cap) })
}

/// Writes up to `cap` dimensions of input `i` (the batch included; -1 for a symbolic one) and
/// returns its rank (0 past the end).
///
/// # Safety
/// `m` as for [`hepml_describe`]; `dims` is null or valid for writing `cap` values.
#[no_mangle]
pub unsafe extern "C" fn hepml_input_shape(
    m: *const Model,
    i: usize,
    dims: *mut i64,
    cap: usize,
) -> usize {
    // SAFETY: the caller's contract.
    unsafe { port_shape(m, i, dims, cap, false) }
}

/// As [`hepml_input_shape`] for output `i`.
///
/// # Safety
/// As [`hepml_input_shape`].
#[no_mangle]
pub unsafe extern "C" fn hepml_output_shape(
    m: *const Model,
    i: usize,
    dims: *mut i64,
    cap: usize,
) -> usize {
    // SAFETY: the caller's contract.
    unsafe { port_shape(m, i, dims, cap, true) }
}

/// How many features `hepml.inputs` lists for input `i` (0 without that metadata).
///
/// # Safety
/// As [`hepml_describe`].
#[no_mangle]
pub unsafe extern "C" fn hepml_num_features(m: *const Model, i: usize) -> usize {
    // SAFETY: the caller's contract.
    unsafe { with_model(m, 0, |m| m.features.get(i).map_or(0, Vec::len)) }
}

/// Feature `j` (a branch or expression) of input `i`, from `hepml.inputs`.
///
/// # Safety
/// As [`hepml_describe`].
#[no_mangle]
pub unsafe extern "C" fn hepml_feature(m: *const Model, i: usize, j: usize) -> *const c_char {
    let none = std::ptr::null();
    // SAFETY: the caller's contract.
    unsafe {
        with_model(m, none, |m| {
            m.features.get(i).map_or(none, |f| name_at(f, j))
        })
    }
}

/// The number of metadata_props entries.
///
/// # Safety
/// As [`hepml_describe`].
#[no_mangle]
pub unsafe extern "C" fn hepml_num_metadata(m: *const Model) -> usize {
    // SAFETY: the caller's contract.
    unsafe { with_model(m, 0, |m| m.metadata.len()) }
}

/// Key `i` of the model's metadata_props.
///
/// # Safety
/// As [`hepml_describe`].
#[no_mangle]
pub unsafe extern "C" fn hepml_metadata_key(m: *const Model, i: usize) -> *const c_char {
    let none = std::ptr::null();
    // SAFETY: the caller's contract.
    unsafe {
        with_model(m, none, |m| {
            m.metadata.get(i).map_or(none, |(k, _)| k.as_ptr())
        })
    }
}

/// The metadata value under `key`, or null.
///
/// # Safety
/// `m` as for [`hepml_describe`]; `key` is null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn hepml_metadata(m: *const Model, key: *const c_char) -> *const c_char {
    if key.is_null() {
        return std::ptr::null();
    }
    // SAFETY: a non-null NUL-terminated string (the caller's contract).
    let key = unsafe { CStr::from_ptr(key) };
    // SAFETY: the caller's contract.
    unsafe {
        with_model(m, std::ptr::null(), |m| {
            m.metadata
                .iter()
                .find(|(k, _)| k.as_c_str() == key)
                .map_or(std::ptr::null(), |(_, v)| v.as_ptr())
        })
    }
}

/// The k of the k-fold ensemble the model is a member of (metadata `hepml.fold`, written by
/// `hepml export` for each fold); 0 when it is not a member (or for a null handle).
///
/// # Safety
/// As [`hepml_describe`].
#[no_mangle]
pub unsafe extern "C" fn hepml_fold_k(m: *const Model) -> usize {
    // SAFETY: the caller's contract.
    unsafe { with_model(m, 0, |m| m.fold.as_ref().map_or(0, |f| f.0)) }
}

/// The branch holding the event number that routes events to folds (`hepml.fold`), or null.
///
/// # Safety
/// As [`hepml_describe`].
#[no_mangle]
pub unsafe extern "C" fn hepml_fold_branch(m: *const Model) -> *const c_char {
    let none = std::ptr::null();
    // SAFETY: the caller's contract.
    unsafe { with_model(m, none, |m| m.fold.as_ref().map_or(none, |f| f.1.as_ptr())) }
}

/// This member's fold (`hepml.fold_index`), or `usize::MAX` (SIZE_MAX) when unknown.
///
/// # Safety
/// As [`hepml_describe`].
#[no_mangle]
pub unsafe extern "C" fn hepml_fold_index(m: *const Model) -> usize {
    // SAFETY: the caller's contract.
    unsafe { with_model(m, usize::MAX, |m| m.fold_index.unwrap_or(usize::MAX)) }
}

/// The fold that scores event number `event` in a k-fold ensemble, as `hepml inject` routes
/// it: the remainder of `event / k` taken non-negative (fold `i` was trained without the
/// events of remainder `i`). 0 when `k` is 0.
#[no_mangle]
pub extern "C" fn hepml_fold_of(event: i64, k: usize) -> usize {
    if k == 0 {
        return 0;
    }
    (event as i128).rem_euclid(k as i128) as usize
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
///
/// # Safety
/// `m` as for [`hepml_describe`]. When `n_inputs > 0`: `data`, `shapes` and `ranks` are null or
/// hold `n_inputs` entries, and so does `names` unless null; each non-null `names[k]` is a
/// NUL-terminated string, each non-null `shapes[k]` holds `ranks[k]` dimensions and each
/// non-null `data[k]` the product of them in floats. `out` is null or valid for writing
/// `out_cap` floats; `out_len` and `error` are null or valid for writing one value.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn hepml_run(
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
    let run = || {
        // SAFETY: the caller's contract (a live handle or null).
        let m = unsafe { model(m) }?;
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
        // SAFETY: the caller's contract for the inputs' names, shapes and data.
        if let Some(r) = unsafe { m.run_fast(names, data, shapes, ranks, output, out) } {
            let need = r?;
            set_len(need);
            return Ok(if need > out_cap { 2 } else { 0 });
        }
        // General path: named tensors through Engine::run (which checks them).
        let mut tensors = Vec::with_capacity(n_inputs);
        for k in 0..n_inputs {
            let name = match names {
                // SAFETY: a NUL-terminated string or null (the caller's contract).
                Some(n) => unsafe { c_str(n[k], "input name") }?.to_string(),
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
    };
    // SAFETY: `error` is null or writable (the caller's contract).
    unsafe { guard(error, 1, run) }
}

fn t_name(c: &CString) -> String {
    c.to_string_lossy().into_owned()
}
