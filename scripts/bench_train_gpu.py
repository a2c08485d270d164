#!/usr/bin/env python3
"""PyTorch-on-CUDA baseline for `hepml train --device wgpu` (a benchmark, not a test; needs a
CUDA torch, which the test venv does not hold): the README's GPU table.

  bench_train_gpu.py DEMO_OUT/data.h5 BATCH

Trains the 6-256-256-256-1 ReLU MLP (Adam, lr 3e-3, BCE) on one fold's half of `hepml demo`'s
table for 2 epochs, with the data resident on the GPU (PyTorch's best case), after one warm-up
epoch, and prints events x epochs / s, the figure `hepml train` reports as events/s. Run hepml on
the same table with `model: {type: dnn, width: 256, depth: 3}`, `batch_size: BATCH`, 2 epochs.
"""
import sys, time, h5py, numpy as np, torch
path, B = sys.argv[1], int(sys.argv[2])
f = h5py.File(path, "r")["events"]
cols = {}
for k in f:
    if k.endswith("_items"):
        vals = f[k.replace("_items", "_values")][...]
        for i, n in enumerate(f[k][...]):
            cols[n.decode()] = vals if vals.ndim == 1 else vals[:, i]
x = np.stack([cols[c] for c in ["f0", "f1", "f2", "f3", "f4", "nJet"]], 1).astype(np.float32)
y = cols["label"].astype(np.float32)[:, None]
dev = "cuda"
x = torch.tensor((x - x.mean(0)) / x.std(0), device=dev); y = torch.tensor(y, device=dev)
torch.manual_seed(1)
L = torch.nn.Linear
net = torch.nn.Sequential(L(6, 256), torch.nn.ReLU(), L(256, 256), torch.nn.ReLU(), L(256, 256), torch.nn.ReLU(), L(256, 1)).to(dev)
opt = torch.optim.Adam(net.parameters(), lr=3e-3)
lossf = torch.nn.BCEWithLogitsLoss()
n = len(x) // 2  # one fold's training half
for warm in (True, False):
    torch.cuda.synchronize(); t0 = time.perf_counter(); seen = 0
    for ep in range(1 if warm else 2):
        perm = torch.randperm(n, device=dev)
        for i in range(0, n, B):
            idx = perm[i:i + B]
            opt.zero_grad(); loss = lossf(net(x[idx]), y[idx]); loss.backward(); opt.step(); seen += len(idx)
    torch.cuda.synchronize(); dt = time.perf_counter() - t0
    if not warm:
        print(f"torch cuda batch {B}: {seen} events x epochs in {dt:.2f} s = {seen/dt:,.0f} events/s")
