#!/usr/bin/env bash
# Fetches the ONNX backend test data into a cache folder outside git and prepares a
# Python environment with onnx==1.22.0 (for scripts/onnx/make_models.py).
#
# The data ships in the onnx 1.22.0 wheel (the last one that does): the folders
# onnx/backend/test/data/{node,pytorch-converted,pytorch-operator,simple} are
# unpacked into $SMELT_ONNX_DATA (default: target/onnx-test-data), each case a
# `model.onnx` with `test_data_set_0/{input,output}_N.pb`. Nothing is downloaded
# when the data is already there.
#
# Usage: scripts/onnx/fetch-test-data.sh        (prints the data folder at the end)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="${SMELT_ONNX_DATA:-$root/target/onnx-test-data}"
version=1.22.0
stamp="$dest/.onnx-$version"
mkdir -p "$dest"

if [ ! -f "$stamp" ]; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    echo "downloading onnx==$version (for its backend test data) ..."
    python3 -m pip download --quiet --no-deps --only-binary=:all: "onnx==$version" -d "$tmp"
    wheel="$(ls "$tmp"/onnx-"$version"-*.whl | head -n 1)"
    mkdir -p "$dest/wheels"
    cp "$wheel" "$dest/wheels/"
    python3 - "$wheel" "$dest" <<'PY'
import os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "onnx/backend/test/data/"
keep = ("node/", "pytorch-converted/", "pytorch-operator/", "simple/")
n = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if not name.startswith(prefix) or name.endswith("/"):
            continue
        rel = name[len(prefix):]
        if not rel.startswith(keep) or ".." in rel.split("/"):
            continue
        out = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(info) as src, open(out, "wb") as dst:
            dst.write(src.read())
        n += 1
print(f"unpacked {n} files into {dest}")
PY
    touch "$stamp"
else
    echo "ONNX test data present in $dest"
fi

# A Python with onnx==1.22.0 and numpy, for scripts/onnx/make_models.py.
if python3 -c "import onnx, numpy, sys; sys.exit(onnx.__version__ != '$version')" 2>/dev/null; then
    py=python3
else
    venv="$dest/venv"
    if ! "$venv/bin/python" -c "import onnx, numpy, sys; sys.exit(onnx.__version__ != '$version')" 2>/dev/null; then
        echo "installing onnx==$version and numpy into $venv ..."
        rm -rf "$venv"
        python3 -m venv "$venv"
        wheel="$(ls "$dest"/wheels/onnx-"$version"-*.whl 2>/dev/null | head -n 1 || true)"
        "$venv/bin/python" -m pip install --quiet "${wheel:-onnx==$version}" numpy
    fi
    py="$venv/bin/python"
fi
echo "$py" > "$dest/python"
echo "$dest"
