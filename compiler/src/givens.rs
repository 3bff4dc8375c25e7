//! `unique_givens`: unique-by-construction generation. Given a full solution and candidate
//! givens in removal order, keep removing givens while the solution stays the only answer
//! of the env's own verify, proved by Z3 (spec/proofs.md §5).
//!
//! Every check is one incremental query under assumptions: every given has a selector
//! literal (verify sees the instance field as a list whose elements are present when their
//! selector is true), "the answer differs from the solution" is asserted, and the query
//! assumes which givens are kept. UNSAT means unique. Where verify is monotone in the
//! givens, whole blocks of them are tried per check ([`remove_while_unique`]).
//!
//! Speed comes from reusing solver state across instances of one shape. A fresh Z3
//! context costs more than the whole 4×4 sudoku reduction (measured: 40% of generation
//! time was `ast_manager` construction), so each worker thread keeps one context and one
//! solver per (env, params, answer shape, field). The part of verify that reads no
//! instance value (the rules of the puzzle) is lowered and asserted once, when the solver
//! is made ([`split_verify`]). The rest is lowered per instance into the same context and
//! told to the solver in one of two ways ([`Mode`]):
//! - In a push/pop scope of its own, so after the call it is gone: the solver holds
//!   exactly the rules plus this instance's part, the formula of a fresh solver.
//! - Kept across calls, each fact inert unless a call assumes it ([`Kept`]), with "the
//!   answer differs from the solution" as fixed clauses switched on by assumptions. A call
//!   whose facts have all been seen before asserts nothing; where a given's clues depend
//!   on its value alone, a call does not even lower the givens seen before
//!   ([`clues_only`]). Used for small answers of Boolean leaves (4 x 4 sudoku) when verify
//!   is monotone in the givens.
//!
//! Either way a check's SAT / UNSAT answer is a fresh solver's: the formula under the
//! call's assumptions is satisfiable exactly when the fresh formula is.
//!
//! Where the time goes (4 x 4 sudoku, level 3, callgrind): about 60% in Z3's checks, and
//! most of that was not search but Z3 5.4's preprocessing layer in front of the SAT
//! solver, which runs over every formula asserted since the last check or push and
//! rebuilds a rewriter for the assumptions on every check. The kept mode avoids the first
//! part: 1.19 → 0.97 million instructions per puzzle, and 0.79 million with each given
//! lowered once. What was measured and not taken:
//! - The kept mode on 9 x 9 (81 leaves): 343 → 245 puzzles/s. It assumes one literal per
//!   leaf and leaves hundreds of free implications in the search, hence
//!   [`KEPT_MAX_LEAVES`].
//! - Kept per-given facts with "differs" still in a scope (the previous attempt): 4 x 4
//!   −8% instructions, 9 x 9 +19%.
//! - "Differs" as one clause per solution behind a literal (4 x 4 has 288 solutions):
//!   slower than the scope, the free clauses cost the SAT search more than they saved.
//! - Z3's default solver instead of `QF_FD`: about 2.5x slower on 4 x 4.
//!
//! Determinism: the result depends only on the SAT/UNSAT answers, which are facts about
//! the formula, not about solver history. The two history-dependent outcomes are redone in
//! a fresh context, whose answer is the result: a query out of budget (`unknown`), and the
//! error "not unique even with every given", whose message names another answer (a model).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use resyn_runtime::{Shape, Value};
use z3::ast::{Ast, Bool, Int};
use z3::{Context, Params, SatResult, Solver};

use crate::eval::CEnv;
use crate::ir::{Block, Program, SlotUse, Stmt};
use crate::prove::{
    check_z3, halt_reason, in_context, in_fresh_context, new_context, reason_unknown, Limits,
    DEFAULT_RLIMIT,
};
use crate::smt::{read_model, Guard, Lowering, TermMap, TermSet, DEFAULT_BUDGET, S};

/// What `unique_givens` was called with.
pub struct Givens<'a> {
    /// The instance value that will hold the kept givens.
    pub field: &'a str,
    /// Candidates, in removal order.
    pub givens: &'a [Value],
    /// The planted answer that must stay the only one.
    pub solution: &'a Value,
    /// Stop removing when this many are left.
    pub min_keep: usize,
}

/// How many solver shapes a worker keeps (a `gen --levels` run alternates between a few).
const CACHED_SHAPES: usize = 4;

/// A cached solver is dropped once it holds this many selectors: given values that never
/// recur (random values per instance) would otherwise grow it without bound.
const MAX_REMEMBERED: usize = 1 << 15;

/// A cached solver is also dropped after this many calls: each push/pop scope leaves some
/// memory behind in Z3 (measured: about 0.7 KB per 4 x 4 call, 60 → 130 MB over 100,000
/// puzzles). Remaking it costs about a millisecond.
const MAX_CALLS: usize = 4096;

thread_local! {
    static SOLVERS: RefCell<Vec<Cached>> = const { RefCell::new(Vec::new()) };
    static REUSE: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// Whether this thread's `unique_givens` calls reuse cached solvers (the default) or take
/// the fresh path every time: the two must give the same results, which the differential
/// tests check, and the benchmark compares their speed.
pub fn set_solver_reuse(on: bool) {
    REUSE.with(|r| r.set(on));
    if !on {
        SOLVERS.with(|s| s.borrow_mut().clear());
    }
}

/// Which of `call.givens` (the future value of instance field `call.field`) to keep so
/// that `call.solution` stays the only valid answer. Givens are tried for removal in list
/// order (shuffle first for a random puzzle); one stays removed when the answer is still
/// unique without it; removal stops at `min_keep` kept. Returns the kept givens in list
/// order. Fields the generator sets later are unknown here: verify must not read them.
pub fn reduce_givens(
    program: &Program,
    env: &CEnv,
    params: &[Value],
    fields: &[Option<Value>],
    call: &Givens<'_>,
) -> Result<Vec<Value>, String> {
    check_z3()?;
    let setup = Setup::new(env, params, fields, call)?;
    if REUSE.with(|r| r.get()) {
        if let Some(kept) = reduce_cached(program, &setup, call) {
            return Ok(kept);
        }
    }
    in_fresh_context(|| reduce_fresh(program, &setup, call))
}

/// What both paths need: the instance as known now and the answer's shape.
struct Setup<'a> {
    env: &'a CEnv,
    params: &'a [Value],
    fields: &'a [Option<Value>],
    /// The index of the instance field the givens go to.
    target: usize,
    shape: Shape,
    /// Whether removal may try blocks of givens (see [`remove_while_unique`]).
    blocks: bool,
}

