#!/usr/bin/env python3
"""Models, inputs and onnxruntime reference outputs for the engine parity tests
(engine/tests/engine.rs).

  make_engine_models.py OUTDIR

Writes OUTDIR/manifest.json: one case per model, each with the model path, the routing the
Rust side should pick ("tract", "trees", or "ort" for a model only ONNX Runtime runs exactly), its inputs and onnxruntime's outputs as .npy files
(float32; int64 labels cast to float32; a ZipMap output as its [N, classes] matrix in class-label
order). The real CMS models are referenced in place (../shared/data beside the checkout), never
copied.

Models (real exporters, no hand-tuned weights, except the hand-written tree ensembles that
exercise the corners of the TreeEnsemble operators sklearn never emits):
- mlp_5_20_20_1, mlp_80_100_100_1: sklearn MLPClassifier via skl2onnx (zipmap off).
- pnn: two named inputs 'features' [N,5] and 'mass' [N,1], onnx.helper graph with the weights of
  an sklearn MLPClassifier trained on features + mass.
- gbc: GradientBoostingClassifier, 100 trees of depth 3 (zipmap off); gbc_zipmap: the same
  estimator with skl2onnx's default ZipMap; gbc3: 3 classes; gbr: GradientBoostingRegressor;
  rfc, rfc3: RandomForestClassifier (2 and 3 classes); rfr: RandomForestRegressor; dtc: a
  DecisionTreeClassifier.
- trees_*: onnx.helper tree ensembles with every node mode, NaN inputs and missing-value tracks,
  values exactly on thresholds, every post_transform, base_values of each length, binary
  classifiers with positive or mixed weights and multi-target regressors.
- particlenet (CMS ParticleNet AK4 HLT) and bvl (CMS DeepDoubleX BvL, a Keras GRU model) on
  random but valid inputs (masks consistent with the padding). tract cannot run BvL exactly
  (its GRUs use HardSigmoid and direction=reverse, which tract 0.23 ignores); the native
  1-D CNN/RNN evaluator does.
"""
import json
import os
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data"))


def ort_run(path, feeds):
    import onnxruntime as rt

    opts = rt.SessionOptions()
    opts.intra_op_num_threads = 1
    s = rt.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    outs = s.run(names, feeds)
    return names, outs


def to_matrix(name, value):
    """onnxruntime output -> float32 array (ZipMap: list of {label: p} -> [N, classes])."""
    if isinstance(value, list):
        if not value:
            return np.zeros((0, 0), np.float32)
        keys = sorted(value[0].keys())
        return np.array([[row[k] for k in keys] for row in value], dtype=np.float32)
    return np.asarray(value).astype(np.float32)


class Writer:
    def __init__(self, out):
        self.out = out
        self.cases = []

    def case(self, name, model_path, route, feeds):
        names, outs = ort_run(model_path, feeds)
        inputs, outputs = {}, {}
        for k, v in feeds.items():
            f = f"{name}.in.{k}.npy"
            np.save(os.path.join(self.out, f), np.ascontiguousarray(v, dtype=np.float32))
            inputs[k] = f
        for k, v in zip(names, outs):
            f = f"{name}.out.{k}.npy"
            np.save(os.path.join(self.out, f), np.ascontiguousarray(to_matrix(k, v)))
            outputs[k] = f
        self.cases.append(
            {"name": name, "model": model_path, "route": route, "inputs": inputs, "outputs": outputs}
        )

    def save_model(self, name, model):
        import onnx

        p = os.path.join(self.out, f"{name}.onnx")
        onnx.save(model, p)
        return p


def rename_input(m, old="X", new="x"):
    m.graph.input[0].name = new
    for node in m.graph.node:
        node.input[:] = [new if i == old else i for i in node.input]
    return m


