#!/usr/bin/env bash
# The whole test suite, as CI runs it (`bash .ci/run`, with CI=true), on a fresh
# machine with a Rust toolchain: build everything, run every test (with
# cargo-nextest when it is installed), the doctests, and clippy.
#
# Snapshots: with CI=true a missing or changed insta snapshot fails the run. Locally,
# accept new ones with `INSTA_UPDATE=always cargo test ...` and review the .snap files.
set -euo pipefail
cd "$(dirname "$0")"

step() {
    printf '\n==> %s\n' "$*"
    "$@"
}

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

if cargo clippy --version >/dev/null 2>&1; then
    step cargo clippy --workspace --all-targets -- -D warnings
else
    echo
    echo "(clippy is not installed: lints skipped)"
fi

echo
echo "==> all passed"