impl<'a> Setup<'a> {
    fn new(
        env: &'a CEnv,
        params: &'a [Value],
        fields: &'a [Option<Value>],
        call: &Givens<'_>,
    ) -> Result<Setup<'a>, String> {
        let ir = &env.ir;
        let target = ir
            .fields
            .iter()
            .position(|f| f.name == call.field)
            .ok_or_else(|| format!("the env has no instance value `{}`", call.field))?;
        // The instance as known now: the target field holds every given.
        let mut known: Vec<Value> = (0..ir.fields.len())
            .map(|i| fields.get(i).cloned().flatten().unwrap_or(Value::Unit))
            .collect();
        known[target] = Value::list(call.givens.to_vec());
        let shape = env
            .answer_shape(params, &known)
            .map_err(|e| format!("the answer type: {e}"))?;
        let blocks = match REMOVAL.with(|r| r.get()) {
            Removal::Auto => monotone_in(ir, target),
            Removal::OneByOne => false,
            Removal::Blocks => true,
        };
        Ok(Setup {
            env,
            params,
            fields,
            target,
            shape,
            blocks,
        })
    }

    /// Verify's frame (params, then instance fields): the target field is the list of
    /// givens, element `i` present when `selectors[i]` holds.
    fn frame(&self, givens: &[Value], selectors: &[Bool]) -> Vec<S> {
        let ir = &self.env.ir;
        let mut frame: Vec<S> = self.params.iter().cloned().map(S::C).collect();
        for i in 0..ir.fields.len() {
            frame.push(if i == self.target {
                S::List(
                    Rc::new(givens.iter().cloned().map(S::C).collect()),
                    Guard::Each(Rc::new(selectors.to_vec())),
                )
            } else {
                match self.fields.get(i).cloned().flatten() {
                    Some(v) => S::C(v),
                    None => S::Poison(Rc::from(
                        format!(
                            "verify reads `{}`, which the generator sets after unique_givens",
                            ir.fields[i].name
                        )
                        .as_str(),
                    )),
                }
            });
        }
        frame
    }
}

fn limits() -> Limits {
    Limits {
        rlimit: DEFAULT_RLIMIT,
        timeout_ms: 0,
    }
}

fn limited_solver() -> Solver {
    let solver = Solver::new_for_logic("QF_FD").unwrap_or_default();
    let mut p = Params::new();
    p.set_u32("rlimit", limits().rlimit);
    solver.set_params(&p);
    solver
}

/// How the removal loop chooses what to try removing next (see [`remove_while_unique`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// Blocks when verify is monotone in the givens ([`monotone_in`]), else one by one.
    Auto,
    /// One given per check: the definition.
    OneByOne,
    /// Blocks even when verify is not monotone: only for tests, which show the analysis is
    /// needed (the result can then differ from the definition).
    Blocks,
}

thread_local! {
    static REMOVAL: std::cell::Cell<Removal> = const { std::cell::Cell::new(Removal::Auto) };
}

/// This thread's removal strategy (tests compare them; the default is `Auto`).
pub fn set_removal(r: Removal) {
    REMOVAL.with(|c| c.set(r));
}

/// The removal loop shared by both paths: `check(kept)` answers "is there another answer
/// with these givens kept?" (UNSAT: the solution is still the only one); an error from
/// `check` stops the loop.
///
/// The definition (spec/language.md §8.1) is one given per check, in list order: a given
/// stays removed when the answer is still unique without it. When `blocks` holds, verify
/// is monotone in the givens (removing one only drops constraints, so "unique" with a set
/// of givens kept stays true for every superset, and "not unique" for every subset), and
/// the loop takes the same decisions in fewer checks:
/// - It tries to remove a whole block of the next givens at once. If the answer stays
///   unique, the one-by-one loop would have removed each of them too: every state it
///   passes through keeps a superset of the block's result.
/// - If not, the first given that the one-by-one loop keeps lies in that block: the loop
///   halves the block, and keeps looking in the half where it lies (a binary search; the
///   failed range stays failed as more givens go, by monotonicity). A range of one given
///   known to fail is that given, kept without a further check.
///
/// Measured (level 3, checks per puzzle, one by one → blocks): 4 x 4 sudoku with 9 blanks
/// 10.4 → 2.7; 9 x 9 with 48 blanks 52.1 → 14.9.
///
/// With every given kept the answer must be unique (`Ok(None)` otherwise, right after the
/// check that found another answer, so the solver's model shows it). One by one, that is
/// the first check. With blocks, any removal that leaves the answer unique proves it
/// (monotonicity), so the check is made only if a given must stay before any went.
fn remove_while_unique<E>(
    n: usize,
    min_keep: usize,
    blocks: bool,
    mut check: impl FnMut(&[bool]) -> Result<SatResult, E>,
) -> Result<Option<Vec<bool>>, E> {
    let mut kept = vec![true; n];
    // Whether "unique with every given kept" is known.
    let mut all_unique = false;
    let all_kept_is_unique =
        |known: &mut bool, check: &mut dyn FnMut(&[bool]) -> Result<SatResult, E>| {
            if !*known {
                *known = check(&vec![true; n])? == SatResult::Unsat;
            }
            Ok(*known)
        };
    if !blocks && !all_kept_is_unique(&mut all_unique, &mut check)? {
        return Ok(None);
    }
    let mut left = n;
    let mut i = 0;
    // Removing givens `i..failed` (with those before `i` as decided) is known not unique.
    let mut failed: Option<usize> = None;
    while i < n && left > min_keep {
        let may_go = (left - min_keep).min(n - i);
        let b = match (blocks, failed) {
            (false, _) => 1,
            // A failed range of one: that given cannot go, no check needed.
            (true, Some(end)) if end == i + 1 => 0,
            (true, Some(end)) => ((end - i) / 2).min(may_go),
            (true, None) => may_go,
        };
        if b > 0 {
            kept[i..i + b].fill(false);
            if check(&kept)? == SatResult::Unsat {
                left -= b;
                i += b;
                all_unique = true;
                continue;
            }
            kept[i..i + b].fill(true);
            if b > 1 {
                failed = Some(i + b);
                continue;
            }
        }
        // The given at `i` stays. If nothing could go so far, the answer may not be unique
        // even with every given (then nothing can go): find out now, with one check,
        // rather than with a search per given.
        if !all_kept_is_unique(&mut all_unique, &mut check)? {
            return Ok(None);
        }
        i += 1;
        failed = None;
    }
    if !all_kept_is_unique(&mut all_unique, &mut check)? {
        return Ok(None);
    }
    Ok(Some(kept))
}

