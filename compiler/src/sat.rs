//! The SAT back end: a lowering's facts (Z3 terms over Booleans and bounded ints)
//! bit-blasted to CNF with Tseitin's encoding and decided by an embedded CDCL solver
//! (batsat, a MiniSat port in Rust).
//!
//! Why a back end of our own: on the simulations (maze_path, water_jugs) Z3's `QF_FD`
//! spends about a microsecond per clause before and around its search. A level-3 maze
//! proof is a 10k-clause CNF that MiniSat decides in 0.5 ms and Z3 in 11-15 ms, from the
//! same clauses (spec/proofs.md §2). So the formula goes straight from the lowering's
//! terms to clauses here, with no preprocessing: the terms are already small (the
//! lowering folds everything concrete), and constants are folded gate by gate.
//!
//! Encoding:
//! - A Boolean term is a literal; `and`/`or` of any arity, `not`, `=>`, `xor`, `=`,
//!   `distinct` and `ite` are Tseitin gates, shared by structure (two-input gates are
//!   hashed) and folded when an input is constant.
//! - An int term is a two's complement word exactly as wide as the term's range needs:
//!   ranges come from the lowering's declared bounds at the leaves and interval
//!   arithmetic above them (exact for `+`, `-`, constant `*`), so every word holds its
//!   term's value without overflow, and adders compute only the bits the result's range
//!   needs. A leaf's bits are constrained to its declared range.
//! - Order is a carry chain (`a < b` is the borrow of `a - b` on sign-flipped words),
//!   equality a conjunction of equal bits, `div`/`mod` by a constant a fresh quotient and
//!   remainder with `a = d*q + r, 0 <= r < |d|` (Euclidean, as Z3's).
//! - Pseudo-Boolean constraints are a sum of constant multiples of their literals
//!   compared with the bound.
//!
//! Anything else (a product of two unknowns, an unbounded int, a quantifier) is
//! [`Unsupported`], and the prover hands the formula to Z3 instead. The engine is checked
//! like the others: every witness by the native verifier, UNSAT answers by the
//! differential tests against Z3's general engine and enumeration.

use std::cell::Cell;
use std::collections::HashMap;
use std::time::Instant;

use batsat::{lbool, Callbacks, ClauseKind, Lit, SolverInterface, SolverOpts};
use z3::ast::{Ast, Bool, Int};
use z3::{AstKind, DeclKind, SortKind};
use z3_sys::{Z3_app, Z3_ast, Z3_context};

use crate::interval::FULL;
use crate::smt::{Assignment, Guard, TermMap, S};

/// The blaster's lookup tables (term addresses, gate inputs): a fast hasher with fixed
/// keys. They are never iterated, so their order cannot reach the clauses.
type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// Why a formula was not bit-blasted; the prover then asks Z3.
#[derive(Clone, Debug)]
pub struct Unsupported(pub String);

type R<T> = Result<T, Unsupported>;

fn unsupported<T>(what: impl Into<String>) -> R<T> {
    Err(Unsupported(what.into()))
}

/// The widest word bit-blasted. The answer's ints and the evaluator's checks keep terms
/// far below it; a wider one (a constant product of large numbers) goes to Z3.
const MAX_WIDTH: usize = 96;

/// How deep a term may nest before it goes to Z3: the translation recurses, and the
/// tests run it on 2 MiB threads.
const MAX_DEPTH: u32 = 1_500;

/// Most clauses one formula may bit-blast into (about 0.5 GB of solver memory); past it
/// the formula goes to Z3, whose limits then apply. The examples' formulas stay below
/// 100k.
const MAX_CLAUSES: u64 = 20_000_000;

/// Most operands of a `distinct` (it becomes n(n-1)/2 disequalities); larger ones go to
/// Z3, which keeps `distinct` whole.
const MAX_DISTINCT: usize = 256;

/// Conflicts between two looks at the work budget (see [`Blaster::solve`]).
const CHUNK: u64 = 2_000;

/// The search's stop rule: a conflict count and an optional wall-clock deadline. batsat
/// asks `stop` at every conflict and restart.
#[derive(Default)]
struct Stop {
    learnt: u64,
    limit: u64,
    deadline: Option<Instant>,
    timed_out: Cell<bool>,
}

impl Callbacks for Stop {
    fn on_new_clause(&mut self, _: &[Lit], kind: ClauseKind) {
        if kind == ClauseKind::Learnt {
            self.learnt += 1;
        }
    }

    fn stop(&self) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.timed_out.set(true);
            return true;
        }
        self.learnt >= self.limit
    }
}

/// A two's complement word holding an int term, with the term's range: `bits` is exactly
/// `width(lo, hi)` long.
#[derive(Clone, Debug)]
struct Word {
    bits: Vec<Lit>,
    lo: i128,
    hi: i128,
}

/// Bits of the narrowest two's complement word holding every value of `lo..=hi`.
fn width(lo: i128, hi: i128) -> usize {
    let mut w = 1;
    while w < 127 && !(-(1i128 << (w - 1)) <= lo && hi < (1i128 << (w - 1))) {
        w += 1;
    }
    w
}

/// A table entry made in a scope, forgotten when it closes.
enum Scoped {
    Bool(usize),
    Int(usize),
    Gate((u8, Lit, Lit)),
}

/// The outcome of a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sat,
    Unsat,
    /// The work budget ran out.
    OutOfWork,
    /// The deadline passed.
    OutOfTime,
}

/// A formula being bit-blasted into one incremental SAT solver.
pub struct Blaster {
    solver: batsat::Solver<Stop>,
    /// The literal fixed true.
    t: Lit,
    /// Terms by address (Z3 shares equal terms, so one address is one term). Addresses
    /// are only looked up, never followed, once a term is translated, and they stay
    /// valid because every term translated hangs from one of `roots`.
    bools: Map<usize, Lit>,
    ints: Map<usize, Word>,
    /// The terms handed in from outside (facts, the answer's terms, declared leaves),
    /// held so that no term translated from them is freed, and its address reused, while
    /// the blaster lives.
    roots: Vec<z3::ast::Dynamic>,
    raw: Raw,
    /// Two-input `and` and `xor` gates by their (ordered) inputs: the same gate over the
    /// same literals is one literal.
    gates: Map<(u8, Lit, Lit), Lit>,
    /// Declared ranges of int leaves (the lowering's answer unknowns and named state),
    /// by address ([`Blaster::declare`] holds the terms in `roots`).
    bounds: Map<usize, (i128, i128)>,
    depth: u32,
    /// The open scope's literal ([`Blaster::open`]), and what was translated in it.
    scope: Option<Lit>,
    scoped: Vec<Scoped>,
    scratch: Vec<Lit>,
    /// Clauses added: part of the work a check is charged with.
    clauses: u64,
}

