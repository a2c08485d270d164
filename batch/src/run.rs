//! A run directory: `manifest.tsv`, `batch.json` (the record of what was submitted), the
//! scheduler's files (`slurm/` or `condor/`), the task binary (`bin/hepml`, unless one on a
//! shared path is given) and `logs/`. [`submit`] makes one, [`status`] reads it back from the
//! sidecars and the queue, [`resume`] resubmits what is missing or failed.

use crate::manifest::{ranges, Manifest, Row};
use crate::sidecar::{self, State};
use crate::{condor, invalid, io, on_path, read_json, slurm, write_atomic, write_json, BatchError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Slurm,
    Condor,
}

/// A scheduler job: its id and, for a Slurm array, the task of its array index 0.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub offset: usize,
}

/// One submission: the tasks and the report job after them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submission {
    /// `submit` or `resume`.
    pub what: String,
    /// The tasks, as `0-4` or `2,5,7-9`.
    pub tasks: String,
    pub jobs: Vec<Job>,
    /// The report job (none when its submission failed).
    pub report: Option<Job>,
    pub time: u64,
}

/// `batch.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub backend: Backend,
    /// The hepml binary the jobs run (on a path every worker sees).
    pub bin: PathBuf,
    /// The command the jobs run (`inject ...`, `convert ...`), without `--manifest`/`--task`.
    pub args: Vec<String>,
    /// The jobs' working directory (where `submit` ran).
    pub cwd: PathBuf,
    /// `cpus`, `mem`, `time`, `partition`, `account` as given to `--resources`.
    pub resources: Vec<(String, String)>,
    pub max_parallel: Option<usize>,
    /// Slurm's MaxArraySize when submitted (arrays hold indices below it).
    pub max_array: usize,
    pub submissions: Vec<Submission>,
}

impl Record {
    /// The hepml arguments of a task, bar `--task`.
    pub fn job_args(&self, dir: &Path) -> Vec<String> {
        let mut a = self.args.clone();
        a.extend([
            "--manifest".into(),
            dir.join("manifest.tsv").display().to_string(),
        ]);
        a
    }
}

