#!/usr/bin/env python3
"""pandas/h5py cross-checks of hepml's HDF5 tables (used by models/tests/pandas_h5.rs).

  check_h5.py read FILE KEY      pandas.read_hdf(FILE, KEY) and h5py: prints JSON
                                 {names, dtypes, columns, h5py_names} (columns as float lists)
  check_h5.py write FILE KEY N   pandas writes a known DataFrame of N rows with
                                 DataFrame.to_hdf(format="fixed"): float64, float32, int64, int32,
                                 uint8 and bool columns; prints the same JSON as `read`.
  check_h5.py write-table FILE KEY N   the same frame without the bool column, with
                                 format="table" (pt as a data column), appended in two pieces.
  check_h5.py write-LIB|write-table-LIB FILE KEY N   the same, compressed with pandas'
                                 complib LIB at level 5: zlib (with PyTables' shuffle filter),
                                 bzip2, blosc, blosc:blosclz, blosc:lz4, blosc:lz4hc, blosc:zlib,
                                 blosc:zstd (Blosc shuffles inside).
  check_h5.py write-h5py FILE KEY N   h5py writes one float64 dataset per column under KEY and
                                 lists them in the group attribute `columns` (hepml's earlier
                                 layout); prints {names, columns}.
  check_h5.py write-strings|write-table-strings FILE KEY N   pandas writes (fixed / table) a frame
                                 with a string column `process` among float64 pt and huge (0 but
                                 1e300 at row 7), int64 label and float32 w; prints {names,
                                 columns} of the numeric columns.
  check_h5.py write-h5py-sparse FILE KEY N   h5py makes a chunked float64 dataset KEY/x of
                                 2^40 rows (8 TB, none written: a tiny file) and KEY/y of N.
  check_h5.py write-h5py-plain FILE KEY N   h5py writes one 1-D dataset per column under KEY
                                 (float64 x, float32 y, int16 n; chunked, gzip + shuffle), no
                                 `columns` attribute, plus a string dataset `tag` and a 2-D `img`
                                 that are not columns; prints {names, columns, skipped}.
  check_h5.py write-h5py-records FILE KEY N   h5py writes a NumPy structured array as the
                                 compound dataset KEY (fields x f8, tag S4, y f4, v f4[3],
                                 n u2; chunked, gzip); prints {names, columns, skipped}.
  check_h5.py query FILE KEY WHERE   pandas.read_hdf(FILE, KEY, where=WHERE): the `table`
                                 layout's row selection; prints the same JSON as `read`.
"""
import json
import sys

import h5py
import numpy as np
import pandas as pd


def dump(df, path, key):
    names = list(map(str, df.columns))
    with h5py.File(path) as h:
        try:
            if "axis0" in h[key]:
                names = [n.decode() for n in h[key]["axis0"][:]]
        except OSError:  # compressed with a filter h5py lacks (Blosc, bzip2): pandas' names
            pass
    return {
        "names": [str(c) for c in df.columns],
        "dtypes": [str(t) for t in df.dtypes],
        # NaN (a missing jet) as null: JSON has no NaN.
        "columns": [[None if v != v else v for v in df[c].to_numpy(np.float64).tolist()] for c in df.columns],
        "h5py_names": names,
    }


