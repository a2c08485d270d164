#!/usr/bin/env python3
"""Inject benchmark: one run, every job on the same file. Not a test.

  bench_inject.py [--hepml target/release/hepml] [--events 2000000] [--repeat 2] [--threads 2]
                  [--no-script]

Input: N events x 20 float32 branches, zlib-1, written by uproot (cached in bench-out/).
Model: an MLP 20-64-64-1 (ONNX, built with onnx.helper; ReLU, sigmoid output).
Jobs, each in a fresh process, best of --repeat, at --threads threads and at 1 thread:
  1. pure reading: `hepml read-bench` of the 20 branches;
  2. `hepml inject --timing` writing a decorated copy (original baskets copied, new `score`);
  3. the Python way: uproot reads the 20 branches, onnxruntime (that many intra-op threads)
     scores them, uproot writes a new file with the 20 branches plus `score` (zlib-1).
Each job writes a new output file (the previous run's is removed first). Times are each child's
wall time (process start to exit), with its CPU time beside it; the script's own timer (after its
imports) is printed too and the ratio against it is the one checked. Peak RSS is getrusage of
the child. Goals: inject >= 10x the script and <= 1.3x pure reading, peak RSS < 100 MB for
inject and < 50 MB for read-bench; at 1 thread, >= 5x the 1-thread script and <= 1.3x a
1-thread read. The 1-thread jobs run twice: on all cores (inject's stages are threads of their
own, each bounded by --threads, so they overlap) and pinned to one core (sched_setaffinity,
what a one-CPU batch slot gives); the goals count both.
"""
import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
# bench_train's child() measures a child's wall time and peak RSS; its imports are light, so
# this driver stays small (a child's ru_maxrss starts from the driver's size at fork).
from bench_train import child, driver_rss_mb  # noqa: E402

PY_JOB = r'''
import sys, time, numpy as np, uproot, onnxruntime as ort
src, model, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t = time.perf_counter()
a = uproot.open(src)["events"].arrays(library="np")
names = [f"f{i}" for i in range(20)]
x = np.stack([a[n] for n in names], axis=1).astype(np.float32)
so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
score = np.concatenate([s.run(None, {"x": x[i:i + 100000]})[0][:, 0] for i in range(0, len(x), 100000)])
with uproot.recreate(out, compression=uproot.ZLIB(1)) as f:
    f.mktree("events", {n: np.float32 for n in names} | {"score": np.float32})
    step = 500000
    for i in range(0, len(x), step):
        f["events"].extend({n: a[n][i:i + step] for n in names} | {"score": score[i:i + step]})
print(time.perf_counter() - t)
'''

SIZES = (20, 64, 64, 1)


