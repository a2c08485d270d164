#!/usr/bin/env bash
# Creates the project venv (.venv) with everything the tests' Python cross-checks need:
# uproot/numpy/awkward (reference reader), ROOT 6.40 (pip `root` wheel: PyROOT, cling, ACLiC),
# onnx/onnxruntime (reference inference), scikit-learn/skl2onnx (BDT models), pandas/tables/h5py
# (HDF5 cross-checks of `hepml convert`), xgboost-cpu/onnxmltools (xgboost BDTs as ONNX),
# htcondor (HTCondor's submit-file parser, for the `hepml submit --backend condor` files).
# Also the packages of a single-node Slurm (slurmctld, slurmd, munge; Debian's slurm-wlm) that
# the batch tests start and stop with scripts/slurm-local.sh.
# Idempotent: a stamp file records the requirement set that was installed.
set -euo pipefail
# CMake, for the cxx-bridge test of find_package(hepml). Installed only when missing.
if ! command -v cmake >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends cmake >/dev/null
fi
here=$(cd "$(dirname "$0")/.." && pwd)
# Slurm for tests/submit.rs (a no-op when installed; apt-get otherwise).
bash "$here/scripts/slurm-local.sh" install
venv="$here/.venv"
req="$here/scripts/requirements.txt"
stamp="$venv/.hepml-req-stamp"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$stamp"
