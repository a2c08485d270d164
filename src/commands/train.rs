//! `hepml train CONFIG -o RUN_DIR` and `hepml export RUN_DIR -o MODEL.onnx`.

use crate::cli::{ExportArgs, TrainArgs};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use models::config::{ConfigFile, ModelConfig, TrainConfig};
use models::train;
use std::path::Path;

pub fn run(a: TrainArgs) -> Result<()> {
    if !a.scan.is_empty() || a.search.is_some() {
        return super::scan::run(a);
    }
    let text = std::fs::read_to_string(&a.config)
        .with_context(|| format!("reading {}", a.config.display()))?;
    let cfg = TrainConfig::from_str(&text, &a.config)?;
    if a.output.exists() && !a.force {
        bail!(
            "{} exists; choose another run directory or pass --force",
            a.output.display()
        );
    }
    match a.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(_) if !cfg.model.kind().is_trees() => bail!(
            "--threads sizes tree training (model.type bdt or random_forest); networks train on burn's pool"
        ),
        _ => {}
    }
    let device = train::device(a.device.into())?;
    let hash = format!("{:016x}", xxhash_rust::xxh64::xxh64(text.as_bytes(), 0));
    let data = train::load(&cfg, a.seed).with_context(|| a.config.display().to_string())?;
    let folds = cfg.preparation.kfold.as_ref().map_or(1, |k| k.k as u64);
    let (steps, unit) = match &cfg.model {
        ModelConfig::Bdt(b) => (b.n_trees, "trees"),
        ModelConfig::RandomForest(f) => (f.n_trees, "trees"),
        ModelConfig::Dnn(_) | ModelConfig::Pnn(_) => (cfg.training.epochs, "epochs"),
    };
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(folds * steps as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "train [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}} eta {{eta}}"
        ))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .progress_chars("=> "),
    );
    let t0 = std::time::Instant::now();
    let out = if cfg.model.kind().is_trees() {
        // Without --threads trees use every core (0); an early stop leaves the bar short of
        // its end.
        let threads = a.threads.unwrap_or(0);
        train::train_trees(&cfg, &data, a.seed, &hash, threads, |fold, tree| {
            bar.set_message(format!("fold {fold} tree {tree}"));
            bar.inc(1);
        })?
    } else {
        train::train(&cfg, &data, a.seed, &hash, device, |fold, epoch, vl| {
            bar.set_message(format!("fold {fold} epoch {epoch} valid loss {vl:.4}"));
            bar.inc(1);
        })?
    };
    bar.finish_and_clear();
    for w in &out.warnings {
        eprintln!("hepml: warning: {w}");
    }
    let tmp = rootio::write::file::tmp_name(&a.output);
    let m = train::metrics(&data, &out);
    let mut r = write_run(&tmp, &cfg, &text, &data, &out, &m, a.seed);
    if r.is_ok() && cfg.evaluation.explain {
        r = super::explain::for_run(&tmp, &tmp.join("explain"), a.quiet)
            .context("evaluation.explain");
    }
    if let Err(e) = r {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if a.output.exists() {
        std::fs::remove_dir_all(&a.output)
            .with_context(|| format!("replacing {}", a.output.display()))?;
    }
    std::fs::rename(&tmp, &a.output)
        .with_context(|| format!("renaming {} to {}", tmp.display(), a.output.display()))?;
    let figures = if cfg.model.is_classifier() {
        format!(
            "test AUC {:.4}, accuracy {:.4}",
            m["test"]["auc"].as_f64().unwrap_or(f64::NAN),
            m["test"]["accuracy"].as_f64().unwrap_or(f64::NAN)
        )
    } else {
        format!(
            "test RMSE {:.4}",
            m["test"]["rmse"].as_f64().unwrap_or(f64::NAN)
        )
    };
    eprintln!(
        "hepml: trained {} fold(s) on {} events in {:.1} s ({:.0} events/s); {figures} -> {}",
        folds,
        data.rows(),
        t0.elapsed().as_secs_f64(),
        out.events_per_second,
        a.output.display()
    );
    if let (Some(p), Some(per)) = (
        &out.model.parameter,
        m["test"]["auc_per_parameter"].as_object(),
    ) {
        let list: Vec<String> = per
            .iter()
            .map(|(v, a)| format!("{v} {:.4}", a.as_f64().unwrap_or(f64::NAN)))
            .collect();
        eprintln!("hepml: test AUC per {p}: {}", list.join(", "));
    }
    if let Some((_, _, s)) = &out.lr_finder {
        eprintln!("hepml: lr finder suggests a learning rate of {s:.2e}");
    }
    Ok(())
}

fn write_run(
    dir: &Path,
    cfg: &TrainConfig,
    text: &str,
    data: &train::Data,
    out: &train::Outcome,
    metrics: &serde_json::Value,
    seed: u64,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = dir.join(name);
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))
    };
    write("config.yaml", text.as_bytes())?;
    // What `hepml explain RUN_DIR` needs to rebuild the same splits.
    write(
        "run.json",
        serde_json::to_string_pretty(&serde_json::json!({"seed": seed}))?.as_bytes(),
    )?;
    write("model.json", serde_json::to_string(&out.model)?.as_bytes())?;
    write(
        "metrics.json",
        serde_json::to_string_pretty(metrics)?.as_bytes(),
    )?;
    if cfg.evaluation.plots {
        let plots = dir.join("plots");
        std::fs::create_dir_all(&plots)?;
        models::plots::write_all(&plots, data, out)?;
    }
    let f = data.width();
    for (i, (rows, scores)) in out.test.iter().enumerate() {
        let mut x = Vec::with_capacity(rows.len() * f);
        for &r in rows {
            x.extend_from_slice(&data.x[r * f..(r + 1) * f]);
        }
        train::write_npy(
            &dir.join(format!("test_fold{i}_x.npy")),
            &[rows.len(), f],
            &x,
        )?;
        train::write_npy(
            &dir.join(format!("test_fold{i}_score.npy")),
            &[scores.len()],
            scores,
        )?;
        let y: Vec<f32> = rows.iter().map(|&r| data.y[r]).collect();
        train::write_npy(&dir.join(format!("test_fold{i}_label.npy")), &[y.len()], &y)?;
    }
    Ok(())
}

pub fn export(a: ExportArgs) -> Result<()> {
    let m = models::export::load(&a.run)?;
    let files = models::export::export(&m, &a.branch)?;
    let paths = models::export::fold_paths(&a.output, files.len());
    for (p, bytes) in paths.iter().zip(&files) {
        rootio::write::file::write_atomic(p, bytes)
            .with_context(|| format!("writing {}", p.display()))?;
        eprintln!("hepml: wrote {}", p.display());
    }
    Ok(())
}
