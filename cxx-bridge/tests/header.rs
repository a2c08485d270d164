//! `include/hepml/hepml.h` is written by hand: it must declare exactly the functions
//! libhepml.so exports (`nm -D --defined-only`) and src/lib.rs defines (`extern "C" fn`), with
//! the same number of parameters. A function added to one and not the others fails here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Parameters of a declaration's parenthesised list (`void` and empty count as none).
fn arity(params: &str) -> usize {
    let p = params.trim();
    if p.is_empty() || p == "void" {
        0
    } else {
        p.split(',').count()
    }
}

/// `name(params)` for every identifier starting with `hepml_` that is followed by `(`, in
/// `text` with comments removed: name -> number of parameters.
fn declarations(text: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some(i) = rest.find("hepml_") {
        let after = &rest[i..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let tail = after[name_len..].trim_start();
        if let Some(args) = tail.strip_prefix('(') {
            let close = args.find(')').expect("unbalanced parenthesis");
            let prev = out.insert(name.to_string(), arity(&args[..close]));
            assert!(prev.is_none(), "{name} declared twice");
            rest = &args[close..];
        } else {
            rest = &after[name_len..];
        }
    }
    out
}

/// Drops `/* */` and `//` comments.
fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        match (block, line) {
            (Some(b), l) if l.is_none_or(|l| b < l) => {
                out.push_str(&rest[..b]);
                let end = rest[b..].find("*/").expect("unterminated comment");
                rest = &rest[b + end + 2..];
            }
            (_, Some(l)) => {
                out.push_str(&rest[..l]);
                rest = rest[l..].find('\n').map_or("", |e| &rest[l + e..]);
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

fn header() -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(manifest().join("include/hepml/hepml.h")).expect("hepml.h");
    declarations(&strip_comments(&text))
}

/// The `extern "C" fn hepml_*` definitions of src/lib.rs.
fn rust_exports() -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(manifest().join("src/lib.rs")).expect("src/lib.rs");
    let text = strip_comments(&text);
    let mut out = BTreeMap::new();
    for piece in text.split("extern \"C\" fn ").skip(1) {
        let decl = declarations(piece.split('{').next().unwrap_or(""));
        out.extend(decl);
    }
    out
}

/// The directory holding libhepml.so (the target profile directory of this test).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

#[test]
fn header_declares_what_lib_rs_defines() {
    let (h, r) = (header(), rust_exports());
    assert!(
        h.contains_key("hepml_open") && h.contains_key("hepml_run"),
        "only {} declarations parsed from hepml.h",
        h.len()
    );
    assert_eq!(h, r, "hepml.h (left) and src/lib.rs (right) disagree");
}

#[test]
fn header_declares_what_libhepml_so_exports() {
    let so = lib_dir().join("libhepml.so");
    assert!(
        so.exists(),
        "{} missing: run `cargo build -p hepml-cxx` first",
        so.display()
    );
    let o = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&so)
        .output()
        .expect("running nm");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let exported: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|s| s.starts_with("hepml_"))
        .map(str::to_string)
        .collect();
    let declared: Vec<String> = header().into_keys().collect();
    let mut exported = exported;
    exported.sort();
    assert_eq!(
        declared, exported,
        "hepml.h (left) and the hepml_* symbols of libhepml.so (right) disagree"
    );
}
