#!/usr/bin/env python3
"""Tree-ensemble benchmark (not a test): `hepml train` with `model.type: bdt` against XGBoost
(`tree_method=hist`) and, where given, LightGBM; `model.type: random_forest` against
scikit-learn's RandomForestClassifier. Same data, same machine, same run, every figure and
ratio printed.

  bench_trees.py [--hepml target/release/hepml] [--events 1000000] [--features 30]
                 [--trees 500] [--depth 6] [--threads 2]
                 [--rf-events 200000] [--rf-trees 100] [--rf-depth 10] [--no-rf]
                 [--omp-wait both|active|passive]
                 [--lightgbm-python PATH]   (a python with lightgbm; it is not in the test venv)

Data: N events x F float32 features, unit Gaussians; signal with probability
sigmoid(sum_i c_i f(x_i) + x0 x1 - ...), a nonlinear signal (products, squares, a sine).
hepml reads it from a pandas `fixed` HDF5 table and splits 80/20 at random (no valid split);
the references train on exactly hepml's training events and score its test events (taken
from the run's test_fold0_x.npy), all with the same hyperparameters: BDT 500 trees, depth 6,
eta 0.1, lambda 1, min_child_weight 1, 256 bins (hepml: 254, its one-byte bins keep two
values for NaN and overflow); RF sqrt features, gini, bootstrap.

Each tool runs in a fresh process with --threads threads (hepml: `train --threads`). On a
shared, loaded machine OpenMP's default spin-waiting can make XGBoost and LightGBM several times
slower (XGBoost 46 s with it vs 6.2 s with OMP_WAIT_POLICY=passive, 200k x 30, 100 trees, load
~8 on 2 cores): with --omp-wait both (the default) each reference runs with either policy and
the faster run is the one compared. The load average is printed before and after. Train time
covers fitting and scoring the test events, as hepml's figure does: hepml's is from its log
(binning, trees, test scoring, metrics and writing the run directory); XGBoost's, LightGBM's and
scikit-learn's run from dataset construction to the fitted model plus the prediction of the test
events (each part is printed too). Wall covers reading the data as well. Peak RSS is the
child's getrusage high-water mark.
Goals: BDT test AUC within 0.002 of XGBoost's, train time <= XGBoost's, peak RSS <= half of
XGBoost's; RF AUC within 0.003 of scikit-learn's, >= 3x faster.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_train import child  # noqa: E402  (runs a tool, returns its output, wall and peak RSS)

# Reads hepml's split, trains the reference on the other rows, scores the test rows.
REF_JOB = r'''
import sys, time, json, numpy as np
kind, d, threads, p = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
x = np.load(d + "/x.npy"); y = np.load(d + "/y.npy")
test = np.load(d + "/test_rows.npy")
mask = np.ones(len(y), bool); mask[test] = False
xt, yt = x[mask], y[mask]
t0 = time.perf_counter()
if kind == "xgboost":
    import xgboost as xgb
    dm = xgb.QuantileDMatrix(xt, yt, max_bin=p["bins"], nthread=threads)
    b = xgb.train({"objective": "binary:logistic", "tree_method": "hist", "max_depth": p["depth"],
                   "eta": p["eta"], "max_bin": p["bins"], "lambda": 1.0, "min_child_weight": 1.0,
                   "nthread": threads}, dm, num_boost_round=p["trees"])
    fit = time.perf_counter() - t0
    s = b.predict(xgb.DMatrix(x[test], nthread=threads))
    score = time.perf_counter() - t0 - fit
    version = xgb.__version__
elif kind == "lightgbm":
    import lightgbm as lgb
    ds = lgb.Dataset(xt, yt, params={"max_bin": p["bins"], "verbose": -1})
    b = lgb.train({"objective": "binary", "max_depth": p["depth"], "num_leaves": 2 ** p["depth"],
                   "learning_rate": p["eta"], "lambda_l2": 1.0, "min_sum_hessian_in_leaf": 1.0,
                   "min_data_in_leaf": 1, "num_threads": threads, "verbose": -1}, ds,
                  num_boost_round=p["trees"])
    fit = time.perf_counter() - t0
    s = b.predict(x[test], num_threads=threads)
    score = time.perf_counter() - t0 - fit
    version = lgb.__version__
else:
    import sklearn
    from sklearn.ensemble import RandomForestClassifier
    m = RandomForestClassifier(n_estimators=p["trees"], max_depth=p["depth"], max_features="sqrt",
                               criterion="gini", bootstrap=True, n_jobs=threads, random_state=0)
    m.fit(xt, yt)
    fit = time.perf_counter() - t0
    s = m.predict_proba(x[test])[:, 1]
    score = time.perf_counter() - t0 - fit
    version = sklearn.__version__
np.save(d + f"/{kind}_scores.npy", s.astype(np.float32))
print(json.dumps({"fit_seconds": fit, "score_seconds": score, "version": version}))
'''


def make_data(d, n, f):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (n, f)).astype(np.float32)
    c = 1.0 / (1 + np.arange(f)) ** 0.7
    logit = (x[:, : f // 2] * c[: f // 2]).sum(1) + 0.5 * (x[:, f // 2:] ** 2 - 1) @ c[f // 2:]
    logit += x[:, 0] * x[:, 1] - 0.8 * np.sin(2 * x[:, 2]) * x[:, 3]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    df = pd.DataFrame({f"x{i}": x[:, i] for i in range(f)})
    df["label"] = y
    df["weight"] = np.float32(1.0)
    df.to_hdf(os.path.join(d, "data.h5"), key="events", format="fixed", mode="w")
    np.save(os.path.join(d, "x.npy"), x)
    np.save(os.path.join(d, "y.npy"), y)


def test_rows(d, run):
    """hepml's test events as row indices of x.npy (matched by their feature values)."""
    import numpy as np

    x = np.load(os.path.join(d, "x.npy"))
    tx = np.load(os.path.join(run, "test_fold0_x.npy"))
    key = lambda a: np.ascontiguousarray(a).view(np.dtype((np.void, a.shape[1] * 4))).ravel()
    where = {k.tobytes(): i for i, k in enumerate(key(x))}
    rows = np.array([where[k.tobytes()] for k in key(tx)], np.int64)
    np.save(os.path.join(d, "test_rows.npy"), rows)
    return rows


