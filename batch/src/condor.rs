//! HTCondor: a submit file queueing one job per manifest line (`queue Task, Output, Inputs
//! from FILE`), a report submit file, and a DAG whose FINAL node runs the report whatever the
//! jobs' outcome; `condor_submit_dag` submits it and `condor_q` lists the tasks in the queue.

use crate::run::{Job, Record};
use crate::{command, invalid, BatchError};
use std::collections::HashMap;
use std::path::Path;

/// Arguments in HTCondor's quoted syntax: the whole in double quotes (`"` doubled), an
/// argument with a space or a `'` in single quotes (`'` doubled).
pub(crate) fn quote_args(args: &[String]) -> String {
    let one = |a: &String| {
        let a = a.replace('"', "\"\"");
        if a.is_empty() || a.contains([' ', '\t', '\'']) {
            format!("'{}'", a.replace('\'', "''"))
        } else {
            a
        }
    };
    format!("\"{}\"", args.iter().map(one).collect::<Vec<_>>().join(" "))
}

/// `[D-]HH:MM:SS`, `MM:SS` or minutes (Slurm's `--time` forms used here) in seconds.
fn seconds(t: &str) -> Result<u64, BatchError> {
    let bad = || {
        invalid(format!(
            "time '{t}': expected [D-]HH:MM:SS, MM:SS or minutes"
        ))
    };
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().map_err(|_| bad())?, r),
        None => (0, t),
    };
    let p: Vec<u64> = rest
        .split(':')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let s = match p.as_slice() {
        [m] => m * 60,
        [m, s] => m * 60 + s,
        [h, m, s] => h * 3600 + m * 60 + s,
        _ => return Err(bad()),
    };
    Ok(days * 86400 + s)
}

fn common(rec: &Record, dir: &Path) -> Result<String, BatchError> {
    let mut s = format!(
        "# written by hepml submit\nuniverse = vanilla\nexecutable = {}\ninitialdir = {}\nlog = {}\nshould_transfer_files = NO\n+HepmlRun = \"{}\"\n",
        rec.bin.display(),
        rec.cwd.display(),
        dir.join("condor/hepml.log").display(),
        dir.display()
    );
    for (k, v) in &rec.resources {
        match k.as_str() {
            "cpus" => s.push_str(&format!("request_cpus = {v}\n")),
            "mem" => s.push_str(&format!("request_memory = {v}\n")),
            "time" => s.push_str(&format!("+MaxRuntime = {}\n", seconds(v)?)),
            other => {
                return Err(invalid(format!(
                    "resource '{other}' is Slurm's; HTCondor has cpus, mem and time"
                )))
            }
        }
    }
    Ok(s)
}

/// The submit file of the tasks listed in `items` (the manifest, or the lines to resume).
pub fn task_sub(rec: &Record, dir: &Path, items: &Path) -> Result<String, BatchError> {
    let mut args = rec.job_args(dir);
    args.extend(["--task".into(), "$(Task)".into()]);
    let logs = dir.join("logs");
    let mut s = common(rec, dir)?;
    s.push_str(&format!(
        "arguments = {}\noutput = {}/task-$(Task).log\nerror = {}/task-$(Task).err\n+HepmlTask = $(Task)\n",
        quote_args(&args),
        logs.display(),
        logs.display()
    ));
    if let Some(m) = rec.max_parallel {
        s.push_str(&format!("max_materialize = {m}\n"));
    }
    s.push_str(&format!(
        "queue Task, Output, Inputs from {}\n",
        items.display()
    ));
    Ok(s)
}

/// The report job's submit file.
pub fn report_sub(rec: &Record, dir: &Path) -> Result<String, BatchError> {
    let logs = dir.join("logs");
    Ok(format!(
        "{}arguments = {}\noutput = {}/report.out\nerror = {}/report.err\nqueue\n",
        common(rec, dir)?,
        quote_args(&["report".into(), dir.display().to_string()]),
        logs.display(),
        logs.display()
    ))
}

/// A DAG: the tasks, then the report as its FINAL node.
pub fn dag(tasks_sub: &Path, report_sub: &Path) -> String {
    format!(
        "# written by hepml submit\nJOB tasks {}\nFINAL report {}\n",
        tasks_sub.display(),
        report_sub.display()
    )
}

/// Paths HTCondor's `queue ... from` would split (it separates items at whitespace and commas).
pub fn check_paths<'a>(paths: impl Iterator<Item = &'a Path>) -> Result<(), BatchError> {
    for p in paths {
        let s = p.to_string_lossy();
        if s.contains([' ', ',', '"', '\'']) {
            return Err(invalid(format!(
                "path {s:?} holds a space, comma or quote, which HTCondor's `queue ... from` splits on; rename it"
            )));
        }
    }
    Ok(())
}

/// Submits a DAG; its DAGMan job's cluster id.
pub fn submit(dag: &Path) -> Result<Job, BatchError> {
    let out = command(
        "condor_submit_dag",
        &[
            "-batch-name".into(),
            "hepml".into(),
            dag.display().to_string(),
        ],
    )?;
    let id = out
        .split("submitted to cluster")
        .nth(1)
        .map(|r| r.trim().trim_end_matches('.').to_string())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| BatchError::Command {
            cmd: "condor_submit_dag".into(),
            msg: format!("no cluster id in its output '{}'", out.trim()),
        })?;
    Ok(Job { id, offset: 0 })
}

/// Task -> state of this run's jobs in the queue (`condor_q`, by the `HepmlRun` attribute);
/// `None` when condor_q is not installed or does not answer.
pub fn queue(dir: &Path) -> Option<HashMap<usize, String>> {
    let out = command(
        "condor_q",
        &[
            "-constraint".into(),
            format!("HepmlRun == \"{}\"", dir.display()),
            "-af".into(),
            "HepmlTask".into(),
            "JobStatus".into(),
        ],
    )
    .ok()?;
    let mut m = HashMap::new();
    for l in out.lines() {
        let mut f = l.split_whitespace();
        if let (Some(Ok(t)), Some(s)) = (f.next().map(str::parse::<usize>), f.next()) {
            let state = match s {
                "1" => "IDLE",
                "2" => "RUNNING",
                "5" => "HELD",
                "7" => "SUSPENDED",
                _ => continue,
            };
            m.insert(t, state.to_string());
        }
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    #[test]
    fn arguments_and_times() {
        let a = super::quote_args(&["a b".into(), "it's".into(), "x\"y".into()]);
        assert_eq!(a, "\"'a b' 'it''s' x\"\"y\"");
        assert_eq!(super::seconds("1-02:00:00").unwrap(), 93600);
        assert_eq!(super::seconds("90").unwrap(), 5400);
        assert!(super::seconds("x").is_err());
    }
}
