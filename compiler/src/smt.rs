//! SMT lowering: an env's `verify` block as a quantifier-free Z3 formula over the answer.
//!
//! The lowering is a *symbolic evaluator* over the IR, not a second compiler: params and
//! instance fields are concrete values, the answer is made of Z3 unknowns, and everything
//! that only touches concrete data is computed directly with the runtime's own operators
//! (so loops over instance collections unroll and lookups into instance data fold away).
//! Only what depends on the answer becomes a term. This makes the SMT model agree with
//! the native verifier by construction, which the prover then checks on every witness.
//!
//! Semantics kept exactly:
//! - A runtime error on a path (index out of range, division by zero, i64 overflow)
//!   makes the answer wrong natively; here it asserts "this path is not taken".
//! - `and`/`or`/`implies`/`forall`/`exists` short-circuit: later operands are evaluated
//!   under the condition that the earlier ones did not decide the result, so an error
//!   hidden behind a short circuit is not an error here either.
//! - Integers are exact (Z3 `Int`), and every symbolic arithmetic result is constrained
//!   to the i64 range the evaluator checks, so the two back ends agree on overflow.
//! - Branches on symbolic conditions run both sides and merge (`ite`), including `var`s.
//!
//! Value representation: [`S`]. Symbolic scalars of a finite, non-numeric type (strings
//! from a collection, enums) are *unions*: guarded concrete values with exactly one guard
//! true. Lists carry presence guards so bounded-length answers (`[T; <= n]`) and filtered
//! comprehensions can be aggregated without knowing their length.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::rc::Rc;

use resyn_grammar::ast::{BinOp, UnOp};
use resyn_runtime::ops::{self, Builtin};
use resyn_runtime::{Domain, Len, Shape, Value};
use z3::ast::{Ast, Bool, Int};
use z3::DeclKind;

use crate::circuit::CLit;
use crate::ir::{Access, Block, Callee, Clause, Expr, Pattern, Program, Slot, SlotUse, Stmt};

/// Why lowering stopped.
#[derive(Clone, Debug)]
pub enum Halt {
    /// A construct the lowering does not support over symbolic values (the prover
    /// reports `unknown` with this reason).
    Unsupported(String),
    /// The current path certainly errors; the condition `path -> false` is recorded.
    Dead,
    /// The step budget ran out (huge instance data).
    Budget,
}

type R<T> = Result<T, Halt>;

/// The callback of [`Lowering::each`]: runs once per binding with the frame and the
/// binding's presence condition; returns false to stop.
type Visit<'a, 'p> = dyn FnMut(&mut Lowering<'p>, &mut Vec<S>, Bool) -> R<bool> + 'a;

fn unsupported<T>(what: impl Into<String>) -> R<T> {
    Err(Halt::Unsupported(what.into()))
}

/// A hash map keyed by Z3 terms. Its hasher has fixed keys (std's default hasher has
/// random ones per process): dropping a map releases its terms in its iteration order,
/// Z3 recycles the ids of released terms for the next ones made, and term ids steer the
/// solver (variable order), so with random keys the same command found different models
/// from run to run once a context had been used before (a batch's third water_jugs proof
/// differed in about one run of six). Z3's term hash is structural, so the order is the
/// same in every run.
pub type TermMap<K, V> = HashMap<K, V, BuildHasherDefault<DefaultHasher>>;
/// A hash set of Z3 terms; see [`TermMap`].
pub type TermSet<K> = HashSet<K, BuildHasherDefault<DefaultHasher>>;

/// A value during symbolic evaluation.
#[derive(Clone, Debug)]
pub enum S {
    C(Value),
    B(Bool),
    I(Int),
    Tuple(Rc<Vec<S>>),
    List(Rc<Vec<S>>, Guard),
    /// Fields sorted by name, like `Value::Record`.
    Record(Rc<Vec<(Rc<str>, S)>>),
    /// Exactly one guard holds; values are concrete scalars (strings, enums, floats).
    Union(Rc<Vec<(Bool, Value)>>),
    /// A map answer: every possible key (ascending), with its presence and its value.
    Map(Rc<Vec<(Value, Bool, S)>>),
    /// An int of a small finite domain, one-hot: exactly one `(value, guard)` guard holds.
    /// Answer ints of at most [`ONE_HOT_MAX`] values are declared so (a literal per
    /// value); case splits, merges and `index_of` positions build them from guards.
    OneHot(Rc<Vec<(i64, Bool)>>),
    /// A slot whose values after a symbolic branch cannot be merged (typically a `let`
    /// local to one branch, dead afterwards); reading it is unsupported.
    Poison(Rc<str>),
}

/// Which elements of a symbolic list are present.
#[derive(Clone, Debug)]
pub enum Guard {
    All,
    /// The first `len` elements (a bounded-length answer).
    Prefix(Int),
    /// Each element on its own condition (a comprehension filtered by a symbolic `if`);
    /// such a list can be aggregated but not indexed.
    Each(Rc<Vec<Bool>>),
}

const I64_MIN: i64 = i64::MIN;
const I64_MAX: i64 = i64::MAX;

fn tt() -> Bool {
    Bool::from_bool(true)
}

fn and2(a: &Bool, b: &Bool) -> Bool {
    match (a.as_bool(), b.as_bool()) {
        (Some(true), _) => b.clone(),
        (_, Some(true)) => a.clone(),
        (Some(false), _) | (_, Some(false)) => Bool::from_bool(false),
        _ => Bool::and(&[a.clone(), b.clone()]),
    }
}

/// The `x` of a term `not x`.
fn negated(b: &Bool) -> Option<Bool> {
    if b.decl().kind() != DeclKind::Not {
        return None;
    }
    b.children().first().and_then(|c| c.as_bool())
}

fn or2(a: &Bool, b: &Bool) -> Bool {
    match (a.as_bool(), b.as_bool()) {
        (Some(false), _) => b.clone(),
        (_, Some(false)) => a.clone(),
        (Some(true), _) | (_, Some(true)) => Bool::from_bool(true),
        _ => Bool::or(&[a.clone(), b.clone()]),
    }
}

/// `a => b`, folded where either side is known (a check on concrete values is then a
/// constant, which [`Lowering::enumerate_loop`] needs to read).
fn implies(a: &Bool, b: &Bool) -> Bool {
    match (a.as_bool(), b.as_bool()) {
        (Some(true), _) => b.clone(),
        (Some(false), _) | (_, Some(true)) => tt(),
        _ => a.implies(b),
    }
}

fn and_all(xs: Vec<Bool>) -> Bool {
    let xs: Vec<Bool> = xs
        .into_iter()
        .filter(|b| b.as_bool() != Some(true))
        .collect();
    if xs.iter().any(|b| b.as_bool() == Some(false)) {
        return Bool::from_bool(false);
    }
    match xs.len() {
        0 => tt(),
        1 => xs.into_iter().next().expect("one"),
        _ => Bool::and(&xs),
    }
}

fn or_all(xs: Vec<Bool>) -> Bool {
    let xs: Vec<Bool> = xs
        .into_iter()
        .filter(|b| b.as_bool() != Some(false))
        .collect();
    if xs.iter().any(|b| b.as_bool() == Some(true)) {
        return tt();
    }
    match xs.len() {
        0 => Bool::from_bool(false),
        1 => xs.into_iter().next().expect("one"),
        _ => Bool::or(&xs),
    }
}

fn not(b: &Bool) -> Bool {
    match b.as_bool() {
        Some(v) => Bool::from_bool(!v),
        None => b.not(),
    }
}

fn int(i: i64) -> Int {
    Int::from_i64(i)
}

fn ite_int(c: &Bool, a: &Int, b: &Int) -> Int {
    match c.as_bool() {
        Some(true) => a.clone(),
        Some(false) => b.clone(),
        None => c.ite(a, b),
    }
}

/// `true`, `false` or a term.
enum Truth {
    Known(bool),
    Sym(Bool),
}

/// The symbolic evaluator. `facts` collects what must hold for the answer to be valid
/// (every constraint, and "no runtime error" on every path).
pub struct Lowering<'p> {
    prog: &'p Program,
    /// Known value ranges of int constants (answer unknowns and named temporaries), and a
    /// memo of the ranges of terms: see [`Lowering::bounds`].
    iv: crate::interval::Intervals,
    /// Set when a one-hot answer int had to become an `Int` term (arithmetic or order past
    /// the case-split caps); `index_of` positions do not count (see `positions`).
    pub one_hot_arith: std::cell::Cell<bool>,
    /// Declare small-domain answer ints and choices one-hot, and make `index_of` positions
    /// one-hot (see [`ONE_HOT_MAX`]).
    pub one_hot: bool,
    /// Put place-value equations in column form (`crate::columns`). Off for the plain
    /// encoding the differential tests compare with, so the rewrite has a second opinion.
    pub columns: bool,
    /// Learn what required facts make known on a path and lower branches on it as the
    /// side the models take (see `known`). Off for the plain encoding, like `columns`, so
    /// the differential tests compare the pruned formula with the whole one.
    pub learns: bool,
    /// Set once an int term is multiplied by a numeral of magnitude 2 or more: only then
    /// can a fact hold a place-value equation, so only then are facts walked for one.
    scaled: bool,
    /// Facts that had a place-value equation put in column form (for tests and effort).
    pub column_facts: u32,
    /// What is left of the column rewrites' work budget (`crate::columns::BUDGET`).
    column_budget: usize,
    /// Path conditions, each entry the conjunction of everything below it.
    pc: Vec<Bool>,
    pub facts: Vec<Bool>,
    /// Int terms known to be `constant + Σ coefficient·[literal]` (sums of numbers picked
    /// by answer bools, counts): compared with a constant they become pseudo-Boolean
    /// constraints, which the finite-domain engine handles natively instead of
    /// bit-blasting adders (spec/proofs.md §2). Only with the one-hot encoding.
    linear: TermMap<Int, Rc<Linear>>,
    /// The guards of the one-hot positions `index_of` made: such a value turned
    /// into an `Int` is the `ite` chain the plain encoding would build anyway, so it does
    /// not count as arithmetic on one-hot answer ints (`one_hot_arith`).
    positions: TermSet<Bool>,
    /// Lists whose items are distinct in every model: the operand of an `all_different`
    /// asserted unconditionally (a constraint of its own, outside any branch). Facts are
    /// a conjunction, so a formula that agrees with the exact one wherever such a list is
    /// distinct gives the same models; `index_of` over one takes "the item at `i` is `x`"
    /// as position `i`, without "and no earlier item is" (dependency_sort: Z3's work per
    /// proof 18.7k -> 12.9k). [`Lowering::distinct_lists`] hands them to the lowering of
    /// an instance's part, whose facts are asserted with these.
    distinct: Vec<ListKey>,
    /// `all_different` results of the literal encoding, with their lists: one becomes
    /// `distinct` when it is asserted as a constraint of its own.
    distinct_candidates: Vec<(Bool, ListKey)>,
    /// Conditions that hold in every model on the current path: what facts required on
    /// it (or on a path it extends) say, split at `and`, and an `or` or `=>` whose other
    /// operands are known false. Facts are one conjunction, so a branch on a known
    /// condition is lowered as the one side the models take, exactly as the distinct lists
    /// are: a simulation that checks a move and then tracks whether it failed (maze_path's
    /// `blocked`) keeps no state for a failure no model has. Entries learnt under a path
    /// condition are forgotten when [`Lowering::under`] leaves it (`known_log` in order).
    known: TermSet<Bool>,
    /// How many conditions `known` decided (for tests).
    pub decided: std::cell::Cell<u32>,
    /// The `x` of every known `not x`.
    refuted: TermSet<Bool>,
    known_log: Vec<Bool>,
    /// Ranges of int terms that known comparisons with numerals narrow on the current
    /// path (`x >= 0`, `x < h`), with what each entry replaced, to restore on leaving.
    known_ranges: TermMap<Int, Range>,
    /// How many merged ints were named with a range narrower than their interval (for
    /// tests).
    pub narrowed: u32,
    /// How many slots branches merged (for tests).
    pub merged: u32,
    /// Lower loops over an answer list by enumerating their states where that is small
    /// ([`Lowering::enumerate_loop`]). Off for the plain encoding, like `learns`.
    pub enumerate_states: bool,
    /// How many loops were lowered by enumerating their states (for tests).
    pub enumerated_loops: u32,
    /// How many of their steps ran on the evaluator rather than in the symbolic executor
    /// (for tests).
    pub evaluated_steps: u32,
    /// What [`Lowering::enumerate_loop`] builds: its gates stay out of Z3 while
    /// `defer_circuit` is set (the caller hands the circuit to the SAT engine, or turns it
    /// into facts for another); otherwise each enumerated loop ends by adding them to
    /// `facts` as Z3 terms.
    pub circuit: crate::circuit::Circuit,
    pub defer_circuit: bool,
    ranges_log: Vec<(Int, Option<Range>)>,
    steps: u64,
    budget: u64,
}

/// `constant + Σ c·[b]`.
#[derive(Debug)]
struct Linear {
    constant: i64,
    terms: Vec<(Bool, i64)>,
}

/// An inclusive range of int values.
type Range = (i128, i128);

/// How many terms of one fact [`Lowering::learn`] looks at.
const LEARN_NODES: usize = 16;

/// The default step budget: far beyond any example, small enough to stop in a second.
pub const DEFAULT_BUDGET: u64 = 5_000_000;

