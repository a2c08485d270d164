//! Reader checks on the real reference files (values against uproot are checked by the Python
//! gate, scripts/check_read.py, run from tests/read_gate.rs).

use rootio::{BranchReader, RootFile, Shape};

/// Structure facts uproot also reports, checked on a few files (entries, types, baskets).
#[test]
fn known_structure_of_reference_files() {
    let f = RootFile::open(testutil::shared("root/uproot-HZZ.root")).unwrap();
    let t = f.tree("events").unwrap();
    assert_eq!(t.entries, 2421);
    assert_eq!(t.branches.len(), 51);
    let px = t.branch("Jet_Px").unwrap();
    let i = px.interp.as_ref().unwrap();
    assert_eq!(i.type_name(), "float32[]");
    assert_eq!(
        i.shape,
        Shape::Var {
            counter: "NJet".into(),
            inner: vec![]
        }
    );

    let f = RootFile::open(testutil::shared(
        "root/nanoAOD_2015_CMS_Open_Data_ttbar.root",
    ))
    .unwrap();
    let t = f.tree("Events").unwrap();
    assert_eq!(t.entries, 200);
    let b = t.branch("LHEPdfWeight").unwrap();
    // The NanoAOD file keeps its only basket inside the TBranch record.
    assert!(b
        .baskets
        .iter()
        .any(|l| matches!(l.source, rootio::BasketSource::Embedded(_))));
    let mut r = BranchReader::new(&f, &t, b).unwrap();
    let a = r.read(0, 200).unwrap();
    let n = t.branch("nLHEPdfWeight").unwrap();
    let counts = BranchReader::new(&f, &t, n).unwrap().read(0, 200).unwrap();
    for e in 0..200 {
        assert_eq!(
            a.entry_range(e).len() as f64,
            counts.data.get_f64(e),
            "entry {e}"
        );
    }
    // Entry 0 holds real weights near 1, not garbage (the value oxyroot got wrong).
    let w0 = a.data.get_f64(a.entry_range(0).start);
    assert!((0.5..1.5).contains(&w0), "LHEPdfWeight[0][0] = {w0}");

    // A leaf list (x/D:y/I:z/B) is a container of one column per leaf; the columns are
    // distinct slices of the same entries.
    let f = RootFile::open(testutil::shared("root/uproot-leaflist.root")).unwrap();
    let t = f.tree("tree").unwrap();
    let ll = t.branch("leaflist").unwrap();
    assert!(ll.container, "{:?}", ll.interp);
    assert!(BranchReader::new(&f, &t, ll).is_err());
    let col = |n: &str| {
        let b = t.branch(n).unwrap();
        BranchReader::new(&f, &t, b)
            .unwrap()
            .read(0, t.entries)
            .unwrap()
    };
    let (x, y, z) = (col("leaflist.x"), col("leaflist.y"), col("leaflist.z"));
    assert_eq!(x.interp.type_name(), "float64");
    assert_eq!(y.interp.type_name(), "int32");
    assert_eq!(z.interp.type_name(), "int8");
    assert_eq!(x.entries, t.entries);
    assert_ne!(x.data.get_f64(1), y.data.get_f64(1));
}

/// Reading a sub-range equals the same entries of a full read, across basket boundaries.
#[test]
fn ranges_match_full_reads() {
    let f = RootFile::open(testutil::shared("root/uproot-sample-6.20.04-zlib.root")).unwrap();
    let t = f.tree("sample").unwrap();
    for b in &t.branches {
        let mut r = BranchReader::new(&f, &t, b).unwrap();
        let full = r.read(0, t.entries).unwrap();
        for (a, z) in [(0, 1), (3, 17), (7, 30), (29, 30), (12, 12)] {
            let part = r.read(a, z).unwrap();
            assert_eq!(part.entries, z - a);
            for e in 0..(z - a) as usize {
                let pr = part.entry_range(e);
                let fr = full.entry_range(e + a as usize);
                assert_eq!(pr.len(), fr.len(), "{} entry {}", b.name, e as u64 + a);
                for (x, y) in pr.zip(fr) {
                    let (u, v) = (part.data.get_f64(x), full.data.get_f64(y));
                    assert!(
                        u == v || (u.is_nan() && v.is_nan()),
                        "{} entry {}",
                        b.name,
                        e as u64 + a
                    );
                }
            }
        }
        assert!(r.read(0, t.entries + 1).is_err());
    }
}

