#!/usr/bin/env python3
"""Throughput of Reasoning Gym vs resyn on equivalent tasks (helper of vs_reasoning_gym.sh).

Run through bench/vs_reasoning_gym.sh, which creates the venv, builds resyn and pins the
whole run (this process and every resyn it starts) to one CPU with taskset. See the
header of that script for the task pairs, the configs and the caveats.

What is measured, each measurement run once after a short calibration:
  RG gen/s        create_dataset(name, size=N, seed, **config) and iterate all N items
                  (in-process; the `import reasoning_gym` cost is not included, it is
                  reported separately).
  RG verify/s     dataset.score_answer(answer, item) on each generated item's own answer,
                  cycling over the items until M calls (answer strings prepared beforehand).
  resyn gen/s     wall time of the whole `resyn gen FILE -n N --level 3 --jobs 1 -o F`
                  command (process start-up, compile, generation, JSONL writing); the rate
                  the binary prints itself is reported too.
  resyn verify/s  wall time of the whole `resyn verify FILE --data ROWS -o F` command on
                  M rows {instance, hidden, params, answer = witness}, cycling over the
                  generated instances (rows built beforehand, not timed).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# (label, RG dataset, RG config, resyn example, note). The RG config is chosen to be close
# to the resyn example's level 3; the note says where they differ.
PAIRS = [
    (
        "graph_color <-> graph_coloring",
        "graph_color",
        dict(num_colors=3, min_num_vertices=9, max_num_vertices=9, edge_probability=0.27),
        "graph_coloring",
        "L3: n=9, 3 colors, p=0.4 between differently planted vertices (~9.6 edges). "
        "RG: 9 vertices, 3 colors, G(n, 0.27) (~9.7 edges), resampled until greedy colors it. "
        "RG items carry answer=None: scored answer = json.dumps(metadata.possible_answer).",
    ),
    (
        "n_queens <-> n_queens",
        "n_queens",
        dict(n=6, min_remove=4, max_remove=4),
        "n_queens",
        "L3: 6x6, 2 queens given (4 to place). RG: n=6, 4 queens removed (same). "
        "RG precomputes all 4 solutions of 6-queens at dataset creation (timed) and "
        "verifies by exact string match against the valid boards; resyn checks constraints.",
    ),
    (
        "mini_sudoku <-> mini_sudoku",
        "mini_sudoku",
        dict(min_empty=9, max_empty=9),
        "mini_sudoku",
        "L3: 9 blanks, unique solution. RG: 9 empty cells, unique solution (same). "
        "RG verifies by string match against the stored solution; resyn checks the rules.",
    ),
    (
        "sudoku <-> sudoku",
        "sudoku",
        dict(min_empty=48, max_empty=48),
        "sudoku",
        "L3: 9x9, 48 blanks, unique by construction (unique_givens: incremental Z3). "
        "RG: 48 empty cells, removed while a backtracking solver finds one solution (same). "
        "RG verifies by string match against the stored solution; resyn checks the rules.",
    ),
    (
        "course_schedule <-> dependency_sort",
        "course_schedule",
        dict(min_num_courses=8, max_num_courses=8, min_num_prerequisites=1,
             max_num_prerequisites=2, p_solvable=0.5),
        "dependency_sort",
        "Different question: RG asks True/False (can all courses be finished? half the "
        "instances have a cycle), resyn asks for a topological order. L3: 8 tasks, "
        "p=0.35 (~9.8 deps). RG: 8 courses, 1-2 prerequisites each (~10 deps). "
        "RG verifies by comparing the string 'True'/'False'.",
    ),
    (
        "maze <-> maze_path",
        "maze",
        dict(min_grid_size=9, max_grid_size=9, min_dist=5, max_dist=15),
        "maze_path",
        "Different question: RG asks only for the shortest-path LENGTH (verify = string "
        "compare of a number), resyn for the path itself (verify = simulate the moves). "
        "L3: 4x4 rooms = 9x9 cells, perfect maze + 2 loops, limit = shortest + 2. "
        "RG: 9x9 grid with random 70% floor, shortest distance in 5..15 (resampled).",
    ),
    (
        "shortest_path <-> maze_path",
        "shortest_path",
        dict(min_rows=9, max_rows=9, min_cols=9, max_cols=9, p_blocked=0.4),
        "maze_path",
        "RG asks for a shortest move sequence on a random 9x9 grid (40% blocked); some "
        "instances have no path (answer 'infeasible'). resyn maze_path: a carved maze "
        "that is always solvable, any path within shortest+2 moves. RG score_answer on "
        "its own answer takes the exact-string-match shortcut (path not simulated). "
        "resyn numbers are the maze_path measurement of the row above (not re-run).",
    ),
    (
        "knights_knaves <-> knights_and_knaves",
        "knights_knaves",
        dict(n_people=5, depth_constraint=2, width_constraint=2),
        "knights_and_knaves",
        "L3: 5 islanders, 6 claim kinds, one flat claim each, unique solution. "
        "RG: 5 people, nested and/or/not statements (depth 2, width 2), unique solution. "
        "RG verifies by parsing names/roles from text and comparing with the oracle.",
    ),
    (
        "cryptarithm <-> cryptarithm",
        "cryptarithm",
        dict(min_words=2, max_words=2, allow_leading_zero=False),
        "cryptarithm",
        "L3: 3-digit + 3-digit addends. RG: 2 addends of 3..5 digits each (RG's word "
        "length is fixed at 3..5, not configurable). Both check the mapping arithmetically.",
    ),
    (
        "futoshiki <-> futoshiki",
        "futoshiki",
        dict(min_board_size=5, max_board_size=5, min_difficulty=3, max_difficulty=3),
        "futoshiki",
        "L3: 5x5, 12 signs, 4 givens, not necessarily unique. RG: 5x5, difficulty 3 "
        "(~24% of the 40 adjacent pairs get a sign), clues removed while the solution "
        "stays unique (expensive solver calls). RG verifies by string match.",
    ),
    (
        "jugs <-> water_jugs",
        "jugs",
        dict(num_jugs=3, difficulty=4),
        "water_jugs",
        "L3: 3 jugs, capacities 2..9, target needs >= 4 actions, limit = shortest + 1. "
        "RG: 3 jugs, capacities 3..7, target needs >= 4 moves. Both simulate the moves.",
    ),
]

NO_MATCH_NOTE = (
    "No RG counterpart (RG 0.1.25 has no knapsack / subset-sum / magic-square task): "
    "examples/knapsack.rsn, subset_sum.rsn, magic_square.rsn are not benchmarked."
)

RATE_RE = re.compile(r"\(([0-9.]+)/s\)")


def calibrate(run, target_s, pilot_s, n0, cap):
    """Double n from n0 until run(n) takes >= pilot_s, then return the n expected to take
    target_s (at least the pilot's n, at most cap)."""
    n = n0
    while True:
        elapsed = run(n)
        if elapsed >= pilot_s or n >= cap:
            break
        n = min(cap, n * 2)
    rate = n / max(elapsed, 1e-9)
    return max(n, min(cap, int(math.ceil(rate * target_s))))


# ---------------------------------------------------------------------------- RG side


def rg_answer(name, item):
    if name == "graph_color":
        # graph_color items carry answer=None; the planted solution is in metadata.
        return json.dumps(item["metadata"]["possible_answer"])
    return item["answer"]


def rg_gen(rg, name, cfg, n, seed=1):
    t = time.perf_counter()
    ds = rg.create_dataset(name, size=n, seed=seed, **cfg)
    items = [item for item in ds]
    return time.perf_counter() - t, ds, items


def rg_verify(ds, items, answers, m):
    k = len(items)
    score = ds.score_answer
    total = 0.0
    t = time.perf_counter()
    for i in range(m):
        j = i % k
        total += score(answers[j], items[j])
    return time.perf_counter() - t, total / m


# ------------------------------------------------------------------------- resyn side


def resyn_gen(binary, rsn, n, out):
    cmd = [binary, "gen", rsn, "-n", str(n), "--level", "3", "--jobs", "1", "-o", out]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"resyn gen failed ({' '.join(cmd)}):\n{p.stderr}")
    m = RATE_RE.search(p.stderr)
    return elapsed, (float(m.group(1)) if m else float("nan")), p.stderr.strip()


