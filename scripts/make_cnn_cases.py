#!/usr/bin/env python3
"""Models, inputs and onnxruntime outputs for the native 1-D CNN/RNN evaluator's parity test
(engine/tests/cnn.rs), plus altered copies of one model that the evaluator must refuse.

  make_cnn_cases.py OUTDIR

Three models are built here with random weights (fixed seeds; nothing is downloaded):
- mxnet.onnx (opset 11, IR 6): the op pattern of CMS DeepBoostedJet V02, MXNet's
  pre-activation ResNet over [N, C, L, 1] inputs (initializers also listed as graph inputs,
  an anonymous batch dimension, BatchNormalization with momentum, convolutions without bias,
  kernel (3, 1), stride (2, 2) at the start of later stages, 1x1 shortcuts), two branches
  (`pfcand` [N, 12, 30, 1]: stages of 16 and 24 channels; `sv` [N, 5, 7, 1]: one stage of 8)
  pooled, concatenated and classified by Gemm (transB 1) -> Relu -> Dropout -> Gemm ->
  Softmax, output `softmax` [N, 6];
- mxnet_md.onnx: the same branches under the head of DeepBoostedJet's mass-decorrelated
  version: Gemm -> LeakyRelu (alpha 0.2, then ONNX's default) -> Dropout -> Flatten twice,
  Gemm -> LogSoftmax, output `log_softmax` [N, 6];
- torch1d.onnx (opset 13): a PyTorch-style Conv1d network over `x` [N, 10, 25]: convolutions
  with bias (k 3, 5 with stride 2, 1 with stride 2 as shortcut, a valid k 3 that shortens the
  sequence), a 3-D BatchNormalization after a convolution, a residual Add, GlobalAveragePool,
  Flatten, Gemm (transB 0), a MatMul + Add dense layer and Sigmoid, output `output` [N, 1].

Cases (raw little-endian float32 files, shapes in OUTDIR/manifest.json), for each model:
batches of 1 (three), 7, 16, 33, 64 and 65 events of normal inputs; a batch of 17 zero beyond
a random length per event (as taggers pad particles; event 0 empty); a batch of 9 with inputs
five times larger. onnxruntime runs with one intra-op thread.

Altered copies of mxnet.onnx, each a valid model onnxruntime runs, that the evaluator must
refuse, with a substring its refusal contains: a dilated convolution, a grouped one,
asymmetric pads, auto_pad SAME_UPPER, a Tanh after a Relu, a 3x3 kernel, and a Dropout in
training mode. Each but the last (whose onnxruntime output is random) has a batch of 7 with
onnxruntime's outputs (case `altered_<name>`).
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as rt
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_edgeconv_cases import write_case  # noqa: E402
from make_recurrent_cases import set_attr  # noqa: E402

EPS = 2e-5  # MXNet's BatchNorm default, as in DeepBoostedJet

MODELS = {"mxnet": "mxnet.onnx", "mxnet_md": "mxnet_md.onnx", "torch1d": "torch1d.onnx"}
OUTPUTS = {"mxnet": "softmax", "mxnet_md": "log_softmax", "torch1d": "output"}
# Per-event input shapes (without the batch) and, per input, the axis of the sequence.
INPUTS = {
    "mxnet": {"pfcand": (12, 30, 1), "sv": (5, 7, 1)},
    "mxnet_md": {"pfcand": (12, 30, 1), "sv": (5, 7, 1)},
    "torch1d": {"x": (10, 25)},
}


class Builder:
    """Nodes and initializers of a graph under construction, with seeded random weights."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []

    def init(self, name, value):
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op, inputs, name, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def bn(self, x, name, c, mxnet=True):
        r = self.rng
        ins = [
            x,
            self.init(f"{name}_gamma", r.uniform(0.6, 1.4, c)),
            self.init(f"{name}_beta", r.normal(0, 0.2, c)),
            self.init(f"{name}_moving_mean", r.normal(0, 0.3, c)),
            self.init(f"{name}_moving_var", r.uniform(0.5, 2.0, c)),
        ]
        attrs = {"epsilon": EPS}
        if mxnet:
            attrs["momentum"] = 0.1
        return self.node("BatchNormalization", ins, name, **attrs)

    def conv(self, x, name, ci, co, k, pad, stride, two_d, bias=False):
        """A convolution along the positions: kernel (k, 1) on [N, C, L, 1] if `two_d`."""
        w = self.rng.normal(0, np.sqrt(2.0 / (ci * k)), (co, ci, k) + ((1,) if two_d else ()))
        ins = [x, self.init(f"{name}_weight", w)]
        if bias:
            ins.append(self.init(f"{name}_bias", self.rng.normal(0, 0.1, co)))
        if two_d:
            attrs = dict(
                dilations=[1, 1],
                group=1,
                kernel_shape=[k, 1],
                pads=[pad, 0, pad, 0],
                strides=[stride, stride],
            )
        else:
            attrs = dict(kernel_shape=[k], pads=[pad, pad], strides=[stride])
        return self.node("Conv", ins, name, **attrs)

    def relu(self, x, name):
        return self.node("Relu", [x], name)

    def dense(self, x, name, ci, co, trans_b, scale=1.0):
        w = self.rng.normal(0, scale * np.sqrt(2.0 / ci), (co, ci))
        ins = [x, self.init(f"{name}_weight", w if trans_b else w.T)]
        ins.append(self.init(f"{name}_bias", self.rng.normal(0, 0.1, co)))
        return self.node("Gemm", ins, name, alpha=1.0, beta=1.0, transA=0, transB=trans_b)


