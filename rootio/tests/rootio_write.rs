//! Writer checks: files hepml writes are read back by hepml, uproot 5.7 and real ROOT 6.40
//! (scripts/root_check.py) with identical values and no ROOT error or warning; decorated copies
//! keep every original basket byte for byte.
//!
//! Longer than 800 lines on purpose: every test shares the fixtures at the top (arrays of every
//! type and shape, the hepml/uproot/ROOT comparisons); new trees and decorated copies are
//! written and checked by the same few helpers.

use rootio::write::{clone_tree, copy_other_keys, BranchSpec, FileWriter, TreeWriter};
use rootio::{
    write_array_json, Array, BasketSource, BranchReader, Compression, Data, Interp, Prim, RootFile,
    Shape,
};
use std::path::Path;

fn array(interp: &Interp, n: usize, data: Data, offsets: Option<Vec<usize>>) -> Array {
    Array {
        interp: interp.clone(),
        start: 0,
        entries: n as u64,
        data,
        offsets,
        outer: Vec::new(),
    }
}

fn offsets(counts: &[usize]) -> Vec<usize> {
    let mut o = vec![0];
    for c in counts {
        o.push(o.last().unwrap() + c);
    }
    o
}

const PRIMS: [Prim; 11] = [
    Prim::Bool,
    Prim::I8,
    Prim::U8,
    Prim::I16,
    Prim::U16,
    Prim::I32,
    Prim::U32,
    Prim::I64,
    Prim::U64,
    Prim::F32,
    Prim::F64,
];

/// `count` deterministic values of a type, with each type's extremes, NaN, infinities, -0.0
/// and subnormals mixed in.
fn values(p: Prim, count: usize, seed: usize) -> Data {
    let k = |i: usize| (i as u64 ^ (seed as u64) << 20).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7;
    let f = |i: usize| match (i + seed) % 97 {
        13 => f64::NAN,
        29 => f64::INFINITY,
        31 => f64::NEG_INFINITY,
        37 => -0.0,
        41 => 5e-324,
        43 => f64::MAX,
        _ => ((i + seed) as f64 * 0.37).sin() * 1e3,
    };
    macro_rules! ints {
        ($t:ty, $v:ident) => {
            Data::$v(
                (0..count)
                    .map(|i| match (i + seed) % 50 {
                        7 => <$t>::MIN,
                        11 => <$t>::MAX,
                        _ => k(i) as $t,
                    })
                    .collect(),
            )
        };
    }
    match p {
        Prim::Bool => Data::Bool((0..count).map(|i| k(i) % 3 == 0).collect()),
        Prim::I8 => ints!(i8, I8),
        Prim::U8 => ints!(u8, U8),
        Prim::I16 => ints!(i16, I16),
        Prim::U16 => ints!(u16, U16),
        Prim::I32 => ints!(i32, I32),
        Prim::U32 => ints!(u32, U32),
        Prim::I64 => ints!(i64, I64),
        Prim::U64 => ints!(u64, U64),
        Prim::F32 => Data::F32(
            (0..count)
                .map(|i| match (i + seed) % 97 {
                    41 => 1e-45,
                    43 => f32::MAX,
                    _ => f(i) as f32,
                })
                .collect(),
        ),
        Prim::F64 => Data::F64((0..count).map(f).collect()),
        Prim::Packed { .. } | Prim::Bits => unreachable!(),
    }
}

