//! Place-value equations in column form: `Σ B^e·a_e = 0` as one equation per column with
//! carries, the way the equation is solved by hand.
//!
//! Why: verify often compares numbers built from answer digits (`from_digits` folds
//! `v * 10 + d`, so a cryptarithm's `va + vb == vc` is one equation whose coefficients
//! reach `10^k`). Z3's engines see one long equation with large coefficients, and the
//! search only learns that a choice of digits is wrong once enough of them are set for
//! the whole sum to go wrong. Column by column, each equation has small coefficients and
//! its carry links it to the next, so a wrong digit is caught in its own column. Measured
//! on cryptarithm level 3 (spec/proofs.md §2).
//!
//! The rewrite (spec/proofs.md §2 has the proof): an equation `Σ w·x + k = 0` over
//! bounded int atoms whose every coefficient is `±d·B^e` with `1 <= d < B` for one base
//! `B` in 2..=16, spanning at least two exponents, is split by exponent into column sums
//! `a_e` (`k` split into its base-`B` digits), and becomes
//! `a_0 = B·c_1, a_e + c_e = B·c_(e+1), …, a_E + c_E = 0` with fresh int carries whose
//! ranges follow from the atoms' ranges. Equivalent when the carries are existential,
//! so only equations in positive position of a fact (under `and`, `or`, the consequent of
//! `=>`) are rewritten, never one under a negation or inside an `ite` condition; each
//! rewrite has carries of its own. Carries are functions of the atoms (the exact quotient
//! of the columns below them), so every model of the atoms extends to exactly one
//! model of the carries: counting answers (uniqueness) is unchanged.

use crate::interval::Intervals;
use z3::ast::{Ast, Bool, Int};
use z3::DeclKind;

/// Atoms and their coefficients of one linear form, one entry per occurrence (a digit
/// that stands in two places of a number keeps both places: merged, `10^2 + 1` would fit
/// no column).
struct Linear {
    terms: Vec<(Int, i128)>,
    constant: i128,
}

/// Nodes a linear form may visit: a DAG that shares subterms (`v + v` repeated) would
/// unfold exponentially.
const MAX_NODES: usize = 4_096;

/// Largest atom range magnitude and coefficient considered: far below i128 limits, so
/// column ranges and carries are computed without overflow.
const MAX_MAGNITUDE: i128 = 1 << 62;

/// Connective nodes (`and`, `or`, `=>`) a walk over one fact visits: a fact is a DAG
/// (one-hot state merged step by step shares its subterms), which a tree walk could take
/// exponential time over; memoised and bounded, it stops early instead, which is sound
/// (any subset of the positive equations may be rewritten).
const MAX_WALK: usize = 10_000;

/// Nodes (connectives and linear-form terms) all the rewrites of one lowering may visit
/// together. The per-fact limits bound one fact, but verify (untrusted text) may assert
/// thousands of facts, each within the lowering's step budget yet each with a long sum
/// to unfold; past this the remaining facts are left whole, which is sound.
pub const BUDGET: usize = 1_000_000;

/// `fact` with its positive place-value equations in column form; `None` when none was
/// rewritten. `iv` gives the atoms' ranges; `budget` is what is left of [`BUDGET`].
pub fn rewrite(fact: &Bool, iv: &mut Intervals, budget: &mut usize) -> Option<Bool> {
    walk(fact, iv, budget).0
}

/// [`rewrite`], and how many nodes the walk visited.
fn walk(fact: &Bool, iv: &mut Intervals, budget: &mut usize) -> (Option<Bool>, usize) {
    let mut walk = Walk {
        iv,
        memo: crate::smt::TermMap::default(),
        fuel: MAX_WALK,
        budget,
    };
    let out = walk.rewrite(fact);
    (out, MAX_WALK - walk.fuel)
}

struct Walk<'a> {
    iv: &'a mut Intervals,
    /// Each node's result, so a shared subterm is walked once. An equation that occurs
    /// twice thus shares its carries: still exact, because carries that satisfy the
    /// columns are the one function of the atoms (module docs).
    memo: crate::smt::TermMap<Bool, Option<Bool>>,
    fuel: usize,
    budget: &'a mut usize,
}