def sklearn_models(w, rng):
    from skl2onnx import to_onnx
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.neural_network import MLPClassifier
    from sklearn.tree import DecisionTreeClassifier

    nozip = lambda est: {id(est): {"zipmap": False}}  # noqa: E731
    ops = {"": 15, "ai.onnx.ml": 3}

    # MLPs: a small one on 5 physics-like features, a wide one on 80.
    for name, n_in, hidden, iters in (("mlp_5_20_20_1", 5, (20, 20), 200), ("mlp_80_100_100_1", 80, (100, 100), 30)):
        X = rng.normal(0, 1, (2000, n_in)).astype(np.float32) * rng.uniform(0.5, 50, n_in).astype(np.float32)
        y = (X[:, 0] / X[:, 0].std() + np.sin(X[:, 1] / X[:, 1].std()) > 0).astype(int)
        clf = MLPClassifier(hidden, max_iter=iters, random_state=1).fit(X / X.std(0), y)
        clf.coefs_[0] = clf.coefs_[0] / X.std(0)[:, None]  # raw inputs in, as a tagger gets them
        m = rename_input(to_onnx(clf, X[:1], options=nozip(clf), target_opset=15))
        m.metadata_props.add(key="hepml.features", value=json.dumps({"x": [f"f{i}" for i in range(n_in)]}))
        w.case(name, w.save_model(name, m), "native", {"x": X[:257]})

    # PNN: features + mass, weights from sklearn, graph written with onnx.helper.
    from onnx import TensorProto, helper, numpy_helper

    X = rng.normal(0, 1, (3000, 5)).astype(np.float32)
    mass = rng.choice([60.0, 90.0, 120.0], size=len(X)).astype(np.float32)
    Xp = np.concatenate([X, mass[:, None]], axis=1)
    mu, sd = Xp.mean(0), Xp.std(0)
    pnn = MLPClassifier((12, 8), max_iter=200, random_state=3).fit((Xp - mu) / sd, (X[:, 0] * 30 + 90 > mass).astype(int))
    Ws = [c.astype(np.float32) for c in pnn.coefs_]
    bs = [b.astype(np.float32) for b in pnn.intercepts_]
    bs[0] = bs[0] - (mu / sd).astype(np.float32) @ Ws[0]
    Ws[0] = Ws[0] / sd[:, None].astype(np.float32)
    nodes, inits, prev = [helper.make_node("Concat", ["features", "mass"], ["x"], axis=1)], [], "x"
    for i, (W, b) in enumerate(zip(Ws, bs)):
        inits += [numpy_helper.from_array(W, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [f"h{i}"]))
        prev = f"h{i}"
        if i < len(Ws) - 1:
            nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
            prev = f"r{i}"
    nodes.append(helper.make_node("Sigmoid", [prev], ["score"]))
    g = helper.make_graph(
        nodes,
        "pnn",
        [
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 5]),
            helper.make_tensor_value_info("mass", TensorProto.FLOAT, ["N", 1]),
        ],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])],
        inits,
    )
    pm = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)], producer_name="sklearn+onnx.helper")
    pm.ir_version = 8
    pm.metadata_props.add(key="hepml.note", value="PNN: features + mass")
    w.case("pnn", w.save_model("pnn", pm), "native", {"features": X[:300], "mass": mass[:300, None]})

    # Every other operator the native dense evaluator takes, as a torch export writes them:
    # standardisation (Sub/Div by constants), MatMul + Add, Tanh, Elu, Selu, LeakyRelu, Gemm with
    # transB/alpha/beta, Softmax; random weights (operator parity, not a trained model).
    n_in = 7
    mu, sd = rng.normal(0, 5, n_in).astype(np.float32), rng.uniform(0.5, 20, n_in).astype(np.float32)
    Xs = (rng.normal(0, 1, (300, n_in)) * sd + mu).astype(np.float32)
    W = [rng.normal(0, 0.4, s).astype(np.float32) for s in ((n_in, 33), (33, 17), (17, 9), (3, 9))]
    b = [rng.normal(0, 0.1, s).astype(np.float32) for s in (33, 17, 9, 3)]
    inits = [numpy_helper.from_array(v, n) for v, n in ((mu, "mu"), (sd, "sd"))]
    inits += [numpy_helper.from_array(v, f"W{i}") for i, v in enumerate(W)]
    inits += [numpy_helper.from_array(v, f"b{i}") for i, v in enumerate(b)]
    nodes = [
        helper.make_node("Sub", ["x", "mu"], ["c"]),
        helper.make_node("Div", ["c", "sd"], ["z"]),
        helper.make_node("MatMul", ["z", "W0"], ["m0"]),
        helper.make_node("Add", ["m0", "b0"], ["a0"]),
        helper.make_node("Tanh", ["a0"], ["t0"]),
        helper.make_node("MatMul", ["t0", "W1"], ["m1"]),
        helper.make_node("Add", ["b1", "m1"], ["a1"]),
        helper.make_node("Elu", ["a1"], ["e1"], alpha=0.7),
        helper.make_node("Gemm", ["e1", "W2", "b2"], ["g2"], alpha=0.9, beta=1.1),
        helper.make_node("Selu", ["g2"], ["s2"]),
        helper.make_node("LeakyRelu", ["s2"], ["l2"], alpha=0.2),
        helper.make_node("Gemm", ["l2", "W3", "b3"], ["g3"], transB=1),
        helper.make_node("Mul", ["g3", "g3"], ["sq"]),
        helper.make_node("Softmax", ["sq"], ["probs"], axis=-1),
        helper.make_node("Flatten", ["t0"], ["hidden"], axis=1),
    ]
    g = helper.make_graph(
        nodes,
        "dense_ops",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_in])],
        [
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["N", 33]),
        ],
        inits,
    )
    dm = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)], producer_name="onnx.helper")
    dm.ir_version = 8
    w.case("dense_ops", w.save_model("dense_ops", dm), "native", {"x": Xs})

    # BDTs.
    X = rng.normal(0, 1, (3000, 5)).astype(np.float32) * np.float32([40, 30, 30, 100, 25])
    y = (X[:, 0] / 40 + X[:, 1] / 30 * X[:, 2] / 30 > 0.2).astype(int)
    y3 = (X[:, 0] > 0).astype(int) + (X[:, 3] > 50).astype(int)
    reg = X[:, 0] * 0.5 + np.abs(X[:, 4])
    xt = X[:500].copy()
    xt[:7] = X[500:507]
    for name, est, target, zip_ in (
        ("gbc", GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=1), y, False),
        ("gbc_zipmap", GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=1), y, True),
        ("gbc3", GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=1), y3, False),
        ("rfc", RandomForestClassifier(n_estimators=30, max_depth=5, random_state=1), y, False),
        ("rfc3", RandomForestClassifier(n_estimators=20, max_depth=4, random_state=1), y3, False),
        ("dtc", DecisionTreeClassifier(max_depth=6, random_state=1), y, False),
        ("gbr", GradientBoostingRegressor(n_estimators=50, max_depth=3, random_state=1), reg, None),
        ("rfr", RandomForestRegressor(n_estimators=20, max_depth=5, random_state=1), reg, None),
    ):
        est.fit(X, target)
        opts = None if zip_ in (None, True) else nozip(est)
        m = rename_input(to_onnx(est, X[:1], options=opts, target_opset=ops))
        w.case(name, w.save_model(name, m), "trees", {"x": xt})


