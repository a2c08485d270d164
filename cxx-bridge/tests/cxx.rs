//! libhepml.so from C++ and ROOT: the programs and macros under examples/cxx compiled with only
//! `-I include -L <target> -lhepml` and run on real models (sklearn MLPs and BDT via skl2onnx,
//! a two-input PNN; scripts/make_cxx_cases.py) and real ROOT 6.40 (the venv's pip `root`).
//! Scores are compared with onnxruntime's on the same inputs (|diff| <= 1e-5) and with
//! `hepml inject` on the same file (the `hepml` binary is required: HEPML_BIN, or beside
//! libhepml.so).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use testutil::{max_diff, python, repo};

const TOL: f32 = 1e-5;

/// The directory holding libhepml.so: the target profile directory this test was built in
/// (cargo builds the package's cdylib before its tests).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf();
    assert!(
        dir.join("libhepml.so").exists(),
        "{}/libhepml.so missing",
        dir.display()
    );
    dir
}

/// The `hepml` binary: HEPML_BIN, else the one beside libhepml.so (built by `cargo test
/// --workspace`). Without it the comparisons would check nothing: fail.
fn hepml_bin() -> PathBuf {
    let bin = std::env::var("HEPML_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| lib_dir().join("hepml"));
    assert!(
        bin.exists(),
        "{} missing: the comparison needs the hepml binary; build it with \
         `cargo build -p hepml` (or run `cargo test --workspace`), or set HEPML_BIN",
        bin.display()
    );
    bin
}

fn include_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include")
}

fn tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// Models, inputs and onnxruntime outputs, made once per test process.
fn cases() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = tmp().join("cxx-cases");
        if let Ok(rd) = std::fs::read_dir(&root) {
            for e in rd.flatten() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = root.join(std::process::id().to_string());
        let o = Command::new(python())
            .arg(repo().join("scripts/make_cxx_cases.py"))
            .arg(&dir)
            .output()
            .expect("python");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        dir
    })
}

/// The C++ programs and ROOT macros: the worked analysis's C++ side (`examples/cxx`).
fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/cxx")
}

