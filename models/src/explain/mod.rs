//! `hepml explain`: which inputs, and which hidden neurons, a model relies on.
//!
//! - [`scorer`]: the model as a function of a flat feature row, scores and gradients (exact by
//!   backpropagation for dense networks, central differences for any other graph);
//! - [`data`]: the rows explained (a training run's own splits, or ntuples read as inject
//!   reads them), feature groups;
//! - [`perm`]: permutation importance, train against held-out, overfitting flagged;
//! - [`attrib`]: saliency, integrated and expected gradients (with the completeness check),
//!   conductance of hidden neurons;
//! - [`pdp`]: partial dependence (1-D, 2-D) and ICE curves;
//! - [`surrogate`]: a depth-limited decision tree fitted to the scores, its fidelity, rules and
//!   ONNX;
//! - [`plots`]: the PNGs.
//!
//! [`explain`] runs the chosen methods and returns the report: every number as JSON and a
//! one-screen text summary.

pub mod attrib;
pub mod data;
pub mod pdp;
pub mod perm;
pub mod plots;
pub mod scorer;
pub mod surrogate;
pub mod tree;

use attrib::{Attributions, Baseline};
use data::{Dataset, Sample};
use scorer::{GradMethod, Scorer};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// Bad options or data (one line, names what is wrong).
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Plot(#[from] crate::plots::PlotError),
}

/// An explanation method (`--methods`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Perm,
    Saliency,
    Ig,
    Conductance,
    Pdp,
    Surrogate,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::Perm,
        Method::Saliency,
        Method::Ig,
        Method::Conductance,
        Method::Pdp,
        Method::Surrogate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Perm => "perm",
            Method::Saliency => "saliency",
            Method::Ig => "ig",
            Method::Conductance => "conductance",
            Method::Pdp => "pdp",
            Method::Surrogate => "surrogate",
        }
    }
}

/// The integrated gradients' baseline (`--baseline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselineKind {
    Zeros,
    /// The training sample's mean (the explained sample's without one).
    Mean,
    /// Expected gradients over background (label 0) events.
    Background,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub methods: Vec<Method>,
    /// Permutations per feature group.
    pub repeats: usize,
    pub seed: u64,
    /// Integrated-gradient steps (draws, for expected gradients) and conductance intervals.
    pub steps: usize,
    pub baseline: BaselineKind,
    /// Refuse finite differences: exact gradients or an error.
    pub exact: bool,
    /// Events the gradient methods and partial dependence use (the first of the sample).
    pub events: usize,
    /// Features for partial dependence (empty: the parameter and the three most important).
    pub pdp: Vec<String>,
    /// Pairs for 2-D partial dependence (empty: the most important with the parameter).
    pub pdp_pairs: Vec<(String, String)>,
    pub grid: usize,
    /// ICE curves drawn per feature.
    pub ice: usize,
    /// Hidden units whose attribution to the inputs is computed.
    pub top_neurons: usize,
    pub surrogate_depth: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            methods: Method::ALL.to_vec(),
            repeats: 5,
            seed: 1,
            steps: 50,
            baseline: BaselineKind::Mean,
            exact: false,
            events: 5000,
            pdp: Vec::new(),
            pdp_pairs: Vec::new(),
            grid: 20,
            ice: 30,
            top_neurons: 8,
            surrogate_depth: 6,
        }
    }
}

/// What [`explain`] reports while it works: a stage with its number of steps, then a tick per
/// step.
pub enum Progress<'a> {
    Stage(&'a str, u64),
    Tick,
}

/// The explanation: every number (`explain.json`) and the text summary.
pub struct Report {
    pub json: Value,
    pub summary: String,
}

