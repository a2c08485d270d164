//! Writer checks: files hepml writes are read back by hepml, uproot 5.7 and real ROOT 6.40
//! (scripts/root_check.py) with identical values and no ROOT error or warning; decorated copies
//! keep every original basket byte for byte.

mod common;

use injector::rootio::json::write_array_json;
use injector::rootio::write::{clone_tree, copy_other_keys, BranchSpec, FileWriter, TreeWriter};
use injector::rootio::{Array, BranchReader, Compression, Data, Interp, Prim, RootFile, Shape};
use std::path::Path;

fn array(interp: &Interp, n: usize, data: Data, offsets: Option<Vec<usize>>) -> Array {
    Array {
        interp: interp.clone(),
        start: 0,
        entries: n as u64,
        data,
        offsets,
    }
}

fn offsets(counts: &[usize]) -> Vec<usize> {
    let mut o = vec![0];
    for c in counts {
        o.push(o.last().unwrap() + c);
    }
    o
}

/// Every supported branch kind, `n` entries of deterministic data with NaN/inf and extremes.
fn all_types(n: usize) -> Vec<(BranchSpec, Array)> {
    let mut v = Vec::new();
    let mut add = |spec: BranchSpec, data: Data, offs: Option<Vec<usize>>| {
        let a = array(&spec.interp, n, data, offs);
        v.push((spec, a));
    };
    let f = |i: usize| match i % 97 {
        13 => f64::NAN,
        29 => f64::INFINITY,
        31 => f64::NEG_INFINITY,
        _ => (i as f64 * 0.37).sin() * 1e3,
    };
    add(
        BranchSpec::scalar("b", Prim::Bool),
        Data::Bool((0..n).map(|i| i % 3 == 0).collect()),
        None,
    );
    add(
        BranchSpec::scalar("i1", Prim::I8),
        Data::I8((0..n).map(|i| (i % 256) as u8 as i8).collect()),
        None,
    );
    add(
        BranchSpec::scalar("u1", Prim::U8),
        Data::U8((0..n).map(|i| (i % 256) as u8).collect()),
        None,
    );
    add(
        BranchSpec::scalar("i2", Prim::I16),
        Data::I16(
            (0..n)
                .map(|i| (i as i64 * 7919 % 65536 - 32768) as i16)
                .collect(),
        ),
        None,
    );
    add(
        BranchSpec::scalar("u2", Prim::U16),
        Data::U16((0..n).map(|i| (i * 7919 % 65536) as u16).collect()),
        None,
    );
    add(
        BranchSpec::scalar("i4", Prim::I32),
        Data::I32((0..n).map(|i| i as i32 * -104729).collect()),
        None,
    );
    add(
        BranchSpec::scalar("u4", Prim::U32),
        Data::U32((0..n).map(|i| u32::MAX - i as u32).collect()),
        None,
    );
    add(
        BranchSpec::scalar("i8", Prim::I64),
        Data::I64((0..n).map(|i| i64::MIN + i as i64 * 1_000_003).collect()),
        None,
    );
    add(
        BranchSpec::scalar("u8", Prim::U64),
        Data::U64((0..n).map(|i| u64::MAX - i as u64 * 3).collect()),
        None,
    );
    add(
        BranchSpec::scalar("f4", Prim::F32),
        Data::F32((0..n).map(|i| f(i) as f32).collect()),
        None,
    );
    add(
        BranchSpec::scalar("f8", Prim::F64),
        Data::F64((0..n).map(f).collect()),
        None,
    );
    add(
        BranchSpec::new("a3", Prim::F32, Shape::Fixed(vec![3])),
        Data::F32((0..3 * n).map(|i| f(i) as f32).collect()),
        None,
    );
    add(
        BranchSpec::new("m23", Prim::I16, Shape::Fixed(vec![2, 3])),
        Data::I16((0..6 * n).map(|i| (i % 30000) as i16).collect()),
        None,
    );
    let counts: Vec<usize> = (0..n).map(|i| (i * 7) % 5).collect();
    let tot: usize = counts.iter().sum();
    add(
        BranchSpec::scalar("nobj", Prim::I32),
        Data::I32(counts.iter().map(|&c| c as i32).collect()),
        None,
    );
    add(
        BranchSpec::new(
            "obj_pt",
            Prim::F32,
            Shape::Var {
                counter: "nobj".into(),
                inner: vec![],
            },
        ),
        Data::F32((0..tot).map(|i| f(i) as f32).collect()),
        Some(offsets(&counts)),
    );
    add(
        BranchSpec::new(
            "obj_id",
            Prim::U8,
            Shape::Var {
                counter: "nobj".into(),
                inner: vec![],
            },
        ),
        Data::U8((0..tot).map(|i| (i % 200) as u8).collect()),
        Some(offsets(&counts)),
    );
    let vc: Vec<usize> = (0..n).map(|i| (i * 3) % 4).collect();
    let vt: usize = vc.iter().sum();
    add(
        BranchSpec::new("vd", Prim::F64, Shape::Vector),
        Data::F64((0..vt).map(f).collect()),
        Some(offsets(&vc)),
    );
    add(
        BranchSpec::new("vi", Prim::I32, Shape::Vector),
        Data::I32((0..vt).map(|i| i as i32 - 50).collect()),
        Some(offsets(&vc)),
    );
    let mut s = Vec::new();
    let mut so = vec![0];
    for i in 0..n {
        let t = format!("event {i} {}", "x".repeat(i % 300));
        s.extend_from_slice(t.as_bytes());
        so.push(s.len());
    }
    add(
        BranchSpec::new("s", Prim::U8, Shape::String { header: false }),
        Data::U8(s),
        Some(so),
    );
    v
}