impl Blaster {
    /// An empty formula whose int leaves have the ranges `bounds`.
    pub fn new(ctx: &z3::Context, declared: &TermMap<Int, (i128, i128)>) -> Blaster {
        let mut solver = batsat::Solver::new(SolverOpts::default(), Stop::default());
        let v = solver.new_var_default();
        let t = Lit::new(v, true);
        let mut b = Blaster {
            solver,
            t,
            bools: Map::default(),
            ints: Map::default(),
            roots: Vec::new(),
            raw: Raw(ctx.get_z3_context()),
            gates: Map::default(),
            bounds: Map::default(),
            depth: 0,
            scope: None,
            scoped: Vec::new(),
            scratch: Vec::new(),
            clauses: 0,
        };
        b.clause(&[t]);
        b.declare(declared);
        b
    }

    /// Asserts `fact`.
    pub fn assert(&mut self, fact: &Bool) -> R<()> {
        let l = self.root_lit(fact)?;
        self.fact(l);
        Ok(())
    }

    /// Asserts a circuit of the lowering ([`crate::circuit::Circuit`]): its gates become
    /// Tseitin gates here directly, its roots facts, and each named constant stands for
    /// its literal (so it must come before the facts that mention those constants).
    pub fn assert_circuit(&mut self, c: &crate::circuit::Circuit) -> R<()> {
        use crate::circuit::{CLit, Gate, Part};
        let mut lits: Vec<Lit> = Vec::with_capacity(c.gates.len());
        let lit = |lits: &[Lit], l: CLit| {
            let x = lits[l.gate()];
            if l.negated() {
                !x
            } else {
                x
            }
        };
        let mut clause = Vec::new();
        c.replay(|part| {
            let g = match part {
                Part::Root(ls) => {
                    clause.clear();
                    clause.extend(ls.iter().map(|&l| lit(&lits, l)));
                    self.clause(&clause);
                    return Ok(());
                }
                Part::Name(name, l) => {
                    let x = lit(&lits, l);
                    self.bind_name(name, x);
                    return Ok(());
                }
                Part::Gate(g) => g,
            };
            if self.clauses > MAX_CLAUSES {
                return unsupported("a formula too large for the SAT back end");
            }
            let x = match g {
                Gate::True => self.t,
                Gate::Leaf(b) => self.root_lit(b)?,
                Gate::And(ls) => {
                    let ins = ls.iter().map(|&l| lit(&lits, l)).collect();
                    self.and_all(ins)
                }
                Gate::Or(ls) => {
                    let ins = ls.iter().map(|&l| lit(&lits, l)).collect();
                    self.or_all(ins)
                }
                Gate::Step { from, present } => {
                    // With the promises of `Gate::Step` (exactly one `from` holds while
                    // present; `via`s leaving a state are disjoint), these clauses make
                    // `s` equal to its formula, and propagation decides it once the
                    // leaves are: s <- from and via and present; s -> present;
                    // s -> some from; s and from -> via. Two clauses a pair instead of an
                    // `and` gate each and the `or` over them (water_jugs: ~1,400 pairs).
                    let s = self.gate();
                    let p = lit(&lits, *present);
                    self.clause(&[!s, p]);
                    let mut some = vec![!s];
                    for &(f, v) in from {
                        let (f, v) = (lit(&lits, f), lit(&lits, v));
                        self.clause(&[!f, !v, !p, s]);
                        self.clause(&[!s, !f, v]);
                        some.push(f);
                    }
                    self.clause(&some);
                    s
                }
            };
            lits.push(x);
            Ok(())
        })
    }

    /// Makes the Z3 constant `name` stand for literal `x`.
    fn bind_name(&mut self, name: &Bool, x: Lit) {
        let a = addr(name.get_z3_ast());
        self.roots.push(z3::ast::Dynamic::from_ast(name));
        self.bools.insert(a, x);
        if self.scope.is_some() {
            self.scoped.push(Scoped::Bool(a));
        }
    }

    /// Bit-blasts every term of `answer`, so a model can be read back from it (terms
    /// only defined, never constrained: Tseitin definitions keep the models).
    pub fn touch(&mut self, answer: &S) -> R<()> {
        match answer {
            S::C(_) | S::Poison(_) => {}
            S::B(b) => {
                self.root_lit(b)?;
            }
            S::I(x) => {
                self.root_word(x)?;
            }
            S::Tuple(xs) => {
                for x in xs.iter() {
                    self.touch(x)?;
                }
            }
            S::List(xs, guard) => {
                match guard {
                    Guard::All => {}
                    Guard::Prefix(l) => {
                        self.root_word(l)?;
                    }
                    Guard::Each(gs) => {
                        for g in gs.iter() {
                            self.root_lit(g)?;
                        }
                    }
                }
                for x in xs.iter() {
                    self.touch(x)?;
                }
            }
            S::Record(fs) => {
                for (_, x) in fs.iter() {
                    self.touch(x)?;
                }
            }
            S::Union(alts) => {
                for (g, _) in alts.iter() {
                    self.root_lit(g)?;
                }
            }
            S::Map(entries) => {
                for (_, p, v) in entries.iter() {
                    self.root_lit(p)?;
                    self.touch(v)?;
                }
            }
            S::OneHot(alts) => {
                for (_, g) in alts.iter() {
                    self.root_lit(g)?;
                }
            }
        }
        Ok(())
    }

    /// Opens a scope: every clause added until [`Blaster::close`] holds only inside it
    /// (guarded by the scope's literal, which checks assume). A kept solver proves each
    /// instance of a batch in a scope on top of the rules. Gate definitions are scoped
    /// too, not only facts: a definition left behind would still be propagated from the
    /// answer's literals, which every instance shares, so each instance would pay for
    /// all earlier ones (knapsack's adders: a proof's time grew from 0.4 to 4.4 ms over a
    /// batch of 32).
    pub fn open(&mut self) {
        self.close();
        let a = self.fresh();
        self.scope = Some(a);
    }

    /// Closes the scope for good: its literal is fixed false, which satisfies every
    /// clause added in it and every clause learnt from them, and the terms and gates
    /// translated in it are forgotten.
    pub fn close(&mut self) {
        if let Some(a) = self.scope.take() {
            self.clause(&[!a]);
            for k in std::mem::take(&mut self.scoped) {
                match k {
                    Scoped::Bool(t) => {
                        self.bools.remove(&t);
                    }
                    Scoped::Int(t) => {
                        self.ints.remove(&t);
                    }
                    Scoped::Gate(g) => {
                        self.gates.remove(&g);
                    }
                }
            }
        }
    }

    fn remember_gate(&mut self, key: (u8, Lit, Lit), g: Lit) {
        self.gates.insert(key, g);
        if self.scope.is_some() {
            self.scoped.push(Scoped::Gate(key));
        }
    }

