#!/usr/bin/env python3
"""Checks `hepml export` output against the trained model (used by tests/train.rs).

  check_export.py RUN_DIR MODEL.onnx...     (one file per fold, in fold order)

Each file must pass onnx.checker, load in onnxruntime, have a dynamic batch, carry the hepml
metadata, and give burn's test-split scores (RUN_DIR/test_fold<i>_{x,score}.npy) within 1e-5.
Prints JSON {"max_diff": ..., "folds": k, "metadata": {...}}; exit 1 on any failure.
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    run, models = sys.argv[1], sys.argv[2:]
    worst = 0.0
    meta = {}
    for i, path in enumerate(models):
        m = onnx.load(path)
        onnx.checker.check_model(m, full_check=True)
        meta = {p.key: p.value for p in m.metadata_props}
        for key in ("hepml.inputs", "hepml.outputs", "hepml.features", "hepml.config_hash", "hepml.version"):
            if key not in meta:
                sys.exit(f"{path}: no {key} metadata")
        batch = m.graph.input[0].type.tensor_type.shape.dim[0]
        if not batch.dim_param:
            sys.exit(f"{path}: batch dimension is not dynamic")
        x = np.load(os.path.join(run, f"test_fold{i}_x.npy"))
        want = np.load(os.path.join(run, f"test_fold{i}_score.npy"))
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        got = s.run(None, {s.get_inputs()[0].name: x})[0][:, 0]
        if got.shape != want.shape:
            sys.exit(f"{path}: {got.shape} scores, expected {want.shape}")
        worst = max(worst, float(np.max(np.abs(got - want))))
        # Batch 1 equals the batch.
        one = s.run(None, {s.get_inputs()[0].name: x[:1]})[0][0, 0]
        worst = max(worst, abs(float(one) - float(want[0])))
    print(json.dumps({"max_diff": worst, "folds": len(models), "metadata": meta}))
    if not worst <= 1e-5:
        sys.exit(f"max |onnxruntime - burn| = {worst}")


if __name__ == "__main__":
    main()
