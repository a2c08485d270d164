//! `hepml convert`: ROOT ntuples -> one HDF5 table (pandas `fixed` layout), streamed chunk by
//! chunk so memory stays bounded by the chunk size whatever the input size.
//!
//! Columns written, in order: the configured columns (float64), each sample's `extra` columns
//! (float64; e.g. the PNN mass), `weight` (float64: global weight x sample weight), the
//! event-number branch when configured (int64, under its branch name), `label` (int64) and
//! `sample` (int64: the sample's position in the config).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use injector::expr::Expr;
use injector::inject::inputs::{ChunkView, InputError};
use rootio::write::file::tmp_name;
use rootio::{Chain, Chunk, RootError};

use crate::config::ConvertConfig;
use crate::h5::{ColType, H5Error, TableWriter};

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("sample `{sample}`: {source}")]
    Root { sample: String, source: RootError },
    #[error("sample `{sample}`: {source}")]
    Input { sample: String, source: InputError },
    #[error(transparent)]
    H5(#[from] H5Error),
    #[error("sample `{sample}`: {what}")]
    Sample { sample: String, what: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What one sample contributed.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleStats {
    pub name: String,
    pub files: usize,
    pub read: u64,
    pub kept: u64,
    pub weight_sum: f64,
}

fn parse(e: &str) -> Expr {
    // The config was validated: every expression parses.
    Expr::parse(e).unwrap_or(Expr::Num(f64::NAN))
}

/// Expands a sample's file patterns (globs), sorted, each pattern required to match.
pub fn expand(sample: &str, patterns: &[String]) -> Result<Vec<PathBuf>, ConvertError> {
    let mut out = Vec::new();
    for p in patterns {
        let bad = |what: String| ConvertError::Sample {
            sample: sample.to_owned(),
            what,
        };
        let mut found: Vec<PathBuf> = glob::glob(p)
            .map_err(|e| bad(format!("bad pattern `{p}`: {e}")))?
            .filter_map(Result::ok)
            .collect();
        if found.is_empty() {
            return Err(bad(format!("no file matches `{p}`")));
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// Total entries of every sample (for a progress bar), opening each file's tree once.
pub fn count_entries(cfg: &ConvertConfig) -> Result<u64, ConvertError> {
    let mut n = 0;
    for s in cfg.samples.iter().filter(|s| !s.files.is_empty()) {
        let files = expand(&s.name, &s.files)?;
        let tree = s.tree.as_deref().unwrap_or(&cfg.tree);
        let chain = Chain::open(&files, tree).map_err(|source| ConvertError::Root {
            sample: s.name.clone(),
            source,
        })?;
        n += chain.entries();
    }
    Ok(n)
}

/// Runs the conversion into `out` (written under a temporary name, renamed when complete);
/// `progress` is called with the number of entries read after each chunk.
pub fn convert(
    cfg: &ConvertConfig,
    out: &Path,
    mut progress: impl FnMut(u64),
) -> Result<Vec<SampleStats>, ConvertError> {
    let tmp = tmp_name(out);
    let r = convert_into(cfg, &tmp, &mut progress);
    match r {
        Ok(stats) => {
            std::fs::rename(&tmp, out).map_err(|source| ConvertError::Io {
                path: out.to_owned(),
                source,
            })?;
            Ok(stats)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn convert_into(
    cfg: &ConvertConfig,
    tmp: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<SampleStats>, ConvertError> {
    let columns: Vec<Expr> = cfg.columns.iter().map(|c| parse(c.expr())).collect();
    let extras: BTreeSet<String> = cfg
        .samples
        .iter()
        .flat_map(|s| s.extra.keys().cloned())
        .collect();
    let mut layout: Vec<(String, ColType)> = cfg
        .columns
        .iter()
        .map(|c| (c.name().to_owned(), ColType::F64))
        .collect();
    layout.extend(extras.iter().map(|e| (e.clone(), ColType::F64)));
    layout.push(("weight".into(), ColType::F64));
    if let Some(ev) = &cfg.event_number {
        layout.push((ev.clone(), ColType::I64));
    }
    layout.push(("label".into(), ColType::I64));
    layout.push(("sample".into(), ColType::I64));
    let mut seen = BTreeSet::new();
    for (n, _) in &layout {
        if !seen.insert(n.as_str()) {
            return Err(ConvertError::Sample {
                sample: "(all)".into(),
                what: format!("output column `{n}` appears twice; rename the column"),
            });
        }
    }
    let mut writer = TableWriter::create_with(tmp, "events", &layout, cfg.format)?;
    // Where each column came from, so a model trained on renamed columns still knows its
    // branches (hepml train -> model.json -> hepml export's hepml.inputs -> hepml inject).
    let mut sources: std::collections::BTreeMap<String, String> = cfg
        .columns
        .iter()
        .map(|c| (c.name().to_owned(), c.expr().to_owned()))
        .collect();
    if let Some(ev) = &cfg.event_number {
        sources.insert(ev.clone(), ev.clone());
    }
    writer.set_sources(&sources)?;
    let global_sel = cfg.selection.as_deref().map(parse);
    let global_w = cfg.weight.as_deref().map(parse);
    let event = cfg.event_number.as_deref().map(|b| Expr::Var {
        name: b.to_owned(),
        index: None,
    });
    let mut stats = Vec::new();
    for (si, s) in cfg.samples.iter().enumerate() {
        // A validated config has files in every sample; a shard of one (`hepml convert
        // --manifest --task`) leaves the samples outside the task empty: their `sample`
        // numbers stay those of the whole config.
        if s.files.is_empty() {
            continue;
        }
        let root = |source| ConvertError::Root {
            sample: s.name.clone(),
            source,
        };
        let input = |source| ConvertError::Input {
            sample: s.name.clone(),
            source,
        };
        let files = expand(&s.name, &s.files)?;
        let tree = s.tree.as_deref().unwrap_or(&cfg.tree);
        let chain = Chain::open(&files, tree).map_err(root)?;
        let sel: Vec<Expr> = global_sel
            .iter()
            .cloned()
            .chain(s.selection.as_deref().map(parse))
            .collect();
        let weights: Vec<Expr> = global_w
            .iter()
            .cloned()
            .chain(s.weight.as_deref().map(parse))
            .collect();
        let mut branches: Vec<String> = Vec::new();
        for e in columns.iter().chain(&sel).chain(&weights).chain(&event) {
            for (v, _) in e.vars() {
                if !branches.contains(&v) {
                    branches.push(v);
                }
            }
        }
        let index: HashMap<String, usize> = branches
            .iter()
            .enumerate()
            .map(|(i, b)| (b.clone(), i))
            .collect();
        let mut it = chain
            .chunks(&branches, cfg.chunk_size as u64)
            .map_err(root)?
            .threads(2);
        let mut chunk = Chunk::new();
        let mut st = SampleStats {
            name: s.name.clone(),
            files: files.len(),
            read: 0,
            kept: 0,
            weight_sum: 0.0,
        };
        while it.next_into(&mut chunk).map_err(root)? {
            let n = chunk.len();
            let view = ChunkView::new(&chunk, &index);
            let eval = |e: &Expr| e.eval(n, &mut |name, idx, o| view.event_values(name, idx, o));
            let mut keep = vec![true; n];
            for e in &sel {
                for (k, v) in keep.iter_mut().zip(eval(e).map_err(input)?) {
                    *k &= v != 0.0 && !v.is_nan();
                }
            }
            let rows: Vec<usize> = (0..n).filter(|&i| keep[i]).collect();
            let pick = |v: Vec<f64>| -> Vec<f64> { rows.iter().map(|&i| v[i]).collect() };
            let mut out: Vec<Vec<f64>> = Vec::with_capacity(layout.len());
            for e in &columns {
                out.push(pick(eval(e).map_err(input)?));
            }
            for x in &extras {
                let v = s.extra.get(x).copied().unwrap_or(f64::NAN);
                out.push(vec![v; rows.len()]);
            }
            let mut w = vec![1.0; n];
            for e in &weights {
                for (a, b) in w.iter_mut().zip(eval(e).map_err(input)?) {
                    *a *= b;
                }
            }
            let w = pick(w);
            st.weight_sum += w.iter().sum::<f64>();
            out.push(w);
            if let Some(e) = &event {
                let v = pick(eval(e).map_err(input)?);
                if let Some(bad) = v.iter().find(|x| x.fract() != 0.0 || x.abs() > 9.0e15) {
                    return Err(ConvertError::Sample {
                        sample: s.name.clone(),
                        what: format!("event number {bad} is not an integer"),
                    });
                }
                out.push(v);
            }
            out.push(vec![s.label as f64; rows.len()]);
            out.push(vec![si as f64; rows.len()]);
            writer.append(&out)?;
            st.read += n as u64;
            st.kept += rows.len() as u64;
            progress(n as u64);
        }
        if st.kept == 0 {
            return Err(ConvertError::Sample {
                sample: s.name.clone(),
                what: format!(
                    "the selection keeps no event (of {} read from {} file(s))",
                    st.read, st.files
                ),
            });
        }
        stats.push(st);
    }
    writer.finish()?;
    Ok(stats)
}
