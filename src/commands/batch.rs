//! `hepml submit`, `status`, `resume` and `report`, and the sharding options of `inject` and
//! `convert` (`--manifest`, `--task`): the command line onto the `batch` crate.

use anyhow::{bail, Context, Result};
use batch::manifest::{Grouping, Manifest, Row};
use batch::run::{Setup, TaskState};
use batch::task::{Counts, Outcome, Task};
use clap::{CommandFactory, Parser};
use std::path::{Path, PathBuf};

use crate::cli::{Cli, Cmd, ResumeArgs, RunDirArgs, ShardArgs, SubmitArgs};

/// What the sharding options ask for.
pub(crate) enum Shard {
    /// Group the inputs into tasks and write the manifest.
    Plan(PathBuf, Grouping),
    /// Run one task of the manifest.
    Task(PathBuf, usize),
}

/// The sharding options: none (a plain run), a plan, or a task (`--task`, else
/// `$SLURM_ARRAY_TASK_ID`).
pub(crate) fn shard(a: &ShardArgs) -> Result<Option<Shard>> {
    let Some(m) = &a.manifest else {
        if a.files_per_job.is_some() || a.events_per_job.is_some() {
            bail!(
                "--files-per-job and --events-per-job group inputs into the tasks of a --manifest"
            );
        }
        return Ok(None);
    };
    let task = match a.task {
        Some(t) => Some(t),
        None => match std::env::var("SLURM_ARRAY_TASK_ID") {
            Ok(v) => Some(
                v.trim()
                    .parse()
                    .with_context(|| format!("SLURM_ARRAY_TASK_ID '{v}' is not a task number"))?,
            ),
            Err(_) => None,
        },
    };
    Ok(Some(match task {
        Some(t) => Shard::Task(m.clone(), t),
        None => Shard::Plan(m.clone(), grouping(a)),
    }))
}

fn grouping(a: &ShardArgs) -> Grouping {
    match (a.files_per_job, a.events_per_job) {
        (_, Some(n)) => Grouping::Events(n),
        (Some(n), None) => Grouping::Files(n),
        (None, None) => Grouping::Files(1),
    }
}

/// Writes the manifest of a plan, after checking that the output folder can be written.
pub(crate) fn write_plan(manifest: &Path, out_dir: &Path, rows: Vec<Row>) -> Result<()> {
    batch::run::check_writable(out_dir)?;
    let files: usize = rows.iter().map(|r| r.inputs.len()).sum();
    let m = Manifest::write(manifest, rows)?;
    eprintln!(
        "hepml: wrote {} ({} tasks, {files} input files); run each with --manifest {} --task N",
        m.path.display(),
        m.rows.len(),
        m.path.display()
    );
    Ok(())
}

/// The command line of this process without `--task N`, for a sidecar's record.
fn command_line() -> Vec<String> {
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--task" {
            args.next();
        } else if !a.starts_with("--task=") {
            out.push(a);
        }
    }
    out
}

/// Runs task `task` of `manifest` (whose outputs must be in `out_dir`); `work` writes a
/// row's output to a temporary path.
pub(crate) fn run_task(
    manifest: &Path,
    task: usize,
    out_dir: &Path,
    models: &[PathBuf],
    work: impl FnOnce(&Row, &Path) -> Result<Counts>,
) -> Result<()> {
    let m = Manifest::read(manifest)?;
    let t = Task {
        manifest: &m,
        task,
        out_dir,
        models,
        command: command_line(),
    };
    // The whole chain of causes, on one line, goes to the failure record.
    let work = |row: &Row, tmp: &Path| work(row, tmp).map_err(|e| super::error_line(&e));
    match batch::task::run(&t, work)? {
        Outcome::Skipped(d) => eprintln!(
            "hepml: task {task}: {} is complete and its inputs unchanged; skipped",
            d.output.display()
        ),
        Outcome::Ran(d) => eprintln!(
            "hepml: task {task}: wrote {} ({} events in, {} out, {:.2} s)",
            d.output.display(),
            d.entries_in,
            d.entries_out,
            d.wall_s
        ),
    }
    Ok(())
}