impl<'p> Lowering<'p> {
    pub fn new(prog: &'p Program, budget: u64) -> Lowering<'p> {
        Lowering {
            prog,
            iv: crate::interval::Intervals::default(),
            one_hot_arith: std::cell::Cell::new(false),
            one_hot: true,
            columns: true,
            learns: true,
            scaled: false,
            column_facts: 0,
            column_budget: crate::columns::BUDGET,
            pc: Vec::new(),
            facts: Vec::new(),
            linear: TermMap::default(),
            positions: TermSet::default(),
            distinct: Vec::new(),
            distinct_candidates: Vec::new(),
            known: TermSet::default(),
            decided: std::cell::Cell::new(0),
            refuted: TermSet::default(),
            known_log: Vec::new(),
            known_ranges: TermMap::default(),
            narrowed: 0,
            merged: 0,
            enumerate_states: true,
            enumerated_loops: 0,
            evaluated_steps: 0,
            circuit: Default::default(),
            defer_circuit: false,
            ranges_log: Vec::new(),
            steps: 0,
            budget,
        }
    }

    /// What the lowering asserts, taken out of it: the facts, and the circuit its
    /// enumerated loops built (empty unless `defer_circuit`), with the walks' dead ends
    /// ruled out by the facts ([`crate::circuit::Circuit::prune`]).
    pub fn take_formula(&mut self) -> (Vec<Bool>, crate::circuit::Circuit) {
        let facts = std::mem::take(&mut self.facts);
        let mut circuit = std::mem::take(&mut self.circuit);
        circuit.prune(&facts);
        (facts, circuit)
    }

    /// Adds the circuit ([`Lowering::circuit`]) to `facts` as Z3 terms and empties it.
    pub fn materialize_circuit(&mut self) {
        if !self.circuit.is_empty() {
            self.facts.extend(std::mem::take(&mut self.circuit).terms());
        }
    }

    /// The steps taken so far (each counts against the budget).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    fn tick(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > self.budget {
            return Err(Halt::Budget);
        }
        Ok(())
    }

    fn path(&self) -> Option<&Bool> {
        self.pc.last()
    }

    /// Records that `cond` holds whenever the current path is taken.
    fn require(&mut self, cond: Bool) {
        if cond.as_bool() == Some(true) {
            return;
        }
        if self.learns {
            self.learn(&cond);
        }
        let cond = match self.columns && self.scaled {
            true => match crate::columns::rewrite(&cond, &mut self.iv, &mut self.column_budget) {
                Some(c) => {
                    self.column_facts += 1;
                    c
                }
                None => cond,
            },
            false => cond,
        };
        let f = match self.path() {
            Some(p) => not(p).to_owned(),
            None => Bool::from_bool(false),
        };
        self.facts.push(or2(&f, &cond));
    }

    /// Records what `fact`, required on the current path, makes known there (see
    /// `known`). Only the top of a fact is looked at ([`LEARN_NODES`] terms): the
    /// conditions worth knowing are a check's few literals, not a `forall`'s expansion.
    fn learn(&mut self, fact: &Bool) {
        let mut left = LEARN_NODES;
        self.learn_within(fact, &mut left);
    }

    fn learn_within(&mut self, fact: &Bool, left: &mut usize) {
        if *left == 0 || fact.as_bool().is_some() || self.known.contains(fact) {
            return;
        }
        *left -= 1;
        let kids = || -> Vec<Bool> { fact.children().iter().filter_map(|c| c.as_bool()).collect() };
        match fact.decl().kind() {
            DeclKind::And => {
                for k in kids() {
                    self.learn_within(&k, left);
                }
            }
            DeclKind::Or => {
                let kids = kids();
                if kids.len() <= *left {
                    *left -= kids.len();
                    let open: Vec<&Bool> = kids.iter().filter(|k| !self.known_false(k)).collect();
                    if let [only] = open.as_slice() {
                        self.learn_within(only, left);
                    }
                }
            }
            DeclKind::Implies => {
                if let [a, b] = kids().as_slice() {
                    if a.as_bool() == Some(true) || self.known.contains(a) {
                        self.learn_within(b, left);
                    }
                }
            }
            DeclKind::Not => {
                if let Some(x) = negated(fact) {
                    self.refuted.insert(x);
                }
            }
            kind @ (DeclKind::Ge | DeclKind::Gt | DeclKind::Le | DeclKind::Lt | DeclKind::Eq) => {
                self.learn_range(kind, fact);
            }
            _ => {}
        }
        self.known.insert(fact.clone());
        self.known_log.push(fact.clone());
    }

    /// Narrows the range of `x` on the current path by a known `x op k` or `k op x`
    /// (`k` a numeral; see `known_ranges`).
    fn learn_range(&mut self, kind: DeclKind, fact: &Bool) {
        let kids: Vec<Int> = fact.children().iter().filter_map(|c| c.as_int()).collect();
        let [a, b] = kids.as_slice() else { return };
        let (x, k, flipped) = match (a.as_i64(), b.as_i64()) {
            (None, Some(k)) => (a, k, false),
            (Some(k), None) => (b, k, true),
            _ => return,
        };
        let k = i128::from(k);
        // As `x op k`.
        let (lo, hi) = match (kind, flipped) {
            (DeclKind::Eq, _) => (k, k),
            (DeclKind::Ge, false) | (DeclKind::Le, true) => (k, i128::MAX),
            (DeclKind::Gt, false) | (DeclKind::Lt, true) => (k + 1, i128::MAX),
            (DeclKind::Le, false) | (DeclKind::Ge, true) => (i128::MIN, k),
            (DeclKind::Lt, false) | (DeclKind::Gt, true) => (i128::MIN, k - 1),
            _ => return,
        };
        let before = self.known_ranges.get(x).copied();
        let (l0, h0) = before.unwrap_or((i128::MIN, i128::MAX));
        self.known_ranges
            .insert(x.clone(), (l0.max(lo), h0.min(hi)));
        self.ranges_log.push((x.clone(), before));
    }

    /// The range of `x` on the current path: its interval, narrowed by what is known.
    fn path_bounds(&mut self, x: &Int) -> Range {
        let (lo, hi) = self.bounds(x);
        match self.known_ranges.get(x) {
            Some(&(l, h)) if l.max(lo) <= h.min(hi) => (l.max(lo), h.min(hi)),
            _ => (lo, hi),
        }
    }

    /// Whether every model on the current path falsifies `b` (see `known`).
    fn known_false(&self, b: &Bool) -> bool {
        if b.as_bool() == Some(false) {
            return true;
        }
        if self.known.is_empty() {
            return false;
        }
        if self.refuted.contains(b) {
            return true;
        }
        negated(b).is_some_and(|x| self.known.contains(&x))
    }

    /// A certain runtime error on the current path.
    fn dead<T>(&mut self) -> R<T> {
        self.require(Bool::from_bool(false));
        Err(Halt::Dead)
    }

    /// Runs `f` under the extra path condition `g`. A `Dead` inside is absorbed (its
    /// condition is already recorded) and reported as `None`.
    fn under<T>(&mut self, g: &Bool, f: impl FnOnce(&mut Self) -> R<T>) -> R<Option<T>> {
        if g.as_bool() == Some(false) {
            return Ok(None);
        }
        let p = match self.path() {
            Some(p) => and2(p, g),
            None => g.clone(),
        };
        self.pc.push(p);
        let mark = self.known_log.len();
        let ranges_mark = self.ranges_log.len();
        let r = f(self);
        while self.ranges_log.len() > ranges_mark {
            let (x, before) = self.ranges_log.pop().expect("logged");
            match before {
                Some(r) => self.known_ranges.insert(x, r),
                None => self.known_ranges.remove(&x),
            };
        }
        for b in self.known_log.drain(mark..) {
            self.known.remove(&b);
            if let Some(x) = negated(&b) {
                self.refuted.remove(&x);
            }
        }
        self.pc.pop();
        match r {
            Ok(v) => Ok(Some(v)),
            Err(Halt::Dead) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn rt<T>(&mut self, r: Result<T, resyn_runtime::RtError>) -> R<T> {
        match r {
            Ok(v) => Ok(v),
            Err(_) => self.dead(),
        }
    }

    // ------------------------------------------------------------------ conversions

    fn truth(&self, s: &S) -> R<Truth> {
        match s {
            S::C(Value::Bool(b)) => Ok(Truth::Known(*b)),
            S::B(b) => Ok(match b.as_bool() {
                Some(v) => Truth::Known(v),
                None if self.known.contains(b) => {
                    self.decided.set(self.decided.get() + 1);
                    Truth::Known(true)
                }
                None if self.known_false(b) => {
                    self.decided.set(self.decided.get() + 1);
                    Truth::Known(false)
                }
                None => Truth::Sym(b.clone()),
            }),
            other => unsupported(format!("a condition that is not a bool ({other:?})")),
        }
    }

    fn to_bool(&self, s: &S) -> R<Bool> {
        Ok(match self.truth(s)? {
            Truth::Known(b) => Bool::from_bool(b),
            Truth::Sym(b) => b,
        })
    }

    fn int_of(&mut self, s: &S) -> R<Option<Int>> {
        Ok(match s {
            S::C(Value::Int(i)) => Some(int(*i)),
            S::I(x) => Some(x.clone()),
            S::OneHot(alts) => Some(self.one_hot_int(alts)),
            _ => None,
        })
    }

    /// A one-hot int as an `Int` term. Arithmetic or order on a one-hot answer int is
    /// recorded, so the prover can choose the `Int` encoding instead (spec/proofs.md §2).
    /// A position from `index_of` is not (see `positions`); it is named with its bounds
    /// instead, because `QF_FD` bit-blasts ints only through bounded constants and gives
    /// up on arithmetic over `ite`s of numerals alone.
    fn one_hot_int(&mut self, alts: &[(i64, Bool)]) -> Int {
        let position = alts.iter().all(|(_, g)| self.positions.contains(g));
        if !position {
            self.one_hot_arith.set(true);
            return one_hot_term(alts);
        }
        let term = one_hot_term(alts);
        match self.name(S::I(term.clone())) {
            S::I(named) => named,
            _ => term,
        }
    }

    /// An int result of symbolic arithmetic: it must fit in i64, as natively. The check
    /// is only emitted when the term's range does not already prove it.
    fn int_result(&mut self, x: Int) -> S {
        if let Some(v) = x.as_i64() {
            return S::C(Value::Int(v));
        }
        let (lo, hi) = self.bounds(&x);
        if lo < i128::from(I64_MIN) || hi > i128::from(I64_MAX) {
            let bound = and2(&x.ge(int(I64_MIN)), &x.le(int(I64_MAX)));
            self.require(bound);
        }
        S::I(x)
    }

    /// A sound range of an int term (interval arithmetic, `crate::interval`). Ranges let
    /// the lowering skip redundant overflow checks and give named temporaries explicit
    /// bounds, which is what lets the finite-domain engine bit-blast with a few bits
    /// instead of 64.
    pub fn bounds(&mut self, x: &Int) -> (i128, i128) {
        self.iv.of(x)
    }

    /// The elements and presence guards of a collection (sets in order, maps as pairs).
    fn elems(&mut self, s: &S) -> R<(Vec<S>, Guard)> {
        match s {
            S::C(v @ (Value::List(_) | Value::Set(_) | Value::Map(_))) => {
                let items = self.rt(v.iter_elems())?;
                Ok((items.into_iter().map(S::C).collect(), Guard::All))
            }
            S::List(v, g) => Ok((v.as_ref().clone(), g.clone())),
            // Like a concrete map: (key, value) pairs in ascending key order.
            S::Map(entries) => Ok((
                entries
                    .iter()
                    .map(|(k, _, v)| S::Tuple(Rc::new(vec![S::C(k.clone()), v.clone()])))
                    .collect(),
                Guard::Each(Rc::new(entries.iter().map(|(_, p, _)| p.clone()).collect())),
            )),
            S::C(_) => self.dead(),
            other => unsupported(format!("iteration over {}", kind(other))),
        }
    }

    fn tuple_parts(&self, s: &S) -> Option<Vec<S>> {
        match s {
            S::C(Value::Tuple(v)) => Some(v.iter().cloned().map(S::C).collect()),
            S::Tuple(v) => Some(v.as_ref().clone()),
            _ => None,
        }
    }

    fn record_parts(&self, s: &S) -> Option<Vec<(Rc<str>, S)>> {
        match s {
            S::C(Value::Record(v)) => Some(
                v.iter()
                    .map(|(k, x)| (k.clone(), S::C(x.clone())))
                    .collect(),
            ),
            S::Record(v) => Some(v.as_ref().clone()),
            _ => None,
        }
    }

    fn list_parts(&self, s: &S) -> Option<(Vec<S>, Guard)> {
        match s {
            S::C(Value::List(v)) => Some((v.iter().cloned().map(S::C).collect(), Guard::All)),
            S::List(v, g) => Some((v.as_ref().clone(), g.clone())),
            _ => None,
        }
    }

    fn alts(&self, s: &S) -> Option<Vec<(Bool, Value)>> {
        match s {
            S::C(v) if is_scalar(v) => Some(vec![(tt(), v.clone())]),
            S::Union(v) => Some(v.as_ref().clone()),
            _ => None,
        }
    }

    /// A finite int: a one-hot value or a constant, as `(value, condition)` pairs.
    fn finite_int(s: &S) -> Option<Vec<(i64, Bool)>> {
        match s {
            S::OneHot(alts) => Some(alts.as_ref().clone()),
            S::C(Value::Int(k)) => Some(vec![(*k, tt())]),
            _ => None,
        }
    }

    /// `Σ c·[b]` as an int term registered as linear ([`Lowering::linear`]); `None` when
    /// the encoding is not one-hot or the sum may leave i64 (the caller's general path
    /// checks that).
    fn linear_sum(&mut self, terms: Vec<(Bool, i64)>) -> Option<S> {
        if !self.one_hot {
            return None;
        }
        let (mut constant, mut sym) = (0i64, Vec::new());
        let mut reach = 0i64;
        for (b, c) in terms {
            reach = reach.checked_add(c.checked_abs()?)?;
            match b.as_bool() {
                Some(true) => constant += c,
                Some(false) => {}
                None if c == 0 => {}
                None => sym.push((b, c)),
            }
        }
        if sym.is_empty() {
            return Some(S::C(Value::Int(constant)));
        }
        let mut parts: Vec<Int> = sym.iter().map(|(b, c)| b.ite(&int(*c), &int(0))).collect();
        if constant != 0 {
            parts.push(int(constant));
        }
        let term = Int::add(&parts);
        let s = self.int_result(term.clone());
        self.linear.insert(
            term,
            Rc::new(Linear {
                constant,
                terms: sym,
            }),
        );
        Some(s)
    }

    /// `x op y` as one pseudo-Boolean constraint when one side is a registered linear
    /// term and the other a constant. Coefficients are made positive (`c·[b]` with c < 0
    /// is `c + |c|·[¬b]`), and everything must fit Z3's i32 coefficients.
    fn pb_compare(&self, op: BinOp, x: &S, y: &S) -> Option<Bool> {
        let (lin, k, op) = match (x, y) {
            (S::I(t), S::C(Value::Int(k))) => (self.linear.get(t)?, *k, op),
            (S::C(Value::Int(k)), S::I(t)) => {
                let mirrored = match op {
                    BinOp::Lt => BinOp::Gt,
                    BinOp::Le => BinOp::Ge,
                    BinOp::Gt => BinOp::Lt,
                    BinOp::Ge => BinOp::Le,
                    other => other,
                };
                (self.linear.get(t)?, *k, mirrored)
            }
            _ => return None,
        };
        // The constant comes from instance data: it may be near the i64 limits.
        let mut bound = i64::from(i32::try_from(k).ok()?).checked_sub(lin.constant)?;
        let mut lits: Vec<(Bool, i32)> = Vec::with_capacity(lin.terms.len());
        let mut total = 0i64;
        for (b, c) in &lin.terms {
            let c32 = i32::try_from(c.checked_abs()?).ok()?;
            total += i64::from(c32);
            if *c < 0 {
                bound = bound.checked_add(i64::from(c32))?;
                lits.push((not(b), c32));
            } else {
                lits.push((b.clone(), c32));
            }
        }
        i32::try_from(total).ok()?;
        let bound = i32::try_from(bound).ok()?;
        let refs: Vec<(&Bool, i32)> = lits.iter().map(|(b, c)| (b, *c)).collect();
        Some(match op {
            BinOp::Eq => Bool::pb_eq(&refs, bound),
            BinOp::Ne => Bool::pb_eq(&refs, bound).not(),
            BinOp::Le => Bool::pb_le(&refs, bound),
            BinOp::Lt => Bool::pb_le(&refs, bound.checked_sub(1)?),
            BinOp::Ge => Bool::pb_ge(&refs, bound),
            BinOp::Gt => Bool::pb_ge(&refs, bound.checked_add(1)?),
            _ => return None,
        })
    }

    /// `f` applied case by case to two finite ints, at least one of them one-hot: the
    /// result is again one-hot (or a bool), because the conditions of the pairs of two
    /// partitions of the models partition them too. This keeps arithmetic and order on
    /// small-domain answer ints Boolean (`abs(q[i] - q[j]) != d` becomes clauses over the
    /// queens' literals) instead of forcing the `Int` encoding, which bit-blasts adders
    /// and comparators (spec/proofs.md §2). A pair on which `f` fails (overflow, division
    /// by zero) is an error path, as natively. `None` when neither operand is one-hot, an
    /// operand is not finite, or the case split exceeds [`ONE_HOT_PAIRS`] pairs or
    /// [`ONE_HOT_VALUES`] result values: then the caller takes the `Int` path.
    fn one_hot_op(
        &mut self,
        x: &S,
        y: &S,
        f: impl Fn(i64, i64) -> resyn_runtime::RtResult<Value>,
    ) -> R<Option<S>> {
        if !matches!(x, S::OneHot(_)) && !matches!(y, S::OneHot(_)) {
            return Ok(None);
        }
        let (Some(xs), Some(ys)) = (Self::finite_int(x), Self::finite_int(y)) else {
            return Ok(None);
        };
        if xs.len() * ys.len() > ONE_HOT_PAIRS {
            return Ok(None);
        }
        // The operator on every pair of values first, then terms only for the pairs the
        // result uses (the conjunctions were most of the lowering's time on
        // dependency_sort's order comparisons).
        let mut results = Vec::with_capacity(xs.len() * ys.len());
        let (mut values, mut yes, mut no) = (std::collections::BTreeSet::new(), 0usize, 0usize);
        for (a, _) in &xs {
            for (b, _) in &ys {
                let r = match f(*a, *b) {
                    Ok(Value::Int(v)) => {
                        values.insert(v);
                        Ok(Value::Int(v))
                    }
                    Ok(Value::Bool(t)) => {
                        if t {
                            yes += 1;
                        } else {
                            no += 1;
                        }
                        Ok(Value::Bool(t))
                    }
                    Ok(_) => return Ok(None),
                    Err(e) => Err(e),
                };
                results.push(r);
            }
        }
        // Ints and bools mixed cannot come from one operator; stay safe regardless.
        if values.len() > ONE_HOT_VALUES || (!values.is_empty() && yes + no > 0) {
            return Ok(None);
        }
        // The smaller side, so `a < b` over n values costs about n*n/2 conjunctions.
        let side = yes <= no;
        let pairs = xs
            .iter()
            .flat_map(|(_, p)| ys.iter().map(move |(_, q)| (p, q)))
            .zip(&results);
        let mut ints: std::collections::BTreeMap<i64, Vec<Bool>> = Default::default();
        let (mut picked, mut failing) = (Vec::new(), Vec::new());
        for ((p, q), r) in pairs {
            match r {
                Ok(Value::Int(v)) if values.len() > 1 => {
                    ints.entry(*v).or_default().push(and2(p, q))
                }
                Ok(Value::Bool(t)) if *t == side => picked.push(and2(p, q)),
                Ok(_) => {}
                Err(_) => failing.push(and2(p, q)),
            }
        }
        if !failing.is_empty() {
            self.require(not(&or_all(failing)));
        }
        if values.is_empty() {
            return Ok(Some(bool_s(if side {
                or_all(picked)
            } else {
                not(&or_all(picked))
            })));
        }
        if values.len() == 1 {
            let v = *values.iter().next().expect("one value");
            return Ok(Some(S::C(Value::Int(v))));
        }
        Ok(Some(S::OneHot(Rc::new(
            ints.into_iter().map(|(v, cs)| (v, or_all(cs))).collect(),
        ))))
    }

    // ------------------------------------------------------------------ merge / eq

    /// `if c then a else b` as one value.
    pub fn merge(&mut self, c: &Bool, a: S, b: S) -> R<S> {
        match c.as_bool() {
            Some(true) => return Ok(a),
            Some(false) => return Ok(b),
            None => {}
        }
        if let (S::C(x), S::C(y)) = (&a, &b) {
            if x == y {
                return Ok(a);
            }
        }
        if is_boolish(&a) && is_boolish(&b) {
            let (x, y) = (self.to_bool(&a)?, self.to_bool(&b)?);
            return Ok(S::B(c.ite(&x, &y)));
        }
        if matches!(a, S::OneHot(_)) || matches!(b, S::OneHot(_)) {
            if let (Some(x), Some(y)) = (Self::finite_int(&a), Self::finite_int(&b)) {
                // Still one-hot: each value under the branch that gives it.
                let nc = not(c);
                let mut by_value: std::collections::BTreeMap<i64, Vec<Bool>> = Default::default();
                for (v, g) in x {
                    by_value.entry(v).or_default().push(and2(c, &g));
                }
                for (v, g) in y {
                    by_value.entry(v).or_default().push(and2(&nc, &g));
                }
                if by_value.len() <= ONE_HOT_VALUES {
                    return Ok(S::OneHot(Rc::new(
                        by_value
                            .into_iter()
                            .map(|(v, gs)| (v, or_all(gs)))
                            .collect(),
                    )));
                }
            }
        }
        // Both must be ints before either is converted: converting a one-hot int records
        // arithmetic on it (the prover then redoes the lowering in the `Int` encoding), and
        // a slot that holds an int in one branch only (a `let` inside it) is no arithmetic.
        if is_int(&a) && is_int(&b) {
            if let (Some(x), Some(y)) = (self.int_of(&a)?, self.int_of(&b)?) {
                return Ok(S::I(ite_int(c, &x, &y)));
            }
        }
        if let (Some(x), Some(y)) = (self.tuple_parts(&a), self.tuple_parts(&b)) {
            if x.len() == y.len() {
                let parts = x
                    .into_iter()
                    .zip(y)
                    .map(|(p, q)| self.merge(c, p, q))
                    .collect::<R<Vec<_>>>()?;
                return Ok(S::Tuple(Rc::new(parts)));
            }
        }
        if let (Some(x), Some(y)) = (self.record_parts(&a), self.record_parts(&b)) {
            if x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| p.0 == q.0) {
                let parts = x
                    .into_iter()
                    .zip(y)
                    .map(|((k, p), (_, q))| Ok((k, self.merge(c, p, q)?)))
                    .collect::<R<Vec<_>>>()?;
                return Ok(S::Record(Rc::new(parts)));
            }
        }
        if let (Some((x, gx)), Some((y, gy))) = (self.list_parts(&a), self.list_parts(&b)) {
            if x.len() == y.len() {
                let guard = match (&gx, &gy) {
                    (Guard::All, Guard::All) => Some(Guard::All),
                    (Guard::Prefix(p), Guard::Prefix(q)) => Some(Guard::Prefix(ite_int(c, p, q))),
                    _ => None,
                };
                if let Some(guard) = guard {
                    let parts = x
                        .into_iter()
                        .zip(y)
                        .map(|(p, q)| self.merge(c, p, q))
                        .collect::<R<Vec<_>>>()?;
                    return Ok(S::List(Rc::new(parts), guard));
                }
            }
            return unsupported("a list whose length depends on the answer in a branch");
        }
        if let (S::Map(x), S::Map(y)) = (&a, &b) {
            if x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| p.0 == q.0) {
                let mut out = Vec::with_capacity(x.len());
                for ((k, p, v), (_, q, w)) in x.iter().zip(y.iter()) {
                    out.push((k.clone(), c.ite(p, q), self.merge(c, v.clone(), w.clone())?));
                }
                return Ok(S::Map(Rc::new(out)));
            }
        }
        if let (Some(x), Some(y)) = (self.alts(&a), self.alts(&b)) {
            let nc = not(c);
            let mut out: Vec<(Bool, Value)> = Vec::new();
            let mut add = |g: Bool, v: Value| match out.iter_mut().find(|(_, w)| *w == v) {
                Some(slot) => slot.0 = or2(&slot.0, &g),
                None => out.push((g, v)),
            };
            for (g, v) in x {
                add(and2(c, &g), v);
            }
            for (g, v) in y {
                add(and2(&nc, &g), v);
            }
            return Ok(S::Union(Rc::new(out)));
        }
        unsupported(format!("merging {} with {}", kind(&a), kind(&b)))
    }

    /// Structural equality, as the evaluator's `==`.
    pub fn eq(&mut self, a: &S, b: &S) -> R<Bool> {
        if let (S::C(x), S::C(y)) = (a, b) {
            return Ok(Bool::from_bool(x == y));
        }
        // One-hot ints compare literal by literal: `x == 3` is one literal, no arithmetic.
        match (a, b) {
            (S::OneHot(alts), S::C(Value::Int(k))) | (S::C(Value::Int(k)), S::OneHot(alts)) => {
                return Ok(alts
                    .iter()
                    .find(|(v, _)| v == k)
                    .map_or_else(|| Bool::from_bool(false), |(_, b)| b.clone()));
            }
            (S::OneHot(x), S::OneHot(y)) => {
                let mut terms = Vec::new();
                for (v, p) in x.iter() {
                    if let Some((_, q)) = y.iter().find(|(w, _)| w == v) {
                        terms.push(and2(p, q));
                    }
                }
                return Ok(or_all(terms));
            }
            _ => {}
        }
        if is_boolish(a) && is_boolish(b) {
            let (x, y) = (self.to_bool(a)?, self.to_bool(b)?);
            return Ok(x.iff(&y));
        }
        if let (Some(x), Some(y)) = (self.int_of(a)?, self.int_of(b)?) {
            return Ok(x.eq(&y));
        }
        if let (Some(x), Some(y)) = (self.alts(a), self.alts(b)) {
            let mut terms = Vec::new();
            for (g, v) in &x {
                for (h, w) in &y {
                    if v == w {
                        terms.push(and2(g, h));
                    }
                }
            }
            return Ok(or_all(terms));
        }
        if let Some(t) = self.map_eq(a, b)? {
            return Ok(t);
        }
        if let (Some(x), Some(y)) = (self.tuple_parts(a), self.tuple_parts(b)) {
            return self.eq_each(&x, &y);
        }
        if let (Some(x), Some(y)) = (self.record_parts(a), self.record_parts(b)) {
            if x.len() != y.len() || x.iter().zip(&y).any(|(p, q)| p.0 != q.0) {
                return Ok(Bool::from_bool(false));
            }
            let parts = x
                .iter()
                .zip(&y)
                .map(|(p, q)| self.eq(&p.1, &q.1))
                .collect::<R<Vec<_>>>()?;
            return Ok(and_all(parts));
        }
        if let (Some((x, gx)), Some((y, gy))) = (self.list_parts(a), self.list_parts(b)) {
            if let (Guard::All, Guard::All) = (&gx, &gy) {
                // Both lengths are known: no length terms (a 4 x 4 grid's equality built
                // 40 constant comparisons for Z3 to simplify away).
                return self.eq_each(&x, &y);
            }
            let len_of = |v: &Vec<S>, g: &Guard| -> Option<Int> {
                match g {
                    Guard::All => Some(int(v.len() as i64)),
                    Guard::Prefix(l) => Some(l.clone()),
                    Guard::Each(_) => None,
                }
            };
            let (Some(lx), Some(ly)) = (len_of(&x, &gx), len_of(&y, &gy)) else {
                return unsupported("equality of filtered lists");
            };
            let mut parts = vec![lx.eq(&ly)];
            for i in 0..x.len().min(y.len()) {
                let e = self.eq(&x[i], &y[i])?;
                parts.push(lx.le(int(i as i64)).not().implies(&e));
            }
            // Elements beyond the shorter capacity: the lengths must not reach them.
            let cap = x.len().min(y.len()) as i64;
            parts.push(lx.le(int(cap)));
            return Ok(and_all(parts));
        }
        unsupported(format!("comparing {} with {}", kind(a), kind(b)))
    }

    /// Element-wise equality of two sequences of known lengths (false if they differ).
    fn eq_each(&mut self, x: &[S], y: &[S]) -> R<Bool> {
        if x.len() != y.len() {
            return Ok(Bool::from_bool(false));
        }
        let parts = x
            .iter()
            .zip(y)
            .map(|(p, q)| self.eq(p, q))
            .collect::<R<Vec<_>>>()?;
        Ok(and_all(parts))
    }

    /// Equality when one side is a map answer: the same keys present, equal values there.
    fn map_eq(&mut self, a: &S, b: &S) -> R<Option<Bool>> {
        let (entries, other) = match (a, b) {
            (S::Map(e), o) | (o, S::Map(e)) => (e.clone(), o.clone()),
            _ => return Ok(None),
        };
        let mut terms = Vec::new();
        match &other {
            S::C(Value::Map(m)) => {
                if m.keys().any(|k| !entries.iter().any(|(e, _, _)| e == k)) {
                    return Ok(Some(Bool::from_bool(false)));
                }
                for (k, p, v) in entries.iter() {
                    match m.get(k) {
                        Some(w) => {
                            let same = self.eq(v, &S::C(w.clone()))?;
                            terms.push(and2(p, &same));
                        }
                        None => terms.push(not(p)),
                    }
                }
            }
            S::Map(theirs) if theirs.len() == entries.len() => {
                for ((k, p, v), (k2, q, w)) in entries.iter().zip(theirs.iter()) {
                    if k != k2 {
                        return unsupported("comparing map answers with different key domains");
                    }
                    let same = self.eq(v, w)?;
                    terms.push(p.iff(q));
                    terms.push(p.implies(&same));
                }
            }
            _ => return unsupported(format!("comparing a map answer with {}", kind(&other))),
        }
        Ok(Some(and_all(terms)))
    }

    // ------------------------------------------------------------------ evaluation

    pub fn block(&mut self, slots: &mut Vec<S>, b: &Block) -> R<S> {
        for s in &b.stmts {
            self.stmt(slots, s)?;
        }
        match &b.value {
            Some(e) => self.expr(slots, e),
            None => Ok(S::C(Value::Unit)),
        }
    }

    fn bind(&mut self, slots: &mut [S], p: &Pattern, v: S) -> R<()> {
        match p {
            Pattern::Bind(s) => {
                slots[*s as usize] = v;
                Ok(())
            }
            Pattern::Wild => Ok(()),
            Pattern::Tuple(ps) => match self.tuple_parts(&v) {
                Some(items) if items.len() == ps.len() => {
                    for (p, x) in ps.iter().zip(items) {
                        self.bind(slots, p, x)?;
                    }
                    Ok(())
                }
                Some(_) | None if matches!(v, S::C(_)) => self.dead(),
                _ => unsupported(format!("destructuring {}", kind(&v))),
            },
        }
    }

    /// Runs `body` in a branch taken when `g`: the frame afterwards is the merge of the
    /// branch's frame and the frame before. `locals` are the slots the branch binds
    /// itself ([`Block::bound_slots`]): dead once it is left, so they are not merged (a
    /// simulation step's `let`s were most of its merges, each a fresh named constant the
    /// solver could branch on).
    fn branch(
        &mut self,
        slots: &mut Vec<S>,
        g: &Bool,
        locals: &[Slot],
        then: impl FnOnce(&mut Self, &mut Vec<S>) -> R<()>,
        otherwise: impl FnOnce(&mut Self, &mut Vec<S>) -> R<()>,
    ) -> R<()> {
        let before = slots.clone();
        let mut t = before.clone();
        let t_ranges = self.side(g, &mut t, then)?;
        let mut e = before;
        let e_ranges = self.side(&not(g), &mut e, otherwise)?;
        let (t_ok, e_ok) = (t_ranges.is_some(), e_ranges.is_some());
        let (t_ranges, e_ranges) = (t_ranges.unwrap_or_default(), e_ranges.unwrap_or_default());
        match (t_ok, e_ok) {
            (true, true) => {
                let dead = S::Poison(Rc::from("a variable of a branch it left"));
                for &l in locals {
                    t[l as usize] = dead.clone();
                    e[l as usize] = dead.clone();
                }
                for (i, slot) in slots.iter_mut().enumerate() {
                    let (a, b) = (t[i].clone(), e[i].clone());
                    let range = match (t_ranges.get(i), e_ranges.get(i)) {
                        (Some(Some((l1, h1))), Some(Some((l2, h2)))) => {
                            Some(((*l1).min(*l2), (*h1).max(*h2)))
                        }
                        _ => None,
                    };
                    *slot = if same(&a, &b) {
                        a
                    } else {
                        self.merged += 1;
                        match self.merge(g, a, b) {
                            Ok(v) => self.named_within(v, range),
                            Err(Halt::Unsupported(why)) => S::Poison(Rc::from(why.as_str())),
                            Err(e) => return Err(e),
                        }
                    };
                }
                Ok(())
            }
            (true, false) => {
                *slots = t;
                Ok(())
            }
            (false, true) => {
                *slots = e;
                Ok(())
            }
            (false, false) => Err(Halt::Dead),
        }
    }

    /// Runs one side of [`Lowering::branch`] under `g`; `None` if it certainly fails.
    /// Where the branch is taken on every path (the top level), also returns the ranges
    /// of the side's slots at its end, for naming the merged ints (`named_within`).
    fn side(
        &mut self,
        g: &Bool,
        slots: &mut Vec<S>,
        run: impl FnOnce(&mut Self, &mut Vec<S>) -> R<()>,
    ) -> R<Option<Vec<Option<Range>>>> {
        let top = self.pc.is_empty() && self.learns;
        self.under(g, |me| {
            run(me, slots)?;
            Ok(if top {
                me.slot_ranges(slots)
            } else {
                Vec::new()
            })
        })
    }

    /// The range of each int slot on the current path (`None` for other slots).
    fn slot_ranges(&mut self, slots: &[S]) -> Vec<Option<Range>> {
        slots
            .iter()
            .map(|s| match s {
                S::I(x) => Some(self.path_bounds(x)),
                S::C(Value::Int(k)) => Some((i128::from(*k), i128::from(*k))),
                _ => None,
            })
            .collect()
    }

    /// [`Lowering::name`], where an int merged at the top level is named with `range`
    /// when that is narrower than its interval: the hull of the ranges each side had on
    /// its own path. Sound because the merge is on every path: in a model of the facts,
    /// the merged value is the side whose path holds, and the facts that narrowed that
    /// side's range hold there (the argument of `known`). The range goes to the fresh
    /// constant only, never to the merged term's interval, which stays syntactic.
    fn named_within(&mut self, v: S, range: Option<Range>) -> S {
        match (v, range) {
            (S::I(x), Some((lo, hi))) if !x.is_const() => {
                let (l0, h0) = self.bounds(&x);
                let (lo, hi) = (lo.max(l0), hi.min(h0));
                if lo <= hi && (lo, hi) != (l0, h0) {
                    self.narrowed += 1;
                    self.name_int(&x, (lo, hi))
                } else {
                    self.name_int(&x, (l0, h0))
                }
            }
            (v, _) => self.name(v),
        }
    }

    /// A fresh constant defined equal to `x`, with `range` (a sound range of `x` in every
    /// model of the facts) as its bounds.
    fn name_int(&mut self, x: &Int, (lo, hi): Range) -> S {
        let c = Int::fresh_const("t");
        self.facts.push(c.eq(x));
        if lo >= i128::from(I64_MIN) && hi <= i128::from(I64_MAX) {
            self.facts.push(c.ge(int(lo as i64)));
            self.facts.push(c.le(int(hi as i64)));
        }
        self.iv.vars.insert(c.clone(), (lo, hi));
        S::I(c)
    }

    /// Replaces the int and bool terms inside `v` by fresh constants defined equal to them.
    /// Simulation loops merge state at every step; without names the state terms nest
    /// `ite`s step after step, and the solver drowns in them (bounded model checking
    /// names every state for the same reason). A definition of a fresh constant is
    /// asserted unconditionally: it constrains nothing but the constant itself.
    fn name(&mut self, v: S) -> S {
        match v {
            S::I(x) if !x.is_const() => {
                let range = self.bounds(&x);
                self.name_int(&x, range)
            }
            S::B(x) if !x.is_const() => {
                let c = Bool::fresh_const("t");
                self.facts.push(c.iff(&x));
                S::B(c)
            }
            S::Tuple(parts) => S::Tuple(Rc::new(
                parts.iter().map(|p| self.name(p.clone())).collect(),
            )),
            S::Record(fs) => S::Record(Rc::new(
                fs.iter()
                    .map(|(k, p)| (k.clone(), self.name(p.clone())))
                    .collect(),
            )),
            S::List(items, g) => S::List(
                Rc::new(items.iter().map(|p| self.name(p.clone())).collect()),
                g,
            ),
            other => other,
        }
    }

    /// Lowers a loop over an answer list by enumerating the states it can be in, where
    /// the state it carries (the outer variables it assigns) is concrete before it and
    /// each element is a choice among few concrete values (spec/proofs.md §2). Each step
    /// runs the body once per (state, choice) pair on concrete values, on the evaluator
    /// where the body reads nothing symbolic from outside (a pair that fails a check, or
    /// errs, becomes the clause "not this pair"), and each state of the next step is a
    /// `Step` gate of [`Lowering::circuit`] over the pairs that reach it; the final states
    /// are named by Z3 constants, which the loop's value is built from. A walk on a
    /// grid becomes one literal per reachable cell and step, which unit propagation
    /// handles, instead of position arithmetic and a lookup per step. Pairs are cached
    /// on (state, choice); the loop variables read only in messages are left out of the
    /// key. Returns false, with nothing recorded, where it does not apply: the state or an
    /// element is symbolic, the body reads other answer-dependent values, or the states
    /// grow past [`STATE_MAX`] or the pairs past [`STATE_PAIRS`].
    fn enumerate_loop(
        &mut self,
        slots: &mut [S],
        p: &Pattern,
        body: &Block,
        items: &[S],
        guard: &Guard,
        locals: &[Slot],
    ) -> bool {
        if !(self.enumerate_states && self.pc.is_empty()) || items.is_empty() {
            return false;
        }
        if matches!(guard, Guard::Each(_)) {
            return false;
        }
        let mut carried: Vec<Slot> = Vec::new();
        body.each_use(&mut |u| {
            if let SlotUse::Write(s) = u {
                if !locals.contains(&s) && !carried.contains(&s) {
                    carried.push(s);
                }
            }
        });
        carried.sort_unstable();
        let start: Option<Vec<Value>> = carried
            .iter()
            .map(|&s| concrete(&slots[s as usize]))
            .collect();
        let Some(start) = start.filter(|s| !s.is_empty()) else {
            return false;
        };
        let mark = (self.facts.len(), self.circuit.mark());
        let steps = self.steps;
        let mut elems = Vec::with_capacity(items.len());
        for x in items {
            match choices(x, ELEM_CHOICES, &mut self.circuit) {
                Some(c) => elems.push(c),
                None => return self.abandon(mark, steps),
            }
        }
        if matches!(guard, Guard::All) && elems.iter().all(|c| c.len() <= 1) {
            return self.abandon(mark, steps);
        }
        let pattern = p.slots();
        let keyed: Vec<bool> = pattern
            .iter()
            .map(|&s| body.reads_beyond_messages(s))
            .collect();
        let mut runner = self.loop_runner(slots, p, body, &carried, locals);
        if let Some(r) = &runner {
            for alts in &mut elems {
                for (_, x) in alts.iter_mut() {
                    *x = r.adopt(x);
                }
            }
        }
        // States and the element values' keys are interned: each is hashed once, and
        // pairs are cached and grouped by ids.
        let mut table = Interner::default();
        let mut keys = Interner::default();
        let mut cache: StepCache = Default::default();
        // The frame the symbolic executor runs the steps in, where the evaluator cannot: a
        // step writes only the carried slots (set before each step) and its own locals
        // (bound before they are read).
        let mut frame = match runner {
            Some(_) => Vec::new(),
            None => slots.to_vec(),
        };
        // `states`: where the walk can be after exactly `i` present elements (each a
        // literal of the circuit; they partition the models where element `i - 1` is
        // present). `ended`: where it stopped, for each step at which the list can end.
        let mut states: Vec<(CLit, u32)> = vec![(CLit::TRUE, table.id(start))];
        let mut ended: std::collections::BTreeMap<u32, Vec<CLit>> = Default::default();
        // The state literals each final state stands for (`Circuit::prune`).
        let mut covers: std::collections::BTreeMap<u32, Vec<CLit>> = Default::default();
        let first_gate = self.circuit.gates.len();
        let mut pairs = 0usize;
        for (i, alts) in elems.iter().enumerate() {
            let present = guard_at(guard, i).map(|g| self.circuit.leaf(&g));
            pairs += states.len() * alts.len();
            if pairs > STATE_PAIRS {
                return self.abandon(mark, steps);
            }
            if let Some(g) = present {
                for (gs, id) in &states {
                    let stop = self.circuit.and(vec![*gs, !g]);
                    ended.entry(*id).or_default().push(stop);
                    covers.entry(*id).or_default().push(*gs);
                }
            }
            let xkeys: Vec<u32> = alts
                .iter()
                .map(|(_, x)| keys.id(keyed_values(p, &keyed, x)))
                .collect();
            let xlits: Vec<CLit> = alts.iter().map(|(gx, _)| *gx).collect();
            // Per next state, the (state, values) pairs leading there.
            let mut next: std::collections::BTreeMap<u32, Vec<(CLit, CLit)>> = Default::default();
            for (gs, id) in &states {
                // The element's values grouped by where they lead from this state (in
                // the order met), and those that fail: one conjunction per group, not
                // per value (water_jugs: 27 actions reach a handful of states).
                let mut leads: Vec<(u32, Vec<CLit>)> = Vec::new();
                let mut fails: Vec<CLit> = Vec::new();
                for ((x, &xk), &xl) in alts.iter().map(|(_, x)| x).zip(&xkeys).zip(&xlits) {
                    if xl == CLit::FALSE {
                        continue;
                    }
                    let to = match cache.get(&(*id, xk)) {
                        Some(to) => *to,
                        None => {
                            let vals = &table.values[*id as usize];
                            let step = match &mut runner {
                                Some(r) => self.run_step(r, &carried, vals, x),
                                None => self.step_state(&mut frame, p, body, &carried, vals, x),
                            };
                            let Some(to) = step else {
                                return self.abandon(mark, steps);
                            };
                            let to = to.map(|to| table.id(to));
                            cache.insert((*id, xk), to);
                            to
                        }
                    };
                    match to {
                        None => fails.push(xl),
                        Some(to) => match leads.iter_mut().find(|(t, _)| *t == to) {
                            Some((_, xls)) => xls.push(xl),
                            None => leads.push((to, vec![xl])),
                        },
                    }
                }
                if !fails.is_empty() {
                    // One clause: not (this state, a failing value, the element present).
                    // Not through `require`: nothing is learnt that a fallback would have
                    // to forget.
                    let bad = self.circuit.or(fails);
                    self.circuit
                        .forbid(vec![*gs, bad].into_iter().chain(present).collect());
                }
                for (to, xls) in leads {
                    let x = self.circuit.or(xls);
                    next.entry(to).or_default().push((*gs, x));
                }
            }
            // States that do not merge (most pairs reaching a state of their own, as in
            // `v = 10 * v + d`) are the answers themselves, enumerated: a symbolic value
            // is far smaller there. Judged as soon as the next step would pass
            // `SPREAD_FROM` pairs, so such a loop is given up after its first step.
            let step_pairs = states.len() * alts.len();
            let next_alts = elems.get(i + 1).map_or(1, Vec::len);
            if next.len() > STATE_MAX
                || (4 * next.len() > 3 * step_pairs && next.len() * next_alts > SPREAD_FROM)
            {
                return self.abandon(mark, steps);
            }
            // A next state: the element is present and one of the steps leading there
            // is taken. The promises of a `Gate::Step` hold: `states` partition the models
            // where this element is present (the guard is a prefix: `Guard::Each` is not
            // enumerated), and values leading from one state to two are distinct values
            // of one-hot choices.
            let here = present.unwrap_or(CLit::TRUE);
            states = next
                .into_iter()
                .map(|(id, from)| (self.circuit.step(from, here), id))
                .collect();
        }
        for (gs, id) in states {
            ended.entry(id).or_default().push(gs);
            covers.entry(id).or_default().push(gs);
        }
        // The final states are named: the loop's value refers to them from outside.
        let mut finals = Vec::with_capacity(ended.len());
        let states: Vec<(Bool, &Vec<Value>)> = ended
            .into_iter()
            .map(|(id, gs)| {
                let l = self.circuit.or(gs);
                let name = self.circuit.name(l);
                if name.as_bool().is_none() {
                    finals.push((name.clone(), covers.remove(&id).unwrap_or_default()));
                }
                (name, &table.values[id as usize])
            })
            .collect();
        self.circuit.walks.push(crate::circuit::Walk {
            first: first_gate,
            finals,
        });
        let mut out = Vec::with_capacity(carried.len());
        for k in 0..carried.len() {
            let alts: Vec<(Bool, Value)> = states
                .iter()
                .map(|(g, vs)| (g.clone(), vs[k].clone()))
                .collect();
            match combine(&alts) {
                Some(v) => out.push(v),
                None => {
                    return self.abandon(mark, steps);
                }
            }
        }
        for (&s, v) in carried.iter().zip(out) {
            slots[s as usize] = v;
        }
        if !self.defer_circuit {
            self.materialize_circuit();
        }
        self.enumerated_loops += 1;
        true
    }

    /// Takes back what an abandoned [`Lowering::enumerate_loop`] recorded: its facts, and
    /// the steps it took, so the symbolic lowering that follows has the whole budget (the
    /// enumeration's own caps bound what it spent). Returns false, for the caller.
    fn abandon(&mut self, mark: (usize, crate::circuit::Mark), steps: u64) -> bool {
        self.facts.truncate(mark.0);
        self.circuit.truncate(mark.1);
        self.steps = steps;
        false
    }

    /// The loop body compiled for the evaluator, with the values it reads from outside
    /// (other than the state it carries) set, where all of them are concrete; `None`
    /// where one is not (the body then runs in the symbolic executor, which tells a step
    /// that stays concrete from one that does not).
    fn loop_runner(
        &self,
        slots: &[S],
        p: &Pattern,
        body: &Block,
        carried: &[Slot],
        locals: &[Slot],
    ) -> Option<crate::eval::LoopStep> {
        let mut reads: Vec<Slot> = Vec::new();
        body.each_use(&mut |u| {
            if let SlotUse::Read(s) = u {
                if !locals.contains(&s) && !carried.contains(&s) && !reads.contains(&s) {
                    reads.push(s);
                }
            }
        });
        let outside: Vec<(Slot, Value)> = reads
            .into_iter()
            .map(|s| concrete(&slots[s as usize]).map(|v| (s, v)))
            .collect::<Option<_>>()?;
        let mut step = crate::eval::LoopStep::new(self.prog, slots.len(), p, body);
        for (s, v) in outside {
            step.set(s, v);
        }
        Some(step)
    }

    /// One step of [`Lowering::enumerate_loop`] on the evaluator: the same answers as
    /// [`Lowering::step_state`] gives on a body whose reads are all concrete. The fuel it
    /// spends counts against the lowering's step budget.
    fn run_step(
        &mut self,
        runner: &mut crate::eval::LoopStep,
        carried: &[Slot],
        vals: &[Value],
        x: &Value,
    ) -> Option<Option<Vec<Value>>> {
        for (&s, v) in carried.iter().zip(vals) {
            runner.set(s, v.clone());
        }
        let (outcome, spent) = runner.run(x.clone(), self.budget.saturating_sub(self.steps));
        self.steps += spent;
        self.evaluated_steps += 1;
        match outcome {
            crate::eval::StepOutcome::Pass => Some(Some(
                carried.iter().map(|&s| runner.get(s).clone()).collect(),
            )),
            crate::eval::StepOutcome::Fail => Some(None),
            crate::eval::StepOutcome::OutOfFuel => None,
        }
    }

    /// One step of [`Lowering::enumerate_loop`] from state `vals` with element `x`, in
    /// `frame`: `Some(Some(state))` where it passes, `Some(None)` where a check fails or
    /// the evaluator would err, `None` where the step is not concrete or the step budget
    /// ran out.
    fn step_state(
        &mut self,
        frame: &mut Vec<S>,
        p: &Pattern,
        body: &Block,
        carried: &[Slot],
        vals: &[Value],
        x: &Value,
    ) -> Option<Option<Vec<Value>>> {
        for (&s, v) in carried.iter().zip(vals) {
            frame[s as usize] = S::C(v.clone());
        }
        match self.bind(frame, p, S::C(x.clone())) {
            Ok(()) => {}
            Err(Halt::Dead) => return Some(None),
            Err(Halt::Unsupported(_) | Halt::Budget) => return None,
        }
        let mark = self.facts.len();
        let run = self.under(&tt(), |me| me.block(frame, body).map(|_| ()));
        let (mut holds, mut known) = (true, true);
        for f in &self.facts[mark..] {
            match f.as_bool() {
                Some(true) => {}
                Some(false) => holds = false,
                None => known = false,
            }
        }
        self.facts.truncate(mark);
        match run {
            Ok(_) if !known => None,
            Ok(None) | Err(Halt::Dead) => Some(None),
            Ok(Some(())) if !holds => Some(None),
            Ok(Some(())) => carried
                .iter()
                .map(|&s| concrete(&frame[s as usize]))
                .collect::<Option<Vec<Value>>>()
                .map(Some),
            // The budget spent here is given back ([`Lowering::abandon`]); the symbolic
            // lowering then runs on its own budget.
            Err(Halt::Unsupported(_) | Halt::Budget) => None,
        }
    }

    fn stmt(&mut self, slots: &mut Vec<S>, s: &Stmt) -> R<()> {
        self.tick()?;
        match s {
            Stmt::Let(p, e) => {
                let v = self.expr(slots, e)?;
                self.bind(slots, p, v)
            }
            Stmt::Assign(slot, path, e) => {
                let v = self.expr(slots, e)?;
                let mut keys = Vec::with_capacity(path.len());
                for a in path {
                    keys.push(match a {
                        Access::Index(i, _) => Key::Index(self.expr(slots, i)?),
                        Access::Field(f) => Key::Field(f.clone()),
                        Access::TupleField(i) => Key::Tuple(*i),
                    });
                }
                let target = slots[*slot as usize].clone();
                slots[*slot as usize] = self.store(target, &keys, v)?;
                Ok(())
            }
            Stmt::Eval(e) => self.expr(slots, e).map(|_| ()),
            Stmt::If(c, t, e) => {
                let cv = self.expr(slots, c)?;
                match self.truth(&cv)? {
                    Truth::Known(true) => self.block(slots, t).map(|_| ()),
                    Truth::Known(false) => match e {
                        Some(e) => self.block(slots, e).map(|_| ()),
                        None => Ok(()),
                    },
                    Truth::Sym(g) => {
                        let mut locals = t.bound_slots(None);
                        if let Some(e) = e {
                            locals.extend(e.bound_slots(None));
                        }
                        self.branch(
                            slots,
                            &g,
                            &locals,
                            |me, s| me.block(s, t).map(|_| ()),
                            |me, s| match e {
                                Some(e) => me.block(s, e).map(|_| ()),
                                None => Ok(()),
                            },
                        )
                    }
                }
            }
            Stmt::For(p, coll, body) => {
                let c = self.expr(slots, coll)?;
                let (items, guard) = self.elems(&c)?;
                let locals = body.bound_slots(Some(p));
                if self.enumerate_loop(slots, p, body, &items, &guard, &locals) {
                    return Ok(());
                }
                for (i, x) in items.into_iter().enumerate() {
                    match guard_at(&guard, i) {
                        None => {
                            self.bind(slots, p, x)?;
                            self.block(slots, body)?;
                        }
                        Some(g) => self.branch(
                            slots,
                            &g,
                            &locals,
                            |me, s| {
                                me.bind(s, p, x)?;
                                me.block(s, body).map(|_| ())
                            },
                            |_, _| Ok(()),
                        )?,
                    }
                }
                Ok(())
            }
            Stmt::Constraint { binders, cond, .. } => {
                // Every binding is evaluated (no short circuit), as in the evaluator.
                let mut parts = Vec::new();
                // Without binders, the constraint's one value (see `distinct`).
                let mut held = None;
                self.each(slots, binders, &mut |me, slots, g| {
                    let holds = me.under(&g, |me| match me.expr(slots, cond)? {
                        S::C(Value::Unit) => Ok(tt()),
                        v => me.to_bool(&v),
                    })?;
                    if let Some(b) = holds {
                        parts.push(implies(&g, &b));
                        if binders.is_empty() {
                            held = Some(b);
                        }
                    }
                    Ok(true)
                })?;
                if let Some(b) = held.filter(|_| self.pc.is_empty()) {
                    // Asserted as it is, on every path: an `all_different` it is makes its
                    // list known distinct.
                    let known = self.distinct_candidates.iter().find(|(r, _)| *r == b);
                    if let Some((_, key)) = known {
                        self.distinct.push(key.clone());
                    }
                }
                let c = and_all(parts);
                self.require(c);
                Ok(())
            }
            Stmt::Require { .. } | Stmt::Witness(_) | Stmt::Set(..) => {
                unsupported("generator statements in verify")
            }
        }
    }

    /// Calls `f` for every binding of the clauses with the binding's presence condition.
    /// `f` returns false to stop (a short circuit decided by a known value).
    fn each(&mut self, slots: &mut Vec<S>, cs: &[Clause], f: &mut Visit<'_, 'p>) -> R<bool> {
        self.each_from(slots, cs, tt(), f)
    }

    fn each_from(
        &mut self,
        slots: &mut Vec<S>,
        cs: &[Clause],
        g: Bool,
        f: &mut Visit<'_, 'p>,
    ) -> R<bool> {
        let Some((first, rest)) = cs.split_first() else {
            return f(self, slots, g);
        };
        match first {
            Clause::If(c) => {
                let cv = match self.under(&g, |me| me.expr(slots, c))? {
                    Some(v) => v,
                    None => return Ok(true),
                };
                match self.truth(&cv)? {
                    Truth::Known(true) => self.each_from(slots, rest, g, f),
                    Truth::Known(false) => Ok(true),
                    Truth::Sym(b) => self.each_from(slots, rest, and2(&g, &b), f),
                }
            }
            Clause::For(p, coll) => {
                let c = match self.under(&g, |me| me.expr(slots, coll))? {
                    Some(v) => v,
                    None => return Ok(true),
                };
                let (items, guard) = self.elems(&c)?;
                for (i, x) in items.into_iter().enumerate() {
                    self.tick()?;
                    let gi = match guard_at(&guard, i) {
                        None => g.clone(),
                        Some(h) => and2(&g, &h),
                    };
                    self.bind(slots, p, x)?;
                    if !self.each_from(slots, rest, gi, f)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }

    fn store(&mut self, target: S, keys: &[Key], v: S) -> R<S> {
        let Some((k, rest)) = keys.split_first() else {
            return Ok(v);
        };
        // Everything concrete: the evaluator's own store, and the value stays concrete
        // (a simulation step on concrete values, as an enumerated loop runs it, keeps its
        // state a value instead of a list of constants).
        if let (S::C(t), S::C(x)) = (&target, &v) {
            let path: Option<Vec<ops::Key>> = keys
                .iter()
                .map(|k| match k {
                    Key::Index(S::C(i)) => Some(ops::Key::Index(i.clone())),
                    Key::Index(_) => None,
                    Key::Field(f) => Some(ops::Key::Field(f.clone())),
                    Key::Tuple(i) => Some(ops::Key::Tuple(*i)),
                })
                .collect();
            if let Some(path) = path {
                let mut t = t.clone();
                self.rt(ops::store_at(&mut t, &path, x.clone()))?;
                return Ok(S::C(t));
            }
        }
        match k {
            Key::Index(i) => {
                if let S::C(Value::Map(_)) = target {
                    // Concrete keys and values were stored above.
                    return unsupported(match i {
                        S::C(_) => "storing an answer-dependent value in a map",
                        _ => "a map updated with answer-dependent keys",
                    });
                }
                let Some((mut items, guard)) = self.list_parts(&target) else {
                    return unsupported(format!("indexed assignment into {}", kind(&target)));
                };
                let i = &match i {
                    S::OneHot(alts) => S::I(self.one_hot_int(alts)),
                    other => other.clone(),
                };
                let n = items.len() as i64;
                match i {
                    S::C(Value::Int(k)) => {
                        if *k < 0 || *k >= n {
                            return self.dead();
                        }
                        if let Guard::Prefix(l) = &guard {
                            let inside = l.gt(int(*k));
                            self.require(inside);
                        }
                        let k = *k as usize;
                        let cur = items[k].clone();
                        items[k] = self.store(cur, rest, v)?;
                    }
                    S::I(k) => {
                        let len = len_term(&items, &guard)?;
                        let inside = and2(&k.ge(int(0)), &k.lt(&len));
                        self.require(inside);
                        for (j, item) in items.iter_mut().enumerate() {
                            let hit = k.eq(int(j as i64));
                            let updated = self.store(item.clone(), rest, v.clone())?;
                            *item = self.merge(&hit, updated, item.clone())?;
                        }
                    }
                    _ => return self.dead(),
                }
                Ok(S::List(Rc::new(items), guard))
            }
            Key::Field(f) => {
                let Some(mut fs) = self.record_parts(&target) else {
                    return self.dead();
                };
                let Some(slot) = fs.iter_mut().find(|(k, _)| **k == **f) else {
                    return self.dead();
                };
                slot.1 = self.store(slot.1.clone(), rest, v)?;
                Ok(S::Record(Rc::new(fs)))
            }
            Key::Tuple(i) => {
                let Some(mut parts) = self.tuple_parts(&target) else {
                    return self.dead();
                };
                if *i >= parts.len() {
                    return self.dead();
                }
                parts[*i] = self.store(parts[*i].clone(), rest, v)?;
                Ok(S::Tuple(Rc::new(parts)))
            }
        }
    }

    pub fn expr(&mut self, slots: &mut Vec<S>, e: &Expr) -> R<S> {
        self.tick()?;
        match e {
            Expr::Lit(l) => Ok(S::C(l.value())),
            Expr::Local(s) => match &slots[*s as usize] {
                S::Poison(why) => unsupported(why.to_string()),
                v => Ok(v.clone()),
            },
            Expr::Tuple(v) => {
                let parts = v
                    .iter()
                    .map(|e| self.expr(slots, e))
                    .collect::<R<Vec<_>>>()?;
                Ok(concrete_or(parts, Value::tuple, |p| S::Tuple(Rc::new(p))))
            }
            Expr::List(v) => {
                let parts = v
                    .iter()
                    .map(|e| self.expr(slots, e))
                    .collect::<R<Vec<_>>>()?;
                Ok(concrete_or(parts, Value::list, |p| {
                    S::List(Rc::new(p), Guard::All)
                }))
            }
            Expr::Record(fs) => {
                let mut out = Vec::with_capacity(fs.len());
                for (n, e) in fs {
                    out.push((Rc::<str>::from(n.as_str()), self.expr(slots, e)?));
                }
                // Evaluated in written order, stored in name order.
                out.sort_by(|a, b| a.0.cmp(&b.0));
                if out.iter().all(|(_, v)| matches!(v, S::C(_))) {
                    let vals = out
                        .into_iter()
                        .map(|(k, v)| match v {
                            S::C(v) => (k, v),
                            _ => unreachable!("checked concrete"),
                        })
                        .collect();
                    return Ok(S::C(Value::Record(Rc::new(vals))));
                }
                Ok(S::Record(Rc::new(out)))
            }
            Expr::Comprehension(cs, elem) => {
                let mut items = Vec::new();
                let mut guards = Vec::new();
                self.each(slots, cs, &mut |me, slots, g| {
                    if let Some(v) = me.under(&g, |me| me.expr(slots, elem))? {
                        if items.len() >= ops::MAX_COLLECTION {
                            return Err(Halt::Budget);
                        }
                        items.push(v);
                        guards.push(g);
                    } else {
                        // The element certainly errors when present (recorded), so it is
                        // never present in a valid answer's evaluation.
                        items.push(S::C(Value::Unit));
                        guards.push(Bool::from_bool(false));
                    }
                    Ok(true)
                })?;
                if guards.iter().all(|g| g.as_bool() == Some(true)) {
                    Ok(concrete_or(items, Value::list, |p| {
                        S::List(Rc::new(p), Guard::All)
                    }))
                } else {
                    Ok(S::List(Rc::new(items), Guard::Each(Rc::new(guards))))
                }
            }
            Expr::Quant {
                forall,
                clauses,
                body,
            } => {
                let forall = *forall;
                // `decided` is the condition under which an earlier binding already decided
                // the result (short circuit): later bodies run only when it is false.
                let mut decided = Bool::from_bool(false);
                self.each(slots, clauses, &mut |me, slots, g| {
                    let run = and2(&g, &not(&decided));
                    if let Some(v) = me.under(&run, |me| me.expr(slots, body))? {
                        let b = me.to_bool(&v)?;
                        let hit = if forall { not(&b) } else { b };
                        decided = or2(&decided, &and2(&run, &hit));
                    }
                    Ok(decided.as_bool() != Some(true))
                })?;
                Ok(bool_s(if forall { not(&decided) } else { decided }))
            }
            Expr::Range { lo, hi, inclusive } => {
                let (l, h) = (self.expr(slots, lo)?, self.expr(slots, hi)?);
                match (l, h) {
                    (S::C(Value::Int(l)), S::C(Value::Int(h))) => {
                        let r = ops::range(l, h, *inclusive);
                        Ok(S::C(self.rt(r)?))
                    }
                    _ => unsupported("a range whose bounds depend on the answer"),
                }
            }
            Expr::Unary(op, x) => {
                let v = self.expr(slots, x)?;
                match (op, v) {
                    (UnOp::Neg, S::C(v)) => {
                        let r = ops::neg(&v);
                        Ok(S::C(self.rt(r)?))
                    }
                    (UnOp::Neg, S::I(x)) => Ok(self.int_result(x.unary_minus())),
                    (UnOp::Neg, v @ S::OneHot(_)) => {
                        let zero = S::C(Value::Int(0));
                        let sub = |a: i64, b: i64| ops::arith('-', &Value::Int(a), &Value::Int(b));
                        if let Some(r) = self.one_hot_op(&zero, &v, sub)? {
                            return Ok(r);
                        }
                        let x = self.int_of(&v)?.expect("one-hot is an int");
                        Ok(self.int_result(x.unary_minus()))
                    }
                    (UnOp::Not, v) => Ok(match self.truth(&v)? {
                        Truth::Known(b) => S::C(Value::Bool(!b)),
                        Truth::Sym(b) => S::B(b.not()),
                    }),
                    (_, v) => unsupported(format!("negating {}", kind(&v))),
                }
            }
            Expr::Binary(op, a, b, _) => self.binary(slots, *op, a, b),
            Expr::Call(Callee::Fn(i), args, _) => {
                // The program outlives the lowering: the body is borrowed, not copied
                // (a copy per call was a sixth of an enumerated water_jugs proof).
                let prog = self.prog;
                let f = &prog.fns[*i];
                let mut frame = vec![S::C(Value::Unit); f.slots as usize];
                for (slot, e) in frame.iter_mut().zip(args) {
                    *slot = self.expr(slots, e)?;
                }
                self.block(&mut frame, &f.body)
            }
            Expr::Call(Callee::Builtin(name), args, _) => {
                let vals = args
                    .iter()
                    .map(|e| self.expr(slots, e))
                    .collect::<R<Vec<_>>>()?;
                let Some(b) = Builtin::from_name(name) else {
                    return unsupported(format!("unknown builtin `{name}`"));
                };
                self.builtin(b, vals)
            }
            Expr::Index(a, i, _) => {
                let (a, i) = (self.expr(slots, a)?, self.expr(slots, i)?);
                self.index(a, i)
            }
            Expr::Field(a, f) => {
                let v = self.expr(slots, a)?;
                match &v {
                    S::C(c) => {
                        let r = ops::field(c, f);
                        Ok(S::C(self.rt(r)?))
                    }
                    S::Record(fs) => match fs.iter().find(|(k, _)| **k == **f) {
                        Some((_, x)) => Ok(x.clone()),
                        None => self.dead(),
                    },
                    other => unsupported(format!("field of {}", kind(other))),
                }
            }
            Expr::TupleField(a, i) => {
                let v = self.expr(slots, a)?;
                match self.tuple_parts(&v) {
                    Some(p) if *i < p.len() => Ok(p[*i].clone()),
                    Some(_) => self.dead(),
                    None if matches!(v, S::C(_)) => self.dead(),
                    None => unsupported(format!("tuple field of {}", kind(&v))),
                }
            }
            Expr::If(c, t, e) => {
                let cv = self.expr(slots, c)?;
                let run = |me: &mut Self, slots: &mut Vec<S>, b: Option<&Block>| -> R<S> {
                    match b {
                        Some(b) => {
                            // Blocks inside expressions get their own copy of the frame:
                            // only `let`s happen inside, and they must not leak.
                            let mut local = slots.clone();
                            me.block(&mut local, b)
                        }
                        None => Ok(S::C(Value::Unit)),
                    }
                };
                match self.truth(&cv)? {
                    Truth::Known(true) => run(self, slots, Some(t)),
                    Truth::Known(false) => run(self, slots, e.as_ref()),
                    Truth::Sym(g) => {
                        let tv = self.under(&g, |me| run(me, slots, Some(t)))?;
                        let ev = self.under(&not(&g), |me| run(me, slots, e.as_ref()))?;
                        match (tv, ev) {
                            (Some(a), Some(b)) => self.merge(&g, a, b),
                            (Some(a), None) => Ok(a),
                            (None, Some(b)) => Ok(b),
                            (None, None) => Err(Halt::Dead),
                        }
                    }
                }
            }
            Expr::Str(_) => unsupported("string templates in verify outside messages"),
        }
    }

    fn binary(&mut self, slots: &mut Vec<S>, op: BinOp, a: &Expr, b: &Expr) -> R<S> {
        let x = self.expr(slots, a)?;
        if matches!(op, BinOp::And | BinOp::Or | BinOp::Implies) {
            let xa = self.truth(&x)?;
            // The left value that decides the result without the right operand, and the
            // result it decides: `false and _`, `true or _`, `false implies _`.
            let (decides, result) = match op {
                BinOp::And => (false, false),
                BinOp::Or => (true, true),
                _ => (false, true),
            };
            return match xa {
                Truth::Known(v) if v == decides => Ok(S::C(Value::Bool(result))),
                Truth::Known(_) => {
                    let y = self.expr(slots, b)?;
                    let yb = self.to_bool(&y)?;
                    Ok(bool_s(yb))
                }
                Truth::Sym(c) => {
                    let run_if = if decides { not(&c) } else { c.clone() };
                    let y = self.under(&run_if, |me| me.expr(slots, b))?;
                    let yb = match y {
                        Some(y) => self.to_bool(&y)?,
                        None => Bool::from_bool(false),
                    };
                    Ok(bool_s(match op {
                        BinOp::And => and2(&c, &yb),
                        BinOp::Or => or2(&c, &yb),
                        _ => or2(&not(&c), &yb),
                    }))
                }
            };
        }
        let y = self.expr(slots, b)?;
        if let (S::C(p), S::C(q)) = (&x, &y) {
            let r = match op {
                BinOp::Add => ops::add(p, q),
                BinOp::Sub => ops::arith('-', p, q),
                BinOp::Mul => ops::arith('*', p, q),
                BinOp::Div => ops::arith('/', p, q),
                BinOp::Rem => ops::arith('%', p, q),
                BinOp::Eq => Ok(Value::Bool(p == q)),
                BinOp::Ne => Ok(Value::Bool(p != q)),
                BinOp::Lt => Ok(Value::Bool(p < q)),
                BinOp::Le => Ok(Value::Bool(p <= q)),
                BinOp::Gt => Ok(Value::Bool(p > q)),
                BinOp::Ge => Ok(Value::Bool(p >= q)),
                BinOp::In => ops::contains(q, p).map(Value::Bool),
                BinOp::And | BinOp::Or | BinOp::Implies => unreachable!("handled above"),
            };
            return Ok(S::C(self.rt(r)?));
        }
        if let Some(b) = self.pb_compare(op, &x, &y) {
            return Ok(bool_s(b));
        }
        match op {
            BinOp::Eq => Ok(bool_s(self.eq(&x, &y)?)),
            BinOp::Ne => Ok(bool_s(not(&self.eq(&x, &y)?))),
            BinOp::In => Ok(bool_s(self.contains(&y, &x)?)),
            BinOp::Add if self.list_parts(&x).is_some() => {
                let (Some((mut p, gp)), Some((q, gq))) = (self.list_parts(&x), self.list_parts(&y))
                else {
                    return unsupported("adding a list and a non-list");
                };
                if !matches!((gp, gq), (Guard::All, Guard::All)) {
                    return unsupported("concatenating lists whose length depends on the answer");
                }
                p.extend(q);
                Ok(S::List(Rc::new(p), Guard::All))
            }
            _ => {
                let case = |a: i64, b: i64| -> resyn_runtime::RtResult<Value> {
                    let (a, b) = (Value::Int(a), Value::Int(b));
                    match op {
                        BinOp::Add => ops::add(&a, &b),
                        BinOp::Sub => ops::arith('-', &a, &b),
                        BinOp::Mul => ops::arith('*', &a, &b),
                        BinOp::Div => ops::arith('/', &a, &b),
                        BinOp::Rem => ops::arith('%', &a, &b),
                        BinOp::Lt => Ok(Value::Bool(a < b)),
                        BinOp::Le => Ok(Value::Bool(a <= b)),
                        BinOp::Gt => Ok(Value::Bool(a > b)),
                        BinOp::Ge => Ok(Value::Bool(a >= b)),
                        _ => Ok(Value::Unit),
                    }
                };
                if let Some(r) = self.one_hot_op(&x, &y, case)? {
                    return Ok(r);
                }
                let (Some(p), Some(q)) = (self.int_of(&x)?, self.int_of(&y)?) else {
                    return unsupported(format!("`{op:?}` on {} and {}", kind(&x), kind(&y)));
                };
                Ok(match op {
                    BinOp::Add => self.int_result(Int::add(&[p, q])),
                    BinOp::Sub => self.int_result(Int::sub(&[p, q])),
                    BinOp::Mul => {
                        let big = |x: &Int| x.as_i64().is_some_and(|v| v.unsigned_abs() >= 2);
                        self.scaled |= big(&p) || big(&q);
                        self.int_result(Int::mul(&[p, q]))
                    }
                    BinOp::Div | BinOp::Rem => {
                        // Euclidean, like the evaluator: SMT-LIB `div`/`mod` are exactly
                        // that (0 <= r < |d|). Division by zero is an error.
                        let nz = q.eq(int(0)).not();
                        self.require(nz);
                        if op == BinOp::Div {
                            self.int_result(p.div(&q))
                        } else {
                            S::I(p.modulo(&q))
                        }
                    }
                    BinOp::Lt => bool_s(p.lt(&q)),
                    BinOp::Le => bool_s(p.le(&q)),
                    BinOp::Gt => bool_s(p.gt(&q)),
                    BinOp::Ge => bool_s(p.ge(&q)),
                    _ => return unsupported(format!("`{op:?}` on ints")),
                })
            }
        }
    }

    fn contains(&mut self, coll: &S, x: &S) -> R<Bool> {
        if let S::Map(entries) = coll {
            let mut terms = Vec::with_capacity(entries.len());
            for (k, p, _) in entries.iter() {
                let e = self.eq(x, &S::C(k.clone()))?;
                terms.push(and2(&e, p));
            }
            return Ok(or_all(terms));
        }
        if let S::C(Value::Map(m)) = coll {
            let keys: Vec<S> = m.keys().cloned().map(S::C).collect();
            let terms = keys.iter().map(|k| self.eq(x, k)).collect::<R<Vec<_>>>()?;
            return Ok(or_all(terms));
        }
        let (items, guard) = self.elems(coll)?;
        let mut terms = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let e = self.eq(x, item)?;
            terms.push(match guard_at(&guard, i) {
                None => e,
                Some(g) => and2(&g, &e),
            });
        }
        Ok(or_all(terms))
    }

    fn index(&mut self, a: S, i: S) -> R<S> {
        if let (S::C(c), S::C(k)) = (&a, &i) {
            let r = ops::index(c, k);
            return Ok(S::C(self.rt(r)?));
        }
        if let S::Map(entries) = &a {
            // A map answer looked up: the key must be present (natively a missing key is
            // an error); the value is chosen among the entries the key can equal.
            let entries = entries.clone();
            let mut present = Vec::new();
            let mut out: Option<S> = None;
            for (k, p, v) in entries.iter().rev() {
                let hit = self.eq(&i, &S::C(k.clone()))?;
                if hit.as_bool() == Some(false) {
                    continue;
                }
                present.push(and2(&hit, p));
                out = Some(match out {
                    None => v.clone(),
                    Some(rest) => self.merge(&hit, v.clone(), rest)?,
                });
            }
            self.require(or_all(present));
            return match out {
                Some(v) => Ok(v),
                None => self.dead(),
            };
        }
        if let S::C(Value::Map(m)) = &a {
            // A concrete map looked up with an answer-dependent key.
            let pairs: Vec<(Value, Value)> =
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let mut hits = Vec::new();
            let mut out: Option<S> = None;
            for (k, v) in pairs.into_iter().rev() {
                let hit = self.eq(&i, &S::C(k))?;
                hits.push(hit.clone());
                out = Some(match out {
                    None => S::C(v),
                    Some(rest) => self.merge(&hit, S::C(v), rest)?,
                });
            }
            self.require(or_all(hits));
            return match out {
                Some(v) => Ok(v),
                None => self.dead(),
            };
        }
        let Some((items, guard)) = self.list_parts(&a) else {
            return unsupported(format!("indexing {}", kind(&a)));
        };
        if matches!(guard, Guard::Each(_)) {
            return unsupported("indexing a list filtered by an answer-dependent condition");
        }
        if let S::OneHot(alts) = &i {
            let alts = alts.clone();
            let mut inside = Vec::new();
            let mut out: Option<S> = None;
            for (v, b) in alts.iter().rev() {
                let Ok(k) = usize::try_from(*v) else { continue };
                let Some(item) = items.get(k) else { continue };
                let present = match guard_at(&guard, k) {
                    None => b.clone(),
                    Some(g) => and2(b, &g),
                };
                inside.push(present);
                out = Some(match out {
                    None => item.clone(),
                    Some(rest) => self.merge(b, item.clone(), rest)?,
                });
            }
            self.require(or_all(inside));
            return match out {
                Some(v) => Ok(v),
                None => self.dead(),
            };
        }
        match &i {
            S::C(Value::Int(k)) => {
                if *k < 0 || *k >= items.len() as i64 {
                    return self.dead();
                }
                if let Guard::Prefix(l) = &guard {
                    let inside = l.gt(int(*k));
                    self.require(inside);
                }
                Ok(items[*k as usize].clone())
            }
            S::I(k) => {
                let len = len_term(&items, &guard)?;
                let inside = and2(&k.ge(int(0)), &k.lt(&len));
                self.require(inside);
                let mut out: Option<S> = None;
                for (j, item) in items.into_iter().enumerate().rev() {
                    out = Some(match out {
                        None => item,
                        Some(rest) => {
                            let hit = k.eq(int(j as i64));
                            self.merge(&hit, item, rest)?
                        }
                    });
                }
                match out {
                    Some(v) => Ok(v),
                    None => self.dead(),
                }
            }
            _ => self.dead(),
        }
    }

    fn builtin(&mut self, b: Builtin, args: Vec<S>) -> R<S> {
        if args.iter().all(|a| matches!(a, S::C(_))) {
            let vals: Vec<Value> = args
                .into_iter()
                .map(|a| match a {
                    S::C(v) => v,
                    _ => unreachable!("checked concrete"),
                })
                .collect();
            let r = ops::call_builtin(b, &vals, None);
            return Ok(S::C(self.rt(r)?));
        }
        let arg = |i: usize| args.get(i).cloned().unwrap_or(S::C(Value::Unit));
        match b {
            Builtin::Len => {
                let (items, guard) = self.elems(&arg(0))?;
                Ok(match guard {
                    Guard::All => S::C(Value::Int(items.len() as i64)),
                    Guard::Prefix(l) => S::I(l),
                    Guard::Each(gs) => S::I(count_true(&gs)),
                })
            }
            Builtin::Abs => {
                let zero = S::C(Value::Int(0));
                if let Some(r) = self.one_hot_op(&arg(0), &zero, |a, _| {
                    ops::call_builtin(Builtin::Abs, &[Value::Int(a)], None)
                })? {
                    return Ok(r);
                }
                let Some(x) = self.int_of(&arg(0))? else {
                    return unsupported("abs of a non-int");
                };
                let neg = x.lt(int(0));
                let r = neg.ite(&x.unary_minus(), &x);
                Ok(self.int_result(r))
            }
            Builtin::Min | Builtin::Max => {
                let items: Vec<S> = if args.len() == 2 {
                    vec![arg(0), arg(1)]
                } else {
                    let (items, guard) = self.elems(&arg(0))?;
                    if !matches!(guard, Guard::All) {
                        return unsupported("min/max of a list whose length depends on the answer");
                    }
                    if items.is_empty() {
                        return self.dead();
                    }
                    items
                };
                let mut acc = items[0].clone();
                for x in &items[1..] {
                    let pick = |a: i64, c: i64| {
                        Ok(Value::Int(if b == Builtin::Min {
                            a.min(c)
                        } else {
                            a.max(c)
                        }))
                    };
                    if let Some(r) = self.one_hot_op(&acc, x, pick)? {
                        acc = r;
                        continue;
                    }
                    let (Some(p), Some(q)) = (self.int_of(&acc)?, self.int_of(x)?) else {
                        return unsupported("min/max of non-ints over the answer");
                    };
                    let pick = if b == Builtin::Min {
                        q.lt(&p)
                    } else {
                        q.gt(&p)
                    };
                    acc = S::I(ite_int(&pick, &q, &p));
                }
                Ok(acc)
            }
            Builtin::Sum => {
                let (items, guard) = self.elems(&arg(0))?;
                // Numbers picked by answer bools (a subset sum): a linear sum. One-hot
                // items stay on the Int path: as PB terms they made magic squares
                // slower (spec/proofs.md §2).
                let terms: Option<Vec<(Bool, i64)>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| match x {
                        S::C(Value::Int(v)) => Some((guard_at(&guard, i).unwrap_or_else(tt), *v)),
                        _ => None,
                    })
                    .collect();
                if let (Some(terms), false) = (terms, matches!(guard, Guard::All)) {
                    if let Some(r) = self.linear_sum(terms) {
                        return Ok(r);
                    }
                }
                let mut acc = int(0);
                for (i, x) in items.iter().enumerate() {
                    let Some(v) = self.int_of(x)? else {
                        return unsupported("a sum of non-ints over the answer");
                    };
                    let term = match guard_at(&guard, i) {
                        None => v,
                        Some(g) => ite_int(&g, &v, &int(0)),
                    };
                    acc = Int::add(&[acc, term]);
                    if let S::I(t) = self.int_result(acc.clone()) {
                        acc = t;
                    }
                }
                Ok(self.int_result(acc))
            }
            Builtin::Count => {
                let (items, guard) = self.elems(&arg(0))?;
                let x = arg(1);
                let mut hits = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let e = self.eq(item, &x)?;
                    hits.push(match guard_at(&guard, i) {
                        None => e,
                        Some(g) => and2(&g, &e),
                    });
                }
                let terms = hits.iter().map(|h| (h.clone(), 1)).collect();
                if let Some(r) = self.linear_sum(terms) {
                    return Ok(r);
                }
                Ok(S::I(count_true(&hits)))
            }
            Builtin::All | Builtin::Any => {
                let (items, guard) = self.elems(&arg(0))?;
                let mut terms = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let v = self.to_bool(item)?;
                    terms.push(match (guard_at(&guard, i), b == Builtin::All) {
                        (None, _) => v,
                        (Some(g), true) => g.implies(&v),
                        (Some(g), false) => and2(&g, &v),
                    });
                }
                Ok(bool_s(if b == Builtin::All {
                    and_all(terms)
                } else {
                    or_all(terms)
                }))
            }
            Builtin::AllDifferent => {
                let (items, guard) = self.elems(&arg(0))?;
                let literal = items
                    .iter()
                    .all(|x| matches!(x, S::OneHot(..) | S::Union(..) | S::C(_)))
                    && items
                        .iter()
                        .any(|x| matches!(x, S::OneHot(..) | S::Union(..)));
                if matches!(guard, Guard::All) && literal {
                    // Per value, no two cells take it: pairwise clauses over the literals
                    // that give cells the value (pure clauses: the encoding the wrong-UNSAT
                    // study found sound). One-hot ints and choices (strings, enums) alike;
                    // a choice may list a value twice, under two literals. For choices this
                    // replaced "not (cell i = cell j)" per pair of cells, a negated
                    // disjunction of conjunctions: dependency_sort proofs 10% fewer
                    // instructions.
                    let key = list_key(&items).expect("checked one-hot, choice or constant");
                    let mut by_value: std::collections::BTreeMap<&Value, Vec<(usize, &Bool)>> =
                        Default::default();
                    for (cell, alts) in key.iter().enumerate() {
                        for (v, b) in alts {
                            by_value.entry(v).or_default().push((cell, b));
                        }
                    }
                    let mut terms = Vec::new();
                    for lits in by_value.values() {
                        for (i, (ci, a)) in lits.iter().enumerate() {
                            for (cj, b) in &lits[i + 1..] {
                                if ci != cj {
                                    terms.push(or2(&not(a), &not(b)));
                                }
                            }
                        }
                    }
                    let all = and_all(terms);
                    self.distinct_candidates.push((all.clone(), key));
                    return Ok(bool_s(all));
                }
                if matches!(guard, Guard::All) {
                    let ints: Option<Vec<Int>> = items
                        .iter()
                        .map(|x| self.int_of(x).ok().flatten())
                        .collect();
                    if let Some(ints) = ints {
                        if ints.len() < 2 {
                            return Ok(S::C(Value::Bool(true)));
                        }
                        return Ok(S::B(Int::distinct(&ints)));
                    }
                }
                let mut terms = Vec::new();
                for i in 0..items.len() {
                    for j in i + 1..items.len() {
                        let e = self.eq(&items[i], &items[j])?;
                        let both = match (guard_at(&guard, i), guard_at(&guard, j)) {
                            (None, None) => tt(),
                            (Some(g), None) | (None, Some(g)) => g,
                            (Some(g), Some(h)) => and2(&g, &h),
                        };
                        terms.push(both.implies(not(&e)));
                    }
                }
                Ok(bool_s(and_all(terms)))
            }
            Builtin::IsPermutation => {
                let (xs, gx) = self.elems(&arg(0))?;
                let (ys, gy) = self.elems(&arg(1))?;
                if !matches!((&gx, &gy), (Guard::All, Guard::All)) {
                    return unsupported(
                        "is_permutation of lists whose length depends on the answer",
                    );
                }
                if xs.len() != ys.len() {
                    return Ok(S::C(Value::Bool(false)));
                }
                // Same length and, for every distinct value of the second list, the same
                // number of occurrences: then the first list has no other values either.
                let (targets, other) = match ys.iter().all(|y| matches!(y, S::C(_))) {
                    true => (ys, xs),
                    false if xs.iter().all(|x| matches!(x, S::C(_))) => (xs, ys),
                    false => return unsupported("is_permutation of two answer-dependent lists"),
                };
                let mut distinct: Vec<Value> = Vec::new();
                for t in &targets {
                    if let S::C(v) = t {
                        if !distinct.contains(v) {
                            distinct.push(v.clone());
                        }
                    }
                }
                let mut terms = Vec::new();
                for v in distinct {
                    let want = targets
                        .iter()
                        .filter(|t| matches!(t, S::C(w) if *w == v))
                        .count();
                    let hits = other
                        .iter()
                        .map(|o| self.eq(o, &S::C(v.clone())))
                        .collect::<R<Vec<_>>>()?;
                    terms.push(count_true(&hits).eq(int(want as i64)));
                }
                Ok(bool_s(and_all(terms)))
            }
            Builtin::IndexOf => {
                let (items, guard) = self.elems(&arg(0))?;
                if matches!(guard, Guard::Each(_)) {
                    return unsupported("index_of in a filtered answer-dependent list");
                }
                let x = arg(1);
                if self.one_hot && items.len() < ONE_HOT_VALUES {
                    // One-hot: position i when the item there is the first hit, -1 when
                    // none is; comparisons of positions then split into clauses.
                    let mut alts: Vec<(i64, Bool)> = Vec::with_capacity(items.len() + 1);
                    let mut none_before = Bool::from_bool(true);
                    // At most one item of a distinct list can be `x`, so its hit is
                    // the first one.
                    let distinct = matches!(guard, Guard::All)
                        && !self.distinct.is_empty()
                        && list_key(&items).is_some_and(|k| self.distinct.contains(&k));
                    for (i, item) in items.iter().enumerate() {
                        let e = self.eq(item, &x)?;
                        let hit = match guard_at(&guard, i) {
                            None => e,
                            Some(g) => and2(&g, &e),
                        };
                        if hit.as_bool() == Some(false) {
                            continue;
                        }
                        let first = if distinct {
                            hit.clone()
                        } else {
                            and2(&none_before, &hit)
                        };
                        alts.push((i as i64, first));
                        none_before = and2(&none_before, &not(&hit));
                        if none_before.as_bool() == Some(false) {
                            break;
                        }
                    }
                    if none_before.as_bool() != Some(false) {
                        alts.push((-1, none_before));
                    }
                    return Ok(match alts.as_slice() {
                        [(v, g)] if g.as_bool() == Some(true) => S::C(Value::Int(*v)),
                        _ => {
                            self.positions.extend(alts.iter().map(|(_, g)| g.clone()));
                            S::OneHot(Rc::new(alts))
                        }
                    });
                }
                let mut out = int(-1);
                for (i, item) in items.iter().enumerate().rev() {
                    let e = self.eq(item, &x)?;
                    let hit = match guard_at(&guard, i) {
                        None => e,
                        Some(g) => and2(&g, &e),
                    };
                    out = ite_int(&hit, &int(i as i64), &out);
                }
                Ok(match out.as_i64() {
                    Some(v) => S::C(Value::Int(v)),
                    None => S::I(out),
                })
            }
            Builtin::Enumerate => {
                let (items, guard) = self.elems(&arg(0))?;
                let pairs = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, x)| S::Tuple(Rc::new(vec![S::C(Value::Int(i as i64)), x])))
                    .collect();
                Ok(S::List(Rc::new(pairs), guard))
            }
            Builtin::Zip => {
                let (xs, gx) = self.elems(&arg(0))?;
                let (ys, gy) = self.elems(&arg(1))?;
                if !matches!((&gx, &gy), (Guard::All, Guard::All)) {
                    return unsupported("zip of lists whose length depends on the answer");
                }
                let pairs = xs
                    .into_iter()
                    .zip(ys)
                    .map(|(x, y)| S::Tuple(Rc::new(vec![x, y])))
                    .collect();
                Ok(S::List(Rc::new(pairs), Guard::All))
            }
            Builtin::Repeat => match arg(1) {
                S::C(Value::Int(n)) if (0..=ops::MAX_COLLECTION as i64).contains(&n) => {
                    Ok(S::List(Rc::new(vec![arg(0); n as usize]), Guard::All))
                }
                S::C(_) => self.dead(),
                _ => unsupported("repeat with an answer-dependent count"),
            },
            Builtin::Reversed => {
                let (mut items, guard) = self.elems(&arg(0))?;
                if !matches!(guard, Guard::All) {
                    return unsupported("reversing a list whose length depends on the answer");
                }
                items.reverse();
                Ok(S::List(Rc::new(items), Guard::All))
            }
            Builtin::Flatten => {
                let (outer, guard) = self.elems(&arg(0))?;
                if !matches!(guard, Guard::All) {
                    return unsupported("flatten of a list whose length depends on the answer");
                }
                let mut out = Vec::new();
                for x in &outer {
                    let (inner, g) = self.elems(x)?;
                    if !matches!(g, Guard::All) {
                        return unsupported("flatten of lists whose length depends on the answer");
                    }
                    out.extend(inner);
                }
                Ok(S::List(Rc::new(out), Guard::All))
            }
            Builtin::Slice => {
                let (items, guard) = self.elems(&arg(0))?;
                let (S::C(Value::Int(lo)), S::C(Value::Int(hi))) = (arg(1), arg(2)) else {
                    return unsupported("slice with answer-dependent bounds");
                };
                if !matches!(guard, Guard::All) {
                    return unsupported("slice of a list whose length depends on the answer");
                }
                let n = items.len() as i64;
                let (l, h) = (lo.clamp(0, n) as usize, hi.clamp(0, n) as usize);
                let part = if l < h {
                    items[l..h].to_vec()
                } else {
                    Vec::new()
                };
                Ok(S::List(Rc::new(part), Guard::All))
            }
            Builtin::Keys | Builtin::Values => {
                let S::Map(entries) = arg(0) else {
                    return unsupported(format!("`{}` of {}", b.name(), kind(&arg(0))));
                };
                let items = entries
                    .iter()
                    .map(|(k, _, v)| {
                        if b == Builtin::Keys {
                            S::C(k.clone())
                        } else {
                            v.clone()
                        }
                    })
                    .collect();
                let guards = entries.iter().map(|(_, p, _)| p.clone()).collect();
                Ok(S::List(Rc::new(items), Guard::Each(Rc::new(guards))))
            }
            Builtin::Get => {
                let S::Map(entries) = arg(0) else {
                    return unsupported(format!("`get` on {}", kind(&arg(0))));
                };
                let (key, default) = (arg(1), arg(2));
                let mut out = default;
                for (k, p, v) in entries.iter().rev() {
                    let hit = and2(&self.eq(&key, &S::C(k.clone()))?, p);
                    out = self.merge(&hit, v.clone(), out)?;
                }
                Ok(out)
            }
            other => unsupported(format!(
                "`{}` applied to answer-dependent values",
                other.name()
            )),
        }
    }
}