def native_gen(binary, env, n, out):
    """The emitted crate's binary (`resyn build`): same rows as `resyn gen`."""
    cmd = [binary, "gen", "--env", env, "-n", str(n), "--level", "3", "--jobs", "1", "-o", out]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if p.returncode != 0:
        return None
    return elapsed


def native_verify(binary, env, data, out):
    cmd = [binary, "verify", "--env", env, "--data", data, "-o", out]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"native verify failed ({' '.join(cmd)}):\n{p.stderr}")
    return elapsed


def resyn_verify(binary, rsn, data, out):
    cmd = [binary, "verify", rsn, "--data", data, "-o", out]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"resyn verify failed ({' '.join(cmd)}):\n{p.stderr}")
    return elapsed, p.stderr.strip()


def witness_rows(gen_out):
    rows = []
    with open(gen_out) as f:
        for line in f:
            r = json.loads(line)
            rows.append(json.dumps({"instance": r["instance"], "hidden": r["hidden"],
                                    "params": r["params"], "answer": r["witness"]}))
    return rows


def write_rows(rows, m, path):
    k = len(rows)
    with open(path, "w") as f:
        for i in range(m):
            f.write(rows[i % k])
            f.write("\n")


def check_scores(path, expect):
    scores = []
    with open(path) as f:
        for line in f:
            scores.append(json.loads(line)["score"])
    if len(scores) != expect or any(s != 1.0 for s in scores):
        bad = sum(1 for s in scores if s != 1.0)
        sys.exit(f"resyn verify: {len(scores)} rows scored, {bad} not 1.0 (expected {expect} all 1.0)")


