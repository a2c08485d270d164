#!/usr/bin/env python3
"""Convert benchmark: `hepml convert` of N events x B columns to HDF5, against a baseline
hepml binary (e.g. one built before a change) in the same run. Not a test.

  bench_convert.py [--hepml target/release/hepml] [--baseline OTHER_HEPML] [--events 2000000]
                   [--branches 20] [--repeat 3] [--chunk 100000 --chunk 400000]

Generates (once, cached in bench-out/) a file of N events x B float32 branches written by
uproot, and a convert config with one column per branch; then runs each binary's `convert`
in a fresh child process, best of --repeat, for each chunk size, and reports events/s, peak
RSS (ru_maxrss of the child) and, with a baseline, the ratios. Peak RSS should follow the
chunk size, not the number of events. Build hepml first: cargo build --release.
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_read import make  # noqa: E402  (the same generated input file)


def run(binary, cfg, out):
    """Seconds and peak RSS (MB) of one `convert` in a fresh child."""
    t = time.perf_counter()
    # A wrapper child per run: RUSAGE_CHILDREN's maximum is over all children so far.
    code = ("import resource, subprocess, sys; "
            "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE); "
            "sys.stderr.write(r.stderr.decode()[-2000:]) if r.returncode else None; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")
    p = subprocess.run([sys.executable, "-c", code, binary, "convert", cfg, "-o", out],
                       capture_output=True, text=True)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"{binary} convert failed:\n{p.stderr}")
    return dt, int(p.stdout.strip()) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", default=os.path.join(REPO, "target/release/hepml"))
    ap.add_argument("--baseline")
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--branches", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chunk", type=int, action="append")
    a = ap.parse_args()
    chunks = a.chunk or [100_000, 400_000]
    bins = [("hepml", a.hepml)] + ([("baseline", a.baseline)] if a.baseline else [])
    for _, b in bins:
        if not os.path.exists(b):
            sys.exit(f"{b} not found: cargo build --release first")
    out_dir = os.path.join(REPO, "bench-out")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"flat_{a.events}_{a.branches}f_zlib1.root")
    if not os.path.exists(path):
        print(f"generating {path} ...", flush=True)
        make(path, a.events, a.branches)
    print(f"convert: {a.events} events x {a.branches} columns, best of {a.repeat}")
    for chunk in chunks:
        cfg = os.path.join(out_dir, f"convert_{chunk}.yaml")
        with open(cfg, "w") as f:
            f.write("tree: events\ncolumns: [" + ", ".join(f"f{i}" for i in range(a.branches)) + "]\n")
            # convert wants both classes: the file's events split by the sign of f0 (each
            # sample reads the whole file; the output holds every event once).
            f.write(f"chunk_size: {chunk}\nsamples:\n"
                    f"  - {{name: s, files: [{path}], label: 1, selection: 'f0 > 0'}}\n"
                    f"  - {{name: b, files: [{path}], label: 0, selection: 'f0 <= 0'}}\n")
        res = {}
        for name, b in bins:
            out = os.path.join(out_dir, f"convert_{name}.h5")
            runs = [run(b, cfg, out) for _ in range(a.repeat)]
            res[name] = (min(r[0] for r in runs), max(r[1] for r in runs))
            size = os.path.getsize(out) / 1e6
            os.remove(out)
            print(f"  chunk {chunk:>7}  {name:<8} {res[name][0]:6.2f} s  "
                  f"{a.events / res[name][0] / 1e6:5.2f} M events/s  peak RSS {res[name][1]:6.1f} MB  "
                  f"output {size:.0f} MB", flush=True)
        if "baseline" in res:
            print(f"  chunk {chunk:>7}  speed hepml/baseline {res['baseline'][0] / res['hepml'][0]:.2f}x, "
                  f"RSS hepml/baseline {res['hepml'][1] / res['baseline'][1]:.2f}")


if __name__ == "__main__":
    main()
