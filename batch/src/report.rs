//! `hepml report DIR`: the sidecars of a run merged into one summary (`DIR/report.json`):
//! tasks, input files and events done, time per event, and each failure with the last lines
//! of its log.

use crate::run::{open, status, TaskState};
use crate::sidecar::{self, State};
use crate::{write_json, BatchError};
use serde::Serialize;
use std::path::Path;

/// Lines of a failed task's log shown in the report.
const TAIL: usize = 8;

#[derive(Debug, Serialize)]
pub struct Failure {
    pub task: usize,
    /// The error, or the state (`missing`, `RUNNING`).
    pub error: String,
    pub log: Vec<String>,
}

/// `DIR/report.json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub tasks: usize,
    pub done: usize,
    pub failed: usize,
    pub running: usize,
    pub missing: usize,
    pub files: usize,
    pub files_done: usize,
    pub entries_in: u64,
    pub entries_out: u64,
    /// Summed over tasks.
    pub wall_s: f64,
    pub us_per_event: f64,
    pub failures: Vec<Failure>,
}

/// The last lines of task `task`'s logs (`logs/task-N.log`, and `.err` on HTCondor).
fn tail(dir: &Path, task: usize) -> Vec<String> {
    let mut out = Vec::new();
    for ext in ["log", "err"] {
        if let Ok(t) = std::fs::read_to_string(dir.join(format!("logs/task-{task}.{ext}"))) {
            let lines: Vec<&str> = t.lines().filter(|l| !l.trim().is_empty()).collect();
            out.extend(
                lines[lines.len().saturating_sub(TAIL)..]
                    .iter()
                    .map(|l| l.to_string()),
            );
        }
    }
    out
}

/// Builds the report of run directory `dir` and writes `DIR/report.json`.
pub fn report(dir: &Path) -> Result<Report, BatchError> {
    let st = status(dir)?;
    let (dir, _, m) = open(dir)?;
    let mut r = Report {
        tasks: m.rows.len(),
        done: 0,
        failed: 0,
        running: 0,
        missing: 0,
        files: m.rows.iter().map(|r| r.inputs.len()).sum(),
        files_done: 0,
        entries_in: 0,
        entries_out: 0,
        wall_s: 0.0,
        us_per_event: 0.0,
        failures: Vec::new(),
    };
    for (row, t) in m.rows.iter().zip(&st.tasks) {
        let error = match t {
            TaskState::Done => {
                if let State::Done(d) = sidecar::state(row, None)? {
                    r.done += 1;
                    r.files_done += d.inputs.len();
                    r.entries_in += d.entries_in;
                    r.entries_out += d.entries_out;
                    r.wall_s += d.wall_s;
                }
                continue;
            }
            TaskState::Failed(e) => {
                r.failed += 1;
                e.clone()
            }
            TaskState::Running(s) => {
                r.running += 1;
                s.clone()
            }
            TaskState::Missing(why) => {
                r.missing += 1;
                why.clone()
                    .map_or("missing".into(), |w| format!("missing: {w}"))
            }
        };
        r.failures.push(Failure {
            task: row.task,
            error,
            log: tail(&dir, row.task),
        });
    }
    r.us_per_event = 1e6 * r.wall_s / r.entries_in.max(1) as f64;
    write_json(&dir.join("report.json"), &r)?;
    Ok(r)
}

impl Report {
    /// The summary as text.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{} tasks: {} done, {} failed, {} running, {} missing\n{} of {} input files done: {} events in, {} out, {:.1} s, {:.2} us/event\n",
            self.tasks, self.done, self.failed, self.running, self.missing, self.files_done,
            self.files, self.entries_in, self.entries_out, self.wall_s, self.us_per_event
        );
        for f in &self.failures {
            s.push_str(&format!("task {}: {}\n", f.task, f.error));
            for l in &f.log {
                s.push_str(&format!("    | {l}\n"));
            }
        }
        s
    }
}