def make_model(path, sizes=SIZES):
    """An MLP of these layer sizes (ReLU, sigmoid output) reading branches f0.. from its metadata."""
    import numpy as np
    import onnx
    from onnx import helper, TensorProto, numpy_helper
    rng = np.random.default_rng(5)
    layers = len(sizes) - 1
    nodes, inits, prev = [], [], "x"
    for i in range(layers):
        inits += [numpy_helper.from_array((rng.normal(0, 1 / np.sqrt(sizes[i]), (sizes[i], sizes[i + 1]))).astype(np.float32), f"W{i}"),
                  numpy_helper.from_array(rng.normal(0, 0.1, sizes[i + 1]).astype(np.float32), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [f"h{i}"]))
        prev = f"h{i}"
        last = i == layers - 1
        nodes.append(helper.make_node("Sigmoid" if last else "Relu", [prev], ["score"] if last else [f"a{i}"]))
        prev = f"a{i}"
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", sizes[0]])],
                          [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    m.metadata_props.add(key="hepml.inputs", value=json.dumps({"x": [f"f{i}" for i in range(sizes[0])]}))
    m.metadata_props.add(key="hepml.outputs", value=json.dumps({"score": "score"}))
    onnx.save(m, path)


def model_path(d, sizes=SIZES):
    return os.path.join(d, "mlp_" + "_".join(map(str, sizes)) + ".onnx")


def best_child(cmd, repeat, output=None, env=None):
    """Best of `repeat` fresh runs: (wall, peak RSS MB, CPU seconds, stdout, stderr) of the
    fastest. CPU time (user + system, from the children's rusage) varies less than wall time
    on a loaded machine. `output`, the file the job writes, is removed before each run: every
    job writes a new file, as replacing one costs the job the file system's work on the old
    one (ext4, a 155 MB output: 0.02 s to free it and 0.03 s to start writing back the new one
    when it is renamed or truncated over the old, so about 0.05 s). `env`: the child's
    environment (default: this one's). A failing run stops the benchmark with its error."""
    runs = []
    for _ in range(repeat):
        if output is not None and os.path.exists(output):
            os.remove(output)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        so, se, wall, rss = child(cmd, env)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        runs.append((wall, rss, cpu, so, se))
    return min(runs, key=lambda r: r[0])


@contextlib.contextmanager
def pinned(cpus):
    """Children started inside run on `cpus` only (affinity is inherited at fork), or on all
    of this process's cores when `cpus` is None."""
    old = os.sched_getaffinity(0)
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


def prepare(d, events):
    """Data and model, made in a child process so that numpy/uproot/onnx never load here."""
    src = os.path.join(d, f"flat_{events}_20f_zlib1.root")
    model = model_path(d)
    subprocess.run([sys.executable, __file__, "--prepare", src, str(events), model], check=True)
    return src, model


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", default=os.path.join(REPO, "target/release/hepml"))
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-script", action="store_true", help="skip the uproot+onnxruntime jobs")
    ap.add_argument("--prepare", nargs=3, metavar=("SRC", "EVENTS", "MODEL"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.prepare:
        src, events, model = a.prepare
        if not os.path.exists(src):
            from bench_read import make
            print(f"generating {src} ...", flush=True)
            make(src, int(events), 20)
        make_model(model)
        return
    if not os.path.exists(a.hepml):
        sys.exit(f"{a.hepml} not found: cargo build --release -p hepml first")
    d = os.path.join(REPO, "bench-out")
    os.makedirs(d, exist_ok=True)
    src, model = prepare(d, a.events)
    n = a.events
    print(f"{n} events x 20 float32 branches (zlib-1), MLP {'-'.join(map(str, SIZES))}; "
          f"best of {a.repeat}; load average {load_average()}; driver RSS {driver_rss_mb():.0f} MB")
    out = os.path.join(d, "inject_out.root")
    py_out = os.path.join(d, "python_out.root")
    ok = True
    one_core = {min(os.sched_getaffinity(0))}
    for threads, cpus in dict.fromkeys([(a.threads, None), (1, None), (1, frozenset(one_core))]):
        t = str(threads)
        with pinned(cpus):
            read, read_rss, read_cpu, so, _ = best_child([a.hepml, "read-bench", src, "--tree", "events", "--threads", t], a.repeat)
            inj, inj_rss, inj_cpu, _, se = best_child([a.hepml, "inject", src, "--model", model, "-o", out, "--quiet",
                                              "--timing", "--chunk", "100000", "--threads", t], a.repeat, out)
        read_inner = json.loads(so.strip().splitlines()[-1])["seconds"]
        timing = [line for line in se.splitlines() if line.startswith("hepml timing:")]
        where = f"pinned to core {min(cpus)}" if cpus else f"on {len(os.sched_getaffinity(0))} cores"
        print(f"\n--threads {t}, {where} (load average {load_average()})")
        print(f"  {'hepml read-bench':24s} {read:7.3f} s  {n / read / 1e6:6.2f} M events/s  {read_rss:6.1f} MB  cpu {read_cpu:6.2f} s"
              f"  (its own timer {read_inner:.3f} s)")
        print(f"  {'hepml inject':24s} {inj:7.3f} s  {n / inj / 1e6:6.2f} M events/s  {inj_rss:6.1f} MB  cpu {inj_cpu:6.2f} s")
        for line in timing:
            print(f"    {line}")
        goal_script = 10 if threads == a.threads else 5
        if not a.no_script and cpus is None:
            py, py_rss, py_cpu, so, _ = best_child([sys.executable, "-c", PY_JOB, src, model, py_out, t], a.repeat, py_out)
            py_inner = float(so.strip().splitlines()[-1])
            print(f"  {'uproot+onnxruntime':24s} {py:7.3f} s  {n / py / 1e6:6.2f} M events/s  {py_rss:6.1f} MB  cpu {py_cpu:6.2f} s"
                  f"  (its own timer, after imports: {py_inner:.3f} s)")
            r = py_inner / inj
            ok &= r >= goal_script
            print(f"  inject vs the script: {r:.2f}x faster than its own timer ({py / inj:.2f}x its wall)"
                  f" (goal >= {goal_script}x)")
        ratio = inj / read
        ok &= ratio <= 1.3
        print(f"  inject / pure reading: {ratio:.2f} (goal <= 1.3)")
        if threads == a.threads and cpus is None:
            ok &= inj_rss < 100 and read_rss < 50
            print(f"  peak RSS: inject {inj_rss:.1f} MB (goal < 100), read-bench {read_rss:.1f} MB (goal < 50)")
    print(f"\nall goals met: {'yes' if ok else 'no'} (load average {load_average()})")


if __name__ == "__main__":
    main()
