//! The ONNX Runtime backend (feature `ort`, `load-dynamic`): the shared library comes from an
//! explicit path, `ORT_DYLIB_PATH`, or the `libonnxruntime.so.1.*` inside the project venv's pip
//! `onnxruntime` wheel. `Session::run` needs `&mut`, so the engine keeps a small pool of
//! sessions, one per concurrent caller. `--device cuda` registers the CUDA execution provider
//! with `error_on_failure`: no silent fallback to the CPU.

use super::{Engine, EngineError, Model, ModelInfo, Tensor};
use ort::session::Session;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Finds libonnxruntime: explicit path, `ORT_DYLIB_PATH`, or the newest
/// `.venv/lib/python3.*/site-packages/onnxruntime/capi/libonnxruntime.so.1.*` of a project venv,
/// searched upwards from the current directory, the executable, and the checkout this crate was
/// built from (the wheel has no unversioned symlink: the versioned file is loaded).
pub fn find_library(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if p.exists() {
            Ok(p.to_path_buf())
        } else {
            Err(format!("onnxruntime library {}: no such file", p.display()))
        };
    }
    if let Ok(p) = std::env::var("ORT_DYLIB_PATH") {
        return if Path::new(&p).exists() {
            Ok(PathBuf::from(p))
        } else {
            Err(format!("ORT_DYLIB_PATH={p}: no such file"))
        };
    }
    let mut starts: Vec<PathBuf> = Vec::new();
    if let Ok(d) = std::env::current_dir() {
        starts.push(d);
    }
    if let Ok(e) = std::env::current_exe() {
        starts.push(e);
    }
    starts.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    for s in starts {
        for dir in s.ancestors() {
            let lib = dir.join(".venv/lib");
            let Ok(pys) = std::fs::read_dir(&lib) else {
                continue;
            };
            for py in pys.flatten() {
                let capi = py.path().join("site-packages/onnxruntime/capi");
                if let Ok(files) = std::fs::read_dir(&capi) {
                    let mut found: Vec<PathBuf> = files
                        .flatten()
                        .map(|f| f.path())
                        .filter(|p| {
                            p.file_name().is_some_and(|n| {
                                n.to_string_lossy().starts_with("libonnxruntime.so.1")
                            })
                        })
                        .collect();
                    found.sort();
                    if let Some(p) = found.pop() {
                        return Ok(p);
                    }
                }
            }
        }
    }
    Err("no libonnxruntime found: pass --ort-lib PATH, set ORT_DYLIB_PATH, or run scripts/setup_env.sh (pip onnxruntime in .venv)".into())
}

/// How the error for `--device cuda` on an onnxruntime without the CUDA execution provider
/// begins (no silent fallback to the CPU).
pub const CUDA_MISSING: &str = "CUDA execution provider not available";

/// How the error for a CUDA execution provider that is built in but cannot start (no GPU, no
/// driver, no CUDA libraries) begins.
pub const CUDA_FAILED: &str =
    "the CUDA execution provider cannot be registered (no silent CPU fallback)";

pub struct OrtEngine {
    pub info: ModelInfo,
    sessions: Vec<Mutex<Session>>,
    intra_threads: usize,
    device: String,
    lib: PathBuf,
}

/// The process's ONNX Runtime (a library is loaded once per process): its environment and
/// where it came from. Only a successful load is kept, so a later call can name a library.
static ENV: Mutex<Option<(ort::environment::Environment, PathBuf)>> = Mutex::new(None);

fn environment(
    lib: Option<&Path>,
) -> Result<(ort::environment::Environment, PathBuf), EngineError> {
    let mut env = ENV
        .lock()
        .map_err(|_| EngineError::Config("onnxruntime environment lock poisoned".into()))?;
    if let Some((e, loaded)) = env.as_ref() {
        if let Some(want) = lib {
            let same = want.canonicalize().ok() == loaded.canonicalize().ok();
            if !same {
                return Err(EngineError::Config(format!(
                    "onnxruntime is already loaded from {} in this process; cannot switch to {}",
                    loaded.display(),
                    want.display()
                )));
            }
        }
        return Ok((e.clone(), loaded.clone()));
    }
    let path = find_library(lib).map_err(EngineError::Config)?;
    let e = ort::init_from(&path)
        .map_err(|e| EngineError::Config(format!("loading {}: {e}", path.display())))?
        .build()
        .map_err(|e| {
            EngineError::Config(format!("onnxruntime environment ({}): {e}", path.display()))
        })?;
    *env = Some((e.clone(), path.clone()));
    Ok((e, path))
}

