#!/usr/bin/env python3
"""Inputs and onnxruntime outputs for the native evaluator's parity test on GRUs
(engine/tests/recurrent.rs), plus altered copies of the model: some it must run (other GRU
settings it implements, checked against onnxruntime too), some it must refuse.

  make_recurrent_cases.py OUTDIR

The model: CMS DeepDoubleX BvL in ../shared/data (referenced in place, never copied).
Cases (raw little-endian float32 files, shapes in OUTDIR/manifest.json):
- batches of 1, 7, 64 and 65 events with the sequences zero-padded to random lengths (as
  bench_taggers feeds them);
- full sequences, empty ones (all zeros), and inputs five times wider (saturated gates);
- for each implemented variant (GRUs with linear_before_reset 1, direction forward, Sigmoid
  gates, clip 0.5; the layout keras2onnx 1.6 writes, as in DeepDoubleX 94X V01: transposes
  around each convolution, the activations on [N, L, C]; a padded convolution of kernel size
  3 before a GRU) a batch of 65.
onnxruntime runs with one intra-op thread. The refused variants (a Relu or Softsign
activation, bidirectional, sequence_lens or initial_h given, a dilated convolution) must each
be refused naming what does not fit.
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as rt
from onnx import helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_edgeconv_cases import write_case  # noqa: E402
from make_engine_models import SHARED, bvl_feeds  # noqa: E402

MODEL = os.path.join(SHARED, "onnx", "cms-deepdoublex-bvl", "BvL.onnx")


def set_attr(node, name, value):
    """Replaces (or adds) attribute `name` of `node`."""
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    if value is not None:
        node.attribute.append(helper.make_attribute(name, value))


def grus(m):
    return [n for n in m.graph.node if n.op_type == "GRU"]


def conv_kernel_3(**attrs):
    """The model with its first convolution widened to kernel 3 (the pointwise weights spread
    over the taps), with `attrs` set on it."""
    m = onnx.load(MODEL)
    conv = next(n for n in m.graph.node if n.op_type == "Conv")
    w = next(t for t in m.graph.initializer if t.name == conv.input[1])
    k = numpy_helper.to_array(w)
    w.CopyFrom(numpy_helper.from_array(np.concatenate([k, k, k], axis=2) / 3, w.name))
    set_attr(conv, "kernel_shape", [3])
    for name, value in attrs.items():
        set_attr(conv, name, value)
    return m


def transposed_layout(m):
    """`m` as keras2onnx 1.6 writes it (CMS DeepDoubleX 94X V01): each convolution between a
    transpose to channels-first and one back, the ReLU and an Identity (a Dropout at inference)
    on the [N, L, C] value, the GRUs reading it through Transpose(., [1, 0, 2]), and the
    flattened input a Reshape to [-1, C]."""
    nodes = list(m.graph.node)
    new = []
    back = set()  # outputs of the transposes back to channels-first

    def t(x, name):
        new.append(helper.make_node("Transpose", [x], [name], name=name, perm=[0, 2, 1]))
        return name

    conv_outs = {n.output[0] for n in nodes if n.op_type == "Conv"}
    readers = {}
    for n in nodes:
        for i, x in enumerate(n.input):
            readers.setdefault(x, []).append((n, i))
    for n in nodes:
        if n.op_type == "Flatten":
            shape = f"{n.name}_shape"
            width = np.array([-1, 5], np.int64)  # input_1 [N, 1, 5]
            m.graph.initializer.append(numpy_helper.from_array(width, shape))
            new.append(helper.make_node("Reshape", [n.input[0], shape], list(n.output),
                                        name=n.name))
            continue
        if n.op_type == "Conv" and n.input[0] not in back:
            n.input[0] = t(t(n.input[0], f"{n.name}_to_nlc"), f"{n.name}_to_ncl")
        if n.op_type == "Conv":
            out = n.output[0]
            n.output[0] = f"{out}_ncl"
            new.append(n)
            t(n.output[0], out)
            continue
        if n.op_type == "Relu" and n.input[0] in conv_outs:
            new.append(n)
            ident = f"{n.name}_dropout"
            new.append(helper.make_node("Identity", [n.output[0]], [ident], name=ident))
            for r, i in readers.get(n.output[0], []):
                if r.op_type == "Transpose":  # the GRU's PushTranspose [2, 0, 1]
                    r.input[i] = ident
                    set_attr(r, "perm", [1, 0, 2])
                else:
                    r.input[i] = t(ident, f"{n.name}_back")
                    back.add(r.input[i])
            continue
        new.append(n)
    del m.graph.node[:]
    m.graph.node.extend(new)
    return m


def variants():
    """Altered models: name -> (model, runs natively)."""
    out = {}

    m = onnx.load(MODEL)
    for n in grus(m):
        set_attr(n, "linear_before_reset", 1)
    out["linear_before_reset"] = (m, True)

    m = onnx.load(MODEL)
    for n in grus(m):
        set_attr(n, "direction", "forward")
    out["forward"] = (m, True)

    m = onnx.load(MODEL)
    for n in grus(m):
        set_attr(n, "activations", ["Sigmoid", "Tanh"])
        set_attr(n, "activation_alpha", None)
        set_attr(n, "activation_beta", None)
    out["sigmoid_gates"] = (m, True)

    m = onnx.load(MODEL)
    for n in grus(m):
        set_attr(n, "clip", 0.5)
    out["clip"] = (m, True)

    m = onnx.load(MODEL)
    set_attr(grus(m)[1], "activations", ["HardSigmoid", "Relu"])
    out["candidate_relu"] = (m, False)

    m = onnx.load(MODEL)
    set_attr(grus(m)[0], "activations", ["Softsign", "Tanh"])
    set_attr(grus(m)[0], "activation_alpha", None)
    set_attr(grus(m)[0], "activation_beta", None)
    out["gates_softsign"] = (m, False)

    m = onnx.load(MODEL)
    set_attr(grus(m)[2], "direction", "bidirectional")
    out["bidirectional"] = (m, False)

    m = onnx.load(MODEL)
    g = grus(m)[0]
    m.graph.initializer.append(numpy_helper.from_array(np.full((1,), 60, np.int32), "seq_lens"))
    g.input[4] = "seq_lens"
    out["sequence_lens"] = (m, False)

    m = onnx.load(MODEL)
    g = grus(m)[2]
    m.graph.initializer.append(numpy_helper.from_array(np.zeros((1, 1, 50), np.float32), "h0"))
    g.input[5] = "h0"
    out["initial_h"] = (m, False)

    out["keras2onnx_1_6"] = (transposed_layout(onnx.load(MODEL)), True)
    out["conv_kernel_3"] = (conv_kernel_3(pads=[1, 1]), True)
    out["conv_dilation_2"] = (conv_kernel_3(pads=[2, 2], dilations=[2]), False)
    return out


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    if not os.path.exists(MODEL):
        sys.exit(f"{MODEL} missing (../shared/data beside the checkout)")
    opts = rt.SessionOptions()
    opts.intra_op_num_threads = 1

    def session(path):
        return rt.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    rng = np.random.default_rng(2027)
    sets = [("b1_%d" % i, MODEL, 1) for i in range(6)]
    sets += [("b7_%d" % i, MODEL, 7) for i in range(4)]
    sets += [("b64_%d" % i, MODEL, 64) for i in range(4)]
    sets += [("b65_%d" % i, MODEL, 65) for i in range(2)]
    sets += [("full", MODEL, 32), ("empty", MODEL, 16), ("wide", MODEL, 33)]
    altered = {}
    for name, (m, native) in variants().items():
        p = os.path.join(out, f"altered-{name}.onnx")
        onnx.save(m, p)
        altered[name] = {"model": os.path.basename(p), "native": native}
        if native:
            sets.append((f"variant_{name}", p, 65))
    cases = []
    sessions = {}
    for name, model, n in sets:
        feeds = bvl_feeds(rng, n)
        if name == "full":
            feeds = {k: rng.normal(0, 1, v.shape).astype(np.float32) for k, v in feeds.items()}
        elif name == "empty":
            feeds = {k: v * (k == "input_1") for k, v in feeds.items()}
        elif name == "wide":
            feeds = {k: v * 5 for k, v in feeds.items()}
        if model not in sessions:
            sessions[model] = session(model)
        (want,) = sessions[model].run(["ID_pred"], feeds)
        case = write_case(out, name, feeds, want)
        case["model"] = model if model == MODEL else os.path.basename(model)
        cases.append(case)
    man = {"model": MODEL, "cases": cases, "altered": altered}
    with open(os.path.join(out, "manifest.json"), "w") as fh:
        json.dump(man, fh, indent=1)
    print(sum(c["output"]["shape"][0] for c in cases), "events")


if __name__ == "__main__":
    main()
