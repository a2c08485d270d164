#!/usr/bin/env python3
"""Writes ROOT files with varied, seeded schemas for the reader's correctness gate.

  gen_root_files.py OUTDIR --seed S

Per seed: one file written by real ROOT 6.40 (PyROOT TTree::Branch) and one by uproot 5.7
(mktree/extend), each with a random subset of branch kinds — every numeric type, Float16_t and
Double32_t with and without ranges (ROOT), fixed arrays [N] and [N][M], C-style variable arrays
with their counter, std::vector<T> and std::string (ROOT only: uproot cannot write them),
char* — a random compression (none/zlib/lzma/lz4/zstd, random level), a random entry count
(0, 1 or many) and a small random basket size so branches span many baskets. NaN and ±inf
appear in floats. Writes manifest.json describing each file.
"""
import argparse
import array
import json
import os
import warnings

import numpy as np

warnings.filterwarnings("ignore")

ROOT_CODES = [("O", "b", "bool"), ("B", "b", "int8"), ("b", "B", "uint8"), ("S", "h", "int16"), ("s", "H", "uint16"),
              ("I", "i", "int32"), ("i", "I", "uint32"), ("L", "q", "int64"), ("l", "Q", "uint64"),
              ("F", "f", "float32"), ("D", "d", "float64")]
VEC_TYPES = ["float", "double", "int", "unsigned int", "short", "Long64_t", "unsigned char", "bool"]


def values(rng, dtype, n):
    if dtype == "bool":
        return rng.integers(0, 2, n).astype(bool)
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    x = rng.normal(0, 100, n).astype(dtype)
    if n > 10:
        x[rng.integers(0, n, 3)] = np.nan
        x[rng.integers(0, n)] = np.inf
        x[rng.integers(0, n)] = -np.inf
    return x


def root_file(path, seed):
    import ROOT
    rng = np.random.default_rng(seed)
    algo = int(rng.choice([0, 1, 2, 4, 5]))
    comp = 0 if algo == 0 else algo * 100 + int(rng.integers(1, 10))
    n = [2000, 0, 1][seed % 3]
    f = ROOT.TFile(path, "RECREATE", "", comp)
    t = ROOT.TTree("t", f"seed {seed}")
    keep, fill, kinds = [], [], []
    cnt = array.array("i", [0])
    keep.append(cnt)
    t.Branch("cnt", cnt, "cnt/I")
    kinds.append("counter")
    picks = rng.choice(len(ROOT_CODES), size=int(rng.integers(4, len(ROOT_CODES) + 1)), replace=False)
    for k in picks:
        code, tc, dt = ROOT_CODES[k]
        shape = rng.choice(["scalar", "fixed", "fixed2", "var"])
        name = f"{dt}_{shape}"
        size = {"scalar": 1, "fixed": 3, "fixed2": 6, "var": 8}[shape]
        buf = array.array(tc, [0] * size)
        keep.append(buf)
        leaf = {"scalar": name, "fixed": f"{name}[3]", "fixed2": f"{name}[2][3]", "var": f"{name}[cnt]"}[shape]
        t.Branch(name, buf, f"{leaf}/{code}")
        fill.append((buf, dt, size, shape))
        kinds.append(f"{dt}:{shape}")
    for fcode, rangetxt in [("f", ""), ("f", "[0,100,10]"), ("d", ""), ("d", "[-10,10,16]")]:
        if rng.random() < 0.6:
            name = f"packed_{fcode}{len(kinds)}"
            buf = array.array("f" if fcode == "f" else "d", [0.0])
            keep.append(buf)
            t.Branch(name, buf, f"{name}/{fcode}{rangetxt}")
            fill.append((buf, "packed", 1, rangetxt))
            kinds.append(f"{fcode}{rangetxt}")
    vecs = []
    for cpp in rng.choice(VEC_TYPES, size=int(rng.integers(1, 4)), replace=False):
        v = ROOT.std.vector(str(cpp))()
        keep.append(v)
        t.Branch("vec_" + str(cpp).replace(" ", "_"), v)
        vecs.append((v, str(cpp)))
        kinds.append(f"vector<{cpp}>")
    s = ROOT.std.string()
    t.Branch("stdstr", s)
    cs = array.array("b", b"\0" * 64)
    t.Branch("cstr", cs, "cstr/C")
    keep += [s, cs]
    for b in t.GetListOfBranches():
        b.SetBasketSize(int(rng.choice([100, 300, 1000, 32000])))
    for i in range(n):
        cnt[0] = int(rng.integers(0, 9))
        for buf, dt, size, shape in fill:
            if dt == "packed":
                lo, hi = (0, 100) if "100" in shape else (-10, 10)
                buf[0] = float(rng.uniform(lo, hi)) if shape else float(rng.normal(0, 50))
                continue
            vals = values(rng, dt, size)
            for j in range(size):
                buf[j] = bool(vals[j]) if dt == "bool" else vals[j].item()
        for v, cpp in vecs:
            v.clear()
            for _ in range(int(rng.integers(0, 5))):
                if cpp in ("float", "double"):
                    v.push_back(float(rng.normal()))
                elif cpp == "bool":
                    v.push_back(bool(rng.integers(0, 2)))
                elif cpp == "unsigned char":
                    v.push_back(int(rng.integers(0, 256)))
                else:
                    v.push_back(int(rng.integers(-1000, 1000)) if "unsigned" not in cpp else int(rng.integers(0, 1000)))
        s.assign("s" * int(rng.integers(0, 300)))
        txt = ("c%d" % i).encode()
        cs[:len(txt) + 1] = array.array("b", txt + b"\0")
        t.Fill()
    t.Write()
    f.Close()
    return {"writer": "root", "compression": comp, "entries": n, "branches": kinds}


