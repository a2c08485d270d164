#!/usr/bin/env python3
"""Writes, with real ROOT 6.40 (the pip wheel), a tree of the layouts experiments use:

  gen_split_file.py OUT.root [--entries N] [--unsplit] [--compression N]

Tree `t`: a split class `evt` (TObject base, int/float members, a fixed array, a Double32_t
with a range, a TClonesArray of hits with a fixed-array member, a split std::vector<Jet>, a
std::vector<float>), a leaf-list branch `point` (x/F:y/F:n/I:w[2]/D), a flat `score_in`
(float), a std::vector<std::vector<float>> `nested` and a std::vector<std::string> `tags`.
Some events and hits are referenced, as a TRef makes them, so that ROOT writes a process id
after their fBits.
With --unsplit, also `whole.`: an object written whole (splitlevel 0, small baskets) of a
class with a TObject base, a std::string, numbers, vectors of float/int/bool, a TString and
a fixed array, as BDSIM writes its samplers.
The classes are compiled with ACLiC in a temporary directory (needs a C++ compiler).
"""
import argparse
import os
import random
import sys
import tempfile

HEADER = r"""
#include <vector>
#include "TObject.h"
#include "TClonesArray.h"
#include "TProcessID.h"
class Hit : public TObject {
 public:
  float e = 0; int layer = 0; double pos[3] = {0, 0, 0};
  ClassDef(Hit, 1);
};
struct Jet { float pt = 0; float eta = 0; int n = 0; };
class Evt : public TObject {
 public:
  int run = 0; float met = 0; double w[2] = {0, 0};
  Double32_t charge; //[-10,10,12]
  TClonesArray* hits; std::vector<Jet> jets; std::vector<float> vf;
  Evt() : charge(0), hits(new TClonesArray("Hit")) {}
  ClassDef(Evt, 1);
};
struct Point { float x; float y; int n; double w[2]; };
class Sampler : public TObject {
 public:
  std::string name; int n = 0; std::vector<float> e; std::vector<int> id; float z = 0;
  std::vector<bool> ion; TString label; short arr[3] = {0, 0, 0}; double s = 0;
  Long64_t big = 0; unsigned char flag = 0; bool ok = false;
  ClassDef(Sampler, 2);
};
inline void fill_sampler(Sampler* s, int i, double a) {
  s->name = i % 5 == 4 ? "" : "DRIFT_" + std::to_string(i); s->n = i % 4;
  s->e.clear(); s->id.clear(); s->ion.clear();
  for (int k = 0; k < s->n; k++) {
    s->e.push_back(a * (k + 1)); s->id.push_back(2212 - k * i); s->ion.push_back((i + k) % 3 == 0);
  }
  s->z = -a; s->label = TString::Format("label%d", i * i); s->arr[0] = i; s->arr[1] = -i;
  s->arr[2] = 7; s->s = a * 1e3; s->big = (Long64_t)i << 40; s->flag = 250 + i % 6; s->ok = i % 2;
}
// A referenced object (as a TRef to it makes it): its fBits has kIsReferenced, and ROOT writes
// a 2-byte process id after that fBits word.
inline void referenced(TObject* o, bool yes) {
  if (yes) {
    TProcessID::AssignID(o);
  } else {
    o->ResetBit(kIsReferenced);
    o->SetUniqueID(0);
  }
}
inline void fill_evt(Evt* e, Point* p, int i, double a, double b) {
  referenced(e, i % 7 == 3);
  e->run = i; e->met = a; e->w[0] = i * 0.5; e->w[1] = -i; e->charge = (i % 7) - 3.3;
  e->hits->Clear();
  for (int k = 0; k < i % 4; k++) {
    Hit* h = (Hit*)e->hits->ConstructedAt(k);
    referenced(h, (i + k) % 5 == 1);
    h->e = a * k; h->layer = k; h->pos[0] = k; h->pos[1] = i; h->pos[2] = b;
  }
  e->jets.clear(); e->vf.clear();
  for (int k = 0; k < i % 3; k++) {
    Jet j; j.pt = b + k; j.eta = -a; j.n = k;
    e->jets.push_back(j); e->vf.push_back(k * 1.5);
  }
  p->x = a; p->y = -b; p->n = i; p->w[0] = a * b; p->w[1] = i;
}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--entries", type=int, default=60)
    ap.add_argument("--unsplit", action="store_true", help="add the unsplit object branch `whole.`")
    ap.add_argument("--compression", type=int, help="ROOT compression setting (0: none)")
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    import ROOT
    ROOT.gROOT.SetBatch(True)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "hepml_split.h"), "w") as f:
            f.write(HEADER)
        ROOT.gSystem.ChangeDirectory(tmp)
        if ROOT.gROOT.ProcessLine(".L hepml_split.h+") != 0 and not hasattr(ROOT, "Evt"):
            sys.exit("gen_split_file: ACLiC could not compile the classes")
        f = ROOT.TFile.Open(out + ".tmp", "RECREATE")
        if a.compression is not None:
            f.SetCompressionSettings(a.compression)
        t = ROOT.TTree("t", "split objects, leaf lists")
        e = ROOT.Evt()
        p = ROOT.Point()
        score = ROOT.std.vector("float")(1)
        nested = ROOT.std.vector(ROOT.std.vector("float"))()
        tags = ROOT.std.vector(ROOT.std.string)()
        t.Branch("evt", e, 32000, 99)
        t.Branch("point", p, "x/F:y/F:n/I:w[2]/D")
        import array
        s = array.array("f", [0.0])
        t.Branch("score_in", s, "score_in/F")
        t.Branch("nested", nested)
        t.Branch("tags", tags)
        smp = ROOT.Sampler()
        if a.unsplit:
            t.Branch("whole.", smp, 1000, 0)
        r = random.Random(7)
        for i in range(a.entries):
            ROOT.fill_evt(e, p, i, r.random(), r.random())
            if a.unsplit:
                ROOT.fill_sampler(smp, i, r.random())
            s[0] = r.gauss(0, 1)
            nested.clear()
            for k in range(i % 3):
                v = ROOT.std.vector("float")()
                for m in range(k + 1):
                    v.push_back(m + 0.25)
                nested.push_back(v)
            tags.clear()
            for k in range(i % 4):
                tags.push_back("tag%d" % (i * k) if k != 2 else "")
            t.Fill()
        t.Write()
        f.Close()
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