impl Walk<'_> {
    fn rewrite(&mut self, fact: &Bool) -> Option<Bool> {
        if let Some(done) = self.memo.get(fact) {
            return done.clone();
        }
        self.fuel = self.fuel.checked_sub(1)?;
        *self.budget = self.budget.checked_sub(1)?;
        let out = self.node(fact);
        self.memo.insert(fact.clone(), out.clone());
        out
    }

    fn node(&mut self, fact: &Bool) -> Option<Bool> {
        if !fact.is_app() {
            return None;
        }
        let kids = || -> Vec<Bool> { fact.children().iter().filter_map(|c| c.as_bool()).collect() };
        match fact.decl().kind() {
            DeclKind::And | DeclKind::Or => {
                let kids = kids();
                let mut changed = false;
                let new: Vec<Bool> = kids
                    .iter()
                    .map(|k| match self.rewrite(k) {
                        Some(n) => {
                            changed = true;
                            n
                        }
                        None => k.clone(),
                    })
                    .collect();
                if !changed {
                    return None;
                }
                Some(if fact.decl().kind() == DeclKind::And {
                    Bool::and(&new)
                } else {
                    Bool::or(&new)
                })
            }
            DeclKind::Implies => {
                let kids = kids();
                let [p, q] = kids.as_slice() else {
                    return None;
                };
                self.rewrite(q).map(|q| p.implies(&q))
            }
            DeclKind::Eq => {
                let sides: Vec<Int> = fact.children().iter().filter_map(|c| c.as_int()).collect();
                let [l, r] = sides.as_slice() else {
                    return None;
                };
                equation(l, r, self.iv, self.budget)
            }
            _ => None,
        }
    }
}

/// `l = r` in column form, or `None` when it is not a place-value equation.
fn equation(l: &Int, r: &Int, iv: &mut Intervals, budget: &mut usize) -> Option<Bool> {
    let mut lin = Linear {
        terms: Vec::new(),
        constant: 0,
    };
    let start = MAX_NODES.min(*budget);
    let mut fuel = start;
    let unfolded =
        linear(l, 1, &mut lin, &mut fuel).and_then(|_| linear(r, -1, &mut lin, &mut fuel));
    *budget -= start - fuel;
    unfolded?;
    lin.terms.retain(|(_, c)| *c != 0);
    let base = choose_base(&lin.terms)?;
    // Columns: (digit coefficient, atom) per exponent, and the constant's digit.
    let mut cols: Vec<(Vec<(i128, Int)>, i128)> = Vec::new();
    let col = |cols: &mut Vec<(Vec<(i128, Int)>, i128)>, e: usize| {
        if cols.len() <= e {
            cols.resize_with(e + 1, || (Vec::new(), 0));
        }
    };
    for (x, c) in &lin.terms {
        let (e, d) = place(*c, base)?;
        col(&mut cols, e);
        cols[e].0.push((d, x.clone()));
    }
    // The constant's digits, with its sign: `k = sign·Σ B^e·digit_e`.
    let (sign, mut rest) = (lin.constant.signum(), lin.constant.abs());
    let mut e = 0;
    while rest > 0 {
        col(&mut cols, e);
        cols[e].1 = sign * (rest % base);
        rest /= base;
        e += 1;
    }
    // Each column's range from its atoms' ranges, then the carries'.
    let mut parts = Vec::new();
    let mut carry: (Int, (i128, i128)) = (Int::from_i64(0), (0, 0));
    let last = cols.len() - 1;
    for (e, (terms, k)) in cols.iter().enumerate() {
        let (mut lo, mut hi) = (*k + carry.1 .0, *k + carry.1 .1);
        let mut sum: Vec<Int> = Vec::with_capacity(terms.len() + 2);
        for (d, x) in terms {
            let (xl, xh) = iv.of(x);
            if xl.abs() > MAX_MAGNITUDE || xh.abs() > MAX_MAGNITUDE {
                return None;
            }
            let (a, b) = (d * xl, d * xh);
            lo += a.min(b);
            hi += a.max(b);
            sum.push(if *d == 1 {
                x.clone()
            } else {
                Int::mul(&[Int::from_i64(*d as i64), x.clone()])
            });
        }
        if *k != 0 {
            sum.push(Int::from_i64(*k as i64));
        }
        if carry.1 != (0, 0) {
            sum.push(carry.0.clone());
        }
        // A column with no atom, no digit of the constant and no carry in is 0 (Z3 has
        // no empty sum).
        let column = match sum.is_empty() {
            true => Int::from_i64(0),
            false => Int::add(&sum),
        };
        if e == last {
            parts.push(column.eq(Int::from_i64(0)));
            break;
        }
        // The next carry is the column's exact quotient by the base.
        let (cl, ch) = (div_ceil(lo, base), hi.div_euclid(base));
        if cl > ch {
            // No value of the column is a multiple of the base: no solution.
            return Some(Bool::from_bool(false));
        }
        let (cl64, ch64) = (i64::try_from(cl).ok()?, i64::try_from(ch).ok()?);
        let next = if cl == ch {
            Int::from_i64(cl64)
        } else {
            let c = Int::fresh_const("carry");
            parts.push(c.ge(Int::from_i64(cl64)));
            parts.push(c.le(Int::from_i64(ch64)));
            iv.vars.insert(c.clone(), (cl, ch));
            c
        };
        parts.push(column.eq(Int::mul(&[Int::from_i64(base as i64), next.clone()])));
        carry = (next, (cl, ch));
    }
    Some(Bool::and(&parts))
}

