//! The sidecars of an output `OUT`: `OUT.done.json` when it is complete (what went in, what
//! came out, how long it took) and `OUT.failed.json` when its task failed (the error).

use crate::manifest::Row;
use crate::{invalid, io, read_json, write_json, BatchError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// An input file as it was when read: a changed size or mtime means the task must rerun.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_s: i64,
    pub mtime_ns: u32,
}

impl Stamp {
    pub fn of(path: &Path) -> Result<Stamp, BatchError> {
        let m = std::fs::metadata(path).map_err(io("reading", path))?;
        let t = m.modified().map_err(io("reading the mtime of", path))?;
        let (s, ns) = match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
            Err(e) => (
                -(e.duration().as_secs() as i64),
                e.duration().subsec_nanos(),
            ),
        };
        Ok(Stamp {
            path: path.to_path_buf(),
            size: m.len(),
            mtime_s: s,
            mtime_ns: ns,
        })
    }
}

/// A model or config file and the xxh64 of its bytes (hex; the hash `hepml inject` writes in
/// its provenance record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hash {
    pub path: PathBuf,
    pub xxh64: String,
}

impl Hash {
    pub fn of(path: &Path) -> Result<Hash, BatchError> {
        let bytes = std::fs::read(path).map_err(io("reading", path))?;
        Ok(Hash {
            path: path.to_path_buf(),
            xxh64: format!("{:016x}", xxhash_rust::xxh64::xxh64(&bytes, 0)),
        })
    }
}

/// A file of the output (relative to the output folder; empty when the output is one file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutFile {
    pub path: PathBuf,
    pub size: u64,
}

/// `OUT.done.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    pub hepml: String,
    pub task: usize,
    pub output: PathBuf,
    pub files: Vec<OutFile>,
    pub inputs: Vec<Stamp>,
    pub models: Vec<Hash>,
    pub command: Vec<String>,
    pub entries_in: u64,
    pub entries_out: u64,
    pub wall_s: f64,
    /// Unix time when the task finished.
    pub finished: u64,
    pub host: String,
}

/// `OUT.failed.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failed {
    pub hepml: String,
    pub task: usize,
    pub error: String,
    pub finished: u64,
    pub host: String,
}

/// `OUT` with `suffix` added to its file name.
fn beside(output: &Path, suffix: &str) -> PathBuf {
    let mut s = output.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

pub fn done_path(output: &Path) -> PathBuf {
    beside(output, ".done.json")
}

pub fn failed_path(output: &Path) -> PathBuf {
    beside(output, ".failed.json")
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Files under `output` (itself when it is a file) with their sizes, relative to it, sorted.
pub(crate) fn list_files(output: &Path) -> Result<Vec<OutFile>, BatchError> {
    let m = std::fs::metadata(output).map_err(io("reading", output))?;
    if m.is_file() {
        return Ok(vec![OutFile {
            path: PathBuf::new(),
            size: m.len(),
        }]);
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(output).map_err(io("listing", output))? {
        let e = e.map_err(io("listing", output))?;
        let m = e.metadata().map_err(io("reading", &e.path()))?;
        if m.is_file() {
            out.push(OutFile {
                path: PathBuf::from(e.file_name()),
                size: m.len(),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// What the sidecars of a task say.
#[derive(Debug)]
pub enum State {
    /// Complete and up to date.
    Done(Done),
    /// The task failed (its error), and has no valid output.
    Failed(Failed),
    /// No valid output and no failure record (never ran, cancelled, killed, or out of date:
    /// the reason).
    Missing(Option<String>),
}

impl Done {
    /// Why this record does not vouch for `row`'s output now (`None`: it does). An error when
    /// the record is of other inputs than the row's: the manifest was edited after the run.
    pub fn stale(&self, row: &Row, models: Option<&[Hash]>) -> Result<Option<String>, BatchError> {
        let paths: Vec<&PathBuf> = self.inputs.iter().map(|s| &s.path).collect();
        if self.task != row.task || paths != row.inputs.iter().collect::<Vec<_>>() {
            return Err(invalid(format!(
                "manifest task {} lists other inputs than {} was made from: the manifest was \
                 edited after the run; restore it, or delete that output and its sidecar",
                row.task,
                row.output.display()
            )));
        }
        for s in &self.inputs {
            match Stamp::of(&s.path) {
                Ok(now) if now == *s => {}
                Ok(_) => return Ok(Some(format!("input {} changed", s.path.display()))),
                Err(_) => return Ok(Some(format!("input {} unreadable", s.path.display()))),
            }
        }
        if let Some(models) = models {
            if models != self.models.as_slice() {
                return Ok(Some("the models changed".into()));
            }
        }
        match list_files(&row.output) {
            Ok(files) if files == self.files => Ok(None),
            Ok(_) => Ok(Some("the output's files differ from its sidecar".into())),
            Err(_) => Ok(Some("the output is missing".into())),
        }
    }
}

/// The state of `row` from its sidecars (`models`: the current hashes, when known).
pub fn state(row: &Row, models: Option<&[Hash]>) -> Result<State, BatchError> {
    let done = done_path(&row.output);
    let mut why = None;
    if done.exists() {
        match read_json::<Done>(&done) {
            Ok(d) => match d.stale(row, models)? {
                None => return Ok(State::Done(d)),
                Some(r) => why = Some(r),
            },
            Err(e) => why = Some(format!("unreadable sidecar: {e}")),
        }
    }
    let failed = failed_path(&row.output);
    if failed.exists() {
        if let Ok(f) = read_json::<Failed>(&failed) {
            return Ok(State::Failed(f));
        }
    }
    Ok(State::Missing(why))
}

pub(crate) fn write_done(d: &Done) -> Result<(), BatchError> {
    write_json(&done_path(&d.output), d)
}

pub(crate) fn write_failed(output: &Path, f: &Failed) -> Result<(), BatchError> {
    write_json(&failed_path(output), f)
}
