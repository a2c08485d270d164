#!/usr/bin/env python3
"""Blosc1 chunks and their uncompressed bytes, for the Blosc decoder's tests
(models/src/h5/blosc.rs).

  make_blosc_cases.py OUTDIR [--small]

Each case is OUTDIR/<name>.chunk (the stored Blosc chunk), OUTDIR/<name>.expect (what it must
decompress to, or the first `compare` bytes of that) and an entry of OUTDIR/manifest.json:
{name, source, codec, shuffle, typesize, nbytes, compare}. `nbytes` is the chunk's full
uncompressed size, computed here from the chunk shape (not read from the Blosc header).

Two sources, both the c-blosc 1.21 that PyTables bundles:
- `hdf5`: PyTables writes an HDF5 file with tables.Filters(complevel=5,
  complib='blosc:<codec>', shuffle/bitshuffle), h5py's read_direct_chunk takes the stored
  chunks, and PyTables (which decompresses) reads the same rows for the expected bytes. Every
  codec (blosclz, lz4, lz4hc, zlib, zstd) x {no shuffle, byte shuffle, bitshuffle} x typesize
  {1, 2, 4, 8 (CArray / EArray), 15 (a Table of f8, f4, i2, u1 records)} x {smooth data,
  noisy data (random bytes, stored as raw streams, but for a first block of zeros in each
  chunk)}. The matrix forces a small Blosc block size (BLOSC_BLOCKSIZE=8192, which
  Blosc enlarges to 64-120 KiB for the codecs that split blocks) so that each chunk holds 2.5
  blocks in few bytes; one case per codec keeps Blosc's own block size. Every dataset has two
  chunks, the second a third full: HDF5 stores it full-size, so only the written rows are
  compared (`compare` bytes), plus its length.
- `c-blosc`: chunks that PyTables' HDF5 filter cannot produce or that need odd parameters,
  made by calling blosc_compress_ctx of the c-blosc compiled into PyTables (ctypes): a chunk
  stored memcpyed (random data with room for the copy: HDF5's filter gives Blosc no room, so
  its incompressible chunks are stored unfiltered instead), tiny chunks (under 128 bytes,
  always memcpyed), an empty one, many small blocks (256 bytes), sizes that are not a multiple
  of the typesize, a last block of 3 bytes, a bitshuffled last block whose element count is not
  a multiple of 8, typesizes 24 and 255 (never split), each split mode (never, auto, always:
  zstd split into streams), compression levels 1 and 9 and data with repeats farther than
  BloscLZ's 8 KiB near window. The expected bytes are the input, and c-blosc's own
  blosc_decompress_ctx must give them back.

--small writes only the small c-blosc cases (for the corruption tests).
"""
import ctypes
import json
import os
import sys
import tempfile

import h5py
import numpy as np
import tables

CODECS = ["blosclz", "lz4", "lz4hc", "zlib", "zstd"]
SHUFFLES = {"none": 0, "shuffle": 1, "bitshuffle": 2}
RECORD = np.dtype([("a", "<f8"), ("b", "<f4"), ("c", "<i2"), ("d", "u1")])
SPLITMODES = {"always": 1, "never": 2, "auto": 3, "forward_compat": 4}

# The c-blosc 1.x that PyTables' extension modules embed (each has a static copy of it).
LIB = ctypes.CDLL(tables.hdf5extension.__file__)
LIB.blosc_compress_ctx.argtypes = [
    ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p,
    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int,
]
LIB.blosc_decompress_ctx.argtypes = [
    ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
]
LIB.blosc_set_splitmode.argtypes = [ctypes.c_int]


class Out:
    def __init__(self, root):
        self.root = root
        self.cases = []

    def add(self, name, source, codec, shuffle, typesize, chunk, expect, nbytes):
        assert chunk[0] == 2, f"{name}: not a Blosc1 chunk (version {chunk[0]})"
        assert int.from_bytes(chunk[4:8], "little") == nbytes, f"{name}: header nbytes"
        assert int.from_bytes(chunk[12:16], "little") == len(chunk), f"{name}: header cbytes"
        with open(os.path.join(self.root, name + ".chunk"), "wb") as f:
            f.write(chunk)
        with open(os.path.join(self.root, name + ".expect"), "wb") as f:
            f.write(expect)
        self.cases.append({
            "name": name, "source": source, "codec": codec, "shuffle": shuffle,
            "typesize": typesize, "nbytes": nbytes, "compare": len(expect),
        })


def blosc_compress(data, clevel, shuffle, typesize, codec, blocksize=0, room=16,
                   splitmode="forward_compat"):
    """c-blosc's compression of `data` into a buffer of len(data) + room bytes."""
    LIB.blosc_set_splitmode(SPLITMODES[splitmode])
    try:
        dest = ctypes.create_string_buffer(len(data) + room)
        n = LIB.blosc_compress_ctx(clevel, SHUFFLES[shuffle], typesize, len(data), data, dest,
                                   len(data) + room, codec.encode(), blocksize, 1)
    finally:
        LIB.blosc_set_splitmode(SPLITMODES["forward_compat"])
    assert n > 0, f"blosc_compress_ctx returned {n}"
    chunk = dest.raw[:n]
    back = ctypes.create_string_buffer(max(len(data), 1))
    m = LIB.blosc_decompress_ctx(chunk, back, max(len(data), 1), 1)
    assert m == len(data) and back.raw[:m] == data, "c-blosc does not read its own chunk back"
    return chunk


