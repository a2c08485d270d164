#!/usr/bin/env python3
"""Inputs and onnxruntime outputs for the native EdgeConv evaluator's parity test
(engine/tests/edgeconv.rs), plus altered copies of the model the evaluator must refuse.

  make_edgeconv_cases.py OUTDIR

The model: CMS ParticleNet AK4 HLT in ../shared/data (referenced in place, never copied).
Cases (raw little-endian float32 files, shapes in OUTDIR/manifest.json):
- batches of 1, 7 and 64 events with 1..50 particles and 0..5 secondary vertices (most events
  have fewer than k + 1 real points in some block: their neighbours include padding);
- full events (every particle and vertex real), nearly empty ones (one particle), and events
  with fewer slots (20 particles, 2 vertices: another P);
- a batch of 64 with the bench's distribution (16..50 particles, 1..5 vertices).
onnxruntime runs with one intra-op thread. The altered models (TopK of the smallest, a slice
dropping two neighbours, a second output, a mask compared with 1) change the numbers; the
evaluator must refuse each, naming a node.

Export variants: the model rewritten the ways other ParticleNet exports in cms-data write the
same network, which the evaluator must run and match onnxruntime on (five of the cases each,
with the variant's model named in the case):
`opset14` (axes of ReduceSum/Unsqueeze as inputs, Reshape with allowzero 0), `unfolded_bn`
(a batch norm after every convolution) and `old_masks` (features, points and the stems'
concatenation not masked again, an int64 Cast on the gather indices, the constants of the
index arithmetic behind Identity nodes), `first_exports` and
`no_fusion` (the form of CMS ParticleNetAK8 V00: stems, points and blocks unmasked, a batch
norm of the stems, the mean over every slot, with or without the fusion),
`rows_gather` (the neighbours gathered as rows, weaver's `get_graph_feature_v1`), and
`single_collection` (ParticleNet itself over the particles alone, as the Run 3 scouting
taggers: no stems, a batch norm of the masked features, masked again). Their cases pad
with random values (the first exports' with 0.7) instead of zeros, so what each model masks,
and when, decides the numbers. The first exports' cases with fewer real points than
neighbours (`-tract`) are for a check against tract (see below).
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
from make_engine_models import SHARED, particlenet_feeds  # noqa: E402

MODEL = os.path.join(SHARED, "onnx", "cms-particlenet-ak4-hlt", "particle-net.onnx")


def write_case(out, name, feeds, want):
    """Writes a case's inputs and expected output as raw float32 files: its manifest entry."""
    inputs = {}
    for k, v in feeds.items():
        f = f"{name}.{k}.f32"
        np.ascontiguousarray(v, "<f4").tofile(os.path.join(out, f))
        inputs[k] = {"file": f, "shape": list(v.shape)}
    f = f"{name}.output.f32"
    np.ascontiguousarray(want, "<f4").tofile(os.path.join(out, f))
    return {"name": name, "inputs": inputs, "output": {"file": f, "shape": list(want.shape)}}


def altered(out):
    """Copies of the model with one change each that alters the numbers: name -> path."""
    paths = {}

    def save(name, m):
        p = os.path.join(out, f"altered-{name}.onnx")
        onnx.save(m, p)
        paths[name] = p

    m = onnx.load(MODEL)
    topk = next(n for n in m.graph.node if n.op_type == "TopK")
    next(a for a in topk.attribute if a.name == "largest").i = 0
    save("topk_smallest", m)

    m = onnx.load(MODEL)
    sl = next(n for n in m.graph.node if n.op_type == "Slice" and "edge_convs.1" in n.name)
    start = next(n for n in m.graph.node if sl.input[1] in n.output)
    start.attribute[0].t.CopyFrom(onnx.numpy_helper.from_array(np.array([2], np.int64)))
    save("slice_from_2", m)

    m = onnx.load(MODEL)
    relu = next(n for n in m.graph.node if n.op_type == "Relu")
    m.graph.output.append(onnx.helper.make_tensor_value_info(relu.output[0], 1, None))
    save("second_output", m)

    m = onnx.load(MODEL)
    eq = next(n for n in m.graph.node if n.op_type == "Equal")
    zero = next(n for n in m.graph.node if eq.input[1] in n.output)
    zero.attribute[0].t.CopyFrom(onnx.numpy_helper.from_array(np.array(1.0, np.float32)))
    save("mask_equal_1", m)
    return paths


