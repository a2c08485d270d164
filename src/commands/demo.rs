//! `hepml demo`: the main job end to end on data it generates, on the CPU, in seconds. It runs
//! the same code as the commands, in their order:
//! 1. write a signal/background ntuple with hepml's own ROOT writer;
//! 2. `hepml convert` it to an HDF5 table (the config is written beside it, `convert.yaml`);
//! 3. `hepml train` a small DNN as a 2-fold ensemble split by event number (`train.yaml`);
//! 4. `hepml export` one ONNX file per fold;
//! 5. `hepml inject` the ntuple: each event is scored by the fold that never trained on it.
//!
//! It then prints the AUC of those held-out scores next to the best AUC any classifier can
//! reach on the same events: that of the true likelihood ratio, which the generator knows.

use crate::cli::{ConvertArgs, DemoArgs, ExportArgs, TrainArgs};
use anyhow::{bail, Context, Result};
use injector::inject::{Options, Plan};
use rootio::write::{BranchSpec, FileWriter, TreeWriter};
use rootio::{Array, BranchReader, Compression, Data, Prim, RootFile, Shape};
use std::path::Path;

const FEATURES: usize = 5;

/// Writes the demo ntuple: event, label, weight, f0..f4 (signal shifted and correlated),
/// nJet and Jet_pt[nJet].
fn generate(path: &Path, events: u64, seed: u64) -> Result<()> {
    let mut rng = models::rng::Rng::new(seed);
    let mut fw = FileWriter::create(path, Compression::DEFAULT)?;
    let mut specs = vec![
        BranchSpec::scalar("event", Prim::U64),
        BranchSpec::scalar("label", Prim::I32),
        BranchSpec::scalar("weight", Prim::F32),
    ];
    for i in 0..FEATURES {
        specs.push(BranchSpec::scalar(&format!("f{i}"), Prim::F32));
    }
    specs.push(BranchSpec::scalar("nJet", Prim::I32));
    specs.push(BranchSpec::new(
        "Jet_pt",
        Prim::F32,
        Shape::Var {
            counter: "nJet".into(),
            inner: vec![],
        },
    ));
    let mut tw = TreeWriter::new(
        &mut fw,
        "events",
        "hepml demo: signal (label 1) vs background (label 0)",
        &specs,
    )?;
    let chunk = 50_000u64;
    let mut start = 0;
    while start < events {
        let n = chunk.min(events - start) as usize;
        let mut cols: Vec<Vec<f32>> = (0..FEATURES).map(|_| Vec::with_capacity(n)).collect();
        let (mut ev, mut lab, mut wt, mut nj, mut jpt) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::new(),
        );
        let mut offs = vec![0usize];
        for k in 0..n {
            let e = start + k as u64;
            let sig = e % 4 < 2;
            let shared = rng.normal();
            for (i, c) in cols.iter_mut().enumerate() {
                let mean = if sig { shift(i) } else { 0.0 };
                c.push((rng.normal() + 0.5 * shared + mean) as f32);
            }
            ev.push(e);
            lab.push(sig as i32);
            wt.push(if sig { 0.5 } else { 1.0 + 0.1 * rng.normal() } as f32);
            let j = (rng.uniform() * if sig { 6.0 } else { 4.0 }) as usize;
            nj.push(j as i32);
            for _ in 0..j {
                jpt.push(
                    (30.0 + 40.0 * rng.uniform().powi(2) * if sig { 2.0 } else { 1.0 }) as f32,
                );
            }
            offs.push(jpt.len());
        }
        let mut arrays = vec![
            Array::of(Prim::U64, Shape::Scalar, n, Data::U64(ev), None),
            Array::of(Prim::I32, Shape::Scalar, n, Data::I32(lab), None),
            Array::of(Prim::F32, Shape::Scalar, n, Data::F32(wt), None),
        ];
        for c in cols {
            arrays.push(Array::of(Prim::F32, Shape::Scalar, n, Data::F32(c), None));
        }
        arrays.push(Array::of(Prim::I32, Shape::Scalar, n, Data::I32(nj), None));
        arrays.push(Array::of(
            Prim::F32,
            Shape::Var {
                counter: "nJet".into(),
                inner: vec![],
            },
            n,
            Data::F32(jpt),
            Some(offs),
        ));
        for (k, a) in arrays.iter().enumerate() {
            tw.append(&mut fw, k, a)?;
        }
        start += n as u64;
    }
    tw.finish(&mut fw)?;
    fw.finish()?;
    Ok(())
}

fn read_f64(file: &RootFile, tree: &rootio::Tree, name: &str) -> Result<Vec<f64>> {
    let b = tree.branch(name)?;
    let a = BranchReader::new(file, tree, b)?.read(0, tree.entries)?;
    Ok((0..a.data.len()).map(|i| a.data.get_f64(i)).collect())
}

/// The signal's mean shift of feature `i` (the background's mean is 0).
fn shift(i: usize) -> f64 {
    0.5 * (i as f64 + 1.0) / FEATURES as f64 + 0.4
}

