//! hepml's HDF5 tables against pandas and h5py (scripts/check_h5.py, project venv).

use models::h5::{read_table, ColType, Format, TableWriter};
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The tests run one at a time: an HDF5 file this process has open (and locked) would be
/// inherited by the python child another test thread forks, which then keeps the lock.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn check_h5(args: &[&str]) -> serde_json::Value {
    let py = std::env::var("HEPML_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join(".venv/bin/python"));
    let out = Command::new(py)
        .arg(repo().join("scripts/check_h5.py"))
        .args(args)
        .output()
        .expect("running python");
    assert!(
        out.status.success(),
        "check_h5.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("check_h5.py prints JSON")
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// Equal element by element up to JSON's decimal round trip (serde_json's default float parsing
/// may be off by an ulp); on failure names the first differing row, not the whole column.
fn same(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let off = |a: f64, b: f64| (a - b).abs() > 4.0 * f64::EPSILON * a.abs().max(b.abs());
    if let Some(i) = (0..got.len()).find(|&i| off(got[i], want[i])) {
        panic!("{what}: row {i}: {} != {}", got[i], want[i]);
    }
}

#[test]
fn pandas_reads_what_hepml_writes() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.h5");
    let cols = vec![
        ("pt".to_string(), ColType::F64),
        ("event".to_string(), ColType::I64),
        ("log(pt)".to_string(), ColType::F32),
        ("label".to_string(), ColType::I64),
    ];
    let mut w = TableWriter::create_typed(&path, "events", &cols).unwrap();
    // Three appends, crossing the HDF5 chunk boundary (16384 rows).
    let mut want: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut start = 0u64;
    for n in [10_000u64, 20_000, 7] {
        let chunk: Vec<Vec<f64>> = vec![
            (start..start + n).map(|i| i as f64 * 0.25 - 3.0).collect(),
            (start..start + n).map(|i| (i * 1_000_003) as f64).collect(),
            (start..start + n)
                .map(|i| ((i as f64) + 1.0).ln() as f32 as f64)
                .collect(),
            (start..start + n).map(|i| (i % 2) as f64).collect(),
        ];
        w.append(&chunk).unwrap();
        for (a, b) in want.iter_mut().zip(chunk) {
            a.extend(b);
        }
        start += n;
    }
    assert_eq!(w.len(), 30_007);
    drop(w);

    let got = check_h5(&["read", path.to_str().unwrap(), "events"]);
    assert_eq!(
        got["names"],
        serde_json::json!(["pt", "event", "log(pt)", "label"])
    );
    assert_eq!(got["h5py_names"], got["names"]);
    assert_eq!(
        got["dtypes"],
        serde_json::json!(["float64", "int64", "float32", "int64"])
    );
    for (j, w) in want.iter().enumerate() {
        same(
            &floats(&got["columns"][j]),
            w,
            &format!("pandas column {j}"),
        );
    }
    // And hepml reads its own file back.
    let t = read_table(&path, "events").unwrap();
    assert_eq!(t.names, ["pt", "event", "log(pt)", "label"]);
    assert_eq!(t.columns, want);
}

#[test]
fn hepml_reads_what_pandas_writes() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for layout in ["write", "write-table"] {
        assert!(pandas_layout(layout).skipped.is_empty());
    }
}

#[test]
fn hepml_reads_compressed_pandas_and_h5py_files() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for layout in ["write-zlib", "write-table-zlib", "write-h5py"] {
        assert!(pandas_layout(layout).skipped.is_empty());
    }
}

/// Files physicists write themselves: a group of h5py datasets (a column each, no `columns`
/// attribute, gzip + shuffle) and a NumPy structured array (a compound dataset). Their string
/// and array members are not columns, and are named with what they hold.
#[test]
fn hepml_reads_h5py_column_groups_and_structured_arrays() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for (layout, holds) in [
        (
            "write-h5py-plain",
            [
                ("img", "4 numbers per row (shape [20000, 4])"),
                ("tag", "strings"),
            ],
        ),
        (
            "write-h5py-records",
            [
                ("tag", "strings"),
                ("v", "3 values per row (an array field of shape [3])"),
            ],
        ),
    ] {
        let t = pandas_layout(layout);
        let mut skipped = t.skipped.clone();
        skipped.sort();
        let want: Vec<(String, String)> = holds
            .iter()
            .map(|(n, h)| (n.to_string(), h.to_string()))
            .collect();
        assert_eq!(skipped, want, "{layout}");
    }
}

/// A DataFrame with a string column (a sample name) is read without it, in both pandas
/// layouts; the column is named as holding strings or Python objects.
#[test]
fn string_columns_are_left_out_and_named() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for (layout, holds) in [
        ("write-strings", "Python objects (a pandas object column)"),
        ("write-table-strings", "strings"),
    ] {
        let t = pandas_layout(layout);
        assert_eq!(t.skipped("process"), Some(holds), "{layout}");
        assert!(t.column("process").is_none());
    }
}

