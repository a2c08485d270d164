#!/usr/bin/env python3
"""The reader against uproot over a corpus of real ROOT files (scikit-hep-testdata's).

  check_corpus.py --hepml BIN [--corpus DIR] [--max-mb 3] [--json OUT] [--gate] [FILE...]

Run explicitly (not part of `cargo test`): the corpus is a few hundred MB of third-party files
fetched from the network, which the test suite never depends on. The corpus is every `.root`
file of https://github.com/scikit-hep/scikit-hep-testdata (src/skhep_testdata/data), extracted
to DIR (default $HEPML_CORPUS or ~/.cache/hepml/skhep-testdata). A missing or empty DIR is an
error, never an empty pass.

For every TTree uproot opens in every file below --max-mb: every branch (sub-branches
included) whose values uproot reads is
  equal        hepml's `inspect --dump` equals uproot's reading (whole tree and a sub-range),
  unsupported  hepml lists it as unreadable with a reason,
  as_root      it holds more entries than its tree's header, and hepml reads the tree's (as
               ROOT does; uproot reads them all): hepml's values equal uproot's up to there,
  root_only    hepml's values differ from uproot's but equal real ROOT's (TTreeFormula in a
               child process, consulted only then; without ROOT the branch stays wrong), as
               for the fBits of referenced objects, which ROOT follows with a 2-byte process
               id that uproot reads as values (fBits are compared without the bits ROOT
               sets in memory as it reads an object: kNotDeleted and kIsOnHeap, and
               kMustCleanup on a referenced object),
  container    hepml lists it as a container whose values are its sub-branches,
  error        hepml lists it as readable but reading it fails with an error,
  wrong        hepml's values differ from uproot's,
  crashed      hepml died (panic, signal) reading it,
  missing      hepml does not list it.
A file whose trees uproot opens but `hepml inspect` refuses is "refused". Prints one line per
tree, the reasons of unsupported branches by count, and the totals. With --gate, exits 1 unless
0 wrong, 0 crashed, 0 error, 0 missing, 0 refused and at least 97% of the branches uproot
reads are equal (containers excluded: their values are their sub-branches').
"""
import argparse
import collections
import json
import os
import random
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from root_check import equal, first_diff, norm  # noqa: E402

KINDS = ("equal", "as_root", "root_only", "unsupported", "container", "error", "wrong", "crashed", "missing")