def uproot_file(path, seed):
    import uproot
    import awkward as ak
    rng = np.random.default_rng(seed + 1000)
    comp = rng.choice(["none", "zlib", "lzma", "lz4", "zstd"])
    level = int(rng.integers(1, 10))
    compression = None if comp == "none" else {"zlib": uproot.ZLIB, "lzma": uproot.LZMA, "lz4": uproot.LZ4, "zstd": uproot.ZSTD}[comp](level)
    n = [3000, 1, 0][seed % 3]
    chunks = int(rng.integers(1, 6)) if n > 1 else 1
    dts = [d for _, _, d in ROOT_CODES]
    picks = list(rng.choice(dts, size=int(rng.integers(3, len(dts) + 1)), replace=False))
    schema, kinds = {}, []
    for dt in picks:
        schema[f"{dt}_s"] = np.dtype(dt)
        kinds.append(dt)
    schema["fixed_f8"] = np.dtype(("f8", (4,)))
    schema["jag"] = ak.types.from_datashape("var * float32", highlevel=False)
    with uproot.recreate(path, compression=compression) as f:
        f.mktree("u", schema)
        bounds = np.linspace(0, n, chunks + 1).astype(int)
        for a, b in zip(bounds[:-1], bounds[1:]):
            m = b - a
            data = {f"{dt}_s": values(rng, dt, m) for dt in picks}
            data["fixed_f8"] = values(rng, "float64", m * 4).reshape(m, 4)
            counts = rng.integers(0, 6, m)
            data["jag"] = ak.unflatten(values(rng, "float32", int(counts.sum())), counts)
            f["u"].extend(data)
    return {"writer": "uproot", "compression": f"{comp}-{level}", "entries": n, "chunks": chunks, "branches": kinds + ["fixed_f8", "jag"]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("outdir")
    p.add_argument("--seed", type=int, action="append", required=True)
    a = p.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    manifest = {}
    for s in a.seed:
        for kind, fn in (("root", root_file), ("uproot", uproot_file)):
            path = os.path.join(a.outdir, f"gen_{kind}_{s}.root")
            manifest[os.path.basename(path)] = fn(path, s)
    with open(os.path.join(a.outdir, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
    print(json.dumps(manifest))


if __name__ == "__main__":
    main()
