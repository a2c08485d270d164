//! `hepml inject` over several input files: the models are decoded and their engines built
//! once per run (one "loaded" log line however many inputs), and every output holds the same
//! scores as a run over that file alone.

mod common;
use common::{dump, ok, p, script, shared};

#[test]
fn models_load_once_for_all_inputs_and_score_as_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    script("make_test_models.py", &[d.to_str().unwrap()]);
    std::fs::write(
        d.join("mlp.yaml"),
        "inputs:\n  x: [E1, px1, py1, pz1, pt1]\noutputs:\n  probabilities: {branch: score, column: 1}\n",
    )
    .unwrap();
    let (model, spec) = (p(d, "mlp.onnx"), p(d, "mlp.yaml"));
    let names = [
        "uproot-Zmumu.root",
        "uproot-Zmumu-lz4.root",
        "uproot-Zmumu-zstd.root",
    ];
    let inputs: Vec<String> = names.iter().map(|n| shared(&format!("root/{n}"))).collect();
    let outdir = p(d, "outs");
    let mut args = vec!["inject"];
    args.extend(inputs.iter().map(String::as_str));
    args.extend([
        "--model",
        &model,
        "--features",
        &spec,
        "-o",
        &outdir,
        "--quiet",
    ]);
    let log = ok(&args);
    let loaded: Vec<&str> = log.lines().filter(|l| l.contains(" loaded in ")).collect();
    assert_eq!(loaded.len(), 1, "{log}");
    assert!(loaded[0].contains("once for 3 input(s)"), "{log}");
    for (name, input) in names.iter().zip(&inputs) {
        let alone = p(d, &format!("alone-{name}"));
        let log = ok(&[
            "inject",
            input,
            "--model",
            &model,
            "--features",
            &spec,
            "-o",
            &alone,
            "--quiet",
        ]);
        assert!(log.contains("once for 1 input(s)"), "{log}");
        let together = dump(&format!("{outdir}/{name}"), &["score"]);
        assert_eq!(together, dump(&alone, &["score"]), "{name}");
        assert_eq!(together[0].len(), 2304, "{name}");
    }
}
