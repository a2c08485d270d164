//! Writer checks against files real ROOT 6.40 wrote (scripts/write_cases.py): decorated copies
//! of trees inside directories, cluster ranges of new trees, Float16_t/Double32_t branches.
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
        outer: Vec::new(),
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

/// The columns of write_cases.py's cluster tree for entries `a..b`: x = 1.1 i, n = i % 4,
/// v[n] = i + j.
fn cluster_columns(a: u64, b: u64) -> [Array; 3] {
    let e = b - a;
    let counts: Vec<u64> = (a..b).map(|i| i % 4).collect();
    let mut offsets = vec![0usize];
    let mut v = Vec::new();
    for (i, &c) in (a..b).zip(&counts) {
        v.extend((0..c).map(|j| (i + j) as f32));
        offsets.push(v.len());
    }
    let col = |prim, shape, data, offsets| Array {
        interp: Interp { prim, shape },
        start: 0,
        entries: e,
        data,
        offsets,
        outer: Vec::new(),
    };
    [
        col(
            Prim::F64,
            Shape::Scalar,
            Data::F64((a..b).map(|i| 1.1 * i as f64).collect()),
            None,
        ),
        col(
            Prim::I32,
            Shape::Scalar,
            Data::I32(counts.iter().map(|&c| c as i32).collect()),
            None,
        ),
        col(
            Prim::F32,
            Shape::Var {
                counter: "n".into(),
                inner: vec![],
            },
            Data::F32(v),
            Some(offsets),
        ),
    ]
}

fn clusters_json(file: &Path) -> serde_json::Value {
    let out = testutil::script("write_cases.py", &["clusters", s(file), "t"]);
    serde_json::from_str(out.trim()).unwrap()
}

fn u64s(v: &serde_json::Value) -> Vec<u64> {
    serde_json::from_value(v.clone()).unwrap()
}