enum Key {
    Index(S),
    Field(String),
    Tuple(usize),
}

/// Answer ints and string or enum choices with at most this many values are one-hot
/// encoded (a literal per value) rather than an `Int`; see spec/proofs.md §2 for the
/// measurement.
pub const ONE_HOT_MAX: usize = 16;

/// Most value pairs a case split of arithmetic or order on one-hot ints may have
/// ([`Lowering::one_hot_op`]), and most values its result may take.
const ONE_HOT_PAIRS: usize = 1024;
const ONE_HOT_VALUES: usize = 64;

fn small_domain(d: &Domain) -> Option<Vec<i64>> {
    let values: Vec<i64> = match d {
        Domain::Range { lo, hi } => {
            let n = hi.checked_sub(*lo)?;
            if n < 0 || n as usize >= ONE_HOT_MAX {
                return None;
            }
            (*lo..=*hi).collect()
        }
        Domain::Values(vs) => {
            let ints = domain_ints(vs);
            if ints.is_empty() || ints.len() > ONE_HOT_MAX {
                return None;
            }
            ints
        }
        Domain::Any => return None,
    };
    Some(values)
}

/// The ints of an int domain given as values (the decoder only builds int values there).
fn domain_ints(vs: &std::collections::BTreeSet<Value>) -> Vec<i64> {
    vs.iter()
        .filter_map(|v| match v {
            Value::Int(i) => Some(*i),
            _ => None,
        })
        .collect()
}

