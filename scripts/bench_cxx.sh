#!/usr/bin/env bash
# Per-event speed of hepml from C++ (a benchmark, not a test): batch-1 latency and batch-256
# events/s for the sklearn MLP 80-100-100-1, the two-input PNN and a 100-tree depth-3 BDT, on
# hepml's native evaluators ("auto"), tract and ONNX Runtime, all called through libhepml's C
# API from one C++ program (examples/cxx/bench.cpp).
#
# ONNX Runtime is the pip wheel's libonnxruntime (the project venv), driven through hepml's
# `ort` engine (Rust `ort` crate over the same C API; the wheel ships no C headers). Its
# numbers include that engine's input/output copies.
#
#   scripts/bench_cxx.sh [SECONDS_PER_MEASUREMENT]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-1}
cargo build -p hepml-cxx --release --quiet
target=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python scripts/make_cxx_cases.py "$work/cases" >/dev/null
g++ -std=c++17 -O2 -Icxx-bridge/include examples/cxx/bench.cpp \
  -L"$target/release" -lhepml -Wl,-rpath,"$target/release" -o "$work/bench"
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
"$work/bench" "$work/cases" "$secs"