    /// Declares int leaves with their ranges (and, on a kept solver, an instance's named
    /// state), holding their terms.
    pub fn declare(&mut self, declared: &TermMap<Int, (i128, i128)>) {
        for (x, r) in declared {
            let a = addr(x.get_z3_ast());
            if let std::collections::hash_map::Entry::Vacant(e) = self.bounds.entry(a) {
                e.insert(*r);
                self.roots.push(z3::ast::Dynamic::from_ast(x));
            }
        }
    }

    /// A fact: a unit clause (guarded by the open scope's literal, as every clause).
    fn fact(&mut self, l: Lit) {
        self.clause(&[l]);
    }

    /// Decides the formula. `work` is the budget: the value of [`Blaster::work`] at which
    /// to stop (0: no limit). The search looks at it every [`CHUNK`] conflicts (batsat
    /// keeps what it learnt between the chunks), so it may overshoot by one chunk's
    /// propagations.
    pub fn solve(&mut self, work: u64, deadline: Option<Instant>) -> Outcome {
        self.solver.cb_mut().deadline = deadline;
        let assumed: Vec<Lit> = self.scope.into_iter().collect();
        loop {
            if work > 0 && self.work() >= work {
                return Outcome::OutOfWork;
            }
            let stop = self.solver.cb_mut();
            stop.limit = stop.learnt + CHUNK;
            let r = self.solver.solve_limited(&assumed);
            if r == lbool::TRUE {
                return Outcome::Sat;
            }
            if r == lbool::FALSE {
                return Outcome::Unsat;
            }
            if self.solver.cb().timed_out.get() {
                return Outcome::OutOfTime;
            }
        }
    }

    /// The work done so far, deterministic: clauses added plus propagations.
    pub fn work(&self) -> u64 {
        self.clauses + self.solver.num_propagations()
    }

    pub fn conflicts(&self) -> u64 {
        self.solver.num_conflicts()
    }

    pub fn decisions(&self) -> u64 {
        self.solver.num_decisions()
    }

    // ------------------------------------------------------------------ terms

    fn enter(&mut self) -> R<()> {
        if self.clauses > MAX_CLAUSES {
            return unsupported("a formula too large for the SAT back end");
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= 1;
            return unsupported("a term nested too deeply for the SAT back end");
        }
        Ok(())
    }

    /// The literal of a term handed in from outside, which is kept as a root.
    fn root_lit(&mut self, b: &Bool) -> R<Lit> {
        self.roots.push(z3::ast::Dynamic::from_ast(b));
        self.lit(b.get_z3_ast())
    }

    fn root_word(&mut self, x: &Int) -> R<Word> {
        self.roots.push(z3::ast::Dynamic::from_ast(x));
        self.word(x.get_z3_ast())
    }

    /// The operands of an application.
    fn operands(&self, app: Z3_app, n: u32) -> R<Vec<Z3_ast>> {
        let kids: Vec<Z3_ast> = (0..n).filter_map(|i| self.raw.arg(app, i)).collect();
        if kids.len() != n as usize {
            return unsupported("a term whose operands Z3 did not give");
        }
        Ok(kids)
    }

    /// The literal of a Boolean term.
    fn lit(&mut self, b: Z3_ast) -> R<Lit> {
        if let Some(&l) = self.bools.get(&addr(b)) {
            return Ok(l);
        }
        self.enter()?;
        let r = self.lit_of(b);
        self.depth -= 1;
        let l = r?;
        self.bools.insert(addr(b), l);
        if self.scope.is_some() {
            self.scoped.push(Scoped::Bool(addr(b)));
        }
        Ok(l)
    }

    fn lit_of(&mut self, b: Z3_ast) -> R<Lit> {
        let Some((kind, app, n)) = self.raw.app(b) else {
            return unsupported("a quantified formula");
        };
        let kids = self.operands(app, n)?;
        let f = !self.t;
        Ok(match kind {
            DeclKind::True => self.t,
            DeclKind::False => f,
            DeclKind::Uninterpreted if kids.is_empty() => self.fresh(),
            DeclKind::Not => !self.kid_lit(&kids, 0)?,
            DeclKind::And | DeclKind::Or => {
                let mut ls = Vec::with_capacity(kids.len());
                for i in 0..kids.len() {
                    ls.push(self.kid_lit(&kids, i)?);
                }
                if kind == DeclKind::And {
                    self.and_all(ls)
                } else {
                    self.or_all(ls)
                }
            }
            DeclKind::Implies => {
                let (a, c) = (self.kid_lit(&kids, 0)?, self.kid_lit(&kids, 1)?);
                self.or2(!a, c)
            }
            DeclKind::Xor | DeclKind::Iff => {
                let (a, c) = (self.kid_lit(&kids, 0)?, self.kid_lit(&kids, 1)?);
                let x = self.xor2(a, c);
                if kind == DeclKind::Xor {
                    x
                } else {
                    !x
                }
            }
            DeclKind::Ite => {
                let c = self.kid_lit(&kids, 0)?;
                let (a, e) = (self.kid_lit(&kids, 1)?, self.kid_lit(&kids, 2)?);
                self.mux(c, a, e)
            }
            DeclKind::Distinct if kids.len() > MAX_DISTINCT => {
                return unsupported("a `distinct` of too many terms for the SAT back end");
            }
            DeclKind::Eq | DeclKind::Distinct => {
                // Pairwise: `distinct` of n terms is n(n-1)/2 disequalities.
                let mut eqs = Vec::new();
                for i in 0..kids.len() {
                    let jr = if kind == DeclKind::Eq {
                        i + 1..(i + 2).min(kids.len())
                    } else {
                        i + 1..kids.len()
                    };
                    for j in jr {
                        let e = self.equal(kids[i], kids[j])?;
                        eqs.push(if kind == DeclKind::Eq { e } else { !e });
                    }
                }
                self.and_all(eqs)
            }
            DeclKind::Le | DeclKind::Ge | DeclKind::Lt | DeclKind::Gt => {
                let (a, c) = (self.kid_word(&kids, 0)?, self.kid_word(&kids, 1)?);
                match kind {
                    DeclKind::Lt => self.lt(&a, &c),
                    DeclKind::Gt => self.lt(&c, &a),
                    DeclKind::Le => !self.lt(&c, &a),
                    _ => !self.lt(&a, &c),
                }
            }
            DeclKind::PbLe
            | DeclKind::PbGe
            | DeclKind::PbEq
            | DeclKind::PbAtMost
            | DeclKind::PbAtLeast => self.pseudo_boolean(app, kind, &kids)?,
            k => return unsupported(format!("`{k:?}` in the SAT back end")),
        })
    }

    fn kid_lit(&mut self, kids: &[Z3_ast], i: usize) -> R<Lit> {
        match kids.get(i) {
            Some(&b) if self.raw.sort(b) == Some(SortKind::Bool) => self.lit(b),
            _ => unsupported("a Boolean operator without a Boolean operand"),
        }
    }

