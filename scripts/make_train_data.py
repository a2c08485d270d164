#!/usr/bin/env python3
"""Two separable classes for the training tests (tests/train.rs), written by uproot as TTrees.

  make_train_data.py OUT_DIR N SEED

OUT_DIR/sig.root and OUT_DIR/bkg.root, tree `events`: f0..f4 (float32, unit Gaussians; the
signal's means are shifted by 0.6 in every feature, so the best possible AUC is
Phi(0.6 * sqrt(5) / sqrt(2)) = 0.829), `mass` (float32: signal 300, 500 or 700 with f0 shifted
by mass / 500 for the parameterised test; background 0), `event` (int64, unique), `bad` (float32
with a NaN in the first background event).
"""
import os
import sys

import numpy as np
import uproot


def main(out, n, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    for name, shift, first in (("sig", 0.6, 0), ("bkg", 0.0, n)):
        x = rng.normal(0, 1, (n, 5)).astype(np.float32) + np.float32(shift)
        mass = np.zeros(n, np.float32)
        if shift:
            mass = rng.choice(np.array([300, 500, 700], np.float32), n)
            x[:, 0] += mass / 500 - 1
        bad = rng.normal(0, 1, n).astype(np.float32)
        if not shift:
            bad[0] = np.nan
        with uproot.recreate(os.path.join(out, f"{name}.root")) as f:
            f.mktree("events", {**{f"f{i}": np.float32 for i in range(5)}, "mass": np.float32,
                                "event": np.int64, "bad": np.float32})
            f["events"].extend({**{f"f{i}": x[:, i] for i in range(5)}, "mass": mass,
                                "event": np.arange(first, first + n, dtype=np.int64), "bad": bad})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
