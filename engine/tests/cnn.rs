//! The native 1-D CNN/RNN evaluator against onnxruntime on three networks that
//! `scripts/make_cnn_cases.py` builds with random weights: `mxnet`, the op pattern of CMS
//! DeepBoostedJet V02 (MXNet's pre-activation ResNet over `[N, C, L, 1]` inputs, two branches,
//! batch norms folded or applied per channel, strided stages, Gemm head, Softmax), `mxnet_md`
//! (the same under the mass-decorrelated version's head: LeakyRelu, LogSoftmax), and
//! `torch1d`, a PyTorch-style Conv1d network (biases, a stride-2 kernel of 5, a valid
//! convolution, a 3-D batch norm, MatMul + Add, Sigmoid). For each, 214 events in batches of
//! 1, 7, 16, 33, 64 and 65, sequences zero beyond random lengths (one event empty), and inputs
//! five times larger, with onnxruntime's outputs; and seven altered copies of `mxnet` the
//! evaluator must refuse, which "auto" hands to tract.

mod common;

use common::{open_locked as open, Suite};
use engine::{native, EngineKind, EngineOptions, Model, OrtLibrary};
use std::path::Path;
use std::sync::OnceLock;

/// Relative to the outputs' scale (probabilities).
const TOL: f32 = 1e-5;
/// tract against onnxruntime on the altered models.
const TRACT_TOL: f32 = 1e-4;
/// Cases and events per model.
const CASES_PER_MODEL: usize = 10;
const EVENTS_PER_MODEL: usize = 214;

fn cases() -> &'static Suite {
    static C: OnceLock<Suite> = OnceLock::new();
    C.get_or_init(|| common::suite("HEPML_CNN_CASES", "make_cnn_cases.py"))
}

fn model_path(name: &str) -> &'static Path {
    cases().model(name)
}

/// The output each model's cases are checked on.
fn output(name: &str) -> &'static str {
    match name {
        "mxnet" => "softmax",
        "mxnet_md" => "log_softmax",
        "torch1d" => "output",
        other => panic!("unknown model {other}"),
    }
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
        choice
            .reason
            .contains("1-D convolutional/recurrent network"),
        "{name}: {choice}"
    );
    assert!(
        e.describe().starts_with("native (1-D CNN"),
        "{}",
        e.describe()
    );
    let (events, n) = cases().check_at_every_level(name, e.as_ref(), out, TOL);
    assert_eq!(n, CASES_PER_MODEL, "{name}: cases");
    assert_eq!(events, EVENTS_PER_MODEL, "{name}: events");
}

/// The DeepBoostedJet pattern: MXNet's pre-activation ResNet over `[N, C, 30, 1]` and
/// `[N, C, 7, 1]`, batch norms folded into convolutions or applied alone, Softmax.
#[test]
fn mxnet_native_matches_onnxruntime() {
    native_matches_onnxruntime("mxnet");
}

/// The head of DeepBoostedJet's mass-decorrelated version on the same branches: LeakyRelu
/// (alpha given and ONNX's default) after each dense layer, LogSoftmax as the output.
#[test]
fn mxnet_decorrelated_native_matches_onnxruntime() {
    native_matches_onnxruntime("mxnet_md");
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
    let seen = cases().threads_agree();
    assert_eq!(seen.len(), 3, "the three models");
    for (name, n, largest) in seen {
        assert_eq!((n, largest), (7, 65), "{name}: batches of several events");
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
        assert!(
            err.contains("native 1-D CNN/RNN evaluator"),
            "{name}: {err}"
        );
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