def hand_trees(w, rng):
    """Tree ensembles written with onnx.helper: the operator corners sklearn never emits."""
    from onnx import TensorProto, helper

    # Two small trees over 4 features using every branch mode, values on the thresholds and
    # NaNs; missing-value tracks on some nodes.
    #   tree 0: n0 LEQ f0<=0.5 ? n1 : n2 ; n1 LT f1<1 ? leaf3 : leaf4 ; n2 GTE f2>=-1 ? n5 : leaf6
    #           n5 GT f3>2 ? leaf7 : leaf8
    #   tree 1: n0 EQ f1==1 ? leaf1 : n2 ; n2 NEQ f3!=0 ? leaf3 : leaf4
    nodes = dict(
        nodes_treeids=[0] * 9 + [1] * 5,
        nodes_nodeids=list(range(9)) + list(range(5)),
        nodes_featureids=[0, 1, 2, 0, 0, 3, 0, 0, 0, 1, 0, 3, 0, 0],
        nodes_values=[0.5, 1.0, -1.0, 0, 0, 2.0, 0, 0, 0, 1.0, 0, 0.0, 0, 0],
        nodes_modes=["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "LEAF", "LEAF", "BRANCH_GT", "LEAF", "LEAF", "LEAF",
                     "BRANCH_EQ", "LEAF", "BRANCH_NEQ", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 3, 5, 0, 0, 7, 0, 0, 0, 1, 0, 3, 0, 0],
        nodes_falsenodeids=[2, 4, 6, 0, 0, 8, 0, 0, 0, 2, 0, 4, 0, 0],
        nodes_missing_value_tracks_true=[1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
    )
    leaves = [(0, 3), (0, 4), (0, 6), (0, 7), (0, 8), (1, 1), (1, 3), (1, 4)]
    vals = np.array([0.5, 1.0, -1.0, 2.0, 0.0, 1.5, np.nan], np.float32)
    x = rng.choice(vals, size=(400, 4)).astype(np.float32)
    x[:50] = rng.normal(0, 2, (50, 4))

    def weights(n_out, positive, scale=1.0):
        tr, nd, ids, ws = [], [], [], []
        for t, n in leaves:
            for k in range(n_out):
                tr.append(t)
                nd.append(n)
                ids.append(k)
                v = rng.uniform(0.05, 0.45) if positive else rng.normal(0, 1.0)
                ws.append(float(v * scale))
        return tr, nd, ids, ws

    def model(op, attrs, outputs, name):
        node = helper.make_node(op, ["x"], [o[0] for o in outputs], domain="ai.onnx.ml", **nodes, **attrs)
        outs = [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs]
        g = helper.make_graph([node], name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])], outs)
        m = helper.make_model(
            g, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3)], producer_name="hand"
        )
        m.ir_version = 8
        return m

    def reg(name, n_targets, post, base, aggregate="SUM", scale=1.0, case=True):
        tr, nd, ids, ws = weights(n_targets, scale < 1.0, scale)
        attrs = dict(n_targets=n_targets, post_transform=post, target_treeids=tr, target_nodeids=nd,
                     target_ids=ids, target_weights=ws, aggregate_function=aggregate)
        if base is not None:
            attrs["base_values"] = base
        m = model("TreeEnsembleRegressor", attrs, [("y", TensorProto.FLOAT, ["N", n_targets])], name)
        if case:
            w.case(name, w.save_model(name, m), "trees", {"x": x})
        return m

    def clf(name, n_classes, used, post, base, positive):
        tr, nd, ids, ws = weights(len(used), positive, 1.0 / len(leaves) if positive else 1.0)
        ids = [used[i] for i in ids]
        # Labels 10, 11, ... show that labels (not class indices) come out; a two-class model
        # with weights for both classes gets {0, 1}: there ONNX Runtime returns a literal 1/0.
        first = 0 if n_classes == 2 and len(used) == 2 else 10
        attrs = dict(classlabels_int64s=list(range(first, first + n_classes)), post_transform=post, class_treeids=tr,
                     class_nodeids=nd, class_ids=ids, class_weights=ws)
        if base is not None:
            attrs["base_values"] = base
        m = model(
            "TreeEnsembleClassifier", attrs,
            [("label", TensorProto.INT64, ["N"]), ("probabilities", TensorProto.FLOAT, ["N", n_classes])], name,
        )
        w.case(name, w.save_model(name, m), "trees", {"x": x})

    reg("trees_reg_none", 1, "NONE", None)
    reg("trees_reg_base", 1, "NONE", [0.25])
    reg("trees_reg2_base", 2, "NONE", [0.25, -1.0])
    reg("trees_reg2_logistic", 2, "LOGISTIC", [0.1, 0.2])
    reg("trees_reg3_softmax", 3, "SOFTMAX", [0.0, 0.5, 1.0])
    reg("trees_reg3_softmax_zero", 3, "SOFTMAX_ZERO", None)
    reg("trees_reg_logistic", 1, "LOGISTIC", [0.1])
    reg("trees_reg_probit", 1, "PROBIT", [0.05], scale=0.12)
    reg("trees_reg_average", 1, "NONE", [1.0], aggregate="AVERAGE")
    reg("trees_reg2_average", 2, "SOFTMAX", [1.0, 0.5], aggregate="AVERAGE")

    # Models the native evaluator must refuse (onnxruntime runs them): MIN aggregation, and an
    # operator after the trees that skl2onnx does not add.
    w.save_model("bad_aggregate_min", reg("bad_aggregate_min", 1, "NONE", None, aggregate="MIN", case=False))
    m = reg("bad_mul_after", 1, "NONE", None, case=False)
    m.graph.node[0].output[0] = "t"
    m.graph.node.append(helper.make_node("Mul", ["t", "t"], ["y"], name="square"))
    w.save_model("bad_mul_after", m)
    clf("trees_bin_logistic_base1", 2, [0], "LOGISTIC", [0.3], False)
    clf("trees_bin_none_mixed", 2, [0], "NONE", None, False)
    clf("trees_bin_none_mixed_base1", 2, [0], "NONE", [-0.2], False)
    clf("trees_bin_none_positive", 2, [0], "NONE", None, True)
    clf("trees_bin_logistic_positive", 2, [0], "LOGISTIC", None, True)
    clf("trees_bin_class1_logistic", 2, [1], "LOGISTIC", [0.1], False)
    clf("trees_bin_both_none", 2, [0, 1], "NONE", None, False)
    clf("trees_bin_both_softmax_base2", 2, [0, 1], "SOFTMAX", [0.1, -0.1], False)
    clf("trees_cls3_softmax_base", 3, [0, 1, 2], "SOFTMAX", [0.1, 0.2, 0.3], False)
    clf("trees_cls3_none_unused", 3, [0, 2], "NONE", None, False)
    clf("trees_cls4_logistic", 4, [0, 1, 2, 3], "LOGISTIC", None, False)

    # One branch mode throughout (xgboost's BRANCH_LT, LightGBM's BRANCH_LEQ) with missing-value
    # tracks and NaN inputs: the native evaluator's packed, branch-free layout.
    for mode in ("BRANCH_LT", "BRANCH_LEQ"):
        nodes["nodes_modes"] = [m if m == "LEAF" else mode for m in nodes["nodes_modes"]]
        tag = mode.split("_")[1].lower()
        reg(f"trees_{tag}_reg_base", 1, "NONE", [0.25])
        clf(f"trees_{tag}_bin_logistic", 2, [0], "LOGISTIC", [0.3], False)


