//! convert -> train -> export -> onnxruntime parity -> inject, end to end on generated data with
//! a known answer (scripts/make_train_data.py: the best possible AUC is 0.829), and the bad
//! inputs of `hepml train`.

use std::path::Path;

mod common;
use common::{convert, dump, hepml, ok, p, script, train_fails};

/// `hepml train DIR/train.yaml -o DIR/RUN --seed SEED -q`; returns its log.
fn train(dir: &Path, run: &str, seed: &str) -> String {
    ok(&[
        "train",
        &p(dir, "train.yaml"),
        "-o",
        &p(dir, run),
        "--seed",
        seed,
        "-q",
    ])
}

/// `hepml inject INPUT --model M... EXTRA... -o OUT --quiet`; returns its log.
fn inject(input: &str, models: &[&str], extra: &[&str], out: &str) -> String {
    let mut args = vec!["inject", input];
    for m in models {
        args.extend(["--model", m]);
    }
    args.extend(extra);
    args.extend(["-o", out, "--quiet"]);
    ok(&args)
}

/// onnxruntime on `model` with inputs uproot builds from `input` as `spec` (check_inject.py's
/// JSON) says, against the branches `out` holds: (max |diff|, values compared).
fn ort_parity(model: &str, input: &str, out: &str, spec: &str) -> (f64, u64) {
    let path = format!("{out}.spec.json");
    std::fs::write(&path, spec).unwrap();
    let said = script(
        "check_inject.py",
        &["event", model, input, "events", out, "events", &path],
    );
    let v: serde_json::Value = serde_json::from_str(said.trim().lines().last().unwrap()).unwrap();
    (
        v["max_abs_diff"].as_f64().unwrap(),
        v["values"].as_u64().unwrap(),
    )
}

/// Generated ROOT files converted to one HDF5 table (signal label 1, background label 0).
fn converted(dir: &Path) -> String {
    script("make_train_data.py", &[&p(dir, ""), "6000", "3"]);
    let cfg = format!(
        "tree: events\ncolumns: [f0, f1, f2, f3, f4, bad]\nevent_number: event\nsamples:\n  - {{name: sig, files: [\"{}\"], label: 1}}\n  - {{name: bkg, files: [\"{}\"], label: 0}}\n",
        p(dir, "sig.root"),
        p(dir, "bkg.root")
    );
    convert(dir, &cfg)
}

fn train_config(data: &str, extra: &str) -> String {
    format!(
        r#"model: {{type: dnn, width: 32, depth: 2, activation: swish, dropout: 0.0, batch_norm: true}}
data: {{files: ["{data}"]}}
preparation: {{kfold: {{k: 2, branch: event}}}}
features: {{inputs: [f0, f1, f2, f3, f4], weight: weight}}
training: {{optimizer: adam, learning_rate: 0.003, batch_size: 256, epochs: 6, patience: 3, schedule: onecycle, lr_finder: true}}
{extra}"#
    )
}