/// Every value of a scalar shape with a finite domain, ascending (map answer keys).
fn finite_values(shape: &Shape) -> Option<Vec<Value>> {
    const MAX_KEYS: usize = 10_000;
    let mut vals: Vec<Value> = match shape {
        Shape::Bool => vec![Value::Bool(false), Value::Bool(true)],
        Shape::Int {
            domain: Domain::Range { lo, hi },
        } => {
            let n = hi.checked_sub(*lo)?;
            if n < 0 || n as usize >= MAX_KEYS {
                return None;
            }
            (*lo..=*hi).map(Value::Int).collect()
        }
        Shape::Int {
            domain: Domain::Values(vs),
        }
        | Shape::Str {
            domain: Domain::Values(vs),
        } => vs.iter().cloned().collect(),
        Shape::Enum { variants } => variants
            .iter()
            .enumerate()
            .map(|(i, n)| Value::Enum(i as u32, Rc::from(n.as_str())))
            .collect(),
        _ => return None,
    };
    vals.sort();
    (vals.len() <= MAX_KEYS).then_some(vals)
}

/// A list's items as the lowering sees them: per item, its values with their conditions.
/// Two lists with equal keys are the same list in every model.
pub type ListKey = Vec<Vec<(Value, Bool)>>;

/// The key of a list of one-hot ints, choices and constants; `None` for any other item.
fn list_key(items: &[S]) -> Option<ListKey> {
    items
        .iter()
        .map(|x| match x {
            S::B(_) => None,
            x => value_alts(x),
        })
        .collect()
}