    fn kid_word(&mut self, kids: &[Z3_ast], i: usize) -> R<Word> {
        match kids.get(i) {
            Some(&x) if self.raw.sort(x) == Some(SortKind::Int) => self.word(x),
            _ => unsupported("an int operator without an int operand"),
        }
    }

    /// `a = b` for two Booleans or two ints.
    fn equal(&mut self, a: Z3_ast, b: Z3_ast) -> R<Lit> {
        match (self.raw.sort(a), self.raw.sort(b)) {
            (Some(SortKind::Bool), Some(SortKind::Bool)) => {
                let (x, y) = (self.lit(a)?, self.lit(b)?);
                Ok(!self.xor2(x, y))
            }
            (Some(SortKind::Int), Some(SortKind::Int)) => {
                let (x, y) = (self.word(a)?, self.word(b)?);
                Ok(self.eq_words(&x, &y))
            }
            _ => unsupported("an equation of terms other than Booleans and ints"),
        }
    }

    /// `Σ c_i·[l_i] ⋈ k`. Z3 keeps the bound and the coefficients as the declaration's
    /// parameters: `k` first, then one coefficient per operand (none for the cardinality
    /// forms, whose coefficients are 1).
    fn pseudo_boolean(&mut self, app: Z3_app, kind: DeclKind, kids: &[Z3_ast]) -> R<Lit> {
        let params = self.raw.int_params(app)?;
        let k = *params
            .first()
            .ok_or_else(|| Unsupported("a PB constraint without a bound".into()))?;
        let cardinality = matches!(kind, DeclKind::PbAtMost | DeclKind::PbAtLeast);
        if !cardinality && params.len() != kids.len() + 1 {
            return unsupported("a PB constraint whose coefficients do not match its operands");
        }
        let mut terms = Vec::with_capacity(kids.len());
        for i in 0..kids.len() {
            let l = self.kid_lit(kids, i)?;
            let c = if cardinality { 1 } else { params[i + 1] };
            let bit = Word {
                bits: vec![l, !self.t],
                lo: 0,
                hi: 1,
            };
            terms.push(self.mul_const(&bit, c)?);
        }
        let sum = self.sum(terms)?;
        let k = self.constant(k)?;
        Ok(match kind {
            DeclKind::PbLe | DeclKind::PbAtMost => !self.lt(&k, &sum),
            DeclKind::PbGe | DeclKind::PbAtLeast => !self.lt(&sum, &k),
            _ => self.eq_words(&sum, &k),
        })
    }

    /// The word of an int term.
    fn word(&mut self, x: Z3_ast) -> R<Word> {
        if let Some(w) = self.ints.get(&addr(x)) {
            return Ok(w.clone());
        }
        self.enter()?;
        let r = self.word_of(x);
        self.depth -= 1;
        let w = r?;
        self.ints.insert(addr(x), w.clone());
        if self.scope.is_some() {
            self.scoped.push(Scoped::Int(addr(x)));
        }
        Ok(w)
    }

    fn word_of(&mut self, x: Z3_ast) -> R<Word> {
        if let Some(v) = self.raw.numeral(x) {
            return self.constant(i128::from(v));
        }
        let Some((kind, app, n)) = self.raw.app(x) else {
            return unsupported("a quantified int");
        };
        let kids = self.operands(app, n)?;
        match kind {
            DeclKind::Uninterpreted if kids.is_empty() => self.leaf(x),
            DeclKind::Add | DeclKind::Sub => {
                let mut acc = self.kid_word(&kids, 0)?;
                for i in 1..kids.len() {
                    let k = self.kid_word(&kids, i)?;
                    acc = if kind == DeclKind::Add {
                        self.add(&acc, &k, false)?
                    } else {
                        self.add(&acc, &k, true)?
                    };
                }
                Ok(acc)
            }
            DeclKind::Uminus => {
                let a = self.kid_word(&kids, 0)?;
                self.neg(&a)
            }
            DeclKind::Mul => {
                // A constant times at most one unknown.
                let mut factor: i128 = 1;
                let mut unknown = None;
                for &k in &kids {
                    if self.raw.sort(k) != Some(SortKind::Int) {
                        return unsupported("a product of non-integer terms");
                    }
                    match self.raw.numeral(k) {
                        Some(c) => {
                            factor = factor
                                .checked_mul(i128::from(c))
                                .ok_or_else(|| Unsupported("a product too large".into()))?
                        }
                        None if unknown.is_none() => unknown = Some(k),
                        None => return unsupported("a product of two unknown ints"),
                    }
                }
                match unknown {
                    None => self.constant(factor),
                    Some(u) => {
                        let w = self.word(u)?;
                        self.mul_const(&w, factor)
                    }
                }
            }
            DeclKind::Ite => {
                let c = self.kid_lit(&kids, 0)?;
                let (a, e) = (self.kid_word(&kids, 1)?, self.kid_word(&kids, 2)?);
                Ok(self.ite(c, &a, &e))
            }
            DeclKind::Idiv | DeclKind::Mod => {
                let d = kids.get(1).and_then(|&k| self.raw.numeral(k));
                match d {
                    Some(d) if d != 0 => {
                        let a = self.kid_word(&kids, 0)?;
                        let (q, r) = self.div_mod(&a, i128::from(d))?;
                        Ok(if kind == DeclKind::Idiv { q } else { r })
                    }
                    _ => unsupported("a division by an unknown int"),
                }
            }
            k => unsupported(format!("`{k:?}` on ints in the SAT back end")),
        }
    }

    /// An int unknown: fresh bits, kept within its declared range.
    fn leaf(&mut self, x: Z3_ast) -> R<Word> {
        let (lo, hi) = match self.bounds.get(&addr(x)) {
            Some(&r) if r.0 > FULL.0 && r.1 < FULL.1 => r,
            _ => return unsupported("an int without a declared range"),
        };
        if lo > hi {
            // An empty domain: no model (in this scope).
            let f = !self.t;
            self.fact(f);
            return self.constant(0);
        }
        self.fresh_word(lo, hi)
    }

    // ------------------------------------------------------------------ words

    fn constant(&self, v: i128) -> R<Word> {
        let w = width(v, v);
        if w > MAX_WIDTH {
            return unsupported("a constant too wide for the SAT back end");
        }
        let bits = (0..w).map(|i| self.konst((v >> i) & 1 == 1)).collect();
        Ok(Word { bits, lo: v, hi: v })
    }

    /// `a`'s bits sign-extended to `w` (or cut to `w`, when `a`'s range fits it).
    fn bits(a: &Word, w: usize) -> Vec<Lit> {
        let sign = *a.bits.last().expect("a word has a bit");
        (0..w)
            .map(|i| a.bits.get(i).copied().unwrap_or(sign))
            .collect()
    }

