//! Every configuration under examples/ runs, so the examples cannot rot: each
//! `examples/analysis/NAME/` goes convert -> train -> export -> inject on data from
//! scripts/make_train_data.py, and each `examples/inject/*.yaml` feature spec scores the ntuple
//! its header names with the model it names (scripts/make_test_models.py). A new file or
//! directory there is picked up without touching this test.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{repo, script, shared};

/// `hepml ARGS` in `cwd`; panics with its stderr on failure.
fn hepml(cwd: &Path, args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_hepml"))
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("running hepml");
    assert!(
        o.status.success(),
        "hepml {args:?} in {}: {}",
        cwd.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The entries of `examples/SUB` (sorted), checked to be there.
fn entries(sub: &str) -> Vec<PathBuf> {
    let dir = repo().join("examples").join(sub);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("reading examples/").path())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "{} is empty", dir.display());
    v
}

/// The branch `branch` of `file` (`hepml inspect --dump`), checked to hold probabilities.
fn check_scores(file: &Path, branch: &str) {
    let o = Command::new(env!("CARGO_BIN_EXE_hepml"))
        .args(["inspect", s(file), "--dump", branch])
        .output()
        .expect("running hepml");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let values = v["branches"][branch]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no branch {branch}", file.display()));
    assert!(!values.is_empty(), "{}: {branch} is empty", file.display());
    for x in values {
        let x = x.as_f64().unwrap_or(f64::NAN);
        assert!(
            (0.0..=1.0).contains(&x),
            "{}: {branch} = {x}",
            file.display()
        );
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn every_analysis_example_converts_trains_exports_and_injects() {
    let dirs = entries("analysis");
    let work = tempfile::tempdir().unwrap();
    script("make_train_data.py", &[s(work.path()), "3000", "7"]);
    for ex in dirs.iter().filter(|p| p.is_dir()) {
        let name = ex.file_name().unwrap().to_string_lossy().into_owned();
        let d = work.path().join(&name);
        std::fs::create_dir(&d).unwrap();
        for f in ["sig.root", "bkg.root"] {
            std::fs::copy(work.path().join(f), d.join(f)).unwrap();
        }
        let (convert, train) = (ex.join("convert.yaml"), ex.join("train.yaml"));
        hepml(&d, &["convert", s(&convert), "-o", "data.h5", "-q"]);
        hepml(&d, &["train", s(&train), "-o", "run", "--seed", "1", "-q"]);
        hepml(&d, &["export", "run", "-o", "model.onnx"]);
        let mut models: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("model") && n.ends_with(".onnx"))
            .collect();
        models.sort();
        assert!(!models.is_empty(), "{name}: export wrote no model");
        let mut args = vec!["inject", "sig.root"];
        for m in &models {
            args.extend(["--model", m.as_str()]);
        }
        args.extend(["-o", "scored.root", "--quiet"]);
        hepml(&d, &args);
        check_scores(&d.join("scored.root"), "score");
    }
}

/// The value of the header line `# KEY: VALUE` of a feature spec.
fn header<'a>(text: &'a str, key: &str, spec: &Path) -> &'a str {
    let prefix = format!("# {key}: ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{}: no `{prefix}` header line", spec.display()))
        .trim()
}

#[test]
fn every_inject_feature_spec_scores_its_ntuple() {
    let specs: Vec<PathBuf> = entries("inject")
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    assert!(!specs.is_empty(), "no feature spec under examples/inject");
    let models = tempfile::tempdir().unwrap();
    script("make_test_models.py", &[s(models.path())]);
    for spec in &specs {
        let text = std::fs::read_to_string(spec).unwrap();
        let model = models.path().join(header(&text, "model", spec));
        let ntuple = shared(header(&text, "ntuple", spec));
        let out = models.path().join("scored.root");
        hepml(
            models.path(),
            &[
                "inject",
                &ntuple,
                "--model",
                s(&model),
                "--features",
                s(spec),
                "-o",
                s(&out),
                "--quiet",
            ],
        );
        check_scores(&out, header(&text, "branch", spec));
        std::fs::remove_file(&out).unwrap();
    }
}