/// The outcomes of an enumerated loop's steps by (state, element key), as ids of an
/// [`Interner`]: only looked up, never iterated, so hash order cannot reach the formula.
type StepCache = HashMap<(u32, u32), Option<u32>, foldhash::fast::FixedState>;

/// Ids for value lists, in the order first met (foldhash: SipHash on values was a tenth
/// of an enumerated water_jugs proof).
#[derive(Default)]
struct Interner {
    ids: HashMap<Vec<Value>, u32, foldhash::fast::FixedState>,
    values: Vec<Vec<Value>>,
}

impl Interner {
    fn id(&mut self, v: Vec<Value>) -> u32 {
        if let Some(&id) = self.ids.get(&v) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(v.clone());
        self.ids.insert(v, id);
        id
    }
}

/// The values `x` binds to the pattern's slots that are `keyed` (read beyond messages),
/// in [`Pattern::slots`] order; the whole value where it does not destructure (its step
/// then fails, whatever the key).
fn keyed_values(p: &Pattern, keyed: &[bool], x: &Value) -> Vec<Value> {
    fn parts(p: &Pattern, x: &Value, out: &mut Vec<Value>) -> bool {
        match (p, x) {
            (Pattern::Bind(_), _) => {
                out.push(x.clone());
                true
            }
            (Pattern::Wild, _) => true,
            (Pattern::Tuple(ps), Value::Tuple(xs)) if ps.len() == xs.len() => {
                ps.iter().zip(xs.iter()).all(|(p, x)| parts(p, x, out))
            }
            _ => false,
        }
    }
    let mut all = Vec::new();
    if !parts(p, x, &mut all) {
        return vec![x.clone()];
    }
    all.into_iter()
        .zip(keyed)
        .filter(|(_, k)| **k)
        .map(|(v, _)| v)
        .collect()
}

