//! Configuration files of `hepml convert` and `hepml train`.
//!
//! Every block rejects unknown keys (`deny_unknown_fields`), so a typo such as `lerning_rate`
//! is an error that names the key instead of a silently ignored setting. After parsing,
//! [`ConvertConfig::validate`] / [`TrainConfig::validate`] check what serde cannot: feature
//! expressions parse, fractions add up, fold counts make sense.

mod convert;
mod model;
mod train;

use std::path::{Path, PathBuf};

use injector::expr::Expr;
use serde::Deserialize;

pub use convert::*;
pub use model::*;
pub use train::*;

/// A configuration file that could not be read, parsed or validated.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// yaml_serde's message names the unknown or missing key and its line/column.
    #[error("config {path}: {source}")]
    Parse {
        path: PathBuf,
        source: yaml_serde::Error,
    },
    #[error("config {path}: {what}")]
    Invalid { path: PathBuf, what: String },
}

pub(super) fn read_yaml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_yaml(&text, path)
}

pub(super) fn parse_yaml<T: for<'de> Deserialize<'de>>(
    text: &str,
    path: &Path,
) -> Result<T, ConfigError> {
    yaml_serde::from_str(text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

pub(super) fn check_exprs(path: &Path, what: &str, exprs: &[String]) -> Result<(), ConfigError> {
    for e in exprs {
        Expr::parse(e).map_err(|err| ConfigError::Invalid {
            path: path.to_owned(),
            what: format!("{what} `{e}`: {err}"),
        })?;
    }
    Ok(())
}

/// `true`, for serde defaults.
pub(super) fn default_true() -> bool {
    true
}
