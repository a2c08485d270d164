#!/usr/bin/env python3
"""Cross-checks of `hepml submit` runs.

  check_batch.py same-outputs LOCAL_DIR OUT_DIR TREE
      Every LOCAL_DIR/NAME.root (one local `hepml inject` of all the files) must have a twin
      OUT_DIR/part-*/NAME.root (the batch run) with the same branches, identical raw
      (compressed) basket bytes basket by basket (the original branches and the scores), and
      identical values (uproot). Prints {"files": N, "baskets": B}.
  check_batch.py condor RUN_DIR
      Reads RUN_DIR/condor/hepml.sub with HTCondor's own parser (htcondor2.Submit): its
      `queue ... from` itemdata must be the manifest's lines, and each job's expanded
      arguments must be batch.json's command with `--manifest RUN_DIR/manifest.tsv --task T`
      for that line's task; report.sub runs `report RUN_DIR` and the DAG has the tasks as a
      JOB and the report as its FINAL node. Prints {"jobs": N}.
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


def condor(run):
    import htcondor2

    rec = json.load(open(os.path.join(run, "batch.json")))
    manifest = os.path.join(run, "manifest.tsv")
    lines = [l.rstrip("\n").split("\t") for l in open(manifest)]
    text = open(os.path.join(run, "condor", "hepml.sub")).read()
    sub = htcondor2.Submit(text)
    items = list(sub.itemdata())
    if len(items) != len(lines):
        fail(f"{len(items)} jobs queued, {len(lines)} manifest lines")
    for i, (item, line) in enumerate(zip(items, lines)):
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
    report = htcondor2.Submit(open(os.path.join(run, "condor", "report.sub")).read())
    if report.expand("arguments").strip('"').split(" ") != ["report", run]:
        fail(f"report arguments {report.expand('arguments')}")
    dag = open(os.path.join(run, "condor", "hepml.dag")).read().split("\n")
    want = [f"JOB tasks {run}/condor/hepml.sub", f"FINAL report {run}/condor/report.sub"]
    if [l for l in dag if l.startswith(("JOB", "FINAL"))] != want:
        fail(f"DAG {dag} lacks {want}")
    print(json.dumps({"jobs": len(items)}))


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "same-outputs" and len(sys.argv) == 5:
        same_outputs(*sys.argv[2:])
    elif cmd == "condor" and len(sys.argv) == 3:
        condor(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