/// Loop steps ((state, choice) pairs) one enumerated loop may run before it falls back
/// to the symbolic lowering.
const STATE_PAIRS: usize = 65_536;
/// States one step of an enumerated loop may reach.
const STATE_MAX: usize = 4096;
/// Pairs the next step of an enumerated loop may have before the current step must show
/// that its pairs merge (at most three quarters of them reaching distinct states).
const SPREAD_FROM: usize = 64;
/// Concrete values one element of an enumerated loop's list may take.
const ELEM_CHOICES: usize = 64;

/// The concrete values `s` can take, each with its condition as a literal of circuit `c`
/// (exactly one holds): answer choices (one-hot ints, unions, bools) and tuples and
/// records of them; at most `cap`. The conditions of a tuple's or record's values are
/// gates of `c` over its parts' conditions (water_jugs: 27 actions a step, from 9 field
/// literals, without a Z3 term each).
fn choices(s: &S, cap: usize, c: &mut crate::circuit::Circuit) -> Option<Vec<(CLit, Value)>> {
    let mut product = |parts: Vec<&S>| -> Option<Vec<(CLit, Vec<Value>)>> {
        let mut acc = vec![(CLit::TRUE, Vec::new())];
        for part in parts {
            let cs = choices(part, cap, c)?;
            if acc.len() * cs.len() > cap {
                return None;
            }
            let mut next = Vec::with_capacity(acc.len() * cs.len());
            for (g, vs) in &acc {
                for (h, v) in &cs {
                    let mut w = vs.clone();
                    w.push(v.clone());
                    next.push((c.and(vec![*g, *h]), w));
                }
            }
            acc = next;
        }
        Some(acc)
    };
    match s {
        S::Tuple(parts) => Some(
            product(parts.iter().collect())?
                .into_iter()
                .map(|(g, vs)| (g, Value::tuple(vs)))
                .collect(),
        ),
        S::Record(fields) => Some(
            product(fields.iter().map(|(_, v)| v).collect())?
                .into_iter()
                .map(|(g, vs)| {
                    let named = fields.iter().map(|(k, _)| k.clone()).zip(vs).collect();
                    (g, Value::record(named))
                })
                .collect(),
        ),
        other => {
            let alts = value_alts(other)?;
            (alts.len() <= cap).then(|| alts.into_iter().map(|(v, g)| (c.leaf(&g), v)).collect())
        }
    }
}

