#!/usr/bin/env python3
"""Many-files inject benchmark: the same events in one file and in many. Not a test.

  bench_inject_files.py [--hepml target/release/hepml] [--files 100] [--per-file 20000] [--repeat 5]

Inputs: FILES files of PER_FILE events x 20 float32 branches (zlib-1, written by uproot), and
one file of FILES x PER_FILE events of the same kind (cached in bench-out/; the one file is the
one bench_inject.py uses at its default size). Model: bench_inject.py's MLP.
Jobs, each in a fresh process: `hepml inject` of the one file to a decorated copy, and of the
FILES files (one glob) to a folder of decorated copies, alternately, --repeat times each (this
machine's speed drifts by 10% within a minute; pairs of runs side by side see the same drift).
Prints each job's best time, the ratio of the best times and the median of the pairs' ratios
(and their range). Target: many files / one file <= 1.10.
"""
import argparse
import glob
import os
import shutil
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_read import make  # noqa: E402
from bench_inject import best_child, make_model, model_path  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", default=os.path.join(REPO, "target/release/hepml"))
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--per-file", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    if not os.path.exists(a.hepml):
        sys.exit(f"{a.hepml} not found: cargo build --release first")
    d = os.path.join(REPO, "bench-out")
    n = a.files * a.per_file
    one = os.path.join(d, f"flat_{n}_20f_zlib1.root")
    many = os.path.join(d, f"many_{a.files}x{a.per_file}")
    os.makedirs(many, exist_ok=True)
    if not os.path.exists(one):
        print(f"generating {one} ...", flush=True)
        make(one, n, 20)
    for i in range(a.files):
        f = os.path.join(many, f"part{i:04d}.root")
        if not os.path.exists(f):
            make(f, a.per_file, 20)
    model = model_path(d)
    make_model(model)
    out_one = os.path.join(d, "inject_files_one.root")
    out_many = os.path.join(d, f"inject_files_{a.files}")

    def many_job():
        shutil.rmtree(out_many, ignore_errors=True)
        return [a.hepml, "inject", os.path.join(many, "part*.root"), "--model", model, "-o", out_many, "--quiet"]

    # Both jobs write new outputs (the folder of many is removed before each run too).
    pairs = []
    for _ in range(a.repeat):
        one_s = best_child([a.hepml, "inject", one, "--model", model, "-o", out_one, "--quiet"], 1, out_one)[0]
        pairs.append((one_s, best_child(many_job(), 1)[0]))
    t_one = min(p[0] for p in pairs)
    t_many = min(p[1] for p in pairs)
    ratios = sorted(m / o for o, m in pairs)
    if len(glob.glob(os.path.join(out_many, "*.root"))) != a.files:
        sys.exit(f"expected {a.files} outputs in {out_many}")
    print(f"one file of {n} events      {t_one:7.3f} s  {n / t_one / 1e6:6.2f} M events/s")
    print(f"{a.files} files of {a.per_file} events {t_many:7.3f} s  {n / t_many / 1e6:6.2f} M events/s")
    print(f"many files / one file: {t_many / t_one:.3f} best times, {statistics.median(ratios):.3f} median of "
          f"{len(ratios)} pairs ({ratios[0]:.3f} .. {ratios[-1]:.3f}) (target <= 1.10)")


if __name__ == "__main__":
    main()