/// The optimal classifier's scores (a monotonic function of the likelihood ratio) of every event.
///
/// f0..f4 are Gaussian with covariance S = I + 0.25 * 11^T in both classes, the signal's mean
/// shifted by d: the log-ratio is w.x + const with w = S^-1 d, and S^-1 = I - c 11^T with
/// c = 0.25 / (1 + 0.25 * 5) (Sherman-Morrison), so w_i = d_i - c * sum(d). nJet is uniform on
/// 0..5 for signal and 0..3 for background: nJet >= 4 is certainly signal, below it the ratio is
/// a constant. Jet_pt is not a training input.
fn best_scores(x: &[Vec<f64>], n_jet: &[f64]) -> Vec<f32> {
    let c = 0.25 / (1.0 + 0.25 * FEATURES as f64);
    let sum_d: f64 = (0..FEATURES).map(shift).sum();
    let w: Vec<f64> = (0..FEATURES).map(|i| shift(i) - c * sum_d).collect();
    (0..n_jet.len())
        .map(|e| {
            if n_jet[e] >= 4.0 {
                f32::MAX
            } else {
                w.iter().zip(x).map(|(wi, xi)| wi * xi[e]).sum::<f64>() as f32
            }
        })
        .collect()
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

pub fn run(a: DemoArgs) -> Result<()> {
    let t0 = std::time::Instant::now();
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let p = |name: &str| a.out.join(name);
    let (ntuple, table, run_dir, model, scored) = (
        p("demo.root"),
        p("data.h5"),
        p("run"),
        p("model.onnx"),
        p("demo_scored.root"),
    );
    let step = |k: usize, what: String| eprintln!("hepml demo: {k}/5 {what}");
    step(
        1,
        format!("writing {} events to {}", a.events, ntuple.display()),
    );
    generate(&ntuple, a.events, a.seed)?;

    let convert_yaml = p("convert.yaml");
    write_text(
        &convert_yaml,
        &format!(
            "# Written by hepml demo: the ntuple's signal and background events as one table.\n\
             tree: events\n\
             columns: [f0, f1, f2, f3, f4, nJet]\n\
             weight: weight\n\
             event_number: event\n\
             samples:\n\
             \x20 - {{name: signal, files: [\"{n}\"], label: 1, selection: \"label == 1\"}}\n\
             \x20 - {{name: background, files: [\"{n}\"], label: 0, selection: \"label == 0\"}}\n",
            n = ntuple.display()
        ),
    )?;
    step(
        2,
        format!(
            "hepml convert {} -o {}",
            convert_yaml.display(),
            table.display()
        ),
    );
    super::convert::run(ConvertArgs {
        config: convert_yaml,
        output: table.clone(),
        quiet: false,
        shard: Default::default(),
    })?;

    let train_yaml = p("train.yaml");
    write_text(
        &train_yaml,
        &format!(
            "# Written by hepml demo: a small DNN as a 2-fold ensemble; fold i is tested on the\n\
             # events with event % 2 == i and trained on the others.\n\
             model: {{type: dnn, width: 32, depth: 2, activation: relu}}\n\
             data: {{files: [\"{t}\"]}}\n\
             preparation: {{kfold: {{k: 2, branch: event}}}}\n\
             features: {{inputs: [f0, f1, f2, f3, f4, nJet], weight: weight}}\n\
             training: {{optimizer: adam, learning_rate: 0.003, batch_size: 256, epochs: 4}}\n",
            t = table.display()
        ),
    )?;
    step(
        3,
        format!(
            "hepml train {} -o {}",
            train_yaml.display(),
            run_dir.display()
        ),
    );
    super::train::run(TrainArgs {
        config: train_yaml,
        output: run_dir.clone(),
        seed: a.seed,
        device: crate::cli::TrainDevice::Cpu,
        force: true,
        quiet: false,
        scan: Vec::new(),
        search: None,
        jobs: 1,
        threads: None,
    })?;

    step(
        4,
        format!("hepml export {} -o {}", run_dir.display(), model.display()),
    );
    super::train::export(ExportArgs {
        run: run_dir.clone(),
        output: model.clone(),
        branch: "demo_score".into(),
    })?;
    let folds = models::export::fold_paths(&model, 2);

    step(
        5,
        format!(
            "hepml inject {} --model {} -o {}",
            ntuple.display(),
            folds
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
            scored.display()
        ),
    );
    let plan = Plan::new(Options::new(
        vec![ntuple.clone()],
        folds.clone(),
        scored.clone(),
    ))?;
    super::inject::run_plan(&plan, false, false)?;

    let f = RootFile::open(&scored)?;
    let t = f.tree("events")?;
    let score = read_f64(&f, &t, "demo_score")?;
    let label = read_f64(&f, &t, "label")?;
    let n_jet = read_f64(&f, &t, "nJet")?;
    let x: Vec<Vec<f64>> = (0..FEATURES)
        .map(|i| read_f64(&f, &t, &format!("f{i}")))
        .collect::<Result<_>>()?;
    let labels: Vec<f32> = label.iter().map(|&l| f32::from(l > 0.5)).collect();
    let held_out: Vec<f32> = score.iter().map(|&s| s as f32).collect();
    let best = best_scores(&x, &n_jet);
    let auc = models::metrics::auc(&held_out, &labels);
    let auc_best = models::metrics::auc(&best, &labels);
    println!(
        "{}",
        serde_json::json!({
            "ntuple": ntuple, "table": table, "run": run_dir, "models": folds, "scored": scored,
            "events": t.entries, "branches": t.branches.len(),
            "auc_held_out": auc, "auc_best_possible": auc_best,
            "seconds": t0.elapsed().as_secs_f64(),
        })
    );
    eprintln!(
        "hepml demo: done in {:.1} s. AUC {auc:.4} on scores from the fold that never saw each event; \
         the best possible (true likelihood ratio) is {auc_best:.4}. Plots: {}; inspect with `hepml inspect {}`",
        t0.elapsed().as_secs_f64(),
        run_dir.join("plots").display(),
        scored.display()
    );
    if auc.is_nan() || auc < auc_best - 0.05 {
        bail!("the demo classifier's AUC {auc:.3} is implausibly far below the best possible {auc_best:.3}");
    }
    Ok(())
}