fn write_new(path: &Path, c: Compression, n: usize) -> Vec<(BranchSpec, Array)> {
    let cols = all_types(n);
    let mut fw = FileWriter::create(path, c).unwrap();
    let specs: Vec<BranchSpec> = cols.iter().map(|(s, _)| s.clone()).collect();
    let mut tw = TreeWriter::new(&mut fw, "events", "hepml test tree", &specs).unwrap();
    // Fill in chunks, as a pipeline does.
    let chunk = 7001;
    for start in (0..n).step_by(chunk) {
        let stop = (start + chunk).min(n);
        for (k, (_, a)) in cols.iter().enumerate() {
            tw.append(&mut fw, k, &slice(a, start, stop)).unwrap();
        }
    }
    tw.finish(&mut fw).unwrap();
    fw.finish().unwrap();
    cols
}

/// Entries [a, b) of an array.
fn slice(a: &Array, s: usize, e: usize) -> Array {
    let w = a.interp.item_len();
    let (lo, hi) = match &a.offsets {
        Some(o) => (o[s], o[e]),
        None => (s * w, e * w),
    };
    let rw = match &a.interp.shape {
        Shape::Var { inner, .. } => inner.iter().product::<usize>().max(1),
        _ => 1,
    };
    macro_rules! cut {
        ($v:expr, $k:ident) => {
            Data::$k($v[lo * rw..hi * rw].to_vec())
        };
    }
    let data = match &a.data {
        Data::Bool(v) => cut!(v, Bool),
        Data::I8(v) => cut!(v, I8),
        Data::U8(v) => cut!(v, U8),
        Data::I16(v) => cut!(v, I16),
        Data::U16(v) => cut!(v, U16),
        Data::I32(v) => cut!(v, I32),
        Data::U32(v) => cut!(v, U32),
        Data::I64(v) => cut!(v, I64),
        Data::U64(v) => cut!(v, U64),
        Data::F32(v) => cut!(v, F32),
        Data::F64(v) => cut!(v, F64),
    };
    let offsets = a
        .offsets
        .as_ref()
        .map(|o| o[s..=e].iter().map(|x| x - lo).collect());
    Array {
        interp: a.interp.clone(),
        start: s as u64,
        entries: (e - s) as u64,
        data,
        offsets,
    }
}

fn expected_json(cols: &[(String, &Array)], path: &Path) {
    let mut out = String::from("{\"branches\":{");
    for (i, (name, a)) in cols.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{}:", serde_json::Value::String(name.clone())));
        write_array_json(a, &mut out);
    }
    out.push_str("}}");
    std::fs::write(path, out).unwrap();
}

