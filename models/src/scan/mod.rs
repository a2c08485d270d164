//! Hyperparameter scans over any key of a `hepml train` config: a grid of listed values
//! (`--scan model.depth=2,4,6`) or a search of N points sampled within ranges
//! (`--scan training.learning_rate=log:1e-4..1e-1 --search 20`), random at first and then
//! guided by the points already trained (a tree-structured Parzen estimator, TPE).
//!
//! A point is a set of `key = value` assignments written into the YAML text of the base config,
//! so every key the config knows can be scanned, and a mistyped key is the config's own
//! "unknown field" error before anything trains.

mod plot;
mod tpe;

use std::path::Path;

use serde::{Deserialize, Serialize};
use yaml_serde::{Mapping, Value};

pub use plot::{summary_plot, Trained};
pub use tpe::propose;

use crate::config::{ConfigError, ConfigFile, TrainConfig};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("--scan {spec}: {what}")]
    Spec { spec: String, what: String },
    #[error("scan point {point}: {source}")]
    Config { point: String, source: ConfigError },
    #[error("{0}")]
    Invalid(String),
}

/// Where one parameter's values come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    /// The listed values: the grid's points, or a search's categorical choices.
    List(Vec<Value>),
    /// A range `lo..hi`, sampled uniformly (integers when both ends are).
    Uniform { lo: f64, hi: f64, integer: bool },
    /// A range `log:lo..hi`, sampled uniformly in the logarithm.
    Log { lo: f64, hi: f64, integer: bool },
}

/// One scanned key (a dotted path into the config, e.g. `training.learning_rate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    pub key: String,
    pub domain: Domain,
}

/// The values of one point, in the order of the parameters.
pub type Point = Vec<Value>;

/// The one key that is not a config path: `--scan seed=1,2,3` trains each point with its own
/// `--seed`, to see how much the result moves with the initialisation and the shuffling.
pub const SEED: &str = "seed";

/// The seed a point sets, if `seed` is scanned (checked by [`apply`] to be an integer >= 0).
pub fn seed_of(params: &[Param], point: &Point) -> Option<u64> {
    params
        .iter()
        .zip(point)
        .find(|(p, _)| p.key == SEED)
        .and_then(|(_, v)| v.as_u64())
}

impl Param {
    /// Parses `key=v1,v2,...`, `key=lo..hi` or `key=log:lo..hi`.
    pub fn parse(spec: &str) -> Result<Param, ScanError> {
        let bad = |what: &str| ScanError::Spec {
            spec: spec.into(),
            what: what.into(),
        };
        let (key, values) = spec
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUES, e.g. model.depth=2,4,6"))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(bad("the key must be a dotted path such as model.depth"));
        }
        let values = values.trim();
        let (log, range) = match values.strip_prefix("log:") {
            Some(r) => (true, r),
            None => (false, values),
        };
        let domain = if let Some((lo, hi)) = range.split_once("..") {
            let num = |s: &str| -> Result<f64, ScanError> {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| bad(&format!("`{s}` is not a number")))
            };
            let integer = [lo, hi].iter().all(|s| s.trim().parse::<i64>().is_ok());
            let (lo, hi) = (num(lo)?, num(hi)?);
            if lo >= hi {
                return Err(bad("a range needs lo < hi"));
            }
            if log && lo <= 0.0 {
                return Err(bad("a log range needs positive ends"));
            }
            if log {
                Domain::Log { lo, hi, integer }
            } else {
                Domain::Uniform { lo, hi, integer }
            }
        } else if log {
            return Err(bad("log: goes with a range, e.g. log:1e-4..1e-1"));
        } else {
            let mut list = Vec::new();
            for v in values.split(',') {
                let v = v.trim();
                if v.is_empty() {
                    return Err(bad("an empty value in the list"));
                }
                list.push(
                    yaml_serde::from_str::<Value>(v)
                        .map_err(|e| bad(&format!("value `{v}`: {e}")))?,
                );
            }
            if list
                .iter()
                .any(|v| matches!(v, Value::Mapping(_) | Value::Sequence(_)))
            {
                return Err(bad("values must be scalars"));
            }
            Domain::List(list)
        };
        Ok(Param {
            key: key.into(),
            domain,
        })
    }

    /// The values that bound this parameter (for checking the config before a search): the
    /// list, or the two ends of the range.
    fn extremes(&self) -> Vec<Value> {
        match &self.domain {
            Domain::List(l) => l.clone(),
            Domain::Uniform { lo, hi, integer } | Domain::Log { lo, hi, integer } => {
                vec![number(*lo, *integer), number(*hi, *integer)]
            }
        }
    }
}