/// Every supported branch kind, `n` entries of deterministic data: each type as a scalar, a
/// fixed array, a variable array (counted by `nobj`) and a std::vector; 2-d fixed and
/// variable arrays; a second counter of another integer type; strings of up to ~300 bytes.
fn all_types(n: usize) -> Vec<(BranchSpec, Array)> {
    let mut v = Vec::new();
    let mut add = |spec: BranchSpec, data: Data, offs: Option<Vec<usize>>| {
        let a = array(&spec.interp, n, data, offs);
        v.push((spec, a));
    };
    let counts: Vec<usize> = (0..n).map(|i| (i * 7) % 5).collect();
    let tot: usize = counts.iter().sum();
    add(
        BranchSpec::scalar("nobj", Prim::I32),
        Data::I32(counts.iter().map(|&c| c as i32).collect()),
        None,
    );
    let small: Vec<usize> = (0..n).map(|i| (i * 3) % 4).collect();
    let stot: usize = small.iter().sum();
    add(
        BranchSpec::scalar("nsmall", Prim::I16),
        Data::I16(small.iter().map(|&c| c as i16).collect()),
        None,
    );
    for (s, &p) in PRIMS.iter().enumerate() {
        let t = p.name();
        add(
            BranchSpec::scalar(&format!("s_{t}"), p),
            values(p, n, s),
            None,
        );
        add(
            BranchSpec::new(&format!("a_{t}"), p, Shape::Fixed(vec![3])),
            values(p, 3 * n, s + 1),
            None,
        );
        add(
            BranchSpec::new(
                &format!("v_{t}"),
                p,
                Shape::Var {
                    counter: "nobj".into(),
                    inner: vec![],
                },
            ),
            values(p, tot, s + 2),
            Some(offsets(&counts)),
        );
        add(
            BranchSpec::new(&format!("vec_{t}"), p, Shape::Vector),
            values(p, stot, s + 3),
            Some(offsets(&small)),
        );
    }
    add(
        BranchSpec::new("m23", Prim::I16, Shape::Fixed(vec![2, 3])),
        values(Prim::I16, 6 * n, 5),
        None,
    );
    add(
        BranchSpec::new("m22", Prim::F64, Shape::Fixed(vec![2, 2])),
        values(Prim::F64, 4 * n, 6),
        None,
    );
    add(
        BranchSpec::new(
            "vr2",
            Prim::F32,
            Shape::Var {
                counter: "nobj".into(),
                inner: vec![2],
            },
        ),
        values(Prim::F32, 2 * tot, 7),
        Some(offsets(&counts)),
    );
    add(
        BranchSpec::new(
            "vs",
            Prim::U64,
            Shape::Var {
                counter: "nsmall".into(),
                inner: vec![],
            },
        ),
        values(Prim::U64, stot, 8),
        Some(offsets(&small)),
    );
    let mut s = Vec::new();
    let mut so = vec![0];
    for i in 0..n {
        let t = format!("event {i} {}", "x".repeat(i % 300));
        s.extend_from_slice(t.as_bytes());
        so.push(s.len());
    }
    add(
        BranchSpec::new("str", Prim::U8, Shape::String { header: false }),
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
        outer: Vec::new(),
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
                t.branch("s_float64").unwrap().baskets.len() > 1
                    && t.branch("str").unwrap().baskets.len() > 3,
                "{c}"
            );
            let stored = rootio::Compression::from_setting(f.compress).unwrap();
            assert_eq!(stored, Compression::parse(c).unwrap());
        }
        let exp = dir.path().join(format!("new_{c}_{n}.json"));
        let named: Vec<(String, &Array)> = cols.iter().map(|(s, a)| (s.name.clone(), a)).collect();
        expected_json(&named, &exp);
        let out = testutil::script(
            "root_check.py",
            &[
                "compare",
                p.to_str().unwrap(),
                "events",
                exp.to_str().unwrap(),
            ],
        );
        let layout = testutil::script("verify_written.py", &["layout", p.to_str().unwrap()]);
        eprintln!(
            "{c} {n} entries: {} bytes; ROOT+uproot {} ; layout {}",
            std::fs::metadata(&p).unwrap().len(),
            out.trim(),
            layout.trim()
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
        outer: Vec::new(),
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
    assert!(copy_other_keys(&f, tree, &mut fw).unwrap().is_empty());
    fw.finish().unwrap();
}

/// ROOT reads every original branch of the copy exactly as it reads the input (per-branch
/// checksums over all entries) and the new branch too, with no warning; uproot reads every
/// branch; the key layout is ROOT's.
fn check_same_objects(input: &Path, out: &Path, tree: &str, gaps: bool) -> String {
    let same = testutil::script(
        "verify_written.py",
        &[
            "same-objects",
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            "--decorated",
            tree,
            "--new",
            "hepml_score",
        ],
    );
    let mut args = vec!["layout", out.to_str().unwrap()];
    if gaps {
        args.push("--allow-gaps");
    }
    let layout = testutil::script("verify_written.py", &args);
    format!("{} {}", same.trim(), layout.trim())
}