# ------------------------------------------------------------------------------ main


def fmt_rate(x):
    if x != x:  # nan
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:,.1f}"


def fmt_ratio(x):
    if x != x:  # nan
        return "-"
    return f"{x:.2f}x" if x >= 0.1 else f"{x:.2g}x"


def print_table(head, body):
    """A Markdown table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(head)]

    def line(cells):
        return "| " + " | ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                                 for i, c in enumerate(cells)) + " |"

    print(line(head))
    print("|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|")
    for row in body:
        print(line(row))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resyn", required=True, help="path to the resyn binary")
    ap.add_argument("--examples", required=True, help="examples/ directory")
    ap.add_argument("--target", type=float, default=1.5, help="seconds per measurement (default 1.5)")
    ap.add_argument("--pilot", type=float, default=0.25, help="calibration run length in seconds")
    ap.add_argument("--only", default="", help="comma-separated RG dataset names to run")
    ap.add_argument("--keep", help="keep the generated files in this directory")
    ap.add_argument("--native", help="the binary of the crate `resyn build` emits for the examples")
    args = ap.parse_args()

    t_start = time.perf_counter()
    t = time.perf_counter()
    import reasoning_gym as rg  # noqa: E402
    rg_import_s = time.perf_counter() - t
    rg_version = importlib.metadata.version("reasoning-gym")

    only = {s for s in args.only.split(",") if s}
    work = args.keep or tempfile.mkdtemp(prefix="resyn-vs-rg-")
    os.makedirs(work, exist_ok=True)

    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:
        affinity = []
    print(f"# reasoning-gym {rg_version} (import {rg_import_s:.2f} s, not counted), python "
          f"{sys.version.split()[0]}, resyn {args.resyn}", flush=True)
    print(f"# CPU affinity of this process and its children: {affinity}; load average at start: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)

    results = []
    resyn_cache = {}  # example -> (gen dict, verify dict)
    for label, name, cfg, example, note in PAIRS:
        if only and name not in only:
            continue
        rsn = os.path.join(args.examples, example + ".rsn")
        print(f"\n== {label}", flush=True)

        # RG generation.
        n_rg = calibrate(lambda n: rg_gen(rg, name, cfg, n)[0], args.target, args.pilot, 8, 200_000)
        g_s, ds, items = rg_gen(rg, name, cfg, n_rg)
        rg_gen_rate = n_rg / g_s
        print(f"   RG gen     N={n_rg:>9,}  {g_s:6.2f} s  {fmt_rate(rg_gen_rate):>12}/s", flush=True)

        # RG verification on each item's own answer.
        answers = [rg_answer(name, it) for it in items]
        m_rg = calibrate(lambda m: rg_verify(ds, items, answers, m)[0], args.target, args.pilot,
                         len(items), 20_000_000)
        v_s, mean = rg_verify(ds, items, answers, m_rg)
        rg_ver_rate = m_rg / v_s
        print(f"   RG verify  M={m_rg:>9,}  {v_s:6.2f} s  {fmt_rate(rg_ver_rate):>12}/s  "
              f"mean score {mean:.3f} over {len(items):,} distinct items", flush=True)
        extra = ""
        if name == "shortest_path":
            infeasible = sum(1 for it in items if it["answer"] == "infeasible")
            extra = f" {infeasible / len(items):.0%} of these RG instances are infeasible."
        elif name == "course_schedule":
            true = sum(1 for it in items if it["answer"] == "True")
            extra = f" {true / len(items):.0%} of these RG instances answer True."
        del ds, items, answers

        if example in resyn_cache:
            rs_gen, rs_ver = resyn_cache[example]
            print(f"   resyn      (reusing the {example} measurement above)", flush=True)
        else:
            gen_out = os.path.join(work, f"{example}.gen.jsonl")
            n_rs = calibrate(lambda n: resyn_gen(args.resyn, rsn, n, gen_out)[0], args.target,
                             args.pilot, 8, 100_000)
            rg_s, printed, summary = resyn_gen(args.resyn, rsn, n_rs, gen_out)
            with open(gen_out) as f:
                first = json.loads(f.readline())
            params = first["params"]
            rs_gen = dict(n=n_rs, s=rg_s, rate=n_rs / rg_s, printed=printed, params=params)
            print(f"   resyn gen  N={n_rs:>9,}  {rg_s:6.2f} s  {fmt_rate(rs_gen['rate']):>12}/s  "
                  f"(binary says {fmt_rate(printed)}/s)  level 3 params {json.dumps(params)}", flush=True)

            # Startup cost: the same command for one instance.
            one_s, _, _ = resyn_gen(args.resyn, rsn, 1, os.path.join(work, f"{example}.one.jsonl"))

            rows = witness_rows(gen_out)
            data = os.path.join(work, f"{example}.rows.jsonl")
            vout = os.path.join(work, f"{example}.verified.jsonl")

            def run_verify(m):
                write_rows(rows, m, data)
                return resyn_verify(args.resyn, rsn, data, vout)[0]

            m_rs = calibrate(run_verify, args.target, args.pilot, len(rows), 2_000_000)
            write_rows(rows, m_rs, data)
            vs, vsummary = resyn_verify(args.resyn, rsn, data, vout)
            check_scores(vout, m_rs)
            rs_ver = dict(m=m_rs, s=vs, rate=m_rs / vs, distinct=len(rows), one=one_s)
            print(f"   resyn ver  M={m_rs:>9,}  {vs:6.2f} s  {fmt_rate(rs_ver['rate']):>12}/s  "
                  f"all scores 1.0 over {len(rows):,} distinct instances; "
                  f"`gen -n 1` wall {one_s * 1000:.1f} ms", flush=True)
            if args.native:
                nat_out = os.path.join(work, f"{example}.native.jsonl")
                if native_gen(args.native, example, 1, nat_out) is None:
                    rs_gen["native"] = float("nan")
                    print("   native gen  (the generator needs Z3: unique_givens)", flush=True)
                else:
                    n_nat = calibrate(lambda n: native_gen(args.native, example, n, nat_out),
                                      args.target, args.pilot, 8, 2_000_000)
                    ns = native_gen(args.native, example, n_nat, nat_out)
                    rs_gen["native"] = n_nat / ns
                    print(f"   native gen N={n_nat:>9,}  {ns:6.2f} s  {fmt_rate(rs_gen['native']):>12}/s", flush=True)
                write_rows(rows, m_rs, data)
                nv = native_verify(args.native, example, data, vout)
                check_scores(vout, m_rs)
                rs_ver["native"] = m_rs / nv
                print(f"   native ver M={m_rs:>9,}  {nv:6.2f} s  {fmt_rate(rs_ver['native']):>12}/s", flush=True)
            resyn_cache[example] = (rs_gen, rs_ver)
            if not args.keep:
                for p in (gen_out, data, vout):
                    os.remove(p)

        results.append(dict(label=label, name=name, cfg=cfg, example=example, note=note + extra,
                            rg_gen=rg_gen_rate, rg_n=n_rg, rg_ver=rg_ver_rate, rg_m=m_rg,
                            rs_gen=rs_gen, rs_ver=rs_ver))

    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)

    # --------------------------------------------------------------------- the table
    total_s = time.perf_counter() - t_start
    head = ["task pair (RG <-> resyn)", "RG gen/s", "resyn gen/s", "(printed)", "ratio",
            "RG verify/s", "resyn verify/s", "ratio"]
    if args.native:
        head += ["native gen/s", "ratio", "native verify/s", "ratio"]
    body = []
    for r in results:
        body.append([
            r["label"],
            fmt_rate(r["rg_gen"]),
            fmt_rate(r["rs_gen"]["rate"]),
            fmt_rate(r["rs_gen"]["printed"]),
            fmt_ratio(r["rs_gen"]["rate"] / r["rg_gen"]),
            fmt_rate(r["rg_ver"]),
            fmt_rate(r["rs_ver"]["rate"]),
            fmt_ratio(r["rs_ver"]["rate"] / r["rg_ver"]),
        ] + ([
            fmt_rate(r["rs_gen"].get("native", float("nan"))),
            fmt_ratio(r["rs_gen"].get("native", float("nan")) / r["rg_gen"]),
            fmt_rate(r["rs_ver"].get("native", float("nan"))),
            fmt_ratio(r["rs_ver"].get("native", float("nan")) / r["rg_ver"]),
        ] if args.native else []))
    print()
    print_table(head, body)

    if args.native:
        # The goal of issue 3 (>= 20x RG per core) as a time budget per row, next to what
        # the fastest resyn path (the emitted crate) spends: it shows how far each task is
        # from the goal in absolute terms, not only as a ratio.
        print("\nWhat 20x Reasoning Gym allows per row, and what the emitted crate spends (one core):")
        bhead = ["task pair (RG <-> resyn)", "gen budget us", "native gen us", "verify budget ns",
                 "native verify ns"]
        bbody = []
        for r in results:
            ng = r["rs_gen"].get("native", float("nan"))
            nv = r["rs_ver"].get("native", float("nan"))
            bbody.append([
                r["label"],
                f"{1e6 / (20 * r['rg_gen']):.2f}",
                "-" if math.isnan(ng) else f"{1e6 / ng:.2f}",
                f"{1e9 / (20 * r['rg_ver']):.0f}",
                "-" if math.isnan(nv) else f"{1e9 / nv:.0f}",
            ])
        print_table(bhead, bbody)

    print("\nratio = resyn rate / RG rate (> 1: resyn is faster). Single core: everything pinned to one CPU; "
          "resyn gen runs with --jobs 1.")
    print("resyn gen/s and verify/s are whole-command wall times (process start-up, compile of the .rsn, "
          "JSONL read/write included); (printed) is the generation rate the binary reports itself.")
    print(f"RG rates are in-process (no start-up; `import reasoning_gym` took {rg_import_s:.2f} s, not counted); "
          "RG verify gets the answer string and the item dict in memory, resyn verify parses JSONL rows.")
    print("Measurement sizes (N generated, M verified; verification cycles over the N generated instances):")
    for r in results:
        print(f"  {r['label']}: RG N={r['rg_n']:,} M={r['rg_m']:,}; resyn N={r['rs_gen']['n']:,} "
              f"M={r['rs_ver']['m']:,} (`gen -n 1` wall {r['rs_ver']['one'] * 1000:.1f} ms)")
    print("Configs and notes:")
    for r in results:
        cfg = ", ".join(f"{k}={v}" for k, v in r["cfg"].items())
        print(f"  {r['label']}: RG {r['name']}({cfg}); resyn examples/{r['example']}.rsn --level 3 "
              f"{json.dumps(r['rs_gen']['params'])}.\n      {r['note']}")
    print(f"  {NO_MATCH_NOTE}")
    print(f"\n# total {total_s:.0f} s; load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          "(other work was running on this 2-core machine: treat the numbers as indicative)")


if __name__ == "__main__":
    main()
