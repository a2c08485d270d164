"""Reference data and checks for `hepml explain` (tests/explain.rs drives it).

  check_explain.py make DIR
      Writes ntuples (uproot: train.root, valid.root, overfit_train.root) and ONNX models:
      mlp.onnx (a ReLU MLP with standardisation, numpy weights kept in mlp_weights.npz),
      known.onnx (its output depends on f0 and f3 only), pnn.onnx (two inputs: features and
      the mass, concatenated), trained.onnx (an sklearn MLPClassifier where f5 is pure noise),
      overfit.onnx (an sklearn random forest of fully grown trees on 400 events).
  check_explain.py perm OUT DIR MODEL
      Permutation importance recomputed with onnxruntime and numpy: the same permutations
      (SplitMix64 + Fisher-Yates, seeds from explain.json's rule), the same weighted AUC; every
      value within 1e-6.
  check_explain.py sklearn-rank OUT DIR MODEL
      scikit-learn's permutation_importance over an onnxruntime session ranks the features as
      explain does on the valid sample.
  check_explain.py gradients OUT DIR
      Saliency and integrated gradients of mlp.onnx against numpy's analytic gradients of the
      same weights (within 1e-4); attributions.root (uproot) holds the same values per event.
  check_explain.py fd EXACT_OUT FD_OUT
      Finite-difference saliency and integrated gradients (an engine without backpropagation)
      against the exact ones of the same model: the median difference and every feature's mean
      |attribution| within 1% of the attributions' scale.
  check_explain.py completeness OUT LIMIT
      The integrated gradients add up to f(x) - f(baseline) within LIMIT (relative).
  check_explain.py pdp OUT DIR MODEL FEATURE
      The partial dependence equals the weighted mean over events of onnxruntime scores with
      FEATURE set to each grid value.
  check_explain.py surrogate OUT DIR
      surrogate.onnx in onnxruntime gives the scores explain reports (R2 recomputed).
"""

import json
import os
import sys

import numpy as np

FEATURES = [f"f{i}" for i in range(6)]
MASK64 = (1 << 64) - 1


def splitmix_shuffle(n, seed):
    """hepml's Rng (models/src/rng.rs): SplitMix64, Fisher-Yates from the last element."""
    state = (seed ^ 0x9E3779B97F4A7C15) & MASK64
    idx = list(range(n))
    for i in range(n - 1, 0, -1):
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        z ^= z >> 31
        j = z % (i + 1)
        idx[i], idx[j] = idx[j], idx[i]
    return np.array(idx)


def auc_weighted(scores, labels, weights):
    """Weighted ROC AUC, tied scores counting half (hepml's metrics::auc_weighted)."""
    order = np.argsort(scores, kind="stable")
    s, y, w = scores[order], labels[order], weights[order].astype(np.float64)
    uniq, start = np.unique(s, return_index=True)
    bounds = list(start) + [len(s)]
    below = area = wpos = 0.0
    for a, b in zip(bounds[:-1], bounds[1:]):
        gp = w[a:b][y[a:b] == 1].sum()
        gn = w[a:b][y[a:b] != 1].sum()
        area += gp * (below + 0.5 * gn)
        below += gn
        wpos += gp
    return area / (wpos * below)


def events(n, rng, with_mass=True):
    x = rng.normal(size=(n, 6)).astype(np.float32)
    logit = 1.6 * x[:, 0] + 1.0 * x[:, 1] - 0.8 * x[:, 2] + 0.6 * x[:, 3] + 0.5 * x[:, 4]
    y = (logit + rng.logistic(size=n) > 0).astype(np.int32)
    w = rng.uniform(0.5, 1.5, size=n).astype(np.float32)
    masses = np.array([300.0, 500.0, 800.0], dtype=np.float32)
    m = masses[rng.integers(0, 3, size=n)]
    # Signal mass shifts f0: the PNN's features depend on the hypothesis.
    x[:, 0] += np.where(y == 1, (m - 500.0) / 400.0, 0.0).astype(np.float32)
    out = {name: x[:, i] for i, name in enumerate(FEATURES)}
    out["label"] = y
    out["weight"] = w
    if with_mass:
        out["mass"] = m
    return out


def write_root(path, cols):
    import uproot

    with uproot.recreate(path) as f:
        f.mktree("events", {k: v.dtype for k, v in cols.items()})
        f["events"].extend(cols)


def meta(model, inputs, outputs, extra=None):
    import onnx

    props = {"hepml.inputs": json.dumps(inputs), "hepml.outputs": json.dumps(outputs)}
    props.update(extra or {})
    del model.metadata_props[:]
    for k, v in props.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    return model


