//! The events a model is explained on: flat feature rows (every model input's columns side by
//! side), with labels and weights when known, in one or more named samples (`train`, `valid`,
//! `test` of a training run, or `data` for ntuples), and the feature groups permutation
//! importance shuffles together.

use super::ExplainError;
use std::path::Path;

/// Named rows: `x` is `rows x width`, row-major.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub x: Vec<f32>,
    pub y: Option<Vec<f32>>,
    pub w: Vec<f32>,
}

impl Sample {
    pub fn rows(&self, width: usize) -> usize {
        self.x.len() / width.max(1)
    }
}

/// Labels of a classification: every one 0 or 1.
pub fn binary(y: &[f32]) -> bool {
    y.iter().all(|v| *v == 0.0 || *v == 1.0)
}

/// Columns shuffled together by permutation importance.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub cols: Vec<usize>,
}

/// Model inputs: name and dimensions after the batch, in column order.
pub type InputShapes = Vec<(String, Vec<usize>)>;

/// The feature layout and the samples.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// One name per column.
    pub names: Vec<String>,
    /// The model inputs: name and dimensions after the batch, in column order.
    pub inputs: InputShapes,
    pub groups: Vec<Group>,
    pub samples: Vec<Sample>,
    /// Where the rows come from, for the report.
    pub source: String,
    /// The column of a parameterised model's parameter (a PNN's mass).
    pub parameter: Option<usize>,
}

impl Dataset {
    pub fn width(&self) -> usize {
        self.names.len()
    }

    /// A column by name: an error listing the names otherwise.
    pub fn column(&self, name: &str) -> Result<usize, ExplainError> {
        self.names.iter().position(|n| n == name).ok_or_else(|| {
            ExplainError::Config(format!(
                "unknown feature '{name}' (the model's features: {})",
                self.names.join(", ")
            ))
        })
    }

    /// The default groups: a column each for per-event inputs, and for multi-dimensional
    /// inputs (objects) one per variable (`var` over all objects, `var[i]`) or, `by_object`,
    /// one per object (`INPUT[i]`: every variable of object i); then the `extra` groups
    /// (`NAME=COL,COL,...`) replace the single columns they hold.
    pub fn set_groups(&mut self, extra: &[String], by_object: bool) -> Result<(), ExplainError> {
        let mut groups: Vec<Group> = Vec::new();
        for (c, n) in self.names.iter().enumerate() {
            let object = self.object_input(c);
            let owned;
            let base = match (n.rfind('['), object) {
                (Some(i), Some(input)) if n.ends_with(']') => {
                    if by_object {
                        owned = format!("{input}{}", &n[i..]);
                        owned.as_str()
                    } else {
                        &n[..i]
                    }
                }
                _ => n.as_str(),
            };
            match groups.iter_mut().find(|g| g.name == base) {
                Some(g) => g.cols.push(c),
                None => groups.push(Group {
                    name: base.to_string(),
                    cols: vec![c],
                }),
            }
        }
        for e in extra {
            let (name, cols) = e.split_once('=').ok_or_else(|| {
                ExplainError::Config(format!("--group {e}: expected NAME=FEATURE,FEATURE,..."))
            })?;
            let cols = cols
                .split(',')
                .map(|c| self.column(c.trim()))
                .collect::<Result<Vec<usize>, _>>()?;
            for g in &mut groups {
                g.cols.retain(|c| !cols.contains(c));
            }
            groups.retain(|g| !g.cols.is_empty());
            groups.push(Group {
                name: name.trim().to_string(),
                cols,
            });
        }
        self.groups = groups;
        Ok(())
    }

    /// The name of the multi-dimensional (per-object) input column `c` belongs to.
    fn object_input(&self, c: usize) -> Option<&str> {
        let mut start = 0;
        for (name, shape) in &self.inputs {
            let w: usize = shape.iter().product::<usize>().max(1);
            if c < start + w {
                return (shape.len() > 1).then_some(name.as_str());
            }
            start += w;
        }
        None
    }

    /// Keeps the named samples only (`--split`), in the order given.
    pub fn keep_samples(&mut self, names: &[String]) -> Result<(), ExplainError> {
        let mut kept = Vec::new();
        for n in names {
            let i = self
                .samples
                .iter()
                .position(|s| &s.name == n)
                .ok_or_else(|| {
                    let have: Vec<&str> = self.samples.iter().map(|s| s.name.as_str()).collect();
                    ExplainError::Config(format!("--split {n}: the data has {}", have.join(", ")))
                })?;
            kept.push(self.samples[i].clone());
        }
        self.samples = kept;
        Ok(())
    }

