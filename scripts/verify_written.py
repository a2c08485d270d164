#!/usr/bin/env python3
"""Checks of files hepml's writer produces, with real ROOT 6.40 (PyROOT) and uproot, beyond
what root_check.py compares. Used by rootio/tests/rootio_write.rs.

  verify_written.py make-mixed OUT
      ROOT writes a file with several kinds of keys: a tree `events` (scalars, a jagged array,
      a std::vector, a string), a TH1F `h1` with two cycles, a TObjString `note`, a second tree
      `meta`, a directory `plots` (title "Plots") holding a TH2D, and inside it a directory
      `deep` holding a tree `inner` and a TH1D.
  verify_written.py make-twin OUT
      ROOT writes a tree `t` with branches x/F, n/I, v[n]/F, vec (std::vector<double>) and
      s/C, for comparing the streamer classes hepml writes with ROOT's own.
  verify_written.py same-objects IN OUT [--decorated PATH] [--new BRANCH ...]
      Every key of IN (recursively, highest cycle) is in OUT at the same path with the same
      class. Objects other than trees are equal as ROOT sees them (TBufferJSON). Trees have the
      same entries and every branch of IN reads the same in ROOT from both files (per-branch
      checksums over every entry). The tree at PATH may have the new branches BRANCH (which
      ROOT must read too); no other extra key or branch is allowed. uproot must list the same
      keys and read every branch. Prints a JSON summary.
  verify_written.py checksums FILE TREE
      ROOT reads every branch of TREE, every entry; prints {branch: checksum} as JSON.
  verify_written.py clusters FILE TREE
      ROOT's cluster boundaries (TTree::GetClusterIterator), uproot's common basket starts,
      and fAutoFlush, as JSON.
  verify_written.py layout FILE [--allow-gaps]
      Walks the keys from fBEGIN to fEND as ROOT's TFile::Map/Recover do: each key must
      start where the previous one ended (unless gaps are allowed: a sparse test file), have
      fSeekKey equal to its position, and the walk must end exactly at fEND; every key listed
      in a directory must be one of them, with fSeekPdir pointing at that directory.

ROOT runs in child processes; any "Error in <", "Warning in <" or "Fatal in <" line fails the
check, and so does any Python warning raised while uproot reads (except ROOT's own "alpha
stage" notice on import). Exit status 0 when the check holds, 1 with a reason otherwise.
"""
import argparse
import json
import mmap
import os
import struct
import subprocess
import sys
import warnings

ALPHA = dict(message=r"(?s).*alpha stage", category=UserWarning)


def fail(msg):
    print("verify_written: " + msg, file=sys.stderr)
    sys.exit(1)


ROOT_PRELUDE = r'''
import json, sys, warnings, hashlib, struct
warnings.filterwarnings("ignore", message=r"(?s).*alpha stage", category=UserWarning)
import ROOT
'''

# Per-branch checksums of every entry as ROOT reads it. Leaves are read through TLeaf (numbers
# via GetValue, /C strings via GetValueString); branch elements (std::vector, std::string)
# through the tree's attribute.
CHECKSUM_FN = r'''
def fmt(x):
    if isinstance(x, float):
        return x.hex()
    if isinstance(x, str):
        return repr(x)
    return repr(x)

def tree_checksums(t, only=None):
    plan = []
    for br in t.GetListOfBranches():
        name = br.GetName()
        if only is not None and name not in only:
            continue
        leaves = list(br.GetListOfLeaves())
        elem = br.InheritsFrom("TBranchElement")
        plan.append((name, elem, leaves))
    sums = {p[0]: hashlib.sha1() for p in plan}
    n = int(t.GetEntries())
    for i in range(n):
        if t.GetEntry(i) < 0:
            raise SystemExit("GetEntry(%d) failed" % i)
        for name, elem, leaves in plan:
            h = sums[name]
            if elem:
                v = getattr(t, name)
                try:
                    vals = [fmt(float(x)) if isinstance(x, float) else fmt(x) for x in v]
                except TypeError:
                    vals = [fmt(str(v))]
                h.update((";".join(vals) + "|").encode())
                continue
            for leaf in leaves:
                if leaf.IsA().GetName() == "TLeafC":
                    h.update(repr(leaf.GetValueString()).encode())
                else:
                    k = leaf.GetLen()
                    h.update(str(k).encode())
                    for j in range(k):
                        h.update(float(leaf.GetValue(j)).hex().encode())
                h.update(b"|")
    return n, {k: v.hexdigest() for k, v in sums.items()}
'''


