#!/usr/bin/env python3
"""Tagger benchmark: the two CMS models in ../shared/data/onnx (ParticleNet AK4 HLT, DeepDoubleX
BvL) at a fixed batch on hepml's engines and on onnxruntime, in one run. Not a test.

  bench_taggers.py [--example target/release/examples/bench_engines] [--batch 64]
                   [--calls 20] [--threads 2]

Build the example first: `cargo build --release --example bench_engines` (from the checkout).
Inputs: random, seeded, shaped as the models take them (ParticleNet: 50 particles, 5 secondary
vertices, masks with 16..50 and 1..5 real entries; BvL: 1x5, 60x8, 40x21, 5x7 with random
lengths). hepml's settings, each timed in one process (median seconds per call over --calls
after a warm-up): "auto" (ONNX Runtime found: the venv's wheel), "auto, no ONNX Runtime",
tract, native (the EdgeConv evaluator takes ParticleNet, the recurrent one BvL), ort. onnxruntime (Python) runs with
intra_op_num_threads = --threads before and after hepml; the faster of the two is the reference.
Prints events/s, the ratio to onnxruntime (>= 1: hepml at least as fast) and max |diff| of the
outputs to onnxruntime's, then a summary line per model with the native path's and auto's ratios.
Goal: auto >= 1x onnxruntime; the native path >= 1x without ONNX Runtime.
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
SHARED = os.path.join(REPO, "..", "shared", "data", "onnx")
sys.path.insert(0, HERE)
from make_engine_models import bvl_feeds, particlenet_feeds  # noqa: E402


def particlenet_inputs(rng, n):
    return particlenet_feeds(rng, n, min_pf=16, min_sv=1)


MODELS = [
    ("ParticleNet AK4 HLT", "cms-particlenet-ak4-hlt/particle-net.onnx", particlenet_inputs),
    ("DeepDoubleX BvL (GRU)", "cms-deepdoublex-bvl/BvL.onnx", bvl_feeds),
]


def time_onnxruntime(model, feeds, threads, calls):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    out = None
    for _ in range(4):
        out = s.run(None, feeds)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        s.run(None, feeds)
        times.append(time.perf_counter() - t)
    names = [o.name for o in s.get_outputs()]
    return sorted(times)[len(times) // 2], dict(zip(names, out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--example", default=os.path.join(REPO, "target/release/examples/bench_engines"))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if not os.path.exists(a.example):
        sys.exit(f"{a.example}: build it with cargo build --release --example bench_engines")
    work = os.path.join(REPO, "bench-out", "taggers")
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(17)
    print(f"batch {a.batch}, {a.threads} threads, median of {a.calls} calls; ratio = events/s / onnxruntime's")
    print(f"{'model':24} {'setting':24} {'engine':7} {'events/s':>10} {'ratio':>7} {'max|diff|':>10}")
    summary = []
    for label, rel, make in MODELS:
        model = os.path.normpath(os.path.join(SHARED, rel))
        if not os.path.exists(model):
            sys.exit(f"{model} missing (../shared/data beside the checkout)")
        feeds = make(rng, a.batch)
        args = [a.example, model, str(a.threads), str(a.calls)]
        for name, x in feeds.items():
            f = os.path.join(work, f"{os.path.basename(model)}.{name}.f32")
            np.ascontiguousarray(x, dtype="<f4").tofile(f)
            args.append(f"{name}={f}:{'x'.join(map(str, x.shape))}")
        t_before, want = time_onnxruntime(model, feeds, a.threads, a.calls)
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"bench_engines failed: {r.stderr}")
        t_after, _ = time_onnxruntime(model, feeds, a.threads, a.calls)
        ref = a.batch / min(t_before, t_after)
        print(f"{label:24} {'onnxruntime (Python)':24} {'':7} {ref:10.0f} {1.0:7.2f} {'':>10}")
        ratios = {}
        for line in r.stdout.splitlines():
            row = json.loads(line)
            if "error" in row:
                print(f"{label:24} {row['setting']:24} refused: {row['error'][:110]}")
                continue
            diff = max(
                float(np.max(np.abs(np.asarray(v, dtype=np.float32) - want[k].astype(np.float32).ravel())))
                for k, v in row["outputs"].items()
            )
            eps = row["events_per_s"]
            print(f"{label:24} {row['setting']:24} {row['engine']:7} {eps:10.0f} {eps / ref:7.2f} {diff:10.2e}")
            ratios[row["setting"]] = eps / ref
        native = ratios.get("native")
        auto = ratios.get("auto")
        summary.append(
            f"{label:24} native {'refused' if native is None else f'{native:.2f}x'}, "
            f"auto {'refused' if auto is None else f'{auto:.2f}x'} onnxruntime's events/s"
        )
    print("\n".join(["", "goal >= 1x:"] + summary))


if __name__ == "__main__":
    main()
