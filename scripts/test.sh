#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need into the project
# (Python venv with uproot, ROOT 6.40, onnxruntime, ...), then runs every Rust test, which
# in turn run the Python cross-checks under scripts/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d ../shared/data/root ]; then
  echo "error: ../shared/data (reference files) must sit beside the checkout" >&2
  exit 1
fi
bash scripts/setup_env.sh
# Style and lints are part of the tests: formatting first (instant), clippy after the build.
cargo fmt --all --check
export HEPML_PYTHON="$PWD/.venv/bin/python"
# The C++ tests (cxx-bridge/tests) link against libhepml.so, which `cargo test` does not
# produce (it builds libraries as rlibs for the test harness): build the workspace first.
cargo build --workspace
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets "$@"
# `--all-targets` leaves out the documentation examples (the READMEs' code): run them too.
cargo test --workspace --doc "$@"
