#!/usr/bin/env python3
"""Events for the tree-ensemble tests (tests/train_trees.rs), written by uproot as TTrees.

  make_tree_data.py OUT_DIR N SEED

N events; each is signal with probability sigmoid(logit) where

  logit = 3 a0 + 1.5 (a1^2 - 1) + 1.2 m5 + 0.6 a2 + 0.25 a3      (a4 is noise)

with a0..a4 and m5 unit Gaussians (float32): a nonlinear signal whose features matter in a
clearly separated order (a0 > a1 > m5 > a2 > a3 > a4). 20% of m5's values are then made NaN
(missing) in the files.
`flat` is 1 in every event, `gone` NaN in every event, `event` a unique int64.
Signal goes to OUT_DIR/sig.root, background to OUT_DIR/bkg.root, tree `events`.
"""
import os
import sys

import numpy as np
import uproot


def main(out, n, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    a = rng.normal(0, 1, (n, 6)).astype(np.float32)
    logit = 3 * a[:, 0] + 1.5 * (a[:, 1] ** 2 - 1) + 1.2 * a[:, 5] + 0.6 * a[:, 2] + 0.25 * a[:, 3]
    sig = rng.uniform(0, 1, n) < 1 / (1 + np.exp(-logit))
    m5 = a[:, 5].copy()
    m5[rng.uniform(0, 1, n) < 0.2] = np.nan
    cols = {f"a{i}": a[:, i] for i in range(5)}
    cols["m5"] = m5
    cols["flat"] = np.ones(n, np.float32)
    cols["gone"] = np.full(n, np.nan, np.float32)
    cols["event"] = np.arange(n, dtype=np.int64)
    for name, mask in (("sig", sig), ("bkg", ~sig)):
        with uproot.recreate(os.path.join(out, f"{name}.root")) as f:
            f.mktree("events", {k: v.dtype for k, v in cols.items()})
            f["events"].extend({k: v[mask] for k, v in cols.items()})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