def block_size(codec, shuffle, typesize, forced):
    """The block size Blosc picks for a large chunk with these settings (asked of c-blosc)."""
    chunk = blosc_compress(bytes(8 << 20), 5, shuffle, typesize, codec, blocksize=forced)
    return int.from_bytes(chunk[8:12], "little")


def smooth(dtype, n):
    i = np.arange(n)
    if dtype == RECORD:
        a = np.zeros(n, RECORD)
        a["a"] = np.round(np.sin(i * 1e-4) * 50, 1)
        a["b"], a["c"], a["d"] = i // 9 * 0.5, i // 37, (i // 5) % 200
        return a
    if dtype.kind == "f":
        # Rounded: runs of equal values, so that the codecs find matches without a shuffle too.
        return np.round(np.sin(i * 1e-4) * 100, 1).astype(dtype)
    return ((i // 7) % np.iinfo(dtype).max).astype(dtype)


def noisy(dtype, n, chunk_rows, zero_rows, rng):
    """Random bytes but for the first block of each chunk, zeros: the random blocks are
    stored as raw streams, and the zero block leaves room for them (HDF5's filter gives Blosc
    no more room than the uncompressed chunk)."""
    a = np.frombuffer(rng.bytes(n * dtype.itemsize), dtype=dtype).copy()
    a[(np.arange(n) % chunk_rows) < zero_rows] = np.zeros((), dtype)
    return a


def hdf5_case(out, tmp, codec, shuffle, dtype, kind, forced, rng):
    ts = dtype.itemsize
    bs = block_size(codec, shuffle, ts, forced)
    per_block = bs // ts
    # 2.5 blocks per chunk; the smooth chunks' last block has an element count that is not a
    # multiple of 8 (bitshuffle leaves it as is), the noisy ones' a multiple of 8.
    rows = 2 * per_block + per_block // 2 + (3 if kind == "smooth" else 0)
    n = rows + rows // 3
    data = smooth(dtype, n) if kind == "smooth" else noisy(dtype, n, rows, per_block, rng)
    name = f"{codec}-{shuffle}-ts{ts}-{kind}" + ("-natural" if not forced else "")
    path = os.path.join(tmp, name + ".h5")
    if forced:
        os.environ["BLOSC_BLOCKSIZE"] = str(forced)
    else:
        os.environ.pop("BLOSC_BLOCKSIZE", None)
    filters = tables.Filters(complevel=5, complib=f"blosc:{codec}", shuffle=shuffle == "shuffle",
                             bitshuffle=shuffle == "bitshuffle")
    with tables.open_file(path, "w") as f:
        if dtype == RECORD:
            t = f.create_table("/", "x", description=RECORD, filters=filters, chunkshape=(rows,))
            t.append(data[: rows // 2])
            t.append(data[rows // 2:])
        elif ts in (2, 8):
            a = f.create_earray("/", "x", atom=tables.Atom.from_dtype(dtype), shape=(0,),
                                filters=filters, chunkshape=(rows,))
            a.append(data[: rows + 5])
            a.append(data[rows + 5:])
        else:
            a = f.create_carray("/", "x", atom=tables.Atom.from_dtype(dtype), shape=(n,),
                                filters=filters, chunkshape=(rows,))
            a[:] = data
    with tables.open_file(path) as f:
        node = f.root.x
        assert node.dtype.itemsize == ts
        expected = [node.read(c, min(c + rows, n)).tobytes() for c in (0, rows)]
        pt_descr = node.dtype.descr
    assert expected[0] + expected[1] == data.tobytes(), f"{name}: PyTables reads other data"
    with h5py.File(path) as h:
        ds = h["x"]
        assert ds.id.get_create_plist().get_filter(0)[0] == 32001, f"{name}: not Blosc-filtered"
        # The stored compound layout is the one the expected bytes have.
        assert ds.dtype.itemsize == ts and ds.dtype.descr == pt_descr, f"{name}: {ds.dtype.descr}"
        for ci, (start, want) in enumerate(zip((0, rows), expected)):
            mask, chunk = ds.id.read_direct_chunk((start,))
            assert mask == 0, f"{name}: chunk {ci} stored without Blosc"
            assert int.from_bytes(chunk[8:12], "little") == bs, f"{name}: block size"
            out.add(f"{name}-c{ci}", "hdf5", codec, shuffle, ts, chunk, want, rows * ts)
    if kind == "noisy":
        # Mostly stored raw: the decoder's copy path is exercised.
        first = out.cases[-2]
        size = os.path.getsize(os.path.join(out.root, first["name"] + ".chunk"))
        assert size > first["nbytes"] // 2, f"{name}: compressed more than expected"
    os.remove(path)


def ctypes_cases(out, rng, small):
    def add(name, data, clevel, shuffle, ts, codec, **kw):
        chunk = blosc_compress(data, clevel, shuffle, ts, codec, **kw)
        out.add(name, "c-blosc", codec, shuffle, ts, chunk, data, len(data))
        return chunk

    sm = smooth(np.dtype("<u4"), 750).tobytes()  # 3000 bytes, compressible without shuffle
    for codec in CODECS:
        for shuffle in SHUFFLES:
            # 256-byte blocks (11 and a leftover of 184): the small chunks of the fuzz tests.
            c = add(f"small-{codec}-{shuffle}", sm, 5, shuffle, 4, codec, blocksize=256)
            assert c[2] & 2 == 0 and int.from_bytes(c[8:12], "little") == 256
        c = add(f"memcpyed-{codec}", rng.bytes(5000), 5, "shuffle", 4, codec)
        assert c[2] & 2, "random data was not memcpyed"
    c = add("tiny-100", sm[:100], 5, "shuffle", 4, "blosclz", room=16)
    assert c[2] & 2, "a chunk under 128 bytes is memcpyed"
    add("tiny-1", sm[:1], 5, "shuffle", 8, "lz4")
    add("empty", b"", 5, "shuffle", 4, "zstd")
    if small:
        return

    # The data sizes below are not multiples of the typesize, so unshuffling leaves trailing
    # bytes as they are; 100003 bytes of typesize 8 with BloscLZ give a block of 100000 and a
    # last block of 3 bytes (smaller than one element).
    odd = smooth(np.dtype("<f8"), 12501).tobytes()[:100003]
    for shuffle in SHUFFLES:
        for codec in ("blosclz", "zstd"):
            add(f"odd-size-{codec}-{shuffle}", odd, 5, shuffle, 8, codec)
    # Bitshuffle of a last block of 13 elements (not a multiple of 8: stored as is), and of
    # one of 16 elements plus 3 bytes.
    for extra in (13 * 4, 16 * 4 + 3):
        d = smooth(np.dtype("<u4"), 5000).tobytes()[: 8192 + extra]
        add(f"bitshuffle-tail-{extra}", d, 5, "bitshuffle", 4, "lz4", blocksize=4096)
    wide = smooth(np.dtype("<f8"), 30000).tobytes()
    for ts in (24, 255):
        for shuffle in SHUFFLES:
            add(f"typesize{ts}-{shuffle}", wide[: ts * 900], 5, shuffle, ts, "blosclz")
    big = smooth(np.dtype("<f4"), 200000).tobytes()
    for mode, codec in (("never", "blosclz"), ("auto", "blosclz"), ("auto", "lz4"),
                        ("always", "zstd"), ("always", "zlib")):
        add(f"split-{mode}-{codec}", big, 5, "shuffle", 4, codec, splitmode=mode, blocksize=65536)
    for clevel in (1, 9):
        for codec in CODECS:
            add(f"clevel{clevel}-{codec}", big, clevel, "shuffle", 4, codec)
    # Repeats 10 KiB apart: BloscLZ's far matches (distance over 8191, 16-bit offset).
    far = (rng.bytes(10240) * 30)[:300000]
    for codec in CODECS:
        add(f"far-{codec}", far, 5, "none", 1, codec)
    add("zeros-blosclz", bytes(1 << 20), 9, "none", 1, "blosclz")
    add("zeros-zstd", bytes(1 << 20), 9, "none", 1, "zstd")


def main():
    args = sys.argv[1:]
    small = "--small" in args
    args = [a for a in args if a != "--small"]
    if len(args) != 1:
        sys.exit(__doc__)
    os.makedirs(args[0], exist_ok=True)
    out = Out(args[0])
    rng = np.random.default_rng(32001)
    ctypes_cases(out, rng, small)
    if not small:
        dtypes = [np.dtype(t) for t in ("u1", "<i2", "<f4", "<f8")] + [RECORD]
        noisy_dtypes = [np.dtype(t) for t in ("u1", "<u2", "<u4", "<u8")] + [RECORD]
        with tempfile.TemporaryDirectory() as tmp:
            # Blosc's own block sizes first: BLOSC_BLOCKSIZE sets a block size that stays set
            # in the filter's c-blosc after the variable is gone.
            for codec in CODECS:
                hdf5_case(out, tmp, codec, "shuffle", np.dtype("<f8"), "smooth", 0, rng)
            for codec in CODECS:
                for shuffle in SHUFFLES:
                    for dt in dtypes:
                        hdf5_case(out, tmp, codec, shuffle, dt, "smooth", 8192, rng)
                    for dt in noisy_dtypes:
                        hdf5_case(out, tmp, codec, shuffle, dt, "noisy", 8192, rng)
            os.environ.pop("BLOSC_BLOCKSIZE", None)
    with open(os.path.join(args[0], "manifest.json"), "w") as f:
        json.dump(out.cases, f, indent=1)
    print(f"{len(out.cases)} cases")


if __name__ == "__main__":
    main()