    /// The word for `lo..=hi` from bits that hold the value (at least as wide).
    fn fit(bits: &[Lit], lo: i128, hi: i128) -> R<Word> {
        let w = width(lo, hi);
        if w > MAX_WIDTH {
            return unsupported("an int too wide for the SAT back end");
        }
        let sign = *bits.last().expect("a word has a bit");
        let bits = (0..w)
            .map(|i| bits.get(i).copied().unwrap_or(sign))
            .collect();
        Ok(Word { bits, lo, hi })
    }

    /// `a + b`, or `a - b` (`a + !b + 1`), computing only the bits the result's range
    /// needs: every value in it fits them, so the carries beyond are never read.
    fn add(&mut self, a: &Word, b: &Word, subtract: bool) -> R<Word> {
        let (lo, hi) = if subtract {
            (a.lo - b.hi, a.hi - b.lo)
        } else {
            (a.lo + b.lo, a.hi + b.hi)
        };
        let w = width(lo, hi);
        if w > MAX_WIDTH {
            return unsupported("an int too wide for the SAT back end");
        }
        let (x, mut y) = (Self::bits(a, w), Self::bits(b, w));
        if subtract {
            y.iter_mut().for_each(|l| *l = !*l);
        }
        let mut carry = self.konst(subtract);
        let mut out = Vec::with_capacity(w);
        for i in 0..w {
            let s = self.xor2(x[i], y[i]);
            out.push(self.xor2(s, carry));
            if i + 1 < w {
                carry = self.maj(x[i], y[i], carry);
            }
        }
        Ok(Word { bits: out, lo, hi })
    }

    fn neg(&mut self, a: &Word) -> R<Word> {
        let zero = self.constant(0)?;
        self.add(&zero, a, true)
    }

    /// Sums in a balanced tree (narrow adders first).
    fn sum(&mut self, mut terms: Vec<Word>) -> R<Word> {
        if terms.is_empty() {
            return self.constant(0);
        }
        while terms.len() > 1 {
            let mut next = Vec::with_capacity(terms.len().div_ceil(2));
            for pair in terms.chunks(2) {
                next.push(match pair {
                    [a, b] => self.add(a, b, false)?,
                    [a] => a.clone(),
                    _ => unreachable!("chunks of two"),
                });
            }
            terms = next;
        }
        Ok(terms.pop().expect("one term"))
    }

    /// `a · c`: shifted copies of `a` for the set bits of `|c|`, negated when `c < 0`.
    fn mul_const(&mut self, a: &Word, c: i128) -> R<Word> {
        if c == 0 {
            return self.constant(0);
        }
        let m = c.unsigned_abs();
        let f = !self.t;
        let mut parts = Vec::new();
        for j in 0..128 - m.leading_zeros() as usize {
            if (m >> j) & 1 == 1 {
                let scale = 1i128 << j;
                let (Some(lo), Some(hi)) = (a.lo.checked_mul(scale), a.hi.checked_mul(scale))
                else {
                    return unsupported("a product too large for the SAT back end");
                };
                let mut bits = vec![f; j];
                bits.extend_from_slice(&a.bits);
                parts.push(Self::fit(&bits, lo, hi)?);
            }
        }
        let p = self.sum(parts)?;
        if c < 0 {
            self.neg(&p)
        } else {
            Ok(p)
        }
    }

    fn ite(&mut self, c: Lit, a: &Word, b: &Word) -> Word {
        if c == self.t {
            return a.clone();
        }
        if c == !self.t {
            return b.clone();
        }
        let (lo, hi) = (a.lo.min(b.lo), a.hi.max(b.hi));
        let w = width(lo, hi);
        let (x, y) = (Self::bits(a, w), Self::bits(b, w));
        let bits = (0..w).map(|i| self.mux(c, x[i], y[i])).collect();
        Word { bits, lo, hi }
    }

    /// Euclidean `a div d` and `a mod d` (`a = d·q + r`, `0 <= r < |d|`), as fresh words.
    fn div_mod(&mut self, a: &Word, d: i128) -> R<(Word, Word)> {
        let m = d.abs();
        let qs = [
            (a.lo - m + 1).div_euclid(d),
            a.lo.div_euclid(d),
            a.hi.div_euclid(d),
            (a.hi - m + 1).div_euclid(d),
        ];
        let (qlo, qhi) = (
            *qs.iter().min().expect("4") - 1,
            *qs.iter().max().expect("4") + 1,
        );
        let q = self.fresh_word(qlo, qhi)?;
        let r = self.fresh_word(0, m - 1)?;
        let dq = self.mul_const(&q, d)?;
        let back = self.add(&dq, &r, false)?;
        let same = self.eq_words(&back, a);
        self.clause(&[same]);
        Ok((q, r))
    }

    /// A word of fresh bits constrained to `lo..=hi` (`lo <= hi`).
    fn fresh_word(&mut self, lo: i128, hi: i128) -> R<Word> {
        let w = width(lo, hi);
        if w > MAX_WIDTH {
            return unsupported("an int too wide for the SAT back end");
        }
        let bits: Vec<Lit> = (0..w).map(|_| self.fresh()).collect();
        // The range check sees the word as any value its bits can hold.
        let raw = Word {
            bits: bits.clone(),
            lo: -(1i128 << (w - 1)),
            hi: (1i128 << (w - 1)) - 1,
        };
        if lo > raw.lo {
            let c = self.constant(lo)?;
            let below = self.lt(&raw, &c);
            self.clause(&[!below]);
        }
        if hi < raw.hi {
            let c = self.constant(hi)?;
            let above = self.lt(&c, &raw);
            self.clause(&[!above]);
        }
        Ok(Word { bits, lo, hi })
    }

    /// `a < b`: the borrow of `a - b` on the sign-flipped words (unsigned order), one
    /// majority gate per bit, constant bits folded.
    fn lt(&mut self, a: &Word, b: &Word) -> Lit {
        if a.hi < b.lo {
            return self.t;
        }
        if a.lo >= b.hi {
            return !self.t;
        }
        let w = a.bits.len().max(b.bits.len());
        let (mut x, mut y) = (Self::bits(a, w), Self::bits(b, w));
        x[w - 1] = !x[w - 1];
        y[w - 1] = !y[w - 1];
        // Carry of x + !y + 1: set exactly when x >= y (unsigned).
        let mut carry = self.t;
        for i in 0..w {
            carry = self.maj(x[i], !y[i], carry);
        }
        !carry
    }

    fn eq_words(&mut self, a: &Word, b: &Word) -> Lit {
        if a.hi < b.lo || b.hi < a.lo {
            return !self.t;
        }
        let w = a.bits.len().max(b.bits.len());
        let (x, y) = (Self::bits(a, w), Self::bits(b, w));
        let same: Vec<Lit> = (0..w).map(|i| !self.xor2(x[i], y[i])).collect();
        self.and_all(same)
    }

