//! Error type of the ROOT I/O layer. Every failure is an error value with a one-line message:
//! truncated or corrupted input, an unsupported layout, an I/O failure. Nothing here panics on
//! data read from a file, and nothing returns a value it could not decode faithfully.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
/// What went wrong reading or writing a ROOT file.
pub enum RootError {
    /// (The cause is part of the message, not a `source()`, so a chain prints it once.)
    #[error("{err}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        err: std::io::Error,
    },
    #[error("not a ROOT file (no 'root' magic)")]
    /// The file does not start with ROOT's magic.
    NotRoot,
    #[error("truncated data: wanted {wanted} bytes at offset {at} of a {len}-byte {what}")]
    /// A read ran past the end of a buffer.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where the read started.
        at: usize,
        /// How many bytes it wanted.
        wanted: usize,
        /// How long the buffer is.
        len: usize,
    },
    #[error("malformed {0}")]
    /// The data contradicts itself or the format.
    Malformed(String),
    #[error("unsupported: {0}")]
    /// Valid ROOT data that this crate does not read or write.
    Unsupported(String),
    #[error("{algo} decompression failed: {msg}")]
    /// A compressed block did not decompress.
    Decompress {
        /// The algorithm.
        algo: &'static str,
        /// The decompressor's message.
        msg: String,
    },
    #[error("{0}")]
    /// A tree, branch, key or entry range that is not there.
    NotFound(String),
    #[error("{context}: {inner}")]
    /// An error with what was being done when it happened.
    Context {
        /// What was being done.
        context: String,
        /// The error.
        inner: Box<RootError>,
    },
}

/// Result with [`RootError`].
pub type Result<T, E = RootError> = std::result::Result<T, E>;

impl RootError {
    /// A [`RootError::Malformed`].
    pub fn malformed(msg: impl Into<String>) -> Self {
        RootError::Malformed(msg.into())
    }
    /// A [`RootError::Unsupported`].
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