def mlp_onnx(weights, inputs, mean, std, concat=None):
    """Sub/Div standardisation, Gemm+Relu layers, Gemm+Sigmoid; `inputs` [(name, width)]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    graph_inputs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", w]) for n, w in inputs
    ]
    prev = inputs[0][0]
    if concat:
        nodes.append(helper.make_node("Concat", [n for n, _ in inputs], ["cat"], axis=1))
        prev = "cat"
    inits += [numpy_helper.from_array(mean, "mean"), numpy_helper.from_array(std, "std")]
    nodes += [
        helper.make_node("Sub", [prev, "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["h0"]),
    ]
    prev = "h0"
    for i, (W, b) in enumerate(weights):
        inits += [numpy_helper.from_array(W, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [f"z{i}"]))
        act = "Relu" if i + 1 < len(weights) else "Sigmoid"
        out = f"a{i}" if i + 1 < len(weights) else "score"
        nodes.append(helper.make_node(act, [f"z{i}"], [out]))
        prev = out
    g = helper.make_graph(
        nodes,
        "mlp",
        graph_inputs,
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def random_layers(widths, rng, zero_inputs=()):
    layers = []
    for k, n in zip(widths[:-1], widths[1:]):
        W = (rng.normal(size=(k, n)) * np.sqrt(2.0 / k)).astype(np.float32)
        b = (rng.normal(size=n) * 0.1).astype(np.float32)
        layers.append((W, b))
    for i in zero_inputs:
        layers[0][0][i, :] = 0.0
    return layers


def make(d):
    import onnx
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neural_network import MLPClassifier

    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(11)
    train, valid = events(20000, rng), events(20000, rng)
    write_root(os.path.join(d, "train.root"), train)
    write_root(os.path.join(d, "valid.root"), valid)
    X = np.stack([train[f] for f in FEATURES], axis=1)
    mean, std = X.mean(axis=0).astype(np.float32), X.std(axis=0).astype(np.float32)
    io = ({"x": FEATURES}, {"score": "score"})

    layers = random_layers([6, 32, 32, 1], np.random.default_rng(5))
    np.savez(os.path.join(d, "mlp_weights.npz"), mean=mean, std=std,
             **{f"W{i}": W for i, (W, _) in enumerate(layers)},
             **{f"b{i}": b for i, (_, b) in enumerate(layers)})
    m = meta(mlp_onnx(layers, [("x", 6)], mean, std), *io)
    onnx.save(m, os.path.join(d, "mlp.onnx"))

    known = random_layers([6, 16, 1], np.random.default_rng(6), zero_inputs=(1, 2, 4, 5))
    onnx.save(meta(mlp_onnx(known, [("x", 6)], mean, std), *io), os.path.join(d, "known.onnx"))

    pl = random_layers([5, 24, 24, 1], np.random.default_rng(7))
    pm = np.append(mean[:4], 500.0).astype(np.float32)
    ps = np.append(std[:4], 200.0).astype(np.float32)
    pnn = mlp_onnx(pl, [("features", 4), ("mass", 1)], pm, ps, concat=True)
    pnn = meta(pnn, {"features": FEATURES[:4], "mass": ["mass"]}, {"score": "score"},
               {"hepml.parameter": "mass"})
    onnx.save(pnn, os.path.join(d, "pnn.onnx"))

    y = train["label"]
    clf = MLPClassifier(hidden_layer_sizes=(32, 32), max_iter=200, early_stopping=True, random_state=0)
    clf.fit(X[:8000], y[:8000])
    t = to_onnx(clf, X[:1], options={id(clf): {"zipmap": False}}, target_opset=13)
    onnx.save(meta(t, {"X": FEATURES}, {"probabilities": "score"}),
              os.path.join(d, "trained.onnx"))

    # Few events, fully grown trees, 20% of labels flipped: memorised through every feature,
    # the pure-noise f5 included.
    few = {k: v[:400].copy() for k, v in train.items()}
    flip = np.random.default_rng(3).random(400) < 0.2
    few["label"] = np.where(flip, 1 - few["label"], few["label"]).astype(np.int32)
    write_root(os.path.join(d, "overfit_train.root"), few)
    Xf = np.stack([few[f] for f in FEATURES], axis=1)
    rf = RandomForestClassifier(n_estimators=100, random_state=0).fit(Xf, few["label"])
    g = to_onnx(rf, Xf[:1], options={id(rf): {"zipmap": False}}, target_opset=13)
    onnx.save(meta(g, {"X": FEATURES}, {"probabilities": "score"}),
              os.path.join(d, "overfit.onnx"))


def read(path, names):
    import uproot

    t = uproot.open(path)["events"]
    a = t.arrays(names + ["label", "weight"], library="np")
    X = np.stack([a[n].astype(np.float32) for n in names], axis=1)
    return X, a["label"].astype(np.float32), a["weight"].astype(np.float32)


def session(model):
    import onnxruntime as ort

    s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    ins = [i.name for i in s.get_inputs()]
    outs = [o.name for o in s.get_outputs()]
    out = next((o for o in outs if "prob" in o), outs[0])

    def score(X, split=None):
        feeds = {}
        if split is None:
            feeds[ins[0]] = X.astype(np.float32)
        else:
            at = 0
            for name, w in split:
                feeds[name] = X[:, at:at + w].astype(np.float32)
                at += w
        y = s.run([out], feeds)[0]
        return y[:, -1] if y.ndim == 2 else y

    return score


def report(out):
    with open(os.path.join(out, "explain.json")) as f:
        return json.load(f)


def sample_files(r, d):
    names = [s["name"] for s in r["data"]["samples"]]
    files = {"train": "train.root", "valid": "valid.root", "data": "valid.root"}
    return [(n, os.path.join(d, files[n])) for n in names]


def perm(out, d, model):
    r = report(out)
    names = r["data"]["features"]
    score = session(model)
    p = r["permutation"]
    seed = r["seed"]
    worst = 0.0
    for si, (sname, path) in enumerate(sample_files(r, d)):
        X, y, w = read(path, names)
        base = auc_weighted(score(X), y, w)
        assert abs(base - p["baseline"][si]) <= 1e-6, (sname, base, p["baseline"][si])
        for g, grp in enumerate(p["groups"]):
            cols = [names.index(c) for c in grp["columns"]]
            for rep in range(p["repeats"]):
                idx = splitmix_shuffle(len(y), seed ^ ((g << 32) | rep))
                Xp = X.copy()
                Xp[:, cols] = X[idx][:, cols]
                want = base - auc_weighted(score(Xp), y, w)
                got = grp["per_sample"][si]["values"][rep]
                worst = max(worst, abs(want - got))
                assert abs(want - got) <= 1e-6, (sname, grp["group"], rep, want, got)
    print(f"permutation importance: max |hepml - numpy/onnxruntime| = {worst:.2e}")


def sklearn_rank(out, d, model):
    from sklearn.inspection import permutation_importance

    r = report(out)
    names = r["data"]["features"]
    score = session(model)
    X, y, w = read(os.path.join(d, "valid.root"), names)

    class Wrapped:
        def fit(self, *_):
            return self

        def predict_proba(self, X):
            s = score(X)
            return np.stack([1 - s, s], axis=1)

        def decision_function(self, X):
            return score(X)

        classes_ = np.array([0, 1])
        _estimator_type = "classifier"

        def __sklearn_tags__(self):
            from sklearn.utils import ClassifierTags, Tags, TargetTags

            return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                        classifier_tags=ClassifierTags())

    res = permutation_importance(Wrapped(), X, y, scoring="roc_auc", n_repeats=5,
                                 random_state=0, sample_weight=w, n_jobs=1)
    theirs = [names[i] for i in np.argsort(-res.importances_mean)]
    vi = [s["name"] for s in r["data"]["samples"]].index("valid")
    ours = sorted(r["permutation"]["groups"], key=lambda g: -g["per_sample"][vi]["mean"])
    ours = [g["group"] for g in ours]
    print("sklearn ranking:", theirs, "hepml:", ours)
    assert ours == theirs, (ours, theirs)


def forward_and_grad(npz, X):
    """Scores and analytic d score / d x of mlp.onnx's weights, float64."""
    z = (X.astype(np.float64) - npz["mean"]) / npz["std"]
    acts, pre = [z], []
    n_layers = len([k for k in npz.files if k.startswith("W")])
    h = z
    for i in range(n_layers):
        a = h @ npz[f"W{i}"].astype(np.float64) + npz[f"b{i}"]
        pre.append(a)
        h = np.maximum(a, 0) if i + 1 < n_layers else 1 / (1 + np.exp(-a))
        acts.append(h)
    s = acts[-1][:, 0]
    g = (s * (1 - s))[:, None]
    for i in reversed(range(n_layers)):
        if i + 1 < n_layers:
            g = g * (pre[i] > 0)
        g = g @ npz[f"W{i}"].astype(np.float64).T
    return s, g / npz["std"]


