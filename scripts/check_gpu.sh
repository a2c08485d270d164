#!/usr/bin/env bash
# `hepml train --device wgpu` end to end (a check, not part of scripts/test.sh: building the
# `gpu` feature compiles burn's wgpu/cubecl stack and a second variant of tract, ~18 minutes on
# 2 cores). Builds hepml with `--features gpu`, trains the PNN of tests/train.rs on the first
# Vulkan device wgpu finds (a real GPU, or Mesa's lavapipe, a Vulkan on the CPU, which this
# script installs where there is none), and checks that the export reproduces the wgpu-trained
# model's test scores in onnxruntime (1e-5) and that its AUC is that of the same training on
# the CPU (within 0.02).
#
#   scripts/check_gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
if ! compgen -G "/usr/share/vulkan/icd.d/*.json" >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
fi
cargo build -p hepml --features gpu
hepml=target/debug/hepml
py=.venv/bin/python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$py scripts/make_train_data.py "$work" 6000 3
cat >"$work/convert.yaml" <<EOF
tree: events
columns: [f0, f1, f2, f3, f4]
event_number: event
samples:
  - {name: sig300, files: ["$work/sig.root"], label: 1, selection: "mass == 300", extra: {mass: 300}}
  - {name: sig500, files: ["$work/sig.root"], label: 1, selection: "mass == 500", extra: {mass: 500}}
  - {name: sig700, files: ["$work/sig.root"], label: 1, selection: "mass == 700", extra: {mass: 700}}
  - {name: bkg, files: ["$work/bkg.root"], label: 0, extra: {mass: 0}}
EOF
cat >"$work/train.yaml" <<EOF
model: {type: pnn, width: 32, depth: 2, activation: relu}
data: {files: ["$work/data.h5"]}
preparation: {kfold: {k: 2, branch: event}}
features: {inputs: [f0, f1, f2, f3, f4], parameter: mass, weight: weight}
training: {optimizer: adam, learning_rate: 0.003, batch_size: 256, epochs: 3}
evaluation: {parameter_values: [300, 500, 700], plots: false}
EOF
$hepml convert "$work/convert.yaml" -o "$work/data.h5" -q
$hepml train "$work/train.yaml" -o "$work/gpu" --device wgpu --seed 2 -q
$hepml train "$work/train.yaml" -o "$work/cpu" --device cpu --seed 2 -q
$hepml export "$work/gpu" -o "$work/m.onnx"
$py scripts/check_export.py "$work/gpu" "$work/m.fold0.onnx" "$work/m.fold1.onnx" | cut -c1-60
$py - "$work" <<'EOF'
import json, sys
auc = {d: json.load(open(f"{sys.argv[1]}/{d}/metrics.json"))["test"]["auc"] for d in ("gpu", "cpu")}
print(f"test AUC: wgpu {auc['gpu']:.4f}, cpu {auc['cpu']:.4f}")
if abs(auc["gpu"] - auc["cpu"]) > 0.02:
    sys.exit("wgpu and cpu training disagree")
EOF
echo "check_gpu: ok"