/// `KEY=VALUE,...` for `--resources`.
pub fn parse_resources(s: &[String]) -> Result<Vec<(String, String)>, BatchError> {
    let mut out = Vec::new();
    for item in s
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
    {
        let (k, v) = item
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or_else(|| invalid(format!("resource '{item}': expected KEY=VALUE")))?;
        if !["cpus", "mem", "time", "partition", "account"].contains(&k) {
            return Err(invalid(format!(
                "resource '{k}': expected cpus, mem, time, partition or account"
            )));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// What `submit` is asked to do.
pub struct Setup {
    pub dir: PathBuf,
    pub backend: Backend,
    /// A hepml binary on a shared path to reference; `None`: this binary copied to DIR/bin.
    pub bin: Option<PathBuf>,
    pub args: Vec<String>,
    pub resources: Vec<(String, String)>,
    pub max_parallel: Option<usize>,
    pub dry_run: bool,
}

fn record_path(dir: &Path) -> PathBuf {
    dir.join("batch.json")
}

/// Reads a run directory's record and manifest.
pub fn open(dir: &Path) -> Result<(PathBuf, Record, Manifest), BatchError> {
    let dir = crate::manifest::absolute(dir)?;
    if !record_path(&dir).exists() {
        return Err(invalid(format!(
            "{}: not a run directory (no batch.json; `hepml submit` makes one)",
            dir.display()
        )));
    }
    let rec: Record = read_json(&record_path(&dir))?;
    let m = Manifest::read(&dir.join("manifest.tsv"))?;
    Ok((dir, rec, m))
}

/// Creates `dir` if needed and checks that a file can be written in it.
pub fn check_writable(dir: &Path) -> Result<(), BatchError> {
    std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let probe = rootio::write::file::tmp_name(&dir.join("probe"));
    std::fs::write(&probe, b"").map_err(io("cannot write in", dir))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The scheduler commands a backend needs.
fn commands(b: Backend) -> &'static [&'static str] {
    match b {
        Backend::Slurm => &["sbatch", "scontrol"],
        Backend::Condor => &["condor_submit_dag"],
    }
}

/// Writes the run directory for `rows` and, unless a dry run, submits the tasks and the
/// report; a dry run returns the commands that would. Nothing is written when a scheduler
/// command is missing or the folders are not writable.
pub fn submit(s: &Setup, rows: Vec<Row>) -> Result<(Record, Vec<String>), BatchError> {
    if !s.dry_run {
        if let Some(c) = commands(s.backend).iter().find(|c| !on_path(c)) {
            return Err(BatchError::MissingCommand(c.to_string()));
        }
    }
    let dir = crate::manifest::absolute(&s.dir)?;
    if record_path(&dir).exists() {
        let old: Record = read_json(&record_path(&dir))?;
        if !old.submissions.is_empty() {
            return Err(invalid(format!(
                "{} holds a submitted run: `hepml resume` it, or submit to another folder",
                dir.display()
            )));
        }
    }
    if s.backend == Backend::Condor {
        condor::check_paths(
            std::iter::once(dir.as_path()).chain(rows.iter().flat_map(|r| {
                std::iter::once(r.output.as_path()).chain(r.inputs.iter().map(PathBuf::as_path))
            })),
        )?;
    }
    check_writable(&dir)?;
    let max_array = match s.backend {
        Backend::Slurm if !s.dry_run => slurm::max_array_size()?,
        _ => 1001,
    };
    let bin = match &s.bin {
        Some(b) => {
            let b = crate::manifest::absolute(b)?;
            if !b.is_file() {
                return Err(invalid(format!("--bin {}: no such file", b.display())));
            }
            b
        }
        None => copy_self(&dir)?,
    };
    let mut rec = Record {
        backend: s.backend,
        bin,
        args: s.args.clone(),
        cwd: std::env::current_dir().map_err(io("reading", Path::new(".")))?,
        resources: s.resources.clone(),
        max_parallel: s.max_parallel,
        max_array,
        submissions: Vec::new(),
    };
    let m = Manifest::write(&dir.join("manifest.tsv"), rows)?;
    for d in ["logs", "slurm", "condor"] {
        std::fs::create_dir_all(dir.join(d)).map_err(io("creating", &dir.join(d)))?;
    }
    write_scheduler_files(&rec, &dir)?;
    let all: Vec<usize> = (0..m.rows.len()).collect();
    if s.dry_run {
        write_json(&record_path(&dir), &rec)?;
        let cmds = by_hand(&rec, &dir, &all, "submit", &m)?;
        return Ok((rec, cmds));
    }
    submit_tasks(&mut rec, &dir, &all, "submit", &m)?;
    Ok((rec, Vec::new()))
}

/// Copies the running binary to `DIR/bin/hepml` (the run directory is on the shared file
/// system the jobs see).
fn copy_self(dir: &Path) -> Result<PathBuf, BatchError> {
    use std::os::unix::fs::PermissionsExt;
    let me = std::env::current_exe().map_err(io("finding", Path::new("the hepml binary")))?;
    let to = dir.join("bin/hepml");
    std::fs::create_dir_all(dir.join("bin")).map_err(io("creating", &dir.join("bin")))?;
    let tmp = rootio::write::file::tmp_name(&to);
    let r = std::fs::copy(&me, &tmp)
        .and_then(|_| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)))
        .and_then(|_| std::fs::rename(&tmp, &to));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("copying the hepml binary to", &to)(e));
    }
    Ok(to)
}