/// Whether `env`'s `unique_givens` calls for instance value `field` remove givens in
/// blocks (verify is monotone in them, [`monotone_in`]); `None` if there is no such value.
pub fn removes_in_blocks(env: &CEnv, field: &str) -> Option<bool> {
    let at = env.ir.fields.iter().position(|f| f.name == field)?;
    Some(monotone_in(&env.ir, at))
}

/// Whether each given's clues in `env`'s verify depend on the given's value alone, for
/// instance value `field` ([`clues_only`]; then a solver with kept facts lowers each given
/// once); `None` if there is no such value.
pub fn clues_by_value(env: &CEnv, field: &str) -> Option<bool> {
    let at = env.ir.fields.iter().position(|f| f.name == field)?;
    Some(monotone_in(&env.ir, at) && clues_only(&env.ir, &split_verify(&env.ir).own, at))
}

/// Whether `ir`'s verify is monotone in instance field `field` seen as a list of givens:
/// the field is read only as the list a top-level `forall` constraint runs over (its first
/// clause), and nowhere else, not even in that constraint's later clauses or body. Such a
/// constraint is one implication "given present → clue" per given, so dropping a given
/// only drops constraints. Anything else (`len`, `exists`, membership, a `let` of the
/// field, a read inside `if`) may not be monotone, and the caller removes one by one.
pub(crate) fn monotone_in(ir: &crate::ir::Env, field: usize) -> bool {
    use crate::ir::{Clause, Expr};
    let slot = (ir.params.len() + field) as crate::ir::Slot;
    let reads = |e: &Expr| {
        let mut r = false;
        e.each_use(&mut |u| r |= u == SlotUse::Read(slot));
        r
    };
    let clauses_read = |cs: &[Clause]| {
        cs.iter().any(|c| match c {
            Clause::For(_, x) | Clause::If(x) => reads(x),
        })
    };
    // `forall p in field ...: body`, with the field read nowhere else.
    let over_field = |cs: &[Clause], body: &Expr| match cs.split_first() {
        Some((Clause::For(_, Expr::Local(s)), rest)) if *s == slot => {
            !clauses_read(rest) && !reads(body)
        }
        _ => false,
    };
    ir.verify.stmts.iter().all(|stmt| {
        let (mut any, mut written) = (false, false);
        stmt.each_use(&mut |u| {
            any |= u == SlotUse::Read(slot);
            written |= u == SlotUse::Write(slot);
        });
        if written {
            return false;
        }
        if !any {
            return true;
        }
        match stmt {
            Stmt::Constraint { binders, cond, .. } if !binders.is_empty() => {
                over_field(binders, cond)
            }
            Stmt::Constraint {
                cond:
                    Expr::Quant {
                        forall: true,
                        clauses,
                        body,
                    },
                ..
            } => over_field(clauses, body),
            _ => false,
        }
    }) && ir.verify.value.as_ref().is_none_or(|v| !reads(v))
}

/// Whether `fact` is `selector → clue`.
fn is_clue_of(fact: &Bool, selector: &Bool) -> bool {
    matches!(
        fact.safe_decl().map(|d| d.kind()),
        Ok(z3::DeclKind::Implies)
    ) && fact.nth_child(0).and_then(|g| g.as_bool()).as_ref() == Some(selector)
}

/// Whether each given's clues depend on the given's value alone: every statement of
/// `own` (the part of verify lowered per instance, see [`split_verify`]) is a constraint
/// whose first clause runs over instance field `field` (each binding evaluated, no short
/// circuit), and that reads nothing but the params, that field, the answer and the locals
/// it binds itself. Then lowering `own` over a list of givens gives the conjunction of
/// lowering it over each given alone.
fn clues_only(ir: &crate::ir::Env, own: &Block, field: usize) -> bool {
    use crate::ir::{Clause, Expr};
    let params = ir.params.len();
    let slot = (params + field) as crate::ir::Slot;
    let answer = (params + ir.fields.len()) as crate::ir::Slot;
    own.value.is_none()
        && !own.stmts.is_empty()
        && own.stmts.iter().all(|stmt| {
            let Stmt::Constraint { binders, .. } = stmt else {
                return false;
            };
            if !matches!(binders.first(), Some(Clause::For(_, Expr::Local(s))) if *s == slot) {
                return false;
            }
            let mut bound = std::collections::BTreeSet::new();
            stmt.each_use(&mut |u| {
                if let SlotUse::Write(s) = u {
                    bound.insert(s);
                }
            });
            let mut ok = bound.iter().all(|s| *s > answer);
            stmt.each_use(&mut |u| {
                if let SlotUse::Read(s) = u {
                    ok &= (s as usize) < params || s == slot || s == answer || bound.contains(&s);
                }
            });
            ok
        })
}