def hepml_json(cmd, timeout=300):
    """(json, None) or (None, (kind, message)) with kind 'error' or 'crashed'."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, ("crashed", "timed out")
    if r.returncode != 0:
        msg = r.stderr.strip().splitlines()
        crashed = r.returncode < 0 or r.returncode == 101 or "panicked" in r.stderr
        return None, ("crashed" if crashed else "error", (msg[-1] if msg else f"exit {r.returncode}")[:300])
    try:
        return json.loads(r.stdout), None
    except ValueError as e:
        return None, ("crashed", f"bad JSON: {e}")


def uproot_trees(path):
    import uproot
    f = uproot.open(path)
    out = {}
    for k, cls in f.classnames(recursive=True).items():
        if cls in ("TTree", "TNtuple", "TNtupleD"):
            name = k.rsplit(";", 1)[0]
            try:
                out[name] = f[k]
            except Exception as e:  # noqa: BLE001 - a tree uproot cannot open is not ours to read
                out[name] = e
    return out


def all_branches(t):
    out = []

    def rec(b):
        for s in b.branches:
            out.append(s)
            rec(s)
    rec(t)
    return out


def upath(b):
    """uproot's full name of a branch: its ancestors' names and its own, joined by '/'."""
    import uproot
    names = []
    while isinstance(b, uproot.TBranch):
        names.insert(0, b.name)
        b = b.parent
    return "/".join(names)


def uproot_value(b):
    import awkward as ak
    arr = b.array(library="ak")
    return norm(ak.to_list(arr)), "float32" in str(ak.type(arr))


def check_file(hepml, path, sub_range=True):
    """{'trees': [...], 'refused': reason or None, 'counts': Counter, 'reasons': Counter}."""
    res = {"file": os.path.basename(path), "refused": None, "trees": [], "details": []}
    counts = collections.Counter()
    reasons = collections.Counter()
    try:
        utrees = uproot_trees(path)
    except Exception as e:  # noqa: BLE001
        res["uproot_fails"] = str(e)[:200]
        res["counts"], res["reasons"] = counts, reasons
        return res
    utrees = {k: v for k, v in utrees.items() if not isinstance(v, Exception)}
    if not utrees:
        res["counts"], res["reasons"] = counts, reasons
        return res
    listing, err = hepml_json([hepml, "inspect", path, "--json"])
    if err:
        res["refused"] = f"{err[0]}: {err[1]}"
    mine_trees = {}
    if listing:
        mine_trees = {t["name"]: t for t in listing["files"][0]["trees"]}
    for tname, ut in sorted(utrees.items()):
        ubranches = all_branches(ut)
        readable_u = []
        for b in ubranches:
            try:
                readable_u.append((b, *uproot_value(b)))
            except Exception:  # noqa: BLE001 - uproot cannot read it: not counted
                counts["uproot_cannot"] += 1
        t = mine_trees.get(tname)
        if t is None:
            if not res["refused"]:
                res["refused"] = f"tree {tname} not listed"
            counts["in_refused_files"] += len(readable_u)
            continue
        if t["entries"] != ut.num_entries:
            res["details"].append(f"{tname}: hepml {t['entries']} entries, uproot {ut.num_entries}")
        by_path = {b.get("path", b["name"]): b for b in t["branches"]}
        tc = collections.Counter()
        to_dump = []
        noted = set()
        # The first branch of each full name (uproot reads it or not): ROOT, uproot and hepml
        # give that one by the name.
        first = {}
        for b in ubranches:
            first.setdefault(upath(b), b)
        for b, val, f32 in readable_u:
            if first[upath(b)] is not b:
                tc["unsupported"] += 1
                reasons["a second branch of the same name (the first is read by that name)"] += 1
                continue
            mb = by_path.get(upath(b))
            if mb is None:
                tc["missing"] += 1
                res["details"].append(f"{tname}: {upath(b)}: missing from hepml's list")
                continue
            if mb.get("container") and is_records(val) and leaf_columns(by_path, upath(b), val):
                # A leaf list: uproot's records, hepml's one column per leaf.
                for field in val[0]:
                    to_dump.append((f"{upath(b)}.{field}", [r[field] for r in val], f32, upath(b)))
            elif mb.get("container"):
                tc["container"] += 1
            elif not mb["readable"]:
                tc["unsupported"] += 1
                reasons[short_reason(mb["reason"])] += 1
                if not mb["reason"]:
                    res["details"].append(f"{tname}: {b.name}: unreadable without a reason")
            elif mb.get("note") and len(val) > t["entries"]:
                # More entries than the tree's header: hepml reads the tree's, as ROOT does.
                noted.add(upath(b))
                to_dump.append((upath(b), val[:t["entries"]], f32, upath(b)))
            else:
                to_dump.append((upath(b), val, f32, upath(b)))
        n = t["entries"]
        a = random.Random(path).randrange(0, max(1, n))
        z = random.Random(path + "z").randrange(a, n + 1) if n else 0
        names = [x[0] for x in to_dump]
        whole = dump(hepml, path, tname, names, None)
        part = dump(hepml, path, tname, names, (a, z)) if sub_range else {}
        # Where hepml and uproot differ, real ROOT decides (numbers only).
        on_whole = {name: compare(whole.get(name), ref, f32, 0) for name, ref, f32, _ in to_dump}
        disputed = [name for name, (kind, _) in on_whole.items() if kind == "wrong"]
        by_root = root_formula_values(path, tname, disputed, n) if disputed else {}
        # One verdict per uproot branch (a leaf list's columns together), the worst of its parts.
        verdict = {}
        for name, ref, f32, group in to_dump:
            kind, msg = on_whole[name]
            if kind == "wrong" and name in by_root:
                if same_as_root(name, flat_entries(whole[name]), by_root[name], f32) and (
                        not sub_range or part.get(name) == whole[name][a:z]):
                    kind, msg = "root_only", ""
                else:
                    msg += " (ROOT differs too)"
            if kind == "equal" and sub_range:
                kind, msg = compare(part.get(name), ref[a:z], f32, a)
            if kind != "equal":
                res["details"].append(f"{tname}: {name}: {kind}: {msg}")
            if verdict.get(group, "equal") == "equal":
                verdict[group] = kind
        tc.update("as_root" if g in noted and k == "equal" else k for g, k in verdict.items())
        counts.update(tc)
        res["trees"].append(f"{res['file']} {tname}: " + ", ".join(f"{tc[k]} {k}" for k in KINDS if tc[k]))
    res["counts"], res["reasons"] = counts, reasons
    return res


ROOT_FORMULA = r"""
import json, sys
import ROOT
ROOT.gROOT.SetBatch(True)
path, tree, names, n = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
f = ROOT.TFile.Open(path)
t = f.Get(tree)
out = {}
for name in names:
    # A formula names a branch by its own name ('/' would divide): ROOT takes the first.
    fm = ROOT.TTreeFormula("f", name.split("/")[-1], t)
    if fm.GetNdim() == 0:
        continue
    vals = []
    for i in range(n):
        t.LoadTree(i)
        vals.append([fm.EvalInstance(k) for k in range(fm.GetNdata())])
    out[name] = vals
