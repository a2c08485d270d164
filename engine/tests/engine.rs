//! The inference engines on real models against onnxruntime.
//!
//! `scripts/make_engine_models.py` trains and exports the models (sklearn MLPs, a two-input
//! PNN, gradient-boosted and random-forest BDTs via skl2onnx, hand-written tree ensembles for
//! the operator corners), references the CMS ParticleNet and DeepDoubleX models in
//! `<repo>/../shared/data`, and writes inputs and onnxruntime's outputs as .npy. Every output of
//! every engine must be within 1e-5 of onnxruntime's.
//!
//! Over 800 lines: every test reads the one table of cases (`cases()`: model, inputs,
//! onnxruntime's outputs) built once at the top.

mod common;

use engine::{
    tract::TractEngine, Choice, Device, Engine, EngineError, EngineKind, EngineOptions, Model,
    Opened, OrtLibrary, Tensor,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const TOL: f32 = 1e-5;

/// A float32 C-order .npy file.
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&b[..6], b"\x93NUMPY", "{}", path.display());
    let (hlen, start) = if b[6] == 1 {
        (u16::from_le_bytes([b[8], b[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12)
    };
    let header = std::str::from_utf8(&b[start..start + hlen]).unwrap();
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    let shape_txt = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap();
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let data: Vec<f32> = b[start + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(data.len(), shape.iter().product::<usize>());
    (shape, data)
}

struct Case {
    name: String,
    model: PathBuf,
    route: String,
    inputs: Vec<Tensor>,
    outputs: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

/// Generates the models once per test process (under the target dir, never in the repo).
fn models_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("engine-models");
        let dir = root.join(std::process::id().to_string());
        // Leftovers of earlier runs.
        if let Ok(rd) = std::fs::read_dir(&root) {
            for e in rd.flatten() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        common::run_script("make_engine_models.py", &[dir.to_str().unwrap()]);
        dir
    })
}

fn cases() -> Vec<Case> {
    let dir = models_dir();
    let man: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    for c in man["cases"].as_array().unwrap() {
        let files = |k: &str| -> Vec<(String, PathBuf)> {
            c[k].as_object()
                .unwrap()
                .iter()
                .map(|(n, f)| (n.clone(), dir.join(f.as_str().unwrap())))
                .collect()
        };
        out.push(Case {
            name: c["name"].as_str().unwrap().into(),
            model: PathBuf::from(c["model"].as_str().unwrap()),
            route: c["route"].as_str().unwrap().into(),
            inputs: files("inputs")
                .into_iter()
                .map(|(n, f)| {
                    let (shape, data) = read_npy(&f);
                    Tensor::new(n, shape, data)
                })
                .collect(),
            outputs: files("outputs")
                .into_iter()
                .map(|(n, f)| (n, read_npy(&f)))
                .collect(),
        });
    }
    for want in ["particlenet", "bvl", "mlp_80_100_100_1", "gbc", "pnn"] {
        assert!(
            out.iter().any(|c| c.name == want),
            "case {want} missing (shared/data beside the checkout?)"
        );
    }
    out
}

fn case(name: &str) -> Case {
    cases().into_iter().find(|c| c.name == name).unwrap()
}

/// Runs a case on an engine and returns the largest difference to onnxruntime's outputs.
fn compare(c: &Case, e: &dyn Engine) -> f32 {
    let outs = e
        .run(&c.inputs)
        .unwrap_or_else(|err| panic!("{}: {err}", c.name));
    assert_eq!(outs.len(), c.outputs.len(), "{}: output count", c.name);
    let mut worst = 0f32;
    for t in &outs {
        let (shape, data) = c
            .outputs
            .get(&t.name)
            .unwrap_or_else(|| panic!("{}: unexpected output {}", c.name, t.name));
        assert_eq!(&t.shape, shape, "{}: output {} shape", c.name, t.name);
        let d = testutil::max_diff(&t.data, data);
        assert!(
            d <= TOL,
            "{} on {}: output {} differs by {d}",
            c.name,
            e.describe(),
            t.name
        );
        worst = worst.max(d);
    }
    worst
}

fn open(path: &Path, kind: EngineKind) -> Result<Box<dyn Engine>, EngineError> {
    open_with(path, kind, OrtLibrary::Search).map(|(e, _)| e)
}

/// Opens `path` on `kind` with ONNX Runtime from `ort`; the engine and the choice.
fn open_with(
    path: &Path,
    kind: EngineKind,
    ort: OrtLibrary,
) -> Result<(Box<dyn Engine>, Choice), EngineError> {
    engine::open_with_choice(
        &Model::read(path)?,
        &EngineOptions {
            kind,
            ort_sessions: 2,
            ort_library: ort,
            ..Default::default()
        },
    )
    .map(|(e, c)| (e.into_engine(), c))
}

/// Whether "auto" can use ONNX Runtime in this build: with the `ort` feature the venv's
/// onnxruntime must be there (a missing library fails the test, never skips it).
fn ort_present() -> bool {
    #[cfg(feature = "ort")]
    {
        let lib = engine::ort::find_library(None).expect("libonnxruntime (the venv's onnxruntime)");
        eprintln!("ONNX Runtime: {}", lib.display());
        true
    }
    #[cfg(not(feature = "ort"))]
    false
}

/// Auto routing, with ONNX Runtime found and switched off: tree ensembles and dense networks
/// on the native evaluators either way; other graphs on ONNX Runtime, else tract; graphs tract
/// refuses (GRUs with attributes it ignores) on ONNX Runtime, else a one-line error naming the
/// refusal. The choice names its reason. All within 1e-5.
#[test]
fn tract_and_native_trees_match_onnxruntime() {
    let ort = ort_present();
    let mut report = Vec::new();
    for c in cases() {
        let (e, choice) = open_with(&c.model, EngineKind::Auto, OrtLibrary::Off)
            .map(|(e, c)| (Some(e), Some(c)))
            .unwrap_or_else(|err| {
                assert_eq!(c.route, "ort", "{}: {err}", c.name);
                // Graphs tract would run with wrong numbers are refused, naming the node.
                assert_one_line(
                    &err,
                    &[
                        "auto: tract refuses this graph",
                        "(GRU)",
                        "not implemented by tract",
                        "ONNX Runtime is switched off",
                    ],
                );
                report.push(format!("{:30} without ONNX Runtime: {err}", c.name));
                (None, None)
            });
        if let (Some(e), Some(choice)) = (e, choice) {
            let (want, kind, why) = match c.route.as_str() {
                "trees" => ("native trees", EngineKind::Trees, "tree ensemble"),
                "native" => ("native dense", EngineKind::Native, "dense network"),
                "edgeconv" => ("native (EdgeConv", EngineKind::Native, "(EdgeConv) network"),
                "recurrent" => (
                    "native (1-D CNN/RNN",
                    EngineKind::Native,
                    "1-D convolutional/recurrent network",
                ),
                _ => ("tract", EngineKind::Tract, "ONNX Runtime is switched off"),
            };
            assert!(
                e.describe().starts_with(want),
                "{}: {}",
                c.name,
                e.describe()
            );
            assert_eq!(choice.kind, kind, "{}", c.name);
            assert!(choice.reason.contains(why), "{}: {choice}", c.name);
            let d = compare(&c, e.as_ref());
            report.push(format!(
                "{:30} {want:13} max|diff| {d:.2e} ({choice})",
                c.name
            ));
        }
        if !ort || !matches!(c.route.as_str(), "tract" | "ort") {
            continue;
        }
        let (e, choice) = open_with(&c.model, EngineKind::Auto, OrtLibrary::Search)
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert!(
            e.describe().starts_with("onnxruntime (cpu"),
            "{}",
            e.describe()
        );
        assert_eq!(choice.kind, EngineKind::Ort, "{}", c.name);
        assert!(
            choice.reason.contains("no native evaluator")
                && choice.reason.contains("ONNX Runtime found"),
            "{}: {choice}",
            c.name
        );
        let d = compare(&c, e.as_ref());
        report.push(format!(
            "{:30} onnxruntime   max|diff| {d:.2e} ({choice})",
            c.name
        ));
    }
    eprintln!("{}", report.join("\n"));
}

/// Dense networks and tree ensembles stay native under "auto" when ONNX Runtime is found.
#[cfg(feature = "ort")]
#[test]
fn auto_keeps_native_graphs_native() {
    assert!(ort_present(), "this check needs ONNX Runtime found");
    for c in cases() {
        let (want, kind) = match c.route.as_str() {
            "trees" => ("native trees", EngineKind::Trees),
            "native" => ("native dense", EngineKind::Native),
            "edgeconv" => ("native (EdgeConv", EngineKind::Native),
            "recurrent" => ("native (1-D CNN/RNN", EngineKind::Native),
            _ => continue,
        };
        let (e, choice) = open_with(&c.model, EngineKind::Auto, OrtLibrary::Search)
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert!(
            e.describe().starts_with(want),
            "{}: routed to {}",
            c.name,
            e.describe()
        );
        assert_eq!(choice.kind, kind, "{}", c.name);
        // One branch mode and one weight per leaf: the packed branch-free walk takes them.
        if c.name.starts_with("trees_lt_") || c.name.starts_with("trees_leq_") || c.name == "gbc" {
            assert!(
                e.describe().contains("packed"),
                "{}: {}",
                c.name,
                e.describe()
            );
        }
    }
}

/// The same cases on ONNX Runtime through the `ort` crate (venv libonnxruntime).
#[cfg(feature = "ort")]
#[test]
fn ort_matches_onnxruntime() {
    let mut report = Vec::new();
    for c in cases() {
        if c.name == "gbc_zipmap" {
            // A ZipMap output is a sequence of maps: refused with a pointer to zipmap=False.
            let err = open(&c.model, EngineKind::Ort)
                .err()
                .expect("zipmap refused");
            assert!(err.to_string().contains("zipmap"), "{err}");
            continue;
        }
        let e = open(&c.model, EngineKind::Ort).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert!(
            e.describe().starts_with("onnxruntime (cpu"),
            "{}",
            e.describe()
        );
        let d = compare(&c, e.as_ref());
        report.push(format!("{:30} ort           max|diff| {d:.2e}", c.name));
    }
    eprintln!("{}", report.join("\n"));
}

/// `rows` rows for the 80-input MLP, cycling through its 257 reference rows.
fn mlp80_rows(c: &Case, rows: usize) -> [Tensor; 1] {
    let x = &c.inputs[0];
    let data: Vec<f32> = (0..rows)
        .flat_map(|r| x.data[(r % 257) * 80..(r % 257 + 1) * 80].to_vec())
        .collect();
    [Tensor::new("x", vec![rows, 80], data)]
}

/// tract's plan optimised for the batch's fixed shapes and its symbolic-batch plan give the
/// same numbers; so do batches split over threads, and each row run alone.
#[test]
fn tract_fixed_and_symbolic_plans_agree() {
    for name in ["mlp_5_20_20_1", "mlp_80_100_100_1", "pnn"] {
        let c = case(name);
        let e = TractEngine::load(&Model::read(&c.model).unwrap()).unwrap();
        let fixed = e.run_fixed(&c.inputs).unwrap();
        let symbolic = e.run_symbolic(&c.inputs).unwrap();
        for (f, s) in fixed.iter().zip(&symbolic) {
            assert_eq!(f.shape, s.shape);
            let d = testutil::max_diff(&f.data, &s.data);
            eprintln!(
                "{name:20} {:14} fixed vs symbolic max|diff| {d:.2e}",
                f.name
            );
            assert!(d <= 1e-6, "{name} {}: {d}", f.name);
        }
        // Row 3 alone (batch 1) equals row 3 of the batch.
        let row: Vec<Tensor> = c
            .inputs
            .iter()
            .map(|t| {
                let w: usize = t.shape[1..].iter().product();
                let mut shape = t.shape.clone();
                shape[0] = 1;
                Tensor::new(t.name.clone(), shape, t.data[3 * w..4 * w].to_vec())
            })
            .collect();
        for one in [e.run(&row).unwrap(), e.run_symbolic(&row).unwrap()] {
            for (a, b) in one.iter().zip(&fixed) {
                let w: usize = b.shape[1..].iter().product();
                let d = testutil::max_diff(&a.data, &b.data[3 * w..4 * w]);
                assert!(d <= 1e-6, "{name} {} batch 1: {d}", a.name);
            }
        }
    }
    // ParticleNet's `n_pf + n_sv` defeats tract's symbolic optimisation: fixed plans only, and
    // the symbolic path says so instead of guessing.
    let c = case("particlenet");
    let e = TractEngine::load(&Model::read(&c.model).unwrap()).unwrap();
    if let Err(err) = e.run_symbolic(&c.inputs) {
        assert!(err.to_string().contains("symbolic"), "{err}");
    }
    // Split over threads: 9000 rows in 3 parts.
    let c = case("mlp_80_100_100_1");
    let mut e = TractEngine::load(&Model::read(&c.model).unwrap()).unwrap();
    let big = mlp80_rows(&c, 9000);
    e.threads = 1;
    let one = e.run(&big).unwrap();
    e.threads = 3;
    let split = e.run(&big).unwrap();
    assert_eq!(one, split);
}

/// One engine value used from several threads at once gives every thread the single-thread
/// answer (tract plans and tree tables are shared; ort keeps a session per caller).
#[test]
fn engines_are_shared_across_threads() {
    let mut engines: Vec<(Case, Box<dyn Engine>)> = Vec::new();
    for (name, kind) in [
        ("mlp_80_100_100_1", EngineKind::Tract),
        ("mlp_80_100_100_1", EngineKind::Native),
        ("pnn", EngineKind::Native),
        ("gbc", EngineKind::Trees),
        #[cfg(feature = "ort")]
        ("pnn", EngineKind::Ort),
    ] {
        let c = case(name);
        let e = open(&c.model, kind).unwrap();
        engines.push((c, e));
    }
    for (c, e) in &engines {
        let want = e.run(&c.inputs).unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..5 {
                        assert_eq!(e.run(&c.inputs).unwrap(), want, "{}", c.name);
                    }
                });
            }
        });
    }
}

