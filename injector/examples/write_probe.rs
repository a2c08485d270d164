use injector::rootio::write::{clone_tree, copy_other_keys, BranchSpec, FileWriter, TreeWriter};
use injector::rootio::*;
fn main() {
    let out = std::env::args().nth(1).unwrap();
    let mut fw = FileWriter::create(format!("{out}/new.root"), Compression::DEFAULT).unwrap();
    let specs = vec![
        BranchSpec::scalar("x", Prim::F32),
        BranchSpec::scalar("n", Prim::I32),
        BranchSpec::new(
            "v",
            Prim::F64,
            Shape::Var {
                counter: "n".into(),
                inner: vec![],
            },
        ),
        BranchSpec::new("m", Prim::I16, Shape::Fixed(vec![2, 3])),
        BranchSpec::new("vec", Prim::F32, Shape::Vector),
        BranchSpec::new("s", Prim::U8, Shape::String { header: false }),
        BranchSpec::scalar("b", Prim::Bool),
        BranchSpec::scalar("u", Prim::U64),
    ];
    let mut tw = TreeWriter::new(&mut fw, "t", "probe", &specs).unwrap();
    let n = 20000usize;
    let mk = |i: &Interp, data: Data, offsets: Option<Vec<usize>>| Array {
        interp: i.clone(),
        start: 0,
        entries: n as u64,
        data,
        offsets,
    };
    let counts: Vec<usize> = (0..n).map(|i| i % 4).collect();
    let mut offs = vec![0];
    for c in &counts {
        offs.push(offs.last().unwrap() + c);
    }
    let tot = *offs.last().unwrap();
    let mut soffs = vec![0usize];
    let mut sbytes = Vec::new();
    for i in 0..n {
        let s = format!("e{i}");
        sbytes.extend_from_slice(s.as_bytes());
        soffs.push(sbytes.len());
    }
    let arrays = vec![
        mk(
            &specs[0].interp,
            Data::F32((0..n).map(|i| i as f32 * 0.5).collect()),
            None,
        ),
        mk(
            &specs[1].interp,
            Data::I32(counts.iter().map(|&c| c as i32).collect()),
            None,
        ),
        mk(
            &specs[2].interp,
            Data::F64((0..tot).map(|i| i as f64).collect()),
            Some(offs.clone()),
        ),
        mk(
            &specs[3].interp,
            Data::I16((0..n * 6).map(|i| (i % 1000) as i16).collect()),
            None,
        ),
        mk(
            &specs[4].interp,
            Data::F32((0..tot).map(|i| -(i as f32)).collect()),
            Some(offs.clone()),
        ),
        mk(&specs[5].interp, Data::U8(sbytes), Some(soffs)),
        mk(
            &specs[6].interp,
            Data::Bool((0..n).map(|i| i % 3 == 0).collect()),
            None,
        ),
        mk(
            &specs[7].interp,
            Data::U64((0..n).map(|i| u64::MAX - i as u64).collect()),
            None,
        ),
    ];
    for (k, a) in arrays.iter().enumerate() {
        tw.append(&mut fw, k, a).unwrap();
    }
    tw.finish(&mut fw).unwrap();
    fw.finish().unwrap();

    // Decorated clone of HZZ with one new branch.
    let inp = RootFile::open("../shared/data/root/uproot-HZZ.root").unwrap();
    let t = inp.tree("events").unwrap();
    let mut fw = FileWriter::create(format!("{out}/hzz_deco.root"), Compression::DEFAULT).unwrap();
    let spec = BranchSpec::scalar("score", Prim::F32);
    let mut cw = clone_tree(&inp, &t, &mut fw, &[spec.clone()]).unwrap();
    let a = Array {
        interp: spec.interp.clone(),
        start: 0,
        entries: t.entries,
        data: Data::F32((0..t.entries).map(|i| i as f32 / 7.0).collect()),
        offsets: None,
    };
    cw.append(&mut fw, 0, &a).unwrap();
    cw.finish(&mut fw).unwrap();
    copy_other_keys(&inp, "events", &mut fw).unwrap();
    fw.finish().unwrap();
    println!("ok");
}