fn check_decorated(input: &Path, tree: &str, out: &Path, also: &str) {
    // Originals: same compressed basket bytes and values; new branch and one original read by
    // ROOT and uproot.
    let baskets = testutil::script(
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
    testutil::script(
        "root_check.py",
        &[
            "compare",
            out.to_str().unwrap(),
            tree,
            exp.to_str().unwrap(),
        ],
    );
    let same = check_same_objects(input, out, tree, false);
    eprintln!(
        "{}: {} -> {} bytes; baskets {}; {same}",
        input.file_name().unwrap().to_string_lossy(),
        std::fs::metadata(input).unwrap().len(),
        std::fs::metadata(out).unwrap().len(),
        baskets.trim()
    );
}

const DECORATED: [(&str, &str, &str); 8] = [
    ("uproot-HZZ.root", "events", "Jet_Px"),
    ("uproot-HZZ-zlib.root", "events", "Electron_Px"),
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
];

#[test]
fn decorated_copies_keep_original_baskets_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    for (name, tree, also) in DECORATED {
        let input = testutil::shared(&format!("root/{name}"));
        let before = std::fs::read(&input).unwrap();
        let out = dir.path().join(format!("deco_{name}"));
        decorate(&input, tree, &out, false);
        check_decorated(&input, tree, &out, also);
        // The input is untouched.
        assert!(std::fs::read(&input).unwrap() == before, "{name} changed");
    }
}

/// A basket of 512 kB or more has its payload copied from file to file by the kernel, smaller
/// ones pass through memory: a decorated copy of a tree with both (written by uproot, one 2.3 MB
/// basket) keeps every basket byte for byte and every value, and so does one beyond 2 GB,
/// where the large basket's key grows and its payload is read whole.
#[test]
fn decorated_copies_of_large_baskets() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big_baskets.root");
    testutil::script(
        "write_cases.py",
        &["make-big-baskets", input.to_str().unwrap()],
    );
    let f = RootFile::open(&input).unwrap();
    let t = f.tree("events").unwrap();
    let sizes: Vec<u32> = t
        .branch("x")
        .unwrap()
        .baskets
        .iter()
        .filter_map(|b| match b.source {
            BasketSource::Disk { nbytes, .. } => Some(nbytes),
            BasketSource::Embedded(_) => None,
        })
        .collect();
    assert!(
        sizes.iter().any(|&n| n >= 512 * 1024) && sizes.iter().any(|&n| n < 512 * 1024),
        "{sizes:?}"
    );
    let out = dir.path().join("deco_big_baskets.root");
    decorate(&input, "events", &out, false);
    check_decorated(&input, "events", &out, "x");
    let far = dir.path().join("far_big_baskets.root");
    decorate(&input, "events", &far, true);
    let g = RootFile::open(&far).unwrap();
    let gt = g.tree("events").unwrap();
    for b in ["x", "n"] {
        let x = BranchReader::new(&f, &t, t.branch(b).unwrap())
            .unwrap()
            .read(0, t.entries)
            .unwrap();
        let y = BranchReader::new(&g, &gt, gt.branch(b).unwrap())
            .unwrap()
            .read(0, gt.entries)
            .unwrap();
        assert_eq!(x, y, "{b}");
    }
    check_same_objects(&input, &far, "events", true);
}