fn select(givens: &[Value], kept: &[bool]) -> Vec<Value> {
    givens
        .iter()
        .zip(kept)
        .filter(|(_, k)| **k)
        .map(|(g, _)| g.clone())
        .collect()
}

/// The selector literals a check assumes: the kept givens' true and, unless `only_kept`,
/// the removed ones' false. Where verify is monotone in the givens a removed given's
/// selector may stay free: an answer accepted with the given present is accepted without
/// it, so setting the selector false keeps any model a model. Measured: with the facts in
/// a scope, leaving them free made checks 2x slower; with kept facts ([`Kept`], which
/// needs monotone verify) it is 9% fewer instructions per 4 x 4 puzzle (each assumption
/// costs Z3 work on every check).
fn assumptions<'a>(
    selectors: &'a [Bool],
    kept: &'a [bool],
    only_kept: bool,
) -> impl Iterator<Item = Bool> + 'a {
    selectors
        .iter()
        .zip(kept)
        .filter(move |(_, k)| **k || !only_kept)
        .map(|(s, k)| if *k { s.clone() } else { s.not() })
}

/// The reference path: a fresh context and solver for this one call. Its answers and
/// error messages are what the cached path must reproduce.
fn reduce_fresh(
    program: &Program,
    setup: &Setup<'_>,
    call: &Givens<'_>,
) -> Result<Vec<Value>, String> {
    let selectors: Vec<Bool> = (0..call.givens.len())
        .map(|i| Bool::fresh_const(&format!("given{i}")))
        .collect();
    let frame = setup.frame(call.givens, &selectors);
    let (mut lowering, answer) = crate::prove::lower_verify(
        program,
        setup.env,
        &setup.shape,
        &frame,
        crate::prove::Encoding::Boolean,
        false,
    )
    .map_err(|h| halt_reason(&h))?;
    let solver = limited_solver();
    for f in &lowering.facts {
        solver.assert(f);
    }
    let same = lowering
        .eq(&answer, &S::C(call.solution.clone()))
        .map_err(|h| halt_reason(&h))?;
    solver.assert(same.not());

    let check = |kept: &[bool]| -> Result<SatResult, String> {
        let a: Vec<Bool> = assumptions(&selectors, kept, false).collect();
        match solver.check_assumptions(&a) {
            SatResult::Unknown => Err(reason_unknown(&solver, limits()).0),
            r => Ok(r),
        }
    };
    match remove_while_unique(call.givens.len(), call.min_keep, setup.blocks, check)? {
        Some(kept) => Ok(select(call.givens, &kept)),
        None => {
            let other = solver
                .get_model()
                .and_then(|m| read_model(&m, &setup.shape, &answer))
                .map(|v| v.display())
                .unwrap_or_default();
            Err(format!(
                "even with every given kept the answer is not unique (another answer: {other})"
            ))
        }
    }
}

/// The cached path; `None` means "redo it fresh" (see the module comment).
fn reduce_cached(program: &Program, setup: &Setup<'_>, call: &Givens<'_>) -> Option<Vec<Value>> {
    SOLVERS.with(|solvers| {
        let mut solvers = solvers.borrow_mut();
        let key = Key {
            env: setup.env.id,
            params: setup.params.to_vec(),
            shape: setup.shape.clone(),
            target: setup.target,
        };
        let at = match solvers.iter().position(|c| c.key == key) {
            Some(i) => i,
            None => {
                if solvers.len() >= CACHED_SHAPES {
                    solvers.remove(0);
                }
                solvers.push(Cached::new(program, setup, &key, true, true)?);
                solvers.len() - 1
            }
        };
        let mut outcome = solvers[at].reduce(program, setup, call);
        // A solver remade for this and every later instance of the shape: in the plain
        // `Int` encoding when verify does arithmetic on the answer (as in `lower_verify`),
        // with scopes when a given's clue depends on more than its value. Each happens at
        // most once; anything further goes the fresh way below.
        for _ in 0..2 {
            let (one_hot, keep) = match outcome {
                Attempt::NeedsInt => (false, true),
                Attempt::FactsDiffer => (solvers[at].part.one_hot, false),
                _ => break,
            };
            outcome = match Cached::new(program, setup, &key, one_hot, keep) {
                Some(remade) => {
                    solvers[at] = remade;
                    solvers[at].reduce(program, setup, call)
                }
                None => Attempt::Redo,
            };
        }
        match outcome {
            Attempt::Done(kept) => {
                let c = &solvers[at];
                if c.selectors.len() > MAX_REMEMBERED || c.calls >= MAX_CALLS || c.too_many_facts()
                {
                    solvers.remove(at);
                }
                Some(kept)
            }
            Attempt::NeedsInt | Attempt::FactsDiffer | Attempt::Redo => {
                // A solver that has seen a budget run-out (or cannot be made in the plain
                // encoding) is not kept either.
                solvers.remove(at);
                None
            }
        }
    })
}

#[derive(Clone, PartialEq)]
struct Key {
    env: u64,
    params: Vec<Value>,
    shape: Shape,
    target: usize,
}

/// One worker's solver for one shape, with everything it has been told.
struct Cached {
    key: Key,
    /// Its own context: the terms below live in it.
    ctx: Context,
    solver: Solver,
    /// What each call lowers (see [`split_verify`]); the rules are asserted.
    part: InstancePart,
    /// How many calls it has served (see [`MAX_CALLS`]).
    calls: usize,
    /// Selector literals by given value and occurrence (see [`Cached::selectors_of`]).
    selectors: BTreeMap<(Value, usize), Bool>,
    /// How each call's part is told to the solver.
    mode: Mode,
}

