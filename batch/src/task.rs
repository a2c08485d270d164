//! Running one task of a manifest: skipped when its output is valid and its inputs unchanged,
//! else its output is written under a temporary name, its `.done.json` written, and the
//! output renamed into place; a failure leaves a `.failed.json` and no output.

use crate::manifest::{Manifest, Row};
use crate::sidecar::{self, Done, Failed, Hash, Stamp, State};
use crate::{invalid, io, BatchError};
use std::path::{Path, PathBuf};

/// What [`run`] did.
#[derive(Debug)]
pub enum Outcome {
    /// The output was valid already.
    Skipped(Done),
    /// The task ran and wrote its output.
    Ran(Done),
}

/// One task to run.
pub struct Task<'a> {
    pub manifest: &'a Manifest,
    pub task: usize,
    /// The folder the command writes to (`-o`): every output of the manifest must be in it.
    pub out_dir: &'a Path,
    /// Model and config files: hashed into the sidecar; a change reruns the task.
    pub models: &'a [PathBuf],
    /// The command line, for the record.
    pub command: Vec<String>,
}

/// Entries read and written by a task's work.
pub struct Counts {
    pub entries_in: u64,
    pub entries_out: u64,
}

fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes what killed runs of this task left under temporary names, the temporary's own
/// temporaries included (convert writes its table under a temporary name of the task's
/// temporary); a task's output has one writer at a time: its task.
fn remove_temporaries(dir: &Path, output: &Path) {
    let prefix = rootio::write::file::tmp_prefix(output);
    let core = prefix.trim_start_matches('.');
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name()
                .to_string_lossy()
                .trim_start_matches('.')
                .starts_with(core)
            {
                let _ = remove(&e.path());
            }
        }
    }
}

/// The row of `t`, checked against the command: its output must be in `out_dir`.
pub fn row<'a>(t: &Task<'a>) -> Result<&'a Row, BatchError> {
    let row = t.manifest.row(t.task)?;
    let want = crate::manifest::absolute(t.out_dir)?;
    if row.output.parent() != Some(want.as_path()) {
        return Err(invalid(format!(
            "manifest {} task {} writes {}, outside the output folder {}: the manifest was not \
             written for this command",
            t.manifest.path.display(),
            t.task,
            row.output.display(),
            want.display()
        )));
    }
    Ok(row)
}

/// Runs task `t`: `work(row, tmp)` writes the output to `tmp` (a file, or a folder it
/// creates) and returns the entry counts.
pub fn run<E: std::fmt::Display>(
    t: &Task,
    work: impl FnOnce(&Row, &Path) -> Result<Counts, E>,
) -> Result<Outcome, BatchError> {
    let row = row(t)?;
    let models = t
        .models
        .iter()
        .map(|m| Hash::of(&crate::manifest::absolute(m)?))
        .collect::<Result<Vec<_>, _>>()?;
    if let State::Done(d) = sidecar::state(row, Some(&models))? {
        return Ok(Outcome::Skipped(d));
    }
    // An old output without a valid sidecar goes first, then its sidecars: never a final
    // output without a valid sidecar.
    let (done, failed) = (
        sidecar::done_path(&row.output),
        sidecar::failed_path(&row.output),
    );
    remove(&row.output).map_err(io("removing the stale output", &row.output))?;
    for p in [&done, &failed] {
        remove(p).map_err(io("removing", p))?;
    }
    if let Some(dir) = row.output.parent() {
        std::fs::create_dir_all(dir).map_err(io("creating the output folder", dir))?;
        remove_temporaries(dir, &row.output);
    }
    let inputs = row
        .inputs
        .iter()
        .map(|p| Stamp::of(p))
        .collect::<Result<Vec<_>, _>>();
    let tmp = rootio::write::file::tmp_name(&row.output);
    let t0 = std::time::Instant::now();
    let result = inputs.and_then(|inputs| {
        let counts = work(row, &tmp).map_err(|e| BatchError::Task {
            task: row.task,
            msg: e.to_string(),
        })?;
        let d = Done {
            hepml: env!("CARGO_PKG_VERSION").into(),
            task: row.task,
            output: row.output.clone(),
            files: sidecar::list_files(&tmp)?,
            inputs,
            models,
            command: t.command.clone(),
            entries_in: counts.entries_in,
            entries_out: counts.entries_out,
            wall_s: t0.elapsed().as_secs_f64(),
            finished: sidecar::now(),
            host: sidecar::host(),
        };
        sidecar::write_done(&d)?;
        std::fs::rename(&tmp, &row.output).map_err(|e| {
            let _ = std::fs::remove_file(&done);
            io("renaming into", &row.output)(e)
        })?;
        Ok(d)
    });
    match result {
        Ok(d) => Ok(Outcome::Ran(d)),
        Err(e) => {
            let _ = remove(&tmp);
            let error = match &e {
                BatchError::Task { msg, .. } => msg.clone(),
                other => other.to_string(),
            };
            let f = Failed {
                hepml: env!("CARGO_PKG_VERSION").into(),
                task: row.task,
                error,
                finished: sidecar::now(),
                host: sidecar::host(),
            };
            // The error itself is what matters; a failure record that cannot be written (an
            // unwritable folder) only leaves the task "missing" instead of "failed".
            let _ = sidecar::write_failed(&row.output, &f);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    #[test]
    fn skips_reruns_records_failures_and_clears_temporaries() {
        let d = tempfile::tempdir().unwrap();
        let (input, out) = (d.path().join("in.txt"), d.path().join("out"));
        std::fs::write(&input, "x").unwrap();
        let rows = vec![Row {
            task: 0,
            output: out.join("part-00000.h5"),
            inputs: vec![input.clone()],
        }];
        let m = Manifest::write(&d.path().join("m.tsv"), rows).unwrap();
        let t = Task {
            manifest: &m,
            task: 0,
            out_dir: &out,
            models: &[],
            command: vec![],
        };
        let write = |_: &Row, tmp: &Path| -> Result<Counts, String> {
            std::fs::write(tmp, "table").map_err(|e| e.to_string())?;
            Ok(Counts {
                entries_in: 3,
                entries_out: 2,
            })
        };
        assert!(matches!(run(&t, write).unwrap(), Outcome::Ran(_)));
        assert!(matches!(run(&t, write).unwrap(), Outcome::Skipped(_)));
        // What killed runs left: the task's temporary, and a temporary of that temporary.
        let left = [
            ".part-00000.h5.hepml-tmp-1-0",
            "..part-00000.h5.hepml-tmp-1-0.hepml-tmp-1-1",
        ];
        for l in left {
            std::fs::write(out.join(l), "").unwrap();
        }
        std::fs::write(&input, "changed").unwrap();
        let e = run(&t, |_: &Row, _: &Path| -> Result<Counts, String> {
            Err("broken input".into())
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "task 0: broken input");
        assert!(
            !out.join("part-00000.h5").exists() && !out.join("part-00000.h5.done.json").exists()
        );
        let f: sidecar::Failed = crate::read_json(&out.join("part-00000.h5.failed.json")).unwrap();
        assert_eq!(f.error, "broken input");
        for l in left {
            assert!(!out.join(l).exists(), "{l} left");
        }
        let Outcome::Ran(d) = run(&t, write).unwrap() else {
            panic!("not rerun")
        };
        assert_eq!((d.entries_in, d.entries_out), (3, 2));
        assert!(!out.join("part-00000.h5.failed.json").exists());
    }
}