/// Past 2 GB every seek is 64-bit: a sparse file whose data starts beyond 2^31 exercises the
/// big header, directory and keys, and the upgrade of 32-bit basket keys (with the entry
/// offsets of jagged branches shifted, recompressed with the basket's own algorithm) — for
/// every compression, NanoAOD's embedded baskets and ROOT-written jagged leaves; read by
/// uproot and ROOT exactly as the inputs are.
#[test]
fn big_file_layout_beyond_2gb() {
    let dir = tempfile::tempdir().unwrap();
    for (name, tree, _) in DECORATED {
        let input = testutil::shared(&format!("root/{name}"));
        let out = dir.path().join(format!("big_{name}"));
        decorate(&input, tree, &out, true);
        let f = RootFile::open(&out).unwrap();
        assert!(f.len > 2_100_000_000 && f.version == 64000, "{name}");
        let t = f.tree(tree).unwrap();
        // Values (not bytes: the keys grew) must equal the input's.
        let g = RootFile::open(&input).unwrap();
        let gt = g.tree(tree).unwrap();
        let mut disk = 0;
        for b in &gt.branches {
            let Ok(x) = BranchReader::new(&g, &gt, b).and_then(|mut r| r.read(0, gt.entries))
            else {
                continue; // (a branch hepml does not interpret)
            };
            let tb = t.branch(&b.name).unwrap();
            for l in &tb.baskets {
                if let BasketSource::Disk { seek, .. } = l.source {
                    assert!(seek > 2_000_000_000, "{name}: {} basket at {seek}", b.name);
                    disk += 1;
                }
            }
            let y = BranchReader::new(&f, &t, tb)
                .unwrap()
                .read(0, t.entries)
                .unwrap();
            assert_eq!(format!("{x:?}"), format!("{y:?}"), "{name}: {}", b.name);
        }
        assert!(disk > 0);
        let same = check_same_objects(&input, &out, tree, true);
        eprintln!(
            "{name} beyond 2 GB: {} bytes; {disk} baskets; {same}",
            f.len
        );
    }

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
    testutil::script(
        "root_check.py",
        &[
            "compare",
            new.to_str().unwrap(),
            "events",
            exp.to_str().unwrap(),
        ],
    );
    testutil::script(
        "verify_written.py",
        &["layout", new.to_str().unwrap(), "--allow-gaps"],
    );
}

/// Histograms (with two cycles), a TObjString, a second tree, directories two deep with a
/// tree inside, all written by ROOT: a decorated copy of the top tree has every other object
/// where it was and equal as ROOT reads it; decorating the tree in the subdirectory keeps it
/// there.
#[test]
fn decorated_copies_keep_other_objects_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mixed.root");
    testutil::script(
        "verify_written.py",
        &["make-mixed", input.to_str().unwrap()],
    );
    for tree in ["events", "plots/deep/inner"] {
        let out = dir
            .path()
            .join(format!("deco_{}.root", tree.replace('/', "_")));
        decorate(&input, tree, &out, false);
        let f = RootFile::open(&out).unwrap();
        let t = f.tree(tree).unwrap();
        assert!(t.branch("hepml_score").is_ok());
        let same = check_same_objects(&input, &out, tree, false);
        let baskets = testutil::script(
            "root_check.py",
            &[
                "same-baskets",
                input.to_str().unwrap(),
                out.to_str().unwrap(),
                tree,
            ],
        );
        eprintln!("mixed, decorating {tree}: {same}; {}", baskets.trim());
    }
    // The same with the copy placed beyond 2 GB.
    let out = dir.path().join("deco_big_mixed.root");
    decorate(&input, "plots/deep/inner", &out, true);
    let same = check_same_objects(&input, &out, "plots/deep/inner", true);
    eprintln!("mixed beyond 2 GB: {same}");
}