def mxnet_branch(b, x, cin, stages):
    """DeepBoostedJet's branch: BN of the data, conv0, pre-activation residual units."""
    h = b.bn(x, f"{x}_bn_data", cin)
    c = stages[0]
    h = b.conv(h, f"{x}_conv0", cin, c, 3, 1, 1, True)
    for s, co in enumerate(stages, 1):
        for u in (1, 2):
            p = f"{x}_stage{s}_unit{u}"
            stride = 2 if s > 1 and u == 1 else 1
            r1 = b.relu(b.bn(h, f"{p}_bn1", c), f"{p}_relu1")
            y = b.conv(r1, f"{p}_conv1", c, co, 3, 1, stride, True)
            y = b.relu(b.bn(y, f"{p}_bn2", co), f"{p}_relu2")
            y = b.conv(y, f"{p}_conv2", co, co, 3, 1, 1, True)
            sc = b.conv(r1, f"{p}_sc", c, co, 1, 0, stride, True) if u == 1 else h
            h = b.node("Add", [y, sc], f"_plus_{p}")
            c = co
    h = b.relu(b.bn(h, f"{x}_bn1", c), f"{x}_relu1")
    h = b.node("GlobalAveragePool", [h], f"{x}_pool1")
    return b.node("Flatten", [h], f"{x}_flatten"), c


def mxnet_model(decorrelated=False):
    """The DeepBoostedJet pattern; `decorrelated`: the head of its mass-decorrelated version
    (LeakyRelu layers, LogSoftmax; here the LogSoftmax is the output)."""
    b = Builder(11)
    pf, cpf = mxnet_branch(b, "pfcand", 12, [16, 24])
    sv, csv = mxnet_branch(b, "sv", 5, [8])
    h = b.node("Concat", [pf, sv], "concat", axis=1)
    h = b.node("Flatten", [h], "flatten_1")
    if decorrelated:
        widths = [cpf + csv, 48, 24]
        for i, (ci, co) in enumerate(zip(widths, widths[1:])):
            h = b.dense(h, f"dense{i}", ci, co, 1)
            # The second with ONNX's default alpha (0.01).
            alpha = {"alpha": 0.2} if i == 0 else {}
            h = b.node("LeakyRelu", [h], f"leakyrelu{i}", **alpha)
            h = b.node("Dropout", [h], f"dropout{i}", ratio=0.2)
            h = b.node("Flatten", [h], f"flatten_d{i}")
        h = b.dense(h, "fc_out", widths[-1], 6, 1, scale=0.7)
        out = b.node("LogSoftmax", [h], OUTPUTS["mxnet_md"], axis=-1)
    else:
        h = b.relu(b.dense(h, "fc1_fc", cpf + csv, 48, 1), "fc1_relu")
        h = b.node("Dropout", [h], "fc1_dropout", ratio=0.3)
        h = b.node("Flatten", [h], "flatten_2")
        h = b.dense(h, "fc_out", 48, 6, 1, scale=0.7)
        out = b.node("Softmax", [h], "softmax", axis=1)
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, *s])
        for n, s in INPUTS["mxnet"].items()
    ]
    # As MXNet's exporter: every initializer is a graph input too.
    inputs += [
        helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.dims)) for t in b.inits
    ]
    g = helper.make_graph(
        b.nodes,
        "deepboostedjet_like",
        inputs,
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [None, 6])],
        b.inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)], producer_name="mxnet")
    m.ir_version = 6
    return m