def bypass(m, node):
    """Removes `node`, its readers taking its first input instead."""
    for n in m.graph.node:
        for i, x in enumerate(n.input):
            if x == node.output[0]:
                n.input[i] = node.input[0]
    m.graph.node.remove(node)


def prune(m):
    """Removes nodes no graph output depends on."""
    while True:
        used = {i for n in m.graph.node for i in n.input} | {o.name for o in m.graph.output}
        dead = [n for n in m.graph.node if not any(o in used for o in n.output)]
        if not dead:
            return
        for n in dead:
            m.graph.node.remove(n)


def node(m, name):
    return next(n for n in m.graph.node if n.name == name)


def batch_norm(m, rng, x, y, name, c, mean_sd=0.1):
    """A BatchNormalization node `name`: y from x over c channels, its random parameters
    (scale, bias, mean, variance) added to m's initializers as `name`_scale, ...; the caller
    places the node."""
    names = [f"{name}_{k}" for k in ("scale", "b", "mean", "var")]
    vals = [rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, mean_sd, c),
            rng.uniform(0.5, 1.5, c)]
    for k, v in zip(names, vals):
        m.graph.initializer.append(numpy_helper.from_array(v.astype(np.float32), k))
    return helper.make_node("BatchNormalization", [x] + names, [y], name=name, epsilon=1e-5)


