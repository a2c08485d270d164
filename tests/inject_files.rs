//! `hepml inject` over several input files: the models are decoded and their engines built
//! once per run (one "loaded" log line however many inputs), and every output holds the same
//! scores as a run over that file alone.

mod common;
use common::{dump, hepml, p, script, shared};

/// `hepml inject INPUTS --model M --features S -o OUT EXTRA` for the test MLP and its feature
/// spec (reading the Zmumu branches), made in `d` once.
fn mlp(d: &std::path::Path) -> impl Fn(&[&str], &str, &[&str]) -> std::process::Output {
    script("make_test_models.py", &[d.to_str().unwrap()]);
    std::fs::write(
        d.join("mlp.yaml"),
        "inputs:\n  x: [E1, px1, py1, pz1, pt1]\noutputs:\n  probabilities: {branch: score, column: 1}\n",
    )
    .unwrap();
    let (model, spec) = (p(d, "mlp.onnx"), p(d, "mlp.yaml"));
    move |inputs, out, extra| {
        let mut args = vec!["inject"];
        args.extend(inputs);
        args.extend(["--model", &model, "--features", &spec, "-o", out]);
        args.extend(extra);
        hepml(&args)
    }
}

/// The log of a run that must succeed.
fn logged(o: std::process::Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    err
}

#[test]
fn models_load_once_for_all_inputs_and_score_as_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inject = mlp(d);
    let names = [
        "uproot-Zmumu.root",
        "uproot-Zmumu-lz4.root",
        "uproot-Zmumu-zstd.root",
    ];
    let inputs: Vec<String> = names.iter().map(|n| shared(&format!("root/{n}"))).collect();
    let outdir = p(d, "outs");
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let log = logged(inject(&refs, &outdir, &["--quiet"]));
    let loaded: Vec<&str> = log.lines().filter(|l| l.contains(" loaded in ")).collect();
    assert_eq!(loaded.len(), 1, "{log}");
    assert!(loaded[0].contains("once for 3 input(s)"), "{log}");
    for (name, input) in names.iter().zip(&inputs) {
        let alone = p(d, &format!("alone-{name}"));
        let log = logged(inject(&[input], &alone, &["--quiet"]));
        assert!(log.contains("once for 1 input(s)"), "{log}");
        let together = dump(&format!("{outdir}/{name}"), &["score"]);
        assert_eq!(together, dump(&alone, &["score"]), "{name}");
        assert_eq!(together[0].len(), 2304, "{name}");
    }
}

/// Inputs go through one pipeline, the next read while the previous is written: an input that
/// cannot be opened stops the run with one line naming it, after the inputs before it are
/// written in full, and nothing after it is written.
#[test]
fn a_bad_input_stops_the_run_after_the_ones_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inject = mlp(d);
    let ins = p(d, "ins");
    std::fs::create_dir(&ins).unwrap();
    let good = std::fs::read(shared("root/uproot-Zmumu.root")).unwrap();
    std::fs::write(format!("{ins}/a.root"), &good).unwrap();
    std::fs::write(format!("{ins}/b.root"), &good[..good.len() / 2]).unwrap();
    std::fs::write(format!("{ins}/c.root"), &good).unwrap();
    let outdir = p(d, "outs");
    let glob = format!("{ins}/*.root");
    let run = |chunk: &str| {
        let _ = std::fs::remove_dir_all(&outdir);
        inject(&[&glob], &outdir, &["--chunk", chunk])
    };
    // Small chunks: the reader is well into the next input while the first is written.
    for chunk in ["100", "100000"] {
        let out = run(chunk);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.starts_with("hepml: error: ")
                && last.contains("b.root")
                && !last.contains("a.root"),
            "{err}"
        );
        let mut written: Vec<String> = std::fs::read_dir(&outdir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        written.sort();
        assert_eq!(written, ["a.root"], "chunk {chunk}");
        let a = dump(&format!("{outdir}/a.root"), &["score"]);
        assert_eq!(a[0].len(), 2304, "chunk {chunk}");
    }
}
