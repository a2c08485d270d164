//! The native 1-D CNN evaluator against onnxruntime on two networks that
//! `scripts/make_cnn_cases.py` builds with random weights: `mxnet`, the op pattern of CMS
//! DeepBoostedJet V02 (MXNet's pre-activation ResNet over `[N, C, L, 1]` inputs, two branches,
//! batch norms folded or applied per channel, strided stages, Gemm head, Softmax), and
//! `torch1d`, a PyTorch-style Conv1d network (biases, a stride-2 kernel of 5, a valid
//! convolution, a 3-D batch norm, MatMul + Add, Sigmoid). For each, 214 events in batches of
//! 1, 7, 16, 33, 64 and 65, sequences zero beyond random lengths (one event empty), and inputs
//! five times larger, with onnxruntime's outputs; and seven altered copies of `mxnet` the
//! evaluator must refuse, which "auto" hands to tract.

mod common;

use common::Case;
use engine::{native, Engine, EngineKind, EngineOptions, Model, OrtLibrary};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Relative to the outputs' scale (probabilities).
const TOL: f32 = 1e-5;
/// tract against onnxruntime on the altered models.
const TRACT_TOL: f32 = 1e-4;
/// Cases and events per model.
const CASES_PER_MODEL: usize = 10;
const EVENTS_PER_MODEL: usize = 214;

struct Cases {
    /// Model name ("mxnet", "torch1d") -> path.
    models: Vec<(String, PathBuf)>,
    cases: Vec<Case>,
    /// Altered models the evaluator must refuse: name, path, what the refusal contains.
    altered: Vec<(String, PathBuf, String)>,
}

fn cases() -> &'static Cases {
    static C: OnceLock<Cases> = OnceLock::new();
    C.get_or_init(|| {
        let (dir, man, cases) = common::cases_from("HEPML_CNN_CASES", "make_cnn_cases.py");
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
                    !a["native"].as_bool().unwrap(),
                    "{n}: only refused variants"
                );
                (
                    n.clone(),
                    dir.join(a["model"].as_str().unwrap()),
                    a["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        Cases {
            models,
            cases,
            altered,
        }
    })
}

fn model_path(name: &str) -> &'static Path {
    &cases()
        .models
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no model '{name}' in the manifest"))
        .1
}

/// The output each model's cases are checked on.
fn output(name: &str) -> &'static str {
    match name {
        "mxnet" => "softmax",
        "torch1d" => "output",
        other => panic!("unknown model {other}"),
    }
}

/// Opens `path` like `common::open`, holding the lock that the SIMD level checks take while
/// they set HEPML_NATIVE_SIMD: engines opened meanwhile by other tests keep the dispatched
/// level (the thread test compares bits).
fn open(path: &Path, kind: EngineKind, threads: usize) -> (Box<dyn Engine>, engine::Choice) {
    let _env = env_lock();
    common::open(path, kind, threads)
}

fn env_lock() -> std::sync::MutexGuard<'static, ()> {
    static ENV: Mutex<()> = Mutex::new(());
    ENV.lock().unwrap_or_else(|p| p.into_inner())
}

/// Every case of `model` within `tol` of onnxruntime on `output`: the largest difference,
/// the events and the cases.
fn check(e: &dyn Engine, model: &Path, output: &str, tol: f32) -> (f32, usize, usize) {
    let (mut worst, mut events, mut n) = (0f32, 0, 0);
    for c in cases().cases.iter().filter(|c| c.model == model) {
        worst = worst.max(c.check(e, output, tol));
        events += c.shape[0];
        n += 1;
    }
    assert!(n > 0, "no cases for {}", model.display());
    (worst, events, n)
}

/// "auto" without ONNX Runtime picks the native evaluator for `name`, which agrees with
/// onnxruntime on every event at the SIMD level the CPU dispatches to, and at each level below
/// it (forced with HEPML_NATIVE_SIMD; levels this CPU lacks are reported, not run).
fn native_matches_onnxruntime(name: &str) {
    let path = model_path(name);
    let out = output(name);
    let (e, choice) = open(path, EngineKind::Auto, 2);
    assert_eq!(choice.kind, EngineKind::Native, "{name}: {choice}");
    assert!(
        choice.reason.contains("1-D convolutional network"),
        "{name}: {choice}"
    );
    assert!(
        e.describe().starts_with("native (1-D CNN"),
        "{}",
        e.describe()
    );
    let (d, events, n) = check(e.as_ref(), path, out, TOL);
    assert_eq!(n, CASES_PER_MODEL, "{name}: cases");
    assert_eq!(events, EVENTS_PER_MODEL, "{name}: events");
    eprintln!(
        "{}: {events} events, max |diff| / scale {d:.2e}",
        e.describe()
    );
    let dispatched = e.describe();
    for (level, simd) in [("portable", "portable"), ("avx+fma", "avx+fma")] {
        let e = {
            let _env = env_lock();
            // SAFETY: every engine this binary opens is opened under the same lock.
            std::env::set_var("HEPML_NATIVE_SIMD", level);
            let (e, _) = common::open(path, EngineKind::Native, 2);
            std::env::remove_var("HEPML_NATIVE_SIMD");
            e
        };
        if !e.describe().contains(simd) {
            eprintln!("skipped level {level}: CPU lacks it ({})", e.describe());
            continue;
        }
        let (d, _, _) = check(e.as_ref(), path, out, TOL);
        eprintln!("{name} {level:10}: max |diff| / scale {d:.2e}");
    }
    if !dispatched.contains("avx512") {
        eprintln!("skipped level avx512+fma: CPU lacks it ({dispatched})");
    }
}