/// Ports (names, element types, shapes with symbolic dimensions) and metadata_props.
#[test]
fn model_info_lists_ports_and_metadata() {
    let mlp = case("mlp_5_20_20_1");
    let e = open(&mlp.model, EngineKind::Auto).unwrap();
    let info = e.info();
    assert_eq!(info.inputs.len(), 1);
    assert_eq!(info.inputs[0].name, "x");
    assert_eq!(info.inputs[0].elem, "float");
    assert_eq!(info.inputs[0].shape, vec![None, Some(5)]);
    let outs: Vec<(&str, &str)> = info
        .outputs
        .iter()
        .map(|p| (p.name.as_str(), p.elem.as_str()))
        .collect();
    assert_eq!(outs, vec![("label", "int64"), ("probabilities", "float")]);
    let features: serde_json::Value =
        serde_json::from_str(&info.metadata["hepml.features"]).unwrap();
    assert_eq!(features["x"][4], "f4");

    let pnn = Model::read(&case("pnn").model).unwrap().into_info();
    assert_eq!(pnn.metadata["hepml.note"], "PNN: features + mass");
    assert_eq!(pnn.inputs[1].shape_string(), "[N, 1]");

    let pn = Model::read(&case("particlenet").model).unwrap().into_info();
    let shapes: Vec<String> = pn.inputs.iter().map(|p| p.shape_string()).collect();
    assert_eq!(shapes[1], "[N, 23, n_pf]");
    assert_eq!(shapes[5], "[N, 1, n_sv]");
    assert_eq!(pn.outputs[0].shape_string(), "[N, 7]");

    let zip = Model::read(&case("gbc_zipmap").model).unwrap().into_info();
    assert_eq!(zip.outputs[1].elem, "non-tensor");
}

