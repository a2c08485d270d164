//! The manifest: the list of tasks of a run, one line each, tab-separated:
//! `TASK<TAB>OUTPUT<TAB>INPUT<TAB>INPUT...`, tasks numbered 0..N in order, paths absolute.
//! It has no header or comment line, so HTCondor's `queue Task, Output, Inputs from FILE`
//! reads it as it is.
//!
//! [`plan`] groups input files into tasks, by file count or by entry count (read from each
//! file's tree header, several files at once; no basket is read).

use crate::{invalid, io, write_atomic, BatchError};
use std::path::{Path, PathBuf};

/// One task: its index, its output (a file or a folder) and its inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub task: usize,
    pub output: PathBuf,
    pub inputs: Vec<PathBuf>,
}

/// How inputs are grouped into tasks.
#[derive(Debug, Clone, Copy)]
pub enum Grouping {
    /// This many files per task.
    Files(usize),
    /// Files are added to a task until it holds at least this many entries.
    Events(u64),
}

/// The tasks of a run, read from or written to a manifest file.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    pub rows: Vec<Row>,
}

/// Counts the entries of one input (its tree header only).
pub type Counter<'a> = dyn Fn(&Path) -> Result<u64, String> + Sync + 'a;

/// The absolute form of `p` (without resolving links), for paths that jobs on other machines
/// and other working directories read.
pub fn absolute(p: &Path) -> Result<PathBuf, BatchError> {
    std::path::absolute(p).map_err(io("resolving", p))
}

/// Groups `groups` of inputs into tasks (a task never mixes two groups: convert's samples),
/// numbered in order, each writing `out_dir/part-NNNNN<ext>`. `count` gives a file's entries
/// for [`Grouping::Events`].
pub fn plan(
    groups: &[Vec<PathBuf>],
    grouping: Grouping,
    out_dir: &Path,
    ext: &str,
    count: &Counter,
) -> Result<Vec<Row>, BatchError> {
    let out_dir = absolute(out_dir)?;
    let mut rows: Vec<Row> = Vec::new();
    for files in groups {
        let files = files
            .iter()
            .map(|f| absolute(f))
            .collect::<Result<Vec<_>, _>>()?;
        let sizes: Vec<u64> = match grouping {
            Grouping::Files(0) | Grouping::Events(0) => {
                return Err(invalid(
                    "--files-per-job and --events-per-job must be at least 1",
                ))
            }
            Grouping::Files(_) => vec![1; files.len()],
            Grouping::Events(_) => count_all(&files, count)?,
        };
        let limit = match grouping {
            Grouping::Files(n) => n as u64,
            Grouping::Events(n) => n,
        };
        let mut cur: Vec<PathBuf> = Vec::new();
        let mut sum = 0;
        for (f, n) in files.into_iter().zip(sizes) {
            cur.push(f);
            sum += n;
            if sum >= limit {
                rows.push(Row {
                    task: rows.len(),
                    output: PathBuf::new(),
                    inputs: std::mem::take(&mut cur),
                });
                sum = 0;
            }
        }
        if !cur.is_empty() {
            rows.push(Row {
                task: rows.len(),
                output: PathBuf::new(),
                inputs: cur,
            });
        }
    }
    for r in &mut rows {
        r.output = out_dir.join(format!("part-{:05}{ext}", r.task));
    }
    check(&rows, "the plan")?;
    Ok(rows)
}

/// Entry counts of `files`, read on several threads (the reads are small and mostly waits).
fn count_all(files: &[PathBuf], count: &Counter) -> Result<Vec<u64>, BatchError> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) * 4;
    let per = files.len().div_ceil(threads.max(1)).max(1);
    let parts: Vec<Result<Vec<u64>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(per)
            .map(|c| s.spawn(move || c.iter().map(|f| count(f)).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("entry counting panicked".into()))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(files.len());
    for p in parts {
        out.extend(p.map_err(BatchError::Invalid)?);
    }
    Ok(out)
}

/// Checks rows: numbered 0..N in order, each with inputs, no two writing one output, no path
/// with a tab or a line break (the manifest's separators).
fn check(rows: &[Row], what: &str) -> Result<(), BatchError> {
    if rows.is_empty() {
        return Err(invalid(format!("{what} has no task")));
    }
    let mut seen = std::collections::HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        if r.task != i {
            return Err(invalid(format!(
                "{what}: line {} is task {}; tasks must be numbered 0, 1, 2... in order",
                i + 1,
                r.task
            )));
        }
        if r.inputs.is_empty() {
            return Err(invalid(format!("{what}: task {i} has no input")));
        }
        for p in std::iter::once(&r.output).chain(&r.inputs) {
            let s = p.to_string_lossy();
            if s.contains(['\t', '\n', '\r']) {
                return Err(invalid(format!(
                    "{what}: path {s:?} holds a tab or a line break"
                )));
            }
        }
        if let Some(j) = seen.insert(r.output.clone(), i) {
            return Err(invalid(format!(
                "{what}: tasks {j} and {i} both write {}",
                r.output.display()
            )));
        }
    }
    Ok(())
}