    // ------------------------------------------------------------------ gates

    fn konst(&self, v: bool) -> Lit {
        if v {
            self.t
        } else {
            !self.t
        }
    }

    fn fresh(&mut self) -> Lit {
        Lit::new(self.solver.new_var_default(), true)
    }

    /// A gate's output: not a decision variable. Every gate is defined by complete
    /// Tseitin clauses over its inputs, so once the leaves (answer bits, named state,
    /// quotients) are decided, propagation assigns every gate, and a model the search
    /// reports is total. Branching on leaves only, measured at level 3 (200 instances,
    /// median): maze_path 4.10 -> 3.66 ms; water_jugs 15.2 -> 17.0 ms, but mean 28.6 ->
    /// 25.5 ms and 90th percentile 49.9 -> 43.1 ms.
    fn gate(&mut self) -> Lit {
        Lit::new(self.solver.new_var(lbool::UNDEF, false), true)
    }

    fn clause(&mut self, lits: &[Lit]) {
        self.scratch.clear();
        self.scratch.extend_from_slice(lits);
        if let Some(a) = self.scope {
            self.scratch.push(!a);
        }
        self.clauses += 1;
        let mut c = std::mem::take(&mut self.scratch);
        self.solver.add_clause_reuse(&mut c);
        self.scratch = c;
    }

    fn and2(&mut self, a: Lit, b: Lit) -> Lit {
        let f = !self.t;
        if a == f || b == f || a == !b {
            return f;
        }
        if a == self.t || a == b {
            return b;
        }
        if b == self.t {
            return a;
        }
        let key = (0, a.min(b), a.max(b));
        if let Some(&g) = self.gates.get(&key) {
            return g;
        }
        let g = self.gate();
        self.clause(&[!g, a]);
        self.clause(&[!g, b]);
        self.clause(&[g, !a, !b]);
        self.remember_gate(key, g);
        g
    }

    fn or2(&mut self, a: Lit, b: Lit) -> Lit {
        !self.and2(!a, !b)
    }

    fn xor2(&mut self, a: Lit, b: Lit) -> Lit {
        let t = self.t;
        if a == b {
            return !t;
        }
        if a == !b {
            return t;
        }
        if a == !t || a == t {
            return if a == t { !b } else { b };
        }
        if b == !t || b == t {
            return if b == t { !a } else { a };
        }
        // xor(!a, b) = !xor(a, b): one gate per pair of variables.
        let flip = !a.sign() ^ !b.sign();
        let (pa, pb) = (Lit::new(a.var(), true), Lit::new(b.var(), true));
        let key = (1, pa.min(pb), pa.max(pb));
        let g = match self.gates.get(&key) {
            Some(&g) => g,
            None => {
                let g = self.gate();
                self.clause(&[!g, pa, pb]);
                self.clause(&[!g, !pa, !pb]);
                self.clause(&[g, !pa, pb]);
                self.clause(&[g, pa, !pb]);
                self.remember_gate(key, g);
                g
            }
        };
        if flip {
            !g
        } else {
            g
        }
    }

    /// `c ? a : b`.
    fn mux(&mut self, c: Lit, a: Lit, b: Lit) -> Lit {
        let t = self.t;
        if c == t || a == b {
            return a;
        }
        if c == !t {
            return b;
        }
        if a == t {
            return self.or2(c, b);
        }
        if a == !t {
            return self.and2(!c, b);
        }
        if b == t {
            return self.or2(!c, a);
        }
        if b == !t {
            return self.and2(c, a);
        }
        if a == !b {
            return !self.xor2(c, a);
        }
        let g = self.gate();
        self.clause(&[!c, !a, g]);
        self.clause(&[!c, a, !g]);
        self.clause(&[c, !b, g]);
        self.clause(&[c, b, !g]);
        // Redundant, but they let propagation see that equal branches decide the result.
        self.clause(&[!a, !b, g]);
        self.clause(&[a, b, !g]);
        g
    }

    /// The majority of three (a full adder's carry).
    fn maj(&mut self, a: Lit, b: Lit, c: Lit) -> Lit {
        let t = self.t;
        for (x, y, z) in [(a, b, c), (b, c, a), (c, a, b)] {
            if x == t {
                return self.or2(y, z);
            }
            if x == !t {
                return self.and2(y, z);
            }
            if x == y {
                return x;
            }
            if x == !y {
                return z;
            }
        }
        let g = self.gate();
        self.clause(&[!a, !b, g]);
        self.clause(&[!a, !c, g]);
        self.clause(&[!b, !c, g]);
        self.clause(&[a, b, !g]);
        self.clause(&[a, c, !g]);
        self.clause(&[b, c, !g]);
        g
    }

    fn and_all(&mut self, ls: Vec<Lit>) -> Lit {
        let ls = match crate::circuit::junction_inputs(ls, self.t) {
            Ok(ls) => ls,
            Err(known) => return known,
        };
        match ls.len() {
            2 => self.and2(ls[0], ls[1]),
            _ => {
                let g = self.gate();
                for &l in &ls {
                    self.clause(&[!g, l]);
                }
                let mut long: Vec<Lit> = ls.iter().map(|&l| !l).collect();
                long.push(g);
                self.clause(&long);
                g
            }
        }
    }

    fn or_all(&mut self, ls: Vec<Lit>) -> Lit {
        !self.and_all(ls.into_iter().map(|l| !l).collect())
    }

    // ------------------------------------------------------------------ models

    fn value(&self, l: Lit) -> bool {
        self.solver.value_lit(l) == lbool::TRUE
    }

    fn word_value(&self, w: &Word) -> i128 {
        let n = w.bits.len();
        let mut v: i128 = 0;
        for (i, &l) in w.bits.iter().enumerate() {
            if self.value(l) {
                v += if i + 1 == n {
                    -(1i128 << i)
                } else {
                    1i128 << i
                };
            }
        }
        v
    }
}

/// The last model, for the terms bit-blasted before the check ([`Blaster::touch`]).
impl Assignment for Blaster {
    fn bool(&self, b: &Bool) -> Option<bool> {
        self.bools
            .get(&addr(b.get_z3_ast()))
            .map(|&l| self.value(l))
    }

    fn int(&self, x: &Int) -> Option<i64> {
        if let Some(v) = x.as_i64() {
            return Some(v);
        }
        let w = self.ints.get(&addr(x.get_z3_ast()))?;
        i64::try_from(self.word_value(w)).ok()
    }
}

/// A term's address: its identity while it is alive (Z3 shares equal terms).
fn addr(t: Z3_ast) -> usize {
    t.as_ptr() as usize
}

