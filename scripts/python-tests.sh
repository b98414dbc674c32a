#!/usr/bin/env bash
# The Python package's tests, as test.sh runs them: the extension is built with
# maturin from the workspace's dev-profile artifacts (`cargo build` has made
# them, so this links one library), installed into target/python-venv (made
# once, with maturin, pytest, onnx, onnxruntime, numpy, safetensors and
# matplotlib from PyPI), python/tests run against ONNX Runtime and the CLI, and
# the example examples/python/compare.py runs (its chart saved under target/).
# Any failure — the build, the install, a test or the example — exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/python-venv
if ! "$venv/bin/python" -c "import maturin, pytest, onnx, onnxruntime, numpy, safetensors, matplotlib, ml_dtypes" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "maturin>=1.16,<2" pytest onnx onnxruntime numpy safetensors matplotlib ml_dtypes
fi
rm -rf target/wheels
"$venv/bin/maturin" build --profile dev --strip --auditwheel skip -m python/Cargo.toml --out target/wheels
"$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps target/wheels/smelt-*.whl
target_dir="${CARGO_TARGET_DIR:-target}"
SMELT_CLI="$(cd "$target_dir" && pwd)/debug/smelt" "$venv/bin/python" -m pytest -q python/tests
MPLBACKEND=Agg "$venv/bin/python" examples/python/compare.py --runs 3 --plot target/compare.png