/// Reads everything readable; returns the number of branches read without error.
fn read_all(path: &std::path::Path) -> Result<usize, String> {
    let f = RootFile::open(path).map_err(|e| e.to_string())?;
    let mut ok = 0;
    for tp in f.tree_paths().map_err(|e| e.to_string())? {
        let t = f.tree(&tp).map_err(|e| e.to_string())?;
        for b in &t.branches {
            // A branch whose bookkeeping is corrupt is listed as unreadable, not an error of
            // the tree: that counts as the corruption noticed.
            if b.interp
                .as_ref()
                .is_err_and(|why| why.contains("malformed"))
            {
                return Err(format!("branch {}: {:?}", b.name, b.interp));
            }
            if let Ok(mut r) = BranchReader::new(&f, &t, b) {
                if r.read(0, b.entries).is_ok() {
                    ok += 1;
                }
            }
        }
    }
    Ok(ok)
}

/// Truncations at spread-out points and `flips` random single-bit flips (half of them in the
/// tail, where ROOT keeps the streamer infos, the TTree and the keys list), each read in full
/// by [`read_all`]: (cases, errors). A panic fails the test.
fn corrupt_and_read(
    dir: &std::path::Path,
    name: &str,
    orig: &[u8],
    flips: usize,
    rng: &mut u64,
) -> (usize, usize) {
    let mut next = move || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    let (mut cases, mut errors) = (0, 0);
    let p = dir.join(name);
    let mut cuts: Vec<usize> = vec![0, 3, 10, 60, 100, 200, 500];
    cuts.extend((1..20).map(|i| orig.len() * i / 20));
    for cut in cuts {
        std::fs::write(&p, &orig[..cut.min(orig.len())]).unwrap();
        cases += 1;
        match std::panic::catch_unwind(|| read_all(&p)) {
            Ok(Err(_)) => errors += 1,
            Ok(Ok(_)) => {}
            Err(_) => panic!("{name} truncated at {cut}: reader panicked"),
        }
    }
    for k in 0..flips {
        let mut data = orig.to_vec();
        let pos = if k % 2 == 0 {
            (next() as usize) % data.len()
        } else {
            data.len() - 1 - (next() as usize) % (data.len() / 8)
        };
        data[pos] ^= 1 << (next() % 8);
        std::fs::write(&p, &data).unwrap();
        cases += 1;
        match std::panic::catch_unwind(|| read_all(&p)) {
            Ok(Err(_)) => errors += 1,
            Ok(Ok(_)) => {}
            Err(_) => panic!("{name} with bit flip at {pos}: reader panicked"),
        }
    }
    (cases, errors)
}

/// Deterministic corruption: truncated files and bit flips anywhere give errors (or, where the
/// flip lands in uncompressed payload bytes that no checksum covers, values), never a panic.
#[test]
fn corrupted_files_give_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut errors = 0;
    let mut cases = 0;
    for name in [
        "uproot-HZZ-zlib.root",
        "uproot-HZZ-lz4.root",
        "uproot-HZZ-zstd.root",
        "uproot-HZZ-lzma.root",
        "uproot-Zmumu-uncompressed.root",
        "uproot-sample-6.20.04-zlib.root",
        "uproot-small-flat-tree.root",
        "nanoAOD_2015_CMS_Open_Data_ttbar.root",
        "uproot-leaflist.root",
    ] {
        let orig = std::fs::read(testutil::shared(&format!("root/{name}"))).unwrap();
        let (c, e) = corrupt_and_read(dir.path(), name, &orig, 60, &mut rng);
        cases += c;
        errors += e;
    }
    // Most corruptions must be noticed (truncations always are).
    assert!(
        errors * 3 > cases,
        "only {errors} of {cases} corruptions reported"
    );
}

/// The same on split objects (containers, members resolved through shared counter leaves,
/// Double32_t ranges from streamer elements), a leaf list and an undecoded branch, written by
/// ROOT 6.40 (scripts/gen_split_file.py): errors, never a panic.
#[test]
fn corrupted_split_objects_give_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("split.root");
    testutil::script("gen_split_file.py", &[path.to_str().unwrap()]);
    let orig = std::fs::read(&path).unwrap();
    assert!(read_all(&path).unwrap() >= 17);
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let (cases, errors) = corrupt_and_read(dir.path(), "corrupt.root", &orig, 300, &mut rng);
    // Every one of the 26 truncations is noticed; a flip in a title, a streamer info (the
    // tree falls back on ROOT's own) or an uncompressed value may legitimately not be.
    assert!(
        errors >= 26,
        "only {errors} of {cases} corruptions reported"
    );
}

