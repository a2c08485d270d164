//! Informal per-call latency of the engines at batch 1 (and per row at batch 1024).
//!
//! ```text
//! .venv/bin/python scripts/make_engine_models.py /tmp/engine-models
//! cargo run --release -p engine --features ort --example engine_latency -- /tmp/engine-models
//! ```
//!
//! Models: `mlp_80_100_100_1.onnx` (sklearn MLP 80-100-100-1), `gbc.onnx` (sklearn
//! GradientBoostingClassifier, 100 trees of depth 3), `gbr.onnx` (GradientBoostingRegressor,
//! 50 trees, which tract can load).

use engine::{tract::TractEngine, Engine, EngineKind, EngineOptions, Model, Opened, Tensor};
use std::path::Path;
use std::time::Instant;

/// Best of 5 rounds of the mean time per call, in microseconds.
fn time_calls(f: &dyn Fn()) -> f64 {
    for _ in 0..200 {
        f();
    }
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let n = 2000;
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    best
}

fn input(name: &str, rows: usize, cols: usize) -> Vec<Tensor> {
    let data = (0..rows * cols)
        .map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0)
        .collect();
    vec![Tensor::new(name, vec![rows, cols], data)]
}

fn line(what: &str, e: &dyn Engine, cols: usize) {
    let one = input("x", 1, cols);
    let many = input("x", 1024, cols);
    let t1 = time_calls(&|| {
        e.run(&one).unwrap();
    });
    let t1024 = time_calls(&|| {
        e.run(&many).unwrap();
    }) / 1024.0;
    println!("{what:44} batch 1: {t1:8.2} us/call   batch 1024: {t1024:7.3} us/row");
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: engine_latency MODELS_DIR (from scripts/make_engine_models.py)");
    let dir = Path::new(&dir);
    let open = |file: &str, kind: EngineKind| {
        let opts = EngineOptions {
            kind,
            ort_sessions: 1,
            threads: 1,
            ..Default::default()
        };
        Model::read(&dir.join(file))
            .and_then(|m| engine::open(&m, &opts))
            .map(Opened::into_engine)
    };

    match open("mlp_80_100_100_1.onnx", EngineKind::Native) {
        Ok(e) => line(
            &format!(
                "MLP 80-100-100-1, {}",
                e.describe().split(" on ").next().unwrap_or("")
            ),
            e.as_ref(),
            80,
        ),
        Err(e) => println!("native: {e}"),
    }
    let mlp = dir.join("mlp_80_100_100_1.onnx");
    let mut tract = TractEngine::load(&Model::read(&mlp).unwrap()).unwrap();
    tract.threads = 1;
    line("MLP 80-100-100-1, tract (fixed-shape plans)", &tract, 80);
    let x1 = input("x", 1, 80);
    let t = time_calls(&|| {
        tract.run_symbolic(&x1).unwrap();
    });
    println!(
        "{:44} batch 1: {t:8.2} us/call",
        "MLP 80-100-100-1, tract (symbolic plan)"
    );
    match open("mlp_80_100_100_1.onnx", EngineKind::Ort) {
        Ok(e) => line("MLP 80-100-100-1, ort (1 thread)", e.as_ref(), 80),
        Err(e) => println!("ort: {e}"),
    }

    for (file, what, cols) in [
        ("gbc.onnx", "BDT 100 trees depth 3 (GBC)", 5),
        ("gbr.onnx", "BDT 50 trees depth 3 (GBR)", 5),
    ] {
        for (kind, name) in [
            (EngineKind::Trees, "native trees"),
            (EngineKind::Tract, "tract"),
            (EngineKind::Ort, "ort (1 thread)"),
        ] {
            match open(file, kind) {
                Ok(e) => line(&format!("{what}, {name}"), e.as_ref(), cols),
                Err(err) => println!("{what}, {name}: {err}"),
            }
        }
    }
}
