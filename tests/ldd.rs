//! `hepml` and `libhepml.so` need only base system libraries at run time, so one binary can be
//! copied to a batch worker and run there: `ldd` lists nothing else (no libhdf5, no
//! libonnxruntime: ONNX Runtime is loaded with dlopen only when `--engine ort` asks for it).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The libraries every Linux machine has: the C and C++ runtimes and the loader.
const BASE: &[&str] = &[
    "linux-vdso.so",
    "libc.so",
    "libm.so",
    "libgcc_s.so",
    "libstdc++.so",
    "libpthread.so",
    "libdl.so",
    "librt.so",
    "ld-linux",
];

fn check(path: &Path) {
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace`, as scripts/test.sh does)",
        path.display()
    );
    let out = Command::new("ldd")
        .arg(path)
        .output()
        .expect("running ldd (part of libc-bin)");
    assert!(out.status.success(), "ldd {}: {:?}", path.display(), out);
    let text = String::from_utf8_lossy(&out.stdout);
    let libs: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        libs.iter().any(|l| l.starts_with("libc.so")),
        "ldd printed no libc:\n{text}"
    );
    let extra: Vec<&&str> = libs
        .iter()
        .filter(|l| {
            let name = l.rsplit('/').next().unwrap_or(l);
            !BASE.iter().any(|b| name.starts_with(b))
        })
        .collect();
    assert!(
        extra.is_empty() && !text.contains("not found"),
        "{} needs libraries beyond the base system: {extra:?}\n{text}",
        path.display()
    );
}

#[test]
fn hepml_needs_only_base_libraries() {
    check(Path::new(env!("CARGO_BIN_EXE_hepml")));
}

#[test]
fn libhepml_needs_only_base_libraries() {
    let dir: PathBuf = Path::new(env!("CARGO_BIN_EXE_hepml"))
        .parent()
        .expect("target directory")
        .to_owned();
    check(&dir.join("libhepml.so"));
}