#[test]
fn convert_train_export_parity_and_inject() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = converted(d);
    std::fs::write(d.join("train.yaml"), train_config(&data, "")).unwrap();
    let log = train(d, "run", "5");
    assert!(
        log.contains("test AUC") && log.contains("lr finder"),
        "{log}"
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("run/metrics.json")).unwrap())
            .unwrap();
    let auc = m["test"]["auc"].as_f64().unwrap();
    // Best possible 0.829 (two unit Gaussians 0.6 apart in 5 features); 12000 test events.
    assert!(auc > 0.80 && auc < 0.86, "test AUC {auc}");
    assert_eq!(m["test"]["events"], 12000);
    assert_eq!(m["folds"].as_array().unwrap().len(), 2);
    assert!(m["lr_finder"]["suggested"].as_f64().unwrap() > 0.0);

    // Same seed, same model.
    train(d, "run2", "5");
    let a = std::fs::read(d.join("run/model.json")).unwrap();
    assert_eq!(
        a,
        std::fs::read(d.join("run2/model.json")).unwrap(),
        "--seed is not reproducible"
    );

    ok(&["export", &p(d, "run"), "-o", &p(d, "model.onnx")]);
    let check = script(
        "check_export.py",
        &[
            &p(d, "run"),
            &p(d, "model.fold0.onnx"),
            &p(d, "model.fold1.onnx"),
        ],
    );
    let c: serde_json::Value = serde_json::from_str(check.trim()).unwrap();
    assert!(c["max_diff"].as_f64().unwrap() <= 1e-5, "{check}");
    assert!(
        c["metadata"]["hepml.fold"]
            .as_str()
            .unwrap()
            .contains("event"),
        "{check}"
    );

    // inject routes events to the fold that did not train on them, from the model metadata.
    let (sig, fold0, fold1) = (
        p(d, "sig.root"),
        p(d, "model.fold0.onnx"),
        p(d, "model.fold1.onnx"),
    );
    let out = p(d, "scored.root");
    inject(&sig, &[&fold0, &fold1], &[], &out);
    // Fold 0 alone on the same file equals onnxruntime on inputs built by uproot.
    inject(&sig, &[&fold0], &[], &p(d, "f0.root"));
    let (diff, values) = ort_parity(
        &fold0,
        &sig,
        &p(d, "f0.root"),
        r#"{"inputs": {"x": ["f0","f1","f2","f3","f4"]}, "outputs": [["score", 0, "score"]]}"#,
    );
    assert!(diff <= 1e-5 && values == 6000, "{diff} over {values}");
    // The ensemble gives each event the score of the fold that did not train on it (event % 2),
    // and tract (the fallback engine) agrees with the native evaluator inject chose.
    inject(&sig, &[&fold1], &[], &p(d, "f1.root"));
    inject(&sig, &[&fold0], &["--engine", "tract"], &p(d, "f0t.root"));
    let ens = dump(&out, &["score", "event"]);
    let (f0, f1, f0t) = (
        dump(&p(d, "f0.root"), &["score"]),
        dump(&p(d, "f1.root"), &["score"]),
        dump(&p(d, "f0t.root"), &["score"]),
    );
    let mut per_fold = [0, 0];
    for (i, ev) in ens[1].iter().enumerate() {
        let fold = (*ev as i64).rem_euclid(2) as usize;
        per_fold[fold] += 1;
        let want = if fold == 0 { f0[0][i] } else { f1[0][i] };
        assert_eq!(
            ens[0][i], want,
            "event {ev}: ensemble score is not fold {fold}'s"
        );
        assert!(
            (f0t[0][i] - f0[0][i]).abs() <= 1e-5,
            "tract vs native at {i}"
        );
    }
    assert!(per_fold[0] > 2000 && per_fold[1] > 2000, "{per_fold:?}");
    // The run has its plots.
    for f in [
        "roc.png",
        "scores.png",
        "confusion.png",
        "loss_fold0.png",
        "accuracy_fold1.png",
        "lr_finder.png",
        "correlation_signal.png",
        "input_0_f0.png",
    ] {
        let meta =
            std::fs::metadata(d.join("run/plots").join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(meta.len() > 5000, "{f} is {} bytes", meta.len());
    }
}

