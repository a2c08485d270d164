//! Sharded, resumable batch runs of `hepml inject` and `hepml convert` on a job scheduler.
//!
//! The state of a run is files only: the [`manifest`] (one line per task: its index, its
//! output and its inputs) and, beside each output, a [`sidecar`] (`OUT.done.json` when the
//! output is complete, `OUT.failed.json` when the task failed). A task ([`task::run`]) writes
//! its output under a temporary name and renames it into place after its sidecar, so a
//! cancelled job never leaves a final output without a valid sidecar, and a rerun skips a
//! task whose output is valid and whose inputs are unchanged.
//!
//! A run directory ([`run`]) holds the manifest, the scheduler's files ([`slurm`],
//! [`condor`]), the task logs and `batch.json`, the record of what was submitted;
//! [`run::status`] and [`report`] read it back.

pub mod condor;
pub mod manifest;
pub mod report;
pub mod run;
pub mod sidecar;
pub mod slurm;
pub mod task;

use std::path::Path;

/// The one error type of batch runs; messages are one line.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Input that does not fit (a manifest, options, a run directory); the message says how
    /// to fix it.
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {err}")]
    Io { what: String, err: std::io::Error },
    #[error(transparent)]
    Root(#[from] rootio::RootError),
    /// A scheduler command that is not installed.
    #[error("`{0}` not found on PATH: run this where the scheduler's commands are installed, or use --dry-run to write the files only")]
    MissingCommand(String),
    /// A scheduler command that failed.
    #[error("`{cmd}` failed: {msg}")]
    Command { cmd: String, msg: String },
    /// The task's own work failed (recorded in its `.failed.json`).
    #[error("task {task}: {msg}")]
    Task { task: usize, msg: String },
}

/// Shorthand for [`BatchError::Invalid`].
pub(crate) fn invalid(msg: impl Into<String>) -> BatchError {
    BatchError::Invalid(msg.into())
}

/// A closure turning an I/O error into [`BatchError::Io`] about `path`.
pub(crate) fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> BatchError {
    let what = format!("{what} {}", path.display());
    move |err| BatchError::Io { what, err }
}

/// Writes `bytes` to `path` under a temporary name and renames it into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BatchError> {
    rootio::write::file::write_atomic(path, bytes).map_err(io("writing", path))
}

/// JSON of `value`, pretty-printed, written atomically.
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), BatchError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    write_atomic(path, format!("{text}\n").as_bytes())
}

/// Reads JSON written by [`write_json`].
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, BatchError> {
    let text = std::fs::read_to_string(path).map_err(io("reading", path))?;
    serde_json::from_str(&text).map_err(|e| invalid(format!("{}: {e}", path.display())))
}

/// Whether `cmd` is an executable file in a folder of `PATH`.
pub fn on_path(cmd: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            std::fs::metadata(d.join(cmd))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Runs a scheduler command and returns its stdout: [`BatchError::MissingCommand`] when it is
/// not installed, [`BatchError::Command`] with its last stderr line when it fails.
pub(crate) fn command(cmd: &str, args: &[String]) -> Result<String, BatchError> {
    if !on_path(cmd) {
        return Err(BatchError::MissingCommand(cmd.into()));
    }
    let o = std::process::Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| BatchError::Command {
            cmd: cmd.into(),
            msg: e.to_string(),
        })?;
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        let last = err.trim().lines().last().unwrap_or("").trim().to_string();
        return Err(BatchError::Command {
            cmd: format!("{cmd} {}", args.join(" ")),
            msg: if last.is_empty() {
                o.status.to_string()
            } else {
                last
            },
        });
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}
