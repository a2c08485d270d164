#!/usr/bin/env python3
"""Exports a small ParticleNet-style GNN with PyTorch (torch.onnx.export): EdgeConv blocks whose
k nearest neighbours come from torch.topk on pairwise distances (ONNX TopK + GatherElements),
masked with the particle mask, global average pooling and a softmax head. Dynamic batch.

  make_gnn_model.py OUT_DIR        writes OUT_DIR/gnn-topk.onnx and OUT_DIR/preprocess.json

The weights are random (seeded) but the graph is the real thing; the committed copy in
tests/data/gnn-topk/ is what tests/inject.rs feeds from jagged branches (the pfcands.root that
make_test_models.py writes, ParticleNet variable names) and compares with onnxruntime.
PyTorch is not in the test venv (its PyPI wheel pulls ~3 GB of CUDA packages): run this with a
Python that has torch, e.g. a throwaway venv.
"""
import json
import os
import sys

import torch
import torch.nn as nn

K = 4
PTS = ["jet_pfcand_deta", "jet_pfcand_dphi"]
FEATS = ["jet_pfcand_pt_log", "jet_pfcand_energy_log", "jet_pfcand_deta", "jet_pfcand_dphi",
         "jet_pfcand_charge"]


def knn(points, mask, k):
    # points [N, 2, P]; masked particles are pushed far away so they are never neighbours.
    shift = (1.0 - mask) * 1e9
    x = points + shift
    inner = -2 * torch.matmul(x.transpose(2, 1), x)
    xx = torch.sum(x ** 2, dim=1, keepdim=True)
    d = -xx - inner - xx.transpose(2, 1)
    return d.topk(k=k + 1, dim=-1)[1][:, :, 1:]  # [N, P, k], self excluded


def neighbours(x, idx):
    # x [N, C, P], idx [N, P, k] -> [N, C, P, k]
    n, c, p = x.shape
    k = idx.shape[-1]
    flat = idx.reshape(n, 1, p * k).expand(n, c, p * k)
    return torch.gather(x, 2, flat).reshape(n, c, p, k)


class EdgeConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv2d(2 * cin, cout, 1), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.Conv2d(cout, cout, 1), nn.BatchNorm2d(cout), nn.ReLU())
        self.sc = nn.Conv1d(cin, cout, 1)

    def forward(self, points, feats, mask):
        idx = knn(points, mask, K)
        nb = neighbours(feats, idx)
        ctr = feats.unsqueeze(-1).expand_as(nb)
        e = self.mlp(torch.cat([ctr, nb - ctr], dim=1)).mean(dim=-1)
        return torch.relu(e + self.sc(feats)) * mask


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(len(FEATS))
        self.e1 = EdgeConv(len(FEATS), 16)
        self.e2 = EdgeConv(16, 24)
        self.head = nn.Sequential(nn.Linear(24, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, pf_points, pf_features, pf_mask):
        x = self.bn(pf_features) * pf_mask
        x = self.e1(pf_points, x, pf_mask)
        x = self.e2(x, x, pf_mask)  # the second block finds neighbours in feature space
        pooled = x.sum(dim=-1) / pf_mask.sum(dim=-1).clamp(min=1.0)
        return torch.softmax(self.head(pooled), dim=1)


def main(out):
    torch.manual_seed(7)
    net = Net()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    net.eval()
    p = 25
    args = (torch.randn(3, 2, p), torch.randn(3, len(FEATS), p), torch.ones(3, 1, p))
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "gnn-topk.onnx")
    torch.onnx.export(net, args, path, input_names=["pf_points", "pf_features", "pf_mask"],
                      output_names=["softmax"], opset_version=17, dynamo=False,
                      dynamic_axes={n: {0: "N"} for n in ["pf_points", "pf_features", "pf_mask", "softmax"]})
    info = lambda v: {"median": 0.1 if v.endswith("_log") else 0.0, "norm_factor": 0.8, "replace_inf_value": 0,
                      "lower_bound": -5, "upper_bound": 5, "pad": 0}
    pre = {
        "output_names": ["sig", "bkg"],
        "input_names": ["pf_points", "pf_features", "pf_mask"],
        "pf_points": {"var_names": PTS, "var_infos": {v: info(v) for v in PTS}, "min_length": p, "max_length": p},
        "pf_features": {"var_names": FEATS, "var_infos": {v: info(v) for v in FEATS}, "min_length": p, "max_length": p},
        "pf_mask": {"var_names": ["pfcand_mask"], "var_infos": {"pfcand_mask": {"median": 0, "norm_factor": 1, "replace_inf_value": 0, "lower_bound": -1e32, "upper_bound": 1e32, "pad": 0}}, "min_length": p, "max_length": p},
    }
    json.dump(pre, open(os.path.join(out, "preprocess.json"), "w"), indent=1)
    import onnx
    m = onnx.load(path)
    onnx.checker.check_model(m)
    print(path, sorted({n.op_type for n in m.graph.node}))


if __name__ == "__main__":
    main(sys.argv[1])
