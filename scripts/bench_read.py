#!/usr/bin/env python3
"""Read benchmark: hepml vs uproot in the same run. Not a test.

  bench_read.py [--hepml target/release/hepml] [--events 2000000] [--branches 20] [--repeat 3]

Generates (once, cached in bench-out/) a file of N events x B float32 branches, zlib level 1,
written by uproot; then times uproot `tree.arrays(library="np")` and `hepml read-bench` (all
branches, every entry), each in a fresh child process, best of --repeat, and reports events/s,
the ratio and each one's peak RSS. Targets: hepml faster than uproot, under 50 MB RSS.
Build hepml first: cargo build --release.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

UPROOT_CHILD = r'''
import resource, sys, time, uproot
t = time.perf_counter()
a = uproot.open(sys.argv[1])["events"].arrays(library="np")
dt = time.perf_counter() - t
print(dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
'''


def make(path, events, branches):
    import numpy as np
    import uproot
    rng = np.random.default_rng(1)
    with uproot.recreate(path + ".tmp", compression=uproot.ZLIB(1)) as f:
        f.mktree("events", {f"f{i}": np.float32 for i in range(branches)})
        step = 200_000
        for s in range(0, events, step):
            m = min(step, events - s)
            f["events"].extend({f"f{i}": rng.normal(size=m).astype(np.float32) for i in range(branches)})
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", default=os.path.join(REPO, "target/release/hepml"))
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--branches", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    if not os.path.exists(a.hepml):
        sys.exit(f"{a.hepml} not found: cargo build --release first")
    os.makedirs(os.path.join(REPO, "bench-out"), exist_ok=True)
    path = os.path.join(REPO, "bench-out", f"flat_{a.events}_{a.branches}f_zlib1.root")
    if not os.path.exists(path):
        print(f"generating {path} ...", flush=True)
        make(path, a.events, a.branches)
    timer = ["/usr/bin/time", "-f", "RSS_KB=%M"] if os.path.exists("/usr/bin/time") else []
    res = {}
    for name, cmd in (("uproot", [sys.executable, "-c", UPROOT_CHILD, path]),
                      ("hepml", [a.hepml, "read-bench", path, "--tree", "events"])):
        best, rss = None, 0
        for _ in range(a.repeat):
            p = subprocess.run(timer + cmd, capture_output=True, text=True)
            if p.returncode:
                sys.exit(f"{name} failed: {p.stderr[-500:]}")
            if name == "uproot":
                secs = float(p.stdout.split()[0])
            else:
                secs = json.loads(p.stdout.strip().splitlines()[-1])["seconds"]
            kb = [int(l.split("=")[1]) for l in p.stderr.splitlines() if l.startswith("RSS_KB=")]
            rss = max(rss, kb[0] / 1024 if kb else 0)
            best = secs if best is None else min(best, secs)
        res[name] = (best, rss)
        print(f"{name:7s} {best:7.3f} s  {a.events / best / 1e6:7.2f} M events/s  peak RSS {rss:7.1f} MB", flush=True)
    ratio = res["uproot"][0] / res["hepml"][0]
    print(f"hepml is {ratio:.2f}x uproot's speed (target > 1), peak RSS {res['hepml'][1]:.1f} MB (target < 50)")


if __name__ == "__main__":
    main()
