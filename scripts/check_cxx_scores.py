#!/usr/bin/env python3
"""Scores written by the C++ bridge examples against onnxruntime (and `hepml inject`).

  check_cxx_scores.py MODEL INPUT_ROOT TREE SCORES.f32 [SCORES.f32 ...] [--inject OUT.root BRANCH]

Python builds the model's input on its own from the branches its metadata names (hepml.inputs,
uproot), runs onnxruntime on one thread, and takes the last column of the first float output
(the signal probability): every SCORES file (float32, one per entry, in entry order) must be
within 1e-5 of it, and so must branch BRANCH of the tree TREE that `hepml inject` wrote to
OUT.root. Prints {"max_abs_diff": {file: d}, "values": n}; exits 1 on any |diff| > 1e-5.
"""
import json
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")
TOL = 1e-5


def main(argv):
    import onnxruntime as ort
    import uproot

    inject = None
    if "--inject" in argv:
        k = argv.index("--inject")
        inject, argv = argv[k + 1 : k + 3], argv[:k] + argv[k + 3 :]
    model, inp, tree, scores = argv[0], argv[1], argv[2], argv[3:]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    fmap = json.loads(s.get_modelmeta().custom_metadata_map["hepml.inputs"])
    t = uproot.open(inp)[tree]
    feeds = {
        name: np.stack([t[c].array(library="np").astype(np.float64) for c in cols], axis=1).astype(np.float32)
        for name, cols in fmap.items()
    }
    outs = s.get_outputs()
    first_float = next(i for i, o in enumerate(outs) if o.type == "tensor(float)")
    res = np.asarray(s.run(None, feeds)[first_float])
    want = res.reshape(len(res), -1)[:, -1].astype(np.float64)
    got = {f: np.fromfile(f, "<f4").astype(np.float64) for f in scores}
    if inject:
        got[f"{inject[0]}:{inject[1]}"] = uproot.open(inject[0])[tree][inject[1]].array(library="np").astype(np.float64)
    report = {}
    for name, g in got.items():
        if g.shape != want.shape:
            sys.exit(f"check_cxx_scores: {name}: {g.shape[0]} values, {want.shape[0]} entries")
        d = float(np.max(np.abs(g - want))) if want.size else 0.0
        report[name] = d
        if not d <= TOL:
            i = int(np.argmax(np.abs(g - want)))
            sys.exit(f"check_cxx_scores: {name}: |diff| {d:.3g} > {TOL} at entry {i}: onnxruntime {want[i]} got {g[i]}")
    print(json.dumps({"max_abs_diff": report, "values": int(want.size)}))


if __name__ == "__main__":
    main(sys.argv[1:])
