//! `hepml train CONFIG -o SCAN_DIR --scan KEY=VALUES... [--search N] [--jobs J]`: one run
//! directory per point of a hyperparameter grid or search, trained in parallel child
//! processes, then a summary (train and valid AUC against each parameter, the best point by
//! valid AUC).
//!
//! Layout of SCAN_DIR: `scan.json` (the scan's definition and its points, rewritten as points
//! are proposed), `configs/pNNN.yaml` (each point's full config), `points/pNNN/` (each point's
//! run directory, renamed into place only when its training completed), `logs/pNNN.log`, and
//! `summary.json`, `summary.tsv`, `summary.png`.
//!
//! Resuming: running the same command again trains only the points without a run directory
//! (an interrupted or failed point is trained again); a search proposes its remaining points.
//! The same directory with another config, seed or parameters is refused.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use models::rng::Rng;
use models::scan::{self, Param, Point, Trained};
use serde_json::{json, Value};

use crate::cli::TrainArgs;

/// One point of the scan and what became of it.
struct Entry {
    name: String,
    point: Point,
    /// (train, valid, test) AUC once trained.
    aucs: Option<[f64; 3]>,
    failed: bool,
}

fn point_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join("points").join(name)
}

/// Reads the train/valid/test AUC of a finished run directory, if there is one.
fn read_aucs(run: &Path) -> Option<[f64; 3]> {
    let text = std::fs::read_to_string(run.join("metrics.json")).ok()?;
    let m: Value = serde_json::from_str(&text).ok()?;
    let get = |k: &str| m[k]["auc"].as_f64().unwrap_or(f64::NAN);
    Some([get("train"), get("valid"), get("test")])
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    rootio::write::file::write_atomic(path, bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// The scan's identity: a directory holding another scan is not resumed by this one.
fn definition(a: &TrainArgs, text: &str, params: &[Param]) -> Result<Value> {
    Ok(json!({
        "config": a.config.display().to_string(),
        "config_hash": format!("{:016x}", xxhash_rust::xxh64::xxh64(text.as_bytes(), 0)),
        "seed": a.seed,
        "search": a.search,
        "params": serde_json::to_value(params)?,
    }))
}

/// Opens SCAN_DIR for this scan: creates it, or resumes the points it already lists.
fn open_dir(a: &TrainArgs, def: &Value) -> Result<Vec<(String, Point)>> {
    let dir = &a.output;
    let state = dir.join("scan.json");
    if dir.exists() && a.force {
        std::fs::remove_dir_all(dir).with_context(|| format!("replacing {}", dir.display()))?;
    }
    if !dir.exists() {
        for sub in ["configs", "points", "logs"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        return Ok(Vec::new());
    }
    let Ok(text) = std::fs::read_to_string(&state) else {
        bail!(
            "{} exists and is not a scan directory (no scan.json); choose another directory or pass --force",
            dir.display()
        );
    };
    let old: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", state.display()))?;
    for key in ["config_hash", "seed", "search", "params"] {
        if old["definition"][key] != def[key] {
            bail!(
                "{} holds another scan (its {key} differs); choose another directory or pass --force to replace it",
                dir.display()
            );
        }
    }
    let mut points = Vec::new();
    for p in old["points"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let name = p["name"].as_str().map(str::to_owned);
        let values: Option<Point> = serde_json::from_value(p["values"].clone()).ok();
        match (name, values) {
            (Some(n), Some(v)) => points.push((n, v)),
            _ => bail!("{}: a point without name or values", state.display()),
        }
    }
    // Leftovers of points interrupted while writing their run directory.
    if let Ok(rd) = std::fs::read_dir(dir.join("points")) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().contains(".hepml-tmp-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(points)
}

fn save_state(dir: &Path, def: &Value, entries: &[Entry]) -> Result<()> {
    let points: Vec<Value> = entries
        .iter()
        .map(|e| json!({"name": e.name, "values": e.point}))
        .collect();
    let doc = json!({"definition": def, "points": points});
    write_atomic(
        &dir.join("scan.json"),
        serde_json::to_string_pretty(&doc)?.as_bytes(),
    )
}

/// Starts `hepml train` for one point, its output in the point's log.
fn spawn(a: &TrainArgs, seed: u64, config: &Path, run: &Path, log: &Path) -> Result<Child> {
    let exe = std::env::current_exe().context("locating the hepml executable")?;
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let device = a
        .device
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_else(|| "cpu".into());
    let threads = a
        .threads
        .map(|t| vec!["--threads".to_string(), t.to_string()]);
    Command::new(exe)
        .arg("train")
        .arg(config)
        .arg("-o")
        .arg(run)
        .args(threads.unwrap_or_default())
        .args([
            "--seed",
            &seed.to_string(),
            "--device",
            &device,
            "--quiet",
            "--force",
        ])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .context("starting hepml train for a scan point")
}

/// The last non-empty line of a point's log (why it failed).
fn last_line(log: &Path) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "(no output)".into())
}

pub fn run(a: TrainArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.config)
        .with_context(|| format!("reading {}", a.config.display()))?;
    let params: Vec<Param> = a
        .scan
        .iter()
        .map(|s| Param::parse(s))
        .collect::<Result<_, _>>()?;
    if params.is_empty() {
        bail!("--search N samples the ranges given by --scan KEY=LO..HI: add at least one --scan");
    }
    scan::check(&text, &a.config, &params)?;
    let total = match a.search {
        Some(0) => bail!("--search needs at least one point"),
        Some(n) => n,
        None => scan::grid(&params)?.len(),
    };
    if a.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let def = definition(&a, &text, &params)?;
    let known = open_dir(&a, &def)?;
    let mut entries: Vec<Entry> = known
        .into_iter()
        .map(|(name, point)| Entry {
            aucs: read_aucs(&point_dir(&a.output, &name)),
            name,
            point,
            failed: false,
        })
        .collect();
    if a.search.is_none() && entries.is_empty() {
        entries = scan::grid(&params)?
            .into_iter()
            .enumerate()
            .map(|(i, point)| Entry {
                name: format!("p{i:03}"),
                point,
                aucs: None,
                failed: false,
            })
            .collect();
    }
    save_state(&a.output, &def, &entries)?;
    let resumed = entries.iter().filter(|e| e.aucs.is_some()).count();
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("scan [{bar:30}] {pos}/{len} points {msg} eta {eta}")
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .progress_chars("=> "),
    );
    bar.set_position(resumed as u64);
    if resumed > 0 {
        eprintln!(
            "hepml: resuming {}: {resumed} of {total} points already trained",
            a.output.display()
        );
    }
    // The search's random start: a quarter of its points, at least 5 (or all of a short one).
    let startup = (total / 4).max(5).max(2 * params.len());
    let mut rng = Rng::new(a.seed ^ 0x5CA7 ^ (entries.len() as u64).rotate_left(17));
    let mut running: Vec<(usize, Child)> = Vec::new();
    let t0 = std::time::Instant::now();
    loop {
        // Fill free slots: pending listed points first, then (a search) new proposals.
        while running.len() < a.jobs {
            let busy = |i: usize| running.iter().any(|(j, _)| *j == i);
            let next = (0..entries.len())
                .find(|&i| entries[i].aucs.is_none() && !entries[i].failed && !busy(i));
            let i = match next {
                Some(i) => i,
                None if entries.len() < total => {
                    let done: Vec<(Point, f64)> = entries
                        .iter()
                        .filter_map(|e| e.aucs.map(|x| (e.point.clone(), x[1])))
                        .chain(
                            entries
                                .iter()
                                .filter(|e| e.failed)
                                .map(|e| (e.point.clone(), f64::NAN)),
                        )
                        .collect();
                    let pending: Vec<Point> = running
                        .iter()
                        .map(|(j, _)| entries[*j].point.clone())
                        .collect();
                    let point = scan::propose(&params, &done, &pending, startup, &mut rng);
                    entries.push(Entry {
                        name: format!("p{:03}", entries.len()),
                        point,
                        aucs: None,
                        failed: false,
                    });
                    save_state(&a.output, &def, &entries)?;
                    entries.len() - 1
                }
                None => break,
            };
            let e = &entries[i];
            let config = a.output.join("configs").join(format!("{}.yaml", e.name));
            let point_text = scan::apply(&text, &a.config, &params, &e.point)?;
            write_atomic(&config, point_text.as_bytes())?;
            let log = a.output.join("logs").join(format!("{}.log", e.name));
            let seed = scan::seed_of(&params, &e.point).unwrap_or(a.seed);
            let child = spawn(&a, seed, &config, &point_dir(&a.output, &e.name), &log)?;
            running.push((i, child));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        let mut k = 0;
        while k < running.len() {
            let status = running[k]
                .1
                .try_wait()
                .context("waiting for a scan point")?;
            let Some(status) = status else {
                k += 1;
                continue;
            };
            let (i, _) = running.swap_remove(k);
            let e = &mut entries[i];
            e.aucs = status
                .success()
                .then(|| read_aucs(&point_dir(&a.output, &e.name)))
                .flatten();
            if e.aucs.is_none() {
                e.failed = true;
                let log = a.output.join("logs").join(format!("{}.log", e.name));
                bar.suspend(|| {
                    eprintln!(
                        "hepml: scan point {} ({}) failed: {}",
                        e.name,
                        scan::describe(&params, &e.point),
                        last_line(&log)
                    )
                });
            }
            bar.inc(1);
            if let Some((b, x)) = best(&entries) {
                bar.set_message(format!("best valid AUC {:.4} ({})", x[1], entries[b].name));
            }
        }
    }
    bar.finish_and_clear();
    summarise(&a.output, &params, &entries, t0.elapsed().as_secs_f64())
}

/// The point with the highest valid AUC.
fn best(entries: &[Entry]) -> Option<(usize, [f64; 3])> {
    entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.aucs.filter(|x| x[1].is_finite()).map(|x| (i, x)))
        .max_by(|a, b| a.1[1].total_cmp(&b.1[1]))
}