def auc(scores, labels):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(labels, scores)


def hepml_run(a, d, name, model, events_file):
    cfg = os.path.join(d, f"{name}.yaml")
    with open(cfg, "w") as f:
        f.write(f"""model: {model}
data: {{files: ["{events_file}"]}}
preparation: {{train_fraction: 0.8, valid_fraction: 0.0, test_fraction: 0.2, balance_classes: false}}
features: {{inputs: [{", ".join(f"x{i}" for i in range(a.features))}]}}
evaluation: {{plots: false}}
""")
    run = os.path.join(d, name)
    shutil.rmtree(run, ignore_errors=True)
    _, err, wall, rss = child([a.hepml, "train", cfg, "-o", run, "-q", "--threads", str(a.threads)])
    line = [l for l in err.splitlines() if "trained" in l][-1]
    fit = float(line.split(" events in ")[1].split(" s")[0])
    return run, fit, wall, rss


def reference(a, d, kind, params, python=sys.executable):
    """The reference's run (the faster under each OpenMP wait policy of --omp-wait)."""
    best = None
    # scikit-learn's forest fits on joblib threads, not OpenMP: one run.
    if a.omp_wait != "both":
        policies = [a.omp_wait]
    else:
        policies = ["passive"] if kind == "sklearn" else ["active", "passive"]
    for policy in policies:
        env = dict(os.environ, OMP_WAIT_POLICY=policy)
        out, _, wall, rss = child([python, "-c", REF_JOB, kind, d, str(a.threads), json.dumps(params)], env)
        r = json.loads(out.strip().splitlines()[-1])
        t = r["fit_seconds"] + r["score_seconds"]
        print(f"  ({kind} with OMP_WAIT_POLICY={policy}: train {t:.2f} s = fit {r['fit_seconds']:.2f} s"
              f" + test scoring {r['score_seconds']:.2f} s)")
        if best is None or t < best[0]:
            best = (t, wall, rss, r["version"], np_copy(d, kind))
    np_restore(d, kind, best[4])
    return best[:4]


def np_copy(d, kind):
    with open(os.path.join(d, f"{kind}_scores.npy"), "rb") as f:
        return f.read()


def np_restore(d, kind, data):
    with open(os.path.join(d, f"{kind}_scores.npy"), "wb") as f:
        f.write(data)


def row(name, auc_, fit, wall, rss):
    print(f"  {name:22} AUC {auc_:.5f}  train {fit:8.2f} s  wall {wall:8.2f} s  peak RSS {rss:8.1f} MB")


