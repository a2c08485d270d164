#!/usr/bin/env python3
"""The reader's correctness gate: hepml against uproot, branch by branch.

  check_read.py --hepml BIN FILE...

For every tree of every file: hepml must list every branch uproot sees; every branch hepml
reads must equal uproot's reading entry by entry (values exact — float32 compared at float32
precision, NaN equal to NaN — and per-entry lengths), over the whole tree and over a sub-range
(--entries); a branch hepml does not read must carry a reason. Prints one line per tree and
exits 1 on any mismatch, missing branch or hepml failure.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from root_check import equal, first_diff, norm  # noqa: E402


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ...: {r.stderr.strip()}")
    return json.loads(r.stdout)


def check_file(hepml, path):
    import uproot
    import awkward as ak
    problems = []
    listing = run([hepml, "inspect", path, "--json"])["files"][0]["trees"]
    f = uproot.open(path)
    utrees = {k.split(";")[0]: v for k, v in f.items(recursive=True) if isinstance(v, uproot.TTree)}
    if sorted(utrees) != sorted(t["name"] for t in listing):
        problems.append(f"trees: uproot {sorted(utrees)} vs hepml {sorted(t['name'] for t in listing)}")
    for t in listing:
        name = t["name"]
        ut = utrees.get(name)
        if ut is None:
            continue
        if ut.num_entries != t["entries"]:
            problems.append(f"{name}: {t['entries']} entries, uproot {ut.num_entries}")
        mine = {b["name"]: b for b in t["branches"]}
        for b in ut.branches:
            for sub in [b] + list(b.branches):
                if sub.name not in mine:
                    problems.append(f"{name}: branch {sub.name} missing from hepml's list")
        mine_u = {s.name for b in ut.branches for s in [b] + list(b.branches)}
        readable = [b["name"] for b in t["branches"] if b["readable"]]
        unsupported = [(b["name"], b["reason"]) for b in t["branches"] if not b["readable"]]
        for n, why in unsupported:
            if not why:
                problems.append(f"{name}: {n} unreadable without a reason")
        n_entries = t["entries"]
        a = random.Random(path).randrange(0, max(1, n_entries))
        z = random.Random(path + "z").randrange(a, n_entries + 1) if n_entries else 0
        ok = 0
        for i in range(0, len(readable), 150):
            chunk = readable[i:i + 150]
            for rng in (None, (a, z)):
                cmd = [hepml, "inspect", path, "--tree", name, "--dump", *chunk]
                if rng:
                    cmd += ["--entries", f"{rng[0]}:{rng[1]}"]
                try:
                    got = run(cmd)["branches"]
                except RuntimeError as e:
                    problems.append(f"{name}: hepml failed: {e}")
                    continue
                for n in chunk:
                    kw = {"entry_start": rng[0], "entry_stop": rng[1]} if rng else {}
                    if n not in mine_u and "." in n and n.rsplit(".", 1)[0] in mine_u:
                        # A leaf-list column (branch.leaf): a field of uproot's records.
                        b, leaf = n.rsplit(".", 1)
                        arr = ut[b].array(library="ak", **kw)[leaf]
                    else:
                        arr = ut[n].array(library="ak", **kw)
                    ref = norm(ak.to_list(arr))
                    f32 = "float32" in str(ak.type(arr))
                    mine_v = norm(got[n])
                    if not equal(mine_v, ref, f32):
                        i0, x, y = first_diff(mine_v, ref, f32)
                        off = rng[0] if rng else 0
                        problems.append(f"{name}: {n}: entry {i0 + off}: hepml {x!r} != uproot {y!r}")
                    elif rng is None:
                        ok += 1
        print(f"{os.path.basename(path)} {name}: {ok}/{len(readable)} readable branches equal uproot; "
              f"{len(unsupported)} unsupported{': ' + '; '.join(f'{n} ({w})' for n, w in unsupported[:3]) if unsupported else ''}")
    return problems


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hepml", required=True)
    p.add_argument("files", nargs="+")
    a = p.parse_args()
    problems = []
    for path in a.files:
        problems += [f"{path}: {x}" for x in check_file(a.hepml, path)]
    for x in problems[:30]:
        print("MISMATCH " + x, file=sys.stderr)
    print(f"{len(a.files)} files, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