impl Manifest {
    /// Writes the rows to `path` (under a temporary name, renamed when complete).
    pub fn write(path: &Path, rows: Vec<Row>) -> Result<Manifest, BatchError> {
        check(&rows, &path.display().to_string())?;
        write_atomic(path, text(&rows).as_bytes())?;
        Ok(Manifest {
            path: absolute(path)?,
            rows,
        })
    }

    /// Reads and checks a manifest.
    pub fn read(path: &Path) -> Result<Manifest, BatchError> {
        let text = std::fs::read_to_string(path).map_err(io("reading manifest", path))?;
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let mut f = line.split('\t');
            let bad = || {
                invalid(format!(
                    "manifest {} line {}: expected TASK<TAB>OUTPUT<TAB>INPUT...",
                    path.display(),
                    i + 1
                ))
            };
            let task = f.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
            let output = f.next().filter(|o| !o.is_empty()).ok_or_else(bad)?;
            let inputs: Vec<PathBuf> = f.filter(|s| !s.is_empty()).map(PathBuf::from).collect();
            rows.push(Row {
                task,
                output: PathBuf::from(output),
                inputs,
            });
        }
        check(&rows, &format!("manifest {}", path.display()))?;
        Ok(Manifest {
            path: absolute(path)?,
            rows,
        })
    }

    /// Task `task`, or an error naming the valid range.
    pub fn row(&self, task: usize) -> Result<&Row, BatchError> {
        self.rows.get(task).ok_or_else(|| {
            invalid(format!(
                "task {task} is not in manifest {} (tasks 0-{})",
                self.path.display(),
                self.rows.len() - 1
            ))
        })
    }
}

/// Rows as manifest lines.
pub(crate) fn text(rows: &[Row]) -> String {
    let mut text = String::new();
    for r in rows {
        text.push_str(&r.task.to_string());
        for p in std::iter::once(&r.output).chain(&r.inputs) {
            text.push('\t');
            text.push_str(&p.to_string_lossy());
        }
        text.push('\n');
    }
    text
}

/// Indices as Slurm's `--array` writes them: `2,5,7-9`.
pub fn ranges(indices: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        out.push(if j == i {
            indices[i].to_string()
        } else {
            format!("{}-{}", indices[i], indices[j])
        });
        i = j + 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_compress_runs() {
        assert_eq!(ranges(&[2, 5, 7, 8, 9]), "2,5,7-9");
        assert_eq!(ranges(&[0]), "0");
        assert_eq!(ranges(&[]), "");
    }

    #[test]
    fn grouping_by_files_and_events() {
        let files: Vec<PathBuf> = (0..5)
            .map(|i| PathBuf::from(format!("/in/{i}.root")))
            .collect();
        let count = |p: &Path| -> Result<u64, String> {
            Ok(p.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
                * 10)
        };
        let rows = plan(
            std::slice::from_ref(&files),
            Grouping::Files(2),
            Path::new("/out"),
            "",
            &count,
        )
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2].inputs, vec![PathBuf::from("/in/4.root")]);
        assert_eq!(rows[1].output, PathBuf::from("/out/part-00001"));
        // entries 0, 10, 20, 30, 40: groups reach 25 at [0,10,20], then [30], [40]
        let rows = plan(
            &[files],
            Grouping::Events(25),
            Path::new("/out"),
            ".h5",
            &count,
        )
        .unwrap();
        let sizes: Vec<usize> = rows.iter().map(|r| r.inputs.len()).collect();
        assert_eq!(sizes, vec![3, 1, 1]);
    }

    #[test]
    fn a_manifest_round_trips_and_bad_ones_fail() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.tsv");
        let rows = vec![
            Row {
                task: 0,
                output: "/o/a".into(),
                inputs: vec!["/i/1".into(), "/i/2".into()],
            },
            Row {
                task: 1,
                output: "/o/b".into(),
                inputs: vec!["/i/3".into()],
            },
        ];
        Manifest::write(&p, rows.clone()).unwrap();
        assert_eq!(Manifest::read(&p).unwrap().rows, rows);
        std::fs::write(&p, "0\t/o/a\t/i/1\n1\t/o/a\t/i/2\n").unwrap();
        let e = Manifest::read(&p).unwrap_err().to_string();
        assert!(e.contains("tasks 0 and 1 both write /o/a"), "{e}");
        std::fs::write(&p, "0\t/o/a\t/i/1\n2\t/o/b\t/i/2\n").unwrap();
        assert!(Manifest::read(&p)
            .unwrap_err()
            .to_string()
            .contains("numbered"));
    }
}
