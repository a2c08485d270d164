#!/usr/bin/env python3
"""Writes, with real ROOT 6.40 (the pip wheel), a tree of vectors of strings and nested vectors:

  gen_nested_file.py OUT.root [--entries N] [--compression SETTING]

Tree `t`, small baskets so that every branch spans many: `names` std::vector<std::string>
(empty vectors, empty strings, strings of 255 bytes and more, which take TString's long length
form, and UTF-8), `vvf` std::vector<std::vector<float>> (empty inner vectors, NaN and
infinities), `vvi` std::vector<std::vector<int>>, `vvd` std::vector<std::vector<double>>, `vvs`
std::vector<std::vector<std::string>>, `links` std::vector<std::vector<ElementLink<Particles>>>
(ATLAS's persistent form: ElementLinkBase holding m_persKey and m_persIndex, foreign classes
written with their checksums; compiled with ACLiC in a temporary directory, which needs a C++
compiler) and a flat `x` (int).
"""
import argparse
import math
import os
import random
import sys
import tempfile

HEADER = r"""
#include <cstdint>
#include <vector>
struct ElementLinkBase { uint32_t m_persKey = 0; uint32_t m_persIndex = 0; };
struct Particles {};
template <class T> struct ElementLink : public ElementLinkBase {};
#ifdef __ROOTCLING__
#pragma link C++ class ElementLinkBase+;
#pragma link C++ class Particles+;
#pragma link C++ class ElementLink<Particles>+;
#pragma link C++ class std::vector<ElementLink<Particles> >+;
#pragma link C++ class std::vector<std::vector<ElementLink<Particles> > >+;
#endif
"""


def text(r):
    pick = r.random()
    if pick < 0.1:
        return ""
    if pick < 0.15:
        return "long-" + "x" * r.choice([250, 251, 300, 1000])
    if pick < 0.2:
        return "µ→α " + str(r.randrange(100))
    return "s%d" % r.randrange(10**r.randrange(1, 8))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--entries", type=int, default=300)
    ap.add_argument("--compression", type=int, help="ROOT's compression setting (0: none); default ROOT's")
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    import ROOT
    ROOT.gROOT.SetBatch(True)
    std = ROOT.std
    tmp = tempfile.TemporaryDirectory()
    with open(os.path.join(tmp.name, "hepml_links.h"), "w") as f:
        f.write(HEADER)
    here = os.getcwd()
    ROOT.gSystem.ChangeDirectory(tmp.name)
    if ROOT.gROOT.ProcessLine(".L hepml_links.h+") != 0 and not hasattr(ROOT, "ElementLinkBase"):
        sys.exit("gen_nested_file: ACLiC could not compile ElementLink")
    ROOT.gSystem.ChangeDirectory(here)
    link_t = ROOT.ElementLink["Particles"]
    f = ROOT.TFile.Open(out + ".tmp", "RECREATE")
    if a.compression is not None:
        f.SetCompressionSettings(a.compression)
    t = ROOT.TTree("t", "vectors of strings and nested vectors")
    names = std.vector(std.string)()
    vvf = std.vector(std.vector("float"))()
    vvi = std.vector(std.vector("int"))()
    vvd = std.vector(std.vector("double"))()
    vvs = std.vector(std.vector(std.string))()
    links = std.vector(std.vector(link_t))()
    import array
    x = array.array("i", [0])
    t.Branch("x", x, "x/I")
    for name, obj in (("names", names), ("vvf", vvf), ("vvi", vvi), ("vvd", vvd), ("vvs", vvs), ("links", links)):
        t.Branch(name, obj, 2000)
    r = random.Random(11)
    special = [math.nan, math.inf, -math.inf]
    for i in range(a.entries):
        x[0] = i
        names.clear()
        for _ in range(r.choice([0, 0, 1, 2, 3, 5])):
            names.push_back(text(r))
        for v, ty, make in ((vvf, "float", lambda: r.choice(special) if r.random() < 0.05 else r.gauss(0, 10)),
                            (vvi, "int", lambda: r.randrange(-2**31, 2**31)),
                            (vvd, "double", lambda: r.gauss(0, 1e5))):
            v.clear()
            for _ in range(r.choice([0, 1, 2, 4])):
                inner = std.vector(ty)()
                for _ in range(r.choice([0, 1, 3, 6])):
                    inner.push_back(make())
                v.push_back(inner)
        vvs.clear()
        for _ in range(r.choice([0, 1, 2, 3])):
            inner = std.vector(std.string)()
            for _ in range(r.choice([0, 1, 2, 4])):
                inner.push_back(text(r))
            vvs.push_back(inner)
        links.clear()
        for _ in range(r.choice([0, 1, 2, 3])):
            inner = std.vector(link_t)()
            for _ in range(r.choice([0, 1, 2, 5])):
                el = link_t()
                el.m_persKey, el.m_persIndex = r.randrange(2**32), r.randrange(100)
                inner.push_back(el)
            links.push_back(inner)
        t.Fill()
    t.Write()
    f.Close()
    os.replace(out + ".tmp", out)
    tmp.cleanup()


if __name__ == "__main__":
    main()