def gradients(out, d):
    r = report(out)
    names = r["data"]["features"]
    npz = np.load(os.path.join(d, "mlp_weights.npz"))
    sal = np.load(os.path.join(out, "saliency.npy"))
    ig = np.load(os.path.join(out, "integrated_gradients.npy"))
    X, _, _ = read(os.path.join(d, "valid.root"), names)
    X = X[: sal.shape[0]]
    _, g = forward_and_grad(npz, X)
    ds = np.abs(sal - g).max()
    assert ds <= 1e-4, f"saliency vs analytic {ds}"
    info = r["integrated_gradients"]
    assert info["baseline"] == "mean"
    Xt, _, _ = read(os.path.join(d, "train.root"), names)
    base = Xt.astype(np.float64).mean(axis=0).astype(np.float32)
    steps = info["steps"]
    acc = np.zeros_like(g)
    for k in range(steps):
        a = np.float32((k + 0.5) / steps)
        _, gk = forward_and_grad(npz, base + a * (X - base))
        acc += gk
    ref = (X - base) * acc / steps
    di = np.abs(ig - ref).max()
    assert di <= 1e-4, f"integrated gradients vs numpy {di}"
    c = info["completeness"]["relative_gap"]
    # The same values as a ROOT tree, read by uproot, in the explained events' order.
    import uproot
    t = uproot.open(os.path.join(out, "attributions.root"))["attributions"]
    assert t.num_entries == sal.shape[0], (t.num_entries, sal.shape)
    assert (t["entry"].array(library="np") == np.arange(sal.shape[0])).all()
    for j, n in enumerate(names):
        assert (t[f"saliency_{n}"].array(library="np") == sal[:, j]).all(), n
        assert (t[f"ig_{n}"].array(library="np") == ig[:, j]).all(), n
    _, _, w = read(os.path.join(d, "valid.root"), names)
    assert (t["weight"].array(library="np") == w[: sal.shape[0]]).all()
    print(f"saliency max diff {ds:.2e}; IG max diff {di:.2e}; completeness gap {c:.2e}; "
          f"attributions.root equal to the .npy files")


