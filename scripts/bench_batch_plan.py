#!/usr/bin/env python3
"""Planning benchmark: `hepml inject --manifest M --events-per-job N` over 10,000 small files
must read only their headers, in well under the 1-minute budget. Not a test.

  bench_batch_plan.py [--hepml target/release/hepml] [--files 10000] [--events-per-job 50000]

Generates (once, cached in bench-out/batch-plan/) one small ntuple with make_batch_inputs.py
and 10,000 copies of it, then times the planning (entry counts from every file's tree header,
grouping, the manifest written) in a fresh child, cold-ish (first run after the copies) and
warm (second run). Prints seconds, microseconds per file, and the ratio to the 60 s budget.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hepml", default=os.path.join(REPO, "target", "release", "hepml"))
    p.add_argument("--files", type=int, default=10000)
    p.add_argument("--events-per-job", type=int, default=50000)
    a = p.parse_args()
    work = os.path.join(REPO, "bench-out", "batch-plan")
    files = os.path.join(work, "in")
    if len([f for f in os.listdir(files)] if os.path.isdir(files) else []) != a.files:
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run([sys.executable, os.path.join(HERE, "make_batch_inputs.py"), os.path.join(work, "seed"), "1",
                        "--events", "500", "--model", os.path.join(work, "mlp.onnx")], check=True, capture_output=True)
        os.makedirs(files)
        src = os.path.join(work, "seed", "in-000.root")
        for i in range(a.files):
            shutil.copyfile(src, os.path.join(files, f"f{i:05d}.root"))
    with open(os.path.join(work, "mlp.yaml"), "w") as f:
        f.write("inputs:\n  x: [E1, px1, py1, pz1, pt1]\noutputs:\n  probabilities: {branch: score, column: 1}\n")
    cmd = [a.hepml, "inject", os.path.join(files, "*.root"), "--model", os.path.join(work, "mlp.onnx"),
           "--features", os.path.join(work, "mlp.yaml"), "-o", os.path.join(work, "out"),
           "--manifest", os.path.join(work, "manifest.tsv"), "--events-per-job", str(a.events_per_job)]
    for label in ["first", "second"]:
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        s = time.perf_counter() - t
        tasks = sum(1 for _ in open(os.path.join(work, "manifest.tsv")))
        print(f"{label} run: {a.files} files -> {tasks} tasks in {s:.2f} s ({1e6 * s / a.files:.0f} us/file); "
              f"budget 60 s / time = {60 / s:.1f}x")


if __name__ == "__main__":
    main()