def main():
    cmd, path, key = sys.argv[1:4]
    if cmd == "read":
        df = pd.read_hdf(path, key)
    elif cmd == "query":
        df = pd.read_hdf(path, key, where=sys.argv[4])
    elif cmd == "write-h5py":
        n = int(sys.argv[4])
        cols = {"a": np.arange(n) * 0.5, "b": np.sqrt(np.arange(n, dtype=np.float64))}
        with h5py.File(path, "w") as h:
            g = h.create_group(key)
            g.attrs["columns"] = list(cols)
            for c, v in cols.items():
                g[c] = v
        json.dump({"names": list(cols), "columns": [v.tolist() for v in cols.values()]}, sys.stdout)
        return
    elif cmd in ("write-strings", "write-table-strings"):
        n = int(sys.argv[4])
        i = np.arange(n)
        df = pd.DataFrame({
            "pt": (i * 0.25).astype(np.float64),
            "huge": np.where(i == 7, 1e300, 0.0),
            "process": np.where(i % 3 == 0, "ttbar", "wjets"),
            "label": (i % 2).astype(np.int64),
            "w": (1 + i % 7).astype(np.float32),
        })
        df.to_hdf(path, key=key, mode="w", format="fixed" if cmd == "write-strings" else "table")
        back = pd.read_hdf(path, key)
        num = [c for c in back.columns if c != "process"]
        json.dump({"names": num, "columns": [back[c].to_numpy(np.float64).tolist() for c in num]}, sys.stdout)
        return
    elif cmd == "write-h5py-sparse":
        with h5py.File(path, "w") as h:
            g = h.create_group(key)
            g.create_dataset("x", shape=(2**40,), chunks=(4096,), dtype="f8")
            g["y"] = np.arange(int(sys.argv[4]), dtype=np.float64)
        print("{}")
        return
    elif cmd in ("write-h5py-plain", "write-h5py-records"):
        n = int(sys.argv[4])
        i = np.arange(n)
        x, y = np.sqrt(i) * 1.5, (np.sin(i) * 3).astype(np.float32)
        if cmd == "write-h5py-plain":
            cols = {"x": x, "y": y, "n": (i % 300 - 150).astype(np.int16)}
            with h5py.File(path, "w") as h:
                g = h.create_group(key)
                for c, v in cols.items():
                    g.create_dataset(c, data=v, chunks=(min(4096, n),), compression="gzip", shuffle=True)
                g["tag"] = np.array([b"abc"] * n)
                g["img"] = np.zeros((n, 4), dtype=np.float32)
            with h5py.File(path) as h:  # h5py lists members by name
                names = [k for k in h[key] if h[key][k].ndim == 1 and h[key][k].dtype.kind in "fiub"]
            skipped = ["img", "tag"]
        else:
            rec = np.zeros(n, dtype=[("x", "f8"), ("tag", "S4"), ("y", "f4"), ("v", "f4", (3,)), ("n", "u2")])
            rec["x"], rec["y"], rec["n"], rec["tag"] = x, y, i % 1000, b"tt"
            with h5py.File(path, "w") as h:
                h.create_dataset(key, data=rec, chunks=(min(4096, n),), compression="gzip")
            cols = {"x": x, "y": y, "n": rec["n"]}
            names, skipped = ["x", "y", "n"], ["tag", "v"]
        with h5py.File(path) as h:  # what h5py reads back
            obj = h[key]
            got = {c: (obj[c][:] if isinstance(obj, h5py.Group) else obj[c]) for c in names}
        json.dump({"names": names, "columns": [np.asarray(got[c], np.float64).tolist() for c in names],
                   "skipped": skipped}, sys.stdout)
        return
    elif cmd == "write" or cmd.startswith("write-"):
        lib = cmd.removeprefix("write").removeprefix("-").removeprefix("table").removeprefix("-")
        zlib = {"complib": lib, "complevel": 5} if lib else {}
        n = int(sys.argv[4])
        i = np.arange(n)
        df = pd.DataFrame({
            "pt": (i * 0.5).astype(np.float64),
            "eta": np.sin(i * 0.01) * 2.5,
            "log(pt)": np.log1p(i).astype(np.float32),
            "event": (i * 7 + 3).astype(np.int64),
            "n_jets": (i % 5).astype(np.int32),
            "flag": (i % 3).astype(np.uint8),
            "is_sig": (i % 2 == 0),
        })
        if cmd.startswith("write-table"):
            df = df.drop(columns=["is_sig"])  # bool fields in a compound: not read by hepml
            half = n // 2  # appended in two pieces, as a streaming writer would
            df.iloc[:half].to_hdf(path, key=key, format="table", data_columns=["pt"], mode="w", **zlib)
            df.iloc[half:].to_hdf(path, key=key, format="table", data_columns=["pt"], append=True, **zlib)
        else:
            df.to_hdf(path, key=key, format="fixed", mode="w", **zlib)
        df = pd.read_hdf(path, key)
    else:
        sys.exit(f"unknown command {cmd}")
    json.dump(dump(df, path, key), sys.stdout)


if __name__ == "__main__":
    main()