fn write_scheduler_files(rec: &Record, dir: &Path) -> Result<(), BatchError> {
    use std::os::unix::fs::PermissionsExt;
    match rec.backend {
        Backend::Slurm => {
            for (name, text) in [
                ("task.sh", slurm::task_script(rec, dir)),
                ("report.sh", slurm::report_script(rec, dir)),
            ] {
                let p = dir.join("slurm").join(name);
                write_atomic(&p, text.as_bytes())?;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                    .map_err(io("chmod", &p))?;
            }
        }
        Backend::Condor => {
            let c = dir.join("condor");
            write_atomic(
                &c.join("hepml.sub"),
                condor::task_sub(rec, dir, &dir.join("manifest.tsv"))?.as_bytes(),
            )?;
            write_atomic(
                &c.join("report.sub"),
                condor::report_sub(rec, dir)?.as_bytes(),
            )?;
            write_atomic(
                &c.join("hepml.dag"),
                condor::dag(&c.join("hepml.sub"), &c.join("report.sub")).as_bytes(),
            )?;
        }
    }
    Ok(())
}

/// Submits `tasks` (and a report after them), records the submission in `rec` and writes
/// `batch.json`; the jobs submitted before an error are recorded too.
fn submit_tasks(
    rec: &mut Record,
    dir: &Path,
    tasks: &[usize],
    what: &str,
    m: &Manifest,
) -> Result<(), BatchError> {
    let mut jobs = Vec::new();
    let report = match rec.backend {
        Backend::Slurm => slurm::submit(rec, dir, tasks, &mut jobs),
        Backend::Condor => condor_dag(rec, dir, tasks, what, m)
            .and_then(|dag| condor::submit(&dag))
            .inspect(|j| jobs.push(j.clone())),
    };
    if !jobs.is_empty() {
        rec.submissions.push(Submission {
            what: what.into(),
            tasks: ranges(tasks),
            jobs,
            report: report.as_ref().ok().cloned(),
            time: sidecar::now(),
        });
    }
    write_json(&record_path(dir), rec)?;
    report.map(|_| ())
}

/// The DAG submitting `tasks`: the run's own, or for a resume one queueing only their lines
/// (a manifest of their own for `queue ... from`).
fn condor_dag(
    rec: &Record,
    dir: &Path,
    tasks: &[usize],
    what: &str,
    m: &Manifest,
) -> Result<PathBuf, BatchError> {
    let c = dir.join("condor");
    if what == "submit" {
        return Ok(c.join("hepml.dag"));
    }
    let n = rec.submissions.len();
    let items = c.join(format!("resume-{n}.tsv"));
    let rows = tasks
        .iter()
        .map(|&t| m.row(t).cloned())
        .collect::<Result<Vec<_>, _>>()?;
    write_atomic(&items, crate::manifest::text(&rows).as_bytes())?;
    let sub = c.join(format!("resume-{n}.sub"));
    write_atomic(&sub, condor::task_sub(rec, dir, &items)?.as_bytes())?;
    let dag = c.join(format!("resume-{n}.dag"));
    write_atomic(&dag, condor::dag(&sub, &c.join("report.sub")).as_bytes())?;
    Ok(dag)
}

/// A task's state for `status`.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskState {
    Done,
    /// Its error.
    Failed(String),
    /// Queued or running (the scheduler's state).
    Running(String),
    /// Never ran, cancelled or killed, or out of date (the reason, when known).
    Missing(Option<String>),
}

/// Every task's state.
pub struct Status {
    pub tasks: Vec<TaskState>,
    /// Whether the scheduler's queue was read (else: sidecars alone).
    pub queue: bool,
}

impl Status {
    pub fn count(&self, f: fn(&TaskState) -> bool) -> usize {
        self.tasks.iter().filter(|t| f(t)).count()
    }
    /// The failed and missing tasks.
    pub fn to_rerun(&self) -> Vec<usize> {
        (0..self.tasks.len())
            .filter(|&i| matches!(self.tasks[i], TaskState::Failed(_) | TaskState::Missing(_)))
            .collect()
    }
}

