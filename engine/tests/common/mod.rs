//! Helpers for the engine integration tests (the shared ones come from `testutil`).

pub use testutil::{python, repo as repo_root};

/// Runs a script under scripts/ with the venv python; panics with its stderr on failure.
pub fn run_script(script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(python())
        .arg(repo_root().join("scripts").join(script))
        .args(args)
        .output()
        .expect("running python");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} {args:?} failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A parity case written by a `make_*_cases.py` script: inputs and onnxruntime's output.
#[allow(dead_code)] // not every test binary reads cases files
pub struct Case {
    pub name: String,
    /// The case's own model, else the manifest's.
    pub model: std::path::PathBuf,
    pub inputs: Vec<engine::Tensor>,
    pub want: Vec<f32>,
    pub shape: Vec<usize>,
}

#[allow(dead_code)] // not every test binary reads cases files
impl Case {
    /// Runs the case on `e`: one output named `output`, of the case's shape, every value within
    /// `tol` of onnxruntime's relative to the outputs' scale; the largest difference.
    pub fn check(&self, e: &dyn engine::Engine, output: &str, tol: f32) -> f32 {
        let out = e
            .run(&self.inputs)
            .unwrap_or_else(|err| panic!("{}: {err}", self.name));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, output);
        assert_eq!(out[0].shape, self.shape, "{}", self.name);
        let scale = self.want.iter().fold(1f32, |a, v| a.max(v.abs()));
        let mut worst = 0f32;
        for (i, (g, w)) in out[0].data.iter().zip(&self.want).enumerate() {
            let d = (g - w).abs() / scale;
            assert!(
                d <= tol,
                "{}: event {} output {}: {g} vs onnxruntime {w}",
                self.name,
                i / self.shape[1],
                i % self.shape[1]
            );
            worst = worst.max(d);
        }
        worst
    }
}

/// Opens `path` with engine `kind` on `threads` threads, ONNX Runtime off: the engine and the
/// choice "auto" made.
#[allow(dead_code)] // not every test binary opens native graphs
pub fn open(
    path: &std::path::Path,
    kind: engine::EngineKind,
    threads: usize,
) -> (Box<dyn engine::Engine>, engine::Choice) {
    let (e, c) = engine::open_with_choice(
        &engine::Model::read(path).unwrap(),
        &engine::EngineOptions {
            kind,
            ort_library: engine::OrtLibrary::Off,
            threads,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (e.into_engine(), c)
}

/// Runs `script` into a fresh directory, or takes `env`'s (the script's output written before,
/// for a machine without onnxruntime, e.g. to check another CPU's SIMD level; paths in it
/// relative to it): the directory, its manifest and its cases.
#[allow(dead_code)] // not every test binary reads cases files
pub fn cases_from(env: &str, script: &str) -> (std::path::PathBuf, serde_json::Value, Vec<Case>) {
    let dir = match std::env::var_os(env) {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(script.trim_end_matches(".py"))
                .join(std::process::id().to_string());
            run_script(script, &[dir.to_str().unwrap()]);
            dir
        }
    };
    let man: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let cases = man["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().into(),
            model: dir.join(c.get("model").unwrap_or(&man["model"]).as_str().unwrap()),
            inputs: c["inputs"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(n, v)| {
                    let data = raw(&dir.join(v["file"].as_str().unwrap()));
                    engine::Tensor::new(n.clone(), shape(&v["shape"]), data)
                })
                .collect(),
            want: raw(&dir.join(c["output"]["file"].as_str().unwrap())),
            shape: shape(&c["output"]["shape"]),
        })
        .collect();
    (dir, man, cases)
}

/// A raw little-endian float32 file (the cases scripts' format).
fn raw(path: &std::path::Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn shape(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}
