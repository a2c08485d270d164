#!/usr/bin/env python3
"""Cross-check of `hepml convert` (used by tests/convert.rs): recomputes, with uproot and numpy,
the table the test's config asks for and compares it with pandas.read_hdf of hepml's output.

  check_convert.py OUT.h5 SIG_FILE BKG_FILE...

The config (kept in sync with tests/convert.rs):
  tree: events; selection: triggerIsoMu24; weight: EventWeight; event_number: NPrimaryVertices
  columns: MET_px, lmet = log(sqrt(MET_px**2 + MET_py**2)), Jet_Px[0], NMuon
  samples: sig (SIG_FILE, NJet > 0, weight 2, extra mass 125, label 1),
           bkg (BKG_FILE..., NJet == 0, extra mass 0, label 0)
Prints "ok N" or the differences, exit 1.
"""
import sys

import numpy as np
import pandas as pd
import uproot


def sample(files, sel, wfac, mass, label, idx):
    parts = []
    for f in files:
        a = uproot.open(f)["events"].arrays(
            ["MET_px", "MET_py", "Jet_Px", "NMuon", "NJet", "triggerIsoMu24", "EventWeight", "NPrimaryVertices"])
        keep = np.asarray(a["triggerIsoMu24"], bool) & sel(np.asarray(a["NJet"]))
        px = np.asarray(a["MET_px"], np.float64)
        py = np.asarray(a["MET_py"], np.float64)
        j0 = np.array([float(j[0]) if len(j) else np.nan for j in a["Jet_Px"]])
        d = pd.DataFrame({
            "MET_px": px, "lmet": np.log(np.sqrt(px ** 2 + py ** 2)), "Jet_Px[0]": j0,
            "NMuon": np.asarray(a["NMuon"], np.float64), "mass": float(mass),
            "weight": np.asarray(a["EventWeight"], np.float64) * wfac,
            "NPrimaryVertices": np.asarray(a["NPrimaryVertices"], np.int64),
            "label": label, "sample": idx,
        })[keep]
        parts.append(d)
    return pd.concat(parts)


def main():
    out, sig, *bkg = sys.argv[1:]
    want = pd.concat([
        sample([sig], lambda n: n > 0, 2.0, 125, 1, 0),
        sample(bkg, lambda n: n == 0, 1.0, 0, 0, 1),
    ]).reset_index(drop=True)
    got = pd.read_hdf(out, "events")
    problems = []
    if list(got.columns) != list(want.columns):
        problems.append(f"columns {list(got.columns)} != {list(want.columns)}")
    elif len(got) != len(want):
        problems.append(f"{len(got)} rows, expected {len(want)}")
    else:
        for c in want.columns:
            g, w = got[c].to_numpy(np.float64), want[c].to_numpy(np.float64)
            if not np.allclose(g, w, rtol=1e-12, atol=0, equal_nan=True):
                i = int(np.argmax(~np.isclose(g, w, rtol=1e-12, atol=0, equal_nan=True)))
                problems.append(f"{c}: row {i}: {g[i]} != {w[i]}")
        for c in ["NPrimaryVertices", "label", "sample"]:
            if got[c].dtype != np.int64:
                problems.append(f"{c} is {got[c].dtype}, expected int64")
        if list(got.index) != list(range(len(got))):
            problems.append("index is not 0..n")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"ok {len(got)}")


if __name__ == "__main__":
    main()
