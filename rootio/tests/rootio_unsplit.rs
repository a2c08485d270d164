//! Objects written whole (unsplit, splitlevel 0), on a file real ROOT 6.40 writes in the test
//! (scripts/gen_split_file.py --unsplit, uncompressed so that every flipped byte reaches the
//! decoder): the branch is the container of one column per member, and damaged entries (byte
//! counts, string lengths, vector sizes, values) give errors or values, never a panic; damaged
//! bookkeeping is noticed. (Their values against uproot: tests/real_layouts.rs.)

mod common;

use rootio::{BranchReader, RootFile};

const MEMBERS: [(&str, &str); 12] = [
    ("name", "string"),
    ("n", "int32"),
    ("e", "vector<float32>"),
    ("id", "vector<int32>"),
    ("z", "float32"),
    ("ion", "vector<bool>"),
    ("label", "string"),
    ("arr", "int16[3]"),
    ("s", "float64"),
    ("big", "int64"),
    ("flag", "uint8"),
    ("ok", "bool"),
];

fn read_all(f: &RootFile) -> rootio::Result<()> {
    let t = f.tree("t")?;
    for (m, _) in MEMBERS {
        let b = t.branch(&format!("whole..{m}"))?;
        BranchReader::new(f, &t, b)?.read(0, t.entries)?;
    }
    Ok(())
}

#[test]
fn damaged_unsplit_entries_give_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unsplit.root");
    testutil::script(
        "gen_split_file.py",
        &[
            path.to_str().unwrap(),
            "--unsplit",
            "--entries",
            "30",
            "--compression",
            "0",
        ],
    );
    let f = RootFile::open(&path).unwrap();
    let t = f.tree("t").unwrap();
    let whole = t.branch("whole.").unwrap();
    assert!(whole.container, "{:?}", whole.interp);
    for (m, ty) in MEMBERS {
        let b = t.branch(&format!("whole..{m}")).unwrap();
        assert_eq!(b.interp.as_ref().unwrap().type_name(), ty, "{m}");
    }
    read_all(&f).unwrap();
    assert!(whole.baskets.len() > 2, "{} baskets", whole.baskets.len());

    let (cases, errors) = common::flip_in_baskets(&path, &whole.baskets, 48, |bad| {
        RootFile::open(bad).and_then(|f| read_all(&f))
    });
    assert!(cases >= 3 * 48, "{cases} cases");
    assert!(
        errors * 4 > cases,
        "only {errors} of {cases} corruptions noticed"
    );
}