/// Compiles an example with g++ against the header and libhepml.so only.
fn compile(example: &str) -> PathBuf {
    let src = examples().join(format!("{example}.cpp"));
    let exe = tmp().join(format!("cxx-{example}-{}", std::process::id()));
    let lib = lib_dir();
    let o = Command::new("g++")
        .args([
            "-std=c++17",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pthread",
        ])
        .arg(&src)
        .arg("-I")
        .arg(include_dir())
        .arg("-L")
        .arg(&lib)
        .arg("-lhepml")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("g++");
    assert!(
        o.status.success(),
        "g++ {example}:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    exe
}

fn run(cmd: &mut Command) -> (Output, String) {
    let o = cmd.output().expect("running");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o, text)
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The plain C++ program scores every event of each case one call at a time (and once as a
/// batch, which must agree bit for bit); its values equal onnxruntime's within 1e-5, and each
/// model runs on the engine it should.
#[test]
fn plain_cpp_program_matches_onnxruntime() {
    let exe = compile("plain");
    let dir = cases();
    let json = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap()
    };
    let (man, rows) = (json("manifest.json"), json("rows.json"));
    for (name, engine) in [
        ("mlp_5_20_20_1", "native dense (dense 5-20-20-1"),
        ("mlp_80_100_100_1", "native dense (dense 80-100-100-1"),
        ("pnn", "native dense (dense 5+1-12-8-1"),
        ("dense_ops", "native dense (dense 7-33-17-9-3"),
        ("gbc", "native trees"),
        ("gbr", "native trees"),
    ] {
        let case = man["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("case {name}"));
        let model = dir.join(format!("{name}.onnx"));
        let out = dir.join(format!("{name}.cxx.f32"));
        let rows = rows[name].as_u64().unwrap() as usize;
        let args: Vec<String> = case["inputs"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(input, f)| {
                let raw = f.as_str().unwrap().replace(".npy", ".f32");
                format!("{input}={}", dir.join(raw).display())
            })
            .collect();
        let (o, text) = run(Command::new(&exe)
            .arg(&model)
            .arg(rows.to_string())
            .arg(&out)
            .args(&args));
        assert!(o.status.success(), "{name}: {text}");
        assert!(
            text.contains(&format!("engine: {engine}")),
            "{name}: {text}"
        );
        let default = text
            .lines()
            .find_map(|l| l.strip_prefix("output: "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or_else(|| panic!("{name}: {text}"))
            .to_string();
        let want = read_f32(&dir.join(format!("{name}.out.{default}.f32")));
        let per_row = want.len() / rows;
        let got = read_f32(&out);
        assert_eq!(got.len(), rows * per_row, "{name}: {text}");
        let d = max_diff(&got, &want);
        eprintln!("{name:18} {default:14} {rows} events  max|diff| vs onnxruntime {d:.2e}");
        assert!(d <= TOL, "{name}: {d}");
    }
}

/// Wrong sizes, unknown names, a missing file: hepml::Error with hepml's message, no abort.
#[test]
fn errors_arrive_as_cpp_exceptions() {
    let exe = compile("errors");
    let dir = cases();
    let (o, text) = run(Command::new(&exe)
        .arg(dir.join("mlp_80_100_100_1.onnx"))
        .arg(dir.join("pnn.onnx")));
    eprintln!("{text}");
    assert!(o.status.success(), "{text}");
    for (case, want) in [
        (
            "missing file",
            &["/no/such/model.onnx", "cannot read the model"][..],
        ),
        ("unknown engine", &["unknown engine 'fastest'"]),
        (
            "wrong size",
            &["input 'x'", "81 values", "takes 80 per event"],
        ),
        ("wrong batch size", &["239 values for 3 event(s)"]),
        (
            "unknown input",
            &["pnn.onnx", "input 'jets'", "no such input"],
        ),
        ("missing input", &["input 'mass'", "missing"]),
        (
            "wrong named size",
            &["input 'features'", "shape [1, 4]", "expects [N, 5]"],
        ),
        ("unknown output", &["no output 'y'", "label, probabilities"]),
        ("positional multi-input", &["takes 2 inputs", "by name"]),
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{case}: ")))
            .unwrap_or_else(|| panic!("{case} missing:\n{text}"));
        for w in want {
            assert!(line.contains(w), "'{w}' not in: {line}");
        }
    }
    assert!(text.contains("pnn still works: "), "{text}");
}

/// 16 threads x 100k calls on one Model give exactly the single-threaded values (native dense
/// network), and so do 16 threads on one BDT.
#[test]
fn one_model_shared_by_16_threads() {
    let exe = compile("threads");
    let dir = cases();
    for (name, calls) in [("mlp_5_20_20_1", 100_000), ("gbc", 20_000)] {
        let x = dir.join(format!("{name}.in.x.f32"));
        let rows = read_f32(&x).len() / 5;
        let (o, text) = run(Command::new(&exe)
            .arg(dir.join(format!("{name}.onnx")))
            .arg(&x)
            .arg(rows.to_string())
            .arg("16")
            .arg(calls.to_string()));
        eprintln!("{name}: {text}");
        assert!(o.status.success(), "{name}: {text}");
        assert!(
            text.contains(&format!("calls {} mismatches 0", 16 * calls)),
            "{text}"
        );
    }
}

/// ROOT 6.40 macros: a TTree loop filling a histogram (R__LOAD_LIBRARY) and an RDataFrame
/// `Define("score", ...)` under `ROOT::EnableImplicitMT`; both give onnxruntime's scores for
/// every entry, and those of `hepml inject` where a hepml binary is at hand.
#[test]
fn root_macros_score_like_onnxruntime_and_inject() {
    let dir = cases();
    let model = dir.join("zmumu_mlp.onnx");
    let zmumu = repo().join("../shared/data/root/uproot-Zmumu.root");
    assert!(zmumu.exists(), "{}", zmumu.display());
    let root = python().parent().unwrap().join("root");
    let mut outs = Vec::new();
    for (mac, want) in [
        ("tree_loop", "tree_loop: entries 2304 mean"),
        ("rdf_define", "entries 2304 mean"),
    ] {
        let out = dir.join(format!("{mac}.f32"));
        let _ = std::fs::remove_file(&out);
        let call = format!(
            "{}(\"{}\", \"{}\", \"events\", \"{}\")",
            examples().join(format!("{mac}.C")).display(),
            model.display(),
            zmumu.display(),
            out.display()
        );
        let (o, text) = run(Command::new(&root)
            .args(["-l", "-b", "-q", &call])
            .env("ROOT_INCLUDE_PATH", include_dir())
            .env("LD_LIBRARY_PATH", lib_dir()));
        assert!(o.status.success(), "{mac}: {text}");
        assert!(text.contains(want), "{mac}: {text}");
        if mac == "rdf_define" {
            assert!(!text.contains("threads 1 "), "implicit MT off: {text}");
        }
        eprintln!(
            "{}",
            text.lines()
                .filter(|l| l.starts_with(mac))
                .collect::<Vec<_>>()
                .join("\n")
        );
        outs.push(out);
    }
    let mut args: Vec<String> = vec![
        repo()
            .join("scripts/check_cxx_scores.py")
            .display()
            .to_string(),
        model.display().to_string(),
        zmumu.display().to_string(),
        "events".into(),
    ];
    args.extend(outs.iter().map(|p| p.display().to_string()));
    let bin = hepml_bin();
    let injected = dir.join("zmumu_injected.root");
    let (o, text) = run(Command::new(&bin)
        .arg("inject")
        .arg(&zmumu)
        .arg("--model")
        .arg(&model)
        .arg("--features")
        .arg(dir.join("zmumu_mlp.yaml"))
        .arg("-o")
        .arg(&injected)
        .arg("--quiet"));
    assert!(o.status.success(), "hepml inject: {text}");
    args.extend([
        "--inject".into(),
        injected.display().to_string(),
        "hepml_score".into(),
    ]);
    let (o, text) = run(Command::new(python()).args(&args));
    eprintln!("{text}");
    assert!(o.status.success(), "{text}");
    assert!(text.contains("\"values\": 2304"), "{text}");
}

/// install.sh lays out lib/, include/, the CMake package and the pkg-config file; the plain
/// example builds against the installed copy with `pkg-config --cflags --libs hepml` and with
/// CMake's `find_package(hepml)`, and both scores equal onnxruntime's.
#[test]
fn installed_package_works_with_pkg_config_and_cmake() {
    let dir = cases();
    let prefix = tmp().join(format!("cxx-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&prefix);
    let (o, text) = run(Command::new("bash")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("install.sh"))
        .arg(&prefix)
        .arg(lib_dir()));
    assert!(o.status.success(), "install.sh: {text}");
    for f in [
        "lib/libhepml.so",
        "include/hepml/hepml.hpp",
        "include/hepml/hepml.h",
        "lib/cmake/hepml/hepmlConfig.cmake",
        "lib/cmake/hepml/hepmlConfigVersion.cmake",
        "lib/pkgconfig/hepml.pc",
    ] {
        assert!(prefix.join(f).exists(), "{f} not installed");
    }
    let examples = examples();
    let (o, flags) = run(Command::new("pkg-config")
        .args(["--cflags", "--libs", "hepml"])
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")));
    assert!(o.status.success(), "pkg-config: {flags}");
    assert!(flags.contains("-lhepml"), "{flags}");
    let pc_exe = prefix.join("plain-pkgconfig");
    let (o, text) = run(Command::new("g++")
        .arg("-std=c++11")
        .arg(examples.join("plain.cpp"))
        .args(flags.split_whitespace())
        .arg("-o")
        .arg(&pc_exe));
    assert!(o.status.success(), "g++ with pkg-config flags: {text}");

    let build = prefix.join("cmake-build");
    let cmake = |args: &[&str]| {
        let (o, text) = run(Command::new("cmake").args(args));
        assert!(
            o.status.success(),
            "cmake {args:?} (cmake comes from scripts/setup_env.sh): {text}"
        );
    };
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cmake-example");
    cmake(&[
        "-S",
        src.to_str().unwrap(),
        "-B",
        build.to_str().unwrap(),
        &format!("-DCMAKE_PREFIX_PATH={}", prefix.display()),
    ]);
    cmake(&["--build", build.to_str().unwrap()]);

    let x = dir.join("mlp_5_20_20_1.in.x.f32");
    let want = read_f32(&dir.join("mlp_5_20_20_1.out.probabilities.f32"));
    for exe in [pc_exe, build.join("plain")] {
        let out = prefix.join("scores.f32");
        let (o, text) = run(Command::new(&exe)
            .arg(dir.join("mlp_5_20_20_1.onnx"))
            .arg("257")
            .arg(&out)
            .arg(format!("x={}", x.display()))
            // Found through the rpath the package recorded, not the environment.
            .env_remove("LD_LIBRARY_PATH"));
        assert!(o.status.success(), "{}: {text}", exe.display());
        let got = read_f32(&out);
        assert_eq!(got.len(), want.len());
        let d = max_diff(&got, &want);
        eprintln!("{}: max|diff| vs onnxruntime {d:.2e}", exe.display());
        assert!(d <= TOL, "{}: {d}", exe.display());
    }
}

/// Per-object inputs with a mask: the CMS ParticleNet scored jet by jet from lists of PF
/// candidates and secondary vertices (hepml::pad_objects + named inputs) equals onnxruntime on
/// the padded arrays.
#[test]
fn per_object_inputs_with_masks_match_onnxruntime() {
    let exe = compile("objects");
    let dir = cases();
    let model = repo().join("../shared/data/onnx/cms-particlenet-ak4-hlt/particle-net.onnx");
    let out = dir.join("particlenet.cxx.f32");
    let (o, text) = run(Command::new(&exe).arg(&model).arg(dir).arg("24").arg(&out));
    assert!(o.status.success(), "{text}");
    let (got, want) = (
        read_f32(&out),
        read_f32(&dir.join("particlenet.out.output.f32")),
    );
    assert_eq!(got.len(), 24 * 7, "{text}");
    assert_eq!(got.len(), want.len());
    let d = max_diff(&got, &want);
    eprintln!("particlenet per-object: max|diff| vs onnxruntime {d:.2e}");
    assert!(d <= TOL, "{d}");
}

/// A BDT `hepml train` made (k = 2 folds, NaN in a feature) and `hepml export` wrote, one file
/// per fold: the plain C++ program scores each fold's test events as the trainer did (1e-6),
/// on the native tree engine; and `hepml::Folds` (examples/cxx/folds.cpp) routes every event
/// of the signal file to its fold by event number and gives the scores `hepml inject` writes
/// with both folds (NaN passed on, as the export's metadata says), bit for bit.
#[test]
fn hepml_trained_bdt_folds_score_from_cpp_as_trained() {
    let exe = compile("plain");
    let bin = hepml_bin();
    let dir = tmp().join(format!("cxx-bdt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = |p: &str| dir.join(p).display().to_string();
    let o = Command::new(python())
        .arg(repo().join("scripts/make_tree_data.py"))
        .args([&s(""), "4000", "5"])
        .output()
        .expect("python");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
    write(
        "convert.yaml",
        format!(
            "tree: events\ncolumns: [a0, a1, a2, m5]\nevent_number: event\nsamples:\n  - {{name: s, files: [\"{}\"], label: 1}}\n  - {{name: b, files: [\"{}\"], label: 0}}\n",
            s("sig.root"),
            s("bkg.root")
        ),
    );
    write(
        "train.yaml",
        format!(
            "model: {{type: bdt, n_trees: 40, max_depth: 4}}\ndata: {{files: [\"{}\"]}}\npreparation: {{kfold: {{k: 2, branch: event}}}}\nfeatures: {{inputs: [a0, a1, a2, m5]}}\nevaluation: {{plots: false}}\n",
            s("data.h5")
        ),
    );
    for args in [
        vec![
            "convert".to_string(),
            s("convert.yaml"),
            "-o".into(),
            s("data.h5"),
            "-q".into(),
        ],
        vec![
            "train".into(),
            s("train.yaml"),
            "-o".into(),
            s("run"),
            "-q".into(),
        ],
        vec!["export".into(), s("run"), "-o".into(), s("bdt.onnx")],
    ] {
        let (o, text) = run(Command::new(&bin).args(&args));
        assert!(o.status.success(), "hepml {args:?}: {text}");
    }
    for fold in 0..2 {
        let run_dir = dir.join("run");
        let npy = |name: &str| -> Vec<f32> {
            let b = std::fs::read(run_dir.join(format!("test_fold{fold}_{name}.npy"))).unwrap();
            let header = u16::from_le_bytes([b[8], b[9]]) as usize;
            b[10 + header..]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let (x, want) = (npy("x"), npy("score"));
        assert!(x.iter().any(|v| v.is_nan()), "no missing values to route");
        let raw = dir.join(format!("x{fold}.f32"));
        std::fs::write(
            &raw,
            x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
        )
        .unwrap();
        let out = dir.join(format!("fold{fold}.f32"));
        let (o, text) = run(Command::new(&exe)
            .arg(dir.join(format!("bdt.fold{fold}.onnx")))
            .arg(want.len().to_string())
            .arg(&out)
            .arg(format!("x={}", raw.display())));
        assert!(o.status.success(), "fold {fold}: {text}");
        assert!(text.contains("engine: native trees"), "fold {fold}: {text}");
        let d = max_diff(&read_f32(&out), &want);
        eprintln!(
            "hepml BDT fold {fold}: {} events, max|diff| vs the trainer {d:.2e}",
            want.len()
        );
        assert!(d <= 1e-6, "fold {fold}: {d}");
    }

    // Routed: inject with both folds, then the same events through hepml::Folds.
    let routed = s("routed.root");
    let (o, text) = run(Command::new(&bin).args([
        "inject",
        &s("sig.root"),
        "--model",
        &s("bdt.fold0.onnx"),
        "--model",
        &s("bdt.fold1.onnx"),
        "-o",
        &routed,
        "--quiet",
    ]));
    assert!(o.status.success(), "inject: {text}");
    let names = ["a0", "a1", "a2", "m5", "event", "score"];
    let (o, text) = run(Command::new(&bin)
        .args(["inspect", &routed, "--dump"])
        .args(names));
    assert!(o.status.success(), "inspect: {text}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let col = |b: &str| -> Vec<f64> {
        v["branches"][b]
            .as_array()
            .unwrap_or_else(|| panic!("no {b}"))
            .iter()
            .map(|x| x.as_f64().unwrap_or(f64::NAN))
            .collect()
    };
    let cols: Vec<Vec<f64>> = names.iter().map(|b| col(b)).collect();
    let n = cols[4].len();
    let x: Vec<u8> = (0..n)
        .flat_map(|r| {
            let cols = &cols;
            (0..4).flat_map(move |c| (cols[c][r] as f32).to_le_bytes())
        })
        .collect();
    let events: Vec<u8> = cols[4]
        .iter()
        .flat_map(|e| (*e as i64).to_le_bytes())
        .collect();
    std::fs::write(dir.join("all.f32"), x).unwrap();
    std::fs::write(dir.join("events.i64"), events).unwrap();
    let (o, text) = run(Command::new(compile("folds"))
        .arg(s("bdt.onnx"))
        .arg(s("routed.f32"))
        .arg(s("all.f32"))
        .arg(s("events.i64")));
    assert!(o.status.success(), "folds: {text}");
    assert!(text.contains("folds: 2, routed by event"), "{text}");
    assert!(
        cols[3].iter().any(|v| v.is_nan()),
        "no missing values to route"
    );
    let want: Vec<f32> = cols[5].iter().map(|v| *v as f32).collect();
    let got = read_f32(&dir.join("routed.f32"));
    assert_eq!(got.len(), n);
    let d = max_diff(&got, &want);
    assert!(d <= 1e-6, "C++ routed scores differ from inject's: {d}");
    eprintln!("hepml::Folds: {n} events routed as inject routes them: {text}");
}
