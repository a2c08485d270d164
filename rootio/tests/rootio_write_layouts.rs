//! Writer checks against files real ROOT 6.40 wrote (scripts/write_cases.py): decorated copies
//! of trees inside directories.
//! Outputs are read back by ROOT (no error or warning) and uproot, and compared with the
//! inputs (or with ROOT's own twin file).

use rootio::write::{clone_tree, copy_other_keys, BranchSpec, FileWriter};
use rootio::{Array, BranchReader, Compression, Data, Interp, Prim, RootFile, Shape};
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Scores for a decorated copy: a function of the entry number.
fn scores(n: u64) -> Array {
    Array {
        interp: Interp {
            prim: Prim::F32,
            shape: Shape::Scalar,
        },
        start: 0,
        entries: n,
        data: Data::F32((0..n).map(|i| (i as f32 * 0.377).cos()).collect()),
        offsets: None,
    }
}

/// A decorated copy of `tree` with one new branch `hepml_score` and every other object of
/// the input; returns the entries.
fn decorate(input: &Path, tree: &str, out: &Path) -> u64 {
    let f = RootFile::open(input).unwrap();
    let t = f.tree(tree).unwrap();
    let mut fw = FileWriter::create(out, Compression::DEFAULT).unwrap();
    let spec = BranchSpec::scalar("hepml_score", Prim::F32);
    let mut w = clone_tree(&f, &t, &mut fw, std::slice::from_ref(&spec)).unwrap();
    w.append(&mut fw, 0, &scores(t.entries)).unwrap();
    w.finish(&mut fw).unwrap();
    let skipped = copy_other_keys(&f, tree, &mut fw).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    fw.finish().unwrap();
    t.entries
}

/// uproot's values of every branch of `tree` ({branch: {type, values}}).
fn uproot_values(file: &Path, tree: &str) -> serde_json::Value {
    let out = testutil::script("write_cases.py", &["values", s(file), tree]);
    serde_json::from_str(out.trim()).unwrap()
}

/// The checks every decorated copy passes: ROOT reads every object of the input the same from
/// the copy (trees branch by branch over every entry, other objects as TBufferJSON, directory
/// titles), uproot lists the same keys and reads every branch, the key layout is ROOT's, the
/// original baskets are the same bytes, and uproot reads every original branch equal to the
/// input and the new one equal to what was written.
fn check_copy(input: &Path, out: &Path, tree: &str, entries: u64) -> String {
    let same = testutil::script(
        "verify_written.py",
        &[
            "same-objects",
            s(input),
            s(out),
            "--decorated",
            tree,
            "--new",
            "hepml_score",
        ],
    );
    let layout = testutil::script("verify_written.py", &["layout", s(out)]);
    let baskets = testutil::script("root_check.py", &["same-baskets", s(input), s(out), tree]);
    let (a, mut b) = (uproot_values(input, tree), uproot_values(out, tree));
    let score = b
        .as_object_mut()
        .unwrap()
        .remove("hepml_score")
        .expect("uproot reads hepml_score");
    assert_eq!(a, b, "uproot reads the original branches differently");
    let Data::F32(want) = scores(entries).data else {
        unreachable!()
    };
    let want: Vec<String> = want
        .iter()
        .map(|&x| format!("{:?}", f64::from(x)))
        .collect();
    let got: Vec<String> = score["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{:?}", hex_float(h.as_str().unwrap())))
        .collect();
    assert_eq!(got, want, "uproot's hepml_score");
    format!(
        "{} {} baskets {}; {} branches equal in uproot",
        same.trim(),
        layout.trim(),
        baskets.trim(),
        a.as_object().unwrap().len()
    )
}

/// Parses Python's `float.hex()` (`0x1.8p+1`, `-0x0.0p+0`, `nan`, `inf`).
fn hex_float(h: &str) -> f64 {
    let (neg, h) = h.strip_prefix('-').map_or((false, h), |r| (true, r));
    let v = match h {
        "nan" => f64::NAN,
        "inf" => f64::INFINITY,
        _ => {
            let h = h.strip_prefix("0x").expect("hex float");
            let (mant, exp) = h.split_once('p').expect("hex float exponent");
            let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
            let mut m = u64::from_str_radix(int, 16).unwrap() as f64;
            for (k, c) in frac.chars().enumerate() {
                m += c.to_digit(16).unwrap() as f64 / 16f64.powi(k as i32 + 1);
            }
            m * 2f64.powi(exp.parse::<i32>().unwrap())
        }
    };
    if neg {
        -v
    } else {
        v
    }
}

/// A file whose only tree is in a directory, next to a tree in a subdirectory of it, an empty
/// directory and objects two directories deep: the decorated copy has the tree where it was,
/// and every directory (empty ones too, with their titles) and object as ROOT and uproot read
/// them in the input.
#[test]
fn decorated_copy_keeps_directories_and_the_trees_in_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("dirs.root");
    testutil::script("write_cases.py", &["make-dirs", s(&input)]);
    let out = dir.path().join("deco_dirs.root");
    let n = decorate(&input, "data/events", &out);
    let f = RootFile::open(&out).unwrap();
    assert_eq!(f.tree_paths().unwrap(), ["data/events", "data/more/aux"]);
    let t = f.tree("data/events").unwrap();
    let got = BranchReader::new(&f, &t, t.branch("hepml_score").unwrap())
        .unwrap()
        .read(0, n)
        .unwrap();
    assert_eq!(got, scores(n));
    let summary = check_copy(&input, &out, "data/events", n);
    eprintln!("directories: {summary}");
    // Decorating the tree one level deeper keeps the first one too.
    let out2 = dir.path().join("deco_aux.root");
    let n2 = decorate(&input, "data/more/aux", &out2);
    eprintln!("deeper: {}", check_copy(&input, &out2, "data/more/aux", n2));
}