def run_root(code, *args):
    r = subprocess.run([sys.executable, "-c", ROOT_PRELUDE + code, *args],
                       capture_output=True, text=True, timeout=900)
    noise = [l for l in (r.stderr + r.stdout).splitlines()
             if l.startswith(("Error in <", "Warning in <", "Fatal in <"))]
    if noise:
        fail(f"ROOT complained: {noise[0]}")
    if r.returncode != 0:
        tail = r.stderr.strip().splitlines()[-3:] if r.stderr.strip() else [str(r.returncode)]
        fail("ROOT failed: " + " / ".join(tail))
    return json.loads(r.stdout.strip().splitlines()[-1])


MAKE_MIXED = r'''
import array
out = sys.argv[1]
f = ROOT.TFile(out, "RECREATE")
t = ROOT.TTree("events", "mixed events")
x = array.array("d", [0.0]); n = array.array("i", [0]); pt = array.array("f", [0.0] * 8)
s = array.array("b", b"\0" * 32)
vec = ROOT.std.vector("int")()
t.Branch("x", x, "x/D"); t.Branch("n", n, "n/I"); t.Branch("pt", pt, "pt[n]/F")
t.Branch("s", s, "s/C"); t.Branch("vec", vec)
for i in range(5000):
    x[0] = i * 0.25 - 100.0
    n[0] = i % 5
    for j in range(n[0]):
        pt[j] = 10.0 + i + 0.5 * j
    txt = ("ev%d" % i).encode()
    for j, c in enumerate(txt + b"\0"):
        s[j] = c
    vec.clear()
    for j in range(i % 3):
        vec.push_back(i * 10 + j)
    t.Fill()
t.Write()
h1 = ROOT.TH1F("h1", "first histogram", 20, -5, 5)
h1.FillRandom("gaus", 1000)
h1.Write()
h1.FillRandom("gaus", 500)
h1.Write()  # cycle 2
ROOT.TObjString("a note about this file").Write("note")
m = ROOT.TTree("meta", "run metadata")
run = array.array("i", [0]); lumi = array.array("f", [0.0])
m.Branch("run", run, "run/I"); m.Branch("lumi", lumi, "lumi/F")
for i in range(10):
    run[0] = 1000 + i; lumi[0] = 0.1 * i; m.Fill()
m.Write()
d = f.mkdir("plots", "Plots")
d.cd()
h2 = ROOT.TH2D("h2", "two dims", 10, 0, 1, 10, 0, 1)
for i in range(100):
    h2.Fill((i % 10) / 10.0 + 0.05, (i // 10) / 10.0 + 0.05, i)
h2.Write()
dd = d.mkdir("deep", "Deeper")
dd.cd()
inner = ROOT.TTree("inner", "a tree in a subdirectory")
a = array.array("l", [0]); b = array.array("f", [0.0] * 3)
inner.Branch("a", a, "a/L"); inner.Branch("b", b, "b[3]/F")
for i in range(300):
    a[0] = i * 1000003; b[0] = i; b[1] = -i; b[2] = i * 0.5
    inner.Fill()
inner.Write()
h3 = ROOT.TH1D("h3", "deep histogram", 5, 0, 5)
h3.Fill(1); h3.Fill(3, 2.5)
h3.Write()
f.Close()
print(json.dumps({"written": out}))
'''

MAKE_TWIN = r'''
import array
f = ROOT.TFile(sys.argv[1], "RECREATE")
t = ROOT.TTree("t", "t")
x = array.array("f", [0]); n = array.array("i", [0]); v = array.array("f", [0] * 8)
s = array.array("b", b"\0" * 8)
vec = ROOT.std.vector("double")()
t.Branch("x", x, "x/F"); t.Branch("n", n, "n/I"); t.Branch("v", v, "v[n]/F")
t.Branch("vec", vec); t.Branch("s", s, "s/C")
for i in range(10):
    x[0] = i; n[0] = i % 3; vec.clear(); vec.push_back(i)
    t.Fill()
t.Write(); f.Close()
print(json.dumps({"written": sys.argv[1]}))
'''