/// A new tree filled with `TreeWriter::flush_cluster` calls records the cluster ranges ROOT
/// records for the same `TTree::FlushBaskets()` calls (fNClusterRange, fClusterRangeEnd,
/// fClusterSize, fAutoFlush), for auto-flush by entries, off, and by bytes; ROOT's cluster
/// iterator and uproot see the same cluster starts as in ROOT's own file, every branch starts
/// a basket there, and ROOT reads every branch as it reads ROOT's file.
#[test]
fn cluster_ranges_are_roots() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, i64, u64, &[u64]); 5] = [
        ("every300", 300, 2500, &[1000, 1100]),
        ("every300_on_boundary", 300, 2500, &[900, 1000, 1000]),
        ("off", 0, 2500, &[1000, 1100, 1100]),
        ("none_marked", 300, 2500, &[]),
        ("bytes", -20000, 20000, &[1000, 1100]),
    ];
    for (label, af, n, marks) in cases {
        let twin = dir.path().join(format!("root_{label}.root"));
        let mut args = vec![
            "make-clusters".to_string(),
            s(&twin).into(),
            af.to_string(),
            n.to_string(),
        ];
        args.extend(marks.iter().map(|m| m.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        testutil::script("write_cases.py", &args);

        let ours = dir.path().join(format!("hepml_{label}.root"));
        let mut fw = FileWriter::create(&ours, Compression::DEFAULT).unwrap();
        let specs = cluster_columns(0, 0).map(|a| a.interp);
        let names = ["x", "n", "v"];
        let specs: Vec<BranchSpec> = names
            .iter()
            .zip(specs)
            .map(|(name, i)| BranchSpec::new(name, i.prim, i.shape))
            .collect();
        let mut tw = rootio::write::TreeWriter::new(&mut fw, "t", "t", &specs).unwrap();
        tw.set_auto_flush(af).unwrap();
        let mut start = 0;
        for &m in marks.iter().chain([n].iter()) {
            // In chunks of 250 entries, so that the auto-flush by bytes settles mid-way.
            while start < m {
                let stop = m.min(start + 250);
                for (k, col) in cluster_columns(start, stop).iter().enumerate() {
                    tw.append(&mut fw, k, col).unwrap();
                }
                start = stop;
            }
            if m < n {
                tw.flush_cluster(&mut fw).unwrap();
            }
        }
        tw.finish(&mut fw).unwrap();
        fw.finish().unwrap();

        let (a, b) = (clusters_json(&twin), clusters_json(&ours));
        for m in ["fNClusterRange", "fClusterRangeEnd", "fClusterSize"] {
            assert_eq!(a[m], b[m], "{label}: {m}");
        }
        let (ra, rb) = (u64s(&a["root"]), u64s(&b["root"]));
        let last_range = marks.last().copied().unwrap_or(0);
        if af > 0 {
            assert_eq!(a["fAutoFlush"], b["fAutoFlush"], "{label}");
            assert_eq!(ra, rb, "{label}: ROOT's cluster starts");
            assert_eq!(a["uproot"], b["uproot"], "{label}: uproot's cluster starts");
        } else if af == 0 {
            // Past the last range ROOT estimates cluster sizes from the compressed bytes.
            assert_eq!(b["fAutoFlush"], 0);
            let upto = |r: &[u64]| {
                r.iter()
                    .copied()
                    .filter(|&e| e <= last_range)
                    .collect::<Vec<_>>()
            };
            assert_eq!(upto(&ra), upto(&rb), "{label}: ROOT's cluster starts");
        } else {
            // By bytes: the auto-flush ROOT settles on depends on the compressed sizes; the
            // clusters after the ranges have that many entries, from the last range on.
            let size = b["fAutoFlush"].as_u64().expect("a positive auto-flush");
            let mut want = vec![0, 1000, 1100];
            let mut e = 1100 + size;
            while e < n {
                want.push(e);
                e += size;
            }
            assert_eq!(
                rb, want,
                "{label}: ROOT's cluster starts (auto-flush {size})"
            );
            assert_eq!(&ra[..3], &want[..3], "{label}: ROOT's own ranges");
        }
        for (br, starts) in b["baskets"].as_object().unwrap() {
            let starts = u64s(starts);
            for e in rb.iter().filter(|&&e| af != 0 || e <= last_range) {
                assert!(
                    starts.contains(e),
                    "{label}: {br} baskets {starts:?}, cluster {e}"
                );
            }
        }
        let same = testutil::script("verify_written.py", &["same-objects", s(&twin), s(&ours)]);
        eprintln!(
            "{label}: ranges {} sizes {}, fAutoFlush {} (ROOT {}), {} ROOT clusters; {}",
            b["fClusterRangeEnd"],
            b["fClusterSize"],
            b["fAutoFlush"],
            a["fAutoFlush"],
            rb.len(),
            same.trim()
        );
    }
}

/// `flush_cluster` is refused where it cannot hold: branches filled unevenly, and a decorated
/// copy (which keeps the input's clusters).
#[test]
fn flush_cluster_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("uneven.root");
    let mut fw = FileWriter::create(&p, Compression::DEFAULT).unwrap();
    let specs = [
        BranchSpec::scalar("x", Prim::F64),
        BranchSpec::scalar("n", Prim::I32),
    ];
    let mut tw = rootio::write::TreeWriter::new(&mut fw, "t", "t", &specs).unwrap();
    let cols = cluster_columns(0, 10);
    tw.append(&mut fw, 0, &cols[0]).unwrap();
    let e = tw.flush_cluster(&mut fw).unwrap_err().to_string();
    assert!(e.contains("branch 'n' has 0 entries"), "{e}");

    let input = testutil::shared("root/uproot-HZZ.root");
    let f = RootFile::open(&input).unwrap();
    let t = f.tree("events").unwrap();
    let out = dir.path().join("deco.root");
    let mut fw = FileWriter::create(&out, Compression::DEFAULT).unwrap();
    let mut w = clone_tree(&f, &t, &mut fw, &[]).unwrap();
    let e = w.flush_cluster(&mut fw).unwrap_err().to_string();
    assert!(e.contains("decorated copy"), "{e}");
}