/// How a cached solver is told each call's part of verify and "the answer differs from the
/// solution". Either way, during a call the solver's formula under the call's assumptions
/// is satisfiable exactly when a fresh solver's formula is.
enum Mode {
    /// Asserted in a push/pop scope that ends with the call.
    Scoped,
    /// Asserted once and kept ([`Kept`]): no scope, no new formulas once the facts recur.
    Kept(Kept),
}

/// Facts kept across calls, each inert unless the call that needs it assumes it true.
///
/// Z3 5.x puts a preprocessing layer in front of its SAT solver that works on every formula
/// asserted since the last check and on every push; with a 4 x 4 sudoku that was about a
/// third of generation time. Here a call in which every fact has been seen before asserts
/// nothing: its checks only assume literals. Measured (level 3, one pinned core, with
/// [`Kept::clues`]): 4 x 4 sudoku 6,877 → 11,723 puzzles/s; the same design on 9 x 9 went
/// 343 → 245/s (81 more assumptions per check and 729 free implications in the search),
/// hence [`KEPT_MAX_LEAVES`].
struct Kept {
    /// Per scalar leaf of the answer (in [`leaf_alts`] order): for each value the leaf can
    /// take, a literal "the solution has this value here". The fixed clauses
    /// `mismatch_j ∧ is_j(v) → leaf_j ≠ v` and `∨_j mismatch_j` make "the answer differs
    /// from the solution" hold exactly when a call assumes the solution's `is` literals;
    /// with none assumed they are satisfied by all `is` false. (The fresh path's
    /// `answer != solution` is a formula per solution, new in nearly every call.)
    leaves: Vec<Vec<(Value, Bool)>>,
    /// Facts `selector → clue` asserted as they are, by selector. Such a fact is inert
    /// in a call that does not have the selector: the call's other facts were lowered
    /// from its own givens, so nothing there mentions it, and it can be false. It binds
    /// the call that has the selector, so such a call must have every kept fact of its
    /// selectors among its own facts (else [`Attempt::FactsDiffer`]): a given's clue may
    /// depend on more than its value (another instance value, say).
    by_selector: TermMap<Bool, Vec<Bool>>,
    /// Every other fact `f` seen in two calls, asserted as `g → f` for a literal `g` of
    /// its own that the calls having `f` assume.
    guarded: TermMap<Bool, Bool>,
    /// Other facts seen in one call so far. A fact goes into the call's scope the first
    /// time: one that never recurs (a chain over the whole list of givens, say) is not
    /// kept, where it would only grow the solver.
    seen_once: TermSet<Bool>,
    /// Where a given's clues depend on its value alone ([`clues_only`]): the selectors
    /// whose clues are asserted, with the lowering steps they took. A call then lowers
    /// only the givens never seen before, one at a time.
    clues: Option<TermMap<Bool, u64>>,
    /// How many facts have been asserted to be kept (see [`Cached::too_many_facts`]).
    asserted: usize,
}

/// Answers with more scalar leaves than this use [`Mode::Scoped`] (see [`Kept`]).
const KEPT_MAX_LEAVES: usize = 32;

impl Kept {
    /// The kept mode for `answer` with its "differs" clauses asserted into `solver`, or
    /// `None` when a leaf has no finite list of values ([`leaf_alts`]) or there are too
    /// many leaves.
    fn new(solver: &Solver, answer: &S, clues: bool) -> Option<Kept> {
        let mut alts = Vec::new();
        leaf_alts(answer, &mut alts)?;
        if alts.is_empty() || alts.len() > KEPT_MAX_LEAVES {
            return None;
        }
        let mut mismatches = Vec::with_capacity(alts.len());
        let mut leaves = Vec::with_capacity(alts.len());
        for leaf in alts {
            let mismatch = Bool::fresh_const("mismatch");
            let mut values = Vec::with_capacity(leaf.len());
            for (v, lit) in leaf {
                let is = Bool::fresh_const("is");
                solver.assert(Bool::or(&[mismatch.not(), is.not(), lit.not()]));
                values.push((v, is));
            }
            mismatches.push(mismatch);
            leaves.push(values);
        }
        solver.assert(Bool::or(&mismatches));
        Some(Kept {
            leaves,
            by_selector: TermMap::default(),
            guarded: TermMap::default(),
            seen_once: TermSet::default(),
            clues: clues.then(TermMap::default),
            asserted: 0,
        })
    }

    /// The `is` literals of `solution`: at each leaf, those of every alternative with the
    /// solution's value there (a choice among listed values may list one twice). `None`
    /// if it is not a value of the answer's domain (the fresh path then decides).
    fn differs_from(&self, answer: &S, solution: &Value) -> Option<Vec<Bool>> {
        let mut values = Vec::with_capacity(self.leaves.len());
        leaf_values(answer, solution, &mut values)?;
        (values.len() == self.leaves.len()).then_some(())?;
        let mut assume = Vec::with_capacity(values.len());
        for (leaf, v) in self.leaves.iter().zip(&values) {
            let before = assume.len();
            assume.extend(
                leaf.iter()
                    .filter(|(w, _)| w == v)
                    .map(|(_, is)| is.clone()),
            );
            (assume.len() > before).then_some(())?;
        }
        Some(assume)
    }

