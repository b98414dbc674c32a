#!/usr/bin/env bash
# The whole test suite, as CI runs it (`bash .ci/run`, with CI=true), on a fresh
# machine with a Rust toolchain and the LLVM 14 development files: build
# everything, run every test (with cargo-nextest when it is installed), the
# doctests, the Python package's pytest suite (scripts/python-tests.sh) and
# clippy, and build the Cranelift-only configuration (no LLVM, no wgpu:
# `--no-default-features`).
#
# Snapshots: with CI=true a missing or changed insta snapshot fails the run. Locally,
# accept new ones with `INSTA_UPDATE=always cargo test ...` and review the .snap files.
set -euo pipefail
cd "$(dirname "$0")"

step() {
    printf '\n==> %s\n' "$*"
    "$@"
}

# The ONNX backend test data (from the onnx 1.22.0 wheel) and the small ONNX models
# that the frontends' tests import, cached outside git in $SMELT_ONNX_DATA (default
# target/onnx-test-data); nothing is downloaded when the data is there.
# The WGSL suite runs on Mesa's lavapipe (software Vulkan) where there is no GPU:
# install it when the Vulkan loader or the lavapipe driver is missing (CI runs as
# root). SMELT_SKIP_GPU=1 skips both this and the WGSL tests.
if [ "${SMELT_SKIP_GPU:-0}" != 1 ]; then
    if ! ldconfig -p | grep -q 'libvulkan\.so\.1' || ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
        sudo=""
        if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
        step $sudo apt-get update
        step $sudo apt-get install -y mesa-vulkan-drivers libvulkan1
    fi
    # lavapipe warns without a private runtime dir.
    if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
        export XDG_RUNTIME_DIR="$(mktemp -d)"
    fi
fi

# A CI run builds once from clean: incremental state would only take disk.
if [ "${CI:-}" = true ]; then
    export CARGO_INCREMENTAL=0
fi

step scripts/onnx/fetch-test-data.sh
onnx_data="${SMELT_ONNX_DATA:-target/onnx-test-data}"
step "$(cat "$onnx_data/python")" scripts/onnx/make_models.py "$onnx_data/models"

step cargo build --workspace --all-targets

if cargo nextest --version >/dev/null 2>&1; then
    step cargo nextest run --workspace --no-fail-fast
else
    echo
    echo "(cargo-nextest is not installed: running the tests with cargo test)"
    step cargo test --workspace --all-targets --no-fail-fast
fi

# nextest does not run doctests.
step cargo test --doc --workspace

# The Python package: built from the artifacts above, tested with pytest.
step scripts/python-tests.sh

# smelt without the optional backends (LLVM, the wgpu runtime) still builds.
step cargo build --no-default-features

if cargo clippy --version >/dev/null 2>&1; then
    step cargo clippy --workspace --all-targets -- -D warnings
else
    echo
    echo "(clippy is not installed: lints skipped)"
fi

echo
echo "==> all passed"