fn summarise(dir: &Path, params: &[Param], entries: &[Entry], seconds: f64) -> Result<()> {
    let b = best(entries);
    let rows: Vec<Value> = entries
        .iter()
        .map(|e| {
            let values: serde_json::Map<String, Value> = params
                .iter()
                .zip(&e.point)
                .map(|(p, v)| {
                    (
                        p.key.clone(),
                        serde_json::to_value(v).unwrap_or(Value::Null),
                    )
                })
                .collect();
            json!({
                "name": e.name,
                "run": format!("points/{}", e.name),
                "values": values,
                "status": if e.aucs.is_some() { "done" } else { "failed" },
                "train_auc": e.aucs.map(|x| x[0]),
                "valid_auc": e.aucs.map(|x| x[1]),
                "test_auc": e.aucs.map(|x| x[2]),
            })
        })
        .collect();
    let doc = json!({
        "best": b.map(|(i, _)| entries[i].name.clone()),
        "chosen_by": "valid AUC",
        "points": rows,
    });
    write_atomic(
        &dir.join("summary.json"),
        serde_json::to_string_pretty(&doc)?.as_bytes(),
    )?;
    let mut tsv = String::from("point");
    for p in params {
        tsv.push('\t');
        tsv.push_str(&p.key);
    }
    tsv.push_str("\ttrain_auc\tvalid_auc\ttest_auc\n");
    for e in entries {
        tsv.push_str(&e.name);
        for v in &e.point {
            tsv.push('\t');
            tsv.push_str(&scan::show(v));
        }
        match e.aucs {
            Some(x) => tsv.push_str(&format!("\t{:.5}\t{:.5}\t{:.5}\n", x[0], x[1], x[2])),
            None => tsv.push_str("\tfailed\tfailed\tfailed\n"),
        }
    }
    write_atomic(&dir.join("summary.tsv"), tsv.as_bytes())?;
    let trained: Vec<(usize, Trained)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            e.aucs.map(|x| {
                (
                    i,
                    Trained {
                        point: &e.point,
                        train_auc: x[0],
                        valid_auc: x[1],
                    },
                )
            })
        })
        .collect();
    let best_at = b.and_then(|(i, _)| trained.iter().position(|(j, _)| *j == i));
    let plot_points: Vec<Trained> = trained.into_iter().map(|(_, t)| t).collect();
    let png = dir.join("summary.png");
    // The plotting backend picks the format by extension: the temporary name keeps `.png`.
    let tmp = dir.join(format!(".summary.hepml-tmp-{}.png", std::process::id()));
    scan::summary_plot(&tmp, params, &plot_points, best_at)?;
    std::fs::rename(&tmp, &png).with_context(|| format!("writing {}", png.display()))?;
    let failed: Vec<&Entry> = entries.iter().filter(|e| e.aucs.is_none()).collect();
    eprintln!(
        "hepml: scan of {} points in {seconds:.1} s -> {}",
        entries.len(),
        dir.display()
    );
    if let Some((i, x)) = b {
        eprintln!(
            "hepml: best by valid AUC: {} ({}): train {:.4}, valid {:.4}, test {:.4} -> {}",
            entries[i].name,
            scan::describe(params, &entries[i].point),
            x[0],
            x[1],
            x[2],
            point_dir(dir, &entries[i].name).display()
        );
    }
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|e| e.name.as_str()).collect();
        bail!(
            "{} of {} scan points failed ({}); see {}/logs; run the same command again to retry them",
            failed.len(),
            entries.len(),
            names.join(", "),
            dir.display()
        );
    }
    Ok(())
}