/// A chain of several files reads as their concatenation, in chunks that never straddle files.
#[test]
fn chain_reads_files_in_order_in_chunks() {
    use rootio::{Chain, Chunk};
    let paths = [
        testutil::shared("root/uproot-HZZ-zlib.root"),
        testutil::shared("root/uproot-HZZ-lz4.root"),
        testutil::shared("root/uproot-HZZ-zstd.root"),
    ];
    let chain = Chain::open(&paths, "events").unwrap();
    assert_eq!(chain.entries(), 3 * 2421);
    let names = vec!["NJet".to_string(), "Jet_Px".to_string()];
    let mut it = chain.chunks(&names, 1000).unwrap();
    let mut c = Chunk::new();
    let (mut total, mut jets, mut njet_sum) = (0u64, 0usize, 0f64);
    let mut last_global = 0;
    while it.next_into(&mut c).unwrap() {
        assert!(c.len() <= 1000 && c.stop <= 2421);
        assert_eq!(c.global_start, last_global);
        last_global += c.len() as u64;
        total += c.len() as u64;
        jets += c.arrays[1].data.len();
        njet_sum += (0..c.len())
            .map(|i| c.arrays[0].data.get_f64(i))
            .sum::<f64>();
    }
    assert_eq!(total, 3 * 2421);
    assert_eq!(jets as f64, njet_sum);
    // A missing branch or tree is an error naming it.
    let e = chain
        .chunks(&["nope".to_string()], 10)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("nope"), "{e}");
    assert!(Chain::open(&paths, "nothere").is_err());
}

/// Decoding branches on several threads gives exactly the single-threaded arrays.
#[test]
fn threaded_chunks_equal_single_threaded() {
    use rootio::{Chain, Chunk};
    let path = testutil::shared("root/nanoAOD_2015_CMS_Open_Data_ttbar.root");
    let chain = Chain::open(&[&path], "Events").unwrap();
    let names: Vec<String> = chain.members[0]
        .tree
        .branches
        .iter()
        .filter(|b| b.interp.is_ok())
        .map(|b| b.name.clone())
        .take(300)
        .collect();
    let collect = |threads| {
        let mut it = chain.chunks(&names, 64).unwrap().threads(threads);
        let mut c = Chunk::new();
        let mut all = Vec::new();
        while it.next_into(&mut c).unwrap() {
            all.push(c.arrays.clone());
        }
        all
    };
    let one = collect(1);
    assert_eq!(one.len(), 4); // 200 entries in chunks of 64
                              // Compared through Debug text: bit-level equality that treats NaN like any other value
                              // (NanoAOD has NaNs, and NaN != NaN under PartialEq).
    assert!(
        one != one || format!("{one:?}").contains("NaN"),
        "sanity: the data has NaNs"
    );
    assert_eq!(format!("{one:?}"), format!("{:?}", collect(3)));
}

/// A bad basket read on several threads: the chunk is an error that names the file, whichever
/// thread meets it, and the threads that share the chunk stop (no panic, no hang, no values).
#[test]
fn threaded_chunks_report_a_bad_basket() {
    use rootio::BasketSource;
    let src = testutil::shared("root/uproot-HZZ-uncompressed.root");
    let mut data = std::fs::read(&src).unwrap();
    let f = RootFile::open(&src).unwrap();
    let t = f.tree("events").unwrap();
    let names: Vec<String> = t
        .branches
        .iter()
        .filter(|b| b.interp.is_ok())
        .map(|b| b.name.clone())
        .collect();
    assert!(names.len() > 20, "{} branches", names.len());
    // The first basket of a jagged branch in the middle of the list: its entry offsets'
    // count set to -1, which the reader must refuse.
    let b = t
        .branches
        .iter()
        .filter(|b| matches!(b.interp.as_ref().map(|i| &i.shape), Ok(Shape::Var { .. })))
        .nth(5)
        .unwrap();
    let BasketSource::Disk { seek, .. } = b.baskets[0].source else {
        panic!("{}: first basket not on disk", b.name)
    };
    let seek = seek as usize;
    let k = i16::from_be_bytes(data[seek + 14..seek + 16].try_into().unwrap()) as usize;
    let last = i32::from_be_bytes(data[seek + k - 5..seek + k - 1].try_into().unwrap()) as usize;
    data[seek + last..seek + last + 4].copy_from_slice(&(-1i32).to_be_bytes());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad-basket.root");
    std::fs::write(&p, &data).unwrap();
    let chain = rootio::Chain::open(&[&p], "events").unwrap();
    for threads in [1, 2, 3, 8] {
        let mut it = chain.chunks(&names, 10_000).unwrap().threads(threads);
        let mut c = rootio::Chunk::new();
        let e = it.next_into(&mut c).err();
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("bad-basket.root"),
            "{threads} threads: '{msg}'"
        );
    }
}