def variants():
    """The model as other exports write it (see the module header): name -> model."""
    out = {}
    # By hand: onnx's version converter also wraps every Softmax in reshapes, which exports
    # of opset 13+ do not write.
    m = onnx.load(MODEL)
    for n in m.graph.node:
        axes = next((a for a in n.attribute if a.name == "axes"), None)
        if n.op_type in ("ReduceSum", "Unsqueeze", "Squeeze") and axes is not None:
            name = f"{n.name}_axes"
            m.graph.initializer.append(numpy_helper.from_array(np.array(axes.ints, np.int64), name))
            n.attribute.remove(axes)
            n.input.append(name)
        if n.op_type == "Reshape":
            n.attribute.append(helper.make_attribute("allowzero", 0))
    m.opset_import[0].version = 14
    out["opset14"] = m

    m = onnx.load(MODEL)
    rng = np.random.default_rng(14)
    for conv in [n for n in m.graph.node if n.op_type == "Conv"]:
        co = next(numpy_helper.to_array(t) for t in m.graph.initializer
                  if t.name == conv.input[1]).shape[0]
        raw = conv.output[0] + "_raw"
        bn = batch_norm(m, rng, raw, conv.output[0], conv.name + "_bn", co)
        conv.output[0] = raw
        m.graph.node.insert(list(m.graph.node).index(conv) + 1, bn)
    out["unfolded_bn"] = m

    m = onnx.load(MODEL)
    for name in ("/Mul", "/Mul_2", "/pn/Mul", "/pn/Mul_1"):
        bypass(m, node(m, name))
    for g in [n for n in m.graph.node if n.op_type == "Gather"
              and any(a.name == "axis" and a.i == 1 for a in n.attribute)]:
        cast = helper.make_node("Cast", [g.input[1]], [g.input[1] + "_i64"], to=7,
                                name=g.name + "_cast")
        g.input[1] = cast.output[0]
        m.graph.node.insert(list(m.graph.node).index(g), cast)
    # Constants of the index arithmetic read through Identity nodes (torch 1.12 shares one
    # initializer between the blocks so).
    consts = {t.name for t in m.graph.initializer}
    consts |= {n.output[0] for n in m.graph.node if n.op_type == "Constant"}
    for n in [n for n in m.graph.node if n.op_type in ("Concat", "Range")]:
        for i, x in enumerate(n.input):
            if x in consts:
                ident = helper.make_node("Identity", [x], [f"{n.name}_{i}_shared"],
                                         name=f"{n.name}_{i}_identity")
                n.input[i] = ident.output[0]
                m.graph.node.insert(list(m.graph.node).index(n), ident)
    out["old_masks"] = m

    # The first ParticleNet exports (CMS ParticleNetAK8 V00): stems and points unmasked, a
    # batch norm of the stems' concatenation, blocks' outputs unmasked but the last, and the
    # mean over every slot; with the fusion unmasked (`first_exports`) or without a fusion, the
    # first dense layer taking the last block (`no_fusion`).
    for name in ("first_exports", "no_fusion"):
        m = onnx.load(MODEL)
        for b in ("/Mul", "/Mul_2", "/Mul_1", "/Mul_3", "/pn/Mul", "/pn/Mul_1", "/pn/Mul_3",
                  "/pn/Mul_4"):
            bypass(m, node(m, b))
        cat = "/Concat_1_output_0"
        conv = node(m, "/pf_conv/conv/conv.1/Conv")
        c0 = next(numpy_helper.to_array(t) for t in m.graph.initializer
                  if t.name == conv.input[1]).shape[0]
        bn = batch_norm(m, rng, cat, "fts_bn_out", "fts_bn", c0)
        for n in m.graph.node:
            for i, x in enumerate(n.input):
                if x == cat:
                    n.input[i] = "fts_bn_out"
        m.graph.node.insert(list(m.graph.node).index(node(m, "/Concat_1")) + 1, bn)
        div = node(m, "/pn/Div")
        if name == "first_exports":
            bypass(m, node(m, "/pn/Mul_6"))
            pooled = "/pn/fusion_block/fusion_block.2/Relu_output_0"
        else:
            pooled = "/pn/Mul_5_output_0"
            fc0 = node(m, "/pn/fc/fc.0/fc.0.0/Gemm")
            w = next(t for t in m.graph.initializer if t.name == fc0.input[1])
            nout = numpy_helper.to_array(w).shape[0]
            w.CopyFrom(numpy_helper.from_array(
                rng.normal(0, 0.1, (nout, 64)).astype(np.float32), w.name))
        rm = helper.make_node("ReduceMean", [pooled], [div.output[0]], name="pool_mean",
                              axes=[-1], keepdims=0)
        m.graph.node.insert(list(m.graph.node).index(div), rm)
        m.graph.node.remove(div)
        prune(m)
        out[name] = m
    # The neighbours gathered as rows of [N * P, C] reshaped to [N, P, k, C] and transposed by
    # [0, 3, 1, 2] (weaver's get_graph_feature_v1, as the mass-regression exports write it).
    m = onnx.load(MODEL)
    prod = {o: n for n in m.graph.node for o in n.output}

    def perm(n, p):
        next(a for a in n.attribute if a.name == "perm").ints[:] = p

    for nb in [n for n in m.graph.node if n.op_type == "Transpose"
               and list(next(a for a in n.attribute if a.name == "perm").ints) == [1, 0, 2, 3]]:
        perm(nb, [0, 3, 1, 2])
        rs = prod[nb.input[0]]
        shape = prod[rs.input[1]]  # Concat [C, N, P, k] -> [N, P, k, C]
        shape.input[:] = list(shape.input[1:]) + [shape.input[0]]
        gather = prod[rs.input[0]]
        next(a for a in gather.attribute if a.name == "axis").i = 0
        data = prod[gather.input[0]]
        dshape = prod[data.input[1]]  # Concat [C, -1] -> [-1, C]
        dshape.input[:] = list(reversed(dshape.input))
        perm(prod[data.input[0]], [0, 2, 1])
    out["rows_gather"] = m

    # ParticleNet itself over one collection (the Run 3 scouting taggers): no stems, the
    # masked particle features through a batch norm and masked again into the first block,
    # whose convolutions take the features' width.
    m = onnx.load(MODEL)
    c_pf = 23
    for n in m.graph.node:
        for i, x in enumerate(n.input):
            n.input[i] = {"/Concat_output_0": "pf_points", "/Concat_2_output_0": "pf_mask",
                          "/Concat_1_output_0": "fts_bn_out"}.get(x, x)
    m.graph.node.insert(list(m.graph.node).index(node(m, "/pn/Mul_1")),
                        batch_norm(m, rng, "/Mul_output_0", "fts_bn_out", "fts_bn", c_pf,
                                   mean_sd=0.3))
    for conv, ci in (("/pn/edge_convs.0/convs.0/Conv", 2 * c_pf),
                     ("/pn/edge_convs.0/sc/Conv", c_pf)):
        w = next(t for t in m.graph.initializer if t.name == node(m, conv).input[1])
        old = numpy_helper.to_array(w)
        # As spread as the trained weights, so the later layers see what they were made for.
        new = rng.normal(0, old.std(), (old.shape[0], ci) + old.shape[2:])
        w.CopyFrom(numpy_helper.from_array(new.astype(np.float32), w.name))
    for i in [i for i in m.graph.input if i.name.startswith("sv_")]:
        m.graph.input.remove(i)
    prune(m)
    used = {i for n in m.graph.node for i in n.input}
    for t in [t for t in m.graph.initializer if t.name not in used]:
        m.graph.initializer.remove(t)
    out["single_collection"] = m
    for m in out.values():
        onnx.checker.check_model(m)
    return out


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    if not os.path.exists(MODEL):
        sys.exit(f"{MODEL} missing (../shared/data beside the checkout)")
    opts = rt.SessionOptions()
    opts.intra_op_num_threads = 1
    s = rt.InferenceSession(MODEL, opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(2026)
    sets = [("b1_%d" % i, dict(n=1)) for i in range(8)]
    sets += [("b7_%d" % i, dict(n=7)) for i in range(4)]
    sets += [("b64_%d" % i, dict(n=64)) for i in range(6)]
    sets += [
        ("full", dict(n=32, min_pf=50, min_sv=5)),
        ("one_particle", dict(n=16, min_pf=1, min_sv=0, npf=50, nsv=5, max_pf=1)),
        ("p20", dict(n=33, npf=20, nsv=2)),
        ("bench", dict(n=64, min_pf=16, min_sv=1)),
    ]
    cases = []
    for name, kw in sets:
        max_pf = kw.pop("max_pf", None)
        feeds = particlenet_feeds(rng, **kw)
        if max_pf is not None:
            keep = (np.arange(feeds["pf_mask"].shape[2]) < max_pf).astype(np.float32)
            for k in ("pf_mask", "pf_points", "pf_features"):
                feeds[k] = feeds[k] * keep
            for k in ("sv_mask", "sv_points", "sv_features"):
                feeds[k] = feeds[k] * 0
        (want,) = s.run(["output"], feeds)
        cases.append(write_case(out, name, feeds, want))
    picked = [c for c in cases if c["name"] in ("b7_0", "one_particle", "p20", "bench", "full")]
    for name, m in variants().items():
        path = os.path.join(out, f"export-{name}.onnx")
        onnx.save(m, path)
        sv = rt.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        for c in picked:
            wanted = {i.name for i in m.graph.input}
            feeds = {k: np.fromfile(os.path.join(out, v["file"]), "<f4").reshape(v["shape"])
                     for k, v in c["inputs"].items() if k in wanted}
            # Padding that is not zero (as some ntuples pad), which the masks must keep out:
            # random. The first exports' form does not mask its blocks: the padded points'
            # features take part in the neighbour search of events with fewer than k real
            # points, and only a constant padding (what inject writes) leaves the result
            # independent of the order in which each engine sums the distances; 0.7 there.
            first = name in ("first_exports", "no_fusion")
            for coll in [c for c in ("pf", "sv") if f"{c}_mask" in feeds]:
                pad = feeds[f"{coll}_mask"] == 0
                for k in (f"{coll}_features", f"{coll}_points"):
                    x = feeds[k]
                    v = 0.7 if first else rng.normal(0, 3, x.shape)
                    feeds[k] = np.where(pad, v, x).astype(np.float32)
            (want,) = sv.run(["output"], feeds)
            # With fewer real points than k + 1, the first exports' padded points (of two
            # collections, two kinds) enter neighbour lists through exactly equal distances,
            # where ONNX puts the lower index first; onnxruntime's TopK does not always (tract
            # does). Those cases are marked to be checked against tract instead.
            few = first and c["name"] in ("p20", "one_particle")
            vname = f"{name}-{c['name']}" + ("-tract" if few else "")
            vc = write_case(out, vname, feeds, want)
            cases.append(dict(vc, model=os.path.basename(path)))
    man = {"model": MODEL, "cases": cases, "altered": altered(out)}
    with open(os.path.join(out, "manifest.json"), "w") as fh:
        json.dump(man, fh, indent=1)
    print(sum(c["output"]["shape"][0] for c in cases), "events")


if __name__ == "__main__":
    main()
