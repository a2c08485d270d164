//! Batch runs end to end: `hepml submit` on a real single-node Slurm (slurmctld + slurmd,
//! scripts/slurm-local.sh, started and stopped by this test), a failing task found by
//! `status`, rerun alone by `resume`, summed up by the final `report` job, and outputs equal
//! to one local `hepml inject` (identical baskets, scores included; scripts/check_batch.py);
//! a cancelled array that `resume` completes; HTCondor's files read by HTCondor's own parser
//! (htcondor2); convert's shards equal one convert; bad input fails with one line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{python, repo, script};

/// A real Slurm cluster for the test's lifetime: `scripts/slurm-local.sh start` (it installs
/// the packages when missing) under a private folder and ports; stopped on drop, so also when
/// an assertion fails.
struct Slurm {
    dir: PathBuf,
    conf: String,
}

const PORTS: &str = "16817 16818";

fn slurm_local(dir: &Path, cmd: &str) -> std::process::Output {
    Command::new("bash")
        .arg(repo().join("scripts/slurm-local.sh"))
        .arg(cmd)
        .env("SLURM_LOCAL_DIR", dir)
        .env("SLURM_LOCAL_PORTS", PORTS)
        // Arrays hold indices below 3: the 5 tasks go as two arrays (tasks 0-2, and 3-4 at
        // offset 3), as a site's MaxArraySize splits a large run.
        .env("SLURM_LOCAL_MAX_ARRAY", "3")
        .output()
        .expect("bash")
}

