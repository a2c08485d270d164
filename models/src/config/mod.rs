//! Configuration files of `hepml convert` and `hepml train`.
//!
//! Every block rejects unknown keys (`deny_unknown_fields`), so a typo such as `lerning_rate`
//! is an error that names the key instead of a silently ignored setting. After parsing,
//! [`ConfigFile::validate`] check what serde cannot: feature
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

/// A configuration file: YAML parsed into `Self`, then [`ConfigFile::validate`]d. `path`
/// names the file in every error.
pub trait ConfigFile: Sized + for<'de> Deserialize<'de> {
    /// What serde cannot check: expressions parse, fractions add up, and so on.
    fn validate(&self, path: &Path) -> Result<(), ConfigError>;

    fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_str(&text, path)
    }

    fn from_str(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let c: Self = yaml_serde::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        c.validate(path)?;
        Ok(c)
    }
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