/// hepml reads every branch of `tree` in `a` the same from `b` (which may have more); returns
/// how many of them are Float16_t/Double32_t.
fn hepml_reads_the_same(a: &Path, b: &Path, tree: &str) -> usize {
    let (f, g) = (RootFile::open(a).unwrap(), RootFile::open(b).unwrap());
    let (t, u) = (f.tree(tree).unwrap(), g.tree(tree).unwrap());
    let mut packed = 0;
    for br in &t.branches {
        let x = BranchReader::new(&f, &t, br)
            .unwrap()
            .read(0, t.entries)
            .unwrap();
        let y = BranchReader::new(&g, &u, u.branch(&br.name).unwrap())
            .unwrap()
            .read(0, u.entries)
            .unwrap();
        assert_eq!(format!("{x:?}"), format!("{y:?}"), "{}", br.name);
        packed += usize::from(matches!(x.interp.prim, Prim::Packed { .. }));
    }
    packed
}

/// Float16_t and Double32_t leaves ROOT wrote (with and without ranges, a truncated mantissa,
/// an array counted by another branch) survive a decorated copy: the same basket bytes, the
/// same leaf classes and titles (uproot interprets them the same), the same values in ROOT,
/// uproot and hepml.
#[test]
fn decorated_copy_keeps_float16_and_double32_branches() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("packed.root");
    testutil::script("write_cases.py", &["make-packed", s(&input)]);
    let out = dir.path().join("deco_packed.root");
    let n = decorate(&input, "packed", &out);
    let summary = check_copy(&input, &out, "packed", n);
    assert_eq!(
        hepml_reads_the_same(&input, &out, "packed"),
        6,
        "the input's Float16_t/Double32_t branches"
    );
    eprintln!("packed: {summary}");
}

/// New Float16_t/Double32_t branches: hepml writes the values and types write_cases.py's
/// `make-packed` has ROOT write, and ROOT reads both files the same (every entry of every
/// branch), uproot interprets and reads them the same, and hepml reads back what ROOT stored.
#[test]
fn new_float16_and_double32_branches_encode_as_roots() {
    let dir = tempfile::tempdir().unwrap();
    let twin = dir.path().join("packed_root.root");
    testutil::script("write_cases.py", &["make-packed", s(&twin)]);
    let n = 2000u64;
    let sv: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1000) as f64 / 997.0).collect();
    let packed = |low: f64, high: f64, bits: u32, double: bool| Prim::Packed {
        low,
        high,
        bits,
        double,
    };
    let counts: Vec<u64> = (0..n).map(|i| i % 6).collect();
    let mut offsets = vec![0usize];
    let mut dv = Vec::new();
    for (i, &c) in counts.iter().enumerate() {
        dv.extend((0..c).map(|j| -sv[i] * j as f64 - 0.1 * i as f64));
        offsets.push(dv.len());
    }
    let f32s = |f: &dyn Fn(usize) -> f64| Data::F32((0..n as usize).map(|i| f(i) as f32).collect());
    let f64s = |f: &dyn Fn(usize) -> f64| Data::F64((0..n as usize).map(f).collect());
    let var = Shape::Var {
        counter: "n".into(),
        inner: vec![],
    };
    let cols: Vec<(BranchSpec, Data, Option<Vec<usize>>)> = vec![
        (
            BranchSpec::scalar("n", Prim::I32),
            Data::I32(counts.iter().map(|&c| c as i32).collect()),
            None,
        ),
        (
            BranchSpec::scalar("plain", Prim::F32),
            f32s(&|i| i as f64 * 0.1),
            None,
        ),
        (
            BranchSpec::scalar("h", packed(0.0, 0.0, 12, false)),
            f32s(&|i| 1000.0 * sv[i] - 300.0),
            None,
        ),
        (
            BranchSpec::scalar("hr", packed(-10.0, 10.0, 12, false)),
            f32s(&|i| 20.0 * sv[i] - 10.0),
            None,
        ),
        (
            BranchSpec::scalar("d", packed(0.0, 0.0, 0, true)),
            f64s(&|i| 1e6 * sv[i] - 123.456),
            None,
        ),
        (
            BranchSpec::scalar("dr", packed(0.0, 1.0, 20, true)),
            f64s(&|i| sv[i]),
            None,
        ),
        (
            BranchSpec::scalar("dt", packed(0.0, 0.0, 14, true)),
            f64s(&|i| sv[i] * 1e3),
            None,
        ),
        (
            BranchSpec::new("dv", packed(0.0, 0.0, 0, true), var),
            Data::F64(dv),
            Some(offsets),
        ),
    ];
    let ours = dir.path().join("packed_hepml.root");
    let mut fw = FileWriter::create(&ours, Compression::DEFAULT).unwrap();
    let specs: Vec<BranchSpec> = cols.iter().map(|c| c.0.clone()).collect();
    let mut tw = rootio::write::TreeWriter::new(
        &mut fw,
        "packed",
        "Float16_t and Double32_t leaves",
        &specs,
    )
    .unwrap();
    for (k, (spec, data, offsets)) in cols.iter().enumerate() {
        let a = Array {
            interp: spec.interp.clone(),
            start: 0,
            entries: n,
            data: data.clone(),
            offsets: offsets.clone(),
            outer: Vec::new(),
        };
        tw.append(&mut fw, k, &a).unwrap();
    }
    tw.finish(&mut fw).unwrap();
    fw.finish().unwrap();

    // ROOT: every branch of every entry reads the same from both files.
    let same = testutil::script("verify_written.py", &["same-objects", s(&twin), s(&ours)]);
    // uproot: the same interpretation and values.
    assert_eq!(
        uproot_values(&twin, "packed"),
        uproot_values(&ours, "packed")
    );
    // hepml: the same values from both.
    assert_eq!(hepml_reads_the_same(&twin, &ours, "packed"), 6);
    let layout = testutil::script("verify_written.py", &["layout", s(&ours)]);
    eprintln!("new packed branches: {} {}", same.trim(), layout.trim());
}