def particlenet_feeds(rng, n, min_pf=1, min_sv=0, npf=50, nsv=5):
    """Inputs for ParticleNet AK4 HLT: n jets with min_pf..npf particles and min_sv..nsv
    secondary vertices (masked)."""
    pf_n = rng.integers(min_pf, npf + 1, n)
    sv_n = rng.integers(min_sv, nsv + 1, n)
    pf_mask = (np.arange(npf)[None, :] < pf_n[:, None]).astype(np.float32)[:, None, :]
    sv_mask = (np.arange(nsv)[None, :] < sv_n[:, None]).astype(np.float32)[:, None, :]
    return {
        "pf_points": rng.normal(0, 0.2, (n, 2, npf)).astype(np.float32) * pf_mask,
        "pf_features": np.clip(rng.normal(0, 1, (n, 23, npf)), -5, 5).astype(np.float32) * pf_mask,
        "pf_mask": pf_mask,
        "sv_points": rng.normal(0, 0.2, (n, 2, nsv)).astype(np.float32) * sv_mask,
        "sv_features": np.clip(rng.normal(0, 1, (n, 11, nsv)), -5, 5).astype(np.float32) * sv_mask,
        "sv_mask": sv_mask,
    }


def bvl_feeds(rng, n):
    """Inputs for DeepDoubleX BvL: n jets, the three object inputs cut to random lengths."""
    feeds = {
        "input_1": rng.normal(0, 1, (n, 1, 5)).astype(np.float32),
        "input_2": rng.normal(0, 1, (n, 60, 8)).astype(np.float32),
        "input_3": rng.normal(0, 1, (n, 40, 21)).astype(np.float32),
        "input_4": rng.normal(0, 1, (n, 5, 7)).astype(np.float32),
    }
    for k, l in (("input_2", 60), ("input_3", 40), ("input_4", 5)):
        cut = rng.integers(0, l + 1, n)
        feeds[k] *= (np.arange(l)[None, :, None] < cut[:, None, None]).astype(np.float32)
    return feeds


def cms_models(w, rng):
    pn = os.path.join(SHARED, "onnx", "cms-particlenet-ak4-hlt", "particle-net.onnx")
    if os.path.exists(pn):
        w.case("particlenet", pn, "edgeconv", particlenet_feeds(rng, 24))
    bvl = os.path.join(SHARED, "onnx", "cms-deepdoublex-bvl", "BvL.onnx")
    if os.path.exists(bvl):
        # The native 1-D CNN/RNN evaluator takes it (tract 0.23 ignores the GRUs' HardSigmoid
        # activation and reverse direction: the engine refuses it there; onnxruntime runs it).
        w.case("bvl", bvl, "recurrent", bvl_feeds(rng, 16))


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(12345)
    w = Writer(out)
    sklearn_models(w, rng)
    hand_trees(w, rng)
    cms_models(w, rng)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"cases": w.cases}, f, indent=1)
    print(json.dumps({"cases": len(w.cases)}))


if __name__ == "__main__":
    main(sys.argv[1])