fn assert_one_line(err: &EngineError, want: &[&str]) {
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "not one line: {msg}");
    for w in want {
        assert!(msg.contains(w), "'{w}' not in: {msg}");
    }
}

fn with_shape(t: &Tensor, shape: Vec<usize>) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(t.name.clone(), shape, vec![0.5; n])
}

/// Bad input is an error naming the model file and the input, with expected vs got; no panic.
#[test]
fn bad_inputs_are_one_line_errors() {
    let dir = models_dir();
    let mut kinds = vec![EngineKind::Tract, EngineKind::Trees, EngineKind::Native];
    if cfg!(feature = "ort") {
        kinds.push(EngineKind::Ort);
    }
    // Missing and unreadable files.
    let missing = dir.join("no-such-model.onnx");
    let junk = dir.join("junk.onnx");
    std::fs::write(&junk, b"this is not protobuf \xff\xff\xff").unwrap();
    for &k in &kinds {
        let err = open(&missing, k).err().expect("missing file");
        assert_one_line(&err, &["no-such-model.onnx", "cannot read the model"]);
        let err = open(&junk, k).err().expect("junk file");
        assert_one_line(&err, &["junk.onnx", "not an ONNX model"]);
    }
    for (name, kind) in [
        ("pnn", EngineKind::Tract),
        ("pnn", EngineKind::Native),
        ("gbc", EngineKind::Trees),
    ]
    .into_iter()
    .chain(
        kinds
            .contains(&EngineKind::Ort)
            .then_some([("pnn", EngineKind::Ort), ("gbc", EngineKind::Ort)])
            .into_iter()
            .flatten(),
    ) {
        let c = case(name);
        let e = open(&c.model, kind).unwrap();
        let file = c.model.file_name().unwrap().to_str().unwrap().to_string();
        let x = &c.inputs[0];
        let w = x.shape[1];
        let mut tries: Vec<(Vec<Tensor>, Vec<String>)> = vec![
            // Wrong width.
            (
                [vec![with_shape(x, vec![3, w + 1])], c.inputs[1..].to_vec()].concat(),
                vec![
                    format!("input '{}'", x.name),
                    format!("shape [3, {}]", w + 1),
                    format!("expects [{}, {w}]", if name == "pnn" { "N" } else { "?" }),
                ],
            ),
            // Wrong rank.
            (
                [vec![with_shape(x, vec![3 * w])], c.inputs[1..].to_vec()].concat(),
                vec![format!("shape [{}]", 3 * w)],
            ),
            // Unknown name.
            (
                [
                    c.inputs.clone(),
                    vec![Tensor::new("jets", vec![1, 1], vec![0.0])],
                ]
                .concat(),
                vec!["input 'jets'".into(), "no such input".into()],
            ),
            // Data length that does not fit the shape.
            (
                [
                    vec![Tensor::new(
                        x.name.clone(),
                        vec![2, w],
                        vec![0.0; 2 * w - 1],
                    )],
                    c.inputs[1..].to_vec(),
                ]
                .concat(),
                vec![format!("{} values for shape [2, {w}]", 2 * w - 1)],
            ),
            // Nothing at all.
            (
                vec![],
                vec![format!("input '{}'", x.name), "missing".into()],
            ),
        ];
        if name == "pnn" {
            // One input of two, and inputs disagreeing on the batch.
            tries.push((
                vec![x.clone()],
                vec!["input 'mass'".into(), "missing (1 inputs given".into()],
            ));
            tries.push((
                vec![x.clone(), with_shape(&c.inputs[1], vec![x.shape[0] + 1, 1])],
                vec![format!(
                    "dimension N is {} here but {} in input 'features'",
                    x.shape[0] + 1,
                    x.shape[0]
                )],
            ));
        }
        for (inputs, want) in tries {
            let err = e
                .run(&inputs)
                .err()
                .unwrap_or_else(|| panic!("{name} on {kind:?}: {want:?} accepted"));
            let mut w: Vec<&str> = want.iter().map(String::as_str).collect();
            w.push(&file);
            assert_one_line(&err, &w);
        }
    }
    // ParticleNet's inputs must agree on n_pf.
    let c = case("particlenet");
    let e = open(&c.model, EngineKind::Tract).unwrap();
    let mut inputs = c.inputs.clone();
    let k = inputs.iter().position(|t| t.name == "pf_mask").unwrap();
    inputs[k] = with_shape(&inputs[k], vec![inputs[k].shape[0], 1, 49]);
    let err = e.run(&inputs).expect_err("n_pf mismatch");
    assert_one_line(
        &err,
        &[
            "particle-net.onnx",
            "input 'pf_mask'",
            "dimension n_pf is 49 here but 50",
        ],
    );
}