/// The state of every task of a run directory: from the sidecars, and from squeue or condor_q
/// when installed (a task in the queue without a valid output is running).
pub fn status(dir: &Path) -> Result<Status, BatchError> {
    let (dir, rec, m) = open(dir)?;
    let queue = match rec.backend {
        Backend::Slurm => {
            let jobs: Vec<Job> = rec
                .submissions
                .iter()
                .flat_map(|s| s.jobs.clone())
                .collect();
            slurm::queue(&jobs)
        }
        Backend::Condor => condor::queue(&dir),
    };
    let models = current_models(&m);
    let mut tasks = Vec::new();
    for r in &m.rows {
        let st = sidecar::state(r, models.as_deref())?;
        let q = queue.as_ref().and_then(|q| q.get(&r.task));
        tasks.push(match (st, q) {
            (State::Done(_), _) => TaskState::Done,
            (_, Some(s)) => TaskState::Running(s.clone()),
            (State::Failed(f), None) => TaskState::Failed(f.error),
            (State::Missing(why), None) => TaskState::Missing(why),
        });
    }
    Ok(Status {
        tasks,
        queue: queue.is_some(),
    })
}

/// The hashes, now, of the model files the first complete task recorded (every task of a
/// run scores with the same models), so that `status` and `resume` see a changed model as
/// tasks to rerun; `None` when no task is complete or a model cannot be read.
fn current_models(m: &Manifest) -> Option<Vec<sidecar::Hash>> {
    let done: sidecar::Done = m
        .rows
        .iter()
        .find_map(|r| read_json(&sidecar::done_path(&r.output)).ok())?;
    done.models
        .iter()
        .map(|h| sidecar::Hash::of(&h.path).ok())
        .collect()
}

/// The commands that submit `tasks` by hand, for a dry run (HTCondor: after writing the
/// DAG of a resume).
fn by_hand(
    rec: &Record,
    dir: &Path,
    tasks: &[usize],
    what: &str,
    m: &Manifest,
) -> Result<Vec<String>, BatchError> {
    Ok(match rec.backend {
        Backend::Slurm => {
            let mut v: Vec<String> = slurm::array_args(rec, dir, tasks)
                .into_iter()
                .map(|(_, a)| format!("sbatch {}", a.join(" ")))
                .collect();
            v.push(format!(
                "sbatch --dependency=afterany:<the arrays' job ids> {}",
                dir.join("slurm/report.sh").display()
            ));
            v
        }
        Backend::Condor => vec![format!(
            "condor_submit_dag {}",
            condor_dag(rec, dir, tasks, what, m)?.display()
        )],
    })
}

/// A resume: the tasks (failed and missing), and for a dry run the commands that would
/// submit them.
pub struct Resumed {
    pub tasks: Vec<usize>,
    pub record: Record,
    pub by_hand: Vec<String>,
}

/// Resubmits the failed and missing tasks (with a new report after them); no task when there
/// is nothing to do. A dry run writes the files (HTCondor: `condor/resume-N.*`) and says how
/// to submit them.
pub fn resume(dir: &Path, dry_run: bool) -> Result<Resumed, BatchError> {
    let st = status(dir)?;
    let (dir, mut rec, m) = open(dir)?;
    let tasks = st.to_rerun();
    if tasks.is_empty() || dry_run {
        let by_hand = if tasks.is_empty() {
            Vec::new()
        } else {
            by_hand(&rec, &dir, &tasks, "resume", &m)?
        };
        return Ok(Resumed {
            tasks,
            record: rec,
            by_hand,
        });
    }
    if let Some(c) = commands(rec.backend).iter().find(|c| !on_path(c)) {
        return Err(BatchError::MissingCommand(c.to_string()));
    }
    submit_tasks(&mut rec, &dir, &tasks, "resume", &m)?;
    Ok(Resumed {
        tasks,
        record: rec,
        by_hand: Vec::new(),
    })
}