/// The DeepBoostedJet pattern: MXNet's pre-activation ResNet over `[N, C, 30, 1]` and
/// `[N, C, 7, 1]`, batch norms folded into convolutions or applied alone, Softmax.
#[test]
fn mxnet_native_matches_onnxruntime() {
    native_matches_onnxruntime("mxnet");
}

/// A PyTorch-style Conv1d network: biases, a stride-2 kernel of 5, a valid convolution, a 3-D
/// batch norm, Gemm (transB 0), MatMul + Add, Sigmoid.
#[test]
fn torch1d_native_matches_onnxruntime() {
    native_matches_onnxruntime("torch1d");
}

/// Events are independent: one thread and three give the same bits (65 events, and every
/// other batch of several).
#[test]
fn threads_agree() {
    let c = cases();
    assert_eq!(c.models.len(), 2, "the two models");
    for (name, path) in &c.models {
        let (one, _) = open(path, EngineKind::Native, 1);
        let (three, _) = open(path, EngineKind::Native, 3);
        let mut n = 0;
        let mut saw_65 = false;
        for case in c
            .cases
            .iter()
            .filter(|k| k.shape[0] > 1 && &k.model == path)
        {
            let a = one.run(&case.inputs).unwrap();
            let b = three.run(&case.inputs).unwrap();
            assert_eq!(a[0].data, b[0].data, "{name}: {}", case.name);
            saw_65 |= case.shape[0] == 65;
            n += 1;
        }
        assert!(saw_65, "{name}: no batch of 65");
        assert_eq!(n, 7, "{name}: batches of several events");
    }
}

/// Altered models the evaluator does not implement (a dilated, a grouped, an asymmetrically
/// padded, an auto-padded and a 3x3 convolution, a Tanh, a Dropout in training mode) are
/// refused, each naming what does not fit; "auto" without ONNX Runtime then runs them on
/// tract, within `TRACT_TOL` of onnxruntime (tract refuses to run the training-mode Dropout,
/// whose onnxruntime output is random).
#[test]
fn altered_graphs_are_refused() {
    let altered = &cases().altered;
    assert_eq!(altered.len(), 7, "the seven altered models");
    let mut compared = 0;
    for (name, path, reason) in altered {
        let model = Model::read(path).unwrap();
        let why = native::recognise_cnn(&model).expect_err(name);
        eprintln!("{name:16} refused: {why}");
        assert!(
            why.contains(reason.as_str()),
            "{name}: expected `{reason}` in: {why}"
        );
        let err = engine::open_with_choice(
            &model,
            &EngineOptions {
                kind: EngineKind::Native,
                ort_library: OrtLibrary::Off,
                ..Default::default()
            },
        )
        .err()
        .expect("refused")
        .to_string();
        assert!(err.contains("native 1-D CNN evaluator"), "{name}: {err}");
        assert!(err.contains(reason.as_str()), "{name}: {err}");
        let (e, choice) = open(path, EngineKind::Auto, 2);
        assert_eq!(choice.kind, EngineKind::Tract, "{name}: {choice}");
        assert!(
            e.describe().starts_with("tract"),
            "{name}: {}",
            e.describe()
        );
        let mine: Vec<_> = cases().cases.iter().filter(|c| c.model == *path).collect();
        if name == "training_mode" {
            assert!(mine.is_empty(), "{name}: onnxruntime's output is random");
            let c = cases()
                .cases
                .iter()
                .find(|c| c.model == model_path("mxnet") && c.shape[0] == 7)
                .expect("a batch of 7");
            let err = e
                .run(&c.inputs)
                .expect_err("tract runs no training-mode Dropout");
            let err = err.to_string();
            eprintln!("{name:16} on tract: {err}");
            assert!(err.to_lowercase().contains("dropout"), "{name}: {err}");
            continue;
        }
        assert_eq!(mine.len(), 1, "{name}: one case");
        let d = mine[0].check(e.as_ref(), "softmax", TRACT_TOL);
        eprintln!("{name:16} on tract: max |diff| / scale {d:.2e}");
        compared += 1;
    }
    assert_eq!(compared, 6);
}

/// Inputs that do not fit are one-line errors, never numbers.
#[test]
fn bad_inputs_are_errors() {
    let path = model_path("mxnet");
    let (e, _) = open(path, EngineKind::Native, 1);
    let case = cases()
        .cases
        .iter()
        .find(|k| k.model == path && k.shape[0] == 7)
        .expect("a batch of 7");
    // One input with fewer events than the other.
    let mut bad = case.inputs.clone();
    let t = bad.iter_mut().find(|t| t.name == "sv").unwrap();
    let per: usize = t.shape[1..].iter().product();
    t.shape[0] -= 1;
    t.data.truncate(t.shape[0] * per);
    let err = e.run(&bad).expect_err("batch mismatch").to_string();
    assert!(err.contains("sv"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    // A sequence of another length.
    let mut bad = case.inputs.clone();
    let t = bad.iter_mut().find(|t| t.name == "pfcand").unwrap();
    t.shape[2] = 29;
    t.data.truncate(7 * 12 * 29);
    let err = e.run(&bad).expect_err("wrong length").to_string();
    assert!(err.contains("pfcand"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}
