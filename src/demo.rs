//! `hepml demo`: the main job end to end on data it generates, on the CPU, in seconds:
//! write a signal/background ntuple with hepml's own ROOT writer, fit a classifier on the even
//! events (a Fisher linear discriminant — closed form, no training loop), export it as ONNX
//! with hepml metadata, score the ntuple with `hepml inject` (the same code path users run),
//! and measure the AUC on the odd events the classifier never saw.

use anyhow::{bail, Context, Result};
use clap::Args;
use engine::onnx_build::Dense;
use injector::rootio::write::{BranchSpec, FileWriter, TreeWriter};
use injector::rootio::{Array, BranchReader, Compression, Data, Interp, Prim, RootFile, Shape};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct DemoArgs {
    /// Folder for the demo's files.
    #[arg(long, default_value = "demo-out")]
    out: PathBuf,
    /// Events to generate (half signal, half background).
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

const FEATURES: usize = 5;

/// xorshift64* with Box-Muller normals: reproducible from the seed, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-300), self.next());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn arr(prim: Prim, shape: Shape, n: usize, data: Data, offsets: Option<Vec<usize>>) -> Array {
    Array {
        interp: Interp { prim, shape },
        start: 0,
        entries: n as u64,
        data,
        offsets,
    }
}

/// Writes the demo ntuple: event, label, weight, f0..f4 (signal shifted and correlated),
/// nJet and Jet_pt[nJet].
fn generate(path: &Path, events: u64, seed: u64) -> Result<()> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
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
                let shift = if sig {
                    0.5 * (i as f64 + 1.0) / FEATURES as f64 + 0.4
                } else {
                    0.0
                };
                c.push((rng.normal() + 0.5 * shared + shift) as f32);
            }
            ev.push(e);
            lab.push(sig as i32);
            wt.push(if sig { 0.5 } else { 1.0 + 0.1 * rng.normal() } as f32);
            let j = (rng.next() * if sig { 6.0 } else { 4.0 }) as usize;
            nj.push(j as i32);
            for _ in 0..j {
                jpt.push((30.0 + 40.0 * rng.next().powi(2) * if sig { 2.0 } else { 1.0 }) as f32);
            }
            offs.push(jpt.len());
        }
        let mut arrays = vec![
            arr(Prim::U64, Shape::Scalar, n, Data::U64(ev), None),
            arr(Prim::I32, Shape::Scalar, n, Data::I32(lab), None),
            arr(Prim::F32, Shape::Scalar, n, Data::F32(wt), None),
        ];
        for c in cols {
            arrays.push(arr(Prim::F32, Shape::Scalar, n, Data::F32(c), None));
        }
        arrays.push(arr(Prim::I32, Shape::Scalar, n, Data::I32(nj), None));
        arrays.push(arr(
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

fn read_f64(file: &RootFile, tree: &injector::rootio::Tree, name: &str) -> Result<Vec<f64>> {
    let b = tree.branch(name)?;
    let a = BranchReader::new(file, tree, b)?.read(0, tree.entries)?;
    Ok((0..a.data.len()).map(|i| a.data.get_f64(i)).collect())
}

/// Fisher's discriminant on the even events: w = S_w^-1 (mu_s - mu_b).
fn fit(path: &Path) -> Result<(Vec<f32>, f32)> {
    let f = RootFile::open(path)?;
    let t = f.tree("events")?;
    let label = read_f64(&f, &t, "label")?;
    let event = read_f64(&f, &t, "event")?;
    let x: Vec<Vec<f64>> = (0..FEATURES)
        .map(|i| read_f64(&f, &t, &format!("f{i}")))
        .collect::<Result<_>>()?;
    let train: Vec<usize> = (0..label.len())
        .filter(|&i| (event[i] as u64).is_multiple_of(2))
        .collect();
    let mut mu = [[0.0; FEATURES]; 2];
    let mut cnt = [0.0; 2];
    for &i in &train {
        let c = label[i] as usize;
        cnt[c] += 1.0;
        for j in 0..FEATURES {
            mu[c][j] += x[j][i];
        }
    }
    if cnt[0] == 0.0 || cnt[1] == 0.0 {
        bail!("a class has no training events");
    }
    for (m, n) in mu.iter_mut().zip(cnt) {
        m.iter_mut().for_each(|v| *v /= n);
    }
    let mut s = [[0.0; FEATURES]; FEATURES];
    for &i in &train {
        let c = label[i] as usize;
        for a in 0..FEATURES {
            for b in 0..FEATURES {
                s[a][b] += (x[a][i] - mu[c][a]) * (x[b][i] - mu[c][b]);
            }
        }
    }
    // Solve S w = (mu_s - mu_b) by Gaussian elimination with partial pivoting.
    let mut m: Vec<Vec<f64>> = (0..FEATURES)
        .map(|a| {
            let mut r = s[a].to_vec();
            r.push(mu[1][a] - mu[0][a]);
            r
        })
        .collect();
    for c in 0..FEATURES {
        let p = (c..FEATURES)
            .max_by(|&a, &b| m[a][c].abs().total_cmp(&m[b][c].abs()))
            .unwrap_or(c);
        m.swap(c, p);
        if m[c][c].abs() < 1e-12 {
            bail!("singular covariance");
        }
        let pivot = m[c].clone();
        for (r, row) in m.iter_mut().enumerate() {
            if r != c {
                let k = row[c] / pivot[c];
                for (q, v) in row.iter_mut().enumerate().skip(c) {
                    *v -= k * pivot[q];
                }
            }
        }
    }
    let n = train.len() as f64;
    let w: Vec<f64> = (0..FEATURES)
        .map(|a| m[a][FEATURES] / m[a][a] * n)
        .collect();
    let mid: f64 = (0..FEATURES)
        .map(|a| w[a] * (mu[0][a] + mu[1][a]) / 2.0)
        .sum();
    Ok((w.iter().map(|&v| v as f32).collect(), -mid as f32))
}

/// Area under the ROC curve (Mann-Whitney), events of one parity.
fn auc(score: &[f64], label: &[f64], event: &[f64], parity: u64) -> f64 {
    let mut v: Vec<(f64, bool)> = (0..score.len())
        .filter(|&i| event[i] as u64 % 2 == parity)
        .map(|i| (score[i], label[i] > 0.5))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut npos) = (0.0, 0.0);
    for (r, (_, pos)) in v.iter().enumerate() {
        if *pos {
            rank_sum += r as f64 + 1.0;
            npos += 1.0;
        }
    }
    let nneg = v.len() as f64 - npos;
    (rank_sum - npos * (npos + 1.0) / 2.0) / (npos * nneg)
}

pub fn run(a: DemoArgs, inject: impl Fn(Vec<String>) -> Result<()>) -> Result<()> {
    let t0 = std::time::Instant::now();
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let ntuple = a.out.join("demo.root");
    let model = a.out.join("fisher.onnx");
    let scored = a.out.join("demo_scored.root");
    eprintln!(
        "hepml demo: 1/4 writing {} events to {}",
        a.events,
        ntuple.display()
    );
    generate(&ntuple, a.events, a.seed)?;
    eprintln!("hepml demo: 2/4 fitting a Fisher discriminant on the even events");
    let (w, b) = fit(&ntuple)?;
    let names: Vec<String> = (0..FEATURES).map(|i| format!("f{i}")).collect();
    let onnx = Dense {
        input: "features".into(),
        output: "score".into(),
        layers: vec![(FEATURES, 1, w.clone(), vec![b])],
        hidden: String::new(),
        final_act: "Sigmoid".into(),
        standardise: None,
        metadata: vec![
            (
                "hepml.inputs".into(),
                serde_json::json!({ "features": names }).to_string(),
            ),
            (
                "hepml.outputs".into(),
                serde_json::json!({ "score": "demo_score" }).to_string(),
            ),
            ("hepml.label".into(), "label".into()),
            ("hepml.version".into(), env!("CARGO_PKG_VERSION").into()),
            (
                "hepml.note".into(),
                "Fisher discriminant fitted by hepml demo on events with event % 2 == 0".into(),
            ),
        ],
    };
    std::fs::write(&model, onnx.to_bytes()).with_context(|| model.display().to_string())?;
    eprintln!(
        "hepml demo: 3/4 exported {} (weights {:?}, bias {b:.3})",
        model.display(),
        w
    );
    eprintln!(
        "hepml demo: 4/4 hepml inject {} --model {} -o {}",
        ntuple.display(),
        model.display(),
        scored.display()
    );
    inject(vec![
        "hepml".into(),
        "inject".into(),
        ntuple.display().to_string(),
        "--model".into(),
        model.display().to_string(),
        "-o".into(),
        scored.display().to_string(),
    ])?;
    let f = RootFile::open(&scored)?;
    let t = f.tree("events")?;
    let score = read_f64(&f, &t, "demo_score")?;
    let label = read_f64(&f, &t, "label")?;
    let event = read_f64(&f, &t, "event")?;
    let (train_auc, test_auc) = (
        auc(&score, &label, &event, 0),
        auc(&score, &label, &event, 1),
    );
    println!(
        "{}",
        serde_json::json!({
            "ntuple": ntuple, "model": model, "scored": scored, "events": t.entries,
            "branches": t.branches.len(), "auc_train_even": train_auc, "auc_test_odd": test_auc,
            "seconds": t0.elapsed().as_secs_f64(),
        })
    );
    eprintln!("hepml demo: done in {:.1} s: AUC {test_auc:.4} on the held-out odd events (train {train_auc:.4}); inspect with `hepml inspect {}`", t0.elapsed().as_secs_f64(), scored.display());
    if test_auc.is_nan() || test_auc <= 0.7 {
        bail!("the demo classifier's AUC {test_auc:.3} is implausibly low");
    }
    Ok(())
}