impl OrtEngine {
    /// Loads `model` into `pool` sessions (one per concurrent caller: `Session::run` needs
    /// `&mut`), each with `intra_threads` intra-op threads (the caller's included). `cuda`: register the CUDA execution provider or fail, never run on the CPU.
    /// The ports come from `model`; ONNX Runtime parses the graph itself, from the file (so
    /// that external data beside it resolves).
    pub fn load(
        model: &Model,
        lib: Option<&Path>,
        cuda: bool,
        pool: usize,
        intra_threads: usize,
    ) -> Result<Self, EngineError> {
        let path = model.path();
        let err = |msg: String| EngineError::Load {
            path: path.to_path_buf(),
            msg,
        };
        let info = model.info().clone();
        for o in &info.outputs {
            if o.elem != "float" && o.elem != "int64" {
                return Err(EngineError::Unsupported {
                    path: path.to_path_buf(),
                    msg: format!(
                        "output '{}' is a {} (a ZipMap?): the ort engine returns float and int64                          tensors only; export with skl2onnx options={{'zipmap': False}} or use                          the native tree engine",
                        o.name, o.elem
                    ),
                });
            }
        }
        let (env, lib) = environment(lib)?;
        if cuda {
            use ort::ep::ExecutionProvider;
            let built_with = ort::ep::CUDA::is_available()
                .map_err(|e| err(format!("onnxruntime: listing its execution providers: {e}")))?;
            if !built_with {
                return Err(EngineError::Config(format!(
                    "{CUDA_MISSING} for --device cuda in {} (an onnxruntime built without CUDA): install \
                     onnxruntime-gpu and pass its library with --ort-lib, or use --device cpu",
                    lib.display()
                )));
            }
        }
        let mut sessions = Vec::new();
        for _ in 0..pool.max(1) {
            let b = Session::builder(&env).map_err(|e| err(format!("onnxruntime: {e}")))?;
            let mut b = b
                .with_intra_threads(intra_threads.max(1))
                .map_err(|e| err(format!("onnxruntime: {e}")))?;
            if cuda {
                b = b
                    .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
                    .map_err(|e| err(format!("{CUDA_FAILED}: {e}")))?;
            }
            let s = b
                .commit_from_file(path)
                .map_err(|e| err(format!("onnxruntime: {e}")))?;
            sessions.push(Mutex::new(s));
        }
        Ok(OrtEngine {
            info,
            sessions,
            intra_threads: intra_threads.max(1),
            device: if cuda { "cuda".into() } else { "cpu".into() },
            lib,
        })
    }
}

impl OrtEngine {
    fn run_err(&self, msg: impl std::fmt::Display) -> EngineError {
        EngineError::Run {
            path: self.info.path.clone(),
            msg: format!("onnxruntime: {msg}"),
        }
    }
}

impl Engine for OrtEngine {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EngineError> {
        let ordered = self.info.check_inputs(inputs)?;
        // A free session if there is one, else wait for the first.
        let mut session = match self.sessions.iter().find_map(|s| s.try_lock().ok()) {
            Some(g) => g,
            None => self.sessions[0]
                .lock()
                .map_err(|_| self.run_err("session lock poisoned"))?,
        };
        let mut feed: Vec<(String, ort::value::DynValue)> = Vec::with_capacity(ordered.len());
        for t in ordered {
            let v = ort::value::Tensor::<f32>::from_array((t.shape.clone(), t.data.clone()))
                .map_err(|e| EngineError::Input {
                    path: self.info.path.clone(),
                    input: t.name.clone(),
                    msg: format!("onnxruntime: {e}"),
                })?;
            feed.push((t.name.clone(), v.into_dyn()));
        }
        let outs = session.run(feed).map_err(|e| self.run_err(e))?;
        let mut result = Vec::with_capacity(self.info.outputs.len());
        for port in &self.info.outputs {
            let v = outs
                .get(&port.name)
                .ok_or_else(|| self.run_err(format!("no output '{}'", port.name)))?;
            let (shape, data): (Vec<usize>, Vec<f32>) =
                if let Ok((s, d)) = v.try_extract_tensor::<f32>() {
                    (s.iter().map(|&x| x as usize).collect(), d.to_vec())
                } else if let Ok((s, d)) = v.try_extract_tensor::<i64>() {
                    (
                        s.iter().map(|&x| x as usize).collect(),
                        d.iter().map(|&x| x as f32).collect(),
                    )
                } else {
                    return Err(self.run_err(format!(
                        "output '{}' is neither a float nor an int64 tensor",
                        port.name
                    )));
                };
            result.push(Tensor {
                name: port.name.clone(),
                shape,
                data,
            });
        }
        Ok(result)
    }

    fn describe(&self) -> String {
        format!(
            "onnxruntime ({}, {} session{} x {} thread{}, {}) on {} (xxh64 {})",
            self.device,
            self.sessions.len(),
            if self.sessions.len() == 1 { "" } else { "s" },
            self.intra_threads,
            if self.intra_threads == 1 { "" } else { "s" },
            self.lib.display(),
            self.info.path.display(),
            self.info.hash
        )
    }

    fn info(&self) -> &ModelInfo {
        &self.info
    }
}