    /// [`Kept::tell`] where clues depend on the given's value alone ([`Kept::clues`]):
    /// asserts the clues of givens never seen before, each lowered alone by `lower`.
    fn tell_clues<'p>(
        &mut self,
        solver: &Solver,
        givens: &[Value],
        selectors: &[Bool],
        budget: u64,
        lower: impl Fn(&[Value], &[Bool]) -> Result<Lowering<'p>, Attempt>,
    ) -> Result<(), Attempt> {
        let clues = self.clues.as_mut().ok_or(Attempt::Redo)?;
        // The facts of a whole list are the conjunction of each given's, and lowering it
        // takes at most the steps of lowering them one at a time (which count the
        // statement's own steps once per given): within the part's budget, the whole
        // list's lowering (and the fresh path's, see `InstancePart::budget`) does not
        // stop either.
        let mut steps = 0u64;
        for (g, s) in givens.iter().zip(selectors) {
            // Checked as it grows: a long list of new givens stops at the budget, as the
            // list's own lowering would, not after lowering every one of them.
            if steps > budget {
                return Err(Attempt::Redo);
            }
            let cost = match clues.get(s) {
                Some(cost) => *cost,
                None => {
                    let lowering = lower(std::slice::from_ref(g), std::slice::from_ref(s))?;
                    if !lowering.facts.iter().all(|f| is_clue_of(f, s)) {
                        return Err(Attempt::FactsDiffer);
                    }
                    for f in &lowering.facts {
                        solver.assert(f);
                    }
                    self.asserted += lowering.facts.len();
                    clues.insert(s.clone(), lowering.steps());
                    lowering.steps()
                }
            };
            steps = steps.saturating_add(cost);
        }
        if steps > budget {
            return Err(Attempt::Redo);
        }
        Ok(())
    }

    /// Asserts the kept facts that `facts` need and are not asserted yet. Returns the
    /// literals the call must assume besides its selectors and the facts it must assert
    /// in a scope of its own; `None` if a selector of the call has a kept fact that is not
    /// among `facts`.
    fn tell(
        &mut self,
        solver: &Solver,
        selectors: &[Bool],
        facts: &[Bool],
    ) -> Option<(Vec<Bool>, Vec<Bool>)> {
        let mine: TermSet<Bool> = selectors.iter().cloned().collect();
        let mut by_selector: TermMap<Bool, Vec<Bool>> = TermMap::default();
        let (mut assume, mut scoped) = (Vec::new(), Vec::new());
        if self.seen_once.len() > MAX_REMEMBERED {
            self.seen_once.clear();
        }
        for fact in facts {
            // A constraint's facts are one conjunction: its parts are what recur.
            let parts: Vec<Bool> = match fact.safe_decl().map(|d| d.kind()) {
                Ok(z3::DeclKind::And) => {
                    fact.children().iter().filter_map(|c| c.as_bool()).collect()
                }
                _ => vec![fact.clone()],
            };
            for part in parts {
                let guard = match part.safe_decl().map(|d| d.kind()) {
                    Ok(z3::DeclKind::Implies) => part
                        .nth_child(0)
                        .and_then(|g| g.as_bool())
                        .filter(|g| mine.contains(g)),
                    _ => None,
                };
                match guard {
                    Some(selector) => by_selector.entry(selector).or_default().push(part),
                    None => {
                        if let Some(g) = self.guarded.get(&part) {
                            assume.push(g.clone());
                        } else if self.seen_once.remove(&part) {
                            let g = Bool::fresh_const("fact");
                            solver.assert(g.implies(&part));
                            self.asserted += 1;
                            self.guarded.insert(part, g.clone());
                            assume.push(g);
                        } else {
                            self.seen_once.insert(part.clone());
                            scoped.push(part);
                        }
                    }
                }
            }
        }
        for selector in selectors {
            let own = by_selector.remove(selector).unwrap_or_default();
            let kept = self.by_selector.entry(selector.clone()).or_default();
            if kept.iter().any(|k| !own.contains(k)) {
                return None;
            }
            for part in own {
                if !kept.contains(&part) {
                    solver.assert(&part);
                    self.asserted += 1;
                    kept.push(part);
                }
            }
        }
        Some((assume, scoped))
    }
}

/// The answer's scalar leaves, each as its (value, condition) alternatives, depth first:
/// bools, one-hot ints and choices, whose conditions are the very terms
/// [`Lowering::eq`] compares with (a literal each, or `k = i` for a choice among more
/// values than are one-hot). `None` if some leaf has no such finite list of values (a
/// plain `Int`, a bounded list, a map).
fn leaf_alts(s: &S, out: &mut Vec<Vec<(Value, Bool)>>) -> Option<()> {
    match s {
        S::C(_) => {}
        S::Tuple(items) | S::List(items, Guard::All) => {
            for x in items.iter() {
                leaf_alts(x, out)?;
            }
        }
        S::Record(fields) => {
            for (_, x) in fields.iter() {
                leaf_alts(x, out)?;
            }
        }
        leaf => out.push(crate::smt::value_alts(leaf)?),
    }
    Some(())
}

/// `v`'s values at the symbolic leaves of `s`, in [`leaf_alts`] order; `None` where `v`
/// does not have `s`'s structure or differs from a constant part of it.
fn leaf_values(s: &S, v: &Value, out: &mut Vec<Value>) -> Option<()> {
    match (s, v) {
        (S::C(c), v) => (c == v).then_some(())?,
        (S::B(_) | S::OneHot(_) | S::Union(_), v) => out.push(v.clone()),
        (S::Tuple(items), Value::Tuple(vs)) | (S::List(items, Guard::All), Value::List(vs))
            if items.len() == vs.len() =>
        {
            for (x, y) in items.iter().zip(vs.iter()) {
                leaf_values(x, y, out)?;
            }
        }
        (S::Record(fields), Value::Record(vs)) if fields.len() == vs.len() => {
            for ((name, x), (other, y)) in fields.iter().zip(vs.iter()) {
                (name == other).then_some(())?;
                leaf_values(x, y, out)?;
            }
        }
        _ => return None,
    }
    Some(())
}

enum Attempt {
    Done(Vec<Value>),
    /// The one-hot lowering met arithmetic on the answer.
    NeedsInt,
    /// A given's clue differs from the one kept for it ([`Kept::tell`]).
    FactsDiffer,
    /// An outcome that depends on solver history: redo it fresh.
    Redo,
}