def torch1d_model():
    b = Builder(12)
    r1 = b.relu(b.conv("x", "conv1", 10, 16, 3, 1, 1, False, bias=True), "relu1")
    y = b.conv(r1, "conv2", 16, 24, 5, 2, 2, False, bias=True)
    y = b.bn(y, "bn2", 24, mxnet=False)
    sc = b.conv(r1, "shortcut", 16, 24, 1, 0, 2, False, bias=True)
    h = b.relu(b.node("Add", [y, sc], "add"), "relu2")
    h = b.relu(b.conv(h, "conv3", 24, 32, 3, 0, 1, False, bias=True), "relu3")
    h = b.node("GlobalAveragePool", [h], "pool")
    h = b.node("Flatten", [h], "flatten")
    h = b.relu(b.dense(h, "fc1", 32, 12, 0), "fc1_relu")
    w = b.init("fc2_weight", b.rng.normal(0, np.sqrt(2.0 / 12), (12, 1)))
    h = b.node("MatMul", [h, w], "fc2_matmul")
    h = b.node("Add", [h, b.init("fc2_bias", [0.0])], "fc2_add")
    b.node("Sigmoid", [h], "output")
    g = helper.make_graph(
        b.nodes,
        "torch1d",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10, 25])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1])],
        b.inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="torch")
    m.ir_version = 7
    # Scale the last layer so that the logits of normal inputs are about N(0, 1.2^2): the
    # sigmoid neither saturated nor flat.
    probe = onnx.ModelProto()
    probe.CopyFrom(m)
    probe.graph.output.append(helper.make_tensor_value_info("fc1_relu", TensorProto.FLOAT, None))
    s = rt.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(14).normal(0, 1, (512, *INPUTS["torch1d"]["x"])).astype(np.float32)
    (h,) = s.run(["fc1_relu"], {"x": x})
    # Without the direction of the mean hidden state the logits stay centred for inputs five
    # times larger too (the network is nearly homogeneous), so those saturate less.
    w0 = weight(m, "fc2_weight")[:, 0]
    mu = h.mean(axis=0)
    w0 = (w0 - (w0 @ mu) / (mu @ mu) * mu)[:, None]
    w = w0 * (1.2 / (h @ w0).std())
    replace_weight(m, "fc2_weight", w)
    replace_weight(m, "fc2_bias", np.array([-(h @ w).mean()]))
    return m


def find(m, name):
    return next(n for n in m.graph.node if n.name == name)


def replace_weight(m, name, value):
    t = next(t for t in m.graph.initializer if t.name == name)
    t.CopyFrom(numpy_helper.from_array(np.asarray(value, np.float32), name))
    # The graph input of the same name (MXNet style) declares the new shape.
    for i in m.graph.input:
        if i.name == name:
            i.CopyFrom(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))


def weight(m, name):
    return numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == name))


def altered(base):
    """Copies of the mxnet model the evaluator must refuse: name -> (model, reason)."""
    out = {}
    rng = np.random.default_rng(13)

    m = onnx.ModelProto()
    m.CopyFrom(base)
    # Dilated, padded so that the length (and the residual Add) stays the same.
    n = find(m, "pfcand_stage1_unit2_conv2")
    set_attr(n, "dilations", [2, 1])
    set_attr(n, "pads", [2, 0, 2, 0])
    out["dilations"] = (m, "dilations")

    m = onnx.ModelProto()
    m.CopyFrom(base)
    n = find(m, "pfcand_stage1_unit2_conv1")  # 16 -> 16 channels
    set_attr(n, "group", 2)
    w = weight(m, "pfcand_stage1_unit2_conv1_weight")[:, :8] * np.sqrt(2)
    replace_weight(m, "pfcand_stage1_unit2_conv1_weight", w)
    out["group"] = (m, "group")

    m = onnx.ModelProto()
    m.CopyFrom(base)
    # conv0 shortens the sequence by one; everything after follows.
    set_attr(find(m, "pfcand_conv0"), "pads", [1, 0, 0, 0])
    out["asymmetric_pads"] = (m, "pads")

    m = onnx.ModelProto()
    m.CopyFrom(base)
    n = find(m, "pfcand_stage2_unit2_conv1")
    set_attr(n, "pads", None)
    set_attr(n, "auto_pad", "SAME_UPPER")
    out["auto_pad"] = (m, "auto_pad")

    m = onnx.ModelProto()
    m.CopyFrom(base)
    relu = find(m, "sv_stage1_unit1_relu2")
    conv = find(m, "sv_stage1_unit1_conv2")
    at = list(m.graph.node).index(relu)
    m.graph.node.insert(at + 1, helper.make_node("Tanh", [relu.output[0]], ["tanh"], name="tanh"))
    conv.input[0] = "tanh"
    out["tanh"] = (m, "Tanh")

    m = onnx.ModelProto()
    m.CopyFrom(base)
    n = find(m, "pfcand_stage1_unit2_conv1")
    set_attr(n, "kernel_shape", [3, 3])
    set_attr(n, "pads", [1, 1, 1, 1])
    w = rng.normal(0, np.sqrt(2.0 / (16 * 3)), (16, 16, 3, 3))
    replace_weight(m, "pfcand_stage1_unit2_conv1_weight", w)
    out["kernel_3x3"] = (m, "kernel_shape")

    m = onnx.ModelProto()
    m.CopyFrom(base)
    # Opset 12+ Dropout: ratio and training_mode are inputs.
    del m.opset_import[:]
    m.opset_import.append(helper.make_opsetid("", 13))
    m.ir_version = 7
    n = find(m, "fc1_dropout")
    set_attr(n, "ratio", None)
    m.graph.initializer.append(numpy_helper.from_array(np.array(0.3, np.float32), "fc1_ratio"))
    m.graph.initializer.append(numpy_helper.from_array(np.array(True), "dropout_train_flag"))
    n.input.extend(["fc1_ratio", "dropout_train_flag"])
    out["training_mode"] = (m, "training_mode")
    return out


