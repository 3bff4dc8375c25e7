#!/usr/bin/env bash
# Issue 5's benchmark: emitted code vs the evaluator vs hand-written Rust, for
# graph_coloring and n_queens at level 3 (bench/native/benches/native.rs).
#   bash bench/native.sh [criterion args…]
# Emits the two examples into target/bench-emitted with this checkout's resyn, then runs
# the criterion bench (through ./x: the evaluator side links Z3).
set -euo pipefail
cd "$(dirname "$0")/.."
./x resyn build examples/graph_coloring.rsn examples/n_queens.rsn \
    -o target/bench-emitted --name resyn-envs --runtime-path runtime
cp Cargo.lock bench/native/Cargo.lock
exec ./x cargo bench --manifest-path bench/native/Cargo.toml --bench native -- "$@"