impl Cached {
    /// A solver for `key`, told the answer's domain and the shared part of verify; one-hot
    /// small ints if `one_hot` and that part allows (see [`lower_rules`]); facts kept
    /// across calls if `keep` and the env allows ([`Mode`]). `None`: the shared part
    /// cannot be lowered (the call goes the fresh way).
    fn new(
        program: &Program,
        setup: &Setup<'_>,
        key: &Key,
        one_hot: bool,
        keep: bool,
    ) -> Option<Cached> {
        let ctx = new_context();
        let (solver, part, mode) = in_context(&ctx, || {
            let rules = lower_rules(program, setup.env, setup.params, &key.shape, one_hot)?;
            // The domain and the shared constraints hold for every instance: unscoped.
            let solver = limited_solver();
            for f in &rules.lowering.facts {
                solver.assert(f);
            }
            let ir = &setup.env.ir;
            let clues = clues_only(ir, &rules.part.own, key.target);
            let kept = (keep && monotone_in(ir, key.target))
                .then(|| Kept::new(&solver, &rules.part.answer, clues))
                .flatten();
            Some((solver, rules.part, kept.map_or(Mode::Scoped, Mode::Kept)))
        })?;
        Some(Cached {
            key: key.clone(),
            ctx,
            solver,
            part,
            calls: 0,
            selectors: BTreeMap::new(),
            mode,
        })
    }

    /// Whether the kept facts have grown past [`MAX_REMEMBERED`] (facts that never recur).
    fn too_many_facts(&self) -> bool {
        match &self.mode {
            Mode::Scoped => false,
            Mode::Kept(k) => k.asserted > MAX_REMEMBERED,
        }
    }

    fn reduce(&mut self, program: &Program, setup: &Setup<'_>, call: &Givens<'_>) -> Attempt {
        let ctx = self.ctx.clone();
        in_context(&ctx, || self.reduce_here(program, setup, call))
    }

    fn reduce_here(&mut self, program: &Program, setup: &Setup<'_>, call: &Givens<'_>) -> Attempt {
        let n = call.givens.len();
        let selectors = self.selectors_of(call.givens);
        let ir = &setup.env.ir;
        let lower = |givens: &[Value], selectors: &[Bool]| match self.part.lower(
            program,
            ir,
            &setup.frame(givens, selectors),
            false,
        ) {
            Ok(l) => Ok(l),
            Err(PartMiss::NeedsInt) => Err(Attempt::NeedsInt),
            Err(PartMiss::Halted) => Err(Attempt::Redo),
        };
        // Literals the checks assume besides the selectors (kept mode).
        let mut extra = Vec::new();
        self.calls += 1;
        let scoped = match &mut self.mode {
            // This call's part lives in a scope of its own: popped afterwards, it cannot
            // constrain a later call.
            Mode::Scoped => {
                let mut lowering = match lower(call.givens, &selectors) {
                    Ok(l) => l,
                    Err(a) => return a,
                };
                let Ok(same) = lowering.eq(&self.part.answer, &S::C(call.solution.clone())) else {
                    return Attempt::Redo;
                };
                self.solver.push();
                for fact in lowering.facts.iter().chain([&same.not()]) {
                    self.solver.assert(fact);
                }
                true
            }
            Mode::Kept(kept) => {
                let Some(differs) = kept.differs_from(&self.part.answer, call.solution) else {
                    return Attempt::Redo;
                };
                if kept.clues.is_some() {
                    if let Err(a) = kept.tell_clues(
                        &self.solver,
                        call.givens,
                        &selectors,
                        self.part.budget,
                        lower,
                    ) {
                        return a;
                    }
                    extra = differs;
                    false
                } else {
                    let lowering = match lower(call.givens, &selectors) {
                        Ok(l) => l,
                        Err(a) => return a,
                    };
                    let Some((assume, scoped)) =
                        kept.tell(&self.solver, &selectors, &lowering.facts)
                    else {
                        return Attempt::FactsDiffer;
                    };
                    extra = differs;
                    extra.extend(assume);
                    if !scoped.is_empty() {
                        self.solver.push();
                        for fact in &scoped {
                            self.solver.assert(fact);
                        }
                    }
                    !scoped.is_empty()
                }
            }
        };
        let only_kept = matches!(self.mode, Mode::Kept(_));
        let solver = &self.solver;
        let check = |kept: &[bool]| -> Result<SatResult, ()> {
            let a: Vec<Bool> = assumptions(&selectors, kept, only_kept)
                .chain(extra.iter().cloned())
                .collect();
            match solver.check_assumptions(&a) {
                SatResult::Unknown => Err(()),
                r => Ok(r),
            }
        };
        let outcome = remove_while_unique(n, call.min_keep, setup.blocks, check);
        if scoped {
            self.solver.pop(1);
        }
        match outcome {
            Ok(Some(kept)) => Attempt::Done(select(call.givens, &kept)),
            // Not unique with every given: the message shows a model, so fresh.
            Ok(None) | Err(()) => Attempt::Redo,
        }
    }

    /// The selector literal of each given. A selector belongs to the given's value (and
    /// its occurrence, for repeated values), not to its position in the list, so the same
    /// literals recur across instances whatever order the givens come in (measured: fresh
    /// selectors per call made 4 x 4 generation 1.4x slower; Z3 keeps their variables).
    fn selectors_of(&mut self, givens: &[Value]) -> Vec<Bool> {
        let mut seen: BTreeMap<&Value, usize> = BTreeMap::new();
        givens
            .iter()
            .map(|g| {
                let occurrence = seen.entry(g).or_default();
                *occurrence += 1;
                self.selectors
                    .entry((g.clone(), *occurrence))
                    .or_insert_with(|| Bool::fresh_const("given"))
                    .clone()
            })
            .collect()
    }
}

