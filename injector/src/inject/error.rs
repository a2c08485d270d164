//! The one error type of the inject library. Messages are one line; [`InjectError::Context`]
//! says where (which file, which model) and keeps the cause as its `source()`, so a chain
//! printed with `{:#}` (anyhow) reads "where: what".

use engine::EngineError;
use rootio::RootError;

use super::inputs::InputError;
use super::spec::SpecError;

#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error(transparent)]
    Root(#[from] RootError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("model '{model}': {msg}")]
    Model { model: String, msg: String },
    /// Options or specs that do not fit together (the message says how to fix them).
    #[error("{0}")]
    Config(String),
    /// A file that cannot be read or created.
    #[error("{what}: {err}")]
    Io { what: String, err: std::io::Error },
    /// `source` happened while doing `context` (a file, a model).
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<InjectError>,
    },
}

/// Shorthand for a [`InjectError::Config`] error.
pub(crate) fn config(msg: impl Into<String>) -> InjectError {
    InjectError::Config(msg.into())
}

/// Adds a [`InjectError::Context`] to an error.
pub(crate) trait Context<T> {
    fn context_with(self, f: impl FnOnce() -> String) -> Result<T, InjectError>;
}

impl<T, E: Into<InjectError>> Context<T> for Result<T, E> {
    fn context_with(self, f: impl FnOnce() -> String) -> Result<T, InjectError> {
        self.map_err(|e| InjectError::Context {
            context: f(),
            source: Box::new(e.into()),
        })
    }
}
