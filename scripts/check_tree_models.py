#!/usr/bin/env python3
"""hepml's tree ensembles against scikit-learn and XGBoost on the same folds (tests/train_trees.rs).

  check_tree_models.py DIR RUN KIND JSON

DIR/sig.root and DIR/bkg.root (tree `events`, as scripts/make_tree_data.py writes them) hold
the events; RUN is hepml's run directory, trained on them with k-fold by `event` and no valid
split, so fold i trained on `event % k != i` and scored `event % k == i`. The reference is
trained on the same folds with the same settings (JSON: {"features": [...], "k": K, and for
KIND rf: "n_trees", "max_depth", "criterion"; for KIND bdt: "n_trees", "max_depth", "eta",
"max_bins"}), unit weights, no class balancing.

Prints JSON {"auc_hepml", "auc_ref", "mdi_ref": {feature: value}} (AUCs over all folds' test
events; mdi_ref the reference's feature_importances_ averaged over folds, normalised).
"""
import json
import os
import sys

import numpy as np
import uproot
from sklearn.metrics import roc_auc_score


def load(d, features):
    xs, ys, evs = [], [], []
    for name, label in (("sig", 1), ("bkg", 0)):
        t = uproot.open(os.path.join(d, f"{name}.root"))["events"]
        a = t.arrays(features + ["event"], library="np")
        xs.append(np.stack([a[f] for f in features], axis=1).astype(np.float32))
        ys.append(np.full(len(a["event"]), label))
        evs.append(a["event"])
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(evs)


def reference(kind, p):
    if kind == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=p["n_trees"], max_depth=p["max_depth"], criterion=p["criterion"],
            max_features="sqrt", bootstrap=True, n_jobs=2, random_state=0)
    import xgboost

    return xgboost.XGBClassifier(
        n_estimators=p["n_trees"], max_depth=p["max_depth"], learning_rate=p["eta"],
        tree_method="hist", max_bin=p["max_bins"], reg_lambda=1.0, min_child_weight=1.0,
        n_jobs=2, random_state=0)


def main(d, run, kind, p):
    p = json.loads(p)
    x, y, ev = load(d, p["features"])
    k = p["k"]
    ref_s, ref_y, mdi = [], [], np.zeros(len(p["features"]))
    hep_s, hep_y = [], []
    for i in range(k):
        train, test = ev % k != i, ev % k == i
        m = reference(kind, p).fit(x[train], y[train])
        ref_s.append(m.predict_proba(x[test])[:, 1])
        ref_y.append(y[test])
        mdi += m.feature_importances_
        hep_s.append(np.load(os.path.join(run, f"test_fold{i}_score.npy")))
        hep_y.append(np.load(os.path.join(run, f"test_fold{i}_label.npy")))
        if len(hep_y[-1]) != test.sum():
            sys.exit(f"fold {i}: hepml scored {len(hep_y[-1])} events, the fold has {test.sum()}")
    mdi /= mdi.sum()
    print(json.dumps({
        "auc_hepml": roc_auc_score(np.concatenate(hep_y), np.concatenate(hep_s)),
        "auc_ref": roc_auc_score(np.concatenate(ref_y), np.concatenate(ref_s)),
        "mdi_ref": dict(zip(p["features"], mdi.tolist())),
    }))


if __name__ == "__main__":
    main(*sys.argv[1:5])
