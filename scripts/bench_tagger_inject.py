#!/usr/bin/env python3
"""Tagger inject benchmark: the two CMS models in ../shared/data/onnx scored by `hepml inject`
from jagged branches (reading and input building included), against onnxruntime's events/s on
the same inputs, in one run. Not a test.

  bench_tagger_inject.py [--hepml target/release/hepml] [--jets 3000] [--batch 64]
                         [--threads 2] [--repeat 2]

Input (cached in bench-out/taggers/): JETS jets, written by uproot, with jagged float branches:
ParticleNet AK4 HLT's preprocess.json variables (5-69 PF candidates and 0-7 SVs per jet, so
some are cut at the model's 50 and 5), and DeepDoubleX BvL's four inputs as object
collections (1 global row, 0-69 charged, 0-49 neutral candidates, 0-7 SVs; cut at 60/40/5),
fed through a feature spec (objects_first layout). Values are random, seeded. Where cached
(see bench_taggers.py: $HEPML_TAGGERS), CMS DeepJet Run 3 and V03 too, from their own jets
file (15 global and a jet-pt branch, 0-30 charged and neutral candidates cut at 25, 0-6
vertices cut at 4); reported, not part of the goal line.
Jobs, each `hepml inject ... --friend --chunk BATCH --threads THREADS` in a fresh process,
best of --repeat (events/s from the child's wall time, process start to exit; each run writes
a new output; a failing job stops the benchmark with its error):
  native: --engine native --ort-lib none (no ONNX Runtime at all);
  auto, no ONNX Runtime: --ort-lib none;
  auto: ONNX Runtime found (ORT_DYLIB_PATH = the venv wheel's library);
  ort: --engine ort.
Reference: onnxruntime (Python) on the inputs built the same way from the same file (numpy),
batch BATCH, intra_op_num_threads THREADS: events/s of its inference calls alone (building and
reading not counted), the faster of a run before and one after the hepml jobs. Every hepml
output is compared with onnxruntime's: max |diff| and the jets differing by more than 1e-4.
(ParticleNet's kNN makes a few jets in a thousand sensitive to rounding: where the k-th and
(k+1)-th neighbours of a point are within float32 rounding of each other, any other order of
summation may pick the other one. onnxruntime itself scores such jets differently at batch 1
and batch 64.)
Goal: auto >= 1x onnxruntime's events/s, and the native path >= 1x without ONNX Runtime.
"""
import argparse
import glob
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "onnx"))
sys.path.insert(0, HERE)
from bench_inject import best_child  # noqa: E402
from bench_taggers import TAGGERS  # noqa: E402

PN = os.path.join(SHARED, "cms-particlenet-ak4-hlt")
BVL = os.path.join(SHARED, "cms-deepdoublex-bvl", "BvL.onnx")
# BvL's inputs as object collections: (input, branch prefix, variables, length, most per jet).
BVL_INPUTS = [("input_1", "bvl_glob", 5, 1, 1), ("input_2", "bvl_cpf", 8, 60, 70),
              ("input_3", "bvl_npf", 21, 40, 50), ("input_4", "bvl_sv", 7, 5, 8)]


def make_jets(path, jets):
    """The jets file: ParticleNet's and BvL's jagged branches, random values, seeded."""
    import awkward as ak
    import uproot
    rng = np.random.default_rng(23)
    pre = json.load(open(os.path.join(PN, "preprocess.json")))
    data = {}

    def add(name, counts):
        vals = rng.normal(0, 1.5, int(counts.sum())).astype(np.float32)
        data[name] = ak.unflatten(vals + (2.0 if name.endswith("_log") else 0.0), counts)

    npf, nsv = rng.integers(5, 70, jets), rng.integers(0, 8, jets)
    for group in pre["input_names"]:
        names = pre[group]["var_names"]
        if len(names) == 1 and names[0].endswith("mask"):
            continue
        for v in names:
            if v not in data:
                add(v, npf if group.startswith("pf") else nsv)
    for _, prefix, nvar, _, most in BVL_INPUTS:
        counts = np.ones(jets, np.int64) if most == 1 else rng.integers(0, most, jets)
        for k in range(nvar):
            add(f"{prefix}_{k}", counts)
    with uproot.recreate(path + ".tmp") as f:
        f.mktree("jets", {k: "var * float32" for k in data})
        f["jets"].extend(data)
    os.replace(path + ".tmp", path)


# DeepJet's inputs: event columns (15 globals, jet pt) and collections (input, prefix, variables,
# length, most per jet).
DJ_COLLECTIONS = [("input_2", "dj_cpf", 16, 25, 30), ("input_3", "dj_npf", 6, 25, 30),
                  ("input_4", "dj_vtx", 12, 4, 6)]
DJ_MODELS = [("DeepJet Run3 (LSTM)", "deepjet-run3.onnx"), ("DeepJet V03 (LSTM)", "deepjet-v03.onnx")]
DJ_LABELS = ["b", "bb", "lepb", "c", "uds", "g"]


