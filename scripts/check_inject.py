#!/usr/bin/env python3
"""Parity of `hepml inject` with onnxruntime: Python builds each model's inputs on its own
(uproot + numpy), runs onnxruntime, and compares with the branches hepml wrote.

  check_inject.py event MODEL INPUT_ROOT TREE OUTPUT_ROOT OUTTREE SPEC.json
      SPEC.json: {"inputs": {"<input>": ["branch, number or uproot expression", ...]},
                  "outputs": [["<output tensor>", column, "<branch>"], ...],
                  "fold_branch": "event"}   (optional)
      MODEL may be k comma-separated fold models with "fold_branch": event e then takes the
      score of model (e mod k), as `hepml inject --fold-branch` routes it.
  check_inject.py particlenet MODEL PREPROCESS.json LENGTH INPUT_ROOT TREE OUTPUT_ROOT OUTTREE PREFIX
Prints {"max_abs_diff": d, "values": n}; exits 1 if any |diff| > 1e-5 (or lengths differ).
"""
import json
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")
TOL = 1e-5


def one_thread():
    """onnxruntime on one thread: its tree-ensemble sums then follow tree order (with several
    threads the order, and so the last bits, depend on the thread count: up to 3e-5 on a
    regressor of magnitude ~100), the order hepml's native evaluator uses."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return so


def finish(pairs):
    import uproot  # noqa: F401
    worst, n = 0.0, 0
    for name, want, got in pairs:
        want, got = np.asarray(want, dtype=np.float64), np.asarray(got, dtype=np.float64)
        if want.shape != got.shape:
            sys.exit(f"check_inject: {name}: {got.shape} values written, {want.shape} expected")
        d = float(np.max(np.abs(want - got))) if want.size else 0.0
        if not np.isfinite(d):
            sys.exit(f"check_inject: {name}: non-finite difference")
        worst, n = max(worst, d), n + want.size
        if d > TOL:
            i = int(np.argmax(np.abs(want - got)))
            sys.exit(f"check_inject: {name}: |diff| {d:.3g} > {TOL} at {i}: onnxruntime {want.flat[i]} hepml {got.flat[i]}")
    print(json.dumps({"max_abs_diff": worst, "values": n}))


def event(model, inp, tree, out, outtree, spec_path):
    import onnxruntime as ort
    import uproot
    spec = json.load(open(spec_path))
    t = uproot.open(inp)[tree]
    n = int(t.num_entries)  # (a float for ROOT 3-5 trees)
    feeds = {}
    for name, cols in spec["inputs"].items():
        columns = []
        for c in cols:
            try:
                columns.append(np.full(n, float(c)))
            except ValueError:
                if c in t:
                    columns.append(t[c].array(library="np").astype(np.float64))
                elif "." in c and c.rsplit(".", 1)[0] in t:  # a leaf-list column: branch.leaf
                    b, leaf = c.rsplit(".", 1)
                    columns.append(np.asarray(t[b].array(library="np")[leaf], dtype=np.float64))
                else:  # an expression of branches, evaluated by uproot
                    columns.append(np.asarray(t.arrays([c], library="np")[c], dtype=np.float64))
        feeds[name] = np.stack(columns, axis=1).astype(np.float32)
    members = model.split(",")
    fold = np.zeros(n, dtype=np.int64)
    if len(members) > 1:
        fold = np.mod(t[spec["fold_branch"]].array(library="np").astype(np.int64), len(members))
    results = []
    for m in members:
        sess = ort.InferenceSession(m, one_thread(), providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        if all(i.shape[0] == 1 for i in sess.get_inputs()):
            # A graph with its batch fixed at 1: one event per call.
            rows = [sess.run(None, {k: v[i:i + 1] for k, v in feeds.items()}) for i in range(n)]
            results.append({o: np.concatenate([r[j] for r in rows]) for j, o in enumerate(names)})
        else:
            results.append(dict(zip(names, sess.run(None, feeds))))
    o = uproot.open(out)[outtree]
    pairs = []
    for tensor, col, branch in spec["outputs"]:
        per = [np.asarray(r[tensor], dtype=np.float64).reshape(n, -1)[:, col] for r in results]
        want = np.choose(fold, per)
        pairs.append((branch, want, o[branch].array(library="np")))
    finish(pairs)


def particlenet(model, pre_path, length, inp, tree, out, outtree, prefix):
    import onnxruntime as ort
    import uproot
    import awkward as ak
    pre = json.load(open(pre_path))
    length = int(length)
    t = uproot.open(inp)[tree]
    n = int(t.num_entries)  # (a float for ROOT 3-5 trees)
    feeds = {}
    groups = pre["input_names"]
    for g in groups:
        info = pre[g]
        names = info["var_names"]
        if len(names) == 1 and names[0].endswith("mask"):
            continue
        x = np.zeros((n, len(names), length), dtype=np.float32)
        for vi, v in enumerate(names):
            vinfo = info["var_infos"][v]
            arr = t[v].array(library="ak")
            padded = ak.to_numpy(ak.fill_none(ak.pad_none(arr, length, clip=True), np.nan)).astype(np.float32)
            real = ~np.isnan(padded)
            vals = np.where(np.isinf(padded), np.float32(vinfo["replace_inf_value"]), padded)
            vals = (vals - np.float32(vinfo["median"])) * np.float32(vinfo["norm_factor"])
            vals = np.clip(vals, np.float32(vinfo["lower_bound"]), np.float32(vinfo["upper_bound"]))
            x[:, vi, :] = np.where(real, vals, np.float32(vinfo["pad"]))
        feeds[g] = x
    for g in groups:
        names = pre[g]["var_names"]
        if len(names) == 1 and names[0].endswith("mask"):
            prefix_g = g.split("_")[0]
            src = next(h for h in groups if h.split("_")[0] == prefix_g and h != g and not pre[h]["var_names"][0].endswith("mask"))
            counts = ak.to_numpy(ak.num(t[pre[src]["var_names"][0]].array(library="ak")))
            feeds[g] = (np.arange(length)[None, None, :] < counts[:, None, None]).astype(np.float32)
    sess = ort.InferenceSession(model, one_thread(), providers=["CPUExecutionProvider"])
    # A model taking [N, C, L, 1] (MXNet's layout) gets the same values in that shape.
    ranks = {i.name: len(i.shape) for i in sess.get_inputs()}
    feeds = {k: v.reshape(v.shape + (1,) * (ranks[k] - v.ndim)) for k, v in feeds.items()}
    res = sess.run(None, feeds)[0]
    o = uproot.open(out)[outtree]
    pairs = [(f"{prefix}{lab}", res[:, j], o[f"{prefix}{lab}"].array(library="np")) for j, lab in enumerate(pre["output_names"])]
    finish(pairs)


if __name__ == "__main__":
    kind, args = sys.argv[1], sys.argv[2:]
    {"event": event, "particlenet": particlenet}[kind](*args)