/// Structured corruption of the fields that delimit entries, not random bytes: in an
/// uncompressed file (the offsets lie in the file as written), every basket of every jagged
/// branch gets its header fields (fNbytes, fObjlen, fKeylen, fNevBuf, fLast) and its entry
/// offsets (reversed, swapped, duplicated, negative, outside the basket, a wrong count) changed
/// one at a time. Each read must give the original values or an error: never a panic, never
/// other values. Offsets that run backwards or leave the basket must be errors.
#[test]
fn structured_corruption_of_basket_headers_and_offsets() {
    use rootio::BasketSource;
    let src = testutil::shared("root/uproot-HZZ-uncompressed.root");
    let orig = std::fs::read(&src).unwrap();
    let f = RootFile::open(&src).unwrap();
    let t = f.tree("events").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mutated.root");
    let be32 = |d: &[u8], at: usize| i32::from_be_bytes(d[at..at + 4].try_into().unwrap());
    let put32 = |d: &mut [u8], at: usize, v: i32| d[at..at + 4].copy_from_slice(&v.to_be_bytes());
    let put16 = |d: &mut [u8], at: usize, v: i16| d[at..at + 2].copy_from_slice(&v.to_be_bytes());
    let (mut cases, mut errors, mut must_fail) = (0, 0, 0);
    for b in t
        .branches
        .iter()
        .filter(|b| matches!(b.interp.as_ref().map(|i| &i.shape), Ok(Shape::Var { .. })))
    {
        let want = BranchReader::new(&f, &t, b)
            .unwrap()
            .read(0, b.entries)
            .unwrap();
        for loc in &b.baskets {
            let BasketSource::Disk { seek, .. } = loc.source else {
                continue;
            };
            let seek = seek as usize;
            let keylen = i16::from_be_bytes(orig[seek + 14..seek + 16].try_into().unwrap());
            let k = keylen as usize;
            let (nev_at, last_at) = (seek + k - 9, seek + k - 5);
            let (nev, last) = (be32(&orig, nev_at), be32(&orig, last_at));
            let offs_at = seek + last as usize;
            assert_eq!(be32(&orig, offs_at), nev + 1, "{}: offset count", b.name);
            let off = move |i: usize| offs_at + 4 + 4 * i;
            let stored: Vec<i32> = (0..nev as usize).map(|i| be32(&orig, off(i))).collect();
            // (mutation, whether the reader must refuse it)
            type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
            let mut muts: Vec<(String, Mutation, bool)> = Vec::new();
            for (name, at, delta) in [
                ("fNbytes", seek, 1),
                ("fNbytes", seek, -1),
                ("fObjlen", seek + 6, 1),
                ("fObjlen", seek + 6, -1),
                ("fNevBuf", nev_at, 1),
                ("fNevBuf", nev_at, -1),
                ("fLast", last_at, 4),
                ("fLast", last_at, -4),
                ("fLast", last_at, -(last - keylen as i32) - 1),
            ] {
                muts.push((
                    format!("{name} {delta:+}"),
                    Box::new(move |d: &mut Vec<u8>| {
                        let v = i32::from_be_bytes(d[at..at + 4].try_into().unwrap());
                        d[at..at + 4].copy_from_slice(&(v + delta).to_be_bytes());
                    }),
                    false,
                ));
            }
            for delta in [-1i16, 1, -40] {
                muts.push((
                    format!("fKeylen {delta:+}"),
                    Box::new(move |d: &mut Vec<u8>| put16(d, seek + 14, keylen + delta)),
                    false,
                ));
            }
            muts.push((
                "offset count -1".into(),
                Box::new(move |d: &mut Vec<u8>| put32(d, offs_at, -1)),
                true,
            ));
            muts.push((
                "offset count short".into(),
                Box::new(move |d: &mut Vec<u8>| put32(d, offs_at, nev - 1)),
                nev > 0,
            ));
            let n = stored.len();
            let distinct = stored.windows(2).any(|w| w[0] != w[1]);
            if n >= 2 && distinct {
                let s = stored.clone();
                muts.push((
                    "offsets reversed".into(),
                    Box::new(move |d: &mut Vec<u8>| {
                        for (i, v) in s.iter().rev().enumerate() {
                            put32(d, off(i), *v);
                        }
                    }),
                    true,
                ));
                let i = (1..n).find(|&i| stored[i] != stored[i - 1]).unwrap();
                let s = stored.clone();
                muts.push((
                    format!("offsets {} and {i} swapped", i - 1),
                    Box::new(move |d: &mut Vec<u8>| {
                        put32(d, off(i - 1), s[i]);
                        put32(d, off(i), s[i - 1]);
                    }),
                    true,
                ));
            }
            if n >= 1 {
                let mid = n / 2;
                for (what, v) in [
                    ("negative", i32::MIN),
                    ("-1", -1),
                    ("inside the key", keylen as i32 - 1),
                    ("past fLast", last + 1),
                    ("far past the basket", i32::MAX),
                ] {
                    muts.push((
                        format!("offset {mid} {what}"),
                        Box::new(move |d: &mut Vec<u8>| put32(d, off(mid), v)),
                        true,
                    ));
                }
            }
            for (what, mutate, refuse) in muts {
                let mut data = orig.clone();
                mutate(&mut data);
                std::fs::write(&p, &data).unwrap();
                cases += 1;
                let got = std::panic::catch_unwind(|| {
                    let f = RootFile::open(&p).map_err(|e| e.to_string())?;
                    let t = f.tree("events").map_err(|e| e.to_string())?;
                    let b = t.branch(&b.name).map_err(|e| e.to_string())?;
                    BranchReader::new(&f, &t, b)
                        .and_then(|mut r| r.read(0, b.entries))
                        .map_err(|e| e.to_string())
                });
                let ctx = format!("{} basket at {seek}, {what}", b.name);
                match got {
                    Err(_) => panic!("{ctx}: reader panicked"),
                    Ok(Err(_)) => errors += 1,
                    Ok(Ok(a)) => {
                        assert!(!refuse, "{ctx}: read without an error");
                        assert!(a == want, "{ctx}: read other values without an error");
                    }
                }
                must_fail += usize::from(refuse);
            }
        }
    }
    assert!(
        cases > 100 && errors >= must_fail,
        "{cases} cases, {errors} errors"
    );
}

