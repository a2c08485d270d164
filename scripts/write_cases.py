#!/usr/bin/env python3
"""Inputs and twins written by real ROOT 6.40 for the writer checks of
rootio/tests/rootio_write_layouts.rs (directories, cluster ranges, Float16_t/Double32_t), and
the reading of what hepml wrote. ROOT runs through verify_written.py's run_root: any ROOT
"Error in <" / "Warning in <" line fails.

  write_cases.py make-dirs OUT
      A file whose only tree is in a directory: `data` (title "Data") holds the tree `events`
      (x/D, n/I, pt[n]/F, std::vector<int>) and a directory `more` holding a tree `aux`;
      `empty` is an empty directory (title "Nothing here"); `calib/v1` holds a TH1F and a
      TObjString. Nothing but directories at the top.
  write_cases.py make-clusters OUT AUTOFLUSH N MARK...
      ROOT fills a tree `t` (x/D = 1.1*i, n/I = i%4, v[n]/F = i+j) with SetAutoFlush(AUTOFLUSH)
      and N entries, calling TTree::FlushBaskets() after entry MARK (1-based count) for each
      MARK: ROOT's cluster ranges.
  write_cases.py clusters FILE TREE
      The cluster members as uproot reads them (fAutoFlush, fNClusterRange, fClusterRangeEnd,
      fClusterSize), ROOT's cluster starts (TTree::GetClusterIterator), uproot's common entry
      offsets, and each branch's basket starts, as JSON.
  write_cases.py make-packed OUT
      A tree `packed` with Float16_t and Double32_t leaves, with and without ranges (scalars,
      and a Double32_t array counted by n/I), beside a plain float: the forms uproot 5.7
      reads (it fails on Float16_t arrays and misreads ranged arrays, taking `[3]`/`[n]` for
      the range).
  write_cases.py make-ranges OUT
      A tree `ranges` of Float16_t/Double32_t scalar leaves with every form of range ROOT's
      TStreamerElement::GetRange distinguishes (32 bits, fewer, a Float16_t range, `pi`, an
      empty range below and from 15 bits); prints ROOT's own reading of every entry as
      {"values": {leaf: [the bits of each value as a float64, ...]}}.
  write_cases.py make-class OUT
      A tree `hits` with a split branch `hit` of an interpreted class whose members are
      Double32_t and Float16_t with and without ranges (`Double32_t e; //[0,100,16]`) and an
      int: ROOT's TBranchElement form of these types (uproot reads the split members; it fails
      on the same class unsplit).
  write_cases.py make-big-baskets OUT
      A tree `events` written by uproot (one basket per branch per extend): x/D holds 300000
      random doubles in one basket of about 2.4 MB, then 1000 more in a small one; n/I (i % 4)
      two small baskets. Copies of baskets of 512 kB and more are made by the kernel.
  write_cases.py values FILE TREE
      uproot's values of every branch of TREE that holds data (a split object's members, not
      the object), as JSON lists (floats as hex strings).
  write_cases.py leaves FILE TREE
      ROOT's per-leaf checksums of every entry (TLeaf::GetValue, split members included), as
      JSON.
"""
import argparse
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify_written import CLUSTERS, run_root  # noqa: E402

MAKE_DIRS = r'''
import array
f = ROOT.TFile(sys.argv[1], "RECREATE")
d = f.mkdir("data", "Data")
d.cd()
t = ROOT.TTree("events", "events in a directory")
x = array.array("d", [0.0]); n = array.array("i", [0]); pt = array.array("f", [0.0] * 8)
vec = ROOT.std.vector("int")()
t.Branch("x", x, "x/D"); t.Branch("n", n, "n/I"); t.Branch("pt", pt, "pt[n]/F")
t.Branch("vec", vec)
for i in range(3000):
    x[0] = i * 0.5 - 7.0
    n[0] = i % 4
    for j in range(n[0]):
        pt[j] = 3.0 + i + 0.25 * j
    vec.clear()
    for j in range(i % 3):
        vec.push_back(i * 7 + j)
    t.Fill()
t.Write()
m = d.mkdir("more", "More")
m.cd()
a = ROOT.TTree("aux", "auxiliary")
k = array.array("i", [0]); a.Branch("k", k, "k/I")
for i in range(50):
    k[0] = i * i; a.Fill()
a.Write()
f.mkdir("empty", "Nothing here")
c = f.mkdir("calib", "Calibration")
v = c.mkdir("v1", "Version 1")
v.cd()
h = ROOT.TH1F("h", "calibration", 10, 0, 1)
for i in range(10):
    h.Fill(i / 10.0 + 0.05, i)
h.Write()
ROOT.TObjString("calibrated on run 7").Write("note")
f.Close()
print(json.dumps({"written": sys.argv[1]}))
'''

