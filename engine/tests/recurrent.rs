//! The native evaluator of recurrent networks (`CnnEngine`, with GRUs) on the CMS DeepDoubleX
//! BvL model against onnxruntime:
//! `scripts/make_recurrent_cases.py` writes 891 events in batches of 1, 7, 16, 32, 33, 64 and
//! 65 (sequences zero-padded to random lengths, full, empty, and five times wider inputs that
//! saturate the gates) with onnxruntime's outputs, altered copies of the model with other GRU
//! settings the evaluator implements (linear_before_reset 1, forward, Sigmoid gates, clip), the
//! layout keras2onnx 1.6 writes (DeepDoubleX 94X V01) and a padded convolution of kernel 3,
//! checked the same way, and altered copies it must refuse.

mod common;

use common::{open, Case};
use engine::{native, Engine, EngineKind, EngineOptions, Model, OrtLibrary};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Relative to the outputs' scale (probabilities).
const TOL: f32 = 1e-5;

struct Cases {
    model: PathBuf,
    cases: Vec<Case>,
    /// Altered models: name, path, whether the evaluator runs it.
    altered: Vec<(String, PathBuf, bool)>,
}

fn cases() -> &'static Cases {
    static C: OnceLock<Cases> = OnceLock::new();
    C.get_or_init(|| {
        let (dir, man, cases) =
            common::cases_from("HEPML_RECURRENT_CASES", "make_recurrent_cases.py");
        let altered = man["altered"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(n, a)| {
                let path = dir.join(a["model"].as_str().unwrap());
                (n.clone(), path, a["native"].as_bool().unwrap())
            })
            .collect();
        Cases {
            model: dir.join(man["model"].as_str().unwrap()),
            cases,
            altered,
        }
    })
}

/// Every case of `model` within TOL of onnxruntime; the largest difference and the events.
fn check(e: &dyn Engine, model: &Path) -> (f32, usize) {
    let (mut worst, mut events) = (0f32, 0);
    for c in cases().cases.iter().filter(|c| c.model == model) {
        worst = worst.max(c.check(e, "ID_pred", TOL));
        events += c.shape[0];
    }
    assert!(events > 0, "no cases for {}", model.display());
    (worst, events)
}

/// "auto" without ONNX Runtime picks the native evaluator for DeepDoubleX, which agrees with
/// onnxruntime on every event at the SIMD level the CPU dispatches to, and at each level below
/// it (forced with HEPML_NATIVE_SIMD; levels this CPU lacks are reported, not run).
#[test]
fn deepdoublex_native_matches_onnxruntime() {
    let c = cases();
    let (e, choice) = open(&c.model, EngineKind::Auto, 2);
    assert_eq!(choice.kind, EngineKind::Native, "{choice}");
    assert!(
        choice
            .reason
            .contains("1-D convolutional/recurrent network"),
        "{choice}"
    );
    let d = e.describe();
    assert!(
        d.starts_with("native (1-D CNN/RNN") && d.contains("3 GRUs"),
        "{d}"
    );
    let (d, n) = check(e.as_ref(), &c.model);
    eprintln!("{}: {n} events, max |diff| / scale {d:.2e}", e.describe());
    let dispatched = e.describe();
    for (level, name) in [("portable", "portable"), ("avx+fma", "avx+fma")] {
        // SAFETY: no other test in this binary reads the environment concurrently.
        std::env::set_var("HEPML_NATIVE_SIMD", level);
        let (e, _) = open(&c.model, EngineKind::Native, 2);
        std::env::remove_var("HEPML_NATIVE_SIMD");
        if !e.describe().contains(name) {
            eprintln!("skipped level {level}: CPU lacks it ({})", e.describe());
            continue;
        }
        let (d, _) = check(e.as_ref(), &c.model);
        eprintln!("{level:10}: max |diff| / scale {d:.2e}");
    }
    if !dispatched.contains("avx512") {
        eprintln!("skipped level avx512+fma: CPU lacks it ({dispatched})");
    }
}

