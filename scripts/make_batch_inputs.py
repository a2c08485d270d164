#!/usr/bin/env python3
"""Small seeded ntuples for the batch (sharded inject) tests and benchmarks.

  make_batch_inputs.py OUTDIR N [--events E] [--model MODEL.onnx]

Writes OUTDIR/in-000.root ... in-(N-1).root (uproot), each a tree `events` with the branches
the inject test models read (E1, px1, py1, pz1, pt1: float64, muon-like kinematics) and an
`Event` number (int64), E events or fewer (file i holds E - 7*i, at least 10), written in three
baskets per branch. With --model, also an sklearn MLPClassifier (one hidden layer of 8, label pt1 > 30) trained
on the first file's features [E1, px1, py1, pz1, pt1] and exported by skl2onnx (zipmap off):
input 'x' float32, outputs 'label' and 'probabilities'. Prints a JSON list of the entry counts.
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
    p.add_argument("--model")
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
        if a.model and i == 0:
            write_model(a.model, np.stack([e, px, py, pz, pt], axis=1), pt > 30.0)
    print(json.dumps(counts))


def write_model(path, x, y):
    import warnings

    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.neural_network import MLPClassifier

    warnings.filterwarnings("ignore")
    x = x.astype(np.float32)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=1).fit(x, y.astype(int))
    onx = to_onnx(clf, initial_types=[("x", FloatTensorType([None, 5]))], options={id(clf): {"zipmap": False}})
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())


if __name__ == "__main__":
    main()
