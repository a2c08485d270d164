//! `hepml convert`: which columns to compute from which samples.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{check_exprs, ConfigError, ConfigFile};

/// `hepml convert` config: which columns to compute from which samples.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConvertConfig {
    /// Tree name, shared by all samples unless a sample overrides it.
    pub tree: String,
    /// Output columns: a branch name or an expression (`log(pt)`, `Jet_pt[0]`). The column is
    /// named by `name` when given, else by the expression text.
    pub columns: Vec<Column>,
    /// Selection applied to every sample (an expression; events where it is non-zero are kept).
    #[serde(default)]
    pub selection: Option<String>,
    /// Per-event weight expression applied to every sample (default 1).
    #[serde(default)]
    pub weight: Option<String>,
    /// Event-number branch copied to the output (needed for k-fold splitting).
    #[serde(default)]
    pub event_number: Option<String>,
    pub samples: Vec<Sample>,
    /// Events per chunk while streaming (memory bound).
    #[serde(default = "default_chunk")]
    pub chunk_size: usize,
    /// pandas layout of the output: `fixed` (default, fastest) or `table` (queryable with
    /// `pd.read_hdf(f, key, where=...)`).
    #[serde(default)]
    pub format: crate::h5::Format,
}

fn default_chunk() -> usize {
    100_000
}

/// One output column.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Column {
    Expr(String),
    Named(NamedColumn),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NamedColumn {
    pub name: String,
    pub expr: String,
}

impl Column {
    pub fn name(&self) -> &str {
        match self {
            Column::Expr(e) => e,
            Column::Named(n) => &n.name,
        }
    }
    pub fn expr(&self) -> &str {
        match self {
            Column::Expr(e) => e,
            Column::Named(n) => &n.expr,
        }
    }
}

/// One input sample: a set of files with a class label.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    pub name: String,
    /// Paths or glob patterns.
    pub files: Vec<String>,
    /// Class label written to the `label` column (1 signal, 0 background).
    pub label: u32,
    #[serde(default)]
    pub tree: Option<String>,
    /// Extra selection for this sample, and-ed with the global one.
    #[serde(default)]
    pub selection: Option<String>,
    /// Weight expression for this sample, multiplied with the global one.
    #[serde(default)]
    pub weight: Option<String>,
    /// Constant extra columns, e.g. `{mass: 500}` for a PNN signal sample.
    #[serde(default)]
    pub extra: BTreeMap<String, f64>,
}

impl ConfigFile for ConvertConfig {
    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |what: String| ConfigError::Invalid {
            path: path.to_owned(),
            what,
        };
        if self.columns.is_empty() {
            return Err(bad("`columns` is empty".into()));
        }
        if self.samples.is_empty() {
            return Err(bad("`samples` is empty".into()));
        }
        if self.chunk_size == 0 {
            return Err(bad("`chunk_size` must be positive".into()));
        }
        let exprs: Vec<String> = self.columns.iter().map(|c| c.expr().to_owned()).collect();
        check_exprs(path, "column", &exprs)?;
        let mut names = std::collections::HashSet::new();
        for c in &self.columns {
            if !names.insert(c.name()) {
                return Err(bad(format!("column name `{}` appears twice", c.name())));
            }
        }
        check_exprs(path, "selection", self.selection.as_slice())?;
        check_exprs(path, "weight", self.weight.as_slice())?;
        let mut labels = std::collections::BTreeSet::new();
        for s in &self.samples {
            if s.files.is_empty() {
                return Err(bad(format!("sample `{}` has no files", s.name)));
            }
            check_exprs(path, "selection", s.selection.as_slice())?;
            check_exprs(path, "weight", s.weight.as_slice())?;
            for k in s.extra.keys() {
                if names.contains(k.as_str()) {
                    return Err(bad(format!(
                        "sample `{}`: extra column `{k}` clashes with a column",
                        s.name
                    )));
                }
            }
            labels.insert(s.label);
        }
        if labels.len() < 2 {
            return Err(bad(format!(
                "all samples have label {:?}: training needs signal (1) and background (0)",
                labels
            )));
        }
        Ok(())
    }
}
