#!/usr/bin/env python3
"""Explain benchmark: one run, two jobs. Not a test.

  bench_explain.py [--hepml target/release/hepml] [--events 1000000] [--repeats 5]

1. Permutation importance, N events x 20 features (label from a linear model plus noise;
   uproot-written ntuple cached in bench-out/), an MLP 20-100-100-1 (bench_inject's model),
   `--repeats` permutations per feature:
     hepml explain --methods perm   against
     scikit-learn's permutation_importance(scoring="roc_auc", n_jobs=2) over an onnxruntime
     session of the same model, on the same events (read with uproot beforehand, not timed).
   Prints hepml's engine (with its SIMD level), both times (hepml's permutation stage as it
   reports it, and its whole command) and the ratio. Target: hepml at least 5x faster (on
   2 cores with AVX-512; with AVX2 alone the network's arithmetic cannot reach it, README).
2. Integrated gradients, 50 steps, on 100k events of an MLP 80-100-100-1 (exact gradients on
   the native evaluator): hepml's integrated-gradients stage time. Target: under 5 s.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_inject import make_model  # noqa: E402


def make_data(path, events, features, seed):
    import uproot

    rng = np.random.default_rng(seed)
    w = rng.normal(size=features)
    with uproot.recreate(path + ".tmp") as f:
        f.mktree("events", {**{f"f{i}": np.float32 for i in range(features)}, "label": np.int32})
        step = 200_000
        for s in range(0, events, step):
            m = min(step, events - s)
            x = rng.normal(size=(m, features)).astype(np.float32)
            y = (x @ w + rng.logistic(size=m) > 0).astype(np.int32)
            f["events"].extend({**{f"f{i}": x[:, i] for i in range(features)}, "label": y})
    os.replace(path + ".tmp", path)


def mlp(path, widths, seed):
    """A ReLU MLP with a sigmoid output and hepml metadata (the branches f0..)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits, prev = [], [], "x"
    for i, (k, n) in enumerate(zip(widths[:-1], widths[1:])):
        inits += [numpy_helper.from_array(rng.normal(0, 1 / np.sqrt(k), (k, n)).astype(np.float32), f"W{i}"),
                  numpy_helper.from_array(rng.normal(0, 0.1, n).astype(np.float32), f"b{i}")]
        last = i == len(widths) - 2
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [f"h{i}"]))
        nodes.append(helper.make_node("Sigmoid" if last else "Relu", [f"h{i}"], ["score" if last else f"a{i}"]))
        prev = f"a{i}"
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", widths[0]])],
                          [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    m.metadata_props.add(key="hepml.inputs", value=json.dumps({"x": [f"f{i}" for i in range(widths[0])]}))
    m.metadata_props.add(key="hepml.outputs", value=json.dumps({"score": "score"}))
    onnx.save(m, path)


class OrtClassifier:
    """An onnxruntime session as an sklearn classifier; the session is made in each worker
    (sessions do not pickle)."""

    _estimator_type = "classifier"
    classes_ = np.array([0, 1])

    def __init__(self, model):
        self.model = model
        self.s = None

    def __getstate__(self):
        return {"model": self.model, "s": None}

    def fit(self, *_):
        return self

    def _session(self):
        import onnxruntime as ort

        if self.s is None:
            so = ort.SessionOptions()
            so.intra_op_num_threads = 1
            self.s = ort.InferenceSession(self.model, so, providers=["CPUExecutionProvider"])
        return self.s

    def predict_proba(self, X):
        s = self._session().run(None, {"x": X.astype(np.float32)})[0][:, 0]
        return np.stack([1 - s, s], axis=1)

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags())


def explain(hepml, model, data, out, extra):
    cmd = [hepml, "explain", "--model", model, "--data", data, "-o", out, "--quiet", "--force",
           "--label", "label", *extra]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode:
        sys.exit(f"hepml explain failed: {p.stderr[-800:]}")
    with open(os.path.join(out, "explain.json")) as f:
        return json.load(f), wall


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", default=os.path.join(REPO, "target/release/hepml"))
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    if not os.path.exists(a.hepml):
        sys.exit(f"{a.hepml} not found: cargo build --release first")
    d = os.path.join(REPO, "bench-out")
    os.makedirs(d, exist_ok=True)

    data = os.path.join(d, f"explain_{a.events}_20f.root")
    if not os.path.exists(data):
        print(f"generating {data} ...", flush=True)
        make_data(data, a.events, 20, 1)
    model = os.path.join(d, "mlp_20_100_100_1.onnx")
    make_model(model, (20, 100, 100, 1))
    r, wall = explain(a.hepml, model, data, os.path.join(d, "explain_perm"),
                      ["--methods", "perm", "--repeats", str(a.repeats), "--max-events", str(a.events)])
    ours = r["seconds"]["permutation"]
    # The engine line names the SIMD level (avx512+fma or fma): the network is most of the
    # time, and AVX2 machines have half AVX-512's FMA width.
    print(f"hepml engine: {r['model']['engine']}")
    print(f"hepml permutation importance: {ours:.2f} s ({wall:.2f} s for the whole command, reading included)")

    import uproot
    from sklearn.inspection import permutation_importance

    arr = uproot.open(data)["events"].arrays(library="np")
    X = np.stack([arr[f"f{i}"] for i in range(20)], axis=1).astype(np.float32)
    y = arr["label"]
    t = time.perf_counter()
    res = permutation_importance(OrtClassifier(model), X, y, scoring="roc_auc", n_repeats=a.repeats,
                                 random_state=0, n_jobs=2)
    theirs = time.perf_counter() - t
    print(f"sklearn permutation_importance (n_jobs=2) over onnxruntime: {theirs:.2f} s")
    print(f"ratio: hepml is {theirs / ours:.2f}x faster (target >= 5x); whole command {theirs / wall:.2f}x")
    ours_rank = sorted(r["permutation"]["groups"], key=lambda g: -g["per_sample"][0]["mean"])
    top = [g["group"] for g in ours_rank][:5]
    print(f"top 5 by hepml: {top}; by sklearn: {[f'f{i}' for i in np.argsort(-res.importances_mean)[:5]]}")

    ig_data = os.path.join(d, "explain_100000_80f.root")
    if not os.path.exists(ig_data):
        print(f"generating {ig_data} ...", flush=True)
        make_data(ig_data, 100_000, 80, 2)
    ig_model = os.path.join(d, "mlp_80_100_100_1.onnx")
    mlp(ig_model, [80, 100, 100, 1], 3)
    r, wall = explain(a.hepml, ig_model, ig_data, os.path.join(d, "explain_ig"),
                      ["--methods", "ig", "--steps", "50", "--events", "100000", "--max-events", "100000"])
    ig = r["seconds"]["integrated_gradients"]
    c = r["integrated_gradients"]["completeness"]["relative_gap"]
    print(f"integrated gradients, 50 steps, 100k events, MLP 80-100-100-1: {ig:.2f} s (target < 5 s); "
          f"whole command {wall:.2f} s; completeness gap {100 * c:.2f}%")


if __name__ == "__main__":
    main()