/// Splits verify for a cached solver. `shared`: the statements that read no instance value
/// (directly or through locals set from one), lowered once per solver and asserted as they
/// are. `own`: what must be lowered per instance: every statement that reads instance
/// data, plus the shared statements other than constraints (locals they set may be read).
/// The analysis is conservative: a statement that reads a dependent local anywhere inside
/// is dependent, and so is every local it binds or assigns.
fn split_verify(ir: &crate::ir::Env) -> Split {
    let first_field = ir.params.len();
    let mut dependent = vec![false; ir.verify_slots as usize];
    for d in dependent.iter_mut().skip(first_field).take(ir.fields.len()) {
        *d = true;
    }
    let mut split = Split::default();
    for stmt in &ir.verify.stmts {
        let mut reads = false;
        stmt.each_use(&mut |u| {
            if let SlotUse::Read(s) = u {
                reads |= dependent.get(s as usize).copied().unwrap_or(true);
            }
        });
        if reads {
            stmt.each_use(&mut |u| {
                if let SlotUse::Write(s) = u {
                    if let Some(d) = dependent.get_mut(s as usize) {
                        *d = true;
                    }
                }
            });
            split.own.stmts.push(stmt.clone());
        } else {
            if !matches!(stmt, Stmt::Constraint { .. }) {
                split.own.stmts.push(stmt.clone());
            }
            split.shared.stmts.push(stmt.clone());
        }
    }
    split.own.value = ir.verify.value.clone();
    split
}

/// The answer's unknowns and the shared part of verify ([`split_verify`]), lowered with
/// the params and no instance value: what a solver reused across instances (here) or the
/// proofs of a batch (`prove::BatchRules`) are told once.
pub(crate) struct Rules<'p> {
    /// Its facts are the answer's domain and the shared constraints.
    pub(crate) lowering: Lowering<'p>,
    /// What each instance lowers on top of them.
    pub(crate) part: InstancePart,
}

/// The part of verify an instance lowers on top of the [`Rules`], with what that needs:
/// the answer's unknowns and their ranges, and the encoding they were declared in.
pub(crate) struct InstancePart {
    /// Whether the answer's small ints are one-hot (see `prove::lower_verify`).
    pub(crate) one_hot: bool,
    pub(crate) answer: S,
    bounds: TermMap<Int, (i128, i128)>,
    own: Block,
    /// Lists the rules make distinct (`Lowering::distinct_lists`): the part's facts are
    /// always asserted with the rules'.
    distinct: Vec<crate::smt::ListKey>,
    /// The lowering steps left for it: a fresh lowering of the whole verify (rules and
    /// part in one) has [`DEFAULT_BUDGET`], and the rules took the rest. Lowering the
    /// part re-lowers the rules' `let`s, so when the two fit the budget, so does the
    /// fresh lowering: an instance is never decided here that the fresh path stops on.
    budget: u64,
}

/// Why an instance's part could not be lowered on top of its rules.
pub(crate) enum PartMiss {
    /// It does arithmetic on one-hot ints: the rules must be lowered plain.
    NeedsInt,
    /// The lowering stopped (the fresh path reports why).
    Halted,
}

impl InstancePart {
    /// Whether the answer has `Int` unknowns (plain ints, indices into instance
    /// collections, lengths of bounded lists) rather than Booleans only (bools, one-hot
    /// ints, choices guarded by literals).
    pub(crate) fn declares_ints(&self) -> bool {
        !self.bounds.is_empty()
    }

    /// Lowers the instance's part with `frame` (params, then instance fields) into a new
    /// lowering whose facts are that part only.
    pub(crate) fn lower<'p>(
        &self,
        program: &'p Program,
        ir: &crate::ir::Env,
        frame: &[S],
        defer_circuit: bool,
    ) -> Result<Lowering<'p>, PartMiss> {
        let mut lowering = Lowering::new(program, self.budget);
        lowering.one_hot = self.one_hot;
        lowering.defer_circuit = defer_circuit;
        lowering.assume_bounds(self.bounds.clone());
        lowering.assume_distinct(self.distinct.clone());
        crate::prove::lower_block(&mut lowering, ir, &self.own, frame, &self.answer)
            .map_err(|_| PartMiss::Halted)?;
        if self.one_hot && lowering.one_hot_arith.get() {
            return Err(PartMiss::NeedsInt);
        }
        Ok(lowering)
    }
}

/// [`Rules`] for `shape`: one-hot if `one_hot` and the shared part does no arithmetic on
/// one-hot ints, else plain (as `prove::lower_verify` decides); `None` when the shared
/// part cannot be lowered without instance values.
pub(crate) fn lower_rules<'p>(
    program: &'p Program,
    env: &CEnv,
    params: &[Value],
    shape: &Shape,
    one_hot: bool,
) -> Option<Rules<'p>> {
    let split = split_verify(&env.ir);
    let mut lowering = Lowering::new(program, DEFAULT_BUDGET);
    lowering.one_hot = one_hot;
    let answer = lowering.declare(shape, "answer").ok()?;
    let bounds = lowering.declared_bounds().clone();
    // No instance value is known here: reading one stops the lowering instead of baking
    // one instance's data into every later use.
    let poison = S::Poison(Rc::from("an instance value, in the shared part of verify"));
    let frame: Vec<S> = (params.iter().cloned().map(S::C))
        .chain(env.ir.fields.iter().map(|_| poison.clone()))
        .collect();
    crate::prove::lower_block(&mut lowering, &env.ir, &split.shared, &frame, &answer).ok()?;
    if one_hot && lowering.one_hot_arith.get() {
        return lower_rules(program, env, params, shape, false);
    }
    let budget = DEFAULT_BUDGET.saturating_sub(lowering.steps());
    let distinct = lowering.distinct_lists();
    Some(Rules {
        lowering,
        part: InstancePart {
            one_hot,
            answer,
            bounds,
            own: split.own,
            distinct,
            budget,
        },
    })
}

#[derive(Default)]
struct Split {
    shared: Block,
    own: Block,
}