/// Tree graphs the native evaluator cannot run exactly are refused, naming the attribute or
/// node (onnxruntime runs them, so they are valid models).
#[test]
fn unsupported_trees_are_refused_by_name() {
    let dir = models_dir();
    let refused = |f: &str, kind| {
        open_with(&dir.join(f), kind, OrtLibrary::Off)
            .err()
            .expect("refused")
    };
    for kind in [EngineKind::Auto, EngineKind::Trees] {
        let err = refused("bad_aggregate_min.onnx", kind);
        assert_one_line(&err, &["bad_aggregate_min.onnx", "aggregate_function MIN"]);
        let err = refused("bad_mul_after.onnx", kind);
        assert_one_line(
            &err,
            &["bad_mul_after.onnx", "node 'square' (Mul)", "--engine ort"],
        );
    }
    // ONNX Runtime runs them; "auto" takes it when found, saying why.
    #[cfg(feature = "ort")]
    for (f, why) in [
        ("bad_aggregate_min.onnx", "aggregate_function MIN"),
        ("bad_mul_after.onnx", "node 'square' (Mul)"),
    ] {
        let x = Tensor::new("x", vec![2, 4], vec![0.5; 8]);
        let e = open(&dir.join(f), EngineKind::Ort).unwrap();
        let want = e.run(std::slice::from_ref(&x)).unwrap();
        assert_eq!(want[0].shape, vec![2, 1]);
        let (auto, choice) = open_with(&dir.join(f), EngineKind::Auto, OrtLibrary::Search).unwrap();
        assert_eq!(choice.kind, EngineKind::Ort, "{f}");
        assert!(
            choice.reason.contains("native tree evaluator refuses") && choice.reason.contains(why),
            "{f}: {choice}"
        );
        assert_eq!(auto.run(&[x]).unwrap(), want);
    }
    // A neural network forced onto the tree evaluator.
    let err = open(&case("pnn").model, EngineKind::Trees)
        .err()
        .expect("not trees");
    assert_one_line(&err, &["pnn.onnx", "0 tree-ensemble nodes"]);
}