# Every key (highest cycle per name) of a file, recursively: {path: class}; and for non-tree
# objects their TBufferJSON text, for trees their entries and branch checksums.
DESCRIBE = CHECKSUM_FN + r'''
path = sys.argv[1]
only = json.loads(sys.argv[2]) if len(sys.argv) > 2 else None
f = ROOT.TFile.Open(path)
if not f or f.IsZombie():
    raise SystemExit("cannot open " + path)
out = {}
def walk(d, prefix):
    best = {}
    for k in d.GetListOfKeys():
        if k.GetName() not in best or best[k.GetName()].GetCycle() < k.GetCycle():
            best[k.GetName()] = k
    for name, k in best.items():
        p = prefix + name
        cls = k.GetClassName()
        if cls in ("TDirectory", "TDirectoryFile"):
            sub = d.Get(name)
            out[p] = {"class": "TDirectory", "title": k.GetTitle()}
            walk(sub, p + "/")
            continue
        obj = k.ReadObj()
        if obj.InheritsFrom("TTree"):
            want = None if only is None else only.get(p)
            n, sums = tree_checksums(obj, want)
            out[p] = {"class": cls, "entries": n, "branches": sums, "title": obj.GetTitle()}
        else:
            out[p] = {"class": cls, "json": str(ROOT.TBufferJSON.ConvertToJSON(obj))}
walk(f, "")
print(json.dumps(out))
'''

CHECKSUMS = CHECKSUM_FN + r'''
f = ROOT.TFile.Open(sys.argv[1])
t = f.Get(sys.argv[2])
n, sums = tree_checksums(t)
print(json.dumps({"entries": n, "branches": sums}))
'''

CLUSTERS = r'''
f = ROOT.TFile.Open(sys.argv[1])
t = f.Get(sys.argv[2])
it = t.GetClusterIterator(0)
starts = []
while True:
    s = it()
    if s >= t.GetEntries():
        break
    starts.append(int(s))
print(json.dumps({"root": starts, "autoflush": int(t.GetAutoFlush())}))
'''


def uproot_keys(path):
    """{path: classname} with uproot, highest cycles; reads every branch of every tree."""
    import uproot
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = uproot.open(path)
        out = {}
        for k, cls in f.classnames(recursive=True, cycle=False).items():
            out[k] = cls
            if cls in ("TTree", "TNtuple", "TNtupleD"):
                t = f[k]
                for b in t.branches:
                    b.array(library="np")
    return out


def cmd_make(code, a):
    print(json.dumps(run_root(code, a.out)))


def cmd_same_objects(a):
    new = set(a.new or [])
    dec = (a.decorated or "").strip("/")
    src = run_root(DESCRIBE, a.input)
    dst = run_root(DESCRIBE, a.output)
    for p, d in src.items():
        if p not in dst:
            fail(f"{p} ({d['class']}) missing from {a.output}")
        e = dst[p]
        if e["class"] != d["class"]:
            fail(f"{p}: class {d['class']} became {e['class']}")
        if d["class"] == "TDirectory":
            if e["title"] != d["title"]:
                fail(f"directory {p}: title {d['title']!r} became {e['title']!r}")
        elif "json" in d:
            if e["json"] != d["json"]:
                fail(f"{p} ({d['class']}) differs as ROOT reads it")
        else:
            if e["entries"] != d["entries"] or e["title"] != d["title"]:
                fail(f"tree {p}: {d['entries']} entries, title {d['title']!r} became "
                     f"{e['entries']}, {e['title']!r}")
            for b, s in d["branches"].items():
                if e["branches"].get(b) != s:
                    fail(f"tree {p}: branch {b} reads differently in ROOT")
            extra = set(e["branches"]) - set(d["branches"])
            allowed = new if p == dec else set()
            if extra != allowed:
                fail(f"tree {p}: extra branches {sorted(extra)}, expected {sorted(allowed)}")
    extra_keys = set(dst) - set(src)
    if extra_keys - set(a.allow_extra or []):
        fail(f"keys not in the input: {sorted(extra_keys)}")
    ku, ko = uproot_keys(a.input), uproot_keys(a.output)
    missing = {k: v for k, v in ku.items() if ko.get(k) != v}
    if missing:
        fail(f"uproot: keys missing or of another class in the output: {missing}")
    print(json.dumps({"keys": len(src), "trees": sum(1 for d in src.values() if "entries" in d)}))