/// Runs the chosen methods on `data` and writes the plots into `dir` (which must exist);
/// `model` names the model in the report.
pub fn explain(
    scorer: &Scorer,
    model: &str,
    data: &Dataset,
    o: &Options,
    dir: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, ExplainError> {
    let f = data.width();
    if scorer.width() != f {
        return Err(ExplainError::Config(format!(
            "the model reads {} values per event, the data has {f} columns",
            scorer.width()
        )));
    }
    let gm = scorer.grad_method();
    let wants = |m: Method| o.methods.contains(&m);
    if o.exact && gm != GradMethod::Exact && (wants(Method::Ig) || wants(Method::Saliency)) {
        return Err(ExplainError::Config(format!(
            "{model}: no exact gradients for this model (not a dense network the native evaluator runs); drop --exact to use finite differences"
        )));
    }
    if wants(Method::Perm) {
        data.check_labels()?;
    }
    // Feature names are checked before any work.
    let mut feats: Vec<usize> = o
        .pdp
        .iter()
        .map(|n| data.column(n))
        .collect::<Result<_, _>>()?;
    let mut pairs: Vec<(usize, usize)> = o
        .pdp_pairs
        .iter()
        .map(|(a, b)| Ok((data.column(a)?, data.column(b)?)))
        .collect::<Result<_, ExplainError>>()?;
    let held = data
        .samples
        .iter()
        .find(|s| s.name == "valid" || s.name == "test")
        .or(data.samples.first())
        .ok_or_else(|| ExplainError::Config("no events to explain".into()))?;
    let train = data.samples.iter().find(|s| s.name == "train");
    let sub = head(held, f, o.events);
    let spread = spread(&sub, f);
    let mut report = json!({
        "hepml": env!("CARGO_PKG_VERSION"),
        "model": {"path": model, "hash": scorer.hash(), "engine": scorer.describe(),
                  "output": scorer.output_name, "column": scorer.column},
        "data": {"source": data.source, "features": data.names,
                 "samples": data.samples.iter().map(|s| json!({"name": s.name, "events": s.rows(f)})).collect::<Vec<_>>()},
        "seed": o.seed,
        "gradients": gm.name(),
    });
    let mut flags: Vec<String> = Vec::new();
    let mut timer = Timer::default();
    let mut ranking: Vec<(String, f64)> = Vec::new();
    let mut ranked_by = "";

    if wants(Method::Perm) {
        timer.start("permutation");
        let metric = perm::Metric::for_labels(held.y.as_deref().unwrap_or(&[]));
        progress(Progress::Stage(
            "permutation importance",
            (data.groups.len() * o.repeats * data.samples.len()) as u64,
        ));
        let (base, groups) = perm::importance(scorer, data, metric, o.repeats, o.seed, || {
            progress(Progress::Tick)
        })?;
        let hi = data
            .samples
            .iter()
            .position(|s| std::ptr::eq(s, held))
            .unwrap_or(0);
        ranking = groups
            .iter()
            .map(|g| (g.group.clone(), g.per_sample[hi].mean))
            .collect();
        ranked_by = "permutation importance";
        for g in groups.iter().filter(|g| g.overfit) {
            flags.push(format!(
                "{}: important on train ({:.4}) but not on {} ({:.4}): a sign of overfitting",
                g.group, g.per_sample[0].mean, held.name, g.per_sample[hi].mean
            ));
        }
        plots::permutation(&dir.join("permutation.png"), data, &groups, metric)?;
        report["permutation"] = json!({
            "metric": metric.name(),
            "repeats": o.repeats,
            "samples": data.samples.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
            "baseline": base,
            "seeds": "repeat r of group g permutes with SplitMix64 seeded seed ^ (g << 32 | r)",
            "groups": groups,
        });
    }

    // Per-event attributions, written as one ROOT tree after the gradient methods.
    let mut per_event: Vec<(&str, attrib::Attributions)> = Vec::new();
    if wants(Method::Saliency) {
        timer.start("saliency");
        progress(Progress::Stage("saliency", 1));
        let a = attrib::saliency(scorer, &sub, &spread)?;
        progress(Progress::Tick);
        let g = attrib::global(&a, &sub, &data.names);
        if ranking.is_empty() {
            ranking = g.iter().map(|g| (g.feature.clone(), g.mean_abs)).collect();
            ranked_by = "mean |saliency|";
        }
        plots::attributions(&dir.join("saliency.png"), "Saliency", data, &sub, &a)?;
        write_npy(dir, "saliency.npy", &a, f)?;
        report["saliency"] = json!({"sample": sub.name, "events": sub.rows(f), "global": g,
                                    "per_event": "saliency.npy"});
        per_event.push(("saliency", a));
    }

    let mean_base = || -> Vec<f32> { mean(train.unwrap_or(held), f) };
    if wants(Method::Ig) {
        timer.start("integrated_gradients");
        let baseline = match o.baseline {
            BaselineKind::Zeros => Baseline::Zeros,
            BaselineKind::Mean => Baseline::Mean(mean_base()),
            BaselineKind::Background => Baseline::Sample(background(train.unwrap_or(held), f)?),
        };
        let batches = sub.rows(f).div_ceil(attrib::BATCH).max(1);
        progress(Progress::Stage(
            "integrated gradients",
            (o.steps * batches) as u64,
        ));
        let a = attrib::integrated(scorer, &sub, &baseline, o.steps, o.seed, &spread, || {
            progress(Progress::Tick)
        })?;
        let g = attrib::global(&a, &sub, &data.names);
        let c = attrib::completeness(&a, f);
        if let Some(c) = &c {
            if c.relative_gap > 0.01 && !matches!(baseline, Baseline::Sample(_)) {
                flags.push(format!(
                    "integrated gradients add up to f(x) - f(baseline) only within {:.1}%: raise --steps",
                    100.0 * c.relative_gap
                ));
            }
        }
        if ranking.is_empty() || ranked_by == "mean |saliency|" {
            ranking = g.iter().map(|g| (g.feature.clone(), g.mean_abs)).collect();
            ranked_by = "mean |integrated gradients|";
        }
        plots::attributions(
            &dir.join("integrated_gradients.png"),
            "Integrated gradients",
            data,
            &sub,
            &a,
        )?;
        write_npy(dir, "integrated_gradients.npy", &a, f)?;
        report["integrated_gradients"] = json!({
            "baseline": baseline.name(), "steps": o.steps, "sample": sub.name,
            "events": sub.rows(f), "global": g, "completeness": c,
            "per_event": "integrated_gradients.npy",
        });
        per_event.push(("ig", a));
    }
    if !per_event.is_empty() {
        let sets: Vec<(&str, &attrib::Attributions)> =
            per_event.iter().map(|(p, a)| (*p, a)).collect();
        let path = dir.join("attributions.root");
        tree::write(&path, &sub, &data.names, &sets)?;
        report["per_event_tree"] = json!({
            "file": "attributions.root", "tree": "attributions",
            "branches": "entry, score, label, weight, saliency_<feature>, ig_<feature>",
        });
    }

    if wants(Method::Conductance) {
        timer.start("conductance");
        match scorer.backprop() {
            None => {
                report["conductance"] =
                    json!({"skipped": "not a dense network (no hidden units to attribute to)"});
            }
            Some(_) => {
                let n = sub.rows(f).min(2000);
                let small = head(&sub, f, n);
                progress(Progress::Stage("conductance", (2 * o.steps) as u64));
                let base = match o.baseline {
                    BaselineKind::Zeros => vec![0.0; f],
                    _ => mean_base(),
                };
                let c = attrib::conductance(scorer, &small, &base, o.steps, o.top_neurons, || {
                    progress(Progress::Tick)
                })?;
                plots::neurons(&dir.join("conductance.png"), &data.names, &c)?;
                report["conductance"] = json!({"sample": small.name, "events": n,
                    "baseline": if o.baseline == BaselineKind::Zeros {"zeros"} else {"mean"},
                    "steps": o.steps, "result": c});
            }
        }
    }

    if wants(Method::Pdp) {
        timer.start("pdp");
        let mut order: Vec<&(String, f64)> = ranking.iter().collect();
        order.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top_cols: Vec<usize> = order
            .iter()
            .filter_map(|(n, _)| data.names.iter().position(|c| c == n))
            .filter(|c| Some(*c) != data.parameter)
            .take(3)
            .collect();
        if feats.is_empty() {
            feats.extend(data.parameter);
            feats.extend(top_cols.iter().copied());
            if feats.is_empty() {
                feats.extend(0..f.min(3));
            }
        }
        if o.pdp_pairs.is_empty() {
            if let (Some(p), Some(t)) = (data.parameter, top_cols.first()) {
                pairs.push((*t, p));
            }
        }
        let pdp_n = sub.rows(f).min(o.events);
        let small = head(&sub, f, pdp_n);
        progress(Progress::Stage(
            "partial dependence",
            (feats.len() + pairs.len()) as u64,
        ));
        let mut ones = Vec::new();
        for &c in &feats {
            let g = pdp::grid(&small, f, c, o.grid);
            let p = pdp::one(scorer, &small, &data.names, c, &g, o.ice)?;
            plots::pdp(
                &dir.join(format!("pdp_{}.png", file_part(&data.names[c]))),
                &p,
            )?;
            ones.push(p);
            progress(Progress::Tick);
        }
        let mut twos = Vec::new();
        for &(a, b) in &pairs {
            let ga = pdp::grid(&small, f, a, o.grid.min(15));
            let gb = pdp::grid(&small, f, b, o.grid.min(15));
            let p = pdp::two(scorer, &small, &data.names, (a, b), (&ga, &gb))?;
            plots::pdp2(
                &dir.join(format!(
                    "pdp_{}_{}.png",
                    file_part(&data.names[a]),
                    file_part(&data.names[b])
                )),
                &p,
            )?;
            twos.push(p);
            progress(Progress::Tick);
        }
        report["pdp"] = json!({"sample": small.name, "events": pdp_n, "one": ones, "two": twos});
    }

    if wants(Method::Surrogate) {
        timer.start("surrogate");
        progress(Progress::Stage("surrogate tree", 1));
        let s = surrogate::fit(
            scorer,
            &sub,
            &data.names,
            o.surrogate_depth,
            &dir.join("surrogate.onnx"),
            &dir.join("surrogate.txt"),
        )?;
        progress(Progress::Tick);
        if s.r2 < 0.9 {
            flags.push(format!(
                "the depth-{} surrogate tree reproduces the scores only with R² {:.3}: read its rules with care",
                o.surrogate_depth, s.r2
            ));
        }
        plots::surrogate(&dir.join("surrogate.png"), &s)?;
        report["surrogate"] = serde_json::to_value(&s).unwrap_or(Value::Null);
    }

    if let Some(t) = scorer.tree_importance() {
        report["tree_splits"] = json!({"what": "splits per feature, read from the ONNX tree ensemble",
            "features": data.names, "splits": t});
    }

    if let Some(mdi) = scorer.mdi() {
        let f = dir.join("mdi.png");
        crate::plots::font();
        crate::plots::wrap(
            &f,
            crate::plots::bars(
                &f,
                "mean decrease in impurity (from training)",
                "MDI (normalised)",
                &mdi,
            ),
        )?;
        report["mdi"] = json!({"what": "mean decrease in impurity per feature, recorded by hepml train in the model (hepml.mdi); beside the permutation importance",
            "features": mdi.iter().map(|m| m.0.clone()).collect::<Vec<_>>(),
            "mdi": mdi.iter().map(|m| m.1).collect::<Vec<_>>()});
    }

    report["seconds"] = timer.finish();
    report["flags"] = json!(flags);
    let summary = summarise(model, &report, &ranking, ranked_by, &flags);
    Ok(Report {
        json: report,
        summary,
    })
}

/// Wall time per method (plots included), for the report.
#[derive(Default)]
struct Timer {
    current: Option<(&'static str, std::time::Instant)>,
    done: serde_json::Map<String, Value>,
}

impl Timer {
    fn start(&mut self, name: &'static str) {
        self.stop();
        self.current = Some((name, std::time::Instant::now()));
    }

    fn stop(&mut self) {
        if let Some((n, t)) = self.current.take() {
            self.done.insert(n.into(), json!(t.elapsed().as_secs_f64()));
        }
    }

    fn finish(&mut self) -> Value {
        self.stop();
        Value::Object(std::mem::take(&mut self.done))
    }
}

/// The first `n` events of a sample.
fn head(s: &Sample, f: usize, n: usize) -> Sample {
    let n = n.min(s.rows(f));
    Sample {
        name: s.name.clone(),
        x: s.x[..n * f].to_vec(),
        y: s.y.as_ref().map(|y| y[..n].to_vec()),
        w: s.w[..n].to_vec(),
    }
}

/// Per-feature standard deviation (finite-difference steps).
fn spread(s: &Sample, f: usize) -> Vec<f32> {
    let mu = mean(s, f);
    let n = s.rows(f).max(1);
    let mut v = vec![0f64; f];
    for row in s.x.chunks_exact(f.max(1)) {
        for ((v, x), m) in v.iter_mut().zip(row).zip(&mu) {
            *v += ((x - m) as f64).powi(2);
        }
    }
    v.iter().map(|v| (v / n as f64).sqrt() as f32).collect()
}

fn mean(s: &Sample, f: usize) -> Vec<f32> {
    let n = s.rows(f).max(1);
    let mut m = vec![0f64; f];
    for row in s.x.chunks_exact(f.max(1)) {
        for (m, x) in m.iter_mut().zip(row) {
            *m += *x as f64;
        }
    }
    m.iter().map(|v| (v / n as f64) as f32).collect()
}

/// Up to 1000 background (label 0) rows for expected gradients.
fn background(s: &Sample, f: usize) -> Result<Vec<f32>, ExplainError> {
    let y = s.y.as_ref().ok_or_else(|| {
        ExplainError::Config("--baseline background needs labelled events".into())
    })?;
    let rows: Vec<usize> = (0..y.len()).filter(|&r| y[r] == 0.0).take(1000).collect();
    if rows.is_empty() {
        return Err(ExplainError::Config(
            "--baseline background: no background (label 0) events".into(),
        ));
    }
    Ok(rows
        .iter()
        .flat_map(|&r| s.x[r * f..(r + 1) * f].iter().copied())
        .collect())
}

fn write_npy(dir: &Path, name: &str, a: &Attributions, f: usize) -> Result<(), ExplainError> {
    let n = a.values.len() / f.max(1);
    crate::train::write_npy(&dir.join(name), &[n, f], &a.values)
        .map_err(|e| ExplainError::Config(e.to_string()))
}

/// A feature name as part of a file name.
fn file_part(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The one-screen summary: the ranking, the figures that say whether to trust it, the flags.
fn summarise(
    model: &str,
    r: &Value,
    ranking: &[(String, f64)],
    by: &str,
    flags: &[String],
) -> String {
    let mut s = format!(
        "hepml explain: {model} ({} gradients)\n",
        r["gradients"].as_str().unwrap_or("?")
    );
    let mut order: Vec<&(String, f64)> = ranking.iter().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    if !order.is_empty() {
        s += &format!("features ranked by {by}:\n");
        for (i, (n, v)) in order.iter().take(15).enumerate() {
            s += &format!("  {:>2}. {n:<30} {v:.4}\n", i + 1);
        }
        if order.len() > 15 {
            s += &format!("  ... {} more in explain.json\n", order.len() - 15);
        }
    }
    if let Some(c) = r["integrated_gradients"]["completeness"].as_object() {
        s += &format!(
            "integrated gradients: sum = f(x) - f(baseline) within {:.2}% overall\n",
            100.0 * c["relative_gap"].as_f64().unwrap_or(f64::NAN)
        );
    }
    if let Some(sg) = r["surrogate"].as_object() {
        s += &format!(
            "surrogate tree (depth {}): R² {:.3} to the scores; AUC {:.4} vs the model's {:.4}\n",
            sg["depth"],
            sg["r2"].as_f64().unwrap_or(f64::NAN),
            sg["auc_surrogate"].as_f64().unwrap_or(f64::NAN),
            sg["auc_model"].as_f64().unwrap_or(f64::NAN)
        );
    }
    if flags.is_empty() {
        s += "flags: none\n";
    } else {
        for fl in flags {
            s += &format!("flag: {fl}\n");
        }
    }
    s
}
