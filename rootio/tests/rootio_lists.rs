//! Vectors of strings, nested vectors and ATLAS ElementLinks, on a file real ROOT 6.40 writes
//! in the test (scripts/gen_nested_file.py: small baskets, empty lists and strings, long
//! strings, UTF-8, NaN and infinities): every branch reads equal to both uproot and ROOT
//! (scripts/root_check.py compare; the ElementLinks to uproot), and any entry range reads as
//! the same slice of the whole, across basket boundaries.

mod common;

use rootio::{BranchReader, RootFile, Shape};

const BRANCHES: [(&str, &str); 6] = [
    ("names", "vector<string>"),
    ("vvf", "vector<vector<float32>>"),
    ("vvi", "vector<vector<int32>>"),
    ("vvd", "vector<vector<float64>>"),
    ("vvs", "vector<vector<string>>"),
    ("links", "vector<vector<ElementLink>>"),
];

fn json(a: &rootio::Array) -> String {
    let mut s = String::new();
    rootio::write_array_json(a, &mut s);
    s
}

/// The top-level items of a JSON list, as text (values are compared as printed: a parse
/// through f64 may move the last digit).
fn items(list: &str) -> Vec<&str> {
    let inner = &list[1..list.len() - 1];
    let (mut out, mut depth, mut start, mut in_str, mut esc) = (vec![], 0, 0, false, false);
    for (i, c) in inner.char_indices() {
        match c {
            _ if esc => esc = false,
            '\\' if in_str => esc = true,
            '"' => in_str = !in_str,
            '[' if !in_str => depth += 1,
            ']' if !in_str => depth -= 1,
            ',' if !in_str && depth == 0 => {
                out.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner.is_empty() {
        out.push(&inner[start..]);
    }
    out
}

#[test]
fn vectors_of_strings_and_nested_vectors_equal_uproot_and_root() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lists.root");
    let path_s = path.to_str().unwrap();
    testutil::script("gen_nested_file.py", &[path_s]);
    let f = RootFile::open(&path).unwrap();
    let t = f.tree("t").unwrap();
    assert_eq!(t.entries, 300);
    let n = t.entries as usize;
    let mut expected = Vec::new();
    for (name, ty) in BRANCHES {
        let b = t.branch(name).unwrap();
        let interp = b.interp.as_ref().unwrap();
        assert_eq!(interp.type_name(), ty, "{name}");
        assert!(matches!(interp.shape, Shape::Nested { .. }), "{name}");
        assert!(b.baskets.len() > 3, "{name}: {} baskets", b.baskets.len());
        let mut r = BranchReader::new(&f, &t, b).unwrap();
        let whole = json(&r.read(0, t.entries).unwrap());
        let entries = items(&whole);
        assert_eq!(entries.len(), n, "{name}");
        // Not all empty: most entries hold lists with items.
        let filled = entries.iter().filter(|e| **e != "[]").count();
        assert!(filled > n / 2, "{name}: {filled} non-empty entries");
        // Ranges starting and ending inside baskets, and empty ones, with a reused reader.
        for (a, z) in [(0, 1), (7, 190), (151, 300), (299, 300), (40, 40), (13, 14)] {
            let part = json(&r.read(a, z).unwrap());
            assert_eq!(
                items(&part),
                entries[a as usize..z as usize],
                "{name} {a}..{z}"
            );
        }
        expected.push(format!("{name:?}: {whole}"));
    }
    // Long strings (TString's 4-byte length form) are among them.
    assert!(expected[0].contains(&"x".repeat(300)));
    let exp = dir.path().join("expected.json");
    std::fs::write(
        &exp,
        format!("{{\"branches\": {{{}}}}}", expected.join(", ")),
    )
    .unwrap();
    let out = testutil::script(
        "root_check.py",
        &[
            "compare",
            path_s,
            "t",
            exp.to_str().unwrap(),
            // The ROOT child has no dictionary for the test's ElementLink class.
            "--uproot-only",
            "links",
        ],
    );
    assert!(out.contains("\"branches\": 6"), "{out}");
}

/// Damaged entries (uncompressed baskets, so that every flipped byte reaches the decoder:
/// sizes, headers, string lengths, values) give errors or values, never a panic; damaged
/// sizes and headers are noticed.
#[test]
fn damaged_nested_entries_give_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lists.root");
    testutil::script(
        "gen_nested_file.py",
        &[
            path.to_str().unwrap(),
            "--entries",
            "60",
            "--compression",
            "0",
        ],
    );
    let (mut cases, mut errors) = (0, 0);
    let f = RootFile::open(&path).unwrap();
    let t = f.tree("t").unwrap();
    for (name, _) in BRANCHES {
        let b = t.branch(name).unwrap();
        let (c, e) = common::flip_in_baskets(&path, &b.baskets, 24, |bad| {
            let f = RootFile::open(bad)?;
            let t = f.tree("t")?;
            let b = t.branch(name)?;
            BranchReader::new(&f, &t, b)?.read(0, t.entries).map(|_| ())
        });
        cases += c;
        errors += e;
    }
    assert!(cases >= 6 * 24, "{cases} cases");
    assert!(
        errors * 4 > cases,
        "only {errors} of {cases} corruptions noticed"
    );
}
