#!/usr/bin/env bash
# Median (and 90th percentile) proof time per instance, per example, at one level: what
# issue 4's "median proof time ≤ 2 ms at level 3" goal measures. Each example's instances
# are proved by `resyn prove --jobs 1` (what the env requires: `unique` or `solvable`,
# batch contexts as in `gen --prove`); a row's `effort.time_us` is the time of its proof
# (lowering, solving, uniqueness, witness check), without generation or JSON output.
#
# Usage:  bash bench/prove_medians.sh [-n N] [--level L] [EXAMPLE...]   (defaults: 200, 3, all)
# Env:    RESYN_BIN=path   use this binary instead of building target/release/resyn
#         BENCH_CPU=k      CPU to pin to (default 0); BENCH_CPU=none disables pinning
set -euo pipefail
cd "$(dirname "$0")/.."
N=200 LEVEL=3 NAMES=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        -n) N=$2; shift 2 ;;
        --level) LEVEL=$2; shift 2 ;;
        *) NAMES+=("$1"); shift ;;
    esac
done
if [[ ${#NAMES[@]} -eq 0 ]]; then
    for f in examples/*.rsn; do NAMES+=("$(basename "$f" .rsn)"); done
fi
if [[ -n "${RESYN_BIN:-}" ]]; then
    BIN=$RESYN_BIN
else
    ./x cargo build --release --quiet >&2
    BIN=target/release/resyn
fi
PIN=()
if [[ "${BENCH_CPU:-0}" != none ]] && command -v taskset >/dev/null; then
    PIN=(taskset -c "${BENCH_CPU:-0}")
fi
echo "# $("$BIN" --version), level $LEVEL, $N instances per example, one core"
printf '%-20s %10s %10s %10s  %s\n' example "median ms" "p90 ms" "mean ms" statuses
for name in "${NAMES[@]}"; do
    "${PIN[@]}" "$BIN" prove "examples/$name.rsn" -n "$N" --level "$LEVEL" --jobs 1 2>/dev/null \
        | python3 -c '
import json, sys, collections
name = sys.argv[1]
rows = [json.loads(l) for l in sys.stdin]
t = sorted(r["effort"]["time_us"] / 1000 for r in rows)
st = collections.Counter(r["status"] for r in rows)
med = t[len(t) // 2] if len(t) % 2 else (t[len(t) // 2 - 1] + t[len(t) // 2]) / 2
print(f"{name:<20} {med:10.2f} {t[int(0.9 * (len(t) - 1))]:10.2f} {sum(t) / len(t):10.2f}  "
      + " ".join(f"{k}={v}" for k, v in sorted(st.items())))
' "$name"
done