def cmd_checksums(a):
    print(json.dumps(run_root(CHECKSUMS, a.file, a.tree)))


def cmd_clusters(a):
    import uproot
    r = run_root(CLUSTERS, a.file, a.tree)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = uproot.open(a.file)[a.tree]
        r["uproot"] = [int(x) for x in t.common_entry_offsets()][:-1]
        r["baskets"] = {b.name: [int(x) for x in b.member("fBasketEntry")[:b.num_baskets]]
                        for b in t.branches}
    print(json.dumps(r))


def read_key(buf, pos):
    nbytes, version, objlen, datime, keylen, cycle = struct.unpack(">ihiIhh", buf[pos:pos + 18])
    if version > 1000:
        seek_key, seek_pdir = struct.unpack(">qq", buf[pos + 18:pos + 34])
        p = pos + 34
    else:
        seek_key, seek_pdir = struct.unpack(">ii", buf[pos + 18:pos + 26])
        p = pos + 26
    names = []
    for _ in range(3):
        n = buf[p]
        p += 1
        if n == 255:
            n = struct.unpack(">i", buf[p:p + 4])[0]
            p += 4
        names.append(buf[p:p + n].decode("latin-1"))
        p += n
    return dict(nbytes=nbytes, version=version, objlen=objlen, keylen=keylen, cycle=cycle,
                seek_key=seek_key, seek_pdir=seek_pdir, cls=names[0], name=names[1],
                title=names[2], end=p)


def read_dir(buf, pos):
    version = struct.unpack(">h", buf[pos:pos + 2])[0]
    nbytes_keys, nbytes_name = struct.unpack(">ii", buf[pos + 10:pos + 18])
    if version > 1000:
        seek_dir, seek_parent, seek_keys = struct.unpack(">qqq", buf[pos + 18:pos + 42])
    else:
        seek_dir, seek_parent, seek_keys = struct.unpack(">iii", buf[pos + 18:pos + 30])
    return dict(version=version, nbytes_keys=nbytes_keys, nbytes_name=nbytes_name,
                seek_dir=seek_dir, seek_parent=seek_parent, seek_keys=seek_keys)


def next_key_after_gap(data, fd, pos, end):
    """The first key at or after `pos` in a sparse region: the next data block (SEEK_DATA),
    then the first position whose key header says it is there."""
    try:
        blk = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        fail(f"nothing but a hole after {pos}")
    # SEEK_DATA may report the hole as data (filesystems without hole tracking): find the
    # first non-zero byte with numpy, 64 MiB at a time, instead of byte by byte.
    import numpy as np
    q = blk
    while q < end:
        n = min(end - q, 1 << 26)
        nz = np.flatnonzero(np.frombuffer(data, np.uint8, n, q))
        if len(nz):
            q += int(nz[0])
            break
        q += n
    for cand in range(max(pos, q - 3), q + 1):
        try:
            k = read_key(data, cand)
        except Exception:
            continue
        if k["nbytes"] > 0 and k["seek_key"] == cand:
            return cand
    fail(f"no key found after the gap at {pos}")


