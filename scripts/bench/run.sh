#!/usr/bin/env bash
# smelt against ONNX Runtime and tract, side by side in one run, from a clean clone:
#
#  1. a Python venv with onnx, onnxruntime and numpy ($SMELT_BENCH_DIR/venv);
#  2. the models (scripts/bench/make_models.py) into $SMELT_BENCH_MODELS;
#  3. ONNX Runtime's reference outputs (scripts/bench/ort_bench.py reference);
#  4. the bench/ crate in release (outside the workspace: its own Cargo.lock):
#     ONNX Runtime (through `ort_bench.py serve`), tract and smelt's backends,
#     each checked against the reference outputs, then timed side by side (each
#     round runs every system once, so that all see the same load);
#  5. the report: the table on stdout, bench/results/<date>.json,
#     bench/results/latest.svg and README.md's Performance section.
#
# Usage: scripts/bench/run.sh [--runs N] [--warmup N] [--threads 1,2] [--models a,b]
#                             [--no-readme] [--tune]
# --tune: first `smelt tune` each model for each smelt backend and thread count on
# this machine (into $SMELT_BENCH_DIR/tuning.json), and time smelt with those
# schedules (the table then says so).
# Environment: SMELT_BENCH_DIR (default target/bench), SMELT_BENCH_MODELS (default
# target/bench-models), CARGO_TARGET_DIR as for any cargo build.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

runs=20
warmup=3
tune=
threads=1,2
models=resnet18,transformer,lstm,wavenet,alphazero_b1,alphazero_b8,matmul512,matmul1024,resnet18_int8,transformer_int8
readme=README.md
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --models) models="$2"; shift 2 ;;
        --no-readme) readme=""; shift ;;
        --tune) tune=1; shift ;;
        *) echo "unknown argument $1 (see the top of $0)" >&2; exit 2 ;;
    esac
done

work="${SMELT_BENCH_DIR:-$root/target/bench}"
model_dir="${SMELT_BENCH_MODELS:-$root/target/bench-models}"
mkdir -p "$work" "$model_dir"

# 1. Python: pinned versions, installed once.
onnx_version=1.22.0
ort_version=1.32.0
venv="$work/venv"
if ! "$venv/bin/python" -c "import onnx, onnxruntime, numpy, sys; sys.exit(onnx.__version__ != '$onnx_version' or onnxruntime.__version__ != '$ort_version')" 2>/dev/null; then
    echo "==> installing onnx==$onnx_version onnxruntime==$ort_version numpy into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "onnx==$onnx_version" "onnxruntime==$ort_version" numpy
fi
py="$venv/bin/python"

# 2. Models.
echo "==> models into $model_dir"
"$py" scripts/bench/make_models.py "$model_dir" ${models//,/ }

# 3. Reference inputs and outputs (MODEL.io.safetensors).
echo "==> onnxruntime reference outputs"
"$py" scripts/bench/ort_bench.py reference "$model_dir" --models "$models"

# 4. All systems side by side.
echo "==> onnxruntime, tract and smelt (cargo build --release in bench/)"
cargo build --release --manifest-path bench/Cargo.toml
target_dir="${CARGO_TARGET_DIR:-$root/bench/target}"
tuning_args=()
if [ -n "$tune" ]; then
    echo "==> smelt tune (each model, backend and thread count)"
    cargo build --release --bin smelt
    smelt="${CARGO_TARGET_DIR:-$root/target}/release/smelt"
    rm -f "$work/tuning.json"
    for m in ${models//,/ }; do
        for t in ${threads//,/ }; do
            for b in llvm cranelift; do
                "$smelt" tune "$model_dir/$m.onnx" --backend "$b" --threads "$t" --tuning "$work/tuning.json" \
                    | grep -E '^(model|classes)' | sed "s/^/  $m $b ${t}T: /" || echo "  $m $b ${t}T: not tuned"
            done
        done
    done
    tuning_args=(--tuning "$work/tuning.json")
fi
"$target_dir/release/smelt-bench" measure --models "$model_dir" --names "$models" --threads "$threads" \
    --runs "$runs" --warmup "$warmup" --ort-python "$py" --ort-script scripts/bench/ort_bench.py \
    --out "$work/run.json" "${tuning_args[@]}"

# 5. Report.
date="$(date -u +%Y-%m-%dT%H%MZ)"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    commit="$commit+changes"
fi
"$target_dir/release/smelt-bench" report --native "$work/run.json" \
    --date "$date" --commit "$commit" --results bench/results ${readme:+--readme "$readme"}
