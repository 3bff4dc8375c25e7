//! Interval arithmetic over Z3 integer terms: a sound range for a term from the ranges of
//! its variables and its structure. Shared by the SMT lowering (to skip redundant
//! overflow checks and give named state narrow bounds) and by static safety (to propose
//! loop invariants such as "every element lies in 0..=9").

use crate::smt::TermMap;
use z3::ast::{Ast, Int};
use z3::DeclKind;

/// The range of a term nothing is known about: the evaluator's ints.
pub const FULL: (i128, i128) = (i64::MIN as i128, i64::MAX as i128);

/// Known variable ranges and a memo of computed ones (terms are DAGs).
#[derive(Default)]
pub struct Intervals {
    pub vars: TermMap<Int, (i128, i128)>,
    memo: TermMap<Int, (i128, i128)>,
}

impl Intervals {
    /// Records that variable `x` lies in `lo..=hi` (narrowing what was known).
    pub fn bound(&mut self, x: &Int, lo: i128, hi: i128) {
        let e = self.vars.entry(x.clone()).or_insert(FULL);
        e.0 = e.0.max(lo);
        e.1 = e.1.min(hi);
    }

    /// A sound range of an int term.
    pub fn of(&mut self, x: &Int) -> (i128, i128) {
        if let Some(v) = x.as_i64() {
            return (i128::from(v), i128::from(v));
        }
        if let Some(b) = self.vars.get(x).or_else(|| self.memo.get(x)) {
            return *b;
        }
        if !x.is_app() || x.is_const() {
            return FULL;
        }
        let kids: Vec<Int> = x.children().iter().filter_map(|c| c.as_int()).collect();
        let mut kb = Vec::with_capacity(kids.len());
        for k in &kids {
            kb.push(self.of(k));
        }
        let sat = |v: i128| v.clamp(-(1i128 << 100), 1i128 << 100);
        let r = match x.decl().kind() {
            DeclKind::Add => kb
                .iter()
                .fold((0i128, 0i128), |(a, b), (l, h)| (sat(a + l), sat(b + h))),
            DeclKind::Sub if !kb.is_empty() => kb[1..]
                .iter()
                .fold(kb[0], |(a, b), (l, h)| (sat(a - h), sat(b - l))),
            DeclKind::Uminus if kb.len() == 1 => (-kb[0].1, -kb[0].0),
            DeclKind::Mul if !kb.is_empty() => kb[1..].iter().fold(kb[0], |(a, b), (l, h)| {
                let c = [sat(a * l), sat(a * h), sat(b * l), sat(b * h)];
                (*c.iter().min().expect("4"), *c.iter().max().expect("4"))
            }),
            DeclKind::Ite => {
                // Children: the condition (a bool, filtered out above), then, else.
                if kb.len() == 2 {
                    (kb[0].0.min(kb[1].0), kb[0].1.max(kb[1].1))
                } else {
                    FULL
                }
            }
            // Euclidean division by a positive constant is floor division: monotone.
            DeclKind::Idiv if kb.len() == 2 && kb[1].0 == kb[1].1 && kb[1].0 > 0 => {
                let d = kb[1].0;
                (kb[0].0.div_euclid(d), kb[0].1.div_euclid(d))
            }
            DeclKind::Idiv if kb.len() == 2 => {
                let m = kb[0].0.abs().max(kb[0].1.abs());
                (-m, m)
            }
            DeclKind::Mod if kb.len() == 2 => {
                let m = kb[1].0.abs().max(kb[1].1.abs());
                (0, (m - 1).max(0))
            }
            _ => FULL,
        };
        self.memo.insert(x.clone(), r);
        r
    }
}