/// Float16_t/Double32_t types ROOT cannot store are refused when the branch is declared.
#[test]
fn impossible_packed_types_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut fw = FileWriter::create(dir.path().join("bad.root"), Compression::DEFAULT).unwrap();
    for (p, msg) in [
        (
            Prim::Packed {
                low: 0.0,
                high: 0.0,
                bits: 20,
                double: true,
            },
            "Double32_t with a truncated mantissa of 20 bits",
        ),
        (
            Prim::Packed {
                low: 1.0,
                high: 1.0 - 1e-9,
                bits: 10,
                double: false,
            },
            "Float16_t with range",
        ),
        (
            Prim::Packed {
                low: 0.0,
                high: f64::INFINITY,
                bits: 10,
                double: true,
            },
            "range [0,inf]",
        ),
    ] {
        let e = rootio::write::TreeWriter::new(&mut fw, "t", "", &[BranchSpec::scalar("x", p)])
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("branch 'x'") && e.contains(msg), "{e}");
    }
}

/// A split object whose members are Double32_t/Float16_t (with and without ranges, as class
/// members `Double32_t e; //[0,100,16]`): the decorated copy reads in ROOT leaf by leaf, every
/// entry, as the input does, and uproot reads every member equal to the input.
#[test]
fn decorated_copy_keeps_double32_class_members() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("class.root");
    testutil::script("write_cases.py", &["make-class", s(&input)]);
    let out = dir.path().join("deco_class.root");
    let n = decorate(&input, "hits", &out);
    let leaves = |p: &Path| -> serde_json::Value {
        let o = testutil::script("write_cases.py", &["leaves", s(p), "hits"]);
        serde_json::from_str(o.trim()).unwrap()
    };
    let (a, mut b) = (leaves(&input), leaves(&out));
    assert!(b["leaves"]
        .as_object_mut()
        .unwrap()
        .remove("hepml_score")
        .is_some());
    assert_eq!(a, b, "ROOT reads the members differently");
    let (x, mut y) = (uproot_values(&input, "hits"), uproot_values(&out, "hits"));
    assert!(y.as_object_mut().unwrap().remove("hepml_score").is_some());
    assert_eq!(x, y, "uproot reads the members differently");
    let layout = testutil::script("verify_written.py", &["layout", s(&out)]);
    eprintln!(
        "class members: {n} entries, {} ROOT leaves, {} uproot branches equal; {}",
        a["leaves"].as_object().unwrap().len(),
        x.as_object().unwrap().len(),
        layout.trim()
    );
}