/// One value from concrete alternatives whose conditions partition the models: equal
/// values stay concrete, ints become one-hot, bools the disjunction of their `true`
/// cases, strings and enums a union, and lists, tuples and records part by part.
fn combine(alts: &[(Bool, Value)]) -> Option<S> {
    let first = &alts.first()?.1;
    if alts.iter().all(|(_, v)| v == first) {
        return Some(S::C(first.clone()));
    }
    let grouped = |alts: &[(Bool, Value)]| {
        let mut by: std::collections::BTreeMap<Value, Vec<Bool>> = Default::default();
        for (g, v) in alts {
            by.entry(v.clone()).or_default().push(g.clone());
        }
        by
    };
    // Part `i` of every alternative, combined (all are lists, or all tuples, of `n`).
    let parts = |n: usize| -> Option<Vec<S>> {
        (0..n)
            .map(|i| {
                let sub: Option<Vec<(Bool, Value)>> = alts
                    .iter()
                    .map(|(g, v)| nth(v, i).map(|x| (g.clone(), x)))
                    .collect();
                combine(&sub?)
            })
            .collect()
    };
    let len = |v: &Value| match v {
        Value::List(xs) => Some((false, xs.len())),
        Value::Tuple(xs) => Some((true, xs.len())),
        _ => None,
    };
    match first {
        Value::Int(_) => {
            let by = grouped(alts);
            if by.len() > ONE_HOT_VALUES {
                return None;
            }
            let mut out = Vec::with_capacity(by.len());
            for (v, gs) in by {
                let Value::Int(k) = v else { return None };
                out.push((k, or_all(gs)));
            }
            Some(S::OneHot(Rc::new(out)))
        }
        Value::Bool(_) => {
            let mut yes = Vec::new();
            for (g, v) in alts {
                match v {
                    Value::Bool(true) => yes.push(g.clone()),
                    Value::Bool(false) => {}
                    _ => return None,
                }
            }
            Some(S::B(or_all(yes)))
        }
        Value::List(_) | Value::Tuple(_) => {
            let shape = len(first);
            if !alts.iter().all(|(_, v)| len(v) == shape) {
                return None;
            }
            let (tuple, n) = shape?;
            let items = Rc::new(parts(n)?);
            Some(match tuple {
                true => S::Tuple(items),
                false => S::List(items, Guard::All),
            })
        }
        Value::Str(_) | Value::Enum(..) => {
            let by = grouped(alts);
            let out = by.into_iter().map(|(v, gs)| (or_all(gs), v)).collect();
            Some(S::Union(Rc::new(out)))
        }
        _ => None,
    }
}

