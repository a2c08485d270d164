#!/usr/bin/env python3
"""Tagger benchmark: the two CMS models in ../shared/data/onnx (ParticleNet AK4 HLT, DeepDoubleX
BvL), and CMS DeepBoostedJet V02 (a ResNet-style 1-D CNN) where it is cached, at a fixed batch on
hepml's engines and on onnxruntime, in one run. Not a test.

  bench_taggers.py [--example target/release/examples/bench_engines] [--batch 64]
                   [--calls 20] [--threads 2]

Build the example first: `cargo build --release --example bench_engines` (from the checkout).
Inputs: random, seeded, shaped as the models take them (ParticleNet: 50 particles, 5 secondary
vertices, masks with 16..50 and 1..5 real entries; BvL: 1x5, 60x8, 40x21, 5x7 with random
lengths; DeepBoostedJet: 42x100 particles and 15x7 vertices, zero beyond random lengths).
DeepBoostedJet and DeepJet are not in ../shared: they are read from $HEPML_TAGGERS (default
~/.cache/hepml/cms-taggers): deepboostedjet-v02-full.onnx (DeepBoostedJet/V02/full/resnet.onnx
of https://github.com/cms-data/RecoBTag-Combined), deepjet-v03.onnx and deepjet-run3.onnx (the
DeepJet models of the same repository: DeepFlavourV03_10X_training/model.onnx, keras2onnx, and
DeepFlavourV04_12X_training/DeepJet_Run3_122X.onnx, PyTorch; inputs 15 globals, 25x16 charged and 25x6 neutral candidates, 4x12 vertices, jet pt,
zero past random lengths); a missing file is said on its line and the model left out. hepml's settings, each timed in one process (median seconds per call over --calls
after a warm-up): "auto" (ONNX Runtime found: the venv's wheel), "auto, no ONNX Runtime",
tract, native (the EdgeConv evaluator takes ParticleNet, the recurrent one BvL, the 1-D CNN one
DeepBoostedJet and DeepJet), ort. onnxruntime (Python) runs with
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


def deepboostedjet_inputs(rng, n):
    """Particles [n, 42, 100, 1] and secondary vertices [n, 15, 7, 1], zero past each jet's
    random length."""
    feeds = {}
    for name, c, length in (("pfcand", 42, 100), ("sv", 15, 7)):
        x = rng.normal(size=(n, c, length, 1)).astype(np.float32)
        for e, k in enumerate(rng.integers(1, length + 1, n)):
            x[e, :, k:, :] = 0
        feeds[name] = x
    return feeds


def deepjet_inputs(rng, n):
    """Globals [n, 15], charged [n, 25, 16] and neutral [n, 25, 6] candidates, vertices
    [n, 4, 12] (zero past each jet's random lengths), jet pt [n, 1]."""
    feeds = {"input_1": rng.normal(size=(n, 15)).astype(np.float32)}
    for name, length, c in (("input_2", 25, 16), ("input_3", 25, 6), ("input_4", 4, 12)):
        x = rng.normal(size=(n, length, c)).astype(np.float32)
        for e, k in enumerate(rng.integers(0, length + 1, n)):
            x[e, k:, :] = 0
        feeds[name] = x
    feeds["input_5"] = rng.uniform(20, 500, size=(n, 1)).astype(np.float32)
    return feeds


TAGGERS = os.environ.get("HEPML_TAGGERS", os.path.expanduser("~/.cache/hepml/cms-taggers"))

MODELS = [
    ("ParticleNet AK4 HLT", os.path.join(SHARED, "cms-particlenet-ak4-hlt/particle-net.onnx"),
     particlenet_inputs),
    ("DeepDoubleX BvL (GRU)", os.path.join(SHARED, "cms-deepdoublex-bvl/BvL.onnx"), bvl_feeds),
    ("DeepBoostedJet (1-D CNN)", os.path.join(TAGGERS, "deepboostedjet-v02-full.onnx"),
     deepboostedjet_inputs),
    ("DeepJet V03 (LSTM, Keras)", os.path.join(TAGGERS, "deepjet-v03.onnx"), deepjet_inputs),
    ("DeepJet Run3 (LSTM, torch)", os.path.join(TAGGERS, "deepjet-run3.onnx"), deepjet_inputs),
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
    for label, model, make in MODELS:
        model = os.path.normpath(model)
        if not os.path.exists(model) and model.startswith(os.path.normpath(TAGGERS)):
            print(f"{label:24} left out: {model} missing (see the script's help)")
            summary.append(f"{label:24} not measured (model missing)")
            continue
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