/// A dataset whose shape claims more than its file can hold (here a legal but empty 8 TB h5py
/// dataset; a corrupt header reads the same) is refused at once: reading it window by window
/// ran for ages on fill values, and a corrupt names dataset made hdf5-pure abort on a 200 TB
/// allocation.
#[test]
fn datasets_larger_than_their_file_are_refused() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.h5");
    check_h5(&["write-h5py-sparse", path.to_str().unwrap(), "events", "100"]);
    let e = read_table(&path, "events").unwrap_err().to_string();
    assert!(
        e.contains("dataset x") && e.contains("[1099511627776]") && e.contains("more than this"),
        "{e}"
    );
}

/// Every compressor pandas offers besides zlib (`complib=`): bzip2 and the Blosc family (its
/// five codecs, shuffling inside), in both layouts; hdf5-pure decodes neither, hepml's own
/// chunk reader does. 20000 rows span several chunks, and the `fixed` layout's float64 block
/// is 2-D (two columns).
#[test]
fn hepml_reads_blosc_and_bzip2_pandas_files() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for lib in [
        "bzip2",
        "blosc",
        "blosc:blosclz",
        "blosc:lz4",
        "blosc:lz4hc",
        "blosc:zlib",
        "blosc:zstd",
    ] {
        for layout in [format!("write-{lib}"), format!("write-table-{lib}")] {
            assert!(pandas_layout(&layout).skipped.is_empty());
        }
    }
}

/// `format: table`: pandas reads the file whole and answers a `where` query on any column.
#[test]
fn pandas_queries_the_table_layout() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.h5");
    let p = path.to_str().unwrap();
    let cols = vec![
        ("pt".to_string(), ColType::F64),
        ("event".to_string(), ColType::I64),
        ("eta".to_string(), ColType::F32),
    ];
    let mut w = TableWriter::create_with(&path, "events", &cols, Format::Table).unwrap();
    let mut want: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut start = 0u64;
    // Appends that cross the table's HDF5 chunks (1 MB of 20-byte rows).
    for n in [40_000u64, 70_000, 3] {
        let chunk: Vec<Vec<f64>> = vec![
            (start..start + n)
                .map(|i| (i % 1000) as f64 * 0.5)
                .collect(),
            (start..start + n).map(|i| (i * 7 + 1) as f64).collect(),
            (start..start + n)
                .map(|i| ((i % 50) as f32 * 0.1 - 2.5) as f64)
                .collect(),
        ];
        w.append(&chunk).unwrap();
        for (a, b) in want.iter_mut().zip(chunk) {
            a.extend(b);
        }
        start += n;
    }
    w.finish().unwrap();
    let all = check_h5(&["read", p, "events"]);
    assert_eq!(all["names"], serde_json::json!(["pt", "event", "eta"]));
    assert_eq!(
        all["dtypes"],
        serde_json::json!(["float64", "int64", "float32"])
    );
    for (j, w) in want.iter().enumerate() {
        same(
            &floats(&all["columns"][j]),
            w,
            &format!("pandas column {j}"),
        );
    }
    let got = check_h5(&["query", p, "events", "pt > 400 & eta < 0"]);
    let keep: Vec<usize> = (0..want[0].len())
        .filter(|&i| want[0][i] > 400.0 && want[2][i] < 0.0)
        .collect();
    assert!(!keep.is_empty() && keep.len() < want[0].len());
    for (j, w) in want.iter().enumerate() {
        let w: Vec<f64> = keep.iter().map(|&i| w[i]).collect();
        same(
            &floats(&got["columns"][j]),
            &w,
            &format!("query column {j}"),
        );
    }
    let t = read_table(&path, "events").unwrap();
    assert_eq!(t.columns, want);
}

/// Writes a file with `check_h5.py LAYOUT` (20000 rows, key `table`), reads it with hepml and
/// compares every column with what pandas or h5py read; returns hepml's table.
fn pandas_layout(layout: &str) -> models::h5::Table {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.h5");
    let p = path.to_str().unwrap();
    let want = check_h5(&[layout, p, "table", "20000"]);
    let t = read_table(&path, "table").unwrap();
    let names: Vec<String> = want["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    assert_eq!(t.names, names);
    for (j, n) in names.iter().enumerate() {
        same(
            t.column(n).unwrap(),
            &floats(&want["columns"][j]),
            &format!("{layout} {n}"),
        );
    }
    assert_eq!(t.rows(), 20_000);
    // A missing key or a non-table group is an error naming the file and key.
    let e = read_table(&path, "nope").unwrap_err().to_string();
    assert!(e.contains("p.h5") && e.contains("nope"), "{e}");
    t
}
