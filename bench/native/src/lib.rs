//! Hand-written Rust for two of the examples, as a programmer would write them without
//! resyn: plain `Vec`s and integers, the same algorithms and random draws (the runtime's
//! `Rng`, so the instances are the same ones and the benchmark can check that), the same
//! question text, and a verifier for typed answers. This is the yardstick of issue 5:
//! emitted code should be within 2x of it.

use resyn_runtime::Rng;

/// What a generator hands over: the question and the planted answer (the instance data
/// is in the env-specific struct).
pub struct Made<I> {
    pub instance: I,
    pub witness: Vec<i64>,
    pub question: String,
}

// ---------------------------------------------------------------------- graph coloring

pub struct Coloring {
    pub n: usize,
    pub colors: i64,
    pub edges: Vec<(usize, usize)>,
}

/// Plant a coloring, join differently colored vertices with probability `p`, resample
/// until there are at least n - 1 edges; then check the planted answer and write the
/// question.
pub fn coloring_gen(rng: &mut Rng, n: usize, colors: i64, p: f64) -> Option<Made<Coloring>> {
    for _ in 0..1000 {
        let plant: Vec<i64> = (0..n).map(|_| rng.int_in(0, colors - 1).unwrap_or(0)).collect();
        let mut edges = Vec::new();
        for u in 0..n {
            for v in u + 1..n {
                if plant[u] != plant[v] && rng.bernoulli(p) {
                    edges.push((u, v));
                }
            }
        }
        if edges.len() + 1 < n {
            continue;
        }
        let instance = Coloring { n, colors, edges };
        if !coloring_verify(&instance, &plant) {
            return None;
        }
        let question = coloring_question(&instance);
        return Some(Made {
            instance,
            witness: plant,
            question,
        });
    }
    None
}

pub fn coloring_question(g: &Coloring) -> String {
    use std::fmt::Write;
    let mut q = format!(
        "A graph has {} vertices, numbered 0 to {}, and these edges:\n",
        g.n,
        g.n - 1
    );
    for (u, v) in &g.edges {
        let _ = writeln!(q, "- {u} -- {v}");
    }
    let _ = write!(
        q,
        "Color each vertex with a color from 0 to {} so that no edge joins two\nvertices of the same color. Answer with a JSON list of {} integers: the color of\nvertex 0, then vertex 1, and so on.",
        g.colors - 1,
        g.n
    );
    q
}

pub fn coloring_verify(g: &Coloring, answer: &[i64]) -> bool {
    answer.len() == g.n
        && answer.iter().all(|c| (0..g.colors).contains(c))
        && g.edges.iter().all(|&(u, v)| answer[u] != answer[v])
}

// ---------------------------------------------------------------------------- n queens

pub struct Queens {
    pub n: usize,
    pub fixed: Vec<(usize, i64)>,
    pub board: Vec<String>,
}

/// Whether a queen on row `r` of column `rows.len()` is attacked by the placed queens.
fn attacked(rows: &[i64], r: i64) -> bool {
    let c = rows.len() as i64;
    rows.iter()
        .enumerate()
        .any(|(d, &q)| q == r || (q - r).abs() == c - d as i64)
}

/// Randomized depth-first search, column by column, each column trying its rows in a
/// shuffled order, for at most `steps` steps. `examples/n_queens.rsn` filters each
/// column's shuffled order up front (forward checking) instead of testing a row when it
/// comes up: the rows are tried in the same order and the same permutations are drawn,
/// and its finished search skips its remaining steps without drawing. Its step budget
/// counts placements and backtracks only, not skipped rows, so where this search runs out
/// and resamples (a few instances in a thousand at n = 10, level 5) the example's
/// finishes; at the benchmark's level 3 (n = 6) the instances are the same.
fn place_queens(rng: &mut Rng, n: usize, steps: usize) -> Vec<i64> {
    let perm = |rng: &mut Rng| {
        let mut xs: Vec<i64> = (0..n as i64).collect();
        rng.shuffle(&mut xs);
        xs
    };
    let mut rows: Vec<i64> = Vec::with_capacity(n);
    // orders[c]: the order column c tries rows in; tried[c]: how many it has tried.
    let mut orders = vec![perm(rng)];
    let mut tried = vec![0usize];
    for _ in 0..steps {
        let c = rows.len();
        if c >= n || tried.len() <= c {
            break;
        }
        let k = tried[c];
        if k >= n {
            orders.truncate(c);
            tried.truncate(c);
            rows.truncate(c.saturating_sub(1));
        } else {
            tried[c] = k + 1;
            let r = orders[c][k];
            if !attacked(&rows, r) {
                rows.push(r);
                if c + 1 < n {
                    orders.push(perm(rng));
                    tried.push(0);
                }
            }
        }
    }
    rows
}

pub fn queens_gen(rng: &mut Rng, n: usize, given: usize) -> Option<Made<Queens>> {
    for _ in 0..1000 {
        let plant = place_queens(rng, n, 40 * n * n);
        if plant.len() != n {
            continue;
        }
        let all: Vec<usize> = (0..n).collect();
        let mut cols = rng.sample(&all, given.min(n) as i64).ok()?;
        cols.sort();
        let fixed: Vec<(usize, i64)> = cols.iter().map(|&c| (c, plant[c])).collect();
        let board = (0..n as i64)
            .map(|r| {
                (0..n)
                    .map(|c| if fixed.contains(&(c, r)) { "Q" } else { "." })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let instance = Queens { n, fixed, board };
        if !queens_verify(&instance, &plant) {
            return None;
        }
        let question = queens_question(&instance);
        return Some(Made {
            instance,
            witness: plant,
            question,
        });
    }
    None
}

pub fn queens_question(q: &Queens) -> String {
    use std::fmt::Write;
    let n = q.n;
    let mut s = format!(
        "Place {n} queens on a {n} x {n} chessboard so that no two queens attack each other:\nno two queens may share a row, a column or a diagonal. Rows and columns are numbered\n0 to {}, row 0 at the top and column 0 at the left.\n",
        n - 1
    );
    if !q.fixed.is_empty() {
        s.push_str("Some queens are already placed (Q), and they must stay where they are:\n\n");
        for row in &q.board {
            let _ = writeln!(s, "{row}");
        }
        s.push_str("\nThe fixed queens:\n");
        for (c, r) in &q.fixed {
            let _ = writeln!(s, "- column {c}, row {r}");
        }
    }
    let _ = write!(
        s,
        "\nEvery column holds exactly one queen. Answer with a JSON list of {n} integers: the\nrow of the queen in column 0, then in column 1, and so on up to column {}.",
        n - 1
    );
    s
}

pub fn queens_verify(q: &Queens, a: &[i64]) -> bool {
    let n = q.n;
    a.len() == n
        && a.iter().all(|r| (0..n as i64).contains(r))
        && q.fixed.iter().all(|&(c, r)| a[c] == r)
        && (0..n).all(|i| (i + 1..n).all(|j| a[i] != a[j] && (a[i] - a[j]).abs() != (j - i) as i64))
}