def feeds_for(rng, model, n, kind):
    feeds = {}
    for name, shape in INPUTS[model].items():
        x = rng.normal(0, 1, (n, *shape)).astype(np.float32)
        if kind == "padded":
            length = shape[1]
            lens = rng.integers(0, length + 1, n)
            lens[0] = 0  # an empty event
            keep = np.arange(length)[None, :] < lens[:, None]  # (n, L)
            keep = keep.reshape((n, 1, length) + (1,) * (len(shape) - 2))
            x = x * keep
        elif kind == "wide":
            x = x * 5
        feeds[name] = x.astype(np.float32)
    return feeds


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    opts = rt.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3  # not the warning per initializer listed as an input

    def session(path):
        return rt.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    built = {
        "mxnet": mxnet_model(),
        "mxnet_md": mxnet_model(decorrelated=True),
        "torch1d": torch1d_model(),
    }
    for key, m in built.items():
        onnx.checker.check_model(m, full_check=True)
        onnx.save(m, os.path.join(out, MODELS[key]))

    rng = np.random.default_rng(2028)
    cases = []
    sizes = [("b1_0", 1, "normal"), ("b1_1", 1, "normal"), ("b1_2", 1, "normal")]
    sizes += [(f"b{n}", n, "normal") for n in (7, 16, 33, 64, 65)]
    sizes += [("padded", 17, "padded"), ("wide", 9, "wide")]
    for key in MODELS:
        s = session(os.path.join(out, MODELS[key]))
        for tag, n, kind in sizes:
            feeds = feeds_for(rng, key, n, kind)
            (want,) = s.run([OUTPUTS[key]], feeds)
            assert np.all(np.isfinite(want)), (key, tag)
            case = write_case(out, f"{key}_{tag}", feeds, want)
            case["model"] = MODELS[key]
            cases.append(case)
            if tag == "b65":
                if key == "mxnet_md":
                    print(f"{key}: log softmax {want.min():.2f}..{want.max():.2f}")
                elif key == "mxnet":
                    top = want.max(axis=1)
                    print(f"{key}: top softmax {top.min():.2f}..{top.max():.2f}, "
                          f"mean {top.mean():.2f}")
                else:
                    print(f"{key}: sigmoid {want.min():.3f}..{want.max():.3f}")

    refused = {}
    for name, (m, reason) in altered(built["mxnet"]).items():
        onnx.checker.check_model(m, full_check=True)
        f = f"altered-{name}.onnx"
        p = os.path.join(out, f)
        onnx.save(m, p)
        s = session(p)  # onnxruntime loads and runs it
        feeds = feeds_for(rng, "mxnet", 7, "normal")
        (want,) = s.run(["softmax"], feeds)
        assert want.shape == (7, 6) and np.all(np.isfinite(want)), name
        refused[name] = {"model": f, "native": False, "reason": reason}
        if name != "training_mode":  # random in training mode
            case = write_case(out, f"altered_{name}", feeds, want)
            case["model"] = f
            cases.append(case)
    man = {"cases": cases, "models": MODELS, "outputs": OUTPUTS, "altered": refused}
    with open(os.path.join(out, "manifest.json"), "w") as fh:
        json.dump(man, fh, indent=1)
    print(
        sum(c["output"]["shape"][0] for c in cases), "events in", len(cases), "cases;",
        len(refused), "altered models",
    )


if __name__ == "__main__":
    main()
