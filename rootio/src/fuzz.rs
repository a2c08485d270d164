//! Structured fuzzing of basket headers and entry offsets, deterministic (a seeded RNG): real
//! baskets from the reference files get one field set to a hostile value at a time (the key's
//! fNbytes, fObjlen and fKeylen; the TBasket's fNevBufSize, fNevBuf and fLast; the entry-offset
//! count and values: reversed, swapped, duplicated, out of range, negative), then the whole
//! branch is read. Every read must give the original values or an error: never a panic, never
//! other values. Offsets that run backwards or leave the basket must be errors.
//!
//! Embedded baskets (kept inside the TBranch record, NanoAOD) are mutated in the tree object
//! and the tree is rebuilt from it, as if the file held those bytes; on-disk baskets of the
//! uncompressed reference files are mutated in a copy of the file; the bookkeeping that says
//! where baskets are (fWriteBasket, fBasketEntry/Seek/Bytes, the recovered-tree form with
//! seek 0) is mutated in the tree object.

use crate::object::{Body, Ptr};
use crate::read::{Array, BranchReader};
use crate::tree::{branch_object_mut, BasketSource, Shape, Tree};
use crate::RootFile;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// splitmix64: a fixed sequence from a seed, so that a failure is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn get32(d: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(d[at..at + 4].try_into().expect("4 bytes"))
}
fn put32(d: &mut [u8], at: usize, v: i32) {
    d[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Where the fields of one basket lie in a byte buffer (relative to the basket's start).
struct Layout {
    keylen: usize,
    nev: usize,
    last: i32,
    /// Position of the entry-offset count (then one i32 per entry), if the basket has one.
    offsets: Option<usize>,
}

impl Layout {
    fn of(raw: &[u8], embedded: bool) -> Layout {
        let keylen = i16::from_be_bytes([raw[14], raw[15]]) as usize;
        let nev = get32(raw, keylen - 9).max(0) as usize;
        let last = get32(raw, keylen - 5);
        // Embedded: count and offsets right after the key header; on disk (uncompressed):
        // after the data, at fLast.
        let at = if embedded { keylen } else { last as usize };
        let offsets =
            Some(at).filter(|&c| c + 4 + 4 * nev <= raw.len() && get32(raw, c) as usize >= nev);
        Layout {
            keylen,
            nev,
            last,
            offsets,
        }
    }
}

/// One mutation: a description, whether it must be refused, and the mutated basket bytes.
type Mutation = (String, bool, Vec<u8>);

/// `cases` seeded mutations of one basket.
///
/// Duplicated offsets (an empty entry, its neighbour longer) are tried only on branches whose
/// entries describe their own length (`std::vector`, strings): in an `x[n]` branch such a
/// basket is well-formed on its own, and only the counter branch could tell.
fn mutations(
    raw: &[u8],
    embedded: bool,
    self_describing: bool,
    rng: &mut Rng,
    cases: usize,
) -> Vec<Mutation> {
    let l = Layout::of(raw, embedded);
    let k = l.keylen;
    let fields: [(&str, usize); 6] = [
        ("fNbytes", 0),
        ("fObjlen", 6),
        ("fNevBufSize", k - 13),
        ("fNevBuf", k - 9),
        ("fLast", k - 5),
        ("fKeylen", 14),
    ];
    let mut out = Vec::new();
    for _ in 0..cases {
        let mut m = raw.to_vec();
        let choice = rng.below(if l.offsets.is_some() { 12 } else { 6 });
        if choice < 6 {
            let (name, at) = fields[choice];
            let old = if name == "fKeylen" {
                i16::from_be_bytes([raw[14], raw[15]]) as i32
            } else {
                get32(raw, at)
            };
            let v = match rng.below(8) {
                0 => 0,
                1 => -1,
                2 => i32::MIN,
                3 => i32::MAX,
                4 => old.wrapping_add(1 + rng.below(8) as i32),
                5 => old.wrapping_sub(1 + rng.below(8) as i32),
                6 => old.wrapping_mul(2),
                _ => rng.next() as i32,
            };
            if name == "fKeylen" {
                m[14..16].copy_from_slice(&(v as i16).to_be_bytes());
            } else {
                put32(&mut m, at, v);
            }
            out.push((format!("{name} {old} -> {v}"), false, m));
            continue;
        }
        let c = l.offsets.expect("chosen only with offsets");
        let at = |i: usize| c + 4 + 4 * i;
        let off = |i: usize| get32(raw, at(i));
        let n = l.nev;
        let i = rng.below(n);
        let distinct = (1..n).any(|j| off(j) != off(j - 1));
        // The data's end, counted from the basket's start as the offsets are.
        let end = l.last;
        let (what, refuse) = match choice {
            6 if n >= 2 && distinct => {
                for j in 0..n {
                    put32(&mut m, at(j), off(n - 1 - j));
                }
                ("offsets reversed".to_string(), true)
            }
            7 if n >= 2 => {
                let j = 1 + rng.below(n - 1);
                put32(&mut m, at(j - 1), off(j));
                put32(&mut m, at(j), off(j - 1));
                (
                    format!("offsets {} and {j} swapped", j - 1),
                    off(j) != off(j - 1),
                )
            }
            8 if n >= 2 && self_describing => {
                // Entry i+1's offset also for entry i: entry i empty, i-1 longer.
                let j = rng.below(n - 1);
                put32(&mut m, at(j), off(j + 1));
                (format!("offset {j} duplicated from {}", j + 1), false)
            }
            9 => {
                let v = [-1, i32::MIN, -(1 + rng.below(1000) as i32)][rng.below(3)];
                put32(&mut m, at(i), v);
                (format!("offset {i} negative ({v})"), true)
            }
            10 => {
                let v = [end + 1 + rng.below(64) as i32, i32::MAX, k as i32 - 1][rng.below(3)];
                put32(&mut m, at(i), v);
                (format!("offset {i} out of range ({v})"), true)
            }
            _ => {
                let v = [-1, 0, n as i32 - 1, i32::MAX][rng.below(4)];
                put32(&mut m, c, v);
                let refuse = v < 0 || (v as usize) < n;
                (format!("offset count {} -> {v}", n), refuse && n > 0)
            }
        };
        out.push((what, refuse, m));
    }
    out
}

fn self_describing(t: &Tree, b: usize) -> bool {
    matches!(
        t.branches[b].interp.as_ref().map(|i| &i.shape),
        Ok(Shape::Vector | Shape::String { .. } | Shape::Nested { .. })
    )
}

fn is_var(t: &Tree, b: usize) -> bool {
    t.branches[b]
        .interp
        .as_ref()
        .is_ok_and(|i| i.shape.levels() > 0)
}

/// Rebuilds `t` from its mutated object `obj` and reads branch `name` of it, a panic in either
/// step turned into a failure message; a tree that refuses the object is a refusal.
fn rebuild_and_read(
    f: &RootFile,
    t: &Tree,
    obj: crate::object::Object,
    name: &str,
) -> Result<Result<Array, String>, String> {
    match catch_unwind(AssertUnwindSafe(|| {
        Tree::from_object(obj, t.key.clone(), &f.streamers)
    })) {
        Err(_) => Err("panicked rebuilding the tree".to_string()),
        Ok(Err(_)) => Ok(Err("tree refused".to_string())),
        Ok(Ok(mt)) => read(f, &mt, name),
    }
}

/// Reads a whole branch, turning a panic into a failure message.
fn read(f: &RootFile, t: &Tree, name: &str) -> Result<Result<Array, String>, String> {
    catch_unwind(AssertUnwindSafe(|| {
        let b = t.branch(name).map_err(|e| e.to_string())?;
        BranchReader::new(f, t, b)
            .and_then(|mut r| r.read(0, b.entries))
            .map_err(|e| e.to_string())
    }))
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

#[derive(Default)]
struct Tally {
    cases: usize,
    refused: usize,
    must_refuse: usize,
    failures: Vec<String>,
}

impl Tally {
    fn check(
        &mut self,
        ctx: String,
        refuse: bool,
        want: &Array,
        got: Result<Result<Array, String>, String>,
    ) {
        self.cases += 1;
        self.must_refuse += usize::from(refuse);
        match got {
            Err(p) => self.failures.push(format!("{ctx}: panicked: {p}")),
            Ok(Err(_)) => self.refused += 1,
            Ok(Ok(_)) if refuse => self.failures.push(format!("{ctx}: read without an error")),
            Ok(Ok(a)) if a != *want => self.failures.push(format!("{ctx}: other values")),
            Ok(Ok(_)) => {}
        }
    }
    fn finish(self, what: &str, min_cases: usize) {
        assert!(
            self.failures.is_empty(),
            "{what}: {} of {} cases failed, e.g.:\n{}",
            self.failures.len(),
            self.cases,
            self.failures[..self.failures.len().min(15)].join("\n")
        );
        assert!(
            self.cases >= min_cases && self.refused >= self.must_refuse && self.must_refuse > 0,
            "{what}: {} cases, {} refused, {} must be",
            self.cases,
            self.refused,
            self.must_refuse
        );
        eprintln!(
            "{what}: {} cases, {} refused ({} had to be), no panic, no other value",
            self.cases, self.refused, self.must_refuse
        );
    }
}

/// Embedded baskets of every variable-size NanoAOD branch (where the reader once panicked on
/// offsets that ran backwards).
#[test]
fn mutated_embedded_baskets_give_original_values_or_errors() {
    let path = testutil::shared("root/nanoAOD_2015_CMS_Open_Data_ttbar.root");
    let f = RootFile::open(&path).expect("reference file");
    let t = f.tree("Events").expect("Events tree");
    let mut rng = Rng(0x5EED_0001);
    let mut tally = Tally::default();
    let var: Vec<usize> = (0..t.branches.len()).filter(|&b| is_var(&t, b)).collect();
    assert!(var.len() > 50, "{} variable-size branches", var.len());
    for &bi in var.iter().step_by(3) {
        let b = &t.branches[bi];
        let want = BranchReader::new(&f, &t, b)
            .and_then(|mut r| r.read(0, b.entries))
            .expect("the real branch reads");
        for loc in &b.baskets {
            let BasketSource::Embedded(slot) = loc.source else {
                continue;
            };
            let raw = t
                .embedded_basket(b, slot)
                .expect("embedded basket")
                .to_vec();
            for (what, refuse, m) in mutations(&raw, true, self_describing(&t, bi), &mut rng, 24) {
                let mut obj = t.object.clone();
                let items = branch_object_mut(&mut obj, &b.path)
                    .and_then(|o| o.array_items_mut("fBaskets"))
                    .expect("fBaskets");
                match items.get_mut(slot) {
                    Some(Ptr::New { obj: o, .. }) => o.body = Body::Raw(m),
                    _ => panic!("no basket in slot {slot}"),
                }
                let ctx = format!("{} embedded basket {slot}, {what}", b.name);
                let got = rebuild_and_read(&f, &t, obj, &b.name);
                tally.check(ctx, refuse, &want, got);
            }
        }
    }
    tally.finish("embedded baskets", 1000);
}

/// On-disk baskets of the uncompressed reference files (their offsets lie in the file as
/// written), mutated in a copy of the file.
#[test]
fn mutated_disk_baskets_give_original_values_or_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("mutated.root");
    let mut rng = Rng(0x5EED_0002);
    let mut tally = Tally::default();
    for (name, tree) in [
        ("uproot-HZZ-uncompressed.root", "events"),
        ("uproot-Zmumu-uncompressed.root", "events"),
        ("uproot-sample-6.20.04-uncompressed.root", "sample"),
    ] {
        let path = testutil::shared(&format!("root/{name}"));
        let orig = std::fs::read(&path).expect("reference file");
        let f = RootFile::open(&path).expect("opens");
        let t = f.tree(tree).expect("tree");
        for (bi, b) in t.branches.iter().enumerate() {
            let Ok(want) = BranchReader::new(&f, &t, b).and_then(|mut r| r.read(0, b.entries))
            else {
                continue; // a branch hepml does not interpret
            };
            let cases = if is_var(&t, bi) { 40 } else { 8 };
            for loc in b.baskets.iter().take(2) {
                let BasketSource::Disk { seek, nbytes } = loc.source else {
                    continue;
                };
                let (s, e) = (seek as usize, seek as usize + nbytes as usize);
                for (what, refuse, m) in
                    mutations(&orig[s..e], false, self_describing(&t, bi), &mut rng, cases)
                {
                    let mut data = orig.clone();
                    data[s..e].copy_from_slice(&m);
                    std::fs::write(&out, &data).expect("write the mutated copy");
                    let ctx = format!("{name}: {} basket at {seek}, {what}", b.name);
                    let got = match RootFile::open(&out).and_then(|f| Ok((f.tree(tree)?, f))) {
                        Err(_) => Ok(Err("file refused".to_string())),
                        Ok((mt, mf)) => read(&mf, &mt, &b.name),
                    };
                    tally.check(ctx, refuse, &want, got);
                }
            }
        }
    }
    tally.finish("disk baskets", 2000);
}

/// Every basket-bookkeeping field of a TBranch (`fWriteBasket`, and each basket's
/// `fBasketEntry`, `fBasketSeek`, `fBasketBytes`) set to a hostile value, one at a time, in the
/// tree object (as if the file held it), then the tree is rebuilt and the branch read: the
/// original values or an error, never a panic. A seek of 0 is the recovered-tree form (the
/// basket kept in the TBranch): without such a basket there, it must be refused.
#[test]
fn mutated_basket_bookkeeping_gives_original_values_or_errors() {
    let mut rng = Rng(0x5EED_0003);
    let mut tally = Tally::default();
    for (file, tree) in [
        ("root/uproot-HZZ-uncompressed.root", "events"),
        ("root/nanoAOD_2015_CMS_Open_Data_ttbar.root", "Events"),
        ("root/uproot-sample-6.20.04-zlib.root", "sample"),
    ] {
        let f = RootFile::open(testutil::shared(file)).expect("reference file");
        let t = f.tree(tree).expect("tree");
        for bi in (0..t.branches.len()).step_by(7) {
            let b = &t.branches[bi];
            let Ok(want) = BranchReader::new(&f, &t, b).and_then(|mut r| r.read(0, b.entries))
            else {
                continue;
            };
            let n = b.baskets.len() as i64;
            let mut cases: Vec<(String, Option<usize>, i64, bool)> = vec![
                ("fWriteBasket".into(), None, n + 1, false),
                ("fWriteBasket".into(), None, -1, true),
                ("fWriteBasket".into(), None, i64::from(i32::MAX), true),
            ];
            for i in 0..b.baskets.len() {
                // (An embedded basket's slot is beyond fWriteBasket: its bookkeeping is unused.)
                let BasketSource::Disk { nbytes, .. } = b.baskets[i].source else {
                    continue;
                };
                let r = rng.below(1000) as i64 + 1;
                cases.extend([
                    ("fBasketEntry".into(), Some(i), -r, true),
                    (
                        "fBasketEntry".into(),
                        Some(i),
                        b.baskets[i].first_entry as i64 + r,
                        true,
                    ),
                    ("fBasketSeek".into(), Some(i), 0, true),
                    ("fBasketSeek".into(), Some(i), i64::from(i32::MAX) + r, true),
                    ("fBasketBytes".into(), Some(i), i64::from(nbytes) + r, true),
                    ("fBasketBytes".into(), Some(i), -r, true),
                ]);
            }
            for (member, slot, value, refuse) in cases {
                let mut obj = t.object.clone();
                let Some(bo) = branch_object_mut(&mut obj, &b.path) else {
                    panic!("branch {} not in its tree", b.name)
                };
                let set = match slot {
                    None => bo.set_int(&member, value),
                    Some(i) => match bo.get_mut(&member) {
                        Some(crate::object::Value::BasicPtr(Some(items))) if i < items.len() => {
                            items[i].set_int(value)
                        }
                        _ => continue,
                    },
                };
                if set.is_err() {
                    continue; // the value does not fit the member's type: not a file's content
                }
                let ctx = format!("{file} {}: {member}[{slot:?}] = {value}", b.name);
                let got = rebuild_and_read(&f, &t, obj, &b.name);
                tally.check(ctx, refuse, &want, got);
            }
        }
    }
    tally.finish("basket bookkeeping", 300);
}