/// The GRU settings the evaluator implements beyond the model's own (linear_before_reset 1,
/// forward direction, Sigmoid gates, a clip), the model in keras2onnx 1.6's layout
/// (transposes around each convolution, the ReLUs on `[N, L, C]` values, a Reshape as the
/// flatten), and a convolution of kernel 3 before a GRU, agree with onnxruntime too.
#[test]
fn implemented_variants_match_onnxruntime() {
    let variants: Vec<_> = cases().altered.iter().filter(|a| a.2).collect();
    assert_eq!(variants.len(), 6, "the six implemented variants");
    for (name, path, _) in variants {
        let (e, choice) = open(path, EngineKind::Auto, 2);
        assert_eq!(choice.kind, EngineKind::Native, "{name}: {choice}");
        let (d, n) = check(e.as_ref(), path);
        eprintln!("{name:20}: {n} events, max |diff| / scale {d:.2e}");
    }
}

/// Events are independent: one thread (groups of 64 and 1 for 65 events) and three give the
/// same bits.
#[test]
fn deepdoublex_threads_agree() {
    let c = cases();
    let (one, _) = open(&c.model, EngineKind::Native, 1);
    let (three, _) = open(&c.model, EngineKind::Native, 3);
    let mut n = 0;
    for case in c
        .cases
        .iter()
        .filter(|k| k.shape[0] > 1 && k.model == c.model)
    {
        let a = one.run(&case.inputs).unwrap();
        let b = three.run(&case.inputs).unwrap();
        assert_eq!(a[0].data, b[0].data, "{}", case.name);
        n += 1;
    }
    assert!(n >= 10);
}

/// Altered models the evaluator does not implement are refused, each naming what does not
/// fit; "auto" without ONNX Runtime then has tract, which refuses the GRUs: a one-line error.
#[test]
fn altered_graphs_are_refused() {
    let expected = |name: &str| -> &[&str] {
        match name {
            "candidate_relu" => &["cpf_gru (GRU)", "activation 'Relu' for the cell"],
            "gates_softsign" => &["pf_gru (GRU)", "activation 'Softsign' for the gates"],
            "bidirectional" => &["sv_gru (GRU)", "direction 'bidirectional' not supported"],
            "sequence_lens" => &["pf_gru (GRU)", "input sequence_lens not supported"],
            "initial_h" => &["sv_gru (GRU)", "input initial_h not supported"],
            "conv_dilation_2" => &["(Conv)", "dilations [2] not supported"],
            other => panic!("an altered model without an expected refusal: {other}"),
        }
    };
    let refused: Vec<_> = cases().altered.iter().filter(|a| !a.2).collect();
    assert_eq!(refused.len(), 6, "the six refused variants");
    for (name, path, _) in refused {
        let model = Model::read(path).unwrap();
        let why = native::recognise_cnn(&model).expect_err(name);
        eprintln!("{name:16} refused: {why}");
        for want in expected(name) {
            assert!(why.contains(want), "{name}: expected `{want}` in: {why}");
        }
        let opts = |kind| EngineOptions {
            kind,
            ort_library: OrtLibrary::Off,
            ..Default::default()
        };
        let err = engine::open_with_choice(&model, &opts(EngineKind::Native))
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("native 1-D CNN/RNN evaluator"),
            "{name}: {err}"
        );
        let err = engine::open_with_choice(&model, &opts(EngineKind::Auto))
            .err()
            .expect("refused by tract too")
            .to_string();
        assert!(
            err.contains("auto: tract refuses this graph"),
            "{name}: {err}"
        );
        assert!(!err.contains('\n'), "{name}: {err}");
    }
}

/// Inputs that do not fit are one-line errors, never numbers.
#[test]
fn bad_deepdoublex_inputs_are_errors() {
    let c = cases();
    let (e, _) = open(&c.model, EngineKind::Native, 1);
    let case = c
        .cases
        .iter()
        .find(|k| k.shape[0] == 7)
        .expect("a batch of 7");
    // One input with fewer events than the others.
    let mut bad = case.inputs.clone();
    let t = bad.iter_mut().find(|t| t.name == "input_3").unwrap();
    let per: usize = t.shape[1..].iter().product();
    t.shape[0] -= 1;
    t.data.truncate(t.shape[0] * per);
    let err = e.run(&bad).expect_err("batch mismatch").to_string();
    assert!(err.contains("input_3") && err.contains("is 6"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    // A sequence of another length.
    let mut bad = case.inputs.clone();
    let t = bad.iter_mut().find(|t| t.name == "input_2").unwrap();
    t.shape[1] = 59;
    t.data.truncate(7 * 59 * 8);
    let err = e.run(&bad).expect_err("wrong length").to_string();
    assert!(err.contains("input_2"), "{err}");
}