def section(a, d, title, model, refs, params):
    """One hepml model against its references: the figures and the ratios."""
    import numpy as np

    run, fit, wall, rss = hepml_run(a, d, title, model, os.path.join(d, "data.h5"))
    rows = test_rows(d, run)
    y = np.load(os.path.join(d, "y.npy"))[rows]
    ours = auc(np.load(os.path.join(run, "test_fold0_score.npy")), y)
    if not np.array_equal(y, np.load(os.path.join(run, "test_fold0_label.npy"))):
        sys.exit("test rows matched wrongly")
    res = {}
    for kind, python in refs:
        rfit, rwall, rrss, version = reference(a, d, kind, params, python)
        res[kind] = (auc(np.load(os.path.join(d, f"{kind}_scores.npy")), y), rfit, rwall, rrss, version)
    print(f"{title}: {len(y)} test events, {a.threads} threads")
    row("hepml", ours, fit, wall, rss)
    for kind, (r_auc, rfit, rwall, rrss, version) in res.items():
        row(f"{kind} {version}", r_auc, rfit, rwall, rrss)
    for kind, (r_auc, rfit, rwall, rrss, _) in res.items():
        print(f"  hepml vs {kind}: AUC {ours - r_auc:+.5f}, train time {fit / rfit:.2f}x, "
              f"wall {wall / rwall:.2f}x, peak RSS {rss / rrss:.2f}x")
    return ours, fit, rss, res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", default=os.path.join(REPO, "target/release/hepml"))
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=30)
    ap.add_argument("--trees", type=int, default=500)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rf-events", type=int, default=200_000)
    ap.add_argument("--rf-trees", type=int, default=100)
    ap.add_argument("--rf-depth", type=int, default=10)
    ap.add_argument("--no-rf", action="store_true", help="the BDT section only")
    ap.add_argument("--omp-wait", choices=["both", "active", "passive"], default="both")
    ap.add_argument("--lightgbm-python", default=os.environ.get("HEPML_LIGHTGBM_PYTHON"))
    a = ap.parse_args()
    print("load average before: %.2f %.2f %.2f on %d cores" % (os.getloadavg() + (os.cpu_count(),)))
    d = tempfile.mkdtemp(prefix="hepml-bench-trees-")
    try:
        # The data is made in a child: the driver stays small (a child's ru_maxrss counts the
        # memory of the process it was forked from).
        subprocess.run([sys.executable, __file__, "--make-data", d, str(a.events), str(a.features)], check=True)
        bdt = {"trees": a.trees, "depth": a.depth, "eta": 0.1, "bins": 256}
        refs = [("xgboost", sys.executable)]
        if a.lightgbm_python:
            refs.append(("lightgbm", a.lightgbm_python))
        ours, fit, rss, res = section(
            a, d, "bdt",
            f"{{type: bdt, n_trees: {a.trees}, max_depth: {a.depth}, learning_rate: 0.1, max_bins: 254}}",
            refs, bdt)
        x_auc, x_fit, _, x_rss, _ = res["xgboost"]
        print(f"  goals vs xgboost: |AUC diff| {abs(ours - x_auc):.5f} (<= 0.002: {abs(ours - x_auc) <= 0.002}), "
              f"train time {fit / x_fit:.2f}x (<= 1: {fit <= x_fit}), peak RSS {rss / x_rss:.2f}x (<= 0.5: {rss <= 0.5 * x_rss})")
        if not a.lightgbm_python:
            print("  LightGBM: no --lightgbm-python / HEPML_LIGHTGBM_PYTHON given; not compared")
        if a.no_rf:
            return
        # The forest on the first rf-events rows.
        subprocess.run([sys.executable, __file__, "--make-data", d, str(a.rf_events), str(a.features)], check=True)
        rf = {"trees": a.rf_trees, "depth": a.rf_depth}
        ours, fit, rss, res = section(
            a, d, "random_forest",
            f"{{type: random_forest, n_trees: {a.rf_trees}, max_depth: {a.rf_depth}, criterion: gini}}",
            [("sklearn", sys.executable)], rf)
        s_auc, s_fit, _, _, _ = res["sklearn"]
        print(f"  goals vs sklearn: |AUC diff| {abs(ours - s_auc):.5f} (<= 0.003: {abs(ours - s_auc) <= 0.003}), "
              f"speed {s_fit / fit:.2f}x (>= 3: {s_fit >= 3 * fit})")
    finally:
        print("load average after: %.2f %.2f %.2f" % os.getloadavg())
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--make-data":
        make_data(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