/// The streamer list of a new file holds exactly the classes ROOT itself writes for the same
/// branches; a decorated copy keeps the input's list and adds only what the new branches
/// need.
#[test]
fn streamer_lists_match_roots() {
    let dir = tempfile::tempdir().unwrap();
    let twin = dir.path().join("twin_root.root");
    testutil::script("verify_written.py", &["make-twin", twin.to_str().unwrap()]);
    let ours = dir.path().join("twin_hepml.root");
    let mut fw = FileWriter::create(&ours, Compression::DEFAULT).unwrap();
    let specs = [
        BranchSpec::scalar("x", Prim::F32),
        BranchSpec::scalar("n", Prim::I32),
        BranchSpec::new(
            "v",
            Prim::F32,
            Shape::Var {
                counter: "n".into(),
                inner: vec![],
            },
        ),
        BranchSpec::new("vec", Prim::F64, Shape::Vector),
        BranchSpec::new("s", Prim::U8, Shape::String { header: false }),
    ];
    TreeWriter::new(&mut fw, "t", "t", &specs)
        .unwrap()
        .finish(&mut fw)
        .unwrap();
    fw.finish().unwrap();
    let classes = |p: &Path| {
        let mut v: Vec<(String, i32)> = RootFile::open(p)
            .unwrap()
            .streamer_classes()
            .into_iter()
            .map(|(name, version, _)| (name, version))
            .collect();
        v.sort();
        v
    };
    assert_eq!(classes(&ours), classes(&twin));

    // Decorating a ROOT 6.20 file: its 6.20 list first, unchanged, then what it lacked.
    let input = testutil::shared("root/uproot-sample-6.20.04-zlib.root");
    let out = dir.path().join("deco.root");
    decorate(&input, "sample", &out, false);
    let a = RootFile::open(&input).unwrap();
    let b = RootFile::open(&out).unwrap();
    let (a, b) = (a.streamer_classes(), b.streamer_classes());
    let n = a.len();
    assert!(b.len() >= n);
    assert_eq!(a[..], b[..n], "the input's list comes first, unchanged");
    eprintln!(
        "new: {} classes as ROOT; 6.20 copy: {n} + {} classes",
        classes(&ours).len(),
        b.len() - n
    );
}

/// Filling one entry at a time, with clusters every 300 entries (TTree::SetAutoFlush(300)),
/// and by chunks with the byte-based auto-flush: every branch starts a basket where ROOT's
/// cluster iterator and uproot see a cluster start.
#[test]
fn event_by_event_filling_and_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let n = 2500;
    let cols = all_types(n);
    let specs: Vec<BranchSpec> = cols.iter().map(|(s, _)| s.clone()).collect();
    for (label, flush, chunk) in [
        ("every300", 300i64, 1usize),
        ("bytes", -60_000, 250),
        ("off", 0, 1000),
    ] {
        let p = dir.path().join(format!("clusters_{label}.root"));
        let mut fw = FileWriter::create(&p, Compression::DEFAULT).unwrap();
        let mut tw = TreeWriter::new(&mut fw, "events", "", &specs).unwrap();
        tw.set_auto_flush(flush).unwrap();
        for start in (0..n).step_by(chunk) {
            let stop = (start + chunk).min(n);
            for (k, (_, a)) in cols.iter().enumerate() {
                tw.append(&mut fw, k, &slice(a, start, stop)).unwrap();
            }
        }
        tw.finish(&mut fw).unwrap();
        fw.finish().unwrap();
        check_with_hepml(&p, &cols);
        let out = testutil::script(
            "verify_written.py",
            &["clusters", p.to_str().unwrap(), "events"],
        );
        let c: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let root: Vec<u64> = serde_json::from_value(c["root"].clone()).unwrap();
        let up: Vec<u64> = serde_json::from_value(c["uproot"].clone()).unwrap();
        let af = c["autoflush"].as_i64().unwrap();
        let want: Vec<u64> = match flush {
            0 => vec![0],
            f if f > 0 => (0..n as u64).step_by(f as usize).collect(),
            _ => {
                assert!(af > 0 && af % chunk as i64 == 0, "auto-flush {af}");
                (0..n as u64).step_by(af as usize).collect()
            }
        };
        if flush > 0 {
            assert_eq!(af, flush);
        }
        assert_eq!(root, want, "{label}: ROOT clusters");
        for (b, starts) in c["baskets"].as_object().unwrap() {
            let starts: Vec<u64> = serde_json::from_value(starts.clone()).unwrap();
            assert!(
                want.iter().all(|w| starts.contains(w)),
                "{label}: {b} baskets {starts:?}"
            );
        }
        assert!(
            want.iter().all(|w| up.contains(w)),
            "{label}: uproot {up:?}"
        );
        let exp = dir.path().join(format!("clusters_{label}.json"));
        let named: Vec<(String, &Array)> = cols.iter().map(|(s, a)| (s.name.clone(), a)).collect();
        expected_json(&named, &exp);
        testutil::script(
            "root_check.py",
            &[
                "compare",
                p.to_str().unwrap(),
                "events",
                exp.to_str().unwrap(),
            ],
        );
        eprintln!("{label}: fAutoFlush {af}, ROOT clusters {}", root.len());
    }
}