/// `device cuda` never falls back to the CPU, and never passes with just any error. tract and
/// the native evaluators refuse it outright; "auto" takes ONNX Runtime. On ONNX Runtime: with an onnxruntime built without the CUDA
/// execution provider, hepml's own error says so; with one built with it but no NVIDIA GPU,
/// hepml's registration error; with both, the CUDA scores equal the CPU scores within 1e-5.
#[test]
fn cuda_is_used_or_refused_with_a_clear_error() {
    let c = case("mlp_5_20_20_1");
    let model = Model::read(&c.model).unwrap();
    let on = |kind: EngineKind, device: Device| {
        let opts = EngineOptions {
            kind,
            device,
            ort_sessions: 1,
            ..Default::default()
        };
        engine::open(&model, &opts).map(Opened::into_engine)
    };
    for kind in [EngineKind::Tract, EngineKind::Trees, EngineKind::Native] {
        let err = on(kind, Device::Cuda).err().expect("cuda refused");
        assert_one_line(&err, &["device cuda needs the ort engine"]);
    }
    // "auto" on cuda is ONNX Runtime (the one engine with a GPU): the same outcome.
    let auto = on(EngineKind::Auto, Device::Cuda).map(|e| e.describe());
    let r = on(EngineKind::Ort, Device::Cuda);
    assert_eq!(
        auto.map_err(|e| e.to_string()),
        r.as_ref().map(|e| e.describe()).map_err(|e| e.to_string())
    );
    #[cfg(feature = "ort")]
    {
        use engine::ort::{find_library, CUDA_FAILED, CUDA_MISSING};
        let lib = find_library(None).expect("libonnxruntime (the venv's onnxruntime)");
        let built_with_cuda = testutil::ort_has_cuda(&lib);
        let gpu = testutil::nvidia_gpu();
        eprintln!(
            "{}: CUDA provider {built_with_cuda}; NVIDIA GPU {gpu}",
            lib.display()
        );
        match r {
            Ok(cuda) => {
                assert!(
                    built_with_cuda && gpu,
                    "CUDA accepted without a GPU or a CUDA onnxruntime: {}",
                    cuda.describe()
                );
                assert!(cuda.describe().contains("cuda"), "{}", cuda.describe());
                let cpu = on(EngineKind::Ort, Device::Cpu).unwrap();
                let (a, b) = (cuda.run(&c.inputs).unwrap(), cpu.run(&c.inputs).unwrap());
                for (x, y) in a.iter().zip(&b) {
                    let d = testutil::max_diff(&x.data, &y.data);
                    eprintln!("{}: cuda vs cpu max|diff| {d:.2e}", x.name);
                    assert!(d <= 1e-5, "{}: cuda vs cpu {d}", x.name);
                }
            }
            Err(err) if !built_with_cuda => assert_one_line(&err, &[CUDA_MISSING]),
            // The tail is ONNX Runtime's (CUDA's) own text, which may span lines.
            Err(err) if !gpu => assert!(err.to_string().contains(CUDA_FAILED), "{err}"),
            Err(err) => panic!("a GPU and a CUDA onnxruntime, yet: {err}"),
        }
    }
    #[cfg(not(feature = "ort"))]
    {
        let err = r.err().expect("ort needs the feature");
        assert_one_line(&err, &["without the ONNX Runtime backend"]);
    }
}

