//! Events/s of one model on hepml's engines at a fixed batch, for `scripts/bench_taggers.py`
//! (which compares them with onnxruntime's). Not a test.
//!
//! ```text
//! bench_engines MODEL THREADS CALLS NAME=FILE.f32:D0xD1x... [NAME=...]
//! ```
//!
//! Each input is raw little-endian f32 of the given shape (the batch first). For each engine
//! setting ("auto", "auto without ONNX Runtime", "tract", "native", "ort") it prints one JSON line:
//! the engine chosen and why (or the refusal), the median seconds per call over CALLS calls
//! (after a warm-up), events/s, and the outputs (for the script's agreement check).
//! `HEPML_BENCH_SETTINGS` (a comma-separated list of those names) runs only those.

use engine::{EngineKind, EngineOptions, Model, OrtLibrary, Tensor};
use std::time::Instant;

fn input(arg: &str) -> Result<Tensor, String> {
    let (name, rest) = arg.split_once('=').ok_or("NAME=FILE:SHAPE")?;
    let (file, shape) = rest.rsplit_once(':').ok_or("NAME=FILE:SHAPE")?;
    let shape: Vec<usize> = shape
        .split('x')
        .map(|d| d.parse().map_err(|e| format!("{shape}: {e}")))
        .collect::<Result<_, _>>()?;
    let bytes = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    let data: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if data.len() != shape.iter().product::<usize>() {
        return Err(format!("{file}: {} values for shape {shape:?}", data.len()));
    }
    Ok(Tensor::new(name, shape, data))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, threads, calls, inputs @ ..] = args.as_slice() else {
        return Err("usage: bench_engines MODEL THREADS CALLS NAME=FILE.f32:SHAPE...".into());
    };
    let threads: usize = threads.parse().map_err(|e| format!("THREADS: {e}"))?;
    let calls: usize = calls.parse().map_err(|e| format!("CALLS: {e}"))?;
    let inputs: Vec<Tensor> = inputs.iter().map(|a| input(a)).collect::<Result<_, _>>()?;
    let batch = inputs.first().map_or(0, |t| t.shape[0]);
    let model = Model::read(std::path::Path::new(model)).map_err(|e| e.to_string())?;
    let only = std::env::var("HEPML_BENCH_SETTINGS").ok();
    let wanted = |label: &str| {
        only.as_ref()
            .is_none_or(|o| o.split(',').any(|s| s == label))
    };
    for (label, kind, ort) in [
        ("auto", EngineKind::Auto, OrtLibrary::Search),
        ("auto, no ONNX Runtime", EngineKind::Auto, OrtLibrary::Off),
        ("tract", EngineKind::Tract, OrtLibrary::Off),
        ("native", EngineKind::Native, OrtLibrary::Off),
        ("ort", EngineKind::Ort, OrtLibrary::Search),
    ] {
        if !wanted(label) {
            continue;
        }
        let opts = EngineOptions {
            kind,
            ort_library: ort,
            ort_sessions: 1,
            threads,
            ..Default::default()
        };
        let line = match engine::open_with_choice(&model, &opts) {
            Err(e) => serde_json::json!({"setting": label, "error": e.to_string()}),
            Ok((e, choice)) => {
                let e = e.into_engine();
                match time_calls(e.as_ref(), &inputs, calls) {
                    // An engine that loads but fails to run is reported, and the others still run.
                    Err(err) => serde_json::json!({"setting": label, "error": err}),
                    Ok((median, out)) => serde_json::json!({
                        "setting": label,
                        "engine": choice.kind.name(),
                        "reason": choice.reason,
                        "describe": e.describe(),
                        "seconds_per_call": median,
                        "events_per_s": batch as f64 / median,
                        "outputs": out.iter().map(|t| (t.name.clone(), t.data.clone())).collect::<std::collections::BTreeMap<_, _>>(),
                    }),
                }
            }
        };
        println!("{line}");
    }
    Ok(())
}

/// Four calls to warm up, then the median of `calls` timed ones, and the last outputs.
fn time_calls(
    e: &dyn engine::Engine,
    inputs: &[Tensor],
    calls: usize,
) -> Result<(f64, Vec<Tensor>), String> {
    let run = || e.run(inputs).map_err(|err| err.to_string());
    let mut out = run()?;
    for _ in 0..3 {
        out = run()?;
    }
    let mut times: Vec<f64> = (0..calls.max(1))
        .map(|_| {
            let t = Instant::now();
            run().map(|_| t.elapsed().as_secs_f64())
        })
        .collect::<Result<_, _>>()?;
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], out))
}