/// Read-only access to the terms of one context, without reference counting: the
/// blaster visits only terms that hang from the roots it holds (see `Blaster::roots`),
/// so none is freed while it reads them. Each call checks the kind of term Z3 requires
/// before making it.
#[derive(Clone, Copy)]
struct Raw(Z3_context);

impl Raw {
    /// An application's declaration kind, the application and its operand count; `None`
    /// for quantifiers and bound variables.
    fn app(self, t: Z3_ast) -> Option<(DeclKind, Z3_app, u32)> {
        // SAFETY: `t` is a live term of this context (see the type's note); the app and
        // declaration calls are made only on applications and numerals, as Z3 requires.
        unsafe {
            match z3_sys::Z3_get_ast_kind(self.0, t) {
                AstKind::App | AstKind::Numeral => {}
                _ => return None,
            }
            let app = z3_sys::Z3_to_app(self.0, t)?;
            let decl = z3_sys::Z3_get_app_decl(self.0, app)?;
            Some((
                z3_sys::Z3_get_decl_kind(self.0, decl),
                app,
                z3_sys::Z3_get_app_num_args(self.0, app),
            ))
        }
    }

    /// Operand `i` of an application (`i` below its operand count).
    fn arg(self, app: Z3_app, i: u32) -> Option<Z3_ast> {
        // SAFETY: `app` came from `Raw::app` on a live term, and callers pass `i` below
        // the count it gave.
        unsafe { z3_sys::Z3_get_app_arg(self.0, app, i) }
    }

    fn sort(self, t: Z3_ast) -> Option<SortKind> {
        // SAFETY: `t` is a live term of this context; every term has a sort.
        unsafe { z3_sys::Z3_get_sort(self.0, t).map(|s| z3_sys::Z3_get_sort_kind(self.0, s)) }
    }

    /// The value of an int numeral that fits 64 bits.
    fn numeral(self, t: Z3_ast) -> Option<i64> {
        // SAFETY: `t` is a live term; a value is read only from a numeral.
        unsafe {
            if z3_sys::Z3_get_ast_kind(self.0, t) != AstKind::Numeral {
                return None;
            }
            let mut v: i64 = 0;
            z3_sys::Z3_get_numeral_int64(self.0, t, &mut v).then_some(v)
        }
    }

