//! `hepml convert` end to end on the shared HZZ files, checked against uproot + pandas
//! (scripts/check_convert.py), and its bad-input behaviour.

use std::process::Command;

mod common;
use common::script;

fn shared(rel: &str) -> String {
    common::shared(&format!("root/{rel}"))
}
/// `hepml convert CFG -o OUT -q`.
fn convert(cfg: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hepml"))
        .arg("convert")
        .arg(cfg)
        .arg("-o")
        .arg(out)
        .arg("-q")
        .output()
        .expect("running hepml")
}

fn config(sig: &str, bkg: &str, extra: &str) -> String {
    format!(
        r#"
tree: events
columns:
  - MET_px
  - {{name: lmet, expr: "log(sqrt(MET_px**2 + MET_py**2))"}}
  - "Jet_Px[0]"
  - NMuon
selection: triggerIsoMu24
weight: EventWeight
event_number: NPrimaryVertices
chunk_size: 500
{extra}
samples:
  - {{name: sig, files: ["{sig}"], label: 1, selection: "NJet > 0", weight: "2", extra: {{mass: 125}}}}
  - {{name: bkg, files: ["{bkg}"], label: 0, selection: "NJet == 0", extra: {{mass: 0}}}}
"#
    )
}

#[test]
fn convert_matches_uproot_and_pandas() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    let out = dir.path().join("out.h5");
    // Background from two files through a glob: the lz4 and zstd copies of the same events.
    let glob = shared("uproot-HZZ-[lz][zs][4t]*.root");
    std::fs::write(&cfg, config(&shared("uproot-HZZ.root"), &glob, "")).unwrap();
    let o = convert(&cfg, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        log.contains("sample sig") && log.contains("sample bkg"),
        "{log}"
    );
    let said = script(
        "check_convert.py",
        &[
            out.to_str().unwrap(),
            &shared("uproot-HZZ.root"),
            &shared("uproot-HZZ-lz4.root"),
            &shared("uproot-HZZ-zstd.root"),
        ],
    );
    assert!(said.starts_with("ok "), "{said}");
    // Nothing else is left in the directory (no temporary file).
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

/// `format: table`: the same conversion in pandas' queryable layout; pandas answers a `where`
/// query on it with exactly the rows the whole table has for that condition.
#[test]
fn table_format_is_queryable_by_pandas() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    let out = dir.path().join("out.h5");
    let (sig, bkg) = (shared("uproot-HZZ.root"), shared("uproot-HZZ-zlib.root"));
    std::fs::write(&cfg, config(&sig, &bkg, "format: table")).unwrap();
    let o = convert(&cfg, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = out.to_str().unwrap();
    let said = script("check_convert.py", &[o, &sig, &bkg]);
    assert!(said.starts_with("ok "), "{said}");
    let whole: serde_json::Value =
        serde_json::from_str(&script("check_h5.py", &["read", o, "events"])).unwrap();
    let cut = "NMuon > 1 & label == 1";
    let got: serde_json::Value =
        serde_json::from_str(&script("check_h5.py", &["query", o, "events", cut])).unwrap();
    let names: Vec<&str> = whole["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(got["names"], whole["names"]);
    let col = |v: &serde_json::Value, name: &str| -> Vec<f64> {
        let j = names.iter().position(|n| *n == name).unwrap();
        v["columns"][j]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap_or(f64::NAN))
            .collect()
    };
    let (nmu, label) = (col(&whole, "NMuon"), col(&whole, "label"));
    let keep: Vec<usize> = (0..nmu.len())
        .filter(|&i| nmu[i] > 1.0 && label[i] == 1.0)
        .collect();
    assert!(!keep.is_empty() && keep.len() < nmu.len(), "{}", keep.len());
    for name in &names {
        let all = col(&whole, name);
        let want: Vec<f64> = keep.iter().map(|&i| all[i]).collect();
        let have = col(&got, name);
        assert_eq!(have.len(), want.len(), "{name}");
        for (h, w) in have.iter().zip(&want) {
            assert!(h == w || (h.is_nan() && w.is_nan()), "{name}: {h} != {w}");
        }
    }
}

#[test]
fn bad_inputs_are_one_line_errors_and_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let sig = shared("uproot-HZZ.root");
    let cases: Vec<(String, &str)> = vec![
        (
            config(&sig, &sig, "").replace("MET_px\n", "MET_pxx\n"),
            "MET_pxx",
        ),
        (
            config(&sig, &sig, "").replace("NJet == 0", "NJet < 0"),
            "keeps no event",
        ),
        (config(&sig, &sig, "chunk_sise: 3"), "chunk_sise"),
        (config(&sig, "/nonexistent/*.root", ""), "no file matches"),
        (config(&sig, &shared("../README.md"), ""), "README"),
        (
            config(&sig, &sig, "").replace("tree: events", "tree: nope"),
            "nope",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let cfg = dir.path().join(format!("c{i}.yaml"));
        let out = dir.path().join(format!("o{i}.h5"));
        std::fs::write(&cfg, text).unwrap();
        let o = convert(&cfg, &out);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "case {i}: {err}");
        assert!(err.contains(want), "case {i}: expected `{want}` in: {err}");
        assert_eq!(err.trim().lines().count(), 1, "case {i}: {err}");
        assert!(!out.exists(), "case {i}: output left behind");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("hepml-tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