fn check_with_hepml(path: &Path, cols: &[(BranchSpec, Array)]) {
    let f = RootFile::open(path).unwrap();
    let t = f.tree("events").unwrap();
    for (spec, a) in cols {
        let b = t.branch(&spec.name).unwrap();
        let got = BranchReader::new(&f, &t, b)
            .unwrap()
            .read(0, t.entries)
            .unwrap();
        assert_eq!(
            format!("{:?}", got.data),
            format!("{:?}", a.data),
            "{}",
            spec.name
        );
        assert_eq!(
            got.offsets.as_ref().map(|o| o.len()),
            a.offsets.as_ref().map(|o| o.len()),
            "{}",
            spec.name
        );
    }
}

#[test]
fn new_trees_of_every_type_and_compression_read_back_in_uproot_and_root() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases = vec![];
    for c in ["none", "zlib-1", "lzma-4", "lz4", "zstd-5"] {
        cases.push((c, 6_000));
    }
    cases.push(("zlib-1", 0));
    cases.push(("zstd-5", 1));
    for (c, n) in cases {
        let p = dir.path().join(format!("new_{c}_{n}.root"));
        let cols = write_new(&p, Compression::parse(c).unwrap(), n);
        check_with_hepml(&p, &cols);
        let f = RootFile::open(&p).unwrap();
        let t = f.tree("events").unwrap();
        assert_eq!(t.entries, n as u64);
        if n == 6_000 {
            // Many baskets per branch.
            assert!(
                t.branch("f8").unwrap().baskets.len() > 1
                    && t.branch("s").unwrap().baskets.len() > 3,
                "{c}"
            );
            let stored = injector::rootio::Compression::from_setting(f.compress).unwrap();
            assert_eq!(stored, Compression::parse(c).unwrap());
        }
        let exp = dir.path().join(format!("new_{c}_{n}.json"));
        let named: Vec<(String, &Array)> = cols.iter().map(|(s, a)| (s.name.clone(), a)).collect();
        expected_json(&named, &exp);
        common::run_script(
            "root_check.py",
            &[
                "compare",
                p.to_str().unwrap(),
                "events",
                exp.to_str().unwrap(),
            ],
        );
    }
}

/// Scores for a decorated copy: a function of the entry number.
fn score_array(n: u64) -> Array {
    let interp = Interp {
        prim: Prim::F32,
        shape: Shape::Scalar,
    };
    Array {
        interp,
        start: 0,
        entries: n,
        data: Data::F32((0..n).map(|i| (i as f32 * 0.731).sin()).collect()),
        offsets: None,
    }
}

fn decorate(input: &Path, tree: &str, out: &Path, big: bool) {
    let f = RootFile::open(input).unwrap();
    let t = f.tree(tree).unwrap();
    let mut fw = FileWriter::create(out, Compression::DEFAULT).unwrap();
    if big {
        fw.skip_to(2_100_000_000);
    }
    let spec = BranchSpec::scalar("hepml_score", Prim::F32);
    let mut w = clone_tree(&f, &t, &mut fw, std::slice::from_ref(&spec)).unwrap();
    // Fill in two pieces.
    let a = score_array(t.entries);
    let half = t.entries / 2;
    let (p, q) = (
        slice(&a, 0, half as usize),
        slice(&a, half as usize, t.entries as usize),
    );
    w.append(&mut fw, 0, &p).unwrap();
    w.append(&mut fw, 0, &q).unwrap();
    w.finish(&mut fw).unwrap();
    copy_other_keys(&f, tree, &mut fw).unwrap();
    fw.finish().unwrap();
}

