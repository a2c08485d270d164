//! A surrogate model: a depth-limited decision tree fitted to the model's scores, for a
//! network too complex to read. Fitted on half of the events and judged on the other half:
//! R² to the scores, and the AUC of the tree next to the model's. Its rules are written as
//! text, and the tree as ONNX that `hepml inject` runs.

use super::data::{binary, Sample};
use super::scorer::Scorer;
use super::ExplainError;
use crate::metrics::auc_weighted;
use crate::trees::{fit as cart_fit, CartParams, Ensemble, Tree};
use std::path::Path;

/// A node for drawing: its place in the tree and what it says.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DrawNode {
    pub depth: usize,
    /// Position among the 2^depth places of its level.
    pub slot: u64,
    pub parent: Option<usize>,
    pub leaf: bool,
    /// "feature <= threshold" for a split.
    pub label: String,
    /// The mean score of its events.
    pub value: f32,
    /// Fraction of the (weighted) fitting events that reach it.
    pub fraction: f64,
}

/// The fitted surrogate and how faithful it is.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Surrogate {
    pub depth: usize,
    pub leaves: usize,
    pub fit_events: usize,
    pub test_events: usize,
    /// R² of the tree to the model's scores on the held-out half.
    pub r2: f64,
    pub auc_model: f64,
    pub auc_surrogate: f64,
    pub rules: String,
    pub onnx: String,
    /// Per feature: the tree's summed squared-error decrease, and its number of splits.
    pub gain: Vec<f64>,
    pub splits: Vec<usize>,
    pub gain_total: f64,
    #[serde(skip)]
    pub nodes: Vec<DrawNode>,
}

/// Fits the tree to the model's scores on the even events of `s` and judges it on the odd
/// ones; writes the rules to `rules`, the tree as ONNX to `onnx` (input `x`: the feature
/// columns, which `hepml inject` reads by name from its metadata; output `score`) and its
/// predictions for every event to `surrogate_scores.npy` beside it.
pub fn fit(
    scorer: &Scorer,
    s: &Sample,
    names: &[String],
    depth: usize,
    onnx: &Path,
    rules: &Path,
) -> Result<Surrogate, ExplainError> {
    let f = names.len();
    let n = s.rows(f);
    if n < 4 {
        return Err(ExplainError::Config(format!(
            "the surrogate needs at least 4 events ({n} given)"
        )));
    }
    let scores = scorer.score(&s.x, n)?;
    let pick = |odd: usize| -> Vec<usize> { (odd..n).step_by(2).collect() };
    let (fit_rows, test_rows) = (pick(0), pick(1));
    let gather = |rows: &[usize]| -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut x = Vec::with_capacity(rows.len() * f);
        for &r in rows {
            x.extend_from_slice(&s.x[r * f..(r + 1) * f]);
        }
        (
            x,
            rows.iter().map(|&r| scores[r]).collect(),
            rows.iter().map(|&r| s.w[r]).collect(),
        )
    };
    let (xf, yf, wf) = gather(&fit_rows);
    let params = CartParams {
        max_depth: depth,
        min_samples_leaf: 10,
        ..CartParams::default()
    };
    let tree = cart_fit(&xf, f, &yf, Some(&wf), &params)
        .map_err(|e| ExplainError::Config(format!("surrogate tree: {e}")))?;
    let pred = tree.predict_batch(&s.x);
    // R² on the held-out half, weighted.
    let (mut tot, mut mean) = (0f64, 0f64);
    for &r in &test_rows {
        tot += s.w[r] as f64;
        mean += s.w[r] as f64 * scores[r] as f64;
    }
    mean /= tot.max(1e-300);
    let (mut res, mut var) = (0f64, 0f64);
    for &r in &test_rows {
        let w = s.w[r] as f64;
        res += w * (scores[r] as f64 - pred[r] as f64).powi(2);
        var += w * (scores[r] as f64 - mean).powi(2);
    }
    let r2 = if var > 0.0 { 1.0 - res / var } else { f64::NAN };
    let (auc_model, auc_surrogate) = match &s.y {
        Some(y) if binary(y) => {
            let pick = |v: &[f32]| -> Vec<f32> { test_rows.iter().map(|&r| v[r]).collect() };
            let (yt, wt) = (pick(y), pick(&s.w));
            (
                auc_weighted(&pick(&scores), &yt, Some(&wt)),
                auc_weighted(&pick(&pred), &yt, Some(&wt)),
            )
        }
        _ => (f64::NAN, f64::NAN),
    };
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let text = tree.rules(&name_refs);
    let io = |path: &Path, e: std::io::Error| ExplainError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    std::fs::write(rules, &text).map_err(|e| io(rules, e))?;
    let metadata = vec![
        (
            "hepml.inputs".to_string(),
            serde_json::json!({ "x": names }).to_string(),
        ),
        (
            "hepml.outputs".to_string(),
            serde_json::json!({"score": "surrogate_score"}).to_string(),
        ),
        ("hepml.surrogate_of".to_string(), scorer.hash().to_string()),
    ];
    let bytes = Ensemble::single(tree.clone())
        .to_onnx("x", "score", &metadata)
        .map_err(|e| ExplainError::Config(format!("surrogate ONNX: {e}")))?;
    std::fs::write(onnx, bytes).map_err(|e| io(onnx, e))?;
    let dir = onnx.parent().unwrap_or(Path::new("."));
    crate::train::write_npy(&dir.join("surrogate_scores.npy"), &[n], &pred)
        .map_err(|e| ExplainError::Config(e.to_string()))?;
    let imp = tree.split_importance();
    let gain_total = imp.gain.iter().sum();
    Ok(Surrogate {
        depth,
        leaves: tree.n_leaves(),
        fit_events: fit_rows.len(),
        test_events: test_rows.len(),
        r2,
        auc_model,
        auc_surrogate,
        rules: text,
        onnx: onnx.display().to_string(),
        gain: imp.gain,
        splits: imp.splits,
        gain_total,
        nodes: draw_nodes(&tree, &name_refs),
    })
}

/// The tree's nodes, breadth first, with their place for drawing.
fn draw_nodes(tree: &Tree, names: &[&str]) -> Vec<DrawNode> {
    let nodes = tree.nodes();
    let total = nodes.first().map_or(1.0, |n| n.weight.max(1e-300));
    let mut out: Vec<DrawNode> = Vec::new();
    // (node index, depth, slot, parent in `out`)
    let mut queue = std::collections::VecDeque::from([(0usize, 0usize, 0u64, None)]);
    while let Some((i, depth, slot, parent)) = queue.pop_front() {
        let Some(n) = nodes.get(i) else { continue };
        let me = out.len();
        out.push(DrawNode {
            depth,
            slot,
            parent,
            leaf: n.split.is_none(),
            label: n.split.as_ref().map_or(String::new(), |sp| {
                format!(
                    "{} <= {:.4}",
                    names.get(sp.feature).copied().unwrap_or("?"),
                    sp.threshold
                )
            }),
            value: n.value,
            fraction: n.weight / total,
        });
        if let Some(sp) = &n.split {
            queue.push_back((sp.left, depth + 1, 2 * slot, Some(me)));
            queue.push_back((sp.right, depth + 1, 2 * slot + 1, Some(me)));
        }
    }
    out
}