def cmd_layout(a):
    fh = open(a.file, "rb")
    data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    if data[:4] != b"root":
        fail("not a ROOT file")
    version, begin = struct.unpack(">ii", data[4:12])
    big = version >= 1000000
    if big:
        end, seek_free = struct.unpack(">qq", data[12:28])
    else:
        end, seek_free = struct.unpack(">ii", data[12:20])
    if end != len(data):
        fail(f"fEND {end} but the file has {len(data)} bytes")
    # Walk the keys.
    keys, pos, gaps = {}, begin, 0
    while pos < end:
        if a.allow_gaps and data[pos:pos + 4] == b"\0\0\0\0":
            gaps += 1
            pos = next_key_after_gap(data, fh.fileno(), pos, end)
            continue
        k = read_key(data, pos)
        if k["nbytes"] < 0:
            # A record ROOT freed (its size negated).
            gaps += 1
            pos -= k["nbytes"]
            continue
        if k["nbytes"] == 0:
            fail(f"key at {pos}: 0 bytes")
        if k["seek_key"] != pos:
            fail(f"key {k['name']!r} ({k['cls']}) at {pos} says fSeekKey {k['seek_key']}")
        if k["end"] - pos != k["keylen"] and k["cls"] != "TBasket":
            fail(f"key {k['name']!r} at {pos}: header of {k['end'] - pos} bytes, fKeylen {k['keylen']}")
        keys[pos] = k
        pos += k["nbytes"]
    if pos != end:
        fail(f"the last key ends at {pos}, fEND is {end}")
    if seek_free not in keys:
        fail(f"fSeekFree {seek_free} is not a key")
    # Directories: every listed key is a key of the walk, with fSeekPdir = the directory. The
    # top directory's record follows the TFile key's name and title.
    p = keys[begin]["end"]
    for _ in range(2):
        n = data[p]
        p += 1 + (4 + struct.unpack(">i", data[p + 1:p + 5])[0] if n == 255 else n)
    todo, dirs, nlisted = [(begin, p)], [], 0
    while todo:
        dseek, rec = todo.pop()
        d = read_dir(data, rec)
        dirs.append(dseek)
        if d["seek_dir"] != dseek:
            fail(f"directory at {dseek}: fSeekDir {d['seek_dir']}")
        if dseek != begin and d["nbytes_name"] != keys[dseek]["keylen"]:
            fail(f"directory at {dseek}: fNbytesName {d['nbytes_name']}, key length {keys[dseek]['keylen']}")
        if d["seek_keys"] not in keys:
            fail(f"directory at {dseek}: fSeekKeys {d['seek_keys']} is not a key")
        kl = keys[d["seek_keys"]]
        if kl["nbytes"] != d["nbytes_keys"] or kl["seek_pdir"] != dseek:
            fail(f"directory at {dseek}: keys list of {kl['nbytes']} bytes in directory "
                 f"{kl['seek_pdir']}, the record says {d['nbytes_keys']}")
        p = d["seek_keys"] + kl["keylen"]
        nk = struct.unpack(">i", data[p:p + 4])[0]
        p += 4
        for _ in range(nk):
            k = read_key(data, p)
            p = k["end"]
            nlisted += 1
            w = keys.get(k["seek_key"])
            if w is None or (w["name"], w["cls"], w["nbytes"], w["cycle"]) != \
                    (k["name"], k["cls"], k["nbytes"], k["cycle"]):
                fail(f"listed key {k['name']!r} ({k['cls']}) at {k['seek_key']} is not there")
            if k["seek_pdir"] != dseek:
                fail(f"key {k['name']!r}: fSeekPdir {k['seek_pdir']}, its directory is at {dseek}")
            if k["cls"] in ("TDirectory", "TDirectoryFile"):
                todo.append((k["seek_key"], k["seek_key"] + k["keylen"]))
    for k in keys.values():
        if k["cls"] == "TBasket" and k["seek_pdir"] not in dirs:
            fail(f"basket {k['name']!r}: fSeekPdir {k['seek_pdir']} is no directory")
    print(json.dumps({"keys": len(keys), "directories": len(dirs), "listed": nlisted,
                      "gaps": gaps, "big": big, "end": end}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("make-mixed"); c.add_argument("out")
    c = sub.add_parser("make-twin"); c.add_argument("out")
    c = sub.add_parser("same-objects"); c.add_argument("input"); c.add_argument("output")
    c.add_argument("--decorated"); c.add_argument("--new", nargs="*")
    c.add_argument("--allow-extra", nargs="*")
    c = sub.add_parser("checksums"); c.add_argument("file"); c.add_argument("tree")
    c = sub.add_parser("clusters"); c.add_argument("file"); c.add_argument("tree")
    c = sub.add_parser("layout"); c.add_argument("file"); c.add_argument("--allow-gaps", action="store_true")
    a = p.parse_args()
    if a.cmd == "make-mixed":
        cmd_make(MAKE_MIXED, a)
    elif a.cmd == "make-twin":
        cmd_make(MAKE_TWIN, a)
    else:
        {"same-objects": cmd_same_objects, "checksums": cmd_checksums, "clusters": cmd_clusters,
         "layout": cmd_layout}[a.cmd](a)


if __name__ == "__main__":
    main()
