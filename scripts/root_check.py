#!/usr/bin/env python3
"""Cross-checks files hepml writes against the two reference readers: real ROOT 6.40 (PyROOT,
from the pip `root` wheel) and uproot.

  root_check.py compare FILE TREE EXPECTED.json [--uproot-only NAME...]
      Reads every branch named in EXPECTED (hepml's JSON dump format: {"branches": {name:
      [one value per entry]}}) with uproot and with ROOT and requires both to equal it exactly
      (float32 values compared at float32 precision, NaN equal to NaN). ROOT runs in a child
      process; any "Error in <" or "Warning in <" line it prints fails the check. Branches
      named by --uproot-only are compared with uproot alone (classes ROOT has no dictionary
      for in the child).
  root_check.py friend MAIN TREE FRIEND FTREE BRANCH...
      TTree::AddFriend in ROOT, and uproot, must see the friend's branches with the main tree's
      entry count; prints their sums as JSON.
  root_check.py same-baskets A B TREE
      Every branch of TREE in A (sub-branches included) must be in B with identical raw
      (compressed) basket bytes, basket by basket, and identical values (uproot; branches
      uproot cannot read in A are compared by their bytes only).
  root_check.py root-reads A B TREE
      ROOT reads every top-level branch of TREE (and so their sub-branches) in B, entry by
      entry, the same number of bytes as in A, and says nothing about B it does not say about A.
      Branches ROOT itself dies on in A (a class without its dictionary) are found by halving,
      left out and listed as "root_dies_on_the_input".
Exit status 0 when the check holds, 1 with a one-line reason otherwise.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")


def fail(msg):
    print("root_check: " + msg, file=sys.stderr)
    sys.exit(1)


def norm(x):
    """Nested Python values with floats as floats and "nan"/"inf" strings decoded."""
    if isinstance(x, (list, tuple)):
        return [norm(y) for y in x]
    if isinstance(x, str) and x in ("nan", "inf", "-inf"):
        return float(x)
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    if hasattr(x, "tolist"):
        return norm(x.tolist())
    return x


def equal(a, b, f32):
    if isinstance(a, list) or isinstance(b, list):
        return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(equal(x, y, f32) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, str) or isinstance(b, str):
            return False
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if f32:
            import numpy as np
            return np.float32(a) == np.float32(b)
        return a == b
    return a == b


def first_diff(a, b, f32):
    for i, (x, y) in enumerate(zip(a, b)):
        if not equal(x, y, f32):
            return i, x, y
    return min(len(a), len(b)), "(length)", (len(a), len(b))


def uproot_values(path, tree, names):
    import uproot
    import awkward as ak
    t = uproot.open(path)[tree]
    out, f32 = {}, {}
    for n in names:
        arr = t[n].array(library="ak")
        out[n] = norm(ak.to_list(arr))
        f32[n] = "float32" in str(ak.type(arr))
    return out, f32


ROOT_CHILD = r'''
import json, sys, warnings
warnings.filterwarnings("ignore")
import ROOT
path, tree = sys.argv[1], sys.argv[2]
names = json.loads(sys.argv[3])
f = ROOT.TFile.Open(path)
if not f or f.IsZombie():
    sys.exit("cannot open")
t = f.Get(tree)
n = int(t.GetEntries())
plan = []
for name in names:
    br = t.GetBranch(name)
    if br is None:
        sys.exit("no branch " + name)
    leaf = br.GetLeaf(name) or br.GetListOfLeaves().At(0)
    cls = br.GetClassName() if br.InheritsFrom("TBranchElement") else ""
    title = leaf.GetTitle()
    parts = title.split("/")[0].replace("]", "[").split("[")[1::2]
    dims = [int(x) for x in parts if x.isdigit()]
    counter = leaf.GetLeafCount().GetName() if leaf.GetLeafCount() else None
    ltype = leaf.GetTypeName()
    if cls.startswith("vector"):
        kind = "vector"
    elif cls == "string" or leaf.IsA().GetName() == "TLeafC":
        kind = "string"
    elif counter:
        kind = "var"
    elif dims:
        kind = "fixed"
    else:
        kind = "scalar"
    plan.append((name, kind, dims, counter, ltype, leaf))

def num(x, ltype):
    if isinstance(x, str):
        x = ord(x) if x else 0
        if ltype == "Char_t" and x > 127:
            x -= 256
    if isinstance(x, float):
        return x
    return x

def nest(xs, ds):
    if len(ds) <= 1:
        return xs
    step = len(xs) // ds[0]
    return [nest(xs[i * step:(i + 1) * step], ds[1:]) for i in range(ds[0])]

class LeafValues:
    """Element access through TLeaf::GetValue, for leaves PyROOT has no attribute for
    (Char_t/UChar_t); exact for integers up to 32 bits."""
    def __init__(self, leaf, ltype):
        self.leaf, self.ltype = leaf, ltype
    def __getitem__(self, k):
        x = self.leaf.GetValue(k)
        if self.ltype in ("Float_t", "Double_t"):
            return float(x)
        return bool(x) if self.ltype == "Bool_t" else int(x)

def vec_values(v, ltype):
    # Index by index: iterating a std::vector<char> fails in cppyy, and its elements (and
    # those of vector<unsigned char>) come back as 1-character strings. Vectors of strings
    # give their strings, nested vectors their lists, ElementLinks their two fields.
    out = []
    for j in range(int(v.size())):
        x = v[j]
        if hasattr(x, "m_persKey"):
            x = {"m_persKey": int(x.m_persKey), "m_persIndex": int(x.m_persIndex)}
        elif hasattr(x, "c_str") or (isinstance(x, str) and "string" in ltype):
            x = str(x)
        elif hasattr(x, "size") and not isinstance(x, str):
            x = vec_values(x, ltype)
        elif isinstance(x, str):
            x = ord(x) if x else 0
            if ltype == "vector<char>" and x > 127:
                x -= 256
        elif not isinstance(x, (int, float)):
            x = bool(x)
        out.append(x)
    return out

out = {p[0]: [] for p in plan}
for i in range(n):
    t.GetEntry(i)
    for name, kind, dims, counter, ltype, leaf in plan:
        if (ltype in ("Char_t", "UChar_t") and kind in ("scalar", "fixed", "var")) or \
                (kind == "var" and dims):
            # PyROOT's views of char arrays fail on values outside ASCII, and of x[n][M]
            # arrays crash (ROOT-written files alike): read via TLeaf.
            v = LeafValues(leaf, ltype)
            if kind == "scalar":
                v = v[0]
        else:
            try:
                v = getattr(t, name)
            except AttributeError:
                if ltype not in ("Char_t", "UChar_t", "Bool_t", "Short_t", "UShort_t", "Int_t", "UInt_t"):
                    raise
                v = LeafValues(leaf, ltype)
                if kind == "scalar":
                    v = v[0]
        if kind == "scalar":
            out[name].append(num(v, ltype))
        elif kind == "string":
            if not isinstance(v, str):
                try:
                    raw = bytes(v)
                except TypeError:
                    raw = bytes(bytearray(ord(c) if isinstance(c, str) else c % 256 for c in v))
                v = raw.split(b"\0")[0].decode("utf-8", "replace")
            out[name].append(str(v))
        elif kind == "vector":
            out[name].append(vec_values(v, ltype))
        else:
            shape = ([int(getattr(t, counter))] if kind == "var" else []) + dims
            def flat(view, ds):
                if len(ds) == 1:
                    return [num(view[k], ltype) for k in range(ds[0])]
                try:
                    return [x for a in range(ds[0]) for x in flat(view[a], ds[1:])]
                except (IndexError, TypeError):
                    size = 1
                    for d in ds:
                        size *= d
                    return [num(view[k], ltype) for k in range(size)]
            vals = flat(v, shape) if shape and shape[0] > 0 else []
            if kind == "fixed":
                out[name].append(nest(vals, dims))
            elif dims:
                # x[n][M]: n rows of M values.
                row = len(vals) // shape[0] if shape[0] else 1
                out[name].append([nest(vals[k * row:(k + 1) * row], dims) for k in range(shape[0])])
            else:
                out[name].append(vals)
def enc(x):
    if isinstance(x, float) and x != x: return "nan"
    if isinstance(x, float) and x in (float("inf"), float("-inf")): return "inf" if x > 0 else "-inf"
    if isinstance(x, list): return [enc(y) for y in x]
    return x
print(json.dumps({k: enc(v) for k, v in out.items()}))
'''


def root_values(path, tree, names):
    r = subprocess.run([sys.executable, "-c", ROOT_CHILD, path, tree, json.dumps(names)],
                       capture_output=True, text=True, timeout=600)
    noise = [l for l in (r.stderr + r.stdout).splitlines() if l.startswith(("Error in <", "Warning in <", "Fatal in <"))]
    if noise:
        fail(f"ROOT complained reading {path}: {noise[0]}")
    if r.returncode != 0:
        fail(f"ROOT could not read {path}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
    return {k: norm(v) for k, v in json.loads(r.stdout.strip().splitlines()[-1]).items()}


def cmd_compare(a):
    exp = json.load(open(a.expected))["branches"]
    names = list(exp)
    up, f32 = uproot_values(a.file, a.tree, names)
    rt = root_values(a.file, a.tree, [n for n in names if n not in a.uproot_only])
    for n in names:
        e = norm(exp[n])
        readers = [("uproot", up[n])] + ([] if n in a.uproot_only else [("ROOT", rt[n])])
        for who, got in readers:
            if not equal(e, got, f32[n]):
                i, x, y = first_diff(e, got, f32[n])
                fail(f"{a.file}:{a.tree}:{n}: {who} differs at entry {i}: expected {x!r}, got {y!r}")
    print(json.dumps({"branches": len(names), "entries": len(next(iter(exp.values()), []))}))


FRIEND_CHILD = r'''
import json, sys, warnings
warnings.filterwarnings("ignore")
import ROOT
main, tree, friend, ftree = sys.argv[1:5]
names = sys.argv[5:]
f = ROOT.TFile.Open(main); t = f.Get(tree)
t.AddFriend(ftree, friend)
n = int(t.GetEntries())
df = ROOT.RDataFrame(t)
sums = {b: float(df.Sum(ftree + "." + b).GetValue()) for b in names}
cnt = int(df.Count().GetValue())
print(json.dumps({"entries": n, "count": cnt, "sums": sums}))
'''


def cmd_friend(a):
    import uproot
    import numpy as np
    r = subprocess.run([sys.executable, "-c", FRIEND_CHILD, a.main, a.tree, a.friend, a.ftree, *a.branches],
                       capture_output=True, text=True, timeout=600)
    noise = [l for l in (r.stderr + r.stdout).splitlines() if l.startswith(("Error in <", "Warning in <", "Fatal in <"))]
    if noise or r.returncode:
        fail(f"ROOT AddFriend failed: {noise[0] if noise else r.stderr.strip()[-300:]}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    main_n = uproot.open(a.main)[a.tree].num_entries
    ft = uproot.open(a.friend)[a.ftree]
    if ft.num_entries != main_n or res["entries"] != main_n or res["count"] != main_n:
        fail(f"entry counts differ: main {main_n}, friend {ft.num_entries}, ROOT {res}")
    for b in a.branches:
        s = float(np.sum(ft[b].array(library="np").astype(np.float64)))
        if not math.isclose(s, res["sums"][b], rel_tol=1e-9, abs_tol=1e-9):
            fail(f"friend branch {b}: ROOT sum {res['sums'][b]} != uproot sum {s}")
    print(json.dumps(res))


def basket_bytes(f, branch):
    """Raw compressed payload bytes of each on-disk basket (key header excluded)."""
    out = []
    seeks = branch.member("fBasketSeek")
    sizes = branch.member("fBasketBytes")
    for i in range(branch.member("fWriteBasket")):
        chunk = f.file.source.chunk(int(seeks[i]), int(seeks[i]) + int(sizes[i]))
        raw = chunk.raw_data.tobytes()
        keylen = int.from_bytes(raw[14:16], "big")
        out.append(raw[keylen:])
    return out


def cmd_same_baskets(a):
    import uproot
    import awkward as ak
    fa, fb = uproot.open(a.a), uproot.open(a.b)
    ta, tb = fa[a.tree], fb[a.tree]
    if ta.num_entries != tb.num_entries:
        fail(f"entries {ta.num_entries} vs {tb.num_entries}")
    nb = nv = 0
    # Every branch, sub-branches of split objects included, in order (names may repeat): the
    # copy lists the same ones first, then its new branches.
    branches = list(ta.itervalues(recursive=True))
    copied = list(tb.itervalues(recursive=True))
    for k, br in enumerate(branches):
        path = br.object_path
        other = copied[k] if k < len(copied) else None
        if other is None or other.name != br.name:
            fail(f"branch {path} missing from {a.b} (or out of order)")
        x, y = basket_bytes(fa, br), basket_bytes(fb, other)
        if x != y:
            fail(f"branch {path}: compressed basket bytes differ ({len(x)} vs {len(y)} baskets)")
        nb += len(x)
        try:
            va = ak.to_list(br.array(library="ak"))
        except Exception:  # noqa: BLE001 - uproot cannot read it in the input either
            continue
        vb = ak.to_list(other.array(library="ak"))
        if not equal(norm(va), norm(vb), False):
            i, p, q = first_diff(norm(va), norm(vb), False)
            fail(f"branch {path}: values differ at entry {i}")
        nv += 1
    print(json.dumps({"branches": len(branches), "baskets": nb, "values_compared": nv}))


ROOT_READS_CHILD = r'''
import json, sys, warnings
warnings.filterwarnings("ignore")
import ROOT
f = ROOT.TFile.Open(sys.argv[1]); t = f.Get(sys.argv[2])
names = json.loads(sys.argv[3])
n = int(t.GetEntries())
for b in t.GetListOfBranches():
    if b.GetName() not in names:
        t.SetBranchStatus(b.GetName(), 0)
print(json.dumps({"entries": n, "bytes": [int(t.GetEntry(i)) for i in range(n)]}))
'''


def root_reads(path, tree, names):
    """(ROOT's reading of these top-level branches, its messages), or (None, why) if it died."""
    r = subprocess.run([sys.executable, "-c", ROOT_READS_CHILD, path, tree, json.dumps(names)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return None, r.stderr.strip()[-300:]
    noise = {l for l in (r.stderr + r.stdout).splitlines() if l.startswith(("Error in <", "Warning in <", "Fatal in <"))}
    return json.loads(r.stdout.strip().splitlines()[-1]), noise


def root_survives(path, tree, names, dies=False):
    """(the branches of `names` ROOT reads in `path` without dying, those it dies on), by
    halving a set it dies on (`dies`: known to); ROOT without an experiment's dictionaries can
    crash on its own files."""
    if not names or (not dies and root_reads(path, tree, names)[0] is not None):
        return names, []
    if len(names) == 1:
        return [], names
    h = len(names) // 2
    (a, da), (b, db) = root_survives(path, tree, names[:h]), root_survives(path, tree, names[h:])
    return a + b, da + db


def cmd_root_reads(a):
    """ROOT reads every branch of the input in the copy: every entry the same number of bytes
    as in the input, and no ROOT message the input does not give too. Branches ROOT itself
    dies on in the input are left out, and counted."""
    import uproot
    names = [b.name for b in uproot.open(a.a)[a.tree].branches]
    res, dies = {a.a: root_reads(a.a, a.tree, names)}, []
    if res[a.a][0] is None:
        names, dies = root_survives(a.a, a.tree, names, dies=True)
        if not names:
            fail(f"ROOT dies reading every branch of {a.a}")
        res[a.a] = root_reads(a.a, a.tree, names)
    res[a.b] = root_reads(a.b, a.tree, names)
    for which, (got, noise) in res.items():
        if got is None:
            fail(f"ROOT could not read {which}: {noise}")
    (ra, na), (rb, nb) = res[a.a], res[a.b]
    if nb - na:
        fail(f"ROOT complained reading {a.b} (not {a.a}): {sorted(nb - na)[0]}")
    if ra["entries"] != rb["entries"] or ra["bytes"] != rb["bytes"]:
        fail(f"ROOT read different bytes per entry from {a.b} than from {a.a}")
    if rb["entries"] and not any(x > 0 for x in rb["bytes"]):
        fail(f"ROOT read nothing from {a.b} (nor from {a.a})")
    print(json.dumps({"entries": rb["entries"], "branches": len(names), "bytes": sum(rb["bytes"]),
                      "root_dies_on_the_input": dies}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare"); c.add_argument("file"); c.add_argument("tree"); c.add_argument("expected")
    c.add_argument("--uproot-only", nargs="*", default=[])
    c = sub.add_parser("friend"); c.add_argument("main"); c.add_argument("tree"); c.add_argument("friend"); c.add_argument("ftree"); c.add_argument("branches", nargs="+")
    c = sub.add_parser("same-baskets"); c.add_argument("a"); c.add_argument("b"); c.add_argument("tree")
    c = sub.add_parser("root-reads"); c.add_argument("a"); c.add_argument("b"); c.add_argument("tree")
    a = p.parse_args()
    {"compare": cmd_compare, "friend": cmd_friend, "same-baskets": cmd_same_baskets,
     "root-reads": cmd_root_reads}[a.cmd](a)


if __name__ == "__main__":
    main()
