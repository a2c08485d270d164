//! The ONNX Runtime backend (feature `ort`, `load-dynamic`): the shared library comes from an
//! explicit path, `ORT_DYLIB_PATH`, or the `libonnxruntime.so.1.*` inside the project venv's pip
//! `onnxruntime` wheel. `Session::run` needs `&mut`, so the engine keeps a small pool of
//! sessions, one per concurrent caller. `--device cuda` registers the CUDA execution provider
//! with `error_on_failure`: no silent fallback to the CPU.

use super::{read_info, EngineError, ModelInfo};
use crate::inject::pipeline::{Scorer, Tensor};
use ort::session::Session;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

static ENV: OnceLock<Result<(ort::environment::Environment, PathBuf), String>> = OnceLock::new();

/// Finds libonnxruntime: explicit path, ORT_DYLIB_PATH, or a project venv's onnxruntime wheel
/// (searched from the current directory and the executable's folders upwards).
pub fn find_library(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if p.exists() {
            Ok(p.to_path_buf())
        } else {
            Err(format!("--ort-lib {}: no such file", p.display()))
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

pub struct OrtEngine {
    pub info: ModelInfo,
    sessions: Vec<Mutex<Session>>,
    device: String,
    lib: PathBuf,
}

impl OrtEngine {
    pub fn load(
        path: &Path,
        lib: Option<&Path>,
        cuda: bool,
        pool: usize,
    ) -> Result<Self, EngineError> {
        let err = |msg: String| EngineError::Load {
            path: path.to_path_buf(),
            msg,
        };
        let info = read_info(path)?;
        let env = ENV.get_or_init(|| {
            let lib = find_library(lib)?;
            let env = ort::init_from(&lib)
                .map_err(|e| format!("loading {}: {e}", lib.display()))?
                .build()
                .map_err(|e| format!("onnxruntime environment: {e}"))?;
            Ok((env, lib))
        });
        let (env, lib) = env.as_ref().map_err(|e| err(e.clone()))?;
        let mut sessions = Vec::new();
        for _ in 0..pool.max(1) {
            let b = Session::builder(env).map_err(|e| err(format!("onnxruntime: {e}")))?;
            let mut b = b
                .with_intra_threads(1)
                .map_err(|e| err(format!("onnxruntime: {e}")))?;
            if cuda {
                b = b
                    .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
                    .map_err(|e| {
                        err(format!(
                            "CUDA execution provider unavailable (no silent CPU fallback): {e}"
                        ))
                    })?;
            }
            let s = b
                .commit_from_file(path)
                .map_err(|e| err(format!("onnxruntime: {e}")))?;
            sessions.push(Mutex::new(s));
        }
        Ok(OrtEngine {
            info,
            sessions,
            device: if cuda { "cuda".into() } else { "cpu".into() },
            lib: lib.clone(),
        })
    }
}

impl Scorer for OrtEngine {
    fn score(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
        let mut guard = None;
        for s in &self.sessions {
            if let Ok(g) = s.try_lock() {
                guard = Some(g);
                break;
            }
        }
        let mut session = match guard {
            Some(g) => g,
            None => self.sessions[0]
                .lock()
                .map_err(|_| "onnxruntime session lock poisoned".to_string())?,
        };
        let mut feed: Vec<(String, ort::value::DynValue)> = Vec::with_capacity(inputs.len());
        for t in inputs {
            if !self.info.inputs.iter().any(|p| p.name == t.name) {
                return Err(format!("the model has no input named '{}'", t.name));
            }
            let v = ort::value::Tensor::<f32>::from_array((t.shape.clone(), t.data.clone()))
                .map_err(|e| format!("input '{}': {e}", t.name))?;
            feed.push((t.name.clone(), v.into_dyn()));
        }
        let outs = session.run(feed).map_err(|e| format!("onnxruntime: {e}"))?;
        let mut result = Vec::new();
        for port in &self.info.outputs {
            let v = outs
                .get(&port.name)
                .ok_or_else(|| format!("onnxruntime gave no output '{}'", port.name))?;
            let (shape, data): (Vec<usize>, Vec<f32>) =
                if let Ok((s, d)) = v.try_extract_tensor::<f32>() {
                    (s.iter().map(|&x| x as usize).collect(), d.to_vec())
                } else if let Ok((s, d)) = v.try_extract_tensor::<i64>() {
                    (
                        s.iter().map(|&x| x as usize).collect(),
                        d.iter().map(|&x| x as f32).collect(),
                    )
                } else {
                    return Err(format!("output '{}' is neither float nor int64", port.name));
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
            "onnxruntime ({}, {}) on {} (xxh64 {})",
            self.device,
            self.lib.display(),
            self.info.path.display(),
            self.info.hash
        )
    }
}
