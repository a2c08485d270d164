#!/usr/bin/env python3
"""Writes rootio/src/write/template-root-6.40.root with real ROOT (pip `root` wheel).

hepml's writer builds new TTree/TBranch/TLeaf objects by copying the ones ROOT itself made in
this file (one branch per leaf class, fixed/variable arrays, std::vector<T> and std::string
branch elements), and takes its streamer infos from it, so every default field is ROOT's own.
Regenerate only when adding a branch kind; the file is committed.
"""
import array
import os
import sys
import warnings

warnings.filterwarnings("ignore")
import ROOT  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "rootio", "src", "write", "template-root-6.40.root")
f = ROOT.TFile(out + ".tmp", "RECREATE", "", 0)
t = ROOT.TTree("template", "hepml branch templates")
keep = []
for code, typ in [("O", "b"), ("B", "b"), ("b", "B"), ("S", "h"), ("s", "H"), ("I", "i"), ("i", "I"),
                  ("L", "q"), ("l", "Q"), ("F", "f"), ("D", "d"), ("f", "f"), ("d", "d")]:
    buf = array.array(typ, [0] * 8)
    keep.append(buf)
    t.Branch("leaf_" + code, buf, "leaf_%s/%s" % (code, code))
cbuf = array.array("b", b"\0" * 64)
keep.append(cbuf)
t.Branch("leaf_C", cbuf, "leaf_C/C")
n = array.array("i", [0])
va = array.array("f", [0.0] * 8)
keep += [n, va]
t.Branch("n", n, "n/I")
t.Branch("va", va, "va[n]/F")
for cpp in ["bool", "char", "unsigned char", "short", "unsigned short", "int", "unsigned int",
            "Long64_t", "ULong64_t", "float", "double"]:
    v = ROOT.std.vector(cpp)()
    keep.append(v)
    t.Branch("vec_" + cpp.replace(" ", "_"), v)
s = ROOT.std.string()
keep.append(s)
t.Branch("str", s)
t.Write()
f.Close()
os.replace(out + ".tmp", out)
print("wrote", out, os.path.getsize(out), "bytes")
