//! The layouts experiments write, on a file real ROOT 6.40 writes in the test
//! (scripts/gen_split_file.py: a split class with a TClonesArray, a split
//! std::vector<Class> and a Double32_t, a leaf list, a nested vector and a vector of strings):
//! every branch equals uproot or is listed with its reason (scripts/check_corpus.py, the gate
//! also run over scikit-hep-testdata), the gate catches a wrong value, and a decorated copy
//! keeps every original branch for ROOT and uproot while its score equals onnxruntime's.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{python, repo, script, shared};

fn split_file(dir: &Path) -> PathBuf {
    let out = dir.join("split.root");
    script("gen_split_file.py", &[out.to_str().unwrap()]);
    out
}

/// The same with `whole.`, an object written unsplit (one column per member in hepml, a
/// record per entry in uproot).
fn unsplit_file(dir: &Path) -> PathBuf {
    let out = dir.join("split.root");
    script("gen_split_file.py", &[out.to_str().unwrap(), "--unsplit"]);
    out
}

fn corpus_gate(hepml: &Path, files: &[&str]) -> (bool, String) {
    let o = Command::new(python())
        .arg(repo().join("scripts/check_corpus.py"))
        .arg("--hepml")
        .arg(hepml)
        .arg("--gate")
        .args(files)
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn split_objects_and_leaf_lists_match_uproot() {
    let dir = tempfile::tempdir().unwrap();
    let split = unsplit_file(dir.path());
    let hzz = shared("root/uproot-HZZ.root");
    let leaflist = shared("root/uproot-leaflist.root");
    let (ok, text) = corpus_gate(
        Path::new(env!("CARGO_BIN_EXE_hepml")),
        &[split.to_str().unwrap(), &hzz, &leaflist],
    );
    assert!(ok, "{text}");
    // 18 members and columns equal uproot (scalars, w[2], the Double32_t, the TClonesArray's
    // and the std::vector<Jet>'s jagged members, the leaf list's 4 columns as 1 branch, the
    // nested vector, the vector of strings, and the unsplit object's 12 columns, as 1 branch,
    // against uproot's records); the hits' fBits, where referenced hits carry
    // a process id, equal real ROOT's and not uproot's (it reads the id as values); the 2
    // containers are evt and the TClonesArray/vector parents' records. (uproot cannot read
    // evt's own fBits, with referenced events, nor so its TObject base.)
    assert!(
        text.contains("split.root t: 18 equal, 1 root_only, 2 container"),
        "{text}"
    );
    assert!(
        text.contains("uproot-leaflist.root tree: 1 equal"),
        "{text}"
    );
    assert!(
        text.contains("0 error, 0 wrong, 0 crashed, 0 missing"),
        "{text}"
    );

    // Members by uproot's path names and by their own, and a leaf-list column.
    let o = Command::new(env!("CARGO_BIN_EXE_hepml"))
        .args(["inspect", split.to_str().unwrap(), "--dump"])
        .args([
            "evt/hits/hits.layer",
            "jets.n",
            "point.n",
            "run",
            "nested",
            "tags",
            "evt/fBits",
            "hits.fBits",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let b = &v["branches"];
    // fBits of referenced objects (kIsReferenced, 0x10: events i % 7 == 3, hits k of event i
    // with (i + k) % 5 == 1): one word per object, the process id after it skipped.
    const REFERENCED: u64 = 0x10;
    let bits = |x: &serde_json::Value| x.as_u64().unwrap() & REFERENCED != 0;
    let evt_bits = b["evt/fBits"].as_array().unwrap();
    assert_eq!(evt_bits.len(), 60);
    for (i, x) in evt_bits.iter().enumerate() {
        assert_eq!(bits(x), i % 7 == 3, "event {i}: {x}");
    }
    for (i, e) in b["hits.fBits"].as_array().unwrap().iter().enumerate() {
        let e = e.as_array().unwrap();
        assert_eq!(e.len(), i % 4, "event {i}: {e:?}");
        for (k, x) in e.iter().enumerate() {
            assert_eq!(bits(x), (i + k) % 5 == 1, "event {i}, hit {k}: {x}");
        }
    }
    assert_eq!(b["evt/hits/hits.layer"][3], serde_json::json!([0, 1, 2]));
    assert_eq!(b["jets.n"][5], serde_json::json!([0, 1]));
    assert_eq!(b["point.n"], b["run"]);
    assert_eq!(b["nested"][5], serde_json::json!([[0.25], [0.25, 1.25]]));
    assert_eq!(b["tags"][7], serde_json::json!(["tag0", "tag7", ""]));
    // A container is an error only when its values are asked for.
    let o = Command::new(env!("CARGO_BIN_EXE_hepml"))
        .args(["inspect", split.to_str().unwrap(), "--dump", "evt"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("container of 8 sub-branches (split Evt)"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// A gate that cannot fail is no gate: a hepml that reports one member value, one value of a
/// nested vector, one string of a vector of strings or one value of an unsplit object's
/// vector member wrong is caught.
#[test]
fn the_corpus_gate_fails_on_a_perturbed_value() {
    let dir = tempfile::tempdir().unwrap();
    let split = unsplit_file(dir.path());
    let wrapper = dir.path().join("perturbed");
    std::fs::write(
        &wrapper,
        format!(
            "#!{py}\nimport json, subprocess, sys\nr = subprocess.run([{real:?}] + sys.argv[1:], capture_output=True, text=True)\n\
             if r.returncode or '--dump' not in sys.argv:\n    sys.stdout.write(r.stdout); sys.stderr.write(r.stderr); sys.exit(r.returncode)\n\
             d = json.loads(r.stdout); b = d['branches']\nfor k in b:\n    if k.endswith('hits.e') and len(b[k]) > 3 and b[k][3]:\n        b[k][3][1] = b[k][3][1] + 1e-3\n\
             n = b.get('nested', [])\nif len(n) > 5 and len(n[5]) > 1:\n    n[5][1][0] += 1e-3\n\
             g = b.get('tags', [])\nif len(g) > 6 and len(g[6]) > 1:\n    g[6][1] += 'x'\n\
             w = b.get('whole..e', [])\nif len(w) > 7 and w[7]:\n    w[7][0] += 1e-3\nprint(json.dumps(d))\n",
            py = python().display(),
            real = env!("CARGO_BIN_EXE_hepml"),
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, text) = corpus_gate(&wrapper, &[split.to_str().unwrap()]);
    assert!(!ok, "the gate passed a wrong value:\n{text}");
    assert!(
        text.contains("evt/hits/hits.e: wrong: entry 3")
            && text.contains("nested: wrong: entry 5")
            && text.contains("tags: wrong: entry 6")
            && text.contains("whole..e: wrong: entry 7")
            && text.contains("GATE FAILED: 4 wrong"),
        "{text}"
    );
}

/// Without its corpus, the corpus gate fails with a clear message (never an empty pass).
#[test]
fn the_corpus_gate_fails_without_its_corpus() {
    let o = Command::new(python())
        .arg(repo().join("scripts/check_corpus.py"))
        .args(["--hepml", env!("CARGO_BIN_EXE_hepml"), "--gate"])
        .args(["--corpus", "/nonexistent/skhep-testdata"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("corpus directory"),
        "{err}"
    );
}

/// `inject` decorates a file with split objects, nested vectors and vectors of strings: every
/// original basket is copied byte for byte (uproot reads every branch equal to the input),
/// ROOT reads every original branch as it does in the input, and the score (from a member, a
/// Double32_t and a leaf-list column) equals onnxruntime's.
#[test]
fn decorated_copy_of_a_split_file_keeps_every_branch() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n).display().to_string();
    let split = split_file(dir.path());
    let split = split.to_str().unwrap();
    script("make_test_models.py", &[dir.path().to_str().unwrap()]);
    let inputs = r#"["score_in", "met", "run", "charge", "point.x"]"#;
    std::fs::write(
        d("s.yaml"),
        format!(
            "inputs:\n  x: {inputs}\noutputs:\n  probabilities: {{branch: score, column: 1}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        d("s.json"),
        format!(r#"{{"inputs": {{"x": {inputs}}}, "outputs": [["probabilities", 1, "score"]]}}"#),
    )
    .unwrap();
    let out = d("out.root");
    let o = Command::new(env!("CARGO_BIN_EXE_hepml"))
        .args([
            "inject",
            split,
            "--model",
            &d("mlp.onnx"),
            "--features",
            &d("s.yaml"),
        ])
        .args(["-o", &out, "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let same = script("root_check.py", &["same-baskets", split, &out, "t"]);
    assert!(same.contains("\"branches\": 23"), "{same}");
    script("root_check.py", &["root-reads", split, &out, "t"]);
    let diff = script(
        "check_inject.py",
        &["event", &d("mlp.onnx"), split, "t", &out, "t", &d("s.json")],
    );
    let v: serde_json::Value = serde_json::from_str(diff.trim().lines().last().unwrap()).unwrap();
    assert!(v["max_abs_diff"].as_f64().unwrap() <= 1e-5, "{diff}");
}