/// Adds `coef·t` to `lin`: sums, differences, negations and products with numerals are
/// unfolded, anything else is an atom. `None` past the node or magnitude limits.
fn linear(t: &Int, coef: i128, lin: &mut Linear, fuel: &mut usize) -> Option<()> {
    *fuel = fuel.checked_sub(1)?;
    if coef.abs() > MAX_MAGNITUDE {
        return None;
    }
    if let Some(v) = t.as_i64() {
        lin.constant = lin.constant.checked_add(coef.checked_mul(i128::from(v))?)?;
        if lin.constant.abs() > MAX_MAGNITUDE {
            return None;
        }
        return Some(());
    }
    if !t.is_app() || t.is_const() {
        lin.terms.push((t.clone(), coef));
        return Some(());
    }
    let kind = t.decl().kind();
    if !matches!(
        kind,
        DeclKind::Add | DeclKind::Sub | DeclKind::Uminus | DeclKind::Mul
    ) {
        lin.terms.push((t.clone(), coef));
        return Some(());
    }
    let kids: Vec<Int> = t.children().iter().filter_map(|c| c.as_int()).collect();
    match kind {
        DeclKind::Add => kids.iter().try_for_each(|k| linear(k, coef, lin, fuel)),
        DeclKind::Sub => kids.iter().enumerate().try_for_each(|(i, k)| {
            let c = if i == 0 { coef } else { -coef };
            linear(k, c, lin, fuel)
        }),
        DeclKind::Uminus => kids.iter().try_for_each(|k| linear(k, -coef, lin, fuel)),
        _ => {
            // A product: numerals fold into the coefficient; one other factor is linear.
            let mut c = coef;
            let mut other = None;
            for k in &kids {
                match k.as_i64() {
                    Some(v) => c = c.checked_mul(i128::from(v))?,
                    None if other.is_none() => other = Some(k),
                    None => {
                        lin.terms.push((t.clone(), coef));
                        return Some(());
                    }
                }
            }
            match other {
                Some(k) => linear(k, c, lin, fuel),
                None => {
                    lin.constant = lin.constant.checked_add(c)?;
                    Some(())
                }
            }
        }
    }
}

/// The base whose places the coefficients are: every coefficient `±d·B^e` with
/// `1 <= d < B`, at least two exponents among them. The base with the most exponents
/// wins, the larger on a tie (`10^k` is also `2^k·5^k`, but only base 10 has small digits
/// here; the tie rule matters for coefficients like 1 and 2).
fn choose_base(terms: &[(Int, i128)]) -> Option<i128> {
    let mut best: Option<(usize, i128)> = None;
    for base in 2..=16i128 {
        let mut exps = Vec::with_capacity(terms.len());
        for (_, c) in terms {
            match place(*c, base) {
                Some((e, _)) => exps.push(e),
                None => {
                    exps.clear();
                    break;
                }
            }
        }
        exps.sort_unstable();
        exps.dedup();
        if exps.len() >= 2 && best.is_none_or(|(n, _)| exps.len() >= n) {
            best = Some((exps.len(), base));
        }
    }
    best.map(|(_, b)| b)
}

