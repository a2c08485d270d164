//! `include/hepml/hepml.h` is written by hand, so it is checked here against what is built:
//! every function libhepml.so exports (`nm -D --defined-only`) is declared in the header and
//! every declared function is exported; the header's parameter counts equal those of the
//! `extern "C" fn` definitions in src/lib.rs; and every exported function that takes a
//! pointer is an `unsafe extern "C" fn` whose doc states its contract under `# Safety`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `text` without `/* */` and `//` comments.
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

/// The number of parameters in a parenthesised list (`void` and empty count as none).
fn arity(params: &str) -> usize {
    let p = params.trim();
    if p.is_empty() || p == "void" {
        0
    } else {
        p.split(',').count()
    }
}

/// The function a declaration `RET NAME(PARAMS)` names, with its parameter count; `None` for a
/// statement that declares no function (a typedef, a variable).
fn prototype(statement: &str) -> Option<(String, usize)> {
    let open = statement.find('(')?;
    let close = statement.rfind(')').expect("unbalanced parenthesis");
    let name = statement[..open]
        .trim_end()
        .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .filter(|n| !n.is_empty())
        .expect("a function name before '('");
    Some((name.to_string(), arity(&statement[open + 1..close])))
}

/// The function prototypes of a C header: name -> number of parameters.
fn header_prototypes(text: &str) -> BTreeMap<String, usize> {
    let code: String = strip_comments(text)
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("extern \"C\" {", "")
        .replace('}', "");
    let mut out = BTreeMap::new();
    for statement in code.split(';') {
        if let Some((name, n)) = prototype(statement) {
            assert!(
                out.insert(name.clone(), n).is_none(),
                "{name} declared twice"
            );
        }
    }
    out
}

fn header() -> BTreeMap<String, usize> {
    let path = manifest().join("include/hepml/hepml.h");
    header_prototypes(&std::fs::read_to_string(&path).expect("include/hepml/hepml.h"))
}

/// An `extern "C" fn` defined in src/lib.rs.
struct Definition {
    params: usize,
    takes_pointer: bool,
    is_unsafe: bool,
    /// Its doc comment has a `# Safety` section.
    safety_doc: bool,
}

/// Every `extern "C" fn` of a Rust source file, by name.
fn rust_definitions(text: &str) -> BTreeMap<String, Definition> {
    let mut out = BTreeMap::new();
    let mut doc = String::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let l = line.trim_start();
        if l.starts_with("///") {
            doc.push_str(l);
            doc.push('\n');
            continue;
        }
        if let Some(at) = l.find("extern \"C\" fn ") {
            // The signature runs to the body's opening brace.
            let signature: String = lines[i..]
                .iter()
                .map(|l| l.trim())
                .collect::<Vec<_>>()
                .join(" ");
            let signature = &signature[..signature.find('{').expect("a body")];
            let params = &signature[signature.find('(').expect("(") + 1..];
            let params = &params[..params.rfind(')').expect(")")];
            let name = l[at + "extern \"C\" fn ".len()..]
                .split('(')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            out.insert(
                name,
                Definition {
                    params: params.split(',').filter(|p| !p.trim().is_empty()).count(),
                    takes_pointer: params.contains("*const") || params.contains("*mut"),
                    is_unsafe: l[..at].contains("unsafe"),
                    safety_doc: doc.contains("# Safety"),
                },
            );
        }
        if !l.starts_with("#[") {
            doc.clear();
        }
    }
    out
}

/// The symbols a shared library exports (defined ones only).
fn exported(so: &Path) -> Vec<String> {
    let o = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(so)
        .output()
        .expect("running nm (binutils)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// The directory holding libhepml.so: the target profile directory this test was built in
/// (cargo builds the package's cdylib before its tests).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

#[test]
fn the_parsers_see_what_they_must() {
    let h = header_prototypes(
        "/* f(x); */ typedef struct m m;\n#ifdef X\nextern \"C\" {\n#endif\n\
         m* hepml_open(const char* p, char** e);\nvoid hepml_close(m* x);\n\
         size_t hepml_n(void);\n}",
    );
    assert_eq!(
        h,
        BTreeMap::from([
            ("hepml_close".to_string(), 1),
            ("hepml_n".to_string(), 0),
            ("hepml_open".to_string(), 2),
        ])
    );
    let r = rust_definitions(
        "/// x\n///\n/// # Safety\n/// p valid\n#[no_mangle]\n\
         pub unsafe extern \"C\" fn a(p: *const u8,\n q: usize) -> usize {\n}\n\
         /// y\n#[no_mangle]\npub extern \"C\" fn b(m: *mut u8) {}\n\
         #[no_mangle]\npub extern \"C\" fn c() {}\n",
    );
    let a = &r["a"];
    assert!(a.is_unsafe && a.safety_doc && a.takes_pointer && a.params == 2);
    let b = &r["b"];
    assert!(!b.is_unsafe && !b.safety_doc && b.takes_pointer && b.params == 1);
    assert_eq!(r["c"].params, 0);
}

#[test]
fn header_declares_exactly_what_libhepml_so_exports() {
    let so = lib_dir().join("libhepml.so");
    assert!(
        so.exists(),
        "{} missing: run `cargo build -p hepml-cxx` first",
        so.display()
    );
    let declared: Vec<String> = header().into_keys().collect();
    let exported = exported(&so);
    let missing: Vec<&String> = exported.iter().filter(|s| !declared.contains(s)).collect();
    let extra: Vec<&String> = declared.iter().filter(|s| !exported.contains(s)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "hepml.h and libhepml.so disagree: exported but not declared {missing:?}; \
         declared but not exported {extra:?}"
    );
    assert!(declared.contains(&"hepml_run".to_string()), "{declared:?}");
}

#[test]
fn header_parameters_match_lib_rs_and_pointer_functions_are_unsafe() {
    let src = std::fs::read_to_string(manifest().join("src/lib.rs")).expect("src/lib.rs");
    let defs = rust_definitions(&src);
    let h = header();
    let counts: BTreeMap<String, usize> = defs.iter().map(|(k, d)| (k.clone(), d.params)).collect();
    assert_eq!(h, counts, "hepml.h (left) and src/lib.rs (right) disagree");
    let unsound: Vec<&String> = defs
        .iter()
        .filter(|(_, d)| d.takes_pointer && !(d.is_unsafe && d.safety_doc))
        .map(|(k, _)| k)
        .collect();
    assert!(
        unsound.is_empty(),
        "safe extern \"C\" fns that take pointers (or lack a `# Safety` doc): {unsound:?}"
    );
}
