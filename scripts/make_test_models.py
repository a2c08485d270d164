#!/usr/bin/env python3
"""Models and ntuples for the inject parity tests (real exporters, no hand-tuned weights).

  make_test_models.py OUTDIR

- mlp.onnx: sklearn MLPClassifier (5-16-16-2) trained on uproot-Zmumu.root features
  [E1, px1, py1, pz1, pt1] (label: M > 90), exported by skl2onnx (zipmap off): input 'x',
  outputs 'label', 'probabilities'.
- pnn.onnx: a parameterised NN with two inputs, 'features' [N,5] and 'mass' [N,1], built with
  onnx.helper from the weights of an sklearn MLPClassifier trained on features + mass;
  output 'score' [N,1] (sigmoid).
- pfcands.root: a per-jet ntuple with the jagged PF-candidate and SV branches the CMS
  ParticleNet preprocess.json names (written by uproot), for feeding the real ParticleNet.
- cnn4d.onnx: a 1-D CNN in MXNet's layout (DeepBoostedJet's): inputs `[N, C, 25, 1]` named as
  tests/data/gnn-topk/preprocess.json names them (pf_points 2, pf_features 5, pf_mask 1
  channels), concatenated, two (3, 1) convolutions (the second of stride 2) with batch norm
  and ReLU, global average pooling, Gemm, Softmax `softmax` [N, 2]; random weights, seeded.
"""
import json
import os
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "data")