/// `c` as `(e, d)` with `c = d·base^e` and `1 <= |d| < base`.
fn place(c: i128, base: i128) -> Option<(usize, i128)> {
    if c == 0 {
        return None;
    }
    let (mut e, mut d) = (0usize, c);
    while d % base == 0 {
        d /= base;
        e += 1;
    }
    (d.abs() < base).then_some((e, d))
}

fn div_ceil(a: i128, b: i128) -> i128 {
    -((-a).div_euclid(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_of_coefficients() {
        assert_eq!(place(300, 10), Some((2, 3)));
        assert_eq!(place(-1000, 10), Some((3, -1)));
        assert_eq!(place(101, 10), None);
        assert_eq!(place(12, 10), None);
        assert_eq!(place(8, 2), Some((3, 1)));
    }

    /// `n` int constants, each known to lie in 0..=9.
    fn digits(n: usize, iv: &mut Intervals) -> Vec<Int> {
        let x: Vec<Int> = (0..n).map(|i| Int::new_const(format!("x{i}"))).collect();
        for v in &x {
            iv.vars.insert(v.clone(), (0, 9));
        }
        x
    }

    /// `Σ k·x` over `terms`.
    fn sum(terms: &[(i64, &Int)]) -> Int {
        let parts: Vec<Int> = terms
            .iter()
            .map(|(k, x)| Int::mul(&[Int::from_i64(*k), (*x).clone()]))
            .collect();
        Int::add(&parts)
    }

    /// A fact whose nodes each read two nodes of the layer below (binomially many paths,
    /// as one-hot state merged step by step makes) is walked once per node, and the
    /// equation at its bottom is rewritten.
    #[test]
    fn a_shared_fact_is_walked_once_per_node() {
        crate::prove::in_fresh_context(|| {
            let mut iv = Intervals::default();
            let x = digits(4, &mut iv);
            let eq = sum(&[(10, &x[0]), (1, &x[1])]).eq(sum(&[(10, &x[2]), (1, &x[3])]));
            let (width, depth) = (4usize, 30usize);
            let mut layer: Vec<Bool> = (0..width)
                .map(|j| Bool::or(&[Bool::new_const(format!("b{j}")), eq.clone()]))
                .collect();
            for k in 0..depth {
                let c = Bool::new_const(format!("c{k}"));
                layer = (0..width)
                    .map(|j| {
                        Bool::and(&[
                            Bool::or(&[c.clone(), layer[j].clone()]),
                            Bool::or(&[c.not(), layer[(j + 1) % width].clone()]),
                        ])
                    })
                    .collect();
            }
            let mut budget = BUDGET;
            let (out, visited) = walk(&layer[0], &mut iv, &mut budget);
            assert!(out.is_some());
            // The distinct nodes: an `and` and two `or`s per node of each layer, each
            // layer's `c` and `not c`, the bottom `or`s and their `b`s, the equation.
            let distinct = 3 * width * depth + 2 * depth + 2 * width + 1;
            assert!(visited <= distinct, "{visited} nodes visited");
        });
    }

    /// The work budget is shared by a lowering's rewrites: each takes what it visits, and
    /// once it is spent facts are left whole.
    #[test]
    fn rewrites_draw_on_one_budget() {
        crate::prove::in_fresh_context(|| {
            let mut iv = Intervals::default();
            let x = digits(3, &mut iv);
            let fact = sum(&[(100, &x[0]), (1, &x[1])]).eq(sum(&[(10, &x[2]), (1, &x[1])]));
            let mut budget = BUDGET;
            assert!(rewrite(&fact, &mut iv, &mut budget).is_some());
            let used = BUDGET - budget;
            assert!(used > 1, "{used}");
            let mut short = used - 1;
            assert!(rewrite(&fact, &mut iv, &mut short).is_none());
            assert!(rewrite(&fact, &mut iv, &mut 0).is_none());
        });
    }

    #[test]
    fn ceilings() {
        assert_eq!(div_ceil(7, 10), 1);
        assert_eq!(div_ceil(-7, 10), 0);
        assert_eq!(div_ceil(-17, 10), -1);
        assert_eq!(div_ceil(20, 10), 2);
    }
}