print(json.dumps(out))
"""


def root_formula_values(path, tree, names, n):
    """{name: one list of floats per entry} as real ROOT's TTreeFormula evaluates each branch
    (names it cannot evaluate are left out); {} when ROOT is not there or fails."""
    try:
        r = subprocess.run([sys.executable, "-c", ROOT_FORMULA, path, tree, json.dumps(names), str(n)],
                           capture_output=True, text=True, timeout=600)
        return json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {}
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        return {}


def same_as_root(name, mine, root, f32):
    """hepml's flat entries equal ROOT's (float32 values as float32: hepml's JSON gives their
    shortest form); an fBits word without the bits ROOT sets in memory as it reads an object
    (kNotDeleted, kIsOnHeap; kMustCleanup when kIsReferenced)."""
    if mine is None:
        return False
    if f32:
        import struct

        def r32(x):
            return struct.unpack("f", struct.pack("f", x))[0]
        mine = [[r32(x) for x in e] for e in mine]
        root = [[r32(x) for x in e] for e in root]
    if name.split(".")[-1] == "fBits":
        def mem(x):
            x = int(x)
            return x & ~(0x3000000 | (0x8 if x & 0x10 else 0))
        mine = [[mem(x) for x in e] for e in mine]
        root = [[mem(x) for x in e] for e in root]
    return mine == root


def flat_entries(vals):
    """hepml's dump as one flat list of floats per entry (numbers only; None otherwise)."""
    def flat(x):
        if isinstance(x, list):
            return [y for z in x for y in flat(z)]
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise TypeError
        return [float(x)]
    try:
        return [flat(v) for v in vals]
    except TypeError:
        return None


def is_records(val):
    return bool(val) and isinstance(val[0], dict)


def leaf_columns(by_path, path, val):
    return all(f"{path}.{field}" in by_path for field in val[0])


def short_reason(r):
    r = r or "(no reason)"
    for sep in (" (", ": "):
        if sep in r and len(r) > 60:
            r = r.split(sep)[0]
    return r[:90]


def dump(hepml, path, tree, names, rng):
    """{name: values or ('error'|'crashed', message)}: in batches, then one by one on failure."""
    out = {}
    for i in range(0, len(names), 100):
        chunk = names[i:i + 100]
        got = dump_some(hepml, path, tree, chunk, rng)
        if isinstance(got, dict):
            out.update(got)
            continue
        for n in chunk:
            one = dump_some(hepml, path, tree, [n], rng)
            out[n] = one[n] if isinstance(one, dict) else one
    return out