impl Slurm {
    fn start(dir: &Path) -> Slurm {
        let g = Slurm {
            dir: dir.to_path_buf(),
            conf: dir.join("etc/slurm.conf").display().to_string(),
        };
        let o = slurm_local(dir, "start");
        assert!(
            o.status.success(),
            "a local Slurm could not be started (scripts/slurm-local.sh start; `bash \
             scripts/setup_env.sh` installs its packages): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        g
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        let o = slurm_local(&self.dir, "stop");
        if !o.status.success() {
            eprintln!(
                "slurm-local.sh stop: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

/// Runs hepml with `SLURM_CONF` (when given); (success, stdout, stderr).
fn hepml_env<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_hepml"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("SLURM_ARRAY_TASK_ID")
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(args: &[String], env: &[(&str, &str)]) -> String {
    let (good, out, err) = hepml_env(args, env);
    assert!(good, "hepml {args:?}: {err}");
    out
}

/// `hepml ARGS` must fail with one line naming `want`.
fn fails(args: &[String], env: &[(&str, &str)], want: &str) {
    let (good, _, err) = hepml_env(args, env);
    assert!(!good, "{args:?} succeeded");
    assert!(err.contains(want), "{args:?}: expected '{want}' in: {err}");
    assert_eq!(
        err.trim().lines().count(),
        1,
        "{args:?}: not one line: {err}"
    );
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// 20 generated ntuples (`in/in-000.root`...), an sklearn MLP on their features and its
/// feature spec.
struct Inputs {
    dir: tempfile::TempDir,
    files: Vec<String>,
    entries: u64,
}

impl Inputs {
    fn new() -> Inputs {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let out = script(
            "make_batch_inputs.py",
            &[
                d.join("in").to_str().unwrap(),
                "20",
                "--model",
                d.join("mlp.onnx").to_str().unwrap(),
            ],
        );
        let counts: Vec<u64> = serde_json::from_str(out.trim()).unwrap();
        std::fs::write(
            d.join("mlp.yaml"),
            "inputs:\n  x: [E1, px1, py1, pz1, pt1]\noutputs:\n  probabilities: {branch: score, column: 1}\n",
        )
        .unwrap();
        let files = (0..20)
            .map(|i| d.join(format!("in/in-{i:03}.root")).display().to_string())
            .collect();
        Inputs {
            files,
            entries: counts.iter().sum(),
            dir,
        }
    }
    fn p(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
    /// `inject FILES --model mlp.onnx --features mlp.yaml -o OUT --quiet EXTRA...`
    fn inject(&self, out: &str, extra: &[&str]) -> Vec<String> {
        let mut a = strings(&["inject"]);
        a.extend(self.files.iter().cloned());
        a.extend(strings(&[
            "--model",
            &self.p("mlp.onnx"),
            "--features",
            &self.p("mlp.yaml"),
            "-o",
            out,
            "--quiet",
        ]));
        a.extend(strings(extra));
        a
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `hepml status DIR --json`.
fn status(dir: &str, env: &[(&str, &str)]) -> serde_json::Value {
    json(&ok(&strings(&["status", dir, "--json"]), env))
}

/// Waits until no task of `dir` is queued or running and the report job has written
/// `report.json`.
fn wait_for_report(dir: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let t0 = Instant::now();
    let report = Path::new(dir).join("report.json");
    loop {
        let st = status(dir, env);
        if st["running"] == 0 && report.exists() {
            return json(&std::fs::read_to_string(&report).unwrap());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "run {dir} not finished: {st}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Every final output of `out` has a valid sidecar (status counts it done) and no output
/// exists for a task that is not done.
fn no_output_without_sidecar(out: &str, st: &serde_json::Value) {
    for t in st["tasks"].as_array().unwrap() {
        let i = t["task"].as_u64().unwrap();
        let part = Path::new(out).join(format!("part-{i:05}"));
        if t["state"] != "done" {
            assert!(
                !part.exists(),
                "task {i} is {t} but {} exists",
                part.display()
            );
        }
    }
}

fn done_json(out: &str, i: usize) -> String {
    std::fs::read_to_string(Path::new(out).join(format!("part-{i:05}.done.json"))).unwrap()
}

#[test]
fn slurm_array_fails_resumes_reports_and_matches_a_local_inject() {
    let inp = Inputs::new();
    let cluster = Slurm::start(&inp.dir.path().join("slurm"));
    let env = [("SLURM_CONF", cluster.conf.as_str())];
    let (run, out, local) = (inp.p("run"), inp.p("out"), inp.p("local"));
    ok(&inp.inject(&local, &[]), &[]);

    // Task 3 (files 12-15) gets an unreadable input.
    let bad = &inp.files[13];
    let original = std::fs::read(bad).unwrap();
    std::fs::write(bad, b"not a ROOT file").unwrap();
    let mut submit = strings(&[
        "submit",
        "--backend",
        "slurm",
        "--dir",
        &run,
        "--max-parallel",
        "3",
        "--resources",
        "cpus=1",
        "--",
    ]);
    submit.extend(inp.inject(&out, &["--files-per-job", "4"]));
    ok(&submit, &env);
    let rec = json(&std::fs::read_to_string(Path::new(&run).join("batch.json")).unwrap());
    let offsets: Vec<u64> = rec["submissions"][0]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [0, 3], "two arrays below MaxArraySize 3: {rec}");
    let sh = std::fs::read_to_string(Path::new(&run).join("slurm/task.sh")).unwrap();
    assert!(
        sh.contains("#SBATCH --cpus-per-task=1") && !sh.contains("in-000.root"),
        "{sh}"
    );
    // A second submit to the same run directory is refused.
    fails(&submit, &env, "holds a submitted run");
    let report = wait_for_report(&run, &env);
    let st = status(&run, &env);
    assert_eq!(
        (st["done"].as_u64(), st["failed"].as_u64()),
        (Some(4), Some(1)),
        "{st}"
    );
    assert_eq!(st["tasks"][3]["state"], "failed", "{st}");
    assert!(
        st["tasks"][3]["detail"]
            .as_str()
            .unwrap()
            .contains("in-013.root"),
        "{st}"
    );
    no_output_without_sidecar(&out, &st);
    // The final job's report names the failure with the end of its log.
    assert_eq!(
        (report["done"].as_u64(), report["failed"].as_u64()),
        (Some(4), Some(1)),
        "{report}"
    );
    let f = &report["failures"][0];
    assert_eq!(f["task"], 3, "{report}");
    assert!(
        f["log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("in-013.root")),
        "{report}"
    );

    // Fixed input: resume reruns task 3 alone; the others' sidecars are untouched.
    std::fs::write(bad, original).unwrap();
    let before: Vec<String> = [0, 1, 2, 4].iter().map(|&i| done_json(&out, i)).collect();
    std::fs::remove_file(Path::new(&run).join("report.json")).unwrap();
    let said = ok(&strings(&["resume", &run]), &env);
    assert!(said.starts_with("resubmitted tasks 3 "), "{said}");
    let rec = json(&std::fs::read_to_string(Path::new(&run).join("batch.json")).unwrap());
    let last = &rec["submissions"][1];
    assert_eq!(
        (last["what"].as_str(), last["tasks"].as_str()),
        (Some("resume"), Some("3")),
        "{rec}"
    );
    let report = wait_for_report(&run, &env);
    let after: Vec<String> = [0, 1, 2, 4].iter().map(|&i| done_json(&out, i)).collect();
    assert_eq!(before, after, "tasks other than 3 ran again");
    assert_eq!(status(&run, &env)["done"], 5);
    assert_eq!(
        (report["files"].as_u64(), report["files_done"].as_u64()),
        (Some(20), Some(20)),
        "{report}"
    );
    assert_eq!(report["entries_in"].as_u64(), Some(inp.entries), "{report}");
    assert!(
        report["failures"].as_array().unwrap().is_empty(),
        "{report}"
    );
    // A rerun skips every complete task.
    let task0: Vec<String> = {
        let mut a = inp.inject(&out, &[]);
        a.retain(|s| !s.ends_with(".root"));
        a.extend(strings(&[
            "--manifest",
            &format!("{run}/manifest.tsv"),
            "--task",
            "0",
        ]));
        a
    };
    let (good, _, err) = hepml_env(&task0, &[]);
    assert!(good && err.contains("skipped"), "{err}");
    assert_eq!(done_json(&out, 0), before[0]);
    // The same as one local inject: every basket, the scores' included.
    let same = json(&script(
        "check_batch.py",
        &["same-outputs", &local, &out, "events"],
    ));
    assert_eq!(same["files"], 20, "{same}");

    // Cancelling the array mid-run: no final output without a valid sidecar; resume completes.
    let (run2, out2) = (inp.p("run2"), inp.p("out2"));
    let mut submit = strings(&[
        "submit",
        "--backend",
        "slurm",
        "--dir",
        &run2,
        "--max-parallel",
        "1",
        "--",
    ]);
    submit.extend(inp.inject(&out2, &["--files-per-job", "4", "--chunk", "7"]));
    ok(&submit, &env);
    let rec = json(&std::fs::read_to_string(Path::new(&run2).join("batch.json")).unwrap());
    let jobs: Vec<String> = rec["submissions"][0]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    let t0 = Instant::now();
    while status(&run2, &env)["running"] == 0 || !Path::new(&run2).join("logs/task-0.log").exists()
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "arrays {jobs:?} never ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = Command::new("scancel")
        .args(&jobs)
        .env("SLURM_CONF", &cluster.conf)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "scancel: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let t0 = Instant::now();
    while status(&run2, &env)["running"] != 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "cancelled array still listed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let st = status(&run2, &env);
    assert!(
        st["done"].as_u64().unwrap() < 5,
        "the array finished before scancel: {st}"
    );
    assert_eq!(st["failed"], 0, "{st}");
    no_output_without_sidecar(&out2, &st);
    std::fs::remove_file(Path::new(&run2).join("report.json")).ok();
    ok(&strings(&["resume", &run2]), &env);
    wait_for_report(&run2, &env);
    assert_eq!(status(&run2, &env)["done"], 5);
    let same = json(&script(
        "check_batch.py",
        &["same-outputs", &local, &out2, "events"],
    ));
    assert_eq!(same["files"], 20, "{same}");
    let leftovers: Vec<_> = std::fs::read_dir(&out2)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("hepml-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
    drop(cluster);
}

/// The HTCondor files, read by HTCondor's own submit parser: one job per manifest line, each
/// with that line's task in its arguments; the report is the DAG's FINAL node. A submit file
/// that does not match the manifest fails the check.
#[test]
fn condor_files_expand_to_the_manifest() {
    let inp = Inputs::new();
    let run = inp.p("run");
    let mut submit = strings(&[
        "submit",
        "--backend",
        "condor",
        "--dir",
        &run,
        "--dry-run",
        "--max-parallel",
        "2",
        "--resources",
        "cpus=1,mem=2G,time=1:00:00",
        "--",
    ]);
    submit.extend(inp.inject(&inp.p("out"), &["--files-per-job", "3"]));
    let printed = ok(&submit, &[]);
    assert!(printed.contains("condor_submit_dag"), "{printed}");
    let sub = std::fs::read_to_string(Path::new(&run).join("condor/hepml.sub")).unwrap();
    assert!(
        sub.contains("max_materialize = 2") && sub.contains("+MaxRuntime = 3600"),
        "{sub}"
    );
    let r = json(&script("check_batch.py", &["condor", &run]));
    assert_eq!(r["jobs"], 7, "{r}");
    let wrong = sub.replace("--task $(Task)", "--task 0");
    std::fs::write(Path::new(&run).join("condor/hepml.sub"), wrong).unwrap();
    let o = Command::new(python())
        .args([
            repo().join("scripts/check_batch.py").to_str().unwrap(),
            "condor",
            &run,
        ])
        .output()
        .unwrap();
    assert!(!o.status.success(), "a wrong submit file passed the check");
    std::fs::write(Path::new(&run).join("condor/hepml.sub"), &sub).unwrap();
    // Tasks run by hand but 2 and 5: a resume queues exactly their manifest lines.
    let m = format!("{run}/manifest.tsv");
    for t in [0, 1, 3, 4, 6] {
        let mut a = inp.inject(&inp.p("out"), &["--manifest", &m, "--task", &t.to_string()]);
        a.retain(|s| !s.ends_with(".root"));
        ok(&a, &[]);
    }
    let said = ok(&strings(&["resume", &run, "--dry-run"]), &[]);
    let dag = format!("{run}/condor/resume-0.dag");
    assert_eq!(
        said.trim(),
        format!("would resubmit tasks 2,5 with:\ncondor_submit_dag {dag}")
    );
    let r = json(&script("check_batch.py", &["condor", &run, "resume-0"]));
    assert_eq!(r["tasks"], serde_json::json!([2, 5]), "{r}");
}

/// `convert --manifest`: the shards of both samples, concatenated in task order, equal one
/// convert of the whole config (pandas).
#[test]
fn convert_shards_equal_one_convert() {
    let inp = Inputs::new();
    let cfg = inp.p("convert.yaml");
    let files = |r: std::ops::Range<usize>| {
        r.map(|i| format!("\"{}\"", inp.files[i]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    std::fs::write(
        &cfg,
        format!(
            "tree: events\ncolumns: [pt1, E1, {{name: pz, expr: pz1}}]\nevent_number: Event\nsamples:\n  - {{name: sig, label: 1, files: [{}]}}\n  - {{name: bkg, label: 0, files: [{}]}}\n",
            files(0..10),
            files(10..20)
        ),
    )
    .unwrap();
    let (whole, parts, m) = (inp.p("whole.h5"), inp.p("parts"), inp.p("convert.tsv"));
    ok(&strings(&["convert", &cfg, "-o", &whole, "-q"]), &[]);
    // `convert CONFIG -o parts -q --manifest M EXTRA...`
    let sharded = |extra: &[&str]| {
        let mut a = strings(&["convert", &cfg, "-o", &parts, "-q", "--manifest", &m]);
        a.extend(strings(extra));
        ok(&a, &[]);
    };
    sharded(&["--events-per-job", "1500"]);
    let n = std::fs::read_to_string(&m).unwrap().lines().count();
    // Files of 600, 593, ... 467 events (7 fewer each), at least 1500 a task: the signal's 10
    // files in tasks of 3, 3, 3 and 1 files, the background's in 3, 3 and 4.
    assert_eq!(n, 7);
    for t in 0..n {
        sharded(&["--task", &t.to_string()]);
    }
    let code = r#"
import sys, glob, pandas as pd
whole = pd.read_hdf(sys.argv[1], "events")
parts = pd.concat([pd.read_hdf(p, "events") for p in sorted(glob.glob(sys.argv[2] + "/part-*.h5"))], ignore_index=True)
assert list(parts.columns) == list(whole.columns), (parts.columns, whole.columns)
pd.testing.assert_frame_equal(parts, whole.reset_index(drop=True), check_exact=True)
print(len(whole))
"#;
    let o = Command::new(python())
        .args(["-c", code, &whole, &parts])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        inp.entries.to_string()
    );
}

/// A hand-edited manifest, two tasks writing one output, an unwritable output folder, a
/// missing scheduler command, a path HTCondor would split: one line each, and no output.
#[test]
fn bad_input_fails_with_one_line_and_leaves_no_output() {
    let inp = Inputs::new();
    let (m, out) = (inp.p("m.tsv"), inp.p("out"));
    let mut plan = inp.inject(&out, &["--manifest", &m, "--files-per-job", "10"]);
    ok(&plan, &[]);
    let task = |t: &str| {
        let mut a = inp.inject(&out, &["--manifest", &m, "--task", t]);
        a.retain(|s| !s.ends_with(".root"));
        a
    };
    ok(&task("0"), &[]);
    let text = std::fs::read_to_string(&m).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The inputs of tasks 0 and 1 swapped by hand after task 0 ran.
    let cols: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let swapped = |a: &[&str], b: &[&str]| [&a[..2], &b[2..]].concat().join("\t");
    std::fs::write(
        &m,
        format!(
            "{}\n{}\n",
            swapped(&cols[0], &cols[1]),
            swapped(&cols[1], &cols[0])
        ),
    )
    .unwrap();
    fails(&task("0"), &[], "manifest was edited");
    std::fs::write(
        &m,
        format!("{}\n{}\n", lines[0], lines[0].replacen('0', "1", 1)),
    )
    .unwrap();
    fails(&task("1"), &[], "both write");
    std::fs::write(
        &m,
        format!("{}\n{}\n", lines[0], lines[1].replace(&out, "/elsewhere")),
    )
    .unwrap();
    fails(&task("1"), &[], "not written for this command");
    assert!(!Path::new(&out).join("part-00001").exists());
    std::fs::write(&m, &text).unwrap();
    fails(&task("7"), &[], "tasks 0-1");
    // An output folder under a file.
    let blocked = format!("{}/sub", inp.files[0]);
    plan = inp.inject(&blocked, &["--manifest", &inp.p("m2.tsv")]);
    fails(&plan, &[], &blocked);
    assert!(!Path::new(&inp.p("m2.tsv")).exists());
    // sbatch missing: nothing written.
    let run = inp.p("run");
    let mut submit = strings(&["submit", "--backend", "slurm", "--dir", &run, "--"]);
    submit.extend(inp.inject(&inp.p("out3"), &[]));
    fails(&submit, &[("PATH", "/nonexistent")], "`sbatch` not found");
    assert!(!Path::new(&run).exists(), "a run directory was left");
    // A folder with a space, which HTCondor's queue-from would split.
    let spaced = inp.p("with space");
    let mut submit = strings(&[
        "submit",
        "--backend",
        "condor",
        "--dir",
        &spaced,
        "--dry-run",
        "--",
    ]);
    submit.extend(inp.inject(&inp.p("out4"), &[]));
    fails(&submit, &[], "HTCondor");
    assert!(!Path::new(&spaced).exists());
    // A folder that is no run directory.
    fails(&strings(&["status", &out]), &[], "not a run directory");
    // Sharding options without a manifest, and a task with input files.
    fails(
        &inp.inject(&out, &["--files-per-job", "2"]),
        &[],
        "--manifest",
    );
    fails(
        &inp.inject(&out, &["--manifest", &m, "--task", "0"]),
        &[],
        "drop the input files",
    );
}

/// A task reruns when an input or a model changes, and is skipped otherwise; `status` and
/// `resume` (of a dry-run run directory, tasks run by hand) see the same; a failed task leaves
/// its error in `.failed.json` and no output, and succeeds once its input is fixed.
#[test]
fn a_task_reruns_when_an_input_or_model_changes() {
    let inp = Inputs::new();
    let (dir, out) = (inp.p("run"), inp.p("out"));
    let m = format!("{dir}/manifest.tsv");
    let mut submit = strings(&[
        "submit",
        "--backend",
        "slurm",
        "--dir",
        &dir,
        "--dry-run",
        "--",
    ]);
    submit.extend(inp.inject(&out, &["--files-per-job", "10"]));
    let printed = ok(&submit, &[("PATH", "/nonexistent")]);
    assert!(printed.contains("--array=0-1 "), "{printed}");
    let mut task0 = inp.inject(&out, &["--manifest", &m, "--task", "0"]);
    task0.retain(|s| !s.ends_with(".root"));
    ok(&task0, &[]);
    let mut task = inp.inject(&out, &["--manifest", &m, "--task", "1"]);
    task.retain(|s| !s.ends_with(".root"));
    let run = || {
        let (good, _, err) = hepml_env(&task, &[]);
        assert!(good, "{err}");
        err
    };
    assert!(run().contains("task 1: wrote"));
    assert!(run().contains("skipped"));
    // A new mtime on an input.
    let f = std::fs::File::options()
        .append(true)
        .open(&inp.files[15])
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    assert!(run().contains("task 1: wrote"));
    assert!(run().contains("skipped"));
    // Another model in the same file (the same graph, another doc string: other bytes).
    let code = "import onnx, sys; m = onnx.load(sys.argv[1]); m.doc_string = 'v2'; onnx.save(m, sys.argv[1])";
    let o = Command::new(python())
        .args(["-c", code, &inp.p("mlp.onnx")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st = status(&dir, &[]);
    assert_eq!(st["missing"], 2, "{st}");
    assert_eq!(st["tasks"][0]["detail"], "the models changed", "{st}");
    let said = ok(&strings(&["resume", &dir, "--dry-run"]), &[]);
    assert!(
        said.starts_with("would resubmit tasks 0-1 with:\nsbatch --parsable --array=0-1 "),
        "{said}"
    );
    assert!(run().contains("task 1: wrote"));
    assert!(run().contains("skipped"));
    ok(&task0, &[]);
    assert_eq!(status(&dir, &[])["done"], 2);
    // A failure: its record, and no output.
    let saved = std::fs::read(&inp.files[12]).unwrap();
    std::fs::write(&inp.files[12], b"garbage").unwrap();
    let (good, _, err) = hepml_env(&task, &[]);
    assert!(!good && err.contains("in-012.root"), "{err}");
    let part = Path::new(&out).join("part-00001");
    assert!(!part.exists() && !Path::new(&out).join("part-00001.done.json").exists());
    let failed = std::fs::read_to_string(Path::new(&out).join("part-00001.failed.json")).unwrap();
    assert!(
        json(&failed)["error"]
            .as_str()
            .unwrap()
            .contains("in-012.root"),
        "{failed}"
    );
    std::fs::write(&inp.files[12], saved).unwrap();
    assert!(run().contains("task 1: wrote"));
    assert!(!Path::new(&out).join("part-00001.failed.json").exists());
}
