#!/usr/bin/env python3
"""Inject benchmark: one run, three jobs on the same file. Not a test.

  bench_inject.py [--hepml target/release/hepml] [--events 2000000] [--repeat 2]

Input: N events x 20 float32 branches, zlib-1, written by uproot (cached in bench-out/).
Model: an MLP 20-100-100-1 (ONNX, built with onnx.helper; sigmoid output).
Jobs, each in a fresh process, best of --repeat:
  1. pure reading: `hepml read-bench` of the 20 branches;
  2. `hepml inject` writing a decorated copy (original baskets copied, new `score` branch);
  3. the Python way: uproot reads the 20 branches, onnxruntime scores them, uproot writes a new
     file with the 20 branches plus `score` (zlib-1).
Prints events/s and the ratios. Targets: inject >= 5x the Python script, <= 1.3x pure reading.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_read import make  # noqa: E402

PY_JOB = r'''
import sys, time, numpy as np, uproot, onnxruntime as ort
src, model, out = sys.argv[1:4]
t = time.perf_counter()
a = uproot.open(src)["events"].arrays(library="np")
names = [f"f{i}" for i in range(20)]
x = np.stack([a[n] for n in names], axis=1).astype(np.float32)
so = ort.SessionOptions(); so.intra_op_num_threads = 2
s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
score = np.concatenate([s.run(None, {"x": x[i:i + 100000]})[0][:, 0] for i in range(0, len(x), 100000)])
with uproot.recreate(out, compression=uproot.ZLIB(1)) as f:
    f.mktree("events", {n: np.float32 for n in names} | {"score": np.float32})
    step = 500000
    for i in range(0, len(x), step):
        f["events"].extend({n: a[n][i:i + step] for n in names} | {"score": score[i:i + step]})
print(time.perf_counter() - t)
'''


def make_model(path):
    import numpy as np
    import onnx
    from onnx import helper, TensorProto, numpy_helper
    rng = np.random.default_rng(5)
    sizes = [20, 100, 100, 1]
    nodes, inits, prev = [], [], "x"
    for i in range(3):
        inits += [numpy_helper.from_array((rng.normal(0, 1 / np.sqrt(sizes[i]), (sizes[i], sizes[i + 1]))).astype(np.float32), f"W{i}"),
                  numpy_helper.from_array(rng.normal(0, 0.1, sizes[i + 1]).astype(np.float32), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [f"h{i}"]))
        prev = f"h{i}"
        act = "Relu" if i < 2 else "Sigmoid"
        nodes.append(helper.make_node(act, [prev], [f"a{i}"] if i < 2 else ["score"]))
        prev = f"a{i}"
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 20])],
                          [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    m.metadata_props.add(key="hepml.inputs", value=json.dumps({"x": [f"f{i}" for i in range(20)]}))
    m.metadata_props.add(key="hepml.outputs", value=json.dumps({"score": "score"}))
    onnx.save(m, path)


def best(cmd, repeat, parse):
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if p.returncode:
            sys.exit(f"{cmd[:2]} failed: {p.stderr[-800:]}")
        secs = parse(p, wall)
        out = secs if out is None else min(out, secs)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", default=os.path.join(REPO, "target/release/hepml"))
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    d = os.path.join(REPO, "bench-out")
    os.makedirs(d, exist_ok=True)
    src = os.path.join(d, f"flat_{a.events}_20f_zlib1.root")
    if not os.path.exists(src):
        make(src, a.events, 20)
    model = os.path.join(d, "mlp_20_100_100_1.onnx")
    make_model(model)
    n = a.events
    read = best([a.hepml, "read-bench", src, "--tree", "events"], a.repeat, lambda p, w: json.loads(p.stdout.strip().splitlines()[-1])["seconds"])
    inj = best([a.hepml, "inject", src, "--model", model, "-o", os.path.join(d, "inject_out.root"), "--quiet", "--chunk", "100000"], a.repeat, lambda p, w: w)
    py = best([sys.executable, "-c", PY_JOB, src, model, os.path.join(d, "python_out.root")], a.repeat, lambda p, w: w)
    for name, s in (("pure reading (hepml)", read), ("hepml inject", inj), ("uproot+onnxruntime", py)):
        print(f"{name:22s} {s:7.3f} s  {n / s / 1e6:6.2f} M events/s")
    print(f"inject vs Python script: {py / inj:.2f}x faster (target >= 5x); inject / pure reading: {inj / read:.2f} (target <= 1.3)")


if __name__ == "__main__":
    main()