def cnn4d_model(path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(31)
    inits = []

    def init(name, v):
        inits.append(numpy_helper.from_array(np.asarray(v, np.float32), name))
        return name

    def conv(x, name, ci, co, stride):
        w = init(f"{name}_w", rng.normal(0, np.sqrt(2 / (3 * ci)), (co, ci, 3, 1)))
        return helper.make_node("Conv", [x, w, init(f"{name}_b", rng.normal(0, 0.1, co))], [name],
                                kernel_shape=[3, 1], pads=[1, 0, 1, 0], strides=[stride, stride])

    def bn(x, name, c):
        ins = [x, init(f"{name}_g", rng.uniform(0.6, 1.4, c)), init(f"{name}_be", rng.normal(0, 0.2, c)),
               init(f"{name}_m", rng.normal(0, 0.3, c)), init(f"{name}_v", rng.uniform(0.5, 2, c))]
        return helper.make_node("BatchNormalization", ins, [name], epsilon=1e-5)

    inputs = {"pf_points": 2, "pf_features": 5, "pf_mask": 1}
    nodes = [
        helper.make_node("Concat", list(inputs), ["cat"], axis=1),
        conv("cat", "c1", 8, 16, 1), bn("c1", "b1", 16), helper.make_node("Relu", ["b1"], ["r1"]),
        conv("r1", "c2", 16, 16, 2), bn("c2", "b2", 16), helper.make_node("Relu", ["b2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", init("fc_w", rng.normal(0, 0.5, (2, 16))),
                                  init("fc_b", rng.normal(0, 0.1, 2))], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["softmax"], axis=1),
    ]
    g = helper.make_graph(
        nodes, "cnn4d",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", c, 25, 1]) for n, c in inputs.items()],
        [helper.make_tensor_value_info("softmax", TensorProto.FLOAT, ["N", 2])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, path)


def main(out):
    import onnx
    import uproot
    import awkward as ak
    from onnx import helper, TensorProto, numpy_helper
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier

    os.makedirs(out, exist_ok=True)
    t = uproot.open(os.path.join(SHARED, "root", "uproot-Zmumu.root"))["events"]
    a = t.arrays(["E1", "px1", "py1", "pz1", "pt1", "M"], library="np")
    X = np.stack([a[k] for k in ["E1", "px1", "py1", "pz1", "pt1"]], axis=1).astype(np.float32)
    y = (a["M"] > 90).astype(int)
    mu, sd = X.mean(0), X.std(0)
    clf = MLPClassifier((16, 16), max_iter=200, random_state=1).fit((X - mu) / sd, y)
    # Standardisation folded into the first layer so the model takes raw branch values.
    W0 = clf.coefs_[0] / sd[:, None]
    b0 = clf.intercepts_[0] - (mu / sd) @ clf.coefs_[0]
    clf.coefs_[0], clf.intercepts_[0] = W0.astype(np.float64), b0.astype(np.float64)
    m = to_onnx(clf, X[:1], options={id(clf): {"zipmap": False}}, target_opset=15)
    m.graph.input[0].name = "x"
    for node in m.graph.node:
        node.input[:] = ["x" if i == "X" else i for i in node.input]
    m.metadata_props.add(key="hepml.note", value="sklearn MLPClassifier via skl2onnx")
    onnx.save(m, os.path.join(out, "mlp.onnx"))
    # The same classifier exported for one event at a time (a batch fixed at 1, as
    # torch.onnx.export without dynamic_axes writes it).
    from skl2onnx.common.data_types import FloatTensorType
    m1 = to_onnx(clf, initial_types=[("x", FloatTensorType([1, X.shape[1]]))],
                 options={id(clf): {"zipmap": False}}, target_opset=15)
    assert m1.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    onnx.save(m1, os.path.join(out, "mlp_b1.onnx"))
    # A second member for a 2-fold ensemble: trained on odd events only (fold 0 scores even).
    odd = (np.arange(len(X)) % 2) == 1
    clf2 = MLPClassifier((16, 16), max_iter=200, random_state=7).fit((X[odd] - mu) / sd, y[odd])
    clf2.coefs_[0] = (clf2.coefs_[0] / sd[:, None]).astype(np.float64)
    clf2.intercepts_[0] = (clf2.intercepts_[0] - (mu / sd) @ (clf2.coefs_[0] * sd[:, None])).astype(np.float64)
    m2 = to_onnx(clf2, X[:1], options={id(clf2): {"zipmap": False}}, target_opset=15)
    m2.graph.input[0].name = "x"
    for node in m2.graph.node:
        node.input[:] = ["x" if i == "X" else i for i in node.input]
    onnx.save(m2, os.path.join(out, "mlp_b.onnx"))

    # PNN: features + mass -> two hidden layers -> sigmoid score.
    rng = np.random.default_rng(2)
    mass = rng.choice([60.0, 90.0, 120.0], size=len(X)).astype(np.float32)
    Xp = np.concatenate([X, mass[:, None]], axis=1)
    mu2, sd2 = Xp.mean(0), Xp.std(0)
    pnn = MLPClassifier((12, 8), max_iter=200, random_state=3).fit((Xp - mu2) / sd2, (a["M"] > mass).astype(int))
    Ws = [w.astype(np.float32) for w in pnn.coefs_]
    bs = [b.astype(np.float32) for b in pnn.intercepts_]
    bs[0] = bs[0] - (mu2 / sd2).astype(np.float32) @ Ws[0]
    Ws[0] = Ws[0] / sd2[:, None].astype(np.float32)
    inits, nodes, prev = [], [helper.make_node("Concat", ["features", "mass"], ["x"], axis=1)], "x"
    for i, (W, b) in enumerate(zip(Ws, bs)):
        inits += [numpy_helper.from_array(W, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [f"h{i}"]))
        prev = f"h{i}"
        if i < len(Ws) - 1:
            nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
            prev = f"r{i}"
    nodes.append(helper.make_node("Sigmoid", [prev], ["score"]))
    g = helper.make_graph(nodes, "pnn", [
        helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 5]),
        helper.make_tensor_value_info("mass", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])], inits)
    pm = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)], producer_name="sklearn+onnx.helper")
    pm.ir_version = 8
    onnx.checker.check_model(pm)
    onnx.save(pm, os.path.join(out, "pnn.onnx"))

    # BDTs (tree ensembles): binary GBC 100 trees depth 3, 3-class random forest, regressor.
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier
    three = (a["M"] > 85).astype(int) + (a["M"] > 95).astype(int)
    for name, est, target in (("bdt", GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=1), y),
                              ("rf3", RandomForestClassifier(n_estimators=20, max_depth=4, random_state=1), three),
                              ("gbr", GradientBoostingRegressor(n_estimators=50, max_depth=3, random_state=1), a["M"])):
        est.fit(X, target)
        opts = {id(est): {"zipmap": False}} if name != "gbr" else None
        bm = to_onnx(est, X[:1], options=opts, target_opset={"": 15, "ai.onnx.ml": 3})
        bm.graph.input[0].name = "x"
        for node in bm.graph.node:
            node.input[:] = ["x" if i == "X" else i for i in node.input]
        onnx.save(bm, os.path.join(out, f"{name}.onnx"))

    # xgboost BDTs (onnxmltools: TreeEnsembleClassifier with base_score, TreeEnsembleRegressor).
    import xgboost
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType
    for name, est, target in (("xgb", xgboost.XGBClassifier(n_estimators=100, max_depth=3, random_state=1), y),
                              ("xgbr", xgboost.XGBRegressor(n_estimators=50, max_depth=3, random_state=1), a["M"])):
        est.fit(X, target)
        xm = convert_xgboost(est, initial_types=[("x", FloatTensorType([None, X.shape[1]]))], target_opset=15)
        onnx.save(xm, os.path.join(out, f"{name}.onnx"))

    # A per-jet tagger: one row per jet, [Jet_Px, Jet_Py, Jet_E] -> sigmoid score.
    W = rng.normal(0, 0.05, (3, 1)).astype(np.float32)
    jg = helper.make_graph(
        [helper.make_node("Gemm", ["jet", "Wj", "bj"], ["z"]), helper.make_node("Sigmoid", ["z"], ["jet_score"])],
        "jet", [helper.make_tensor_value_info("jet", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("jet_score", TensorProto.FLOAT, ["N", 1])],
        [numpy_helper.from_array(W, "Wj"), numpy_helper.from_array(np.array([0.1], np.float32), "bj")])
    jm = helper.make_model(jg, opset_imports=[helper.make_opsetid("", 13)])
    jm.ir_version = 8
    onnx.save(jm, os.path.join(out, "jet.onnx"))

    # Jets with PF candidates and SVs named as ParticleNet's preprocess.json says.
    pre = json.load(open(os.path.join(SHARED, "onnx", "cms-particlenet-ak4-hlt", "preprocess.json")))
    n = 300
    npf = rng.integers(0, 40, n)
    nsv = rng.integers(0, 4, n)
    data = {}
    for group, counts in (("pf_points", npf), ("pf_features", npf), ("sv_points", nsv), ("sv_features", nsv)):
        for v in pre[group]["var_names"]:
            if v in data:
                continue
            vals = rng.normal(0, 1.5, int(counts.sum())).astype(np.float32)
            if v.endswith("_log"):
                vals = vals + 2.0
            data[v] = ak.unflatten(vals, counts)
    with uproot.recreate(os.path.join(out, "pfcands.root")) as f:
        f.mktree("jets", {k: "var * float32" for k in data} | {"event": np.int64})
        f["jets"].extend(dict(data, event=np.arange(n, dtype=np.int64)))
    cnn4d_model(os.path.join(out, "cnn4d.onnx"))
    print(json.dumps({"mlp_inputs": [i.name for i in m.graph.input], "pf_jets": n}))


if __name__ == "__main__":
    main(sys.argv[1])
