#!/usr/bin/env bash
# Throughput of Reasoning Gym (PyPI `reasoning-gym`) vs resyn on equivalent tasks, single core.
#
# Usage:  bash bench/vs_reasoning_gym.sh [--target SECONDS] [--only rg_name,rg_name] [--keep DIR]
# Env:    RESYN_BIN=path   use this binary instead of building target/release/resyn
#         BENCH_CPU=k      CPU to pin to (default 0); BENCH_CPU=none disables pinning
#         RG_VERSION=x.y.z reasoning-gym version to install into bench/.venv (default 0.1.25)
#
# It creates bench/.venv with reasoning-gym if missing, runs `cargo build --release` once
# (a no-op when up to date), then runs bench/vs_reasoning_gym.py under `taskset -c $BENCH_CPU`
# so RG (in-process) and every resyn process it starts share ONE core; resyn gen also gets
# --jobs 1. Each measurement is calibrated to about --target seconds (default 1.5 s) by a
# short doubling pilot, then run once. Whole script: roughly 2-4 minutes.
#
# Measured:
#   RG gen/s        create_dataset(name, size=N, seed=1, **cfg) + iterating all N items.
#   RG verify/s     dataset.score_answer(answer, item) with the item's own answer (graph_color
#                   items have answer=None: json.dumps(metadata["possible_answer"]) is used).
#   resyn gen/s     wall time of `resyn gen FILE -n N --level 3 --jobs 1 -o OUT` (start-up and
#                   .rsn compile included); the rate the binary prints is shown as "(printed)".
#   resyn verify/s  wall time of `resyn verify FILE --data ROWS -o OUT`, rows built by Python
#                   from the gen output: {instance, hidden, params, answer: witness}.
#   native gen/s,   the same two commands with the binary of the crate `resyn build` emits for
#   native verify/s the examples (same rows, byte for byte); "-" where the generator needs Z3.
#   ratio           resyn rate / RG rate (> 1 means resyn is faster).
#
# Task pairs and RG configs (chosen to be close to resyn level 3; params of level 3 in []):
#   graph_color     <-> graph_coloring [n=9, colors=3, p=0.4 on differently planted pairs,
#                       ~9.6 edges]: num_colors=3, 9 vertices, edge_probability=0.27 (~9.7
#                       edges; RG resamples until greedy coloring succeeds).
#   n_queens        <-> n_queens [n=6, given=2]: n=6, min_remove=max_remove=4 (same puzzle
#                       size). RG enumerates all solutions at dataset creation (timed) and
#                       verifies by string match; resyn checks the constraints.
#   mini_sudoku     <-> mini_sudoku [blanks=9]: min_empty=max_empty=9. Both unique. RG
#                       verifies by string match with the stored solution.
#   sudoku          <-> sudoku [blanks=48]: min_empty=max_empty=48. Both unique.
#   course_schedule <-> dependency_sort [n=8, p=0.35, ~9.8 deps]: 8 courses, 1-2 prerequisites
#                       each, p_solvable=0.5 (default). DIFFERENT QUESTION: RG asks True/False,
#                       resyn asks for a topological order; RG verify is a string compare.
#   maze            <-> maze_path [rooms=4 -> 9x9 cells, loops=2, slack=2]: grid 9x9, min_dist 5,
#                       max_dist 15. DIFFERENT QUESTION: RG asks only for the shortest path
#                       length (verify = string compare), resyn for the moves (simulated).
#   shortest_path   <-> maze_path (same resyn measurement, not re-run): 9x9 grid, p_blocked=0.4
#                       (default). RG grids are random open grids, some with no path
#                       ("infeasible"); RG wants a shortest path, resyn accepts any path within
#                       shortest+2. RG's score_answer on its own answer is an exact string match
#                       (the path is only simulated for non-identical answers).
#   knights_knaves  <-> knights_and_knaves [n=5, kinds=6]: n_people=5, depth 2, width 2
#                       (defaults). RG statements are nested and/or/not formulas; resyn's are
#                       flat claims; both unique.
#   cryptarithm     <-> cryptarithm [3-digit + 3-digit]: min_words=max_words=2; RG word length
#                       is hard-wired to 3..5 digits.
#   futoshiki       <-> futoshiki [n=5, signs=12, given=4]: board 5, difficulty 3 (~24% of the
#                       40 adjacent pairs signed). RG removes clues while the solution stays
#                       unique (solver calls); resyn's instances need not be unique.
#   jugs            <-> water_jugs [jugs=3, max_cap=9, min_depth=4, slack=1]: num_jugs=3,
#                       difficulty=4 (>= 4 moves, capacities 3..7).
#   No RG counterpart: knapsack, subset_sum, magic_square (RG has no such task).
#
# Caveats: resyn numbers include process start-up, compile and JSONL I/O (the per-run fixed
# cost is printed as `gen -n 1` wall); RG numbers are in-process with no I/O. The machine has
# 2 cores and may be shared: the load average is printed at start and end.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/bench/.venv"
RG_VERSION=${RG_VERSION:-0.1.25}
BENCH_CPU=${BENCH_CPU:-0}

if ! "$VENV/bin/python" -c "import reasoning_gym" >/dev/null 2>&1; then
    echo "# installing reasoning-gym==$RG_VERSION into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "reasoning-gym==$RG_VERSION"
fi

if [[ -n "${RESYN_BIN:-}" ]]; then
    BIN=$RESYN_BIN
else
    echo "# cargo build --release" >&2
    ./x cargo build --release --quiet   # through ./x: the same Z3 set-up as everything else
    BIN="$ROOT/target/release/resyn"
fi
[[ -x "$BIN" ]] || { echo "no resyn binary at $BIN" >&2; exit 1; }

# The examples compiled to native code (`resyn build`): its binary is measured too.
NATIVE_DIR="$ROOT/target/bench-emitted-all"
echo "# resyn build examples/*.rsn -> $NATIVE_DIR" >&2
"$BIN" build "$ROOT"/examples/*.rsn -o "$NATIVE_DIR" --name resyn-envs --runtime-path "$ROOT/runtime" >&2
cp "$ROOT/Cargo.lock" "$NATIVE_DIR/Cargo.lock"
env -u RUSTFLAGS CARGO_TARGET_DIR="$NATIVE_DIR/target" cargo build --release --quiet --manifest-path "$NATIVE_DIR/Cargo.toml"
NATIVE="$NATIVE_DIR/target/release/resyn-envs"

PIN=()
if [[ "$BENCH_CPU" != "none" ]]; then
    command -v taskset >/dev/null || { echo "taskset not found (set BENCH_CPU=none to run unpinned)" >&2; exit 1; }
    PIN=(taskset -c "$BENCH_CPU")
fi

if [[ -n "${RESYN_BIN:-}" ]]; then
    ORIGIN="given by RESYN_BIN"
else
    ORIGIN="built from the work tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
fi
echo "# $("$BIN" --version) ($BIN, $ORIGIN), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"

# One thread for numpy and friends (knights_knaves uses numpy); no BLAS work is involved.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
exec "${PIN[@]}" "$VENV/bin/python" "$ROOT/bench/vs_reasoning_gym.py" \
    --resyn "$BIN" --native "$NATIVE" --examples "$ROOT/examples" "$@"
