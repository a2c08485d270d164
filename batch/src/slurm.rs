//! Slurm: the job-array script, the report job, `sbatch` submission split by the site's
//! `MaxArraySize`, and `squeue` for the tasks still queued or running.

use crate::run::{Job, Record};
use crate::{command, invalid, BatchError};
use std::collections::HashMap;
use std::path::Path;

/// `'s'` for a POSIX shell.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn header(rec: &Record, dir: &Path, name: &str, log: &str) -> String {
    let mut s = format!(
        "#!/bin/bash\n# written by hepml submit\n#SBATCH --job-name={name}\n#SBATCH --chdir={}\n#SBATCH --output={}\n",
        rec.cwd.display(),
        dir.join("logs").join(log).display()
    );
    for (k, v) in &rec.resources {
        let opt = match k.as_str() {
            "cpus" => "cpus-per-task",
            "mem" => "mem",
            "time" => "time",
            "partition" => "partition",
            "account" => "account",
            _ => continue,
        };
        s.push_str(&format!("#SBATCH --{opt}={v}\n"));
    }
    s
}

/// The array job: task = `HEPML_TASK_OFFSET` + the array index (arrays beyond MaxArraySize
/// start at an offset), its output to `logs/task-N.log`.
pub fn task_script(rec: &Record, dir: &Path) -> String {
    let args: Vec<String> = rec.job_args(dir).iter().map(|a| sh_quote(a)).collect();
    format!(
        "{}set -u\ntask=$(( ${{HEPML_TASK_OFFSET:-0}} + SLURM_ARRAY_TASK_ID ))\nexec {} {} --task \"$task\" >{}/task-\"$task\".log 2>&1\n",
        header(rec, dir, "hepml", "slurm-%A_%a.out"),
        sh_quote(&rec.bin.to_string_lossy()),
        args.join(" "),
        sh_quote(&dir.join("logs").to_string_lossy()),
    )
}

/// The final job: `hepml report DIR`.
pub fn report_script(rec: &Record, dir: &Path) -> String {
    format!(
        "{}exec {} report {}\n",
        header(rec, dir, "hepml-report", "report-%j.out"),
        sh_quote(&rec.bin.to_string_lossy()),
        sh_quote(&dir.to_string_lossy())
    )
}

/// `MaxArraySize` from `scontrol show config` (array indices must stay below it).
pub fn max_array_size() -> Result<usize, BatchError> {
    let out = command("scontrol", &["show".into(), "config".into()])?;
    out.lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "MaxArraySize").then(|| v.trim().parse().ok())?
        })
        .ok_or_else(|| invalid("`scontrol show config` reports no MaxArraySize"))
}

/// Task indices split into arrays of indices below `max`: (offset, indices - offset).
pub fn blocks(tasks: &[usize], max: usize) -> Vec<(usize, Vec<usize>)> {
    let mut out: Vec<(usize, Vec<usize>)> = Vec::new();
    for &t in tasks {
        let off = t / max * max;
        match out.last_mut() {
            Some((o, v)) if *o == off => v.push(t - off),
            _ => out.push((off, vec![t - off])),
        }
    }
    out
}

/// The `sbatch` arguments of each array for `tasks`.
pub fn array_args(rec: &Record, dir: &Path, tasks: &[usize]) -> Vec<(usize, Vec<String>)> {
    blocks(tasks, rec.max_array)
        .into_iter()
        .map(|(off, idx)| {
            let mut array = crate::manifest::ranges(&idx);
            if let Some(m) = rec.max_parallel {
                array.push_str(&format!("%{m}"));
            }
            let args = vec![
                "--parsable".into(),
                format!("--array={array}"),
                format!("--export=ALL,HEPML_TASK_OFFSET={off}"),
                dir.join("slurm/task.sh").display().to_string(),
            ];
            (off, args)
        })
        .collect()
}

fn sbatch(args: &[String]) -> Result<String, BatchError> {
    let out = command("sbatch", args)?;
    let id = out.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(BatchError::Command {
            cmd: "sbatch".into(),
            msg: format!("no job id in its output '{}'", out.trim()),
        });
    }
    Ok(id)
}

/// Submits `tasks` as arrays (each pushed to `jobs` once submitted) and the report job after
/// them (`afterany`: it runs whatever the tasks' outcome).
pub fn submit(
    rec: &Record,
    dir: &Path,
    tasks: &[usize],
    jobs: &mut Vec<Job>,
) -> Result<Job, BatchError> {
    for (offset, args) in array_args(rec, dir, tasks) {
        jobs.push(Job {
            id: sbatch(&args)?,
            offset,
        });
    }
    let after: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    let report = sbatch(&[
        "--parsable".into(),
        format!("--dependency=afterany:{}", after.join(":")),
        dir.join("slurm/report.sh").display().to_string(),
    ])?;
    Ok(Job {
        id: report,
        offset: 0,
    })
}

/// Task -> state (PENDING, RUNNING...) of the tasks of `jobs` that squeue lists; `None` when
/// squeue is not installed or does not answer.
pub fn queue(jobs: &[Job]) -> Option<HashMap<usize, String>> {
    let out = command(
        "squeue",
        &["-h".into(), "-r".into(), "-o".into(), "%i %T".into()],
    )
    .ok()?;
    let offsets: HashMap<&str, usize> = jobs.iter().map(|j| (j.id.as_str(), j.offset)).collect();
    let mut m = HashMap::new();
    for l in out.lines() {
        let mut f = l.split_whitespace();
        let (Some(id), Some(state)) = (f.next(), f.next()) else {
            continue;
        };
        let Some((job, idx)) = id.split_once('_') else {
            continue;
        };
        if let (Some(off), Ok(i)) = (offsets.get(job), idx.parse::<usize>()) {
            m.insert(off + i, state.to_string());
        }
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    #[test]
    fn blocks_split_at_max_array_size() {
        let b = super::blocks(&[0, 1, 999, 1000, 2500], 1000);
        assert_eq!(
            b,
            vec![(0, vec![0, 1, 999]), (1000, vec![0]), (2000, vec![500])]
        );
    }
}