fn check_decorated(input: &Path, tree: &str, out: &Path, also: &str) {
    // Originals: same compressed basket bytes and values; new branch and one original read by
    // ROOT and uproot.
    common::run_script(
        "root_check.py",
        &[
            "same-baskets",
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            tree,
        ],
    );
    let f = RootFile::open(out).unwrap();
    let t = f.tree(tree).unwrap();
    let score = BranchReader::new(&f, &t, t.branch("hepml_score").unwrap())
        .unwrap()
        .read(0, t.entries)
        .unwrap();
    assert_eq!(score, score_array(t.entries));
    let orig = BranchReader::new(&f, &t, t.branch(also).unwrap())
        .unwrap()
        .read(0, t.entries)
        .unwrap();
    let dir = out.parent().unwrap();
    let exp = dir.join(format!(
        "{}.json",
        out.file_name().unwrap().to_string_lossy()
    ));
    expected_json(
        &[("hepml_score".into(), &score), (also.into(), &orig)],
        &exp,
    );
    common::run_script(
        "root_check.py",
        &[
            "compare",
            out.to_str().unwrap(),
            tree,
            exp.to_str().unwrap(),
        ],
    );
}

#[test]
fn decorated_copies_keep_original_baskets_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    for (name, tree, also) in [
        ("uproot-HZZ.root", "events", "Jet_Px"),
        ("uproot-HZZ-lz4.root", "events", "Muon_Px"),
        ("uproot-HZZ-zstd.root", "events", "NJet"),
        ("uproot-HZZ-lzma.root", "events", "Photon_Px"),
        ("uproot-HZZ-uncompressed.root", "events", "MET_px"),
        (
            "nanoAOD_2015_CMS_Open_Data_ttbar.root",
            "Events",
            "LHEPdfWeight",
        ),
        ("uproot-sample-6.20.04-zlib.root", "sample", "Af8"),
    ] {
        let input = common::shared(&format!("root/{name}"));
        let out = dir.path().join(format!("deco_{name}"));
        decorate(&input, tree, &out, false);
        check_decorated(&input, tree, &out, also);
        // The input is untouched.
        assert_eq!(
            std::fs::read(&input).unwrap(),
            std::fs::read(&input).unwrap()
        );
    }
}

/// Past 2 GB every seek is 64-bit: a sparse file whose data starts beyond 2^31 exercises the
/// big header, directory and keys, and the upgrade of 32-bit basket keys (with the entry
/// offsets of jagged branches shifted) — read by uproot and ROOT.
#[test]
fn big_file_layout_beyond_2gb() {
    let dir = tempfile::tempdir().unwrap();
    let input = common::shared("root/uproot-HZZ-zlib.root");
    let out = dir.path().join("big_deco.root");
    decorate(&input, "events", &out, true);
    let f = RootFile::open(&out).unwrap();
    assert!(f.end > 2_100_000_000 && f.version == 64000);
    let t = f.tree("events").unwrap();
    let px = t.branch("Jet_Px").unwrap();
    assert!(px.baskets.iter().all(|l| matches!(l.source, injector::rootio::tree::BasketSource::Disk { seek, .. } if seek > 2_000_000_000)));
    // Values (not bytes: the keys grew) must equal the input's.
    let g = RootFile::open(&input).unwrap();
    let gt = g.tree("events").unwrap();
    for b in &gt.branches {
        let x = BranchReader::new(&g, &gt, b)
            .unwrap()
            .read(0, gt.entries)
            .unwrap();
        let y = BranchReader::new(&f, &t, t.branch(&b.name).unwrap())
            .unwrap()
            .read(0, t.entries)
            .unwrap();
        assert_eq!(format!("{x:?}"), format!("{y:?}"), "{}", b.name);
    }
    let exp = dir.path().join("big.json");
    let score = score_array(t.entries);
    let jet = BranchReader::new(&f, &t, px)
        .unwrap()
        .read(0, t.entries)
        .unwrap();
    expected_json(
        &[("hepml_score".into(), &score), ("Jet_Px".into(), &jet)],
        &exp,
    );
    common::run_script(
        "root_check.py",
        &[
            "compare",
            out.to_str().unwrap(),
            "events",
            exp.to_str().unwrap(),
        ],
    );

    let new = dir.path().join("big_new.root");
    let cols = all_types(3000);
    let mut fw = FileWriter::create(&new, Compression::parse("zstd").unwrap()).unwrap();
    fw.skip_to(2_200_000_000);
    let specs: Vec<BranchSpec> = cols.iter().map(|(s, _)| s.clone()).collect();
    let mut tw = TreeWriter::new(&mut fw, "events", "", &specs).unwrap();
    for (k, (_, a)) in cols.iter().enumerate() {
        tw.append(&mut fw, k, a).unwrap();
    }
    tw.finish(&mut fw).unwrap();
    fw.finish().unwrap();
    check_with_hepml(&new, &cols);
    let exp = dir.path().join("big_new.json");
    let named: Vec<(String, &Array)> = cols.iter().map(|(s, a)| (s.name.clone(), a)).collect();
    expected_json(&named, &exp);
    common::run_script(
        "root_check.py",
        &[
            "compare",
            new.to_str().unwrap(),
            "events",
            exp.to_str().unwrap(),
        ],
    );
}