/// The native dense evaluator and tract agree on every dense case (and on the same rows run one
/// at a time, and on hepml's own Gemm models); graphs with anything else are not routed to it.
#[test]
fn native_dense_agrees_with_tract_and_refuses_other_graphs() {
    use engine::native::{self, NativeEngine};
    for c in cases().into_iter().filter(|c| c.route == "native") {
        let n = NativeEngine::load(&Model::read(&c.model).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let t = TractEngine::load(&Model::read(&c.model).unwrap()).unwrap();
        let (a, b) = (n.run(&c.inputs).unwrap(), t.run(&c.inputs).unwrap());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.shape, y.shape, "{} {}", c.name, x.name);
            let d = testutil::max_diff(&x.data, &y.data);
            eprintln!(
                "{:20} {:14} native vs tract max|diff| {d:.2e}",
                c.name, x.name
            );
            assert!(d <= TOL, "{} {}: {d}", c.name, x.name);
        }
        // Batch 1, through the allocation-free path, equals the batch's rows.
        let widths: Vec<usize> = n.input_widths().collect();
        let last = n.output_names().count() - 1;
        let ow = n.output_width(last);
        let rows = c.inputs[0].shape[0];
        for r in [0, 5, rows - 1] {
            let xs: Vec<&[f32]> = c
                .inputs
                .iter()
                .zip(&widths)
                .map(|(t, w)| &t.data[r * w..(r + 1) * w])
                .collect();
            let mut out = vec![0f32; ow];
            n.run_into(&xs, 1, last, &mut out).unwrap();
            assert_eq!(
                out,
                a[last].data[r * ow..(r + 1) * ow],
                "{} row {r}",
                c.name
            );
        }
    }
    // A large batch split over threads gives the one-thread values.
    let c = case("mlp_80_100_100_1");
    let mut e = NativeEngine::load(&Model::read(&c.model).unwrap()).unwrap();
    let big = mlp80_rows(&c, 9001);
    e.threads = 1;
    let one = e.run(&big).unwrap();
    e.threads = 3;
    assert_eq!(one, e.run(&big).unwrap());
    assert_eq!(one[1].data[256 * 2..257 * 2], one[1].data[513 * 2..514 * 2]);
    // An empty batch gives empty outputs.
    let none = e.run(&[Tensor::new("x", vec![0, 80], vec![])]).unwrap();
    assert_eq!(none[1].shape, vec![0, 2]);
    // hepml's own dense models (onnx_build), with a hidden activation of each kind.
    let dir = models_dir();
    for act in ["Relu", "Tanh", "Sigmoid"] {
        let layers = [(4usize, 9usize), (9, 70), (70, 2)]
            .iter()
            .enumerate()
            .map(|(l, &(i, o))| {
                let w = (0..i * o)
                    .map(|k| ((k * 37 + l * 11) % 23) as f32 / 23.0 - 0.5)
                    .collect();
                let b = (0..o).map(|k| (k % 5) as f32 * 0.1 - 0.2).collect();
                (i, o, w, b)
            })
            .collect();
        let d = engine::onnx_build::Dense {
            input: "x".into(),
            output: "y".into(),
            layers,
            hidden: act.into(),
            final_act: "Sigmoid".into(),
            metadata: vec![],
            // Standardisation inside the graph, as `hepml export` writes it.
            standardise: Some((vec![0.1, -0.2, 0.3, 0.0], vec![1.5, 0.5, 2.0, 1.0])),
        };
        let p = dir.join(format!("dense_{act}.onnx"));
        std::fs::write(&p, d.to_bytes()).unwrap();
        let e = open(&p, EngineKind::Auto).unwrap();
        assert!(
            e.describe().starts_with("native dense (dense 4-9-70-2"),
            "{}",
            e.describe()
        );
        let x = Tensor::new(
            "x",
            vec![21, 4],
            (0..84).map(|k| (k as f32 * 0.37).sin() * 3.0).collect(),
        );
        let a = e.run(std::slice::from_ref(&x)).unwrap();
        let b = TractEngine::load(&Model::read(&p).unwrap())
            .unwrap()
            .run(&[x])
            .unwrap();
        let d = testutil::max_diff(&a[0].data, &b[0].data);
        assert!(d <= TOL, "{act}: {d}");
    }
    // Not dense networks: tree ensembles, ParticleNet and DeepDoubleX (the EdgeConv and the 1-D
    // CNN/RNN evaluators take them).
    for (name, other) in [
        ("gbc", None),
        ("particlenet", Some("native (EdgeConv")),
        ("bvl", Some("native (1-D CNN/RNN")),
    ] {
        let c = case(name);
        let why = native::recognise(&Model::read(&c.model).unwrap()).expect_err(name);
        eprintln!("{name:12} not dense: {why}");
        if let Some(other) = other {
            let e = open(&c.model, EngineKind::Native).unwrap();
            assert!(e.describe().starts_with(other), "{}", e.describe());
            continue;
        }
        let err = open(&c.model, EngineKind::Native).err().expect("refused");
        assert_one_line(
            &err,
            &[
                "not a dense network for the native evaluator",
                "not a network for the native EdgeConv evaluator",
                "not a network for the native 1-D CNN/RNN evaluator",
            ],
        );
    }
}

