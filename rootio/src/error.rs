//! Error type of the ROOT I/O layer. Every failure is an error value with a one-line message:
//! truncated or corrupted input, an unsupported layout, an I/O failure. Nothing here panics on
//! data read from a file, and nothing returns a value it could not decode faithfully.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    /// (The cause is part of the message, not a `source()`, so a chain prints it once.)
    #[error("{err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("not a ROOT file (no 'root' magic)")]
    NotRoot,
    #[error("truncated data: wanted {wanted} bytes at offset {at} of a {len}-byte {what}")]
    Truncated {
        what: &'static str,
        at: usize,
        wanted: usize,
        len: usize,
    },
    #[error("malformed {0}")]
    Malformed(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("{algo} decompression failed: {msg}")]
    Decompress { algo: &'static str, msg: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{context}: {inner}")]
    Context {
        context: String,
        inner: Box<RootError>,
    },
}

pub type Result<T, E = RootError> = std::result::Result<T, E>;

impl RootError {
    pub fn malformed(msg: impl Into<String>) -> Self {
        RootError::Malformed(msg.into())
    }
    pub fn unsupported(msg: impl Into<String>) -> Self {
        RootError::Unsupported(msg.into())
    }
}

/// Adds a context line ("reading branch X", "file.root") in front of an error.
pub trait Context<T> {
    fn context(self, ctx: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for Result<T> {
    fn context(self, ctx: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| RootError::Context {
            context: ctx(),
            inner: Box::new(e),
        })
    }
}