    /// The integer parameters of an application's declaration (a PB constraint's bound
    /// and coefficients), which the `z3` crate does not expose.
    fn int_params(self, app: Z3_app) -> R<Vec<i128>> {
        use z3_sys::ParameterKind;
        // SAFETY: `app` came from `Raw::app`; parameters are read below the count Z3
        // reports and by the kind it reports; a rational's string is owned by the
        // context and copied before any other call into it.
        unsafe {
            let decl = z3_sys::Z3_get_app_decl(self.0, app)
                .ok_or_else(|| Unsupported("no declaration".into()))?;
            let n = z3_sys::Z3_get_decl_num_parameters(self.0, decl);
            let mut out = Vec::with_capacity(n as usize);
            for i in 0..n {
                let v = match z3_sys::Z3_get_decl_parameter_kind(self.0, decl, i) {
                    ParameterKind::Int => {
                        i128::from(z3_sys::Z3_get_decl_int_parameter(self.0, decl, i))
                    }
                    ParameterKind::Rational => {
                        let p = z3_sys::Z3_get_decl_rational_parameter(self.0, decl, i);
                        if p.is_null() {
                            return unsupported("a PB parameter Z3 did not give");
                        }
                        let s = std::ffi::CStr::from_ptr(p).to_string_lossy();
                        s.parse::<i128>().map_err(|_| {
                            Unsupported(format!("a PB parameter `{s}` that is not an integer"))
                        })?
                    }
                    _ => return unsupported("a PB parameter of an unexpected kind"),
                };
                out.push(v);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prove::in_fresh_context;

    fn blaster(vars: &[(&Int, i128, i128)]) -> Blaster {
        let mut bounds = TermMap::default();
        for (x, lo, hi) in vars {
            bounds.insert((*x).clone(), (*lo, *hi));
        }
        Blaster::new(&z3::Context::thread_local(), &bounds)
    }

    /// Every word operation against the evaluator's integers (Euclidean `/` and `%`), on
    /// every pair of values of two small signed ranges: the operands are fixed by facts,
    /// the result is read back from the model.
    #[test]
    fn words_compute_what_the_runtime_computes() {
        in_fresh_context(|| {
            let (x, y) = (Int::new_const("x"), Int::new_const("y"));
            for vx in -6i64..=6 {
                for vy in -5i64..=4 {
                    let mut b = blaster(&[(&x, -6, 6), (&y, -5, 4)]);
                    b.assert(&x.eq(Int::from_i64(vx))).unwrap();
                    b.assert(&y.eq(Int::from_i64(vy))).unwrap();
                    let mut terms = vec![
                        (&x + &y, vx + vy),
                        (&x - &y, vx - vy),
                        (-&x, -vx),
                        (&x * Int::from_i64(-7), vx * -7),
                        (Int::from_i64(12) * &y, 12 * vy),
                        (x.div(Int::from_i64(3)), vx.div_euclid(3)),
                        (x.div(Int::from_i64(-4)), vx.div_euclid(-4)),
                        (x.modulo(Int::from_i64(-4)), vx.rem_euclid(-4)),
                        (y.modulo(Int::from_i64(5)), vy.rem_euclid(5)),
                    ];
                    let bools = [
                        (x.lt(&y), vx < vy),
                        (x.le(&y), vx <= vy),
                        (x.ge(Int::from_i64(-3)), vx >= -3),
                        (y.gt(&x), vy > vx),
                        ((&x + &y).eq(Int::from_i64(1)), vx + vy == 1),
                    ];
                    let mut ite = x.lt(&y).ite(&x, &y);
                    terms.push((ite.clone(), vx.min(vy)));
                    ite = x.lt(&y).ite(&(&y - &x), &(&x - &y));
                    terms.push((ite, (vx - vy).abs()));
                    for (t, _) in &terms {
                        b.touch(&S::I(t.clone())).unwrap();
                    }
                    for (t, _) in &bools {
                        b.touch(&S::B(t.clone())).unwrap();
                    }
                    assert_eq!(b.solve(0, None), Outcome::Sat);
                    for (t, want) in &terms {
                        assert_eq!(b.int(t), Some(*want), "{t} at x={vx}, y={vy}");
                    }
                    for (t, want) in &bools {
                        assert_eq!(b.bool(t), Some(*want), "{t} at x={vx}, y={vy}");
                    }
                }
            }
        });
    }

    /// Pseudo-Boolean constraints with signed coefficients, against counting.
    #[test]
    fn pseudo_boolean_constraints_count_their_literals() {
        in_fresh_context(|| {
            let ls: Vec<Bool> = (0..4).map(|i| Bool::new_const(format!("l{i}"))).collect();
            let coeffs = [3, -2, 5, 1];
            for bits in 0u32..16 {
                let sum: i32 = (0..4)
                    .filter(|i| bits >> i & 1 == 1)
                    .map(|i| coeffs[i])
                    .sum();
                for k in -3..=9 {
                    let mut b = blaster(&[]);
                    for (i, l) in ls.iter().enumerate() {
                        let f = if bits >> i & 1 == 1 {
                            l.clone()
                        } else {
                            l.not()
                        };
                        b.assert(&f).unwrap();
                    }
                    let pairs: Vec<(&Bool, i32)> = ls.iter().zip(coeffs).collect();
                    let tests = [
                        (Bool::pb_le(&pairs, k), sum <= k),
                        (Bool::pb_ge(&pairs, k), sum >= k),
                        (Bool::pb_eq(&pairs, k), sum == k),
                    ];
                    for (t, _) in &tests {
                        b.touch(&S::B(t.clone())).unwrap();
                    }
                    assert_eq!(b.solve(0, None), Outcome::Sat);
                    for (t, want) in &tests {
                        assert_eq!(b.bool(t), Some(*want), "{t} with bits {bits:04b}");
                    }
                }
            }
        });
    }

    /// A scope's facts hold inside it only; closing it leaves the rules as they were.
    #[test]
    fn a_closed_scope_constrains_nothing() {
        in_fresh_context(|| {
            let x = Int::new_const("x");
            let mut b = blaster(&[(&x, 0, 9)]);
            b.assert(&x.ge(Int::from_i64(2))).unwrap();
            b.open();
            b.assert(&x.eq(Int::from_i64(5))).unwrap();
            b.assert(&(&x + Int::from_i64(1)).eq(Int::from_i64(7)))
                .unwrap();
            assert_eq!(b.solve(0, None), Outcome::Unsat);
            b.close();
            b.open();
            b.assert(&(&x + Int::from_i64(1)).eq(Int::from_i64(7)))
                .unwrap();
            b.touch(&S::I(x.clone())).unwrap();
            assert_eq!(b.solve(0, None), Outcome::Sat);
            assert_eq!(b.int(&x), Some(6));
            b.close();
            // The rules alone: 2..=9; below 2 is still refused.
            b.open();
            b.assert(&x.lt(Int::from_i64(2))).unwrap();
            assert_eq!(b.solve(0, None), Outcome::Unsat);
            b.close();
        });
    }

    /// What the blaster cannot take is reported, not guessed.
    #[test]
    fn products_of_unknowns_and_unbounded_ints_are_left_to_z3() {
        in_fresh_context(|| {
            let (x, y, z) = (
                Int::new_const("x"),
                Int::new_const("y"),
                Int::new_const("z"),
            );
            let mut b = blaster(&[(&x, 0, 9), (&y, 0, 9)]);
            assert!(b.assert(&(&x * &y).eq(Int::from_i64(6))).is_err());
            assert!(b.assert(&z.gt(&x)).is_err());
            assert!(b.assert(&x.div(&y).eq(Int::from_i64(1))).is_err());
            // A product past 128 bits is refused, not computed with overflow.
            let big = Int::new_const("big");
            let mut b = blaster(&[(&big, -(1 << 62), 1 << 62)]);
            let sum = Int::add(&vec![big.clone(); 64]);
            let huge = &sum * Int::from_i64(1 << 62);
            assert!(b.assert(&huge.gt(Int::from_i64(0))).is_err());
            assert!(b
                .assert(&(&big * Int::from_i64(1 << 30)).gt(Int::from_i64(0)))
                .is_ok());
            // A `distinct` past MAX_DISTINCT operands stays whole for Z3.
            let many: Vec<Int> = (0..=MAX_DISTINCT)
                .map(|i| Int::new_const(format!("d{i}")))
                .collect();
            let mut b = blaster(&many.iter().map(|d| (d, 0, 999)).collect::<Vec<_>>());
            assert!(b.assert(&Int::distinct(&many[..MAX_DISTINCT])).is_ok());
            assert!(b.assert(&Int::distinct(&many)).is_err());
        });
    }

    /// Terms up to [`MAX_DEPTH`] deep are translated on a 2 MiB thread (what test threads
    /// get); deeper ones are left to Z3, not a stack overflow.
    #[test]
    fn deep_terms_fit_a_small_stack_or_go_to_z3() {
        let run = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                in_fresh_context(|| {
                    let x = Int::new_const("x");
                    let mut b = blaster(&[(&x, 0, 3)]);
                    let mut t = x.clone();
                    let mut c = x.ge(Int::from_i64(1));
                    for i in 0..MAX_DEPTH - 10 {
                        t = if i % 2 == 0 {
                            &t + Int::from_i64(1)
                        } else {
                            &t - Int::from_i64(1)
                        };
                        c = c.not().not();
                    }
                    let shallow = b.assert(&t.ge(Int::from_i64(0))).is_ok();
                    let deep = b.assert(&c).is_ok();
                    (shallow, deep)
                })
            })
            .expect("thread");
        assert_eq!(run.join().expect("no overflow"), (true, false));
    }

    /// A deadline stops a search that needs conflicts (pigeons into fewer holes).
    #[test]
    fn a_deadline_stops_the_search() {
        in_fresh_context(|| {
            let (pigeons, holes) = (7, 6);
            let at: Vec<Vec<Bool>> = (0..pigeons)
                .map(|p| {
                    (0..holes)
                        .map(|h| Bool::new_const(format!("p{p}h{h}")))
                        .collect()
                })
                .collect();
            let mut b = blaster(&[]);
            for row in &at {
                b.assert(&Bool::or(row)).unwrap();
            }
            for h in 0..holes {
                let column: Vec<&Bool> = at.iter().map(|row| &row[h]).collect();
                for (p, x) in column.iter().enumerate() {
                    for y in &column[p + 1..] {
                        b.assert(&Bool::and(&[(*x).clone(), (*y).clone()]).not())
                            .unwrap();
                    }
                }
            }
            assert_eq!(b.solve(0, Some(Instant::now())), Outcome::OutOfTime);
            assert_eq!(b.solve(0, None), Outcome::Unsat);
        });
    }

    /// A work budget stops the search with `OutOfWork`, and counts clauses.
    #[test]
    fn the_work_budget_stops_the_search() {
        in_fresh_context(|| {
            let x = Int::new_const("x");
            let mut b = blaster(&[(&x, 0, 1000)]);
            b.assert(&x.eq(Int::from_i64(977))).unwrap();
            assert!(b.work() > 10);
            assert_eq!(b.solve(5, None), Outcome::OutOfWork);
            assert_eq!(b.solve(0, None), Outcome::Sat);
        });
    }
}
