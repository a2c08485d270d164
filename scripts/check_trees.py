#!/usr/bin/env python3
"""Cross-checks of hepml's regression trees (used by models/tests/trees.rs).

  check_trees.py onnx MODEL.onnx X.npy WANT.npy TOL
      onnx.checker (full check), then onnxruntime on X [N, F]; the output [N, 1] must be within
      TOL of WANT (hepml's own predictions), also for one row at a time.
      Prints JSON {"max_diff", "rows", "metadata", "opsets", "nodes"}.
  check_trees.py sklearn X.npy Y.npy W.npy DEPTH MIN_LEAF PRED.npy GAIN.npy
      fits sklearn's DecisionTreeRegressor(max_depth=DEPTH, min_samples_leaf=MIN_LEAF) with
      sample weights W and compares its predictions on X with PRED (hepml's tree on the same
      data) and its feature_importances_ with GAIN (hepml's per-feature gain, normalised here).
      Prints JSON {"max_diff", "importance_diff", "leaves"}.

Exit 1 on any failure.
"""
import json
import sys

import numpy as np


def check_onnx(model, x, want, tol):
    import onnx
    import onnxruntime as ort

    m = onnx.load(model)
    onnx.checker.check_model(m, full_check=True)
    x, want = np.load(x), np.load(want).reshape(-1)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    got = s.run(None, {name: x})[0]
    if got.shape != (len(x), 1):
        sys.exit(f"{model}: output shape {got.shape}, expected ({len(x)}, 1)")
    got = got.reshape(-1)
    diff = float(np.max(np.abs(got.astype(np.float64) - want)))
    # A few rows one at a time (the batch dimension is symbolic).
    for i in range(0, len(x), max(1, len(x) // 7)):
        one = s.run(None, {name: x[i : i + 1]})[0]
        diff = max(diff, abs(float(one[0, 0]) - float(want[i])))
    print(json.dumps({
        "max_diff": diff,
        "rows": len(x),
        "metadata": {p.key: p.value for p in m.metadata_props},
        "opsets": {o.domain: o.version for o in m.opset_import},
        "nodes": [n.op_type for n in m.graph.node],
    }))
    if not diff <= tol:
        sys.exit(f"{model}: max |onnxruntime - hepml| = {diff} > {tol}")


def check_sklearn(x, y, w, depth, min_leaf, pred, gain):
    from sklearn.tree import DecisionTreeRegressor

    x, y, w = np.load(x), np.load(y), np.load(w)
    pred, gain = np.load(pred).reshape(-1), np.load(gain).astype(np.float64)
    t = DecisionTreeRegressor(max_depth=int(depth), min_samples_leaf=int(min_leaf), random_state=0)
    t.fit(x, y, sample_weight=w)
    got = t.predict(x)
    diff = float(np.max(np.abs(got - pred) / np.maximum(1.0, np.abs(got))))
    imp = float(np.max(np.abs(t.feature_importances_ - gain / gain.sum())))
    print(json.dumps({"max_diff": diff, "importance_diff": imp, "leaves": int(t.get_n_leaves())}))
    if not diff <= 1e-5:
        sys.exit(f"max |sklearn - hepml| leaf prediction (relative) = {diff}")
    if not imp <= 1e-6:
        sys.exit(f"max |sklearn - hepml| normalised importance = {imp}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "onnx" and len(args) == 4:
        check_onnx(*args[:3], float(args[3]))
    elif cmd == "sklearn" and len(args) == 7:
        check_sklearn(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