/// Float16_t/Double32_t values are what ROOT itself reads (its `GetRange` and
/// `ReadWithFactor`), to the bit, for every form of range: 32 bits (scaled by 0xffffffff, not
/// 2^32), fewer bits, a Float16_t range (computed in double, rounded once), the ends of pi, an
/// empty range below 15 bits (a truncated mantissa) and from 15 bits (the plain form).
#[test]
fn packed_floats_read_as_root_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ranges.root");
    let out = testutil::script("write_cases.py", &["make-ranges", path.to_str().unwrap()]);
    let root: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    let root = root["values"].as_object().unwrap();
    assert_eq!(root.len(), 10, "{out}");
    let f = RootFile::open(&path).unwrap();
    let t = f.tree("ranges").unwrap();
    for (name, want) in root {
        let a = BranchReader::new(&f, &t, t.branch(name).unwrap())
            .unwrap()
            .read(0, t.entries)
            .unwrap();
        let got: Vec<u64> = (0..a.data.len())
            .map(|i| a.data.get_f64(i).to_bits())
            .collect();
        let want: Vec<u64> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(got.len(), 3000, "{name}");
        let bad: Vec<usize> = (0..got.len()).filter(|&i| got[i] != want[i]).collect();
        assert!(
            bad.is_empty(),
            "{name}: {} of 3000 values differ from ROOT's, first at entry {}: {} != {}",
            bad.len(),
            bad[0],
            f64::from_bits(got[bad[0]]),
            f64::from_bits(want[bad[0]])
        );
    }
}
