#!/usr/bin/env python3
"""Models and data for the C++ bridge tests (cxx-bridge/tests).

  make_cxx_cases.py OUTDIR

- The engine parity cases of make_engine_models.py (sklearn MLPs, the two-input PNN, the GBC,
  ...), with every input and onnxruntime output also written as raw float32 (`<case>.in.<name>.f32`,
  `<case>.out.<name>.f32`) for C++ to read; OUTDIR/manifest.json as there, OUTDIR/rows.json the
  number of events of each case.
- zmumu_mlp.onnx: make_test_models.py's sklearn MLP on uproot-Zmumu.root [E1, px1, py1, pz1, pt1],
  with the feature map in its metadata (hepml.inputs), for the ROOT macros; zmumu_mlp.yaml, the
  same map as a feature spec for `hepml inject` (column 1 of 'probabilities' -> branch hepml_score).
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
FEATURES = ["E1", "px1", "py1", "pz1", "pt1"]


def main(out):
    import onnx

    import make_engine_models
    import make_test_models

    make_engine_models.main(out)
    man = json.load(open(os.path.join(out, "manifest.json")))
    rows = {}
    for case in man["cases"]:
        for f in list(case["inputs"].values()) + list(case["outputs"].values()):
            a = np.load(os.path.join(out, f)).astype("<f4")
            a.tofile(os.path.join(out, f[: -len(".npy")] + ".f32"))
            rows[case["name"]] = len(a)
    with open(os.path.join(out, "rows.json"), "w") as f:
        json.dump(rows, f)
    inj = os.path.join(out, "inject")
    make_test_models.main(inj)
    m = onnx.load(os.path.join(inj, "mlp.onnx"))
    m.metadata_props.add(key="hepml.inputs", value=json.dumps({"x": FEATURES}))
    onnx.save(m, os.path.join(out, "zmumu_mlp.onnx"))
    with open(os.path.join(out, "zmumu_mlp.yaml"), "w") as f:
        f.write("inputs:\n  x: [%s]\n" % ", ".join(FEATURES))
        f.write("outputs:\n  probabilities: {branch: hepml_score, column: 1}\n")


if __name__ == "__main__":
    main(sys.argv[1])
