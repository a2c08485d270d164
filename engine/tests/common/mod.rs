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
    /// Further outputs the model gives: name, onnxruntime's values, shape.
    pub extra: Vec<(String, Vec<f32>, Vec<usize>)>,
}

#[allow(dead_code)] // not every test binary reads cases files
impl Case {
    /// Runs the case on `e`: an output named `output` (and the case's further outputs, by
    /// name), of the case's shapes, every value within `tol` of onnxruntime's relative to each
    /// output's scale; the largest difference.
    pub fn check(&self, e: &dyn engine::Engine, output: &str, tol: f32) -> f32 {
        let out = e
            .run(&self.inputs)
            .unwrap_or_else(|err| panic!("{}: {err}", self.name));
        assert_eq!(out.len(), 1 + self.extra.len(), "{}: outputs", self.name);
        let wants = std::iter::once((output, &self.want, &self.shape))
            .chain(self.extra.iter().map(|(n, w, s)| (n.as_str(), w, s)));
        let mut worst = 0f32;
        for (name, want, shape) in wants {
            let got = out
                .iter()
                .find(|t| t.name == name)
                .unwrap_or_else(|| panic!("{}: no output {name}", self.name));
            assert_eq!(&got.shape, shape, "{} {name}", self.name);
            let scale = want.iter().fold(1f32, |a, v| a.max(v.abs()));
            for (i, (g, w)) in got.data.iter().zip(want).enumerate() {
                let d = (g - w).abs() / scale;
                assert!(
                    d <= tol,
                    "{} {name}: event {} output {}: {g} vs onnxruntime {w}",
                    self.name,
                    i / shape[1],
                    i % shape[1]
                );
                worst = worst.max(d);
            }
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
            extra: c
                .get("extra")
                .and_then(|x| x.as_array())
                .map_or_else(Vec::new, |xs| {
                    xs.iter()
                        .map(|x| {
                            (
                                x["name"].as_str().unwrap().to_string(),
                                raw(&dir.join(x["file"].as_str().unwrap())),
                                shape(&x["shape"]),
                            )
                        })
                        .collect()
                }),
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

/// A cases script's output for a graph evaluator: models by name, cases, and altered models
/// the evaluator must refuse (name, path, a substring of the refusal).
#[allow(dead_code)] // not every test binary reads suites
pub struct Suite {
    pub models: Vec<(String, std::path::PathBuf)>,
    pub cases: Vec<Case>,
    pub altered: Vec<(String, std::path::PathBuf, String)>,
}

/// The suite `script` writes (or `env`'s directory, as for [`cases_from`]): its manifest names
/// `models` (name -> file) and `altered` (name -> `model`, `reason`; `native` false if given).
#[allow(dead_code)]
pub fn suite(env: &str, script: &str) -> Suite {
    let (dir, man, cases) = cases_from(env, script);
    let models = man["models"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(n, p)| (n.clone(), dir.join(p.as_str().unwrap())))
        .collect();
    let altered = man["altered"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(n, a)| {
            assert!(
                !a.get("native").and_then(|v| v.as_bool()).unwrap_or(false),
                "{n}: only refused variants"
            );
            (
                n.clone(),
                dir.join(a["model"].as_str().unwrap()),
                a["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    Suite {
        models,
        cases,
        altered,
    }
}

#[allow(dead_code)]
impl Suite {
    pub fn model(&self, name: &str) -> &std::path::Path {
        &self
            .models
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no model '{name}' in the manifest"))
            .1
    }
}

/// The lock under which engines are opened while a test sets HEPML_NATIVE_SIMD, so engines
/// opened meanwhile by other tests keep the dispatched level.
#[allow(dead_code)]
pub fn env_lock() -> std::sync::MutexGuard<'static, ()> {
    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ENV.lock().unwrap_or_else(|p| p.into_inner())
}

/// [`open`] under [`env_lock`].
#[allow(dead_code)]
pub fn open_locked(
    path: &std::path::Path,
    kind: engine::EngineKind,
    threads: usize,
) -> (Box<dyn engine::Engine>, engine::Choice) {
    let _env = env_lock();
    open(path, kind, threads)
}

/// `path` on the native engine forced to each SIMD level below AVX-512 (HEPML_NATIVE_SIMD):
/// `f(level, engine)` for each level the CPU has; the others are reported, not run.
/// `dispatched` (the describe() of the engine at the level the CPU picks) tells whether
/// AVX-512 was run.
#[allow(dead_code)]
pub fn at_lower_levels(
    path: &std::path::Path,
    dispatched: &str,
    mut f: impl FnMut(&str, &dyn engine::Engine),
) {
    for (level, simd) in [("portable", "portable"), ("avx+fma", "avx+fma")] {
        let e = {
            let _env = env_lock();
            // SAFETY: every engine this binary opens is opened under the same lock.
            std::env::set_var("HEPML_NATIVE_SIMD", level);
            let (e, _) = open(path, engine::EngineKind::Native, 2);
            std::env::remove_var("HEPML_NATIVE_SIMD");
            e
        };
        if !e.describe().contains(simd) {
            eprintln!("skipped level {level}: CPU lacks it ({})", e.describe());
            continue;
        }
        f(level, e.as_ref());
    }
    if !dispatched.contains("avx512") {
        eprintln!("skipped level avx512+fma: CPU lacks it ({dispatched})");
    }
}

#[allow(dead_code)]
impl Suite {
    /// Every case of `model` within `tol` of onnxruntime on `output` (and the case's further
    /// outputs): the largest difference, the events and the cases.
    pub fn check(
        &self,
        e: &dyn engine::Engine,
        model: &std::path::Path,
        output: &str,
        tol: f32,
    ) -> (f32, usize, usize) {
        let (mut worst, mut events, mut n) = (0f32, 0, 0);
        for c in self.cases.iter().filter(|c| c.model == model) {
            worst = worst.max(c.check(e, output, tol));
            events += c.shape[0];
            n += 1;
        }
        assert!(n > 0, "no cases for {}", model.display());
        (worst, events, n)
    }

    /// Each model on the native engine with one thread and with three gives the same bits on
    /// every output of every batch of several events: per model, the batches compared and the
    /// largest.
    pub fn threads_agree(&self) -> Vec<(String, usize, usize)> {
        let mut seen = Vec::new();
        for (name, path) in &self.models {
            let (one, _) = open_locked(path, engine::EngineKind::Native, 1);
            let (three, _) = open_locked(path, engine::EngineKind::Native, 3);
            let (mut n, mut largest) = (0, 0);
            for case in self
                .cases
                .iter()
                .filter(|k| k.shape[0] > 1 && &k.model == path)
            {
                let a = one.run(&case.inputs).unwrap();
                let b = three.run(&case.inputs).unwrap();
                assert_eq!(a.len(), b.len());
                for (x, y) in a.iter().zip(&b) {
                    assert_eq!(x.data, y.data, "{name}: {} {}", case.name, x.name);
                }
                n += 1;
                largest = largest.max(case.shape[0]);
            }
            seen.push((name.clone(), n, largest));
        }
        seen
    }
}

#[allow(dead_code)]
impl Suite {
    /// [`Suite::check`] of model `name` on `e` (the engine at the SIMD level the CPU
    /// dispatches to), reported, then on the native engine forced to each level below it
    /// ([`at_lower_levels`]): the events and cases checked at the dispatched level.
    pub fn check_at_every_level(
        &self,
        name: &str,
        e: &dyn engine::Engine,
        output: &str,
        tol: f32,
    ) -> (usize, usize) {
        let path = self.model(name);
        let (d, events, n) = self.check(e, path, output, tol);
        eprintln!(
            "{}: {events} events, max |diff| / scale {d:.2e}",
            e.describe()
        );
        at_lower_levels(path, &e.describe(), |level, e| {
            let (d, _, _) = self.check(e, path, output, tol);
            eprintln!("{name} {level:10}: max |diff| / scale {d:.2e}");
        });
        (events, n)
    }
}
