//! Static safety: proves, before any instance exists, that every list index in `gen`,
//! `verify`, the answer type and the prompt (and in the functions they call) stays in
//! bounds, and that no integer division or remainder divides by zero, for the params of
//! every level. Where a proof fails, `resyn check` warns (W0006, W0007) with the level and a
//! counterexample from the solver.
//!
//! How: an abstract interpreter over the IR whose integers and booleans are Z3 terms.
//! - Params are concrete (one run per level). Every random draw is a fresh unknown with the
//!   facts its builtin guarantees (`rand_int(lo, hi)` lies in `lo..=hi`, `permutation(n)`
//!   holds `n` ints in `0..n`, …); so is every value the analysis does not track.
//! - A collection is its length (a term) and a *template* of its elements: fresh variables,
//!   a condition over them and the element value built from them. Reading an element
//!   (iteration, indexing, `choice`) instantiates the template with new variables, so
//!   every element satisfies the condition without being the same element. Comprehensions
//!   build templates from their body under their clauses; `+`, list literals and stores
//!   join templates.
//! - Branches run both sides under their condition and merge with `ite`.
//! - `for` loops that assign `var`s get loop invariants by Houdini: candidate facts read
//!   off the state before the loop (a length or an int unchanged, grown by one per
//!   iteration, bounded by its start value; every element keeping a fact of its template)
//!   are assumed for an arbitrary iteration, the body runs once, and candidates that do
//!   not survive are dropped until the rest are inductive. The body is then checked once
//!   more under the surviving invariants.
//! - Functions are inlined at each call (there is no recursion).
//! - An obligation (`0 <= i < len(xs)`, `d != 0`) is proved when its negation is UNSAT
//!   under the facts of its path; afterwards it is assumed (a failing operation ends the
//!   path), so one mistake gives one warning.
//!
//! Everything is an over-approximation of what the evaluator can do, so "proved" is
//! sound; a warning may be a false alarm (the analysis lost a fact), which its text says:
//! "cannot prove". Map lookups `m[k]` and float division are not covered (spec/proofs.md
//! §9).

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use resyn_grammar::ast::{BinOp, UnOp};
use resyn_grammar::diag::Diagnostic;
use resyn_grammar::span::{FileId, Span};
use resyn_runtime::Value;
use z3::ast::{Ast, Bool, Dynamic, Int};
use z3::{DeclKind, Params, SatResult, Solver};

use crate::interval::{Intervals, FULL};
use crate::ir::{
    Access, Block, Callee, Clause, Env, Expr, LenExpr, Lit, Pattern, Program, ShapeExpr, Stmt,
    TemplatePart,
};
use crate::smt::TermSet;
use crate::source::SourceMap;

/// Abstract steps one env may take at one level before the analysis gives up (reported
/// as W0008, never as "safe").
const STEP_BUDGET: u64 = 200_000;
/// Solver queries one env may make at one level (obligations and invariant checks).
const QUERY_BUDGET: u64 = 1_000;
/// Z3's deterministic resource limit per obligation or invariant query.
const QUERY_RLIMIT: u32 = 4_000_000;
/// List literals longer than this are summarised by their element kind.
const MAX_LITERAL_ELEMS: usize = 64;
/// Unchanged ints (and lengths) tried as upper bounds of what a loop changes.
const MAX_OUTER_BOUNDS: usize = 6;

/// An abstract value.
#[derive(Clone, Debug)]
enum A {
    Int(Int),
    Bool(Bool),
    /// Strings, floats, enums, unit: not tracked.
    Top,
    Tuple(Rc<Vec<A>>),
    /// Fields sorted by name.
    Record(Rc<Vec<(Rc<str>, A)>>),
    Coll(Rc<Coll>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    /// Elements are `(key, value)` tuples.
    Map,
}

#[derive(Clone, Debug)]
struct Coll {
    kind: Kind,
    len: Int,
    elem: Rc<Tpl>,
    /// `Some(lo)` for a range: the elements are `lo, lo + 1, …` in order.
    lo: Option<Int>,
}

/// "Some values `vars` satisfy `cond`, and the element is `val`" (`val` built from them).
#[derive(Clone, Debug)]
struct Tpl {
    vars: Vec<Dynamic>,
    cond: Bool,
    val: A,
}

/// The analysis stopped (too much work): nothing is claimed for what was not reached.
#[derive(Debug)]
struct Exhausted;

type R<T> = Result<T, Exhausted>;

/// How much work one env may take at one level before the analysis stops (W0008).
#[derive(Clone, Copy, Debug)]
pub struct Effort {
    /// Abstract evaluation steps.
    pub steps: u64,
    /// Solver queries (obligations and invariant checks).
    pub queries: u64,
}

impl Effort {
    /// What `resyn check` allows: every bundled example fits. Most take well under a
    /// second per level; the BFS-heavy ones (maze_path, water_jugs: 500-780 queries per
    /// level) take seconds. The limit counts work, not time, so warnings do not depend on
    /// the machine; a query's time is bounded by its rlimit.
    pub const DEFAULT: Effort = Effort {
        steps: STEP_BUDGET,
        queries: QUERY_BUDGET,
    };
}

fn int(i: i64) -> Int {
    Int::from_i64(i)
}

fn tt() -> Bool {
    Bool::from_bool(true)
}

fn and_all(xs: &[Bool]) -> Bool {
    let xs: Vec<&Bool> = xs.iter().filter(|b| b.as_bool() != Some(true)).collect();
    match xs.len() {
        0 => tt(),
        1 => xs[0].clone(),
        _ => Bool::and(&xs),
    }
}

fn ite_int(c: &Bool, a: &Int, b: &Int) -> Int {
    match c.as_bool() {
        Some(true) => a.clone(),
        Some(false) => b.clone(),
        None if a == b => a.clone(),
        None => c.ite(a, b),
    }
}

fn min_int(a: &Int, b: &Int) -> Int {
    ite_int(&a.le(b), a, b)
}

fn max_int(a: &Int, b: &Int) -> Int {
    ite_int(&a.ge(b), a, b)
}

/// Names of the uninterpreted constants in a term.
fn free_consts(t: &Dynamic, out: &mut HashSet<String>) {
    if t.is_app() {
        if t.is_const() {
            if t.decl().kind() == DeclKind::Uninterpreted {
                out.insert(t.decl().name());
            }
            return;
        }
        for c in t.children() {
            free_consts(&c, out);
        }
    }
}

fn names(vars: &[Dynamic]) -> HashSet<String> {
    vars.iter().map(|v| v.decl().name()).collect()
}

/// The conjuncts of a formula.
fn conjuncts(b: &Bool, out: &mut Vec<Bool>) {
    if b.is_app() && b.decl().kind() == DeclKind::And {
        for c in b.children() {
            if let Some(c) = c.as_bool() {
                conjuncts(&c, out);
            }
        }
    } else if b.as_bool() != Some(true) {
        out.push(b.clone());
    }
}

impl A {
    fn subst(&self, pairs: &[(&Dynamic, &Dynamic)]) -> A {
        match self {
            A::Int(x) => A::Int(x.substitute(pairs)),
            A::Bool(b) => A::Bool(b.substitute(pairs)),
            A::Top => A::Top,
            A::Tuple(v) => A::Tuple(Rc::new(v.iter().map(|x| x.subst(pairs)).collect())),
            A::Record(fs) => A::Record(Rc::new(
                fs.iter()
                    .map(|(n, x)| (n.clone(), x.subst(pairs)))
                    .collect(),
            )),
            A::Coll(c) => A::Coll(Rc::new(Coll {
                kind: c.kind,
                len: c.len.substitute(pairs),
                elem: Rc::new(Tpl {
                    vars: c.elem.vars.clone(),
                    cond: c.elem.cond.substitute(pairs),
                    val: c.elem.val.subst(pairs),
                }),
                lo: c.lo.as_ref().map(|l| l.substitute(pairs)),
            })),
        }
    }