    /// Checks what permutation importance needs: labels, and two classes for the AUC.
    pub fn check_labels(&self) -> Result<(), ExplainError> {
        for s in &self.samples {
            let y = s.y.as_ref().ok_or_else(|| {
                ExplainError::Config(format!(
                    "the {} events have no labels: give --label (permutation importance needs them)",
                    s.name
                ))
            })?;
            let binary = binary(y);
            let pos = y.iter().filter(|v| **v == 1.0).count();
            if binary && (pos == 0 || pos == y.len()) {
                return Err(ExplainError::Config(format!(
                    "the {} events hold one class only ({} events of label {}): permutation importance needs both",
                    s.name,
                    y.len(),
                    if pos == 0 { 0 } else { 1 }
                )));
            }
        }
        Ok(())
    }
}

/// Events of a training run's split, from the run's own data and splits (fold 0 for a k-fold
/// run).
pub fn from_run(run: &Path, seed: u64) -> Result<Dataset, ExplainError> {
    use crate::config::{ConfigFile, TrainConfig};
    let cfg_path = run.join("config.yaml");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| {
        ExplainError::Config(format!(
            "{}: not a training run directory ({e})",
            run.display()
        ))
    })?;
    let cfg =
        TrainConfig::from_str(&text, &cfg_path).map_err(|e| ExplainError::Config(e.to_string()))?;
    let d = crate::train::load(&cfg, seed).map_err(|e| ExplainError::Config(e.to_string()))?;
    let split = crate::train::splits(&cfg, &d, seed)
        .into_iter()
        .next()
        .ok_or_else(|| ExplainError::Config("the run has no split".into()))?;
    let f = d.width();
    let sample = |name: &str, rows: &[usize]| {
        let mut x = Vec::with_capacity(rows.len() * f);
        for &r in rows {
            x.extend_from_slice(&d.x[r * f..(r + 1) * f]);
        }
        Sample {
            name: name.into(),
            x,
            y: Some(rows.iter().map(|&r| d.y[r]).collect()),
            w: rows.iter().map(|&r| d.w[r]).collect(),
        }
    };
    let samples = vec![
        sample("train", &split.train),
        sample("valid", &split.valid),
        sample("test", &split.test),
    ];
    // hepml's export feeds a PNN its features and parameter as one input.
    let inputs = vec![("x".to_string(), vec![f])];
    let mut ds = Dataset {
        names: d.names.clone(),
        inputs,
        groups: Vec::new(),
        samples,
        source: format!("{} (fold 0 splits, seed {seed})", run.display()),
        parameter: d.param,
    };
    ds.set_groups(&[], false)?;
    Ok(ds)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat input (`met`) and a per-object one (`jets`: pt and eta of 3 objects): grouped
    /// by variable, by object, and with a `--group` taking columns out of both.
    #[test]
    fn groups_by_variable_by_object_and_by_hand() {
        let mut names = vec!["met".to_string()];
        for v in ["pt", "eta"] {
            names.extend((0..3).map(|i| format!("{v}[{i}]")));
        }
        let mut ds = Dataset {
            names,
            inputs: vec![("met".into(), vec![1]), ("jets".into(), vec![2, 3])],
            groups: Vec::new(),
            samples: Vec::new(),
            source: String::new(),
            parameter: None,
        };
        let listed = |ds: &Dataset| -> Vec<(String, Vec<usize>)> {
            ds.groups
                .iter()
                .map(|g| (g.name.clone(), g.cols.clone()))
                .collect()
        };
        let g = |n: &str, c: &[usize]| (n.to_string(), c.to_vec());
        ds.set_groups(&[], false).unwrap();
        assert_eq!(
            listed(&ds),
            [g("met", &[0]), g("pt", &[1, 2, 3]), g("eta", &[4, 5, 6])]
        );
        ds.set_groups(&[], true).unwrap();
        assert_eq!(
            listed(&ds),
            [
                g("met", &[0]),
                g("jets[0]", &[1, 4]),
                g("jets[1]", &[2, 5]),
                g("jets[2]", &[3, 6])
            ]
        );
        ds.set_groups(&["lead=met,pt[0]".into()], false).unwrap();
        assert_eq!(
            listed(&ds),
            [g("pt", &[2, 3]), g("eta", &[4, 5, 6]), g("lead", &[0, 1])]
        );
        assert!(ds.set_groups(&["x=nope".into()], false).is_err());
    }
}