/// `s` as a value, where nothing in it depends on the answer.
fn concrete(s: &S) -> Option<Value> {
    match s {
        S::C(v) => Some(v.clone()),
        S::List(items, Guard::All) => Some(Value::list(
            items.iter().map(concrete).collect::<Option<_>>()?,
        )),
        S::Tuple(parts) => Some(Value::tuple(
            parts.iter().map(concrete).collect::<Option<_>>()?,
        )),
        S::Record(fields) => Some(Value::record(
            fields
                .iter()
                .map(|(k, v)| Some((k.clone(), concrete(v)?)))
                .collect::<Option<_>>()?,
        )),
        _ => None,
    }
}

/// Part `i` of a concrete list or tuple.
fn nth(v: &Value, i: usize) -> Option<Value> {
    match v {
        Value::List(xs) | Value::Tuple(xs) => xs.get(i).cloned(),
        _ => None,
    }
}

/// A value of finitely many alternatives as `(value, condition)` pairs, exactly one of
/// which holds: a constant, a bool, a one-hot int or a choice. `None` for anything else.
pub(crate) fn value_alts(s: &S) -> Option<Vec<(Value, Bool)>> {
    Some(match s {
        S::C(v) => vec![(v.clone(), tt())],
        S::B(b) => vec![(Value::Bool(true), b.clone()), (Value::Bool(false), not(b))],
        S::OneHot(alts) => alts
            .iter()
            .map(|(v, g)| (Value::Int(*v), g.clone()))
            .collect(),
        S::Union(alts) => alts.iter().map(|(g, v)| (v.clone(), g.clone())).collect(),
        _ => return None,
    })
}

/// The int a one-hot value stands for, as a term (for arithmetic and comparisons).
fn one_hot_term(alts: &[(i64, Bool)]) -> Int {
    let mut it = alts.iter().rev();
    let Some((last, _)) = it.next() else {
        return int(0);
    };
    it.fold(int(*last), |acc, (v, b)| b.ite(&int(*v), &acc))
}

fn guard_at(g: &Guard, i: usize) -> Option<Bool> {
    match g {
        Guard::All => None,
        Guard::Prefix(l) => Some(l.gt(int(i as i64))),
        Guard::Each(v) => Some(v[i].clone()),
    }
}

fn len_term(items: &[S], g: &Guard) -> R<Int> {
    match g {
        Guard::All => Ok(int(items.len() as i64)),
        Guard::Prefix(l) => Ok(l.clone()),
        Guard::Each(_) => unsupported("indexing a filtered answer-dependent list"),
    }
}

fn count_true(bs: &[Bool]) -> Int {
    let terms: Vec<Int> = bs
        .iter()
        .map(|b| match b.as_bool() {
            Some(v) => int(i64::from(v)),
            None => b.ite(&int(1), &int(0)),
        })
        .collect();
    if terms.is_empty() {
        return int(0);
    }
    Int::add(&terms)
}

fn bool_s(b: Bool) -> S {
    match b.as_bool() {
        Some(v) => S::C(Value::Bool(v)),
        None => S::B(b),
    }
}

fn is_int(s: &S) -> bool {
    matches!(s, S::C(Value::Int(_)) | S::I(_) | S::OneHot(_))
}

fn is_boolish(s: &S) -> bool {
    matches!(s, S::B(_) | S::C(Value::Bool(_)))
}

fn is_scalar(v: &Value) -> bool {
    matches!(
        v,
        Value::Str(_) | Value::Enum(..) | Value::Float(_) | Value::Unit
    )
}

/// Cheap identity test used to skip merging untouched slots.
fn same(a: &S, b: &S) -> bool {
    match (a, b) {
        (S::C(x), S::C(y)) => x == y,
        (S::B(x), S::B(y)) => x == y,
        (S::I(x), S::I(y)) => x == y,
        (S::Tuple(x), S::Tuple(y)) => Rc::ptr_eq(x, y),
        (S::List(x, g), S::List(y, h)) => {
            Rc::ptr_eq(x, y)
                && match (g, h) {
                    (Guard::All, Guard::All) => true,
                    (Guard::Prefix(p), Guard::Prefix(q)) => p == q,
                    (Guard::Each(p), Guard::Each(q)) => Rc::ptr_eq(p, q),
                    _ => false,
                }
        }
        (S::Record(x), S::Record(y)) => Rc::ptr_eq(x, y),
        (S::Union(x), S::Union(y)) => Rc::ptr_eq(x, y),
        (S::Poison(x), S::Poison(y)) => Rc::ptr_eq(x, y),
        _ => false,
    }
}

fn kind(s: &S) -> &'static str {
    match s {
        S::C(_) => "a value",
        S::B(_) => "an answer-dependent bool",
        S::I(_) | S::OneHot(..) => "an answer-dependent int",
        S::Tuple(_) => "an answer-dependent tuple",
        S::List(..) => "an answer-dependent list",
        S::Record(_) => "an answer-dependent record",
        S::Union(_) => "an answer-dependent string or enum",
        S::Poison(_) => "a value set differently in two branches",
        S::Map(_) => "an answer-dependent map",
    }
}

/// A concrete aggregate when every part is concrete, else the symbolic one.
fn concrete_or(
    parts: Vec<S>,
    mk: impl FnOnce(Vec<Value>) -> Value,
    sym: impl FnOnce(Vec<S>) -> S,
) -> S {
    if parts.iter().all(|p| matches!(p, S::C(_))) {
        let vals = parts
            .into_iter()
            .map(|p| match p {
                S::C(v) => v,
                _ => unreachable!("checked concrete"),
            })
            .collect();
        return S::C(mk(vals));
    }
    sym(parts)
}

// ---------------------------------------------------------------------- the answer

impl Lowering<'_> {
    /// The known ranges of the unknowns declared so far, for a later lowering over the
    /// same declared answer (a cached solver lowers verify again per instance).
    pub fn declared_bounds(&self) -> &TermMap<Int, (i128, i128)> {
        &self.iv.vars
    }

    /// The lists known distinct in every model of this lowering's facts (see `distinct`).
    pub fn distinct_lists(&self) -> Vec<ListKey> {
        self.distinct.clone()
    }

    /// Starts from lists known distinct in every model of facts asserted with this
    /// lowering's (the rules of an instance's part, [`Lowering::distinct_lists`]).
    pub fn assume_distinct(&mut self, lists: Vec<ListKey>) {
        self.distinct = lists;
    }

    /// Starts from the ranges [`Lowering::declared_bounds`] gave.
    pub fn assume_bounds(&mut self, vars: TermMap<Int, (i128, i128)>) {
        self.iv.vars = vars;
    }

    /// The answer's unknowns, built from its shape; their domains become facts.
    pub fn declare(&mut self, shape: &Shape, path: &str) -> R<S> {
        let mut facts = std::mem::take(&mut self.facts);
        let one_hot = self.one_hot;
        let r = declare(shape, &mut facts, &mut self.iv.vars, one_hot, path);
        self.facts = facts;
        r
    }
}

fn declare(
    shape: &Shape,
    facts: &mut Vec<Bool>,
    bounds: &mut TermMap<Int, (i128, i128)>,
    one_hot: bool,
    path: &str,
) -> R<S> {
    Ok(match shape {
        Shape::Bool => S::B(Bool::fresh_const(path)),
        Shape::Unit => S::C(Value::Unit),
        Shape::Int { domain } => {
            if let Some(values) = small_domain(domain).filter(|_| one_hot) {
                let alts = exactly_one(values, facts, path);
                return Ok(S::OneHot(Rc::new(alts)));
            }
            let x = Int::fresh_const(path);
            let range = match domain {
                Domain::Any => (I64_MIN, I64_MAX),
                Domain::Range { lo, hi } => (*lo, *hi),
                Domain::Values(vs) => {
                    let ints = domain_ints(vs);
                    facts.push(or_all(ints.iter().map(|i| x.eq(int(*i))).collect()));
                    let lo = ints.iter().min().copied().unwrap_or(0);
                    (lo, ints.iter().max().copied().unwrap_or(lo))
                }
            };
            facts.push(x.ge(int(range.0)));
            facts.push(x.le(int(range.1)));
            bounds.insert(x.clone(), (i128::from(range.0), i128::from(range.1)));
            S::I(x)
        }
        Shape::Str {
            domain: Domain::Values(vs),
        } => choice(vs.iter().cloned().collect(), facts, bounds, one_hot, path),
        Shape::Enum { variants } => choice(
            variants
                .iter()
                .enumerate()
                .map(|(i, n)| Value::Enum(i as u32, Rc::from(n.as_str())))
                .collect(),
            facts,
            bounds,
            one_hot,
            path,
        ),
        Shape::Tuple(parts) => S::Tuple(Rc::new(
            parts
                .iter()
                .enumerate()
                .map(|(i, p)| declare(p, facts, bounds, one_hot, &format!("{path}.{i}")))
                .collect::<R<_>>()?,
        )),
        Shape::Record(fields) => {
            let mut out: Vec<(Rc<str>, S)> = fields
                .iter()
                .map(|(n, p)| {
                    Ok((
                        Rc::from(n.as_str()),
                        declare(p, facts, bounds, one_hot, &format!("{path}.{n}"))?,
                    ))
                })
                .collect::<R<_>>()?;
            out.sort_by(|a, b| a.0.cmp(&b.0));
            S::Record(Rc::new(out))
        }
        Shape::List { elem, len } => {
            let cap = match len {
                Len::Exact(n) | Len::AtMost(n) => *n,
                Len::Any => return unsupported("an answer list without a length bound"),
            };
            if cap > 100_000 {
                return unsupported(format!("an answer list of up to {cap} elements"));
            }
            let items = (0..cap)
                .map(|i| declare(elem, facts, bounds, one_hot, &format!("{path}[{i}]")))
                .collect::<R<Vec<_>>>()?;
            let guard = match len {
                Len::AtMost(_) => {
                    let l = Int::fresh_const(&format!("{path}.len"));
                    facts.push(l.ge(int(0)));
                    facts.push(l.le(int(cap as i64)));
                    bounds.insert(l.clone(), (0, cap as i128));
                    Guard::Prefix(l)
                }
                _ => Guard::All,
            };
            S::List(Rc::new(items), guard)
        }
        // A domain of scalars (enums, bools, floats) is a choice among its values.
        Shape::Member { values, .. }
            if values.iter().all(|v| {
                matches!(
                    v,
                    Value::Bool(_) | Value::Enum(..) | Value::Float(_) | Value::Unit
                )
            }) =>
        {
            choice(
                values.iter().cloned().collect(),
                facts,
                bounds,
                one_hot,
                path,
            )
        }
        Shape::Member { .. } => {
            return unsupported("an answer domain over composite values (tuples, lists, records)")
        }
        Shape::Str { .. } => return unsupported("a free-text string answer"),
        Shape::Float => return unsupported("a float answer"),
        Shape::Set(_) => return unsupported("a set answer"),
        Shape::Map(k, v) => {
            let Some(keys) = finite_values(k) else {
                return unsupported("a map answer whose keys are not from a finite domain");
            };
            let mut entries = Vec::with_capacity(keys.len());
            for key in keys {
                let present = Bool::fresh_const(&format!("{path}.has[{}]", key.display()));
                let value = declare(
                    v,
                    facts,
                    bounds,
                    one_hot,
                    &format!("{path}[{}]", key.display()),
                )?;
                entries.push((key, present, value));
            }
            S::Map(Rc::new(entries))
        }
    })
}

/// A fresh literal per value with "exactly one" as facts: one clause and pairwise
/// exclusions (pure clauses, spec/proofs.md §2).
fn exactly_one<T: std::fmt::Display>(
    values: Vec<T>,
    facts: &mut Vec<Bool>,
    path: &str,
) -> Vec<(T, Bool)> {
    let alts: Vec<(T, Bool)> = values
        .into_iter()
        .map(|v| {
            let b = Bool::fresh_const(&format!("{path}={v}"));
            (v, b)
        })
        .collect();
    facts.push(or_all(alts.iter().map(|(_, b)| b.clone()).collect()));
    for i in 0..alts.len() {
        for j in i + 1..alts.len() {
            facts.push(or2(&not(&alts[i].1), &not(&alts[j].1)));
        }
    }
    alts
}

/// One of finitely many concrete values, as a union: with the one-hot encoding and at most
/// [`ONE_HOT_MAX`] values, a literal per value (as for small ints); otherwise selected by
/// one int unknown.
fn choice(
    values: Vec<Value>,
    facts: &mut Vec<Bool>,
    bounds: &mut TermMap<Int, (i128, i128)>,
    one_hot: bool,
    path: &str,
) -> S {
    if one_hot && !values.is_empty() && values.len() <= ONE_HOT_MAX {
        let numbered = exactly_one((0..values.len()).collect(), facts, path);
        let alts = numbered
            .into_iter()
            .map(|(i, b)| (b, values[i].clone()))
            .collect();
        return S::Union(Rc::new(alts));
    }
    let k = Int::fresh_const(path);
    bounds.insert(k.clone(), (0, values.len() as i128 - 1));
    facts.push(k.ge(int(0)));
    facts.push(k.lt(int(values.len() as i64)));
    let alts = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| (k.eq(int(i as i64)), v))
        .collect();
    S::Union(Rc::new(alts))
}

/// Values of Boolean and int terms in a model: Z3's (completed: a term the formula does
/// not constrain gets a value), or the SAT back end's for the terms it bit-blasted.
pub trait Assignment {
    fn bool(&self, b: &Bool) -> Option<bool>;
    fn int(&self, x: &Int) -> Option<i64>;
}

impl Assignment for z3::Model {
    fn bool(&self, b: &Bool) -> Option<bool> {
        self.eval(b, true)?.as_bool()
    }

    fn int(&self, x: &Int) -> Option<i64> {
        self.eval(x, true)?.as_i64()
    }
}

/// The answer value a model assigns, following the shape.
pub fn read_model<M: Assignment + ?Sized>(model: &M, shape: &Shape, s: &S) -> Option<Value> {
    Some(match (shape, s) {
        (_, S::C(v)) => v.clone(),
        (Shape::Bool, S::B(b)) => Value::Bool(model.bool(b)?),
        (Shape::Int { .. }, S::I(x)) => Value::Int(model.int(x)?),
        (Shape::Int { .. }, S::OneHot(alts)) => {
            Value::Int(alts.iter().find(|(_, b)| model.bool(b) == Some(true))?.0)
        }
        (_, S::Union(alts)) => alts
            .iter()
            .find(|(g, _)| model.bool(g) == Some(true))?
            .1
            .clone(),
        (Shape::Tuple(ps), S::Tuple(xs)) => Value::tuple(
            ps.iter()
                .zip(xs.iter())
                .map(|(p, x)| read_model(model, p, x))
                .collect::<Option<_>>()?,
        ),
        (Shape::Record(fs), S::Record(xs)) => {
            let mut out = Vec::new();
            for (name, x) in xs.iter() {
                let p = &fs.iter().find(|(n, _)| **n == **name)?.1;
                out.push((name.clone(), read_model(model, p, x)?));
            }
            Value::Record(Rc::new(out))
        }
        (Shape::Map(_, vshape), S::Map(entries)) => {
            let mut m = std::collections::BTreeMap::new();
            for (k, p, v) in entries.iter() {
                if model.bool(p)? {
                    m.insert(k.clone(), read_model(model, vshape, v)?);
                }
            }
            Value::Map(Rc::new(m))
        }
        (Shape::List { elem, .. }, S::List(xs, guard)) => {
            let n = match guard {
                Guard::Prefix(l) => usize::try_from(model.int(l)?).ok()?,
                _ => xs.len(),
            };
            Value::list(
                xs.iter()
                    .take(n)
                    .map(|x| read_model(model, elem, x))
                    .collect::<Option<_>>()?,
            )
        }
        _ => return None,
    })
}