/// Each branch with its own compression: its fCompress and every basket's block header say
/// so, and ROOT and uproot read the values.
#[test]
fn per_branch_compression() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mixed_compression.root");
    let n = 20_000;
    let algos = ["none", "zlib-6", "lzma-2", "lz4", "zstd-3"];
    let mut fw = FileWriter::create(&p, Compression::parse("zstd-5").unwrap()).unwrap();
    let mut specs = vec![BranchSpec::scalar("file_default", Prim::F64)];
    for a in algos {
        specs.push(
            BranchSpec::scalar(&format!("x_{}", a.replace('-', "_")), Prim::F64)
                .with_compression(Compression::parse(a).unwrap()),
        );
    }
    let mut tw = TreeWriter::new(&mut fw, "events", "", &specs).unwrap();
    let data = array(
        &specs[0].interp,
        n,
        Data::F64((0..n).map(|i| (i / 7) as f64 * 0.5).collect()),
        None,
    );
    for k in 0..specs.len() {
        tw.append(&mut fw, k, &data).unwrap();
    }
    tw.finish(&mut fw).unwrap();
    fw.finish().unwrap();
    let f = RootFile::open(&p).unwrap();
    let t = f.tree("events").unwrap();
    let mut cols = Vec::new();
    for (spec, c) in specs.iter().zip(std::iter::once("zstd-5").chain(algos)) {
        let c = Compression::parse(c).unwrap();
        let b = t.branch(&spec.name).unwrap();
        assert_eq!(b.compress, c.setting(), "{}", spec.name);
        assert!(b.baskets.len() > 2);
        for l in &b.baskets {
            assert!(
                matches!(l.source, BasketSource::Disk { .. }),
                "embedded basket"
            );
            // An uncompressed basket (setting `none`) has no algorithm.
            let want = Some(c.algorithm).filter(|a| *a != rootio::Algorithm::None);
            assert_eq!(f.basket_algorithm(l).unwrap(), want, "{}", spec.name);
        }
        assert_eq!(f.branch_compression(b).unwrap().to_string(), c.to_string());
        cols.push((spec.name.clone(), data.clone()));
    }
    let exp = dir.path().join("mixed_compression.json");
    let named: Vec<(String, &Array)> = cols.iter().map(|(s, a)| (s.clone(), a)).collect();
    expected_json(&named, &exp);
    testutil::script(
        "root_check.py",
        &[
            "compare",
            p.to_str().unwrap(),
            "events",
            exp.to_str().unwrap(),
        ],
    );
}