/// A YAML number: an integer when `integer`, else rounded to 4 significant digits (a sampled
/// 0.0063457926 reads as 0.006346 in configs and summaries).
pub(crate) fn number(v: f64, integer: bool) -> Value {
    if integer {
        Value::Number((v.round() as i64).into())
    } else {
        let rounded = format!("{v:.3e}").parse::<f64>().unwrap_or(v);
        Value::Number(rounded.into())
    }
}

/// Every combination of the listed values, the first parameter varying slowest.
pub fn grid(params: &[Param]) -> Result<Vec<Point>, ScanError> {
    let mut points: Vec<Point> = vec![Vec::new()];
    for p in params {
        let Domain::List(values) = &p.domain else {
            return Err(ScanError::Invalid(format!(
                "--scan {}: a range is sampled by --search N; a grid needs listed values (a,b,c)",
                p.key
            )));
        };
        points = points
            .into_iter()
            .flat_map(|pt| {
                values.iter().map(move |v| {
                    let mut q = pt.clone();
                    q.push(v.clone());
                    q
                })
            })
            .collect();
    }
    Ok(points)
}

/// Renders a YAML value as the user would write it (`0.1`, `relu`, `true`).
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => yaml_serde::to_string(other)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
    }
}

/// `key=value` pairs of a point, for names and logs.
pub fn describe(params: &[Param], point: &Point) -> String {
    params
        .iter()
        .zip(point)
        .map(|(p, v)| format!("{}={}", p.key, show(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The base config's text with the point's values set (missing blocks are created), checked
/// as a train config. `path` names the base config in errors.
pub fn apply(
    base: &str,
    path: &Path,
    params: &[Param],
    point: &Point,
) -> Result<String, ScanError> {
    let name = describe(params, point);
    let invalid = |what: String| ScanError::Config {
        point: name.clone(),
        source: ConfigError::Invalid {
            path: path.to_owned(),
            what,
        },
    };
    let mut doc: Value = yaml_serde::from_str(base).map_err(|source| ScanError::Config {
        point: name.clone(),
        source: ConfigError::Parse {
            path: path.to_owned(),
            source,
        },
    })?;
    for (p, v) in params.iter().zip(point) {
        if p.key == SEED {
            if v.as_u64().is_none() {
                return Err(invalid(format!("seed {} is not an integer >= 0", show(v))));
            }
            continue;
        }
        let mut node = &mut doc;
        let parts: Vec<&str> = p.key.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            if node.is_null() {
                *node = Value::Mapping(Mapping::new());
            }
            let Value::Mapping(m) = node else {
                return Err(invalid(format!(
                    "{} is not a block, so {} cannot be set",
                    parts[..i].join("."),
                    p.key
                )));
            };
            let k = Value::String((*part).into());
            if i + 1 == parts.len() {
                m.insert(k, v.clone());
                break;
            }
            node = m.entry(k).or_insert(Value::Null);
        }
    }
    let text = yaml_serde::to_string(&doc).map_err(|e| invalid(e.to_string()))?;
    TrainConfig::from_str(&text, path).map_err(|source| ScanError::Config {
        point: name,
        source,
    })?;
    Ok(text)
}

/// Checks, before anything trains, that every key exists in the config and every value is
/// accepted: each listed value and both ends of each range, one parameter at a time.
pub fn check(base: &str, path: &Path, params: &[Param]) -> Result<(), ScanError> {
    for (i, p) in params.iter().enumerate() {
        for v in p.extremes() {
            apply(base, path, std::slice::from_ref(&params[i]), &vec![v])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "model: {type: dnn, width: 16, depth: 1}\n\
        data: {signal: [s.h5], background: [b.h5]}\n\
        features: {inputs: [a, b]}\n";

    #[test]
    fn specs_parse_to_lists_and_ranges() {
        let p = Param::parse("model.depth=2,4").unwrap();
        assert_eq!(
            p.domain,
            Domain::List(vec![Value::Number(2.into()), Value::Number(4.into())])
        );
        let p = Param::parse("training.learning_rate=log:1e-4..1e-1").unwrap();
        assert_eq!(
            p.domain,
            Domain::Log {
                lo: 1e-4,
                hi: 1e-1,
                integer: false
            }
        );
        let p = Param::parse("model.width = 8..64").unwrap();
        assert!(matches!(p.domain, Domain::Uniform { integer: true, .. }));
        for bad in [
            "model.depth",
            "=1,2",
            "model..x=1",
            "a.b=3..1",
            "a.b=log:0..1",
            "a.b=1,,2",
        ] {
            assert!(Param::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn grid_is_the_product_and_refuses_ranges() {
        let ps = [
            Param::parse("model.depth=1,2,3").unwrap(),
            Param::parse("model.activation=relu,tanh").unwrap(),
        ];
        let g = grid(&ps).unwrap();
        assert_eq!(g.len(), 6);
        assert_eq!(describe(&ps, &g[1]), "model.depth=1 model.activation=tanh");
        assert!(grid(&[Param::parse("model.depth=1..3").unwrap()]).is_err());
    }

    #[test]
    fn apply_sets_nested_keys_and_the_config_checks_them() {
        let p = Path::new("base.yaml");
        let ps = [
            Param::parse("model.depth=3").unwrap(),
            Param::parse("training.learning_rate=0.05").unwrap(),
        ];
        let text = apply(BASE, p, &ps, &grid(&ps).unwrap()[0]).unwrap();
        let c = TrainConfig::from_str(&text, p).unwrap();
        let crate::config::ModelConfig::Dnn(net) = &c.model else {
            panic!("{:?}", c.model)
        };
        assert_eq!(net.depth, 3);
        assert_eq!(c.training.learning_rate, 0.05);
        let typo = [Param::parse("model.dpth=3").unwrap()];
        let err = check(BASE, p, &typo).unwrap_err().to_string();
        assert!(err.contains("dpth"), "{err}");
        let out_of_range = [Param::parse("model.dropout=0.2,1.5").unwrap()];
        let err = check(BASE, p, &out_of_range).unwrap_err().to_string();
        assert!(err.contains("dropout"), "{err}");
    }

    #[test]
    fn seed_is_scanned_beside_the_config_not_in_it() {
        let p = Path::new("base.yaml");
        let ps = [
            Param::parse("seed=3,7").unwrap(),
            Param::parse("model.depth=2").unwrap(),
        ];
        let g = grid(&ps).unwrap();
        assert_eq!(seed_of(&ps, &g[1]), Some(7));
        assert_eq!(seed_of(&ps[1..], &g[1][1..].to_vec()), None);
        let text = apply(BASE, p, &ps, &g[1]).unwrap();
        assert!(!text.contains("seed"), "{text}");
        for bad in ["seed=1.5", "seed=-1", "seed=abc"] {
            let err = check(BASE, p, &[Param::parse(bad).unwrap()]).unwrap_err();
            assert!(err.to_string().contains("not an integer"), "{bad}: {err}");
        }
    }
}
