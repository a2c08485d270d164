//! The native evaluator on LSTM taggers (CMS DeepJet's family) against onnxruntime, on two
//! networks `scripts/make_lstm_cases.py` builds with random weights in the op patterns of the
//! two real exports: `keras` (keras2onnx, as DeepJet V03: reverse LSTMs with HardSigmoid gates,
//! `Y_h` reshaped, dead Shape/Slice nodes, two outputs) and `torch` (PyTorch, as DeepJet's Run 3
//! export: reversed steps by Slice into forward LSTMs with ConstantOfShape zero states, Y's
//! last step gathered, LSTMs straight on inputs, clip, an Identity output of an input). For
//! each, 214 events in batches of 1, 7, 16, 33, 64 and 65, sequences zero beyond random lengths
//! (one event empty), and inputs five times larger, every output checked; and eight altered
//! copies the evaluator must refuse, naming why.

mod common;

use common::{open_locked as open, Suite};
use engine::{native, EngineKind, Model};
use std::path::Path;
use std::sync::OnceLock;

/// Relative to each output's scale.
const TOL: f32 = 1e-5;
const CASES_PER_MODEL: usize = 10;
const EVENTS_PER_MODEL: usize = 214;

fn cases() -> &'static Suite {
    static C: OnceLock<Suite> = OnceLock::new();
    C.get_or_init(|| common::suite("HEPML_LSTM_CASES", "make_lstm_cases.py"))
}

fn model_path(name: &str) -> &'static Path {
    cases().model(name)
}

/// "auto" without ONNX Runtime picks the native evaluator for `name`, which agrees with
/// onnxruntime on every event and output at the SIMD level the CPU dispatches to and at each
/// level below it (forced with HEPML_NATIVE_SIMD; levels this CPU lacks are reported).
fn native_matches_onnxruntime(name: &str) {
    let path = model_path(name);
    let (e, choice) = open(path, EngineKind::Auto, 2);
    assert_eq!(choice.kind, EngineKind::Native, "{name}: {choice}");
    assert!(
        choice
            .reason
            .contains("1-D convolutional/recurrent network"),
        "{name}: {choice}"
    );
    let lstms = if name == "keras" {
        "2 LSTMs"
    } else {
        "3 LSTMs"
    };
    assert!(e.describe().contains(lstms), "{name}: {}", e.describe());
    let mine = cases().cases.iter().filter(|c| c.model == path);
    assert!(
        mine.clone().count() > 0 && mine.clone().all(|c| c.extra.len() == 1),
        "{name}: the second output"
    );
    let (events, n) = cases().check_at_every_level(name, e.as_ref(), "ID", TOL);
    assert_eq!(n, CASES_PER_MODEL, "{name}: cases");
    assert_eq!(events, EVENTS_PER_MODEL, "{name}: events");
}

/// keras2onnx's pattern (DeepJet V03).
#[test]
fn keras_native_matches_onnxruntime() {
    native_matches_onnxruntime("keras");
}

/// PyTorch's pattern (DeepJet Run 3).
#[test]
fn torch_native_matches_onnxruntime() {
    native_matches_onnxruntime("torch");
}

/// Events are independent: one thread and three give the same bits on every batch of
/// several events (65 included: groups of 64 and a partial one).
#[test]
fn threads_agree() {
    let seen = cases().threads_agree();
    assert_eq!(seen.len(), 2, "the two models");
    for (name, n, largest) in seen {
        assert_eq!((n, largest), (7, 65), "{name}: batches of several events");
    }
}

/// LSTMs the evaluator does not implement (bidirectional, input_forget, peepholes, a Relu
/// cell, a nonzero initial state, sequence_lens) and ways of taking a state that are not the
/// final one (a slice of step 2, Y's first step of a forward LSTM) are refused by name.
#[test]
fn altered_graphs_are_refused() {
    let altered = &cases().altered;
    assert_eq!(altered.len(), 8, "the eight altered models");
    for (name, path, reason) in altered {
        let model = Model::read(path).unwrap();
        let why = native::recognise_cnn(&model).expect_err(name);
        eprintln!("{name:16} refused: {why}");
        assert!(
            why.contains(reason.as_str()),
            "{name}: expected `{reason}` in: {why}"
        );
    }
}