def dump_some(hepml, path, tree, names, rng):
    cmd = [hepml, "inspect", path, "--tree", tree, "--dump", *names]
    if rng:
        cmd += ["--entries", f"{rng[0]}:{rng[1]}"]
    got, err = hepml_json(cmd)
    if err:
        return err
    return got["branches"]


def compare(got, ref, f32, off):
    if got is None:
        return "missing", "not in hepml's dump"
    if isinstance(got, tuple):
        return got
    mine = norm(got)
    if equal(mine, ref, f32):
        return "equal", ""
    i, x, y = first_diff(mine, ref, f32)
    return "wrong", f"entry {i + off}: hepml {str(x)[:80]} != uproot {str(y)[:80]}"


def corpus_files(a):
    if a.files:
        return a.files
    d = a.corpus
    if not os.path.isdir(d):
        sys.exit(f"check_corpus: corpus directory {d} is missing; extract scikit-hep-testdata's "
                 "src/skhep_testdata/data/*.root there (see the script's help)")
    files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".root")
                   and os.path.getsize(os.path.join(d, f)) < a.max_mb * 2**20)
    if not files:
        sys.exit(f"check_corpus: no .root file below {a.max_mb} MB in {d}")
    return files


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hepml", required=True)
    p.add_argument("--corpus", default=os.environ.get(
        "HEPML_CORPUS", os.path.expanduser("~/.cache/hepml/skhep-testdata")))
    p.add_argument("--max-mb", type=float, default=3)
    p.add_argument("--json", help="write the per-file results here")
    p.add_argument("--gate", action="store_true", help="exit 1 unless the targets hold")
    p.add_argument("--no-sub-range", action="store_true", help="compare whole trees only")
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("files", nargs="*")
    a = p.parse_args()
    if a.one:
        r = check_file(a.hepml, a.one, not a.no_sub_range)
        print(json.dumps(r))
        return
    total = collections.Counter()
    reasons = collections.Counter()
    refused, results = [], []
    for path in corpus_files(a):
        cmd = [sys.executable, os.path.abspath(__file__), "--hepml", a.hepml, "--one", path]
        if a.no_sub_range:
            cmd.append("--no-sub-range")
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            res = json.loads(r.stdout.strip().splitlines()[-1])
        except Exception as e:  # noqa: BLE001 - the checker itself failed on this file
            res = {"file": os.path.basename(path), "refused": None, "trees": [], "details": [],
                   "checker_failed": str(e)[:200], "counts": {}, "reasons": {}}
        results.append(res)
        for line in res["trees"]:
            print(line, flush=True)
        for d in res["details"][:8]:
            print(f"    {d}")
        if res.get("checker_failed"):
            print(f"{res['file']}: CHECKER FAILED: {res['checker_failed']}")
        if res["refused"]:
            refused.append((res["file"], res["refused"]))
            print(f"{res['file']}: REFUSED: {res['refused']}")
        total.update(res["counts"])
        reasons.update(res["reasons"])
    print("\nunsupported branches by reason:")
    for r, n in reasons.most_common():
        print(f"  {n:6d}  {r}")
    counted = sum(total[k] for k in KINDS if k != "container") + total["in_refused_files"]
    pct = 100.0 * total["equal"] / counted if counted else 0.0
    print(f"\n{len(results)} files, {sum(1 for r in results if r['trees'] or r['refused'])} with trees; "
          f"{len(refused)} refused ({total['in_refused_files']} branches uproot reads in them)")
    print("branches: " + ", ".join(f"{total[k]} {k}" for k in KINDS)
          + f"; {total['uproot_cannot']} uproot cannot read")
    print(f"equal: {total['equal']}/{counted} = {pct:.2f}% of the branches uproot reads (containers excluded)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    if a.gate:
        bad = [f"{total[k]} {k}" for k in ("wrong", "crashed", "error", "missing") if total[k]]
        if refused:
            bad.append(f"{len(refused)} files refused")
        if pct < 97.0:
            bad.append(f"{pct:.2f}% equal < 97%")
        if bad:
            print("GATE FAILED: " + ", ".join(bad))
            sys.exit(1)
        print("GATE PASSED")


if __name__ == "__main__":
    main()
