#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/: the text parser, the ONNX importer, the safetensors
# weights loader) with cargo-fuzz on the nightly toolchain, each for SECONDS
# (default 600), seeded with the repository's models, fixtures and ONNX files.
# A crash stops its target; libFuzzer leaves the input in fuzz/artifacts/<target>/.
# Keep it as a regression test: copy it to tests/fuzz/<target>/ (replayed by
# tests/fuzz_regressions.rs) and fix the bug.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# Needs: rustup toolchain nightly, `cargo install cargo-fuzz`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
seconds="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(text_parser onnx_import safetensors_weights)
fi

# Seed corpora (outside git, under fuzz/corpus/).
mkdir -p fuzz/corpus/text_parser fuzz/corpus/onnx_import fuzz/corpus/safetensors_weights
cp -n examples/*.smelt tests/fixtures/interp/*.smelt ir/tests/cases/*/*.smelt tests/cases/bad/*.smelt fuzz/corpus/text_parser/ 2>/dev/null || true
cp -n tests/fixtures/interp/*.safetensors examples/*.safetensors fuzz/corpus/safetensors_weights/ 2>/dev/null || true
onnx_data="${SMELT_ONNX_DATA:-target/onnx-test-data}"
if [ -d "$onnx_data/node" ]; then
    for d in "$onnx_data"/node/test_*; do
        n="$(basename "$d")"
        [ -f "fuzz/corpus/onnx_import/$n.onnx" ] || cp "$d/model.onnx" "fuzz/corpus/onnx_import/$n.onnx" 2>/dev/null || true
    done
fi
cp -n tests/fuzz/text_parser/* fuzz/corpus/text_parser/ 2>/dev/null || true
cp -n tests/fuzz/onnx_import/* fuzz/corpus/onnx_import/ 2>/dev/null || true
cp -n tests/fuzz/safetensors_weights/* fuzz/corpus/safetensors_weights/ 2>/dev/null || true

status=0
for t in "${targets[@]}"; do
    echo "==> $t for $seconds s"
    # -timeout: an input slower than 10 s is a hang; -rss_limit_mb: an input that
    # allocates more than 2 GiB is an out-of-memory crash.
    if ! cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 2>&1 | tail -n 40; then
        echo "==> $t: CRASH (see fuzz/artifacts/$t/)"
        status=1
    fi
done
exit $status