MAKE_CLUSTERS = r'''
import array
out, af, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
marks = set(int(m) for m in sys.argv[4:])
f = ROOT.TFile(out, "RECREATE")
t = ROOT.TTree("t", "t")
t.SetAutoFlush(af)
x = array.array("d", [0.0]); c = array.array("i", [0]); v = array.array("f", [0.0] * 4)
t.Branch("x", x, "x/D"); t.Branch("n", c, "n/I"); t.Branch("v", v, "v[n]/F")
for i in range(n):
    x[0] = 1.1 * i
    c[0] = i % 4
    for j in range(c[0]):
        v[j] = i + j
    t.Fill()
    if i + 1 in marks:
        t.FlushBaskets()
t.Write()
f.Close()
print(json.dumps({"written": out}))
'''

MAKE_PACKED = r'''
import array
f = ROOT.TFile(sys.argv[1], "RECREATE")
t = ROOT.TTree("packed", "Float16_t and Double32_t leaves")
n = array.array("i", [0])
plain = array.array("f", [0.0])
h = array.array("f", [0.0]); hr = array.array("f", [0.0])
d = array.array("d", [0.0]); dr = array.array("d", [0.0]); dt = array.array("d", [0.0])
dv = array.array("d", [0.0] * 5)
t.Branch("n", n, "n/I")
t.Branch("plain", plain, "plain/F")
t.Branch("h", h, "h/f")
t.Branch("hr", hr, "hr/f[-10,10,12]")
t.Branch("d", d, "d/d")
t.Branch("dr", dr, "dr/d[0,1,20]")
t.Branch("dt", dt, "dt/d[0,0,14]")
t.Branch("dv", dv, "dv[n]/d")
for i in range(2000):
    s = ((i * 7919) % 1000) / 997.0  # full mantissas; a few past 1 (clamped by ranges)
    n[0] = i % 6
    plain[0] = i * 0.1
    h[0] = 1000.0 * s - 300.0
    hr[0] = 20.0 * s - 10.0
    d[0] = 1e6 * s - 123.456
    dr[0] = s
    dt[0] = s * 1e3
    for j in range(n[0]):
        dv[j] = -s * j - 0.1 * i
    t.Fill()
t.Write()
f.Close()
print(json.dumps({"written": sys.argv[1]}))
'''

MAKE_RANGES = r'''
import array, random, struct
leaves = {"r32": "d[-10,10,32]", "r31": "d[-1e3,1e3,31]", "r24": "d[0.1,0.3,24]",
          "f10": "f[-3.3,7.1,10]", "f16": "f[0,100,16]", "fpi": "f[-pi,pi,16]",
          "dpi": "d[0,2*pi]", "e10": "f[5,5,10]", "d20": "d[0,0,20]", "f20": "f[0,0,20]"}
f = ROOT.TFile(sys.argv[1], "RECREATE")
t = ROOT.TTree("ranges", "Float16_t and Double32_t ranges")
buf = {}
for name, ty in leaves.items():
    buf[name] = array.array(ty[0], [0.0])
    t.Branch(name, buf[name], name + "/" + ty)
r = random.Random(3)
for i in range(3000):
    for b in buf.values():
        # Inside and past the ranges, the ends included.
        b[0] = [-1e3, 1e3, -10.0, 10.0, 0.1, 0.3, 0.0][i % 7] if i % 50 == 0 else r.uniform(-60, 120) * 10 ** r.randint(-2, 1)
    t.Fill()
t.Write()
f.Close()
f = ROOT.TFile(sys.argv[1])
t = f.Get("ranges")
out = {name: [] for name in leaves}
for i in range(t.GetEntries()):
    t.GetEntry(i)
    for name in leaves:
        out[name].append(struct.unpack("<Q", struct.pack("<d", t.GetLeaf(name).GetValue()))[0])
print(json.dumps({"values": out}))
'''

MAKE_CLASS = r'''
ROOT.gInterpreter.Declare("""
struct Hit {
  Double32_t e; //[0,100,16]
  Double32_t t;
  Float16_t q; //[-1,1,10]
  Float16_t w;
  int id;
  Hit(): e(0), t(0), q(0), w(0), id(0) {}
};""")
f = ROOT.TFile(sys.argv[1], "RECREATE")
t = ROOT.TTree("hits", "hits")
h = ROOT.Hit()
t.Branch("hit", h)
for i in range(3000):
    s = ((i * 7919) % 1000) / 997.0
    h.e = 100 * s; h.t = s * 3.3; h.q = 2 * s - 1; h.w = s * 77.7; h.id = i
    t.Fill()
t.Write()
f.Close()
print(json.dumps({"written": sys.argv[1]}))
'''

