#!/usr/bin/env bash
# The WGSL backend on a real GPU (NVIDIA + Vulkan), in two halves:
#
#   scripts/gpu-check.sh prepare   # here, with the Rust toolchain and apt
#   scripts/gpu-check.sh run       # on the GPU machine (no Rust needed)
#   scripts/gpu-check.sh quick     # the suite and a few models only
#
# `prepare` downloads the Vulkan loader (the GPU machine's image lacks it) as .debs
# into gpu-check/debs/ and builds, stripped, into gpu-check/bin/: the numerical
# suite's test binary and the WGSL benchmark; the libraries the test binary links
# (libLLVM-14 and its needs) go to gpu-check/libs.tar.xz. gpu-check/ is git-ignored: carry it
# to the device (about 60 MiB: with the working tree it can pass a 64 MiB carry limit;
# the suite alone needs gpu-check/debs, gpu-check/libs.tar.xz, gpu-check/bin/numerics
# and gpu-check/bin/root.txt, without the 9 MB benchmark).
#
# `run` unpacks the loader, points it at the NVIDIA driver's ICD, then
#   1. runs the WGSL numerical suite (every op case, every fixture, every example
#      against the interpreter) — it fails if any case fails;
#   2. times GEMM 1024/2048/4096 and every example and zoo model at batch 1 and 8.
# Output goes to stdout and to $OUT (or gpu-check/out) as gpu-check.log.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=gpu-check

prepare() {
    mkdir -p "$dir/debs" "$dir/bin"
    # The loader and the GL/EGL dispatch libraries the NVIDIA ICD links against.
    (cd "$dir/debs" && apt-get download libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libopengl0 libgles2)
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
    local tests
    tests=$(cargo test --release -p smelt-engine --test numerics --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "numerics":
        print(m["executable"])' | tail -1)
    local bench
    bench=$(cargo bench --bench wgsl --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "wgsl":
        print(m["executable"])' | tail -1)
    [ -x "$tests" ] && [ -x "$bench" ] || { echo "gpu-check: build failed" >&2; exit 1; }
    cp "$tests" "$dir/bin/numerics"
    cp "$bench" "$dir/bin/wgsl-bench"
    strip "$dir/bin/numerics" "$dir/bin/wgsl-bench"
    # The test binary links the LLVM backend (libLLVM-14 and what it needs), which
    # the GPU machine lacks: bundle those libraries (xz keeps the carry under 64 MiB).
    local libs
    libs=$(mktemp -d)
    ldd "$dir/bin/numerics" | awk '/=>/ {print $3}' | grep -v -E '/(libc|libm|libgcc_s|libdl|libpthread|librt)\.so|ld-linux' |
        while read -r l; do cp -L "$l" "$libs/"; done
    tar -C "$libs" -cf - . | xz -T2 -6 > "$dir/libs.tar.xz"
    rm -rf "$libs"
    # The binaries find examples/ and tests/fixtures/ through the path they were built at.
    pwd > "$dir/bin/root.txt"
    du -sh "$dir"
}

run() {
    [ -d "$dir/bin" ] && [ -d "$dir/debs" ] || { echo "gpu-check: run 'scripts/gpu-check.sh prepare' first and carry $dir/" >&2; exit 1; }
    for f in "$dir"/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
    local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; fi
    export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
    local root
    root=$(cat "$dir/bin/root.txt")
    if [ "$root" != "$(pwd)" ] && [ ! -e "$root" ]; then
        mkdir -p "$(dirname "$root")"
        ln -s "$(pwd)" "$root"
    fi
    local out="${OUT:-$dir/out}"
    local libs
    libs=$(mktemp -d)
    if [ -f "$dir/libs.tar.xz" ]; then
        tar -C "$libs" -xJf "$dir/libs.tar.xz" 2>/dev/null ||
            python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$dir/libs.tar.xz" "$libs"
    fi
    mkdir -p "$out"
    {
        nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true
        echo "== WGSL numerical suite"
        # The timings run even when a case fails; the exit status reports it.
        if LD_LIBRARY_PATH="$libs" "$dir/bin/numerics" wgsl --test-threads 4 --nocapture; then echo pass > "$out/suite"; else echo FAIL > "$out/suite"; fi
        echo "== timings (median of 5 runs; a run = inputs written, one command buffer, outputs read back)"
        if [ -n "${GPU_CHECK_BENCH:-}" ]; then
            # shellcheck disable=SC2086
            "$dir/bin/wgsl-bench" $GPU_CHECK_BENCH
        else
            "$dir/bin/wgsl-bench" --gemm 1024,2048,4096 --examples --batches 1,8 --reps 5 \
                --zoo all --profile
            # The two GEMM tiles side by side (the default picks 128 from 256 of its workgroups).
            for t in 64 128; do
                echo "== GEMM with --schedule wgsl-tile=$t"
                "$dir/bin/wgsl-bench" --gemm 512,1024,2048,4096 --reps 5 --profile --schedule wgsl-tile=$t
            done
        fi
    } 2>&1 | tee "$out/gpu-check.log"
    echo "WGSL numerical suite: $(cat "$out/suite")"
    [ "$(cat "$out/suite")" = pass ]
}

# `quick`: the suite, then GEMM 1024 and the ResNets and AlphaZero, profiled (a
# shorter check after a change).
quick() {
    GPU_CHECK_BENCH="--gemm 1024,2048 --zoo resnet18,resnet50,alphazero,lstm --batches 1,8 --reps 5 --profile" run
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    quick) quick ;;
    *) echo "usage: scripts/gpu-check.sh prepare|run|quick" >&2; exit 2 ;;
esac
