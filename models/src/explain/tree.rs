//! The per-event attributions as a ROOT tree (`attributions.root`, tree `attributions`), for
//! physicists who would rather `Draw("ig_pt:pt")` than load a `.npy`: `entry` (the event's
//! entry in the explained sample), `score`, `label` and `weight` when known, then
//! `saliency_<feature>` and `ig_<feature>` per feature. The explained events are the first of
//! the sample, so when they are all of a single input file's events the tree lines up with
//! the input tree entry by entry and works as a friend (`AddFriend("attributions", file)`).

use std::path::Path;

use rootio::write::{BranchSpec, FileWriter, TreeWriter};
use rootio::{Array, Compression, Data, Prim, Shape};

use super::attrib::Attributions;
use super::data::Sample;
use super::ExplainError;

/// A feature name as a branch-name suffix: `Jet_pt[0]` -> `Jet_pt_0`.
pub fn branch_suffix(feature: &str) -> String {
    let s: String = feature
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.trim_end_matches('_').to_owned()
}

/// Writes `path` (under a temporary name, renamed when complete): the events of `sample`
/// (its first `n`) with each named set of attributions (`prefix`, `n x names.len()` values).
pub fn write(
    path: &Path,
    sample: &Sample,
    names: &[String],
    sets: &[(&str, &Attributions)],
) -> Result<(), ExplainError> {
    let f = names.len();
    let Some(scores) = sets.first().map(|(_, a)| &a.scores) else {
        return Ok(());
    };
    let n = scores.len();
    let mut specs = vec![
        BranchSpec::scalar("entry", Prim::U64),
        BranchSpec::scalar("score", Prim::F32),
    ];
    let mut arrays = vec![
        Array::of(
            Prim::U64,
            Shape::Scalar,
            n,
            Data::U64((0..n as u64).collect()),
            None,
        ),
        Array::of(Prim::F32, Shape::Scalar, n, Data::F32(scores.clone()), None),
    ];
    if let Some(y) = &sample.y {
        specs.push(BranchSpec::scalar("label", Prim::F32));
        arrays.push(Array::of(
            Prim::F32,
            Shape::Scalar,
            n,
            Data::F32(y[..n].to_vec()),
            None,
        ));
    }
    specs.push(BranchSpec::scalar("weight", Prim::F32));
    arrays.push(Array::of(
        Prim::F32,
        Shape::Scalar,
        n,
        Data::F32(sample.w[..n].to_vec()),
        None,
    ));
    let mut seen = std::collections::HashSet::new();
    for (prefix, a) in sets {
        for (j, name) in names.iter().enumerate() {
            let branch = format!("{prefix}_{}", branch_suffix(name));
            if !seen.insert(branch.clone()) {
                return Err(ExplainError::Config(format!(
                    "features '{name}' and another both become branch '{branch}'"
                )));
            }
            specs.push(BranchSpec::scalar(&branch, Prim::F32));
            let v: Vec<f32> = (0..n).map(|r| a.values[r * f + j]).collect();
            arrays.push(Array::of(Prim::F32, Shape::Scalar, n, Data::F32(v), None));
        }
    }
    let root = |e: rootio::RootError| ExplainError::Config(format!("{}: {e}", path.display()));
    let mut fw = FileWriter::create(path, Compression::DEFAULT).map_err(root)?;
    let mut tw = TreeWriter::new(
        &mut fw,
        "attributions",
        "hepml explain: per-event attributions",
        &specs,
    )
    .map_err(root)?;
    for (k, a) in arrays.iter().enumerate() {
        tw.append(&mut fw, k, a).map_err(root)?;
    }
    tw.finish(&mut fw).map_err(root)?;
    fw.finish().map_err(root)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_names_become_branch_names() {
        assert_eq!(branch_suffix("Jet_pt[0]"), "Jet_pt_0");
        assert_eq!(branch_suffix("log(ht)"), "log_ht");
        assert_eq!(branch_suffix("mass"), "mass");
    }
}