/// A tree ensemble's large batch split over threads gives the single-thread values bit for
/// bit, with a row count that does not divide evenly.
#[test]
fn native_trees_threaded_batches_equal_one_thread() {
    use engine::trees::TreeEngine;
    let mut checked = 0;
    for c in cases().into_iter().filter(|c| c.route == "trees") {
        let mut e = TreeEngine::load(&Model::read(&c.model).unwrap()).unwrap();
        let x = &c.inputs[0];
        let reps = 9001 / x.shape[0] + 1;
        let big = vec![Tensor::new(
            x.name.clone(),
            vec![x.shape[0] * reps, x.shape[1]],
            x.data.repeat(reps),
        )];
        e.threads = 1;
        let one = e.run(&big).unwrap();
        e.threads = 3;
        assert_eq!(one, e.run(&big).unwrap(), "{}", c.name);
        checked += 1;
    }
    assert!(checked > 0, "no tree cases");
}

/// The trees' allocation-free path gives `run`'s values for every output, batched and row by
/// row.
#[test]
fn native_trees_run_into_equals_run() {
    use engine::trees::TreeEngine;
    for c in cases().into_iter().filter(|c| c.route == "trees") {
        let e = TreeEngine::load(&Model::read(&c.model).unwrap()).unwrap();
        let want = e.run(&c.inputs).unwrap();
        let x = &c.inputs[0];
        let (rows, cols) = (x.shape[0], x.shape[1]);
        for (i, t) in want.iter().enumerate() {
            let w = e.output_width(i).unwrap();
            let mut out = vec![0f32; rows * w];
            e.run_into(&x.data, rows, i, &mut out).unwrap();
            assert_eq!(
                testutil::max_diff(&out, &t.data),
                0.0,
                "{} {}",
                c.name,
                t.name
            );
            let mut one = vec![0f32; w];
            e.run_into(&x.data[7 * cols..8 * cols], 1, i, &mut one)
                .unwrap();
            assert_eq!(
                testutil::max_diff(&one, &t.data[7 * w..8 * w]),
                0.0,
                "{}",
                c.name
            );
        }
        let err = e.run_into(&x.data[..cols - 1], 1, 0, &mut [0.0; 4]);
        assert!(err.is_err(), "{}: short row accepted", c.name);
    }
}

/// A large batch split over threads gives the single-threaded values bit for bit, with row
/// counts that do not divide evenly.
#[test]
fn native_dense_threaded_batches_equal_one_thread() {
    use engine::native::NativeEngine;
    for c in cases().into_iter().filter(|c| c.route == "native") {
        let mut one = NativeEngine::load(&Model::read(&c.model).unwrap()).unwrap();
        one.threads = 1;
        let mut many = NativeEngine::load(&Model::read(&c.model).unwrap()).unwrap();
        many.threads = 3;
        let rows = c.inputs[0].shape[0];
        let reps = 7001 / rows + 1;
        let big: Vec<Tensor> = c
            .inputs
            .iter()
            .map(|t| {
                let mut shape = t.shape.clone();
                shape[0] = rows * reps;
                Tensor::new(t.name.clone(), shape, t.data.repeat(reps))
            })
            .collect();
        let (a, b) = (one.run(&big).unwrap(), many.run(&big).unwrap());
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.shape, y.shape, "{}", c.name);
            assert!(
                x.data
                    .iter()
                    .zip(&y.data)
                    .all(|(p, q)| p.to_bits() == q.to_bits()),
                "{} {}: threaded batch differs",
                c.name,
                x.name
            );
        }
    }
}