/// `hepml submit`: plans the command's tasks, writes the run directory, submits.
pub fn submit(a: SubmitArgs) -> Result<()> {
    let argv: Vec<String> = std::iter::once("hepml".to_string())
        .chain(a.command.iter().cloned())
        .collect();
    let cli = Cli::try_parse_from(&argv).map_err(|e| {
        let text = e.to_string();
        anyhow::anyhow!(
            "the command after `--`: {}",
            text.lines().next().unwrap_or("invalid")
        )
    })?;
    let (rows, args) = match cli.cmd {
        Cmd::Inject(i) => {
            check_shard(&i.shard)?;
            let rows = super::inject::rows(&i, grouping(&i.shard))?;
            // The jobs read their inputs from the manifest: the positional inputs go (clap
            // counts a subcommand's indices from the subcommand's name).
            let m = Cli::command().try_get_matches_from(&argv)?;
            let idx: Vec<usize> = m
                .subcommand_matches("inject")
                .and_then(|s| s.indices_of("inputs"))
                .map(|i| i.map(|k| k + 1).collect())
                .unwrap_or_default();
            let args = argv
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(k, _)| !idx.contains(k))
                .map(|(_, s)| s.clone())
                .collect();
            (rows, args)
        }
        Cmd::Convert(c) => {
            check_shard(&c.shard)?;
            (
                super::convert::rows(&c, grouping(&c.shard))?,
                a.command.clone(),
            )
        }
        _ => bail!("submit runs `inject ...` or `convert ...` after `--`"),
    };
    let setup = Setup {
        dir: a.dir.clone(),
        backend: a.backend.into(),
        bin: a.bin,
        args,
        resources: batch::run::parse_resources(&a.resources)?,
        max_parallel: a.max_parallel,
        dry_run: a.dry_run,
    };
    let n = rows.len();
    let (rec, by_hand) = batch::run::submit(&setup, rows)?;
    let dir = batch::manifest::absolute(&a.dir)?;
    match rec.submissions.last() {
        None => {
            eprintln!(
                "hepml: dry run: wrote {} ({n} tasks); submit with:",
                dir.display()
            );
            for c in by_hand {
                println!("{c}");
            }
        }
        Some(s) => eprintln!(
            "hepml: submitted {n} tasks as {}; follow with `hepml status {}`",
            jobs(s),
            dir.display()
        ),
    }
    Ok(())
}

/// "job(s) 12, 13, report job 14".
fn jobs(s: &batch::run::Submission) -> String {
    format!(
        "job(s) {}, report job {}",
        s.jobs
            .iter()
            .map(|j| j.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        s.report.as_ref().map_or("none", |j| j.id.as_str())
    )
}

fn check_shard(s: &ShardArgs) -> Result<()> {
    if s.manifest.is_some() || s.task.is_some() {
        bail!("submit writes the manifest and picks the tasks itself: drop --manifest and --task");
    }
    Ok(())
}

/// `hepml status DIR`.
pub fn status(a: RunDirArgs) -> Result<()> {
    let st = batch::run::status(&a.dir)?;
    let c = |f: fn(&TaskState) -> bool| st.count(f);
    let (done, failed, running, missing) = (
        c(|t| matches!(t, TaskState::Done)),
        c(|t| matches!(t, TaskState::Failed(_))),
        c(|t| matches!(t, TaskState::Running(_))),
        c(|t| matches!(t, TaskState::Missing(_))),
    );
    let detail = |t: &TaskState| match t {
        TaskState::Done => ("done", String::new()),
        TaskState::Failed(e) => ("failed", e.clone()),
        TaskState::Running(s) => ("running", s.clone()),
        TaskState::Missing(w) => ("missing", w.clone().unwrap_or_default()),
    };
    if a.json {
        let tasks: Vec<_> = st
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let (s, d) = detail(t);
                serde_json::json!({"task": i, "state": s, "detail": d})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"done": done, "failed": failed, "running": running, "missing": missing, "queue": st.queue, "tasks": tasks})
        );
        return Ok(());
    }
    println!(
        "{} tasks: {done} done, {failed} failed, {running} running, {missing} missing{}",
        st.tasks.len(),
        if st.queue {
            ""
        } else {
            " (from the sidecars; no scheduler queue answered)"
        }
    );
    for (i, t) in st.tasks.iter().enumerate() {
        let (s, d) = detail(t);
        if s != "done" {
            println!("task {i}: {s}{}{d}", if d.is_empty() { "" } else { ": " });
        }
    }
    Ok(())
}

/// `hepml resume DIR`.
pub fn resume(a: ResumeArgs) -> Result<()> {
    let r = batch::run::resume(&a.dir, a.dry_run)?;
    let list = batch::manifest::ranges(&r.tasks);
    if r.tasks.is_empty() {
        println!("nothing to resume: every task is done or running");
    } else if a.dry_run {
        println!("would resubmit tasks {list} with:");
        for c in &r.by_hand {
            println!("{c}");
        }
    } else if let Some(s) = r.record.submissions.last() {
        println!("resubmitted tasks {list} as {}", jobs(s));
    }
    Ok(())
}

/// `hepml report DIR`.
pub fn report(a: RunDirArgs) -> Result<()> {
    let r = batch::report::report(&a.dir)?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        print!("{}", r.text());
    }
    Ok(())
}