def make_deepjet_jets(path, jets):
    """DeepJet's jets file: 15 global and a jet-pt float branch, jagged candidate and vertex
    collections (0-30 charged and neutral candidates, cut at 25; 0-6 vertices, cut at 4)."""
    import awkward as ak
    import uproot
    rng = np.random.default_rng(29)
    data = {f"dj_glob_{k}": rng.normal(size=jets).astype(np.float32) for k in range(15)}
    data["dj_jet_pt"] = rng.uniform(20, 500, jets).astype(np.float32)
    for _, prefix, nvar, _, most in DJ_COLLECTIONS:
        counts = rng.integers(0, most + 1, jets)
        for k in range(nvar):
            vals = rng.normal(size=int(counts.sum())).astype(np.float32)
            data[f"{prefix}_{k}"] = ak.unflatten(vals, counts)
    with uproot.recreate(path + ".tmp") as f:
        f.mktree("jets", {k: ("var * float32" if isinstance(v, ak.Array) else np.float32)
                          for k, v in data.items()})
        f["jets"].extend(data)
    os.replace(path + ".tmp", path)


def deepjet_spec(path):
    globs = ", ".join(f"dj_glob_{k}" for k in range(15))
    lines = ["inputs:", f"  input_1: [{globs}]", "  input_5: [dj_jet_pt]"]
    for name, prefix, nvar, length, _ in DJ_COLLECTIONS:
        objs = ", ".join(f"{prefix}_{k}" for k in range(nvar))
        lines.append(f"  {name}: {{objects: [{objs}], length: {length}, layout: objects_first}}")
    branches = ", ".join(f"dj_{lab}" for lab in DJ_LABELS)
    lines += ["outputs:", f"  \"ID_pred/Softmax:0\": {{branches: [{branches}]}}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def feeds_deepjet(tree):
    feeds = {"input_1": np.stack([tree[f"dj_glob_{k}"].array(library="np") for k in range(15)], 1),
             "input_5": tree["dj_jet_pt"].array(library="np")[:, None]}
    for name, prefix, nvar, length, _ in DJ_COLLECTIONS:
        feeds[name] = padded(tree, [f"{prefix}_{k}" for k in range(nvar)], length, False)[0]
    feeds = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feeds.items()}
    return feeds, [(f"dj_{lab}", j) for j, lab in enumerate(DJ_LABELS)]


