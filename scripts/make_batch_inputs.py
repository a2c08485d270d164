#!/usr/bin/env python3
"""Small seeded ntuples for the batch (sharded inject) tests and benchmarks.

  make_batch_inputs.py OUTDIR N [--events E]

Writes OUTDIR/in-000.root ... in-(N-1).root (uproot), each a tree `events` with the branches
the inject test models read (E1, px1, py1, pz1, pt1: float64, muon-like kinematics) and an
`Event` number (int64), E events or fewer (file i holds E - 7*i, at least 10), written in three
baskets per branch. Prints a JSON list of the entry counts.
"""
import argparse
import json
import os

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("outdir")
    p.add_argument("n", type=int)
    p.add_argument("--events", type=int, default=600)
    a = p.parse_args()
    import uproot

    os.makedirs(a.outdir, exist_ok=True)
    counts = []
    first = 0
    for i in range(a.n):
        rng = np.random.default_rng(1000 + i)
        n = max(10, a.events - 7 * i)
        pt = rng.exponential(30.0, n) + 5.0
        eta = rng.normal(0.0, 1.5, n)
        phi = rng.uniform(-np.pi, np.pi, n)
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        e = np.sqrt(px**2 + py**2 + pz**2 + 0.1057**2)
        cols = {"E1": e, "px1": px, "py1": py, "pz1": pz, "pt1": pt, "Event": np.arange(first, first + n, dtype=np.int64)}
        first += n
        with uproot.recreate(os.path.join(a.outdir, f"in-{i:03d}.root")) as f:
            t = f.mktree("events", {c: v.dtype for c, v in cols.items()})
            cuts = [0, n // 3, 2 * n // 3, n]
            for k in range(3):
                t.extend({c: v[cuts[k]:cuts[k + 1]] for c, v in cols.items()})
        counts.append(n)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