#[test]
fn friend_tree_is_usable_with_addfriend() {
    let dir = tempfile::tempdir().unwrap();
    let input = common::shared("root/uproot-Zmumu.root");
    let f = RootFile::open(&input).unwrap();
    let t = f.tree("events").unwrap();
    let out = dir.path().join("friend.root");
    let mut fw = FileWriter::create(&out, Compression::DEFAULT).unwrap();
    let spec = BranchSpec::scalar("hepml_score", Prim::F32);
    let mut tw = TreeWriter::new(
        &mut fw,
        "scores",
        "hepml scores",
        std::slice::from_ref(&spec),
    )
    .unwrap();
    tw.append(&mut fw, 0, &score_array(t.entries)).unwrap();
    tw.finish(&mut fw).unwrap();
    fw.finish().unwrap();
    let out_s = common::run_script(
        "root_check.py",
        &[
            "friend",
            input.to_str().unwrap(),
            "events",
            out.to_str().unwrap(),
            "scores",
            "hepml_score",
        ],
    );
    let want: f64 = match score_array(t.entries).data {
        Data::F32(v) => v.iter().map(|&x| x as f64).sum(),
        _ => unreachable!(),
    };
    let got: serde_json::Value = serde_json::from_str(out_s.trim()).unwrap();
    assert!(
        (got["sums"]["hepml_score"].as_f64().unwrap() - want).abs() < 1e-6,
        "{got}"
    );
}

#[test]
fn unfinished_or_failed_writes_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.root");
    {
        let mut fw = FileWriter::create(&out, Compression::DEFAULT).unwrap();
        let spec = BranchSpec::scalar("a", Prim::F32);
        let mut tw = TreeWriter::new(&mut fw, "t", "", &[spec]).unwrap();
        // Wrong type: an error, and the writer is dropped unfinished.
        let wrong = Array {
            interp: Interp {
                prim: Prim::F64,
                shape: Shape::Scalar,
            },
            start: 0,
            entries: 1,
            data: Data::F64(vec![1.0]),
            offsets: None,
        };
        assert!(tw.append(&mut fw, 0, &wrong).is_err());
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temporary file left behind"
    );
    // Branches with different entry counts cannot be finished.
    let mut fw = FileWriter::create(&out, Compression::DEFAULT).unwrap();
    let specs = [
        BranchSpec::scalar("a", Prim::F32),
        BranchSpec::scalar("b", Prim::F32),
    ];
    let mut tw = TreeWriter::new(&mut fw, "t", "", &specs).unwrap();
    tw.append(&mut fw, 0, &score_array(5)).unwrap();
    tw.append(&mut fw, 1, &score_array(4)).unwrap();
    let e = tw.finish(&mut fw).unwrap_err().to_string();
    assert!(e.contains("entries"), "{e}");
    drop(fw);
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // A decorated copy must get exactly the input's entry count.
    let input = common::shared("root/uproot-Zmumu.root");
    let f = RootFile::open(&input).unwrap();
    let t = f.tree("events").unwrap();
    let mut fw = FileWriter::create(&out, Compression::DEFAULT).unwrap();
    let mut w = clone_tree(&f, &t, &mut fw, &[BranchSpec::scalar("s", Prim::F32)]).unwrap();
    w.append(&mut fw, 0, &score_array(10)).unwrap();
    assert!(w.finish(&mut fw).is_err());
}