    /// Cheap identity (same term or same shared node): used to skip merging unchanged
    /// slots.
    fn same(&self, other: &A) -> bool {
        match (self, other) {
            (A::Int(a), A::Int(b)) => a == b,
            (A::Bool(a), A::Bool(b)) => a == b,
            (A::Top, A::Top) => true,
            (A::Tuple(a), A::Tuple(b)) => Rc::ptr_eq(a, b),
            (A::Record(a), A::Record(b)) => Rc::ptr_eq(a, b),
            (A::Coll(a), A::Coll(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// Kinds of obligations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObKind {
    Index,
    Division,
}

/// What the solver said about an obligation that was not proved.
#[derive(Clone, Debug, PartialEq)]
enum Detail {
    /// A model: the index and the list length, or nothing for a zero divisor.
    Counter {
        index: Option<i64>,
        len: Option<i64>,
    },
    /// The list's abstraction was lost (nothing is known about it).
    Lost,
    /// The solver gave up within its limit.
    Undecided,
}

/// One failed obligation, as first seen.
#[derive(Clone, Debug)]
struct Failure {
    level: u8,
    detail: Detail,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SiteKey {
    /// Where the warning goes: the site itself, or the innermost call from the user's file
    /// that leads to it (for sites inside the standard library).
    report: (u32, u32, u32),
    kind: ObKind,
    site: (u32, u32, u32),
}

fn key_of(s: Span) -> (u32, u32, u32) {
    (s.file.0, s.start, s.end)
}

struct Scope {
    facts: Vec<Fact>,
    vars: Vec<Dynamic>,
}

/// A fact and the unknowns it mentions (to slice queries).
struct Fact {
    b: Bool,
    vars: Vec<Dynamic>,
}

/// Houdini candidates: where in a slot's value a fact applies.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Step {
    Tuple(usize),
    Field(Rc<str>),
    /// The length of the collection here.
    Len,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Rel {
    Eq,
    Ge,
    Le,
    /// Grows by exactly one per iteration.
    EqPlusT,
}

// Equality and hashing of the terms are Z3's (hash-consed: structural, and O(1)).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum CandKind {
    /// An int at `path` relates to its value before the loop.
    Scalar { rel: Rel, base: Int },
    /// Every element of the collection at `path` satisfies `atom`, whose `holes` are
    /// replaced by the element's leaves at the given paths.
    Elem {
        atom: Bool,
        holes: Vec<(Dynamic, Vec<Step>)>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Cand {
    slot: usize,
    path: Vec<Step>,
    kind: CandKind,
}

struct Analyzer<'p> {
    prog: &'p Program,
    root: FileId,
    effort: Effort,
    /// One solver, reused: each query pushes the facts of its path that share unknowns
    /// with it, checks, and pops.
    solver: Solver,
    scopes: Vec<Scope>,
    /// Obligations are checked (not during Houdini's trial runs of a loop body).
    checking: bool,
    steps: u64,
    level: u8,
    /// Spans of the calls being inlined, outermost first.
    calls: Vec<Span>,
    /// Instance values set by the generator.
    fields: Vec<Option<A>>,
    failures: BTreeMap<SiteKey, Failure>,
    /// Known ranges of unknowns (from the facts they were made with).
    iv: Intervals,
    /// Stands for the loop counter in element invariants that grow per iteration.
    tvar: Int,
    /// Elements read by index on this path: the same list at the same index is the same
    /// element (scope depth, list, index, element). The `Rc` keeps the list alive, so its
    /// address is not reused.
    reads: Vec<(usize, Rc<Coll>, Int, A)>,
    /// Upper-bound candidates of the loop being analysed (see `for_loop`).
    outer: Vec<Int>,
    /// Solver queries so far (bounded like the steps).
    queries: u64,
    /// Per loop (its body's address): how many candidates it had and which survived.
    loop_cache: std::collections::HashMap<usize, (usize, Vec<usize>)>,
}

/// Analyses every env of a program (one that checked clean) and returns the warnings.
pub fn analyze(program: &Program, sources: &SourceMap, root: FileId) -> Vec<Diagnostic> {
    analyze_with(program, sources, root, Effort::DEFAULT)
}

/// [`analyze`] with an explicit effort limit.
pub fn analyze_with(
    program: &Program,
    sources: &SourceMap,
    root: FileId,
    effort: Effort,
) -> Vec<Diagnostic> {
    if crate::prove::check_z3().is_err() {
        // An old Z3 gives wrong UNSAT answers: no claim is better than a wrong one.
        return Vec::new();
    }
    // One task per env and distinct params (levels with equal params are one analysis);
    // tasks run in parallel, each in a Z3 context of its own, and merge in a fixed order.
    let compiled = crate::eval::compile(program);
    let mut tasks: Vec<(usize, u8)> = Vec::new();
    for (ei, cenv) in compiled.envs.iter().enumerate() {
        let mut seen: Vec<Vec<Value>> = Vec::new();
        for level in 1..=5u8 {
            // A level whose params do not evaluate cannot generate anything (gen says so).
            let Ok(params) = cenv.resolve_params(level, &[]) else {
                continue;
            };
            if !seen.contains(&params) {
                seen.push(params);
                tasks.push((ei, level));
            }
        }
    }
    let run = |&(ei, level): &(usize, u8)| -> (BTreeMap<SiteKey, Failure>, bool) {
        let compiled = crate::eval::compile(program);
        let Ok(params) = compiled.envs[ei].resolve_params(level, &[]) else {
            return (BTreeMap::new(), true);
        };
        crate::prove::in_fresh_context(|| {
            let mut az = Analyzer::new(program, root, level, effort);
            let complete = az.env(&program.envs[ei], &params).is_ok();
            (az.failures, complete)
        })
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        // The analysis recurses over the program like the evaluator does.
        .stack_size(64 << 20)
        .build()
        .ok();
    let run_all = |ts: &[(usize, u8)]| -> Vec<(BTreeMap<SiteKey, Failure>, bool)> {
        match &pool {
            Some(pool) => {
                use rayon::prelude::*;
                pool.install(|| ts.par_iter().map(run).collect())
            }
            None => ts.iter().map(run).collect(),
        }
    };
    // The first level of every env first; an env whose first level exhausts the budget
    // is not analysed further (its other levels would only use up the same budget).
    let firsts: Vec<(usize, u8)> = tasks
        .iter()
        .enumerate()
        .filter(|(i, (e, _))| *i == 0 || tasks[i - 1].0 != *e)
        .map(|(_, t)| *t)
        .collect();
    let first_results = run_all(&firsts);
    let rest: Vec<(usize, u8)> = tasks
        .iter()
        .filter(|t| !firsts.contains(t))
        .filter(|(e, _)| {
            firsts
                .iter()
                .zip(&first_results)
                .any(|((fe, _), (_, complete))| fe == e && *complete)
        })
        .copied()
        .collect();
    let rest_results = run_all(&rest);
    let tasks: Vec<(usize, u8)> = firsts.iter().chain(&rest).copied().collect();
    let results: Vec<(BTreeMap<SiteKey, Failure>, bool)> =
        first_results.into_iter().chain(rest_results).collect();
    let mut out = Vec::new();
    for (ei, env) in program.envs.iter().enumerate() {
        let mut failures: BTreeMap<SiteKey, Failure> = BTreeMap::new();
        let mut gave_up: Option<u8> = None;
        for ((_, level), (found, complete)) in
            tasks.iter().zip(&results).filter(|((e, _), _)| *e == ei)
        {
            for (k, f) in found {
                failures.entry(*k).or_insert_with(|| f.clone());
            }
            if !complete && gave_up.is_none() {
                gave_up = Some(*level);
            }
        }
        for (k, f) in &failures {
            out.push(diagnostic(sources, k, f));
        }
        if let Some(level) = gave_up {
            out.push(
                Diagnostic::new(
                    "W0008",
                    env.span,
                    format!("static safety of env `{}` is not established", env.name),
                )
                .with_label(format!(
                    "the analysis stopped at level {level}: it needs more than {} steps or {} solver queries", effort.steps, effort.queries
                ))
                .with_help(
                    "indexing and division it did not reach are unchecked (they still never crash: a runtime error fails the instance or the constraint); smaller generator loops or helper functions help",
                ),
            );
        }
    }
    out
}

fn snippet(sources: &SourceMap, s: Span) -> String {
    let text = &sources.get(s.file).text;
    let t = text.get(s.range()).unwrap_or("");
    let t: String = t.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.chars().count() > 60 {
        format!("{}…", t.chars().take(60).collect::<String>())
    } else {
        t
    }
}

fn diagnostic(sources: &SourceMap, k: &SiteKey, f: &Failure) -> Diagnostic {
    let report = Span {
        file: FileId(k.report.0),
        start: k.report.1,
        end: k.report.2,
    };
    let site = Span {
        file: FileId(k.site.0),
        start: k.site.1,
        end: k.site.2,
    };
    let text = snippet(sources, site);
    let inside = if site == report {
        String::new()
    } else {
        let file = sources.get(site.file).name.trim_end_matches(".rsn");
        let module = match file.strip_prefix("<std>/") {
            Some(m) => format!("std::{m}"),
            None => file.to_string(),
        };
        format!(" (`{text}` in `{module}`)")
    };
    let level = f.level;
    let (code, message, label, help) = match k.kind {
        ObKind::Index => (
            "W0006",
            format!("cannot prove that this index stays in bounds{inside}"),
            match &f.detail {
                Detail::Counter {
                    index: Some(i),
                    len: Some(n),
                } => format!("at level {level} the index can be {i} while the list has {n} element{}", if *n == 1 { "" } else { "s" }),
                Detail::Counter { .. } => format!("at level {level} the index can be out of range"),
                Detail::Lost => format!("at level {level} nothing is known about this list"),
                Detail::Undecided => format!("at level {level} the solver could not decide it"),
            },
            "bound the index where it is made (a domain such as `int in 0..n`, a `require`, or an `if` guard); an index out of range fails the instance in `gen` and the constraint in `verify`",
        ),
        ObKind::Division => (
            "W0007",
            format!("cannot prove that this divisor is never zero{inside}"),
            match &f.detail {
                Detail::Undecided => format!("at level {level} the solver could not decide it"),
                _ => format!("at level {level} the divisor can be 0"),
            },
            "make sure the divisor cannot be 0 (a param domain, a `require`, or an `if` guard); division by zero fails the instance in `gen` and the constraint in `verify`",
        ),
    };
    Diagnostic::new(code, report, message)
        .with_label(label)
        .with_help(help)
}

impl<'p> Analyzer<'p> {
    fn new(prog: &'p Program, root: FileId, level: u8, effort: Effort) -> Self {
        let solver = Solver::new();
        let mut p = Params::new();
        p.set_u32("rlimit", QUERY_RLIMIT);
        solver.set_params(&p);
        Analyzer {
            prog,
            root,
            effort,
            solver,
            scopes: vec![Scope {
                facts: Vec::new(),
                vars: Vec::new(),
            }],
            checking: true,
            steps: 0,
            level,
            calls: Vec::new(),
            fields: Vec::new(),
            failures: BTreeMap::new(),
            iv: Intervals::default(),
            tvar: Int::fresh_const("iteration"),
            reads: Vec::new(),
            outer: Vec::new(),
            queries: 0,
            loop_cache: Default::default(),
        }
    }

    fn tick(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > self.effort.steps || self.queries > self.effort.queries {
            return Err(Exhausted);
        }
        Ok(())
    }

    // ------------------------------------------------------------------ facts and scopes

    fn assume(&mut self, b: Bool) {
        if b.as_bool() == Some(true) {
            return;
        }
        self.learn_bounds(&b);
        let vars = free_vars(&Dynamic::from_ast(&b));
        self.scopes
            .last_mut()
            .expect("a scope")
            .facts
            .push(Fact { b, vars });
    }

    /// Ranges of unknowns made in the current scope, from facts like `x >= lo`, `x < hi`
    /// (only there: a fact of an inner scope may be a path condition that does not hold
    /// on every path the unknown reaches).
    fn learn_bounds(&mut self, b: &Bool) {
        let mut parts = Vec::new();
        conjuncts(b, &mut parts);
        for a in parts {
            if !a.is_app() || a.num_children() != 2 {
                continue;
            }
            let kind = a.decl().kind();
            let kids = a.children();
            let (Some(l), Some(r)) = (kids[0].as_int(), kids[1].as_int()) else {
                continue;
            };
            let local = |x: &Int, s: &Scope| {
                x.is_const() && s.vars.iter().any(|v| v.as_int().is_some_and(|v| v == *x))
            };
            let scope = self.scopes.last().expect("a scope");
            let (l_local, r_local) = (local(&l, scope), local(&r, scope));
            // Normalise to `x REL e` with x the local unknown.
            let (x, e, rel) = match (l_local, r_local) {
                (true, _) => (l, r, kind),
                (false, true) => (
                    r,
                    l,
                    match kind {
                        DeclKind::Le => DeclKind::Ge,
                        DeclKind::Ge => DeclKind::Le,
                        DeclKind::Lt => DeclKind::Gt,
                        DeclKind::Gt => DeclKind::Lt,
                        k => k,
                    },
                ),
                _ => continue,
            };
            let (lo, hi) = self.iv.of(&e);
            match rel {
                DeclKind::Ge => self.iv.bound(&x, lo, FULL.1.max(lo)),
                DeclKind::Gt => self.iv.bound(&x, lo + 1, FULL.1.max(lo + 1)),
                DeclKind::Le => self.iv.bound(&x, FULL.0.min(hi), hi),
                DeclKind::Lt => self.iv.bound(&x, FULL.0.min(hi - 1), hi - 1),
                DeclKind::Eq => self.iv.bound(&x, lo, hi),
                _ => {}
            }
        }
    }

    fn register(&mut self, v: Dynamic) {
        self.scopes.last_mut().expect("a scope").vars.push(v);
    }

    fn fresh_int(&mut self, name: &str) -> Int {
        let x = Int::fresh_const(name);
        self.register(Dynamic::from_ast(&x));
        x
    }

    fn fresh_bool(&mut self, name: &str) -> Bool {
        let x = Bool::fresh_const(name);
        self.register(Dynamic::from_ast(&x));
        x
    }

    fn open(&mut self) {
        self.scopes.push(Scope {
            facts: Vec::new(),
            vars: Vec::new(),
        });
    }

    fn close(&mut self) -> Scope {
        let depth = self.scopes.len();
        self.reads.retain(|r| r.0 < depth);
        self.scopes.pop().expect("an open scope")
    }

    /// Runs `f` in a scope whose facts and unknowns are dropped afterwards (what is learnt
    /// there holds only there).
    fn scoped<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        self.open();
        let r = f(self);
        self.close();
        r
    }

    /// Keeps a closed scope's variables and its facts under guard `g` (a branch).
    fn adopt(&mut self, s: Scope, g: &Bool) {
        for v in s.vars {
            self.register(v);
        }
        if !s.facts.is_empty() {
            let fs: Vec<Bool> = s.facts.into_iter().map(|f| f.b).collect();
            self.assume(g.implies(and_all(&fs)));
        }
    }

    /// Runs `f` in a scope of its own and makes a template of its value: its variables
    /// and facts stay inside the template.
    fn template(&mut self, f: impl FnOnce(&mut Self) -> R<A>) -> R<Tpl> {
        self.open();
        let v = f(self);
        let s = self.close();
        let fs: Vec<Bool> = s.facts.into_iter().map(|f| f.b).collect();
        Ok(Tpl {
            vars: s.vars,
            cond: and_all(&fs),
            val: v?,
        })
    }

    /// A fresh element of a template: new variables, the condition assumed.
    fn inst(&mut self, t: &Tpl) -> A {
        if t.vars.is_empty() {
            self.assume(t.cond.clone());
            return t.val.clone();
        }
        let fresh: Vec<Dynamic> = t
            .vars
            .iter()
            .map(|v| Dynamic::fresh_const("e", &v.get_sort()))
            .collect();
        let pairs: Vec<(&Dynamic, &Dynamic)> = t.vars.iter().zip(fresh.iter()).collect();
        let cond = t.cond.substitute(&pairs);
        let val = t.val.subst(&pairs);
        for v in fresh {
            self.register(v);
        }
        self.assume(cond);
        val
    }

    /// Does interval arithmetic alone prove `b` (a conjunction of int comparisons)? Most
    /// obligations under concrete params are this easy, and it costs no solver call.
    fn by_intervals(&mut self, b: &Bool) -> bool {
        let mut parts = Vec::new();
        conjuncts(b, &mut parts);
        parts.iter().all(|a| {
            if a.as_bool() == Some(true) {
                return true;
            }
            if !a.is_app() || a.num_children() != 2 {
                return false;
            }
            let kids = a.children();
            let (Some(l), Some(r)) = (kids[0].as_int(), kids[1].as_int()) else {
                return false;
            };
            let ((l0, l1), (r0, r1)) = (self.iv.of(&l), self.iv.of(&r));
            match a.decl().kind() {
                DeclKind::Le => l1 <= r0,
                DeclKind::Lt => l1 < r0,
                DeclKind::Ge => l0 >= r1,
                DeclKind::Gt => l0 > r1,
                DeclKind::Eq => l0 == l1 && r0 == r1 && l0 == r0,
                DeclKind::Distinct => l1 < r0 || r1 < l0,
                _ => false,
            }
        })
    }

    /// Can `goal` hold together with the facts of the current path? Only the facts
    /// that share unknowns with it (transitively) are given to a fresh solver: the rest
    /// cannot affect the answer, and leaving them out keeps each query small however
    /// much of the env was analysed before.
    fn refute(&mut self, goal: &Bool) -> (SatResult, Option<z3::Model>) {
        self.solver.push();
        self.assert_cone(goal);
        let r = self.decide(goal);
        self.solver.pop(1);
        r
    }

    /// Asserts the facts of the current path that share unknowns with `goal`
    /// (transitively).
    fn assert_cone(&mut self, goal: &Bool) {
        let mut want: TermSet<Dynamic> = free_vars(&Dynamic::from_ast(goal)).into_iter().collect();
        let facts: Vec<&Fact> = self.scopes.iter().flat_map(|s| s.facts.iter()).collect();
        let mut used = vec![false; facts.len()];
        loop {
            let mut changed = false;
            for (i, f) in facts.iter().enumerate() {
                if !used[i] && (f.vars.is_empty() || f.vars.iter().any(|v| want.contains(v))) {
                    used[i] = true;
                    want.extend(f.vars.iter().cloned());
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for (f, u) in facts.iter().zip(&used) {
            if *u {
                self.solver.assert(&f.b);
            }
        }
    }

    /// Can `goal` hold together with what is asserted? One query.
    fn decide(&mut self, goal: &Bool) -> (SatResult, Option<z3::Model>) {
        self.queries += 1;
        self.solver.push();
        self.solver.assert(goal);
        let r = self.solver.check();
        let model = (r == SatResult::Sat)
            .then(|| self.solver.get_model())
            .flatten();
        self.solver.pop(1);
        (r, model)
    }

    // ------------------------------------------------------------------ obligations

    fn report_span(&self, site: Span) -> Span {
        if site.file == self.root {
            return site;
        }
        self.calls
            .iter()
            .rev()
            .find(|c| c.file == self.root)
            .copied()
            .unwrap_or(site)
    }

    fn obligation(
        &mut self,
        kind: ObKind,
        site: Span,
        ob: Bool,
        terms: Option<(&Int, &Int)>,
    ) -> R<()> {
        self.tick()?;
        if self.checking {
            let key = SiteKey {
                report: key_of(self.report_span(site)),
                kind,
                site: key_of(site),
            };
            if !self.failures.contains_key(&key) && !self.by_intervals(&ob) {
                let (r, model) = self.refute(&ob.not());
                let detail = match r {
                    SatResult::Unsat => None,
                    SatResult::Unknown => Some(Detail::Undecided),
                    SatResult::Sat => {
                        let read = |x: &Int| {
                            model
                                .as_ref()
                                .and_then(|m| m.eval(x, true))
                                .and_then(|v| v.as_i64())
                        };
                        Some(Detail::Counter {
                            index: terms.and_then(|(i, _)| read(i)),
                            len: terms.and_then(|(_, n)| read(n)),
                        })
                    }
                };
                if let Some(detail) = detail {
                    self.failures.insert(
                        key,
                        Failure {
                            level: self.level,
                            detail,
                        },
                    );
                }
            }
        }
        // A failing operation ends its path: past it, the obligation holds.
        self.assume(ob);
        Ok(())
    }

    fn lost(&mut self, site: Span) -> R<()> {
        self.tick()?;
        if self.checking {
            let key = SiteKey {
                report: key_of(self.report_span(site)),
                kind: ObKind::Index,
                site: key_of(site),
            };
            self.failures.entry(key).or_insert(Failure {
                level: self.level,
                detail: Detail::Lost,
            });
        }
        Ok(())
    }

    // ------------------------------------------------------------------ values

    fn as_int(&mut self, v: &A) -> Int {
        match v {
            A::Int(x) => x.clone(),
            _ => self.fresh_int("n"),
        }
    }

    fn as_bool(&mut self, v: &A) -> Bool {
        match v {
            A::Bool(b) => b.clone(),
            _ => self.fresh_bool("b"),
        }
    }

    fn abstract_value(&mut self, v: &Value) -> R<A> {
        Ok(match v {
            Value::Int(i) => A::Int(int(*i)),
            Value::Bool(b) => A::Bool(Bool::from_bool(*b)),
            Value::Unit | Value::Float(_) | Value::Str(_) | Value::Enum(..) => A::Top,
            Value::Tuple(xs) => A::Tuple(Rc::new(
                xs.iter()
                    .map(|x| self.abstract_value(x))
                    .collect::<R<_>>()?,
            )),
            Value::Record(fs) => A::Record(Rc::new(
                fs.iter()
                    .map(|(n, x)| Ok((n.clone(), self.abstract_value(x)?)))
                    .collect::<R<_>>()?,
            )),
            Value::List(xs) => {
                let ints: Option<Vec<i64>> = xs
                    .iter()
                    .map(|x| match x {
                        Value::Int(i) => Some(*i),
                        _ => None,
                    })
                    .collect();
                match ints {
                    // Many ints: each lies between the smallest and the largest.
                    Some(is) if is.len() > MAX_LITERAL_ELEMS => {
                        let (lo, hi) = (is.iter().min().copied(), is.iter().max().copied());
                        let elem = self.template(|az| {
                            let k = az.fresh_int("k");
                            az.assume(k.ge(int(lo.unwrap_or(0))));
                            az.assume(k.le(int(hi.unwrap_or(0))));
                            Ok(A::Int(k))
                        })?;
                        A::Coll(Rc::new(Coll {
                            kind: Kind::List,
                            len: int(is.len() as i64),
                            elem: Rc::new(elem),
                            lo: None,
                        }))
                    }
                    _ => {
                        let items = xs
                            .iter()
                            .take(MAX_LITERAL_ELEMS)
                            .map(|x| self.abstract_value(x))
                            .collect::<R<Vec<_>>>()?;
                        if xs.len() > MAX_LITERAL_ELEMS {
                            self.summary(Kind::List, int(xs.len() as i64), &items[0])?
                        } else {
                            self.literal(Kind::List, items)?
                        }
                    }
                }
            }
            Value::Set(xs) => {
                let items = xs
                    .iter()
                    .take(MAX_LITERAL_ELEMS + 1)
                    .map(|x| self.abstract_value(x))
                    .collect::<R<Vec<_>>>()?;
                let like = items.first().cloned().unwrap_or(A::Top);
                self.summary(Kind::Set, int(xs.len() as i64), &like)?
            }
            Value::Map(m) => {
                let first = m
                    .iter()
                    .next()
                    .map(|(k, v)| Value::tuple(vec![k.clone(), v.clone()]));
                let item = match first {
                    Some(t) => self.abstract_value(&t)?,
                    None => A::Top,
                };
                self.summary(Kind::Map, int(m.len() as i64), &item)?
            }
        })
    }

    /// A collection of `len` elements shaped like `like`, about which nothing else is known.
    fn summary(&mut self, kind: Kind, len: Int, like: &A) -> R<A> {
        let like = like.clone();
        let elem = self.template(|az| Ok(az.havoc(&like)))?;
        Ok(A::Coll(Rc::new(Coll {
            kind,
            len,
            elem: Rc::new(elem),
            lo: None,
        })))
    }

    /// A fresh value of the same shape, with nothing known.
    fn havoc(&mut self, v: &A) -> A {
        match v {
            A::Int(_) => A::Int(self.fresh_int("h")),
            A::Bool(_) => A::Bool(self.fresh_bool("h")),
            A::Top => A::Top,
            A::Tuple(xs) => A::Tuple(Rc::new(xs.iter().map(|x| self.havoc(x)).collect())),
            A::Record(fs) => A::Record(Rc::new(
                fs.iter().map(|(n, x)| (n.clone(), self.havoc(x))).collect(),
            )),
            A::Coll(c) => {
                let len = self.fresh_int("len");
                self.assume(len.ge(int(0)));
                let like = c.elem.val.clone();
                // Cannot run out of budget: havoc does not tick.
                let elem = self
                    .template(|az| Ok(az.havoc(&like)))
                    .unwrap_or_else(|_| Tpl {
                        vars: Vec::new(),
                        cond: tt(),
                        val: A::Top,
                    });
                A::Coll(Rc::new(Coll {
                    kind: c.kind,
                    len,
                    elem: Rc::new(elem),
                    lo: None,
                }))
            }
        }
    }

    /// `c ? a : b`.
    fn merge(&mut self, c: &Bool, a: &A, b: &A) -> A {
        if a.same(b) {
            return a.clone();
        }
        match (a, b) {
            (A::Int(x), A::Int(y)) => A::Int(ite_int(c, x, y)),
            (A::Bool(x), A::Bool(y)) => A::Bool(c.ite(x, y)),
            (A::Tuple(xs), A::Tuple(ys)) if xs.len() == ys.len() => A::Tuple(Rc::new(
                xs.iter()
                    .zip(ys.iter())
                    .map(|(x, y)| self.merge(c, x, y))
                    .collect(),
            )),
            (A::Record(xs), A::Record(ys)) if xs.len() == ys.len() => A::Record(Rc::new(
                xs.iter()
                    .zip(ys.iter())
                    .map(|((n, x), (_, y))| (n.clone(), self.merge(c, x, y)))
                    .collect(),
            )),
            (A::Coll(x), A::Coll(y)) if x.kind == y.kind => {
                let elem = self.join(c, &x.elem, &y.elem);
                A::Coll(Rc::new(Coll {
                    kind: x.kind,
                    len: ite_int(c, &x.len, &y.len),
                    elem: Rc::new(elem),
                    lo: match (&x.lo, &y.lo) {
                        (Some(p), Some(q)) => Some(ite_int(c, p, q)),
                        _ => None,
                    },
                }))
            }
            (A::Int(_), _) | (_, A::Int(_)) => A::Int(self.fresh_int("m")),
            (A::Bool(_), _) | (_, A::Bool(_)) => A::Bool(self.fresh_bool("m")),
            _ => A::Top,
        }
    }

    /// Elements of either template: from `x` when `c`, else from `y`.
    fn join(&mut self, c: &Bool, x: &Rc<Tpl>, y: &Rc<Tpl>) -> Tpl {
        // A template with no elements (an empty list's) adds nothing.
        if Rc::ptr_eq(x, y) || y.cond.as_bool() == Some(false) {
            return (**x).clone();
        }
        if x.cond.as_bool() == Some(false) {
            return (**y).clone();
        }
        let mut vars = x.vars.clone();
        let seen = names(&vars);
        vars.extend(
            y.vars
                .iter()
                .filter(|v| !seen.contains(&v.decl().name()))
                .cloned(),
        );
        let cond = and_all(&[c.implies(&x.cond), c.not().implies(&y.cond)]);
        // Merging inside a template: new unknowns belong to the template.
        self.open();
        let val = self.merge(c, &x.val, &y.val);
        let s = self.close();
        vars.extend(s.vars);
        let mut all = vec![cond];
        all.extend(s.facts.into_iter().map(|f| f.b));
        Tpl {
            vars,
            cond: and_all(&all),
            val,
        }
    }

    /// Joins with a fresh selector (elements from either side, unconditionally).
    fn union(&mut self, x: &Rc<Tpl>, y: &Rc<Tpl>) -> Tpl {
        if Rc::ptr_eq(x, y) || y.cond.as_bool() == Some(false) {
            return (**x).clone();
        }
        if x.cond.as_bool() == Some(false) {
            return (**y).clone();
        }
        let s = Bool::fresh_const("sel");
        let mut t = self.join(&s, x, y);
        t.vars.push(Dynamic::from_ast(&s));
        t
    }

    fn literal(&mut self, kind: Kind, items: Vec<A>) -> R<A> {
        let n = items.len();
        let elem = if n == 0 {
            Tpl {
                vars: Vec::new(),
                cond: Bool::from_bool(false),
                val: A::Top,
            }
        } else {
            self.template(|az| {
                let k = az.fresh_int("k");
                az.assume(k.ge(int(0)));
                az.assume(k.lt(int(n as i64)));
                let mut v = items[n - 1].clone();
                for i in (0..n - 1).rev() {
                    v = az.merge(&k.eq(int(i as i64)), &items[i], &v);
                }
                Ok(v)
            })?
        };
        Ok(A::Coll(Rc::new(Coll {
            kind,
            len: int(n as i64),
            elem: Rc::new(elem),
            lo: None,
        })))
    }

    fn range(&mut self, lo: Int, hi: Int) -> R<A> {
        let (l, h) = (lo.clone(), hi.clone());
        let elem = self.template(|az| {
            let k = az.fresh_int("r");
            az.assume(k.ge(&l));
            az.assume(k.lt(&h));
            Ok(A::Int(k))
        })?;
        let len = max_int(&int(0), &Int::sub(&[&hi, &lo]));
        Ok(A::Coll(Rc::new(Coll {
            kind: Kind::List,
            len,
            elem: Rc::new(elem),
            lo: Some(lo),
        })))
    }

    fn coll(v: &A) -> Option<Rc<Coll>> {
        match v {
            A::Coll(c) => Some(c.clone()),
            _ => None,
        }
    }

    fn with(kind: Kind, len: Int, elem: Rc<Tpl>) -> A {
        A::Coll(Rc::new(Coll {
            kind,
            len,
            elem,
            lo: None,
        }))
    }

    // ------------------------------------------------------------------ the env

    fn env(&mut self, env: &Env, params: &[Value]) -> R<()> {
        let np = params.len();
        let pvals: Vec<A> = params
            .iter()
            .map(|v| self.abstract_value(v))
            .collect::<R<_>>()?;
        let mut gen = vec![A::Top; (env.gen_slots as usize).max(np)];
        gen[..np].clone_from_slice(&pvals);
        self.fields = vec![None; env.fields.len()];
        self.block(&mut gen, &env.gen)?;
        let fields: Vec<A> = self
            .fields
            .iter()
            .map(|f| f.clone().unwrap_or(A::Top))
            .collect();
        // The answer's type (its lengths and domains), then verify, see params + fields.
        let mut frame = vec![A::Top; (env.answer_slots as usize).max(np + fields.len())];
        frame[..np].clone_from_slice(&pvals);
        frame[np..np + fields.len()].clone_from_slice(&fields);
        let answer = self.shape(&mut frame, &env.answer)?;
        let mut verify = vec![A::Top; (env.verify_slots as usize).max(np + fields.len() + 1)];
        verify[..np].clone_from_slice(&pvals);
        verify[np..np + fields.len()].clone_from_slice(&fields);
        verify[np + fields.len()] = answer;
        self.block(&mut verify, &env.verify)?;
        let mut prompt = vec![A::Top; (env.prompt_slots as usize).max(np + fields.len())];
        prompt[..np].clone_from_slice(&pvals);
        let mut i = np;
        for (f, v) in env.fields.iter().zip(&fields) {
            if f.shown {
                prompt[i] = v.clone();
                i += 1;
            }
        }
        self.parts(&mut prompt, &env.prompt.parts)?;
        Ok(())
    }

    /// An answer of the shape: unknowns with the facts the decoder enforces.
    fn shape(&mut self, f: &mut [A], s: &ShapeExpr) -> R<A> {
        self.tick()?;
        Ok(match s {
            ShapeExpr::Int => A::Int(self.fresh_int("ans")),
            ShapeExpr::Bool => A::Bool(self.fresh_bool("ans")),
            ShapeExpr::Float | ShapeExpr::Str | ShapeExpr::Unit | ShapeExpr::Enum(_) => A::Top,
            ShapeExpr::In(base, coll) => {
                let c = self.expr(f, coll)?;
                let base = self.shape(f, base)?;
                match Self::coll(&c) {
                    // A value of the domain is one of its elements.
                    Some(c) if matches!(base, A::Int(_)) => {
                        let e = self.inst(&c.elem);
                        match e {
                            A::Int(_) => e,
                            _ => base,
                        }
                    }
                    _ => base,
                }
            }
            ShapeExpr::Tuple(ps) => A::Tuple(Rc::new(
                ps.iter().map(|p| self.shape(f, p)).collect::<R<_>>()?,
            )),
            ShapeExpr::Record(fs) => A::Record(Rc::new(
                fs.iter()
                    .map(|(n, p)| Ok((Rc::from(n.as_str()), self.shape(f, p)?)))
                    .collect::<R<_>>()?,
            )),
            ShapeExpr::List(e, len) => {
                let len = match len {
                    LenExpr::Exact(n) => {
                        let v = self.expr(f, n)?;
                        let n = self.as_int(&v);
                        self.assume(n.ge(int(0)));
                        n
                    }
                    LenExpr::AtMost(n) => {
                        let v = self.expr(f, n)?;
                        let n = self.as_int(&v);
                        let l = self.fresh_int("len");
                        self.assume(l.ge(int(0)));
                        self.assume(l.le(&n));
                        l
                    }
                    LenExpr::Any => {
                        let l = self.fresh_int("len");
                        self.assume(l.ge(int(0)));
                        l
                    }
                };
                let e: &ShapeExpr = e;
                let mut inner = f.to_vec();
                let elem = self.template(|az| az.shape(&mut inner, e))?;
                A::Coll(Rc::new(Coll {
                    kind: Kind::List,
                    len,
                    elem: Rc::new(elem),
                    lo: None,
                }))
            }
            ShapeExpr::Set(e) | ShapeExpr::Map(e, _) => {
                let kind = if matches!(s, ShapeExpr::Set(_)) {
                    Kind::Set
                } else {
                    Kind::Map
                };
                let len = self.fresh_int("len");
                self.assume(len.ge(int(0)));
                let mut inner = f.to_vec();
                let elem = self.template(|az| match s {
                    ShapeExpr::Map(k, v) => {
                        let k = az.shape(&mut inner, k)?;
                        let v = az.shape(&mut inner, v)?;
                        Ok(A::Tuple(Rc::new(vec![k, v])))
                    }
                    _ => az.shape(&mut inner, e),
                })?;
                A::Coll(Rc::new(Coll {
                    kind,
                    len,
                    elem: Rc::new(elem),
                    lo: None,
                }))
            }
        })
    }

    // ------------------------------------------------------------------ statements

    fn block(&mut self, f: &mut [A], b: &Block) -> R<A> {
        for s in &b.stmts {
            self.stmt(f, s)?;
        }
        match &b.value {
            Some(v) => self.expr(f, v),
            None => Ok(A::Top),
        }
    }

    fn bind(&mut self, f: &mut [A], p: &Pattern, v: A) {
        match p {
            Pattern::Bind(s) => f[*s as usize] = v,
            Pattern::Wild => {}
            Pattern::Tuple(ps) => match &v {
                A::Tuple(xs) if xs.len() == ps.len() => {
                    for (p, x) in ps.iter().zip(xs.iter()) {
                        self.bind(f, p, x.clone());
                    }
                }
                _ => {
                    for p in ps {
                        self.bind(f, p, A::Top);
                    }
                }
            },
        }
    }

    fn stmt(&mut self, f: &mut [A], s: &Stmt) -> R<()> {
        self.tick()?;
        match s {
            Stmt::Let(p, e) => {
                let v = self.expr(f, e)?;
                self.bind(f, p, v);
            }
            Stmt::Assign(slot, path, e) => {
                let v = self.expr(f, e)?;
                let target = f[*slot as usize].clone();
                let mut keys = Vec::with_capacity(path.len());
                for a in path {
                    keys.push(match a {
                        Access::Index(i, span) => Key::Index(self.expr(f, i)?, *span),
                        Access::Field(n) => Key::Field(n.clone()),
                        Access::TupleField(i) => Key::Tuple(*i),
                    });
                }
                f[*slot as usize] = self.store(&target, &keys, v)?;
            }
            Stmt::Eval(e) | Stmt::Witness(e) => {
                self.expr(f, e)?;
            }
            Stmt::If(c, t, e) => {
                let cv = self.expr(f, c)?;
                let c = self.as_bool(&cv);
                self.branches(f, &c, t, e.as_ref())?;
            }
            Stmt::For(p, coll, body) => self.for_loop(f, p, coll, body)?,
            Stmt::Require { cond, message, .. } => {
                let cv = self.expr(f, cond)?;
                let c = self.as_bool(&cv);
                self.strengthen(f, cond)?;
                if let Some(m) = message {
                    // The message is rendered when the condition fails.
                    self.scoped(|az| {
                        az.assume(c.not());
                        az.parts(f, &m.parts)
                    })?;
                }
                self.assume(c);
            }
            Stmt::Set(idx, e) => {
                let v = self.expr(f, e)?;
                if let Some(slot) = self.fields.get_mut(*idx) {
                    *slot = Some(v);
                }
            }
            Stmt::Constraint {
                binders,
                cond,
                message,
                ..
            } => {
                // Facts learnt inside a constraint do not outlive it: a failing constraint
                // does not stop verification.
                self.scoped(|az| {
                    az.clauses(f, binders, &mut None)?;
                    let cv = az.expr(f, cond)?;
                    if let Some(m) = message {
                        // The message is rendered when the constraint fails.
                        let c = az.as_bool(&cv);
                        az.scoped(|az| {
                            az.assume(c.not());
                            az.parts(f, &m.parts)
                        })?;
                    }
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    /// `require forall x in xs: P(x)` (or `all([P(x) for x in xs])`) over a local list:
    /// from here on every element of `xs` satisfies `P`, so its template gets `P`.
    fn strengthen(&mut self, f: &mut [A], cond: &Expr) -> R<()> {
        let (clauses, body) = match cond {
            Expr::Quant {
                forall: true,
                clauses,
                body,
            } => (clauses, &**body),
            Expr::Call(Callee::Builtin("all"), args, _) => match args.as_slice() {
                [Expr::Comprehension(clauses, body)] => (clauses, &**body),
                _ => return Ok(()),
            },
            _ => return Ok(()),
        };
        let [Clause::For(p, coll)] = clauses.as_slice() else {
            return Ok(());
        };
        // `xs` or a concatenation `xs + ys + …` of locals: each of them.
        fn locals(e: &Expr, out: &mut Vec<usize>) -> bool {
            match e {
                Expr::Local(s) => {
                    out.push(*s as usize);
                    true
                }
                Expr::Binary(BinOp::Add, a, b, _) => locals(a, out) && locals(b, out),
                _ => false,
            }
        }
        let mut slots = Vec::new();
        if !locals(coll, &mut slots) {
            return Ok(());
        }
        for slot in slots {
            let Some(c) = Self::coll(&f[slot]) else {
                continue;
            };
            let old = c.elem.clone();
            let tpl = self.template(|az| {
                let e = az.inst(&old);
                az.bind(f, p, e.clone());
                let b = az.expr(f, body)?;
                let b = az.as_bool(&b);
                az.assume(b);
                Ok(e)
            })?;
            f[slot] = A::Coll(Rc::new(Coll {
                kind: c.kind,
                len: c.len.clone(),
                elem: Rc::new(tpl),
                lo: c.lo.clone(),
            }));
        }
        Ok(())
    }

    /// Both branches under their condition; assigned slots merge.
    fn branches(&mut self, f: &mut [A], c: &Bool, t: &Block, e: Option<&Block>) -> R<A> {
        let before = f.to_vec();
        self.open();
        self.assume(c.clone());
        let vt = self.block(f, t);
        let st = self.close();
        let vt = vt?;
        let after_t = f.to_vec();
        f.clone_from_slice(&before);
        self.open();
        self.assume(c.not());
        let ve = match e {
            Some(b) => self.block(f, b),
            None => Ok(A::Top),
        };
        let se = self.close();
        let ve = ve?;
        self.adopt(st, c);
        self.adopt(se, &c.not());
        for (i, t_val) in after_t.iter().enumerate() {
            if !t_val.same(&f[i]) {
                let e_val = f[i].clone();
                f[i] = self.merge(c, t_val, &e_val);
            }
        }
        Ok(self.merge(c, &vt, &ve))
    }

    fn clauses(&mut self, f: &mut [A], cs: &[Clause], lens: &mut Option<Vec<Int>>) -> R<()> {
        for c in cs {
            match c {
                Clause::If(e) => {
                    let v = self.expr(f, e)?;
                    let b = self.as_bool(&v);
                    self.assume(b);
                    *lens = None;
                }
                Clause::For(p, coll) => {
                    let cv = self.expr(f, coll)?;
                    self.bind_elem(f, p, &cv, lens);
                }
            }
        }
        Ok(())
    }

    /// Binds `p` to an element of collection `cv` (there is one: the clause runs).
    fn bind_elem(&mut self, f: &mut [A], p: &Pattern, cv: &A, lens: &mut Option<Vec<Int>>) {
        let elem = match Self::coll(cv) {
            Some(c) => {
                if let Some(ls) = lens {
                    ls.push(c.len.clone());
                }
                self.assume(c.len.gt(int(0)));
                self.inst(&c.elem)
            }
            None => {
                *lens = None;
                A::Top
            }
        };
        self.bind(f, p, elem);
    }

    /// Slots assigned in a block that live outside it (a `let` inside makes its own slot).
    fn assigned(b: &Block, out: &mut Vec<usize>, local: &mut HashSet<usize>) {
        for s in &b.stmts {
            match s {
                Stmt::Let(p, _) => pattern_slots(p, local),
                Stmt::Assign(slot, _, _)
                    if !local.contains(&(*slot as usize)) && !out.contains(&(*slot as usize)) =>
                {
                    out.push(*slot as usize);
                }
                Stmt::If(_, t, e) => {
                    Self::assigned(t, out, local);
                    if let Some(e) = e {
                        Self::assigned(e, out, local);
                    }
                }
                Stmt::For(p, _, body) => {
                    pattern_slots(p, local);
                    Self::assigned(body, out, local);
                }
                _ => {}
            }
        }
    }

    fn for_loop(&mut self, f: &mut [A], p: &Pattern, coll: &Expr, body: &Block) -> R<()> {
        let cv = self.expr(f, coll)?;
        let Some(c) = Self::coll(&cv) else {
            // Iterating something untracked: run the body once on an unknown element.
            return self.loop_body(f, p, &A::Top, None, body);
        };
        let mut assigned = Vec::new();
        Self::assigned(body, &mut assigned, &mut HashSet::new());
        if assigned.is_empty() {
            // Nothing carries over between iterations: one arbitrary iteration is all.
            return self.scoped(|az| {
                let t = az.counter(&c);
                az.loop_body(f, p, &cv, Some(&t), body)
            });
        }
        let pre_frame = f.to_vec();
        let pre: Vec<(usize, A)> = assigned.iter().map(|&s| (s, f[s].clone())).collect();
        // Ints the loop does not change (sizes, bounds): candidate upper bounds.
        let mut outer: Vec<Int> = Vec::new();
        for (i, v) in pre_frame.iter().enumerate().rev() {
            let y = match v {
                A::Int(y) if !assigned.contains(&i) => y.clone(),
                A::Coll(c) if !assigned.contains(&i) => c.len.clone(),
                _ => continue,
            };
            // A constant (even one written as a term) is covered by the range candidates.
            let (lo, hi) = self.iv.of(&y);
            if lo != hi && !outer.contains(&y) && outer.len() < MAX_OUTER_BOUNDS {
                outer.push(y);
            }
        }
        self.outer = outer;
        let mut cands = Vec::new();
        for (slot, v) in &pre {
            self.candidates(*slot, &mut Vec::new(), v, true, &mut cands);
        }
        // One exact first iteration proposes more: ranges of what the body makes (say,
        // every digit appended lies in 0..=9), which no fact before the loop mentions.
        let was_checking = self.checking;
        self.checking = false;
        self.open();
        let zero = int(0);
        self.assume(c.len.gt(int(0)));
        let r = self.loop_body(f, p, &cv, Some(&zero), body);
        // The shapes the loop's state takes: an empty list before the loop says nothing
        // about its elements, the first iteration does.
        let mut shapes = pre.clone();
        if r.is_ok() {
            for (slot, v) in shapes.iter_mut() {
                let post = f[*slot].clone();
                self.candidates(*slot, &mut Vec::new(), &post, false, &mut cands);
                if let (A::Coll(a), A::Coll(b)) = (&*v, &post) {
                    if a.elem.cond.as_bool() == Some(false) && a.kind == b.kind {
                        *v = post.clone();
                    }
                }
            }
        }
        self.close();
        self.checking = was_checking;
        f.clone_from_slice(&pre_frame);
        r?;
        // The same fact proposed twice is checked once. A set with fixed hash keys: it
        // holds terms, and dropping it releases them in its iteration order, which must
        // be the same in every run (see `TermMap`: released ids are reused, and ids steer
        // Z3, so std's random keys made the counterexamples differ from run to run).
        let mut seen = crate::smt::TermSet::default();
        cands.retain(|c| seen.insert(c.clone()));
        // A loop analysed before (inside an outer loop's trials, or a function called
        // again) starts from the invariants it had then: Houdini from any subset is
        // sound, and this saves most of the rounds.
        let key = body as *const Block as usize;
        let mut ids: Vec<usize> = (0..cands.len()).collect();
        // (Only while nothing is checked: the checked pass starts from every candidate,
        // so a context that lost facts cannot cost precision where it counts.)
        if let Some((n, kept)) = self.loop_cache.get(&key).filter(|_| !was_checking) {
            if *n == cands.len() {
                ids = kept.clone();
                let keep: HashSet<usize> = kept.iter().copied().collect();
                let mut i = 0;
                cands.retain(|_| {
                    i += 1;
                    keep.contains(&(i - 1))
                });
            }
        }
        let total = seen.len();
        // Every candidate must hold before the first iteration.
        let base = self.hold_all(&pre_frame, &cands, &zero);
        let keep: Vec<bool> = base;
        let mut it = keep.iter();
        cands.retain(|_| *it.next().unwrap_or(&false));
        let mut it = keep.iter();
        ids.retain(|_| *it.next().unwrap_or(&false));
        // Houdini: drop candidates until the rest survive an arbitrary iteration.
        loop {
            self.checking = false;
            self.open();
            let t = self.counter(&c);
            self.assume_state(f, &shapes, &cands, &t);
            let r = self.loop_body(f, p, &cv, Some(&t), body);
            let next_t = Int::add(&[&t, &int(1)]);
            let verdicts = match r {
                Ok(()) => self.hold_all(f, &cands, &next_t),
                Err(_) => Vec::new(),
            };
            self.close();
            self.checking = was_checking;
            r?;
            let before = cands.len();
            let mut it = verdicts.iter();
            cands.retain(|_| *it.next().unwrap_or(&false));
            let mut it = verdicts.iter();
            ids.retain(|_| *it.next().unwrap_or(&false));
            let stable = cands.len() == before;
            if stable {
                break;
            }
        }
        self.loop_cache.insert(key, (total, ids));
        // The body once more, checked, under the invariants.
        self.open();
        let t = self.counter(&c);
        self.assume_state(f, &shapes, &cands, &t);
        let r = self.loop_body(f, p, &cv, Some(&t), body);
        self.close();
        r?;
        // After the loop: the invariants with the counter at the number of iterations.
        let n = c.len.clone();
        self.assume_state(f, &shapes, &cands, &n);
        Ok(())
    }

    /// The iteration counter: `0 <= t < len`.
    fn counter(&mut self, c: &Coll) -> Int {
        let t = self.fresh_int("t");
        self.assume(t.ge(int(0)));
        self.assume(t.lt(&c.len));
        t
    }

    fn loop_body(
        &mut self,
        f: &mut [A],
        p: &Pattern,
        coll: &A,
        t: Option<&Int>,
        body: &Block,
    ) -> R<()> {
        let elem = match (Self::coll(coll), t) {
            (Some(c), Some(t)) => match &c.lo {
                Some(lo) => A::Int(Int::add(&[lo, t])),
                None => self.inst(&c.elem),
            },
            (Some(c), None) => self.inst(&c.elem),
            _ => A::Top,
        };
        self.bind(f, p, elem);
        self.block(f, body)?;
        Ok(())
    }

    /// Replaces the assigned slots by unknowns (shaped like `shapes`) satisfying the
    /// candidates at counter `t`.
    fn assume_state(&mut self, f: &mut [A], shapes: &[(usize, A)], cands: &[Cand], t: &Int) {
        for (slot, v) in shapes {
            f[*slot] = self.havoc(v);
        }
        for cand in cands {
            match &cand.kind {
                CandKind::Scalar { rel, base } => {
                    if let Some(x) = get_int(&f[cand.slot], &cand.path) {
                        let b = relation(*rel, &x, base, t);
                        self.assume(b);
                    }
                }
                CandKind::Elem { atom, holes } => {
                    let v = f[cand.slot].clone();
                    let atom = self.at_iteration(atom, t);
                    if let Some(v) = restrict(&v, &cand.path, &atom, holes) {
                        f[cand.slot] = v;
                    }
                }
            }
        }
    }

    /// An element candidate with the counter placeholder set to `t`.
    fn at_iteration(&self, atom: &Bool, t: &Int) -> Bool {
        let (from, to) = (Dynamic::from_ast(&self.tvar), Dynamic::from_ast(t));
        atom.substitute(&[(&from, &to)])
    }

    /// Houdini candidates for slot `slot` at `path` of value `v`. `relational`: also
    /// facts relating it to `v` itself (only for the state before the loop: values made
    /// inside a trial iteration mean nothing outside it); otherwise only ranges.
    fn candidates(
        &mut self,
        slot: usize,
        path: &mut Vec<Step>,
        v: &A,
        relational: bool,
        out: &mut Vec<Cand>,
    ) {
        let scalar = |az: &mut Self, path: &[Step], x: &Int, out: &mut Vec<Cand>| {
            let mut push = |rel, base: Int| {
                out.push(Cand {
                    slot,
                    path: path.to_vec(),
                    kind: CandKind::Scalar { rel, base },
                })
            };
            if relational {
                for rel in [Rel::Eq, Rel::Ge, Rel::Le, Rel::EqPlusT] {
                    push(rel, x.clone());
                }
            }
            let (lo, hi) = az.iv.of(x);
            if lo > FULL.0 {
                push(Rel::Ge, int(lo as i64));
            }
            if hi < FULL.1 {
                push(Rel::Le, int(hi as i64));
            }
            for y in &az.outer {
                push(Rel::Le, y.clone());
                push(Rel::Le, Int::sub(&[y, &int(1)]));
            }
        };
        match v {
            A::Int(x) => scalar(self, path, x, out),
            A::Tuple(xs) => {
                for (i, x) in xs.iter().enumerate() {
                    path.push(Step::Tuple(i));
                    self.candidates(slot, path, x, relational, out);
                    path.pop();
                }
            }
            A::Record(fs) => {
                for (n, x) in fs.iter() {
                    path.push(Step::Field(n.clone()));
                    self.candidates(slot, path, x, relational, out);
                    path.pop();
                }
            }
            A::Coll(c) => {
                let mut lp = path.clone();
                lp.push(Step::Len);
                scalar(self, &lp, &c.len, out);
                self.elem_candidates(slot, path, &c.elem, relational, out);
            }
            A::Bool(_) | A::Top => {}
        }
    }

    /// Facts every element of a template satisfies, over the element's own leaves:
    /// conjuncts of its condition over its leaf variables, leaves equal to an outer value
    /// (or growing with the counter), and the ranges of its int leaves.
    fn elem_candidates(
        &mut self,
        slot: usize,
        path: &[Step],
        t: &Tpl,
        relational: bool,
        out: &mut Vec<Cand>,
    ) {
        let vars = names(&t.vars);
        let mut leaves: Vec<(Dynamic, Vec<Step>)> = Vec::new();
        leaf_terms(&t.val, &mut Vec::new(), &mut leaves);
        let elem = |atom: Bool, holes: Vec<(Dynamic, Vec<Step>)>, out: &mut Vec<Cand>| {
            out.push(Cand {
                slot,
                path: path.to_vec(),
                kind: CandKind::Elem { atom, holes },
            })
        };
        let mut holes: Vec<(Dynamic, Vec<Step>)> = Vec::new();
        let mut hole_names: HashSet<String> = HashSet::new();
        for (term, p) in &leaves {
            if let Some(x) = term.as_int() {
                let (lo, hi) = self.iv.of(&x);
                let hole = Int::fresh_const("hole");
                let h = Dynamic::from_ast(&hole);
                if lo > FULL.0 {
                    elem(hole.ge(int(lo as i64)), vec![(h.clone(), p.clone())], out);
                }
                if hi < FULL.1 {
                    elem(hole.le(int(hi as i64)), vec![(h.clone(), p.clone())], out);
                }
                for y in &self.outer {
                    elem(hole.le(y), vec![(h.clone(), p.clone())], out);
                    elem(hole.lt(y), vec![(h.clone(), p.clone())], out);
                }
            }
            if !relational {
                continue;
            }
            let mut fc = HashSet::new();
            free_consts(term, &mut fc);
            let is_var = term.is_const() && vars.contains(&term.decl().name());
            if is_var {
                if hole_names.insert(term.decl().name()) {
                    holes.push((term.clone(), p.clone()));
                }
            } else if fc.is_disjoint(&vars) {
                // The leaf is the same outer value for every element, or grows with the
                // counter (the lengths in `[v + [b] for v in out …]`).
                if let Some(x) = term.as_int() {
                    let hole = Int::fresh_const("hole");
                    let h = Dynamic::from_ast(&hole);
                    elem(hole.eq(&x), vec![(h.clone(), p.clone())], out);
                    let grown = Int::add(&[&x, &self.tvar]);
                    elem(hole.eq(&grown), vec![(h, p.clone())], out);
                }
            }
        }
        if !relational {
            return;
        }
        let mut atoms = Vec::new();
        conjuncts(&t.cond, &mut atoms);
        for a in atoms {
            let mut fc = HashSet::new();
            free_consts(&Dynamic::from_ast(&a), &mut fc);
            let used: Vec<&String> = fc.iter().filter(|n| vars.contains(*n)).collect();
            if used.is_empty() || !used.iter().all(|n| hole_names.contains(*n)) {
                continue;
            }
            let hs: Vec<(Dynamic, Vec<Step>)> = holes
                .iter()
                .filter(|(h, _)| fc.contains(&h.decl().name()))
                .cloned()
                .collect();
            elem(a, hs, out);
        }
    }

    /// Which candidates hold in the state `f` with the counter at `t`: one scope, each
    /// collection's element instantiated once, and the checks batched (one query while
    /// all hold; a model otherwise names the failing ones).
    fn hold_all(&mut self, f: &[A], cands: &[Cand], t: &Int) -> Vec<bool> {
        self.open();
        let mut elems: Vec<(usize, &[Step], A)> = Vec::new();
        let mut formulas: Vec<Option<Bool>> = Vec::with_capacity(cands.len());
        for cand in cands {
            formulas.push(match &cand.kind {
                CandKind::Scalar { rel, base } => {
                    get_int(&f[cand.slot], &cand.path).map(|x| relation(*rel, &x, base, t))
                }
                CandKind::Elem { atom, holes } => match get_coll(&f[cand.slot], &cand.path) {
                    None => None,
                    // No elements: every fact about them holds.
                    Some(c) if c.elem.cond.as_bool() == Some(false) => Some(tt()),
                    Some(c) => {
                        let key = cand.path.as_slice();
                        let e = match elems.iter().find(|(s, k, _)| *s == cand.slot && *k == key) {
                            Some((_, _, e)) => e.clone(),
                            None => {
                                let e = self.inst(&c.elem);
                                elems.push((cand.slot, key, e.clone()));
                                e
                            }
                        };
                        let atom = self.at_iteration(atom, t);
                        fill(&atom, holes, &e)
                    }
                },
            });
        }
        let checks: Vec<Bool> = formulas.iter().flatten().cloned().collect();
        let mut verdicts = self.all_valid(&checks).into_iter();
        let out = formulas
            .iter()
            .map(|f| f.is_some() && verdicts.next().unwrap_or(false))
            .collect();
        self.close();
        out
    }

    /// Which of `checks` hold on every path through the current facts (Houdini's batched
    /// query: assert that one fails; each model rules out the checks it falsifies).
    fn all_valid(&mut self, checks: &[Bool]) -> Vec<bool> {
        let mut alive: Vec<usize> = (0..checks.len())
            .filter(|&i| checks[i].as_bool() != Some(false))
            .collect();
        let easy: Vec<bool> = checks.iter().map(|c| self.by_intervals(c)).collect();
        let mut ok = vec![false; checks.len()];
        let pending_of = |alive: &[usize]| -> Vec<usize> {
            alive
                .iter()
                .copied()
                .filter(|&i| checks[i].as_bool() != Some(true) && !easy[i])
                .collect()
        };
        // The facts every round needs are asserted once, in a scope of their own: each
        // round then asserts only its disjunction, and Z3 keeps the facts internalised
        // (asserting them per round was most of a Houdini query). The cone of the first
        // round's checks covers the later rounds', which are fewer.
        let first = pending_of(&alive);
        if !first.is_empty() {
            let negs: Vec<Bool> = first.iter().map(|&i| checks[i].not()).collect();
            self.solver.push();
            self.assert_cone(&Bool::or(&negs));
        }
        loop {
            let pending = pending_of(&alive);
            if pending.is_empty() {
                break;
            }
            let negs: Vec<Bool> = pending.iter().map(|&i| checks[i].not()).collect();
            let (r, model) = self.decide(&Bool::or(&negs));
            match (r, model) {
                (SatResult::Unsat, _) => break,
                (SatResult::Sat, Some(m)) => {
                    // The model satisfies the facts of the pending checks' cone: only
                    // those checks can be judged by it.
                    let before = alive.len();
                    alive.retain(|&i| {
                        !pending.contains(&i)
                            || m.eval(&checks[i], true).and_then(|b| b.as_bool()) != Some(false)
                    });
                    if alive.len() == before {
                        // The model decides none of them: give up on all (sound).
                        alive.clear();
                    }
                }
                _ if pending.len() > 1 => {
                    // Undecided together (typically one nonlinear candidate): decide each
                    // on its own, so the hard one does not take the others with it.
                    for &i in &pending {
                        let (r, _) = self.decide(&checks[i].not());
                        if r != SatResult::Unsat {
                            alive.retain(|&j| j != i);
                        }
                    }
                    break;
                }
                _ => {
                    alive.clear();
                }
            }
        }
        if !first.is_empty() {
            self.solver.pop(1);
        }
        for i in alive {
            ok[i] = true;
        }
        ok
    }

    // ------------------------------------------------------------------ stores

    fn store(&mut self, target: &A, keys: &[Key], v: A) -> R<A> {
        let Some((first, rest)) = keys.split_first() else {
            return Ok(v);
        };
        self.tick()?;
        Ok(match (first, target) {
            (Key::Index(i, span), A::Coll(c)) if c.kind == Kind::List => {
                let i = self.as_int(i);
                let ob = Bool::and(&[i.ge(int(0)), i.lt(&c.len)]);
                self.obligation(ObKind::Index, *span, ob, Some((&i, &c.len)))?;
                let (old, rest, v) = (c.elem.clone(), rest.to_vec(), v);
                let new = self.template(|az| {
                    let e = az.inst(&old);
                    az.store(&e, &rest, v)
                })?;
                let elem = self.union(&c.elem, &Rc::new(new));
                Self::with(Kind::List, c.len.clone(), Rc::new(elem))
            }
            (Key::Index(k, _), A::Coll(c)) if c.kind == Kind::Map => {
                let (old, rest, v, k) = (c.elem.clone(), rest.to_vec(), v, k.clone());
                let new = self.template(|az| {
                    let e = az.inst(&old);
                    let prev = match &e {
                        A::Tuple(kv) if kv.len() == 2 => kv[1].clone(),
                        _ => A::Top,
                    };
                    let val = az.store(&prev, &rest, v)?;
                    Ok(A::Tuple(Rc::new(vec![k, val])))
                })?;
                let elem = self.union(&c.elem, &Rc::new(new));
                let len = self.fresh_int("len");
                self.assume(len.ge(&c.len));
                self.assume(len.le(Int::add(&[&c.len, &int(1)])));
                Self::with(Kind::Map, len, Rc::new(elem))
            }
            (Key::Index(_, span), _) => {
                self.lost(*span)?;
                A::Top
            }
            (Key::Field(n), A::Record(fs)) => {
                let mut out = (**fs).clone();
                if let Some(slot) = out.iter_mut().find(|(k, _)| **k == **n) {
                    slot.1 = self.store(&slot.1.clone(), rest, v)?;
                }
                A::Record(Rc::new(out))
            }
            (Key::Tuple(i), A::Tuple(xs)) if *i < xs.len() => {
                let mut out = (**xs).clone();
                out[*i] = self.store(&out[*i].clone(), rest, v)?;
                A::Tuple(Rc::new(out))
            }
            _ => A::Top,
        })
    }

    // ------------------------------------------------------------------ expressions

    fn exprs(&mut self, f: &mut [A], es: &[Expr]) -> R<Vec<A>> {
        es.iter().map(|e| self.expr(f, e)).collect()
    }

    fn expr(&mut self, f: &mut [A], e: &Expr) -> R<A> {
        self.tick()?;
        Ok(match e {
            Expr::Lit(l) => match l {
                Lit::Int(i) => A::Int(int(*i)),
                Lit::Bool(b) => A::Bool(Bool::from_bool(*b)),
                _ => A::Top,
            },
            Expr::Local(s) => f[*s as usize].clone(),
            Expr::Tuple(v) => A::Tuple(Rc::new(self.exprs(f, v)?)),
            // A long list of literals is data: summarised from its values at once.
            Expr::List(v)
                if v.len() > MAX_LITERAL_ELEMS && v.iter().all(|e| matches!(e, Expr::Lit(_))) =>
            {
                let vals = v
                    .iter()
                    .filter_map(|e| match e {
                        Expr::Lit(l) => Some(l.value()),
                        _ => None,
                    })
                    .collect();
                self.abstract_value(&Value::list(vals))?
            }
            Expr::List(v) => {
                let items = self.exprs(f, v)?;
                if items.len() > MAX_LITERAL_ELEMS {
                    let first = items[0].clone();
                    self.summary(Kind::List, int(items.len() as i64), &first)?
                } else {
                    self.literal(Kind::List, items)?
                }
            }
            Expr::Record(fs) => {
                let mut out = Vec::with_capacity(fs.len());
                for (n, x) in fs {
                    out.push((Rc::from(n.as_str()), self.expr(f, x)?));
                }
                // Evaluated in written order, stored in name order.
                out.sort_by(|a: &(Rc<str>, _), b| a.0.cmp(&b.0));
                A::Record(Rc::new(out))
            }
            Expr::Comprehension(cs, elem) => {
                let mut lens = Some(Vec::new());
                // The first collection is evaluated once, outside the elements.
                let (first, rest) = match cs.split_first() {
                    Some((Clause::For(p, coll), rest)) => (Some((p, self.expr(f, coll)?)), rest),
                    _ => (None, cs.as_slice()),
                };
                let tpl = self.template(|az| {
                    if let Some((p, cv)) = &first {
                        az.bind_elem(f, p, cv, &mut lens);
                    }
                    az.clauses(f, rest, &mut lens)?;
                    az.expr(f, elem)
                })?;
                let vars = names(&tpl.vars);
                let independent = lens.as_ref().is_some_and(|ls| {
                    ls.iter().all(|l| {
                        let mut fc = HashSet::new();
                        free_consts(&Dynamic::from_ast(l), &mut fc);
                        fc.is_disjoint(&vars)
                    })
                });
                let len = match lens {
                    Some(ls) if independent && !ls.is_empty() => {
                        if ls.len() == 1 {
                            ls[0].clone()
                        } else {
                            Int::mul(&ls)
                        }
                    }
                    _ => {
                        let l = self.fresh_int("len");
                        self.assume(l.ge(int(0)));
                        l
                    }
                };
                A::Coll(Rc::new(Coll {
                    kind: Kind::List,
                    len,
                    elem: Rc::new(tpl),
                    lo: None,
                }))
            }
            Expr::Quant { clauses, body, .. } => {
                self.scoped(|az| {
                    az.clauses(f, clauses, &mut None)?;
                    az.expr(f, body)
                })?;
                A::Bool(self.fresh_bool("q"))
            }
            Expr::Range { lo, hi, inclusive } => {
                let (l, h) = (self.expr(f, lo)?, self.expr(f, hi)?);
                let (l, h) = (self.as_int(&l), self.as_int(&h));
                let h = if *inclusive {
                    Int::add(&[&h, &int(1)])
                } else {
                    h
                };
                self.range(l, h)?
            }
            Expr::Unary(op, x) => {
                let v = self.expr(f, x)?;
                match (op, v) {
                    (UnOp::Neg, A::Int(x)) => A::Int(x.unary_minus()),
                    (UnOp::Not, A::Bool(b)) => A::Bool(b.not()),
                    (UnOp::Not, _) => A::Bool(self.fresh_bool("b")),
                    _ => A::Top,
                }
            }
            Expr::Binary(op, a, b, span) => self.binary(f, *op, a, b, *span)?,
            Expr::Call(Callee::Fn(i), args, span) => {
                let vals = self.exprs(f, args)?;
                let func = &self.prog.fns[*i];
                let mut frame = vec![A::Top; (func.slots as usize).max(vals.len())];
                for (s, v) in frame.iter_mut().zip(vals) {
                    *s = v;
                }
                self.calls.push(*span);
                let r = self.block(&mut frame, &func.body);
                self.calls.pop();
                r?
            }
            Expr::Call(Callee::Builtin(name), args, span) => {
                let vals = self.exprs(f, args)?;
                self.calls.push(*span);
                let r = self.builtin(name, vals);
                self.calls.pop();
                r?
            }
            Expr::Index(a, i, span) => {
                let (a, i) = (self.expr(f, a)?, self.expr(f, i)?);
                self.index(&a, &i, *span)?
            }
            Expr::Field(a, n) => match self.expr(f, a)? {
                A::Record(fs) => fs
                    .iter()
                    .find(|(k, _)| **k == **n)
                    .map(|(_, v)| v.clone())
                    .unwrap_or(A::Top),
                _ => A::Top,
            },
            Expr::TupleField(a, k) => match self.expr(f, a)? {
                A::Tuple(xs) => xs.get(*k).cloned().unwrap_or(A::Top),
                _ => A::Top,
            },
            Expr::If(c, t, e) => {
                let cv = self.expr(f, c)?;
                let c = self.as_bool(&cv);
                self.branches(f, &c, t, e.as_ref())?
            }
            Expr::Str(t) => {
                self.parts(f, &t.parts)?;
                A::Top
            }
        })
    }

    fn parts(&mut self, f: &mut [A], parts: &[TemplatePart]) -> R<()> {
        for p in parts {
            match p {
                TemplatePart::Text(_) => {}
                TemplatePart::Expr(e) => {
                    self.expr(f, e)?;
                }
                TemplatePart::For(pat, coll, body) => {
                    let cv = self.expr(f, coll)?;
                    self.scoped(|az| {
                        let elem = match Self::coll(&cv) {
                            Some(c) => az.inst(&c.elem),
                            None => A::Top,
                        };
                        az.bind(f, pat, elem);
                        az.parts(f, body)
                    })?;
                }
                TemplatePart::If(c, t, e) => {
                    let cv = self.expr(f, c)?;
                    let c = self.as_bool(&cv);
                    for (g, body) in [(c.clone(), t), (c.not(), e)] {
                        self.scoped(|az| {
                            az.assume(g);
                            az.parts(f, body)
                        })?;
                    }
                }
            }
        }
        Ok(())
    }

    fn index(&mut self, a: &A, i: &A, span: Span) -> R<A> {
        match a {
            A::Coll(c) if c.kind == Kind::List => {
                let i = self.as_int(i);
                let ob = Bool::and(&[i.ge(int(0)), i.lt(&c.len)]);
                self.obligation(ObKind::Index, span, ob, Some((&i, &c.len)))?;
                if let Some(lo) = &c.lo {
                    return Ok(A::Int(Int::add(&[lo, &i])));
                }
                if let Some(r) = self
                    .reads
                    .iter()
                    .rev()
                    .find(|r| Rc::ptr_eq(&r.1, c) && r.2 == i)
                {
                    return Ok(r.3.clone());
                }
                let v = self.inst(&c.elem);
                self.reads
                    .push((self.scopes.len(), c.clone(), i, v.clone()));
                Ok(v)
            }
            // Map lookups are not covered (spec/proofs.md §9): the value of some entry.
            A::Coll(c) if c.kind == Kind::Map => Ok(match self.inst(&c.elem) {
                A::Tuple(kv) if kv.len() == 2 => kv[1].clone(),
                _ => A::Top,
            }),
            _ => {
                self.lost(span)?;
                Ok(A::Top)
            }
        }
    }

    fn binary(&mut self, f: &mut [A], op: BinOp, a: &Expr, b: &Expr, span: Span) -> R<A> {
        // Short circuits: the right operand runs only when the left does not decide.
        if matches!(op, BinOp::And | BinOp::Or | BinOp::Implies) {
            let av = self.expr(f, a)?;
            let x = self.as_bool(&av);
            let g = match op {
                BinOp::Or => x.not(),
                _ => x.clone(),
            };
            self.open();
            self.assume(g.clone());
            let bv = self.expr(f, b);
            let s = self.close();
            let bv = bv?;
            self.adopt(s, &g);
            let y = self.as_bool(&bv);
            return Ok(A::Bool(match op {
                BinOp::And => Bool::and(&[&x, &y]),
                BinOp::Or => Bool::or(&[&x, &y]),
                _ => x.implies(&y),
            }));
        }
        let av = self.expr(f, a)?;
        let bv = self.expr(f, b)?;
        Ok(match (op, &av, &bv) {
            (BinOp::Add, A::Int(x), A::Int(y)) => A::Int(Int::add(&[x, y])),
            (BinOp::Sub, A::Int(x), A::Int(y)) => A::Int(Int::sub(&[x, y])),
            (BinOp::Mul, A::Int(x), A::Int(y)) => A::Int(Int::mul(&[x, y])),
            (BinOp::Div | BinOp::Rem, A::Int(x), A::Int(y)) => {
                self.obligation(ObKind::Division, span, y.ne(int(0)), None)?;
                // Z3's div/mod are Euclidean, like the language's.
                A::Int(if op == BinOp::Div {
                    x.div(y)
                } else {
                    x.modulo(y)
                })
            }
            (BinOp::Add, A::Coll(x), A::Coll(y)) => {
                let elem = self.union(&x.elem, &y.elem);
                A::Coll(Rc::new(Coll {
                    kind: Kind::List,
                    len: Int::add(&[&x.len, &y.len]),
                    elem: Rc::new(elem),
                    lo: None,
                }))
            }
            (BinOp::Lt, A::Int(x), A::Int(y)) => A::Bool(x.lt(y)),
            (BinOp::Le, A::Int(x), A::Int(y)) => A::Bool(x.le(y)),
            (BinOp::Gt, A::Int(x), A::Int(y)) => A::Bool(x.gt(y)),
            (BinOp::Ge, A::Int(x), A::Int(y)) => A::Bool(x.ge(y)),
            (BinOp::Eq | BinOp::Ne, _, _) => {
                let eq = match self.equal(&av, &bv) {
                    Some(b) => b,
                    None => self.fresh_bool("eq"),
                };
                A::Bool(if op == BinOp::Eq { eq } else { eq.not() })
            }
            (BinOp::In, _, A::Coll(c)) => A::Bool(self.member(&av, c)),
            (BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem, _, _) => {
                match (&av, &bv) {
                    (A::Int(_), _) | (_, A::Int(_)) => A::Int(self.fresh_int("n")),
                    _ => A::Top,
                }
            }
            _ => A::Bool(self.fresh_bool("b")),
        })
    }

    /// Structural equality where both sides are tracked; `None` when unknown.
    fn equal(&mut self, a: &A, b: &A) -> Option<Bool> {
        match (a, b) {
            (A::Int(x), A::Int(y)) => Some(x.eq(y)),
            (A::Bool(x), A::Bool(y)) => Some(x.eq(y)),
            (A::Tuple(xs), A::Tuple(ys)) if xs.len() == ys.len() => {
                let parts: Option<Vec<Bool>> = xs
                    .iter()
                    .zip(ys.iter())
                    .map(|(x, y)| self.equal(x, y))
                    .collect();
                parts.map(|p| and_all(&p))
            }
            _ => None,
        }
    }

    /// `x in c`: when true, `x` equals some element (an instance of the template).
    fn member(&mut self, x: &A, c: &Coll) -> Bool {
        if let (Some(lo), A::Int(v)) = (&c.lo, x) {
            let hi = Int::add(&[lo, &c.len]);
            return Bool::and(&[v.ge(lo), v.lt(&hi)]);
        }
        let b = self.fresh_bool("in");
        let probe = match c.kind {
            Kind::Map => None,
            _ => Some(()),
        };
        if probe.is_some() {
            self.open();
            let e = self.inst(&c.elem);
            let eq = self.equal(x, &e);
            let s = self.close();
            if let Some(eq) = eq {
                for v in s.vars {
                    self.register(v);
                }
                let mut all: Vec<Bool> = s.facts.into_iter().map(|f| f.b).collect();
                all.push(eq);
                self.assume(b.implies(and_all(&all)));
            }
        }
        b
    }

    fn builtin(&mut self, name: &str, args: Vec<A>) -> R<A> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(A::Top);
        let c0 = Self::coll(&arg(0));
        Ok(match (name, &c0) {
            ("len", Some(c)) => A::Int(c.len.clone()),
            ("len", None) => {
                let n = self.fresh_int("len");
                self.assume(n.ge(int(0)));
                A::Int(n)
            }
            ("abs", _) => match arg(0) {
                A::Int(x) => A::Int(ite_int(&x.lt(int(0)), &x.unary_minus(), &x)),
                _ => A::Top,
            },
            ("min" | "max", _) if args.len() == 2 => match (arg(0), arg(1)) {
                (A::Int(x), A::Int(y)) => A::Int(if name == "min" {
                    min_int(&x, &y)
                } else {
                    max_int(&x, &y)
                }),
                _ => A::Top,
            },
            ("min" | "max" | "choice", Some(c)) => {
                self.assume(c.len.gt(int(0)));
                self.inst(&c.elem)
            }
            ("sum", Some(c)) => match &c.elem.val {
                A::Int(e) => {
                    // len elements, each in elo..=ehi: the sum lies between the corners.
                    let (elo, ehi) = self.iv.of(e);
                    let (llo, lhi) = self.iv.of(&c.len);
                    let s = self.fresh_int("sum");
                    let clamp = |v: i128| v.clamp(FULL.0, FULL.1) as i64;
                    if elo > FULL.0 && llo >= 0 && lhi < FULL.1 {
                        self.assume(s.ge(int(clamp((llo * elo).min(lhi * elo)))));
                    }
                    if ehi < FULL.1 && llo >= 0 && lhi < FULL.1 {
                        self.assume(s.le(int(clamp((llo * ehi).max(lhi * ehi)))));
                    }
                    A::Int(s)
                }
                _ => A::Top,
            },
            ("count", Some(c)) => {
                let n = self.fresh_int("count");
                self.assume(n.ge(int(0)));
                self.assume(n.le(&c.len));
                A::Int(n)
            }
            ("index_of", Some(c)) => {
                let n = self.fresh_int("index");
                self.assume(n.ge(int(-1)));
                self.assume(n.lt(&c.len));
                A::Int(n)
            }
            ("all" | "any" | "all_different" | "is_permutation", _) => {
                A::Bool(self.fresh_bool(name))
            }
            ("sorted", Some(c)) => A::Coll(Rc::new(Coll {
                kind: Kind::List,
                len: c.len.clone(),
                elem: c.elem.clone(),
                lo: c.lo.clone(),
            })),
            ("reversed" | "shuffle", Some(c)) => {
                Self::with(Kind::List, c.len.clone(), c.elem.clone())
            }
            ("keys" | "values", Some(c)) => {
                let k = usize::from(name == "values");
                let elem = Tpl {
                    vars: c.elem.vars.clone(),
                    cond: c.elem.cond.clone(),
                    val: match &c.elem.val {
                        A::Tuple(kv) if kv.len() == 2 => kv[k].clone(),
                        _ => A::Top,
                    },
                };
                Self::with(Kind::List, c.len.clone(), Rc::new(elem))
            }
            ("set" | "map", Some(c)) => {
                let n = self.fresh_int("len");
                self.assume(n.ge(int(0)));
                self.assume(n.le(&c.len));
                self.assume(c.len.gt(int(0)).implies(n.gt(int(0))));
                let kind = if name == "set" { Kind::Set } else { Kind::Map };
                Self::with(kind, n, c.elem.clone())
            }
            ("get", Some(c)) => {
                let e = self.inst(&c.elem);
                let v = match e {
                    A::Tuple(kv) if kv.len() == 2 => kv[1].clone(),
                    _ => A::Top,
                };
                let b = self.fresh_bool("found");
                self.merge(&b, &v, &arg(2))
            }
            ("zip", Some(x)) => match Self::coll(&arg(1)) {
                Some(y) => {
                    let (ex, ey) = (x.elem.clone(), y.elem.clone());
                    let elem = self.template(|az| {
                        let a = az.inst(&ex);
                        let b = az.inst(&ey);
                        Ok(A::Tuple(Rc::new(vec![a, b])))
                    })?;
                    Self::with(Kind::List, min_int(&x.len, &y.len), Rc::new(elem))
                }
                None => A::Top,
            },
            ("enumerate", Some(c)) => {
                let (e, n) = (c.elem.clone(), c.len.clone());
                let elem = self.template(|az| {
                    let k = az.fresh_int("k");
                    az.assume(k.ge(int(0)));
                    az.assume(k.lt(&n));
                    let v = az.inst(&e);
                    Ok(A::Tuple(Rc::new(vec![A::Int(k), v])))
                })?;
                Self::with(Kind::List, c.len.clone(), Rc::new(elem))
            }
            ("repeat", _) => {
                let n = self.as_int(&arg(1));
                self.assume(n.ge(int(0)));
                let elem = Tpl {
                    vars: Vec::new(),
                    cond: tt(),
                    val: arg(0),
                };
                A::Coll(Rc::new(Coll {
                    kind: Kind::List,
                    len: n,
                    elem: Rc::new(elem),
                    lo: None,
                }))
            }
            ("slice", Some(c)) => {
                let (lo, hi) = (self.as_int(&arg(1)), self.as_int(&arg(2)));
                let clamp = |x: &Int| max_int(&int(0), &min_int(x, &c.len));
                let (a, b) = (clamp(&lo), clamp(&hi));
                let len = max_int(&int(0), &Int::sub(&[&b, &a]));
                Self::with(Kind::List, len, c.elem.clone())
            }
            ("flatten", Some(c)) => {
                let outer = c.elem.clone();
                let elem = self.template(|az| {
                    let inner = az.inst(&outer);
                    Ok(match Self::coll(&inner) {
                        Some(ic) => az.inst(&ic.elem),
                        None => A::Top,
                    })
                })?;
                let n = self.fresh_int("len");
                self.assume(n.ge(int(0)));
                Self::with(Kind::List, n, Rc::new(elem))
            }
            ("int", _) => match arg(0) {
                A::Int(x) => A::Int(x),
                _ => A::Int(self.fresh_int("int")),
            },
            ("rand_int", _) => {
                let (lo, hi) = (self.as_int(&arg(0)), self.as_int(&arg(1)));
                let x = self.fresh_int("rand");
                self.assume(x.ge(&lo));
                self.assume(x.le(&hi));
                A::Int(x)
            }
            ("bernoulli", _) => A::Bool(self.fresh_bool("coin")),
            ("sample", Some(c)) => {
                let k = self.as_int(&arg(1));
                self.assume(k.ge(int(0)));
                self.assume(k.le(&c.len));
                Self::with(Kind::List, k, c.elem.clone())
            }
            ("permutation", _) => {
                let n = self.as_int(&arg(0));
                self.assume(n.ge(int(0)));
                self.range(int(0), n.clone()).map(|r| match r {
                    A::Coll(rc) => A::Coll(Rc::new(Coll {
                        kind: Kind::List,
                        len: rc.len.clone(),
                        elem: rc.elem.clone(),
                        lo: None,
                    })),
                    other => other,
                })?
            }
            ("unique_givens", _) => match Self::coll(&arg(1)) {
                Some(g) => {
                    let n = self.fresh_int("kept");
                    self.assume(n.ge(int(0)));
                    self.assume(n.le(&g.len));
                    Self::with(Kind::List, n, g.elem.clone())
                }
                None => A::Top,
            },
            ("sum" | "min" | "max" | "count" | "index_of", None) => A::Int(self.fresh_int(name)),
            _ => A::Top,
        })
    }
}

/// An evaluated assignment path step.
#[derive(Clone)]
enum Key {
    Index(A, Span),
    Field(String),
    Tuple(usize),
}

fn pattern_slots(p: &Pattern, out: &mut HashSet<usize>) {
    match p {
        Pattern::Bind(s) => {
            out.insert(*s as usize);
        }
        Pattern::Wild => {}
        Pattern::Tuple(ps) => {
            for p in ps {
                pattern_slots(p, out);
            }
        }
    }
}

fn relation(rel: Rel, x: &Int, base: &Int, t: &Int) -> Bool {
    match rel {
        Rel::Eq => x.eq(base),
        Rel::Ge => x.ge(base),
        Rel::Le => x.le(base),
        Rel::EqPlusT => x.eq(Int::add(&[base, t])),
    }
}

fn step_into<'a>(v: &'a A, s: &Step) -> Option<&'a A> {
    match (s, v) {
        (Step::Tuple(i), A::Tuple(xs)) => xs.get(*i),
        (Step::Field(n), A::Record(fs)) => fs.iter().find(|(k, _)| *k == *n).map(|(_, x)| x),
        _ => None,
    }
}

/// The int at `path` (a `Len` step reads a collection's length).
fn get_int(v: &A, path: &[Step]) -> Option<Int> {
    match path.split_first() {
        None => match v {
            A::Int(x) => Some(x.clone()),
            _ => None,
        },
        Some((Step::Len, [])) => match v {
            A::Coll(c) => Some(c.len.clone()),
            _ => None,
        },
        Some((s, rest)) => get_int(step_into(v, s)?, rest),
    }
}

fn get_leaf(v: &A, path: &[Step]) -> Option<Dynamic> {
    match path.split_first() {
        None => match v {
            A::Int(x) => Some(Dynamic::from_ast(x)),
            A::Bool(b) => Some(Dynamic::from_ast(b)),
            _ => None,
        },
        Some((Step::Len, [])) => match v {
            A::Coll(c) => Some(Dynamic::from_ast(&c.len)),
            _ => None,
        },
        Some((s, rest)) => get_leaf(step_into(v, s)?, rest),
    }
}

fn get_coll(v: &A, path: &[Step]) -> Option<Rc<Coll>> {
    match path.split_first() {
        None => match v {
            A::Coll(c) => Some(c.clone()),
            _ => None,
        },
        Some((s, rest)) => get_coll(step_into(v, s)?, rest),
    }
}

/// `atom` with its holes filled from element `e`.
fn fill(atom: &Bool, holes: &[(Dynamic, Vec<Step>)], e: &A) -> Option<Bool> {
    let leaves: Vec<Dynamic> = holes
        .iter()
        .map(|(h, p)| get_leaf(e, p).filter(|l| l.get_sort() == h.get_sort()))
        .collect::<Option<_>>()?;
    let pairs: Vec<(&Dynamic, &Dynamic)> =
        holes.iter().map(|(h, _)| h).zip(leaves.iter()).collect();
    Some(atom.substitute(&pairs))
}

/// The value with the collection at `path` restricted to elements satisfying `atom`.
fn restrict(v: &A, path: &[Step], atom: &Bool, holes: &[(Dynamic, Vec<Step>)]) -> Option<A> {
    match path.split_first() {
        None => {
            let c = match v {
                A::Coll(c) => c,
                _ => return None,
            };
            let extra = fill(atom, holes, &c.elem.val)?;
            Some(A::Coll(Rc::new(Coll {
                kind: c.kind,
                len: c.len.clone(),
                elem: Rc::new(Tpl {
                    vars: c.elem.vars.clone(),
                    cond: and_all(&[c.elem.cond.clone(), extra]),
                    val: c.elem.val.clone(),
                }),
                lo: c.lo.clone(),
            })))
        }
        Some((Step::Tuple(i), rest)) => match v {
            A::Tuple(xs) if *i < xs.len() => {
                let mut out = (**xs).clone();
                out[*i] = restrict(&xs[*i], rest, atom, holes)?;
                Some(A::Tuple(Rc::new(out)))
            }
            _ => None,
        },
        Some((Step::Field(n), rest)) => match v {
            A::Record(fs) => {
                let mut out = (**fs).clone();
                let slot = out.iter_mut().find(|(k, _)| *k == *n)?;
                slot.1 = restrict(&slot.1, rest, atom, holes)?;
                Some(A::Record(Rc::new(out)))
            }
            _ => None,
        },
        Some((Step::Len, _)) => None,
    }
}

/// The int and bool leaves of a value with their paths (a collection contributes its
/// length; its elements are a template of their own).
fn leaf_terms(v: &A, p: &mut Vec<Step>, out: &mut Vec<(Dynamic, Vec<Step>)>) {
    match v {
        A::Int(x) => out.push((Dynamic::from_ast(x), p.clone())),
        A::Bool(b) => out.push((Dynamic::from_ast(b), p.clone())),
        A::Coll(c) => {
            let mut q = p.clone();
            q.push(Step::Len);
            out.push((Dynamic::from_ast(&c.len), q));
        }
        A::Tuple(xs) => {
            for (i, x) in xs.iter().enumerate() {
                p.push(Step::Tuple(i));
                leaf_terms(x, p, out);
                p.pop();
            }
        }
        A::Record(fs) => {
            for (n, x) in fs.iter() {
                p.push(Step::Field(n.clone()));
                leaf_terms(x, p, out);
                p.pop();
            }
        }
        A::Top => {}
    }
}

/// The uninterpreted constants of a term (each shared subterm visited once).
fn free_vars(t: &Dynamic) -> Vec<Dynamic> {
    let mut seen: TermSet<Dynamic> = TermSet::default();
    let mut out = Vec::new();
    let mut stack = vec![t.clone()];
    while let Some(x) = stack.pop() {
        if !x.is_app() || !seen.insert(x.clone()) {
            continue;
        }
        if x.is_const() {
            if x.decl().kind() == DeclKind::Uninterpreted {
                out.push(x);
            }
            continue;
        }
        stack.extend(x.children());
    }
    out
}
