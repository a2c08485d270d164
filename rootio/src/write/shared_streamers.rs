//! The outputs of one run share the work on their streamer lists (read once per distinct
//! list, extended once per distinct addition, serialised and compressed once), and each output
//! still gets exactly its own list.

use super::{clone_tree, copy_other_keys, BranchSpec, FileWriter};
use crate::read::{Array, Data};
use crate::streamers::Streamers;
use crate::{Compression, Interp, Prim, RootFile, Shape};
use std::path::Path;
use std::sync::Arc;

/// A decorated copy of `input`'s `tree` with one new branch of type `prim` (entry i holds i):
/// the output's streamer list as written, and the values read back from the output.
fn decorate(input: &RootFile, tree: &str, prim: Prim, out: &Path) -> Arc<Streamers> {
    let t = input.tree(tree).unwrap();
    let mut fw = FileWriter::create(out, Compression::DEFAULT).unwrap();
    let spec = BranchSpec::scalar("added", prim);
    let mut w = clone_tree(input, &t, &mut fw, std::slice::from_ref(&spec)).unwrap();
    let n = t.entries;
    let data = match prim {
        Prim::F64 => Data::F64((0..n).map(|i| i as f64).collect()),
        _ => Data::F32((0..n).map(|i| i as f32).collect()),
    };
    let a = Array {
        interp: Interp {
            prim,
            shape: Shape::Scalar,
        },
        start: 0,
        entries: n,
        data,
        offsets: None,
        outer: Vec::new(),
    };
    w.append(&mut fw, 0, &a).unwrap();
    w.finish(&mut fw).unwrap();
    copy_other_keys(input, tree, &mut fw).unwrap();
    let list = fw.streamers.clone();
    fw.finish().unwrap();
    let f = RootFile::open(out).unwrap();
    let t = f.tree(tree).unwrap();
    let back = crate::BranchReader::new(&f, &t, t.branch("added").unwrap())
        .unwrap()
        .read(0, n)
        .unwrap();
    assert_eq!(back, a, "{}", out.display());
    list
}

fn classes(p: &Path) -> Vec<(String, i32, u32)> {
    RootFile::open(p).unwrap().streamer_classes()
}

/// The stored streamer record of a file (key payload, decompressed).
fn record(p: &Path) -> Vec<u8> {
    let f = RootFile::open(p).unwrap();
    f.read_key_payload(f.seek_info, f.nbytes_info as usize)
        .unwrap()
        .1
}

#[test]
fn streamer_lists_are_shared_only_where_equal() {
    let hzz = testutil::shared("root/uproot-HZZ-zlib.root");
    let sample = testutil::shared("root/uproot-sample-6.20.04-zlib.root");
    let (h1, h2, s) = (
        RootFile::open(&hzz).unwrap(),
        RootFile::open(&hzz).unwrap(),
        RootFile::open(&sample).unwrap(),
    );
    // Read once per distinct list.
    assert!(Arc::ptr_eq(&h1.streamers, &h2.streamers));
    assert!(!Arc::ptr_eq(&h1.streamers, &s.streamers));
    let has = |c: &[(String, i32, u32)], name: &str| c.iter().any(|(n, _, _)| n == name);
    assert!(!has(&h1.streamer_classes(), "TLeafD"));

    let dir = tempfile::tempdir().unwrap();
    let out = |n: &str| dir.path().join(n);
    // HZZ lacks TLeafD: a double branch needs it, a float branch does not.
    let d1 = decorate(&h1, "events", Prim::F64, &out("d1.root"));
    let f1 = decorate(&h2, "events", Prim::F32, &out("f1.root"));
    let s1 = decorate(&s, "sample", Prim::F64, &out("s1.root"));
    let d2 = decorate(&h2, "events", Prim::F64, &out("d2.root"));
    let f2 = decorate(&h1, "events", Prim::F32, &out("f2.root"));

    // Extended once per distinct addition.
    assert!(Arc::ptr_eq(&d1, &d2));
    assert!(Arc::ptr_eq(&f1, &f2));
    assert!(!Arc::ptr_eq(&d1, &f1) && !Arc::ptr_eq(&s1, &d1));

    // Each output has exactly its own list, behind the input's, unchanged.
    let input = h1.streamer_classes();
    let (cd, cf, cs) = (
        classes(&out("d1.root")),
        classes(&out("f1.root")),
        classes(&out("s1.root")),
    );
    assert_eq!(cd[..input.len()], input[..]);
    assert_eq!(cf[..input.len()], input[..]);
    assert!(has(&cd, "TLeafD") && !has(&cf, "TLeafD"));
    eprintln!(
        "HZZ: {} classes; with a double branch {}, with a float branch {}",
        input.len(),
        cd.len(),
        cf.len()
    );
    let sample_list = s.streamer_classes();
    assert_eq!(cs[..sample_list.len()], sample_list[..]);
    assert_eq!(classes(&out("d2.root")), cd);
    assert_eq!(classes(&out("f2.root")), cf);
    // The record made once serves both copies.
    assert_eq!(record(&out("d1.root")), record(&out("d2.root")));
    assert_eq!(record(&out("f1.root")), record(&out("f2.root")));
    assert_ne!(record(&out("d1.root")), record(&out("f1.root")));
}