def bvl_spec(path):
    lines = ["inputs:"]
    for name, prefix, nvar, length, _ in BVL_INPUTS:
        objs = ", ".join(f"{prefix}_{k}" for k in range(nvar))
        lines.append(f"  {name}: {{objects: [{objs}], length: {length}, layout: objects_first}}")
    lines += ["outputs:", "  ID_pred: {branches: [bvl_probQCD, bvl_probHbb]}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def padded(tree, names, length, vars_first, transform=None):
    """[jets, vars, length] (or [jets, length, vars]) of jagged branches, cut and zero-padded
    (with ParticleNet's per-variable transform where given), and the per-jet counts."""
    import awkward as ak
    cols, counts = [], None
    for v in names:
        arr = tree[v].array(library="ak")
        counts = ak.to_numpy(ak.num(arr))
        x = ak.to_numpy(ak.fill_none(ak.pad_none(arr, length, clip=True), np.nan)).astype(np.float32)
        real = ~np.isnan(x)
        pad = np.float32(0)
        if transform is not None:
            t = transform[v]
            x = np.where(np.isinf(x), np.float32(t["replace_inf_value"]), x)
            x = np.clip((x - np.float32(t["median"])) * np.float32(t["norm_factor"]),
                        np.float32(t["lower_bound"]), np.float32(t["upper_bound"]))
            pad = np.float32(t["pad"])
        cols.append(np.where(real, x, pad))
    x = np.stack(cols, axis=1 if vars_first else 2)
    return np.ascontiguousarray(x, dtype=np.float32), counts


def feeds_particlenet(tree):
    pre = json.load(open(os.path.join(PN, "preprocess.json")))
    feeds, counts = {}, {}
    for g in pre["input_names"]:
        names = pre[g]["var_names"]
        if len(names) == 1 and names[0].endswith("mask"):
            continue
        length = pre[g]["max_length"]
        feeds[g], counts[g.split("_")[0]] = padded(tree, names, length, True, pre[g]["var_infos"])
    for g in pre["input_names"]:
        names = pre[g]["var_names"]
        if len(names) == 1 and names[0].endswith("mask"):
            length = pre[g]["max_length"]
            c = counts[g.split("_")[0]]
            feeds[g] = (np.arange(length)[None, None, :] < c[:, None, None]).astype(np.float32)
    outs = [(f"pnet_{lab}", j) for j, lab in enumerate(pre["output_names"])]
    return feeds, outs


def feeds_bvl(tree):
    feeds = {}
    for name, prefix, nvar, length, _ in BVL_INPUTS:
        feeds[name] = padded(tree, [f"{prefix}_{k}" for k in range(nvar)], length, False)[0]
    return feeds, [("bvl_probQCD", 0), ("bvl_probHbb", 1)]


def time_onnxruntime(model, feeds, threads, batch):
    """Seconds in inference calls of `batch` events (after a warm-up), and the outputs."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    n = len(next(iter(feeds.values())))
    s.run(None, {k: v[:batch] for k, v in feeds.items()})
    spent, outs = 0.0, []
    for i in range(0, n, batch):
        part = {k: v[i:i + batch] for k, v in feeds.items()}
        t = time.perf_counter()
        outs.append(s.run(None, part)[0])
        spent += time.perf_counter() - t
    return spent, np.concatenate(outs)


def ort_library():
    import onnxruntime
    libs = sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so.1*")))
    if not libs:
        sys.exit("no libonnxruntime.so.1.* in the onnxruntime wheel")
    return libs[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", default=os.path.join(REPO, "target/release/hepml"))
    ap.add_argument("--jets", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    if not os.path.exists(a.hepml):
        sys.exit(f"{a.hepml} not found: cargo build --release first")
    for p in (PN, BVL):
        if not os.path.exists(p):
            sys.exit(f"{p} missing (../shared/data beside the checkout)")
    import uproot
    work = os.path.join(REPO, "bench-out", "taggers")
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, f"jets_{a.jets}.root")
    if not os.path.exists(src):
        print(f"generating {src} ...", flush=True)
        make_jets(src, a.jets)
    spec = os.path.join(work, "bvl.yaml")
    bvl_spec(spec)
    ortlib = ort_library()
    models = [("ParticleNet AK4 HLT", os.path.join(PN, "particle-net.onnx"), os.path.join(PN, "preprocess.json"),
               feeds_particlenet, src, True),
              ("DeepDoubleX BvL (GRU)", BVL, spec, feeds_bvl, src, True)]
    # DeepJet (not in ../shared, not a goal of the benchmark): where cached.
    dj_src = os.path.join(work, f"deepjet_jets_{a.jets}.root")
    dj_spec = os.path.join(work, "deepjet.yaml")
    for label, f in DJ_MODELS:
        path = os.path.join(TAGGERS, f)
        if not os.path.exists(path):
            print(f"{label}: left out ({path} missing; see bench_taggers.py)")
            continue
        if not os.path.exists(dj_src):
            make_deepjet_jets(dj_src, a.jets)
        deepjet_spec(dj_spec)
        models.append((label, path, dj_spec, feeds_deepjet, dj_src, False))
    settings = [("native", ["--engine", "native", "--ort-lib", "none"], {}),
                ("auto, no ONNX Runtime", ["--ort-lib", "none"], {}),
                ("auto", [], {"ORT_DYLIB_PATH": ortlib}),
                ("ort", ["--engine", "ort"], {"ORT_DYLIB_PATH": ortlib})]
    n = a.jets
    print(f"{n} jets from jagged branches, batch (--chunk) {a.batch}, {a.threads} threads, best of {a.repeat}; "
          f"ratio = events/s / onnxruntime's (inference calls only)")
    print(f"{'model':24} {'setting':24} {'events/s':>10} {'ratio':>7} {'max|diff|':>10} {'>1e-4':>6}  engine")
    summary, ok = [], True
    for label, model, features, make, jets_file, goal in models:
        feeds, outs = make(uproot.open(jets_file)["jets"])
        t_before, want = time_onnxruntime(model, feeds, a.threads, a.batch)
        rows = []
        for setting, extra, env in settings:
            out = os.path.join(work, "inject_friend.root")
            cmd = [a.hepml, "inject", jets_file, "--tree", "jets", "--model", model, "--features", features, "--friend",
                   "-o", out, "--chunk", str(a.batch), "--threads", str(a.threads)] + extra
            e = {k: v for k, v in os.environ.items() if k != "ORT_DYLIB_PATH"} | env
            wall, _, _, _, stderr = best_child(cmd, a.repeat, out, e)
            got = uproot.open(out)["jets"]
            d = np.max([np.abs(got[b].array(library="np") - want[:, j]) for b, j in outs], axis=0)
            diff = (float(d.max()), int((d > 1e-4).sum()))
            engine = next((line.split("[engine ", 1)[1].split("]")[0] for line in stderr.splitlines()
                           if "[engine " in line), "?")
            rows.append((setting, n / wall, engine, diff))
        t_after, _ = time_onnxruntime(model, feeds, a.threads, a.batch)
        ref = n / min(t_before, t_after)
        print(f"{label:24} {'onnxruntime (Python)':24} {ref:10.0f} {1.0:7.2f} {'':>10}")
        ratios = {}
        for setting, eps, engine, diff in rows:
            print(f"{label:24} {setting:24} {eps:10.0f} {eps / ref:7.2f} {diff[0]:10.2e} {diff[1]:6d}  {engine}")
            ratios[setting] = eps / ref
        native, auto = ratios["native"], ratios["auto"]
        if goal:
            ok &= native >= 1 and auto >= 1
        summary.append(f"{label:24} native {native:.2f}x, auto {auto:.2f}x onnxruntime's events/s"
                       + ("" if goal else " (not a goal)"))
    print("\n".join(["", "goal >= 1x (inject, reading and input building included):"] + summary))
    print(f"speed goals met: {'yes' if ok else 'no'}")


if __name__ == "__main__":
    main()