def fd(exact_out, fd_out):
    assert report(exact_out)["gradients"] == "exact (backpropagation)"
    assert report(fd_out)["gradients"] == "central finite differences"
    for name in ["saliency", "integrated_gradients"]:
        a = np.load(os.path.join(exact_out, f"{name}.npy")).astype(np.float64)
        b = np.load(os.path.join(fd_out, f"{name}.npy")).astype(np.float64)
        assert a.shape == b.shape, (a.shape, b.shape)
        scale = np.abs(a).mean()
        err = np.abs(a - b) / scale
        median, p90 = np.quantile(err, [0.5, 0.9])
        ma, mb = np.abs(a).mean(axis=0), np.abs(b).mean(axis=0)
        rel = np.abs(ma - mb).max() / ma.max()
        print(f"{name}: |fd - exact| / mean |exact|: median {median:.1e}, 90% {p90:.1e}; "
              f"per-feature mean |attribution| within {rel:.1e}")
        # A ReLU network is piecewise linear: a central difference equals the slope unless a
        # kink lies within one step (about 10% of the values here, by up to the slope change of
        # a unit); the typical value and each feature's importance agree closely.
        assert median <= 1e-2, f"{name}: median relative difference {median}"
        assert rel <= 1e-2, f"{name}: per-feature mean |attribution| differs by {rel}"


def completeness(out, limit):
    c = report(out)["integrated_gradients"]["completeness"]["relative_gap"]
    assert c <= float(limit), f"completeness gap {c} > {limit}"
    print(f"completeness: sum of IG = f(x) - f(baseline) within {100 * c:.2f}%")


def pdp(out, d, model, feature):
    r = report(out)
    names = r["data"]["features"]
    score = session(model)
    X, _, w = read(os.path.join(d, "valid.root"), names)
    p = next(p for p in r["pdp"]["one"] if p["feature"] == feature)
    X = X[: r["pdp"]["events"]]
    w = w[: r["pdp"]["events"]]
    j = names.index(feature)
    split = None
    if "mass" in names:
        split = [("features", len(names) - 1), ("mass", 1)]
    worst = 0.0
    for v, got in zip(p["grid"], p["mean"]):
        Xv = X.copy()
        Xv[:, j] = v
        want = float(np.sum(w.astype(np.float64) * score(Xv, split)) / np.sum(w))
        worst = max(worst, abs(want - got))
        assert abs(want - got) <= 1e-5, (v, want, got)
    print(f"pdp {feature}: {len(p['grid'])} points, max diff {worst:.2e}")


def surrogate(out, d):
    import onnxruntime as ort

    r = report(out)
    names = r["data"]["features"]
    s = ort.InferenceSession(os.path.join(out, "surrogate.onnx"),
                             providers=["CPUExecutionProvider"])
    X, _, _ = read(os.path.join(d, "valid.root"), names)
    X = X[: r["surrogate"]["fit_events"] + r["surrogate"]["test_events"]]
    got = s.run(None, {s.get_inputs()[0].name: X})[0].reshape(-1)
    want = np.load(os.path.join(out, "surrogate_scores.npy"))
    diff = np.abs(got - want).max()
    assert diff <= 1e-6, f"surrogate onnxruntime vs hepml {diff}"
    print(f"surrogate: onnxruntime equals hepml's tree within {diff:.1e}")


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"make": make, "perm": perm, "sklearn-rank": sklearn_rank, "gradients": gradients,
     "pdp": pdp, "surrogate": surrogate, "completeness": completeness, "fd": fd}[cmd](*args)
