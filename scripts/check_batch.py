#!/usr/bin/env python3
"""Cross-checks of `hepml submit` runs.

  check_batch.py same-outputs LOCAL_DIR OUT_DIR TREE
      Every LOCAL_DIR/NAME.root (one local `hepml inject` of all the files) must have a twin
      OUT_DIR/part-*/NAME.root (the batch run) with the same branches, identical raw
      (compressed) basket bytes basket by basket (the original branches and the scores), and
      identical values (uproot). Prints {"files": N, "baskets": B}.
  check_batch.py condor RUN_DIR [NAME]
      Reads RUN_DIR/condor/NAME.sub (default hepml; resume-K for a resume) with HTCondor's own
      parser (htcondor2.Submit): its `queue ... from` itemdata must be lines of the manifest
      (all of them for hepml.sub), and each job's expanded arguments must be batch.json's
      command with `--manifest RUN_DIR/manifest.tsv --task T` for that line's task;
      report.sub runs `report RUN_DIR` and NAME.dag has the tasks as a JOB and the report as
      its FINAL node. Prints {"jobs": N, "tasks": [T...]}.
Exit status 0 when the check holds, 1 with a one-line reason otherwise.
"""
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from root_check import basket_bytes, equal, fail, norm  # noqa: E402


def same_outputs(local, out, tree):
    import awkward as ak
    import uproot

    twins = {os.path.basename(p): p for p in glob.glob(os.path.join(out, "part-*", "*.root"))}
    files = sorted(glob.glob(os.path.join(local, "*.root")))
    if not files or sorted(twins) != sorted(os.path.basename(f) for f in files):
        fail(f"batch outputs {sorted(twins)} != local outputs {[os.path.basename(f) for f in files]}")
    baskets = 0
    for f in files:
        fa, fb = uproot.open(f), uproot.open(twins[os.path.basename(f)])
        ta, tb = fa[tree], fb[tree]
        if ta.keys() != tb.keys() or ta.num_entries != tb.num_entries:
            fail(f"{f}: branches or entries differ: {ta.keys()} vs {tb.keys()}")
        for br in ta.branches:
            x, y = basket_bytes(fa, br), basket_bytes(fb, tb[br.name])
            if x != y:
                fail(f"{f} branch {br.name}: basket bytes differ ({len(x)} vs {len(y)} baskets)")
            baskets += len(x)
            va, vb = ak.to_list(br.array(library="ak")), ak.to_list(tb[br.name].array(library="ak"))
            if not equal(norm(va), norm(vb), False):
                fail(f"{f} branch {br.name}: values differ")
    print(json.dumps({"files": len(files), "baskets": baskets}))


def condor(run, name="hepml"):
    import htcondor2

    rec = json.load(open(os.path.join(run, "batch.json")))
    manifest = os.path.join(run, "manifest.tsv")
    lines = {l.split("\t")[0]: l.rstrip("\n").split("\t") for l in open(manifest)}
    sub_path = os.path.join(run, "condor", f"{name}.sub")
    text = open(sub_path).read()
    sub = htcondor2.Submit(text)
    items = list(sub.itemdata())
    if name == "hepml" and len(items) != len(lines):
        fail(f"{len(items)} jobs queued, {len(lines)} manifest lines")
    tasks = []
    for i, item in enumerate(items):
        line = lines.get(item["Task"])
        if [item["Task"], item["Output"]] + item["Inputs"].split("\t") != line:
            fail(f"job {i}: itemdata {item} != manifest line {line}")
        job = htcondor2.Submit(text)
        for k, v in item.items():
            job[k] = v
        args = job.expand("arguments")
        want = rec["args"] + ["--manifest", manifest, "--task", line[0]]
        got = args.strip('"').split(" ")
        if got != want:
            fail(f"job {i}: arguments {got} != {want}")
        if job.expand("MY.HepmlTask") != line[0]:
            fail(f"job {i}: HepmlTask {job.expand('MY.HepmlTask')}")
        tasks.append(int(line[0]))
    report = htcondor2.Submit(open(os.path.join(run, "condor", "report.sub")).read())
    if report.expand("arguments").strip('"').split(" ") != ["report", run]:
        fail(f"report arguments {report.expand('arguments')}")
    dag = open(os.path.join(run, "condor", f"{name}.dag")).read().split("\n")
    want = [f"JOB tasks {sub_path}", f"FINAL report {run}/condor/report.sub"]
    if [l for l in dag if l.startswith(("JOB", "FINAL"))] != want:
        fail(f"DAG {dag} lacks {want}")
    print(json.dumps({"jobs": len(items), "tasks": tasks}))


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "same-outputs" and len(sys.argv) == 5:
        same_outputs(*sys.argv[2:])
    elif cmd == "condor" and len(sys.argv) in (3, 4):
        condor(*sys.argv[2:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