LEAVES = r'''
f = ROOT.TFile.Open(sys.argv[1])
t = f.Get(sys.argv[2])
leaves = list(t.GetListOfLeaves())
sums = {l.GetName(): hashlib.sha1() for l in leaves}
for i in range(int(t.GetEntries())):
    if t.GetEntry(i) <= 0:
        raise SystemExit("GetEntry(%d) failed" % i)
    for l in leaves:
        h = sums[l.GetName()]
        for j in range(l.GetLen()):
            h.update(float(l.GetValue(j)).hex().encode())
        h.update(b"|")
print(json.dumps({"entries": int(t.GetEntries()), "leaves": {k: v.hexdigest() for k, v in sums.items()}}))
'''


def uproot_open(path):
    import uproot
    return uproot.open(path)


def cmd_clusters(a):
    r = run_root(CLUSTERS, a.file, a.tree)
    del r["autoflush"]  # (uproot's fAutoFlush below)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = uproot_open(a.file)[a.tree]
        for m in ("fAutoFlush", "fNClusterRange"):
            r[m] = int(t.member(m))
        for m in ("fClusterRangeEnd", "fClusterSize"):
            r[m] = [int(x) for x in t.member(m)]
        r["uproot"] = [int(x) for x in t.common_entry_offsets()][:-1]
        r["baskets"] = {b.name: [int(x) for x in b.member("fBasketEntry")[:b.num_baskets]]
                        for b in t.branches}
    print(json.dumps(r))


def cmd_make_big_baskets(a):
    import numpy as np
    import uproot
    rng = np.random.default_rng(7)
    with uproot.recreate(a.out) as f:
        t = f.mktree("events", {"x": "f8", "n": "i4"})
        for n in (300_000, 1000):
            t.extend({"x": rng.normal(size=n), "n": (np.arange(n) % 4).astype("i4")})
    print(json.dumps({"entries": 301_000}))


def cmd_values(a):
    import numpy as np
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = uproot_open(a.file)[a.tree]
        out = {}
        for b in t.itervalues(recursive=True):
            if b.branches:
                continue  # (a split object's parent: its members are branches of their own)
            arr = b.array(library="ak") if b.interpretation.__class__.__name__.startswith(
                "AsJagged") else b.array(library="np")
            vals = arr.tolist()

            def enc(x):
                if isinstance(x, list):
                    return [enc(y) for y in x]
                if isinstance(x, (float, np.floating)):
                    return float(x).hex()
                if isinstance(x, np.ndarray):
                    return [enc(y) for y in x.tolist()]
                return x
            out[b.object_path.split(":")[-1].strip("/")] = {"type": str(b.interpretation), "values": enc(vals)}
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("make-dirs"); c.add_argument("out")
    c = sub.add_parser("make-clusters"); c.add_argument("out"); c.add_argument("autoflush")
    c.add_argument("n"); c.add_argument("marks", nargs="*")
    c = sub.add_parser("clusters"); c.add_argument("file"); c.add_argument("tree")
    c = sub.add_parser("make-packed"); c.add_argument("out")
    c = sub.add_parser("make-class"); c.add_argument("out")
    c = sub.add_parser("make-ranges"); c.add_argument("out")
    c = sub.add_parser("leaves"); c.add_argument("file"); c.add_argument("tree")
    c = sub.add_parser("values"); c.add_argument("file"); c.add_argument("tree")
    c = sub.add_parser("make-big-baskets"); c.add_argument("out")
    a = p.parse_args()
    if a.cmd == "make-dirs":
        print(json.dumps(run_root(MAKE_DIRS, a.out)))
    elif a.cmd == "make-clusters":
        print(json.dumps(run_root(MAKE_CLUSTERS, a.out, a.autoflush, a.n, *a.marks)))
    elif a.cmd == "leaves":
        print(json.dumps(run_root(LEAVES, a.file, a.tree)))
    elif a.cmd == "make-class":
        print(json.dumps(run_root(MAKE_CLASS, a.out)))
    elif a.cmd == "make-ranges":
        print(json.dumps(run_root(MAKE_RANGES, a.out)))
    elif a.cmd == "make-packed":
        print(json.dumps(run_root(MAKE_PACKED, a.out)))
    else:
        {"clusters": cmd_clusters, "values": cmd_values,
         "make-big-baskets": cmd_make_big_baskets}[a.cmd](a)


if __name__ == "__main__":
    main()
