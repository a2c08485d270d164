//! `hepml inject` end to end on real files and real models (sklearn via skl2onnx, a two-input
//! PNN, the CMS ParticleNet): scores equal onnxruntime's on inputs built independently in
//! Python (scripts/check_inject.py, |diff| <= 1e-5); decorated outputs keep every original
//! basket byte for byte and read in ROOT 6.40; bad input fails with one line and no output.
//!
//! Over 800 lines: every test runs through the one fixture (`Fixture`: generated ntuples and
//! models) and argv builder at the top; the engine-choice and thread tests are the candidates
//! for a file of their own once the fixture moves to `tests/common`.

use std::path::Path;
use std::process::Command;

mod common;
use common::{python, repo, script, shared};

/// `hepml inject INPUT... --model M... [--features SPEC...] -o OUT --quiet EXTRA...`: the one
/// place the tests write an inject command line.
fn inject(
    inputs: &[&str],
    models: &[&str],
    features: &[&str],
    out: &str,
    extra: &[&str],
) -> Vec<String> {
    let mut a: Vec<String> = vec!["inject".into()];
    a.extend(inputs.iter().map(|s| s.to_string()));
    for m in models {
        a.extend(["--model".into(), m.to_string()]);
    }
    for f in features {
        a.extend(["--features".into(), f.to_string()]);
    }
    a.extend(["-o".into(), out.into(), "--quiet".into()]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn hepml<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_hepml"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
fn ok<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) {
    let (good, err) = hepml(args);
    assert!(good, "hepml {args:?}: {err}");
}
fn max_diff(out: &str) -> f64 {
    let v: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    v["max_abs_diff"].as_f64().unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
}
impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        script("make_test_models.py", &[dir.path().to_str().unwrap()]);
        let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        w("mlp.yaml", "inputs:\n  x: [E1, px1, py1, pz1, pt1]\noutputs:\n  probabilities: {branch: score, column: 1}\n");
        w(
            "mlp.json",
            r#"{"inputs": {"x": ["E1","px1","py1","pz1","pt1"]}, "outputs": [["probabilities", 1, "score"]]}"#,
        );
        w("pnn.yaml", "inputs:\n  features: [E1, px1, py1, pz1, pt1]\n  mass: [\"90\"]\noutputs:\n  score: pnn_m90\n");
        w(
            "pnn.json",
            r#"{"inputs": {"features": ["E1","px1","py1","pz1","pt1"], "mass": ["90"]}, "outputs": [["score", 0, "pnn_m90"]]}"#,
        );
        Fixture { dir }
    }
    fn p(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

#[test]
fn decorated_mlp_and_pnn_match_onnxruntime_and_keep_originals() {
    let f = Fixture::new();
    let zmumu = shared("root/uproot-Zmumu-zstd.root");
    let (mlp_out, pnn_out) = (f.p("mlp_out.root"), f.p("pnn_out.root"));
    ok(&inject(
        &[&zmumu],
        &[&f.p("mlp.onnx")],
        &[&f.p("mlp.yaml")],
        &mlp_out,
        &[],
    ));
    assert!(
        max_diff(&script(
            "check_inject.py",
            &[
                "event",
                &f.p("mlp.onnx"),
                &zmumu,
                "events",
                &mlp_out,
                "events",
                &f.p("mlp.json")
            ]
        )) <= 1e-5
    );
    ok(&inject(
        &[&zmumu],
        &[&f.p("pnn.onnx")],
        &[&f.p("pnn.yaml")],
        &pnn_out,
        &["--chunk", "500"],
    ));
    assert!(
        max_diff(&script(
            "check_inject.py",
            &[
                "event",
                &f.p("pnn.onnx"),
                &zmumu,
                "events",
                &pnn_out,
                "events",
                &f.p("pnn.json")
            ]
        )) <= 1e-5
    );
    // Originals byte for byte, and ROOT reads the decorated file (new branch + an original).
    script(
        "root_check.py",
        &["same-baskets", &zmumu, &mlp_out, "events"],
    );
    let dump = Command::new(env!("CARGO_BIN_EXE_hepml"))
        .args(["inspect", &mlp_out, "--dump", "score", "M"])
        .output()
        .unwrap();
    assert!(dump.status.success());
    std::fs::write(f.p("expect.json"), &dump.stdout).unwrap();
    script(
        "root_check.py",
        &["compare", &mlp_out, "events", &f.p("expect.json")],
    );
    // Provenance is in the file.
    let listing = Command::new(env!("CARGO_BIN_EXE_hepml"))
        .args(["inspect", &mlp_out, "--json"])
        .output()
        .unwrap();
    assert!(listing.status.success());
}

/// Injects `model` with its preprocess.json spec (25 objects) into a friend tree of the
/// fixture's pfcands.root and returns max |hepml - onnxruntime| (scripts/check_inject.py).
fn preprocessed_max_diff(f: &Fixture, model: &str, pre: &str, out: &str, chunk: &str) -> f64 {
    ok(&inject(
        &[&f.p("pfcands.root")],
        &[model],
        &[pre],
        out,
        &["--length", "25", "--friend", "--chunk", chunk],
    ));
    max_diff(&script(
        "check_inject.py",
        &[
            "particlenet",
            model,
            pre,
            "25",
            &f.p("pfcands.root"),
            "jets",
            out,
            "jets",
            "pnet_",
        ],
    ))
}

#[test]
fn particlenet_from_jagged_branches_matches_onnxruntime() {
    let f = Fixture::new();
    let model = shared("onnx/cms-particlenet-ak4-hlt/particle-net.onnx");
    let pre = shared("onnx/cms-particlenet-ak4-hlt/preprocess.json");
    let out = f.p("pnet.root");
    let d = preprocessed_max_diff(&f, &model, &pre, &out, "128");
    assert!(d <= 1e-5, "{d}");
    // The friend tree works with TTree::AddFriend.
    script(
        "root_check.py",
        &[
            "friend",
            &f.p("pfcands.root"),
            "jets",
            &out,
            "jets",
            "pnet_label_b",
        ],
    );
}

/// A ParticleNet-style GNN exported by torch.onnx (EdgeConv with kNN from TopK on pairwise
/// distances, GatherElements, masks, batch norm; scripts/make_gnn_model.py, committed under
/// tests/data/gnn-topk) fed from jagged branches equals onnxruntime.
#[test]
fn torch_gnn_with_topk_matches_onnxruntime() {
    let f = Fixture::new();
    let dir = repo().join("tests/data/gnn-topk");
    let model = dir.join("gnn-topk.onnx").display().to_string();
    let pre = dir.join("preprocess.json").display().to_string();
    let out = f.p("gnn.root");
    let d = preprocessed_max_diff(&f, &model, &pre, &out, "100");
    assert!(d <= 1e-5, "{d}");
}

/// A 1-D CNN taking MXNet's `[N, C, L, 1]` inputs (DeepBoostedJet's layout;
/// scripts/make_test_models.py) fed from jagged branches through a preprocess.json that builds
/// `[N, C, L]`: the same values in the model's shape, scored as onnxruntime scores them, on
/// the native 1-D CNN/RNN evaluator.
#[test]
fn cnn_with_trailing_unit_dim_from_jagged_branches_matches_onnxruntime() {
    let f = Fixture::new();
    let pre = repo().join("tests/data/gnn-topk/preprocess.json");
    let out = f.p("cnn4d.root");
    let d = preprocessed_max_diff(
        &f,
        &f.p("cnn4d.onnx"),
        &pre.display().to_string(),
        &out,
        "100",
    );
    assert!(d <= 1e-5, "{d}");
    let engines = provenance_engines(&out);
    assert!(
        engines.to_string().contains("1-D convolutional"),
        "{engines}"
    );
}

/// preprocess.json class names are data, not YAML: a name with a YAML comment marker and
/// quotes still becomes its own branch (`pnet_sig #1`), scored as onnxruntime scores it.
#[test]
fn preprocess_json_output_names_are_taken_verbatim() {
    let f = Fixture::new();
    let dir = repo().join("tests/data/gnn-topk");
    let model = dir.join("gnn-topk.onnx").display().to_string();
    let text = std::fs::read_to_string(dir.join("preprocess.json")).unwrap();
    let mut pre: serde_json::Value = serde_json::from_str(&text).unwrap();
    pre["output_names"] = serde_json::json!(["sig #1", "bkg 'b': \"x\""]);
    let path = f.p("preprocess.json");
    std::fs::write(&path, pre.to_string()).unwrap();
    let d = preprocessed_max_diff(&f, &model, &path, &f.p("names.root"), "100");
    assert!(d <= 1e-5, "{d}");
}

/// A classifier exported with its batch fixed at 1 (skl2onnx with an input type of [1, 5], as
/// torch.onnx.export without dynamic_axes writes models) scores every event on each engine as
/// onnxruntime scores them one by one: whole chunks on the native evaluator, one event per call
/// on tract and onnxruntime; the provenance record says so.
#[test]
fn a_model_with_its_batch_fixed_at_one_scores_every_event() {
    let f = Fixture::new();
    let zmumu = shared("root/uproot-Zmumu.root");
    for engine in ["auto", "tract", "ort"] {
        let out = f.p(&format!("b1_{engine}.root"));
        ok(&inject(
            &[&zmumu],
            &[&f.p("mlp_b1.onnx")],
            &[&f.p("mlp.yaml")],
            &out,
            &["--engine", engine],
        ));
        let d = max_diff(&script(
            "check_inject.py",
            &[
                "event",
                &f.p("mlp_b1.onnx"),
                &zmumu,
                "events",
                &out,
                "events",
                &f.p("mlp.json"),
            ],
        ));
        assert!(d <= 1e-5, "{engine}: {d}");
        let engines = provenance_engines(&out).to_string();
        assert!(engines.contains("fixes the batch at 1"), "{engines}");
        assert_eq!(engines.contains("native"), engine == "auto", "{engines}");
    }
}

#[test]
fn kfold_members_score_only_their_events() {
    let f = Fixture::new();
    let zmumu = shared("root/uproot-Zmumu.root");
    let (a, b, both) = (f.p("a.root"), f.p("b.root"), f.p("folds.root"));
    ok(&inject(
        &[&zmumu],
        &[&f.p("mlp.onnx")],
        &[&f.p("mlp.yaml")],
        &a,
        &[],
    ));
    ok(&inject(
        &[&zmumu],
        &[&f.p("mlp_b.onnx")],
        &[&f.p("mlp.yaml")],
        &b,
        &[],
    ));
    ok(&inject(
        &[&zmumu],
        &[&f.p("mlp.onnx"), &f.p("mlp_b.onnx")],
        &[&f.p("mlp.yaml")],
        &both,
        &["--fold-branch", "Event", "--chunk", "333"],
    ));
    let read = |p: &str| -> (Vec<f64>, Vec<f64>) {
        let o = Command::new(env!("CARGO_BIN_EXE_hepml"))
            .args(["inspect", p, "--dump", "score", "Event"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let f = |k: &str| {
            v["branches"][k]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        (f("score"), f("Event"))
    };
    let ((sa, ev), (sb, _), (sf, _)) = (read(&a), read(&b), read(&both));
    let mut seen = [0, 0];
    for i in 0..ev.len() {
        let fold = (ev[i] as i64).rem_euclid(2) as usize;
        seen[fold] += 1;
        assert_eq!(sf[i], if fold == 0 { sa[i] } else { sb[i] }, "event {i}");
    }
    assert!(seen[0] > 100 && seen[1] > 100, "{seen:?}");
}

#[test]
fn bad_input_fails_with_one_line_and_leaves_no_output() {
    let f = Fixture::new();
    let zmumu = shared("root/uproot-Zmumu.root");
    let out = f.p("out.root");
    let w = |name: &str, text: &str| {
        std::fs::write(f.p(name), text).unwrap();
        f.p(name)
    };
    let missing = w("missing.yaml", "inputs:\n  x: [E1, px1, py1, pz1, nope]\noutputs:\n  probabilities: {branch: s, column: 1}\n");
    let count = w(
        "count.yaml",
        "inputs:\n  x: [E1, px1, py1, pz1]\noutputs:\n  probabilities: {branch: s, column: 1}\n",
    );
    let typo = w(
        "typo.yaml",
        "inputs:\n  x: [E1, px1, py1, pz1, pt1]\noutput:\n  probabilities: s\n",
    );
    let nan = w("nan.yaml", "inputs:\n  x: [E1, px1, py1, pz1, \"log(pt1 - 1000)\"]\noutputs:\n  probabilities: {branch: s, column: 1}\n");
    let junk = w("junk.onnx", "not a model");
    let mut corrupt = std::fs::read(&zmumu).unwrap();
    let n = corrupt.len();
    corrupt.truncate(n / 2);
    let corrupt_path = f.p("corrupt.root");
    std::fs::write(&corrupt_path, corrupt).unwrap();
    let mlp = f.p("mlp.onnx");
    let yaml = f.p("mlp.yaml");
    // (input, model, feature spec, extra flags, what the error must name)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, &'a [&'a str], &'a str);
    let cases: Vec<Case> = vec![
        (&zmumu, &mlp, Some(&missing), &[], "nope"),
        (&zmumu, &mlp, Some(&count), &[], "takes 5 features"),
        (&zmumu, &mlp, Some(&typo), &[], "unknown field `output`"),
        (&zmumu, &mlp, Some(&nan), &[], "NaN"),
        (&zmumu, &junk, Some(&yaml), &[], "junk.onnx"),
        (&corrupt_path, &mlp, Some(&yaml), &[], "corrupt.root"),
        (&zmumu, &mlp, Some(&yaml), &["--device", "cuda"], "cuda"),
        (&zmumu, &mlp, None, &[], "hepml.inputs"),
    ];
    for (input, model, spec, extra, want) in cases {
        let args = inject(&[input], &[model], spec.as_slice(), &out, extra);
        let (good, err) = hepml(&args);
        assert!(!good, "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: expected '{want}' in: {err}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: not one line: {err}"
        );
        assert!(!Path::new(&out).exists(), "{args:?}: output left behind");
        let leftovers: Vec<_> = std::fs::read_dir(f.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("hepml-tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{args:?}: temporary file left");
    }
    // The input is never overwritten.
    let (good, err) = hepml(&inject(&[&zmumu], &[&mlp], &[&yaml], &zmumu, &[]));
    assert!(!good && err.contains("overwrite"), "{err}");
}

/// A per-jet model writes a jagged branch with the jets' own counter; several inputs go to
/// one output each in a folder; the provenance record names the model.
#[test]
fn per_object_scores_several_inputs_and_provenance() {
    let f = Fixture::new();
    std::fs::write(
        f.p("jet.yaml"),
        "inputs:\n  jet: {rows: [Jet_Px, Jet_Py, Jet_E]}\noutputs:\n  jet_score: Jet_score\n",
    )
    .unwrap();
    let outdir = f.p("outs");
    let inputs = [
        shared("root/uproot-HZZ.root"),
        shared("root/uproot-HZZ-lz4.root"),
    ];
    ok(&inject(
        &[&inputs[0], &inputs[1]],
        &[&f.p("jet.onnx")],
        &[&f.p("jet.yaml")],
        &outdir,
        &["--chunk", "700"],
    ));
    for inp in &inputs {
        let out = format!(
            "{outdir}/{}",
            Path::new(inp).file_name().unwrap().to_string_lossy()
        );
        let code = r#"
import sys, json, numpy as np, uproot, awkward as ak, onnxruntime as ort
inp, out, model = sys.argv[1:4]
t = uproot.open(inp)["events"]; o = uproot.open(out)
j = t.arrays(["Jet_Px", "Jet_Py", "Jet_E"])
x = np.stack([ak.to_numpy(ak.flatten(j[k])) for k in ["Jet_Px", "Jet_Py", "Jet_E"]], axis=1).astype(np.float32)
want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"jet": x})[0][:, 0]
got = o["events"]["Jet_score"].array()
assert ak.all(ak.num(got) == ak.num(j["Jet_Px"])), "per-jet counts differ"
assert o["events"]["Jet_score"].member("fLeaves")[0].member("fLeafCount").member("fName") == "NJet"
d = float(np.max(np.abs(ak.to_numpy(ak.flatten(got)) - want)))
prov = json.loads(o["hepml_provenance"].member("fTitle"))
assert "jet.onnx" in json.dumps(prov["models"]) and prov["branches"] == ["Jet_score"], prov
print(d)
"#;
        let o = Command::new(python())
            .args(["-c", code, inp, &out, &f.p("jet.onnx")])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let d: f64 = String::from_utf8_lossy(&o.stdout)
            .trim()
            .lines()
            .last()
            .unwrap()
            .parse()
            .unwrap();
        assert!(d <= 1e-5, "{d}");
        script("root_check.py", &["same-baskets", inp, &out, "events"]);
    }
}

/// The engine's paths agree: fixed-shape plan, symbolic plan, and a batch split over threads.
#[test]
fn tract_fixed_symbolic_and_threaded_paths_agree() {
    use engine::tract::TractEngine;
    use engine::{Engine, Model, Tensor};
    let f = Fixture::new();
    let mut e = TractEngine::load(&Model::read(Path::new(&f.p("mlp.onnx"))).unwrap()).unwrap();
    let rows = 9001;
    let data: Vec<f32> = (0..rows * 5)
        .map(|i| ((i * 7919) % 1000) as f32 / 10.0)
        .collect();
    let x = [Tensor {
        name: "x".into(),
        shape: vec![rows, 5],
        data,
    }];
    e.threads = 1;
    let one = e.run(&x).unwrap();
    e.threads = 3;
    let split = e.run(&x).unwrap();
    let sym = e.run_symbolic(&x).unwrap();
    for (a, b) in [(&one, &split), (&one, &sym)] {
        let (pa, pb) = (
            a.iter().find(|t| t.name == "probabilities").unwrap(),
            b.iter().find(|t| t.name == "probabilities").unwrap(),
        );
        assert_eq!(pa.shape, pb.shape);
        let d = pa
            .data
            .iter()
            .zip(&pb.data)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        assert!(d <= 1e-6, "{d}");
    }
}

/// sklearn BDTs exported by skl2onnx and xgboost BDTs exported by onnxmltools
/// (TreeEnsembleClassifier/Regressor, which tract rejects)
/// are routed to hepml's native tree evaluator, said in the log, and equal onnxruntime.
#[test]
fn bdts_run_on_native_trees_and_match_onnxruntime() {
    let f = Fixture::new();
    let zmumu = shared("root/uproot-Zmumu.root");
    let x = r#""x": ["E1","px1","py1","pz1","pt1"]"#;
    for (name, yaml, json) in [
        (
            "bdt",
            "probabilities: {branches: [bdt_p0, bdt_p1]}\n  label: bdt_label",
            r#"[["probabilities", 0, "bdt_p0"], ["probabilities", 1, "bdt_p1"], ["label", 0, "bdt_label"]]"#,
        ),
        (
            "rf3",
            "probabilities: {branches: [rf_p0, rf_p1, rf_p2]}",
            r#"[["probabilities", 0, "rf_p0"], ["probabilities", 1, "rf_p1"], ["probabilities", 2, "rf_p2"]]"#,
        ),
        ("gbr", "variable: gbr_m", r#"[["variable", 0, "gbr_m"]]"#),
        (
            "xgb",
            "probabilities: {branches: [xgb_p0, xgb_p1]}",
            r#"[["probabilities", 0, "xgb_p0"], ["probabilities", 1, "xgb_p1"]]"#,
        ),
        ("xgbr", "variable: xgb_m", r#"[["variable", 0, "xgb_m"]]"#),
    ] {
        std::fs::write(
            f.p(&format!("{name}.yaml")),
            format!("inputs:\n  x: [E1, px1, py1, pz1, pt1]\noutputs:\n  {yaml}\n"),
        )
        .unwrap();
        std::fs::write(
            f.p(&format!("{name}.json")),
            format!(r#"{{"inputs": {{{x}}}, "outputs": {json}}}"#),
        )
        .unwrap();
        let out = f.p(&format!("z_{name}.root"));
        let o = Command::new(env!("CARGO_BIN_EXE_hepml"))
            .args(inject(
                &[&zmumu],
                &[&f.p(&format!("{name}.onnx"))],
                &[&f.p(&format!("{name}.yaml"))],
                &out,
                &["--chunk", "1000"],
            ))
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{name}: {log}");
        assert!(
            log.contains("native trees"),
            "{name}: engine not said in the log: {log}"
        );
        let d = max_diff(&script(
            "check_inject.py",
            &[
                "event",
                &f.p(&format!("{name}.onnx")),
                &zmumu,
                "events",
                &out,
                "events",
                &f.p(&format!("{name}.json")),
            ],
        ));
        assert!(d <= 1e-5, "{name}: {d}");
    }
}

/// --engine ort (ONNX Runtime loaded from the venv's pip wheel) gives onnxruntime's scores,
/// for a DNN and a BDT; --device cuda without a GPU or a CUDA onnxruntime is hepml's error
/// saying which, never a silent CPU run (with both, it runs).
#[test]
fn ort_backend_matches_and_cuda_is_used_or_refused() {
    let f = Fixture::new();
    let zmumu = shared("root/uproot-Zmumu.root");
    std::fs::write(f.p("bdt.yaml"), "inputs:\n  x: [E1, px1, py1, pz1, pt1]\noutputs:\n  probabilities: {branches: [bdt_p0, bdt_p1]}\n").unwrap();
    std::fs::write(f.p("bdt.json"), r#"{"inputs": {"x": ["E1","px1","py1","pz1","pt1"]}, "outputs": [["probabilities", 1, "bdt_p1"]]}"#).unwrap();
    for (model, spec, json) in [
        ("mlp.onnx", "mlp.yaml", "mlp.json"),
        ("bdt.onnx", "bdt.yaml", "bdt.json"),
    ] {
        let out = f.p(&format!("ort_{model}.root"));
        let o = Command::new(env!("CARGO_BIN_EXE_hepml"))
            .args(inject(
                &[&zmumu],
                &[&f.p(model)],
                &[&f.p(spec)],
                &out,
                &["--engine", "ort"],
            ))
            .current_dir(repo())
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{model}: {log}");
        assert!(log.contains("onnxruntime (cpu"), "{log}");
        assert!(
            max_diff(&script(
                "check_inject.py",
                &[
                    "event",
                    &f.p(model),
                    &zmumu,
                    "events",
                    &out,
                    "events",
                    &f.p(json)
                ]
            )) <= 1e-5
        );
    }
    let out = f.p("cuda.root");
    let o = Command::new(env!("CARGO_BIN_EXE_hepml"))
        .args(inject(
            &[&zmumu],
            &[&f.p("mlp.onnx")],
            &[&f.p("mlp.yaml")],
            &out,
            &["--engine", "ort", "--device", "cuda"],
        ))
        .current_dir(repo())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    // The binary loads the venv's onnxruntime (found from the checkout, as here).
    let lib = engine::ort::find_library(None).expect("libonnxruntime (the venv's onnxruntime)");
    if testutil::ort_has_cuda(&lib) && testutil::nvidia_gpu() {
        assert!(o.status.success(), "{err}");
        assert!(Path::new(&out).exists());
    } else {
        let want = if testutil::ort_has_cuda(&lib) {
            engine::ort::CUDA_FAILED
        } else {
            engine::ort::CUDA_MISSING
        };
        assert!(!o.status.success() && err.contains(want), "{err}");
        assert!(!Path::new(&out).exists());
    }
}

/// Two per-object models over collections of different multiplicity (jets and muons) written
/// to a friend tree: each gets its own counter branch holding its own collection's counts
/// (uproot reads counters and values; the values equal onnxruntime's on uproot's rows).
#[test]
fn per_object_models_over_two_collections_get_their_own_counts() {
    let f = Fixture::new();
    let w = |name: &str, coll: &str| {
        let text = format!(
            "inputs:\n  jet: {{rows: [{coll}_Px, {coll}_Py, {coll}_E]}}\noutputs:\n  jet_score: {coll}_score\n"
        );
        std::fs::write(f.p(name), text).unwrap();
        f.p(name)
    };
    let (jets, muons) = (w("jets.yaml", "Jet"), w("muons.yaml", "Muon"));
    let hzz = shared("root/uproot-HZZ.root");
    let out = f.p("two.root");
    let model = f.p("jet.onnx");
    ok(&inject(
        &[&hzz],
        &[&model, &model],
        &[&jets, &muons],
        &out,
        &["--friend", "--chunk", "700"],
    ));
    let code = r#"
import sys, numpy as np, uproot, awkward as ak, onnxruntime as ort
inp, out, model = sys.argv[1:4]
t = uproot.open(inp)["events"]; o = uproot.open(out)["events"]
s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
assert sorted(o.keys()) == ["Jet_score", "Muon_score", "nJet_score", "nMuon_score"], o.keys()
worst = 0.0
for coll, n in (("Jet", "NJet"), ("Muon", "NMuon")):
    counts = t[n].array(library="np")
    got_n = o[f"n{coll}_score"].array(library="np")
    assert np.array_equal(got_n, counts), f"n{coll}_score differs from {n}"
    got = o[f"{coll}_score"].array()
    assert np.array_equal(ak.to_numpy(ak.num(got)), counts), f"{coll}_score counts differ"
    j = t.arrays([f"{coll}_Px", f"{coll}_Py", f"{coll}_E"])
    x = np.stack([ak.to_numpy(ak.flatten(j[k])) for k in j.fields], axis=1).astype(np.float32)
    want = s.run(None, {"jet": x})[0][:, 0]
    worst = max(worst, float(np.max(np.abs(ak.to_numpy(ak.flatten(got)) - want))))
print(worst)
"#;
    let o = Command::new(python())
        .args(["-c", code, &hzz, &out, &model])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d: f64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert!(d <= 1e-5, "{d}");
}

/// The most threads `hepml args` has at once, sampled from /proc/PID/task until it exits.
#[cfg(target_os = "linux")]
fn peak_threads(args: &[String]) -> usize {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hepml"))
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let tasks = format!("/proc/{}/task", child.id());
    let mut peak = 0;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert!(status.success(), "hepml {args:?}: {err}");
            return peak;
        }
        if let Ok(d) = std::fs::read_dir(&tasks) {
            peak = peak.max(d.count());
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// `--threads 1` holds inference to one thread: the process never has more than its main
/// thread and the chunk reader (and ONNX Runtime's idle environment thread), on the native,
/// tract and ONNX Runtime engines, with chunks large enough
/// that an engine left at its default would split them over every core. (A run with more
/// threads shows the sampling sees the engines' threads at all.)
#[cfg(target_os = "linux")]
#[test]
fn threads_limit_inference() {
    let f = Fixture::new();
    let big = f.p("big.root");
    let code = r#"
import sys, numpy as np, uproot
rng = np.random.default_rng(5)
n = 400_000
with uproot.recreate(sys.argv[1]) as f:
    cols = {k: rng.normal(50, 20, n) for k in ["E1", "px1", "py1", "pz1", "pt1"]}
    f.mktree("events", {k: np.float64 for k in cols})
    f["events"].extend(cols)
"#;
    let o = Command::new(python())
        .args(["-c", code, &big])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (model, spec, out) = (f.p("mlp.onnx"), f.p("mlp.yaml"), f.p("big_out.root"));
    let run = |engine: &str, threads: &str| {
        peak_threads(&inject(
            &[&big],
            &[&model],
            &[&spec],
            &out,
            &[
                "--chunk",
                "200000",
                "--engine",
                engine,
                "--threads",
                threads,
            ],
        ))
    };
    // One thread per pipeline stage (reading, scoring, writing). ONNX Runtime's environment
    // starts one thread of its own when it is created (before any session; it does no
    // inference): one more than the others.
    let base = |engine: &str| if engine == "ort" { 4 } else { 3 };
    for engine in ["native", "tract", "ort"] {
        let one = run(engine, "1");
        assert!(
            one <= base(engine),
            "--engine {engine} --threads 1: {one} threads at once"
        );
    }
    // The engines do use more threads when allowed (ONNX Runtime as intra-op threads).
    for engine in ["tract", "ort"] {
        let many = run(engine, "4");
        assert!(
            many > base(engine),
            "--engine {engine} --threads 4: only {many} threads seen"
        );
    }
}

/// The provenance record's `engines` (one {engine, reason} per model) of an output file.
fn provenance_engines(out: &str) -> serde_json::Value {
    let code = r#"
import sys, json, uproot
print(json.dumps(json.loads(uproot.open(sys.argv[1])["hepml_provenance"].member("fTitle"))["engines"]))
"#;
    let o = Command::new(python())
        .args(["-c", code, out])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap()
}

/// "auto" picks the fastest engine that is correct for each graph, and the log line and the
/// provenance record name the choice and its reason: a dense MLP stays on the native
/// evaluator (and `--timing` reports each stage's events/s); ParticleNet goes to the native
/// EdgeConv evaluator whether ONNX Runtime's library is found (the venv's wheel: a missing one
/// fails the test) or switched off with `--ort-lib none`, with onnxruntime's scores either way; a
/// DeepDoubleX whose GRUs neither the native evaluator implements (a Relu candidate
/// activation) nor tract runs rightly is, without ONNX Runtime, a one-line error naming tract's
/// refusal, and no output.
#[test]
fn auto_engine_choice_is_logged_and_recorded() {
    engine::ort::find_library(None).expect("libonnxruntime (the venv's onnxruntime)");
    let f = Fixture::new();
    let zmumu = shared("root/uproot-Zmumu.root");
    let run = |args: Vec<String>| -> String {
        let (good, log) = hepml(&args);
        assert!(good, "hepml {args:?}: {log}");
        log
    };
    let mlp_out = f.p("mlp_auto.root");
    let mut args = inject(
        &[&zmumu],
        &[&f.p("mlp.onnx")],
        &[&f.p("mlp.yaml")],
        &mlp_out,
        &["--timing"],
    );
    args.retain(|a| a != "--quiet");
    let log = run(args);
    assert!(log.contains("[engine native (dense network"), "{log}");
    // --timing: each stage's events/s.
    let timing = log
        .lines()
        .find(|l| l.starts_with("hepml timing: "))
        .unwrap_or_else(|| panic!("no timing line: {log}"));
    assert_eq!(timing.matches("events/s").count(), 4, "{timing}");
    for stage in ["read ", "input building ", "inference ", "writing "] {
        assert!(timing.contains(stage), "{stage}: {timing}");
    }
    let e = provenance_engines(&mlp_out);
    assert_eq!(e[0]["engine"], "native", "{e}");

    let model = shared("onnx/cms-particlenet-ak4-hlt/particle-net.onnx");
    let pre = shared("onnx/cms-particlenet-ak4-hlt/preprocess.json");
    for (ort_lib, want, why) in [
        (None, "native", "(EdgeConv) network: native evaluator"),
        (
            Some("none"),
            "native",
            "(EdgeConv) network: native evaluator",
        ),
    ] {
        let out = f.p(&format!("pnet_{}.root", ort_lib.unwrap_or("found")));
        let mut extra = vec!["--length", "25", "--friend", "--chunk", "128"];
        if let Some(l) = ort_lib {
            extra.extend(["--ort-lib", l]);
        }
        let mut args = inject(&[&f.p("pfcands.root")], &[&model], &[&pre], &out, &extra);
        args.retain(|a| a != "--quiet");
        let log = run(args);
        assert!(log.contains(&format!("[engine {want} (")), "{log}");
        let e = provenance_engines(&out);
        assert_eq!(e[0]["engine"], want, "{e}");
        assert!(e[0]["reason"].as_str().unwrap().contains(why), "{e}");
        let d = max_diff(&script(
            "check_inject.py",
            &[
                "particlenet",
                &model,
                &pre,
                "25",
                &f.p("pfcands.root"),
                "jets",
                &out,
                "jets",
                "pnet_",
            ],
        ));
        assert!(d <= 1e-5, "{want}: {d}");
    }

    // The model itself runs natively; scripts/make_recurrent_cases.py writes the altered copy.
    script("make_recurrent_cases.py", &[&f.p("recurrent")]);
    let bvl = f.p("recurrent/altered-candidate_relu.onnx");
    std::fs::write(
        f.p("bvl.yaml"),
        "inputs:\n  input_1: [E1]\noutputs:\n  ID_pred: bvl\n",
    )
    .unwrap();
    let out = f.p("bvl.root");
    let (good, err) = hepml(&inject(
        &[&zmumu],
        &[&bvl],
        &[&f.p("bvl.yaml")],
        &out,
        &["--ort-lib", "none"],
    ));
    assert!(!good, "BvL on tract: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    for want in [
        "auto: tract refuses this graph",
        "(GRU)",
        "ONNX Runtime is switched off",
    ] {
        assert!(err.contains(want), "'{want}' not in: {err}");
    }
    assert!(!Path::new(&out).exists());
}