#[test]
fn friend_tree_is_usable_with_addfriend() {
    let dir = tempfile::tempdir().unwrap();
    let input = testutil::shared("root/uproot-Zmumu.root");
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
    let out_s = testutil::script(
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
            outer: Vec::new(),
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
    let input = testutil::shared("root/uproot-Zmumu.root");
    let f = RootFile::open(&input).unwrap();
    let t = f.tree("events").unwrap();
    let mut fw = FileWriter::create(&out, Compression::DEFAULT).unwrap();
    let mut w = clone_tree(&f, &t, &mut fw, &[BranchSpec::scalar("s", Prim::F32)]).unwrap();
    w.append(&mut fw, 0, &score_array(10)).unwrap();
    assert!(w.finish(&mut fw).is_err());
}

/// Inconsistent input is an error (never a panic, never a file ROOT and uproot would read
/// differently): counters that disagree with the arrays they count, offsets out of order or
/// past the data, data of the wrong type or length, a variable array before its counter,
/// names ROOT cannot take, branches added after filling, too many entries for a copy.
#[test]
fn inconsistent_input_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bad.root");
    let var = |counter: &str| {
        BranchSpec::new(
            "v",
            Prim::F32,
            Shape::Var {
                counter: counter.into(),
                inner: vec![],
            },
        )
    };
    let n_spec = BranchSpec::scalar("n", Prim::I32);
    let counts = |c: &[i32]| array(&n_spec.interp, c.len(), Data::I32(c.to_vec()), None);
    let rows = |o: Vec<usize>, len: usize| {
        array(
            &var("n").interp,
            o.len() - 1,
            Data::F32(vec![1.0; len]),
            Some(o),
        )
    };
    let err = |r: rootio::Result<()>| r.unwrap_err().to_string();
    {
        let mut fw = FileWriter::create(&out, Compression::DEFAULT).unwrap();
        // The counter says 2 then 1; the array has 2 then 2.
        let mut tw = TreeWriter::new(&mut fw, "t", "", &[n_spec.clone(), var("n")]).unwrap();
        tw.append(&mut fw, 0, &counts(&[2, 1])).unwrap();
        let e = err(tw.append(&mut fw, 1, &rows(vec![0, 2, 4], 4)));
        assert!(e.contains("counter 'n' says 1"), "{e}");
    }
    {
        // Array first, counter later: caught when the counter arrives.
        let mut fw = FileWriter::create(&out, Compression::DEFAULT).unwrap();
        let mut tw = TreeWriter::new(&mut fw, "t", "", &[n_spec.clone(), var("n")]).unwrap();
        tw.append(&mut fw, 1, &rows(vec![0, 2, 3], 3)).unwrap();
        let e = err(tw.append(&mut fw, 0, &counts(&[2, 2])));
        assert!(e.contains("has 1 rows"), "{e}");
        // Offsets out of order, past the data, data of another type or length.
        let e = err(tw.append(&mut fw, 1, &rows(vec![0, 3, 2], 3)));
        assert!(e.contains("offsets"), "{e}");
        let e = err(tw.append(&mut fw, 1, &rows(vec![0, 2, 9], 3)));
        assert!(e.contains("data has 3 values"), "{e}");
        let mut wrong = rows(vec![0, 1], 1);
        wrong.data = Data::F64(vec![1.0]);
        assert!(err(tw.append(&mut fw, 1, &wrong)).contains("data"));
        let short = array(&n_spec.interp, 3, Data::I32(vec![1]), None);
        assert!(err(tw.append(&mut fw, 0, &short)).contains("need 3 values"));
        let e = err(tw
            .add_branch(&fw, &BranchSpec::scalar("late", Prim::F32))
            .map(|_| ()));
        assert!(e.contains("after entries"), "{e}");
    }
    {
        let mut fw = FileWriter::create(&out, Compression::DEFAULT).unwrap();
        let e = TreeWriter::new(&mut fw, "t", "", &[var("n")])
            .err()
            .unwrap();
        assert!(e.to_string().contains("declare it first"), "{e}");
        let e = TreeWriter::new(&mut fw, "t", "", &[BranchSpec::scalar("a/b", Prim::F32)])
            .err()
            .unwrap();
        assert!(e.to_string().contains("branch name"), "{e}");
        let f = BranchSpec::scalar("f", Prim::F32);
        let e = TreeWriter::new(&mut fw, "t", "", &[f, var("f")])
            .err()
            .unwrap();
        assert!(e.to_string().contains("integer scalar"), "{e}");
        let e = TreeWriter::new(
            &mut fw,
            "t",
            "",
            &[BranchSpec::new("z", Prim::F32, Shape::Fixed(vec![0]))],
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("dimensions"), "{e}");
    }
    {
        // A copy refuses entries beyond the input's.
        let input = testutil::shared("root/uproot-Zmumu.root");
        let f = RootFile::open(&input).unwrap();
        let t = f.tree("events").unwrap();
        let mut fw = FileWriter::create(&out, Compression::DEFAULT).unwrap();
        let mut w = clone_tree(&f, &t, &mut fw, &[BranchSpec::scalar("s", Prim::F32)]).unwrap();
        assert!(w.append(&mut fw, 0, &score_array(t.entries + 1)).is_err());
    }
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temporary file left behind"
    );
}