/// A mass-parameterised NN as physicists set one up: one signal sample per mass point (the
/// mass an `extra` column), background without a mass of its own, a renamed expression column.
/// Its per-mass AUCs come close to the best possible; the export computes the renamed column
/// from the ntuple again; `inject --param mass=...` writes a branch per mass hypothesis.
#[test]
fn pnn_per_mass_points_from_renamed_columns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    script("make_train_data.py", &[&p(d, ""), "6000", "3"]);
    let (sig, bkg) = (p(d, "sig.root"), p(d, "bkg.root"));
    let mut cfg = String::from(
        "tree: events\ncolumns: [f0, f1, f2, f3, {name: f4x2, expr: \"2*f4\"}]\nevent_number: event\nsamples:\n",
    );
    for m in [300, 500, 700] {
        cfg += &format!(
            "  - {{name: sig{m}, files: [\"{sig}\"], label: 1, selection: \"mass == {m}\", extra: {{mass: {m}}}}}\n"
        );
    }
    cfg += &format!("  - {{name: bkg, files: [\"{bkg}\"], label: 0, extra: {{mass: 0}}}}\n");
    let data = convert(d, &cfg);
    std::fs::write(
        d.join("train.yaml"),
        format!(
            r#"model: {{type: pnn, width: 32, depth: 2, activation: relu}}
data: {{files: ["{data}"]}}
preparation: {{kfold: {{k: 2, branch: event}}}}
features: {{inputs: [f0, f1, f2, f3, f4x2], parameter: mass, weight: weight}}
training: {{optimizer: adam, learning_rate: 0.003, batch_size: 256, epochs: 8, schedule: onecycle}}
evaluation: {{parameter_values: [300, 500, 700]}}
"#
        ),
    )
    .unwrap();
    let log = train(d, "run", "2");
    assert!(log.contains("test AUC per mass"), "{log}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("run/metrics.json")).unwrap())
            .unwrap();
    // Signal at mass m against background evaluated at m. The best possible AUC is
    // Phi(|shift| / sqrt 2): f0 is shifted by 0.6 + m/500 - 1, f1..f4 by 0.6.
    for (mass, best) in [("300", 0.805), ("500", 0.829), ("700", 0.865)] {
        let auc = m["test"]["auc_per_parameter"][mass]
            .as_f64()
            .unwrap_or_else(|| panic!("no AUC for {mass}: {m}"));
        assert!(
            auc > best - 0.035 && auc < best + 0.02,
            "mass {mass}: AUC {auc}, best possible {best}"
        );
    }
    assert!(d.join("run/plots/roc_per_parameter.png").exists());

    ok(&["export", &p(d, "run"), "-o", &p(d, "pnn.onnx")]);
    let (f0, f1) = (p(d, "pnn.fold0.onnx"), p(d, "pnn.fold1.onnx"));
    let check = script("check_export.py", &[&p(d, "run"), &f0, &f1]);
    let c: serde_json::Value = serde_json::from_str(check.trim()).unwrap();
    assert!(c["max_diff"].as_f64().unwrap() <= 1e-5, "{check}");
    assert_eq!(
        c["metadata"]["hepml.inputs"].as_str().unwrap(),
        r#"{"x":["f0","f1","f2","f3","2*f4","mass"]}"#,
        "{check}"
    );
    assert_eq!(c["metadata"]["hepml.parameter"], "mass", "{check}");

    // Both folds, two mass hypotheses, on the background ntuple (whose `mass` branch is 0).
    let ens = p(d, "ens.root");
    inject(&bkg, &[&f0, &f1], &["--param", "mass=300,700"], &ens);
    let single = p(d, "fold0_m300.root");
    inject(&bkg, &[&f0], &["--param", "mass=300"], &single);
    // onnxruntime on inputs uproot builds: the renamed column from its expression, mass 300.
    let (diff, values) = ort_parity(
        &f0,
        &bkg,
        &single,
        r#"{"inputs": {"x": ["f0","f1","f2","f3","2*f4","300"]}, "outputs": [["score", 0, "score_mass300"]]}"#,
    );
    assert!(diff <= 1e-5 && values == 6000, "{diff} over {values}");
    let e = dump(&ens, &["score_mass300", "score_mass700", "event"]);
    let s = dump(&single, &["score_mass300"]);
    let mut differ = 0;
    for i in 0..e[2].len() {
        if (e[2][i] as i64).rem_euclid(2) == 0 {
            assert_eq!(e[0][i], s[0][i], "event {}: not fold 0's score", e[2][i]);
        }
        differ += (e[0][i] != e[1][i]) as usize;
    }
    assert!(
        differ > e[2].len() / 2,
        "the mass hypothesis changes few scores"
    );

    // Without --param the parameter comes from a branch of its name, if the tree has one.
    let err = inject(&sig, &[&f0], &[], &p(d, "own.root"));
    assert!(err.contains("branch `mass`"), "{err}");
    let zmumu = common::shared("root/uproot-Zmumu.root");
    for (args, want) in [
        (vec![], "--param mass=VALUE"),
        (vec!["--param", "mass=heavy"], "not a number"),
        (
            vec!["--param", "mss=300"],
            "no model has an input column `mss`",
        ),
    ] {
        let target = if want.contains("mss") { &bkg } else { &zmumu };
        let out = p(d, "bad.root");
        let mut all = vec![
            "inject",
            target.as_str(),
            "--model",
            &f0,
            "-o",
            &out,
            "--quiet",
        ];
        all.extend(args);
        let o = hepml(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{all:?}: {err}");
        assert!(!Path::new(&out).exists());
    }
}

#[test]
fn bad_inputs_are_one_line_errors_and_leave_no_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = converted(d);
    let base = train_config(&data, "");
    let cases: Vec<(String, &str)> = vec![
        (
            base.replace("learning_rate", "lerning_rate"),
            "lerning_rate",
        ),
        (base.replace("inputs: [f0,", "inputs: [f9,"), "f9"),
        (base.replace("inputs: [f0,", "inputs: [bad,"), "NaN"),
        (
            base.replace(
                &format!("files: [\"{data}\"]"),
                &format!("signal: [\"{data}\"], background: []"),
            ),
            "data needs",
        ),
        (
            base.replace(
                &format!("files: [\"{data}\"]"),
                &format!("signal: [\"{data}\"], background: [\"{data}\"]"),
            )
            .replace(
                "kfold: {k: 2, branch: event}",
                "kfold: {k: 2, branch: nope}",
            ),
            "nope",
        ),
    ];
    train_fails(d, &cases);
    // A class with no events: the weight column (all 1) taken as the label.
    let cfg = d.join("nolabel.yaml");
    std::fs::write(
        &cfg,
        base.replace("weight: weight}", "weight: weight, label: weight}"),
    )
    .unwrap();
    let o = hepml(&["train", cfg.to_str().unwrap(), "-o", &p(d, "runx"), "-q"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("a class has no events"),
        "{err}"
    );
    assert!(!d.join("runx").exists());
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("hepml-tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A DataFrame written by pandas with a string column (a sample name): training on its numeric
/// columns works; asking for the string column is one line saying what it holds, and so is
/// asking for a column with a value float32 cannot hold.
#[test]
fn string_columns_of_pandas_files_are_named_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = p(d, "s.h5");
    script("check_h5.py", &["write-strings", &data, "events", "3000"]);
    let cfg = |inputs: &str| {
        format!(
            "model: {{type: dnn, width: 8, depth: 1}}\ndata: {{files: [\"{data}\"]}}\n\
             features: {{inputs: [{inputs}], weight: w}}\ntraining: {{epochs: 1, batch_size: 256}}\n\
             evaluation: {{plots: false}}\n"
        )
    };
    train_fails(
        d,
        &[
            (
                cfg("pt, process"),
                "column `process` holds Python objects (a pandas object column)",
            ),
            // A finite double that no float32 holds: it made every score NaN (and the AUC's
            // walk over tied scores loop for ever).
            (
                cfg("pt, huge"),
                "column `huge` has the value 1e300, beyond float32's range (row 7)",
            ),
        ],
    );
    std::fs::write(d.join("ok.yaml"), cfg("pt")).unwrap();
    ok(&["train", &p(d, "ok.yaml"), "-o", &p(d, "run_ok"), "-q"]);
    assert!(d.join("run_ok/metrics.json").exists());
}

/// `hepml train --scan`: a 2x2 grid in parallel, its summary and best point, a resume that
/// trains only the missing point, a search within ranges, and the scan's bad inputs.
#[test]
fn scans_grid_resume_search_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = converted(d);
    let cfg = train_config(&data, "")
        .replace("epochs: 6", "epochs: 2")
        .replace("lr_finder: true", "lr_finder: false");
    std::fs::write(d.join("train.yaml"), cfg).unwrap();
    let scan_dir = p(d, "scan");
    let grid = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "TRAIN",
            "-o",
            &scan_dir,
            "--scan",
            "model.depth=1,2",
            "--scan",
            "training.learning_rate=0.01,0.002",
            "--jobs",
            "2",
            "-q",
        ];
        let cfg = p(d, "train.yaml");
        args[1] = &cfg;
        args.extend(extra);
        ok(&args)
    };
    let log = grid(&[]);
    assert!(log.contains("best by valid AUC"), "{log}");
    let summary = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("scan").join(name)).unwrap()).unwrap()
    };
    let s = summary("summary.json");
    let points = s["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    let mut best = ("", f64::MIN);
    for pt in points {
        assert_eq!(pt["status"], "done", "{pt}");
        let (t, v) = (
            pt["train_auc"].as_f64().unwrap(),
            pt["valid_auc"].as_f64().unwrap(),
        );
        // Best possible 0.829: every point learns something in its two epochs (the slow rate
        // underfits, near 0.73), none beyond the Bayes limit by more than the fluctuation of a
        // few thousand events.
        assert!(v > 0.65 && v < 0.87 && t > 0.65 && t < 0.87, "{pt}");
        if v > best.1 {
            best = (pt["name"].as_str().unwrap(), v);
        }
        // The point's run holds the config with its values set.
        let run = d.join("scan").join(pt["run"].as_str().unwrap());
        let text = std::fs::read_to_string(run.join("config.yaml")).unwrap();
        let c: serde_json::Value = serde_json::to_value(&pt["values"]).unwrap();
        assert!(
            text.contains(&format!("depth: {}", c["model.depth"])),
            "{text}"
        );
    }
    assert_eq!(s["best"], best.0);
    assert_eq!(
        std::fs::read(d.join("scan/summary.png")).unwrap()[..4],
        [0x89, b'P', b'N', b'G']
    );
    let tsv = std::fs::read_to_string(d.join("scan/summary.tsv")).unwrap();
    assert_eq!(tsv.lines().count(), 5, "{tsv}");

    // An interrupted scan: one point's run is missing; the rerun trains only that one.
    let keep = d.join("scan/points/p000/metrics.json");
    let before = std::fs::metadata(&keep).unwrap().modified().unwrap();
    std::fs::remove_dir_all(d.join("scan/points/p002")).unwrap();
    let log = grid(&[]);
    assert!(log.contains("3 of 4 points already trained"), "{log}");
    assert!(d.join("scan/points/p002/metrics.json").exists());
    assert_eq!(
        std::fs::metadata(&keep).unwrap().modified().unwrap(),
        before
    );
    assert_eq!(
        summary("summary.json")["points"].as_array().unwrap().len(),
        4
    );

    // Another scan in the same directory is refused; a mistyped key is refused up front.
    for (args, want) in [
        (vec!["--scan", "model.width=8,16"], "holds another scan"),
        (vec!["--scan", "model.dpth=1,2"], "dpth"),
        (vec!["--scan", "model.depth=1..3"], "--search"),
    ] {
        let out = p(
            d,
            if want == "holds another scan" {
                "scan"
            } else {
                "scan_bad"
            },
        );
        let cfg = p(d, "train.yaml");
        let mut a = vec!["train", cfg.as_str(), "-o", out.as_str(), "-q"];
        a.extend(args);
        let o = hepml(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "expected `{want}` in {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert!(!d.join("scan_bad").exists());

    // A search: three points sampled within a log range.
    let cfg = p(d, "train.yaml");
    let search_dir = p(d, "search");
    ok(&[
        "train",
        &cfg,
        "-o",
        &search_dir,
        "--scan",
        "training.learning_rate=log:1e-3..3e-2",
        "--search",
        "3",
        "-q",
    ]);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("search/summary.json")).unwrap())
            .unwrap();
    let lrs: Vec<f64> = s["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pt| pt["values"]["training.learning_rate"].as_f64().unwrap())
        .collect();
    assert_eq!(lrs.len(), 3);
    assert!(lrs.iter().all(|l| (1e-3..=3e-2).contains(l)), "{lrs:?}");

    // A point that fails while training (its k-fold column does not exist): the others are
    // trained, the summary marks it, and the scan exits 1 naming it.
    let fail_dir = p(d, "fail");
    let o = hepml(&[
        "train",
        &cfg,
        "-o",
        &fail_dir,
        "--scan",
        "preparation.kfold.branch=event,nope",
        "-q",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("1 of 2 scan points failed (p001)"), "{err}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("fail/summary.json")).unwrap())
            .unwrap();
    assert_eq!(s["points"][0]["status"], "done");
    assert_eq!(s["points"][1]["status"], "failed");
    assert!(!d.join("fail/points/p001").exists());

    // Seeds scanned: each point trains with its own --seed (recorded in its run.json), the
    // config is the same, and the networks differ.
    let seed_dir = p(d, "seeds");
    ok(&["train", &cfg, "-o", &seed_dir, "--scan", "seed=3,4", "-q"]);
    let run = |name: &str, file: &str| {
        std::fs::read_to_string(d.join("seeds/points").join(name).join(file)).unwrap()
    };
    for (name, seed) in [("p000", 3), ("p001", 4)] {
        let r: serde_json::Value = serde_json::from_str(&run(name, "run.json")).unwrap();
        assert_eq!(r["seed"], seed, "{name}");
    }
    assert_eq!(run("p000", "config.yaml"), run("p001", "config.yaml"));
    assert_ne!(run("p000", "model.json"), run("p001", "model.json"));
}
