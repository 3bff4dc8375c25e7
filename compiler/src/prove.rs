//! Proving instances solvable (and unique), on top of the SMT lowering in `smt`: with the
//! SAT engine of `sat` where it applies, else with one of Z3's engines ([`Engine`]).
//!
//! Every answer is cross-checked: a model becomes an answer value that must pass the
//! *native* verifier, or the result is reported as `unknown` with the disagreement named
//! (it would be a resyn bug; the test suite shows there are none on the examples). A
//! uniqueness claim (UNSAT after blocking the witness) cannot be cross-checked that way,
//! so tests guard it with native enumeration and a second encoding.
//!
//! Z3's context is thread-local in the `z3` crate, so each worker thread has its own (the
//! lowering builds Z3 terms whichever engine decides). A proof makes a solver for its
//! instance (the formula differs per instance; a SAT or `QF_FD` solver is cheap to make);
//! within a batch ([`BatchProver`]) the rules of the puzzle are lowered once and reused as
//! terms ([`BatchRules`]), and for all-Boolean answers bit-blasted once into a kept SAT
//! solver.

use std::time::Instant;

use resyn_runtime::{Shape, Value};
use z3::{Params, SatResult, Solver};

use crate::circuit::Circuit;
use crate::eval::CEnv;
use crate::givens::{lower_rules, InstancePart, PartMiss};
use crate::ir::{Block, Program};
use crate::sat::{Blaster, Outcome, Unsupported};
use crate::smt::{read_model, Halt, Lowering, DEFAULT_BUDGET, S};

/// The `--rlimit` of the command line when none is given, and the limit of every
/// `unique_givens` solver: Z3 resource units (measured here: about 7 million a second), or
/// the SAT engine's clauses plus propagations; deterministic, so an env can never make a
/// proof or a generator run unbounded.
pub const DEFAULT_RLIMIT: u32 = 500_000_000;

/// Resource limits per instance (over all its solver calls).
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    /// Z3's deterministic resource limit (`rlimit`); 0 = none.
    pub rlimit: u32,
    /// Wall-clock limit per solver call in milliseconds; 0 = none.
    pub timeout_ms: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Exactly one answer passes verify.
    Unique,
    /// An answer passes verify (and, when uniqueness was asked, a second one too).
    Solvable,
    /// No answer passes verify.
    Unsolvable,
    /// Not decided: out of budget, or a construct the SMT lowering does not handle.
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unique => "unique",
            Status::Solvable => "solvable",
            Status::Unsolvable => "unsolvable",
            Status::Unknown => "unknown",
        }
    }
}

/// Solver effort: a difficulty signal. Counts are deterministic for a given Z3 build;
/// the time is not.
#[derive(Clone, Copy, Debug, Default)]
pub struct Effort {
    pub rlimit: u64,
    pub conflicts: u64,
    pub decisions: u64,
    pub time_us: u64,
}

#[derive(Clone, Debug)]
pub struct Proof {
    pub status: Status,
    /// Why the status is `unknown` (or what was found wrong).
    pub reason: Option<String>,
    /// An answer that passes verify, found by the solver.
    pub witness: Option<Value>,
    /// True when the native verifier accepted `witness`.
    pub witness_checked: bool,
    /// A second, different valid answer (status `solvable` under a uniqueness question).
    pub alternative: Option<Value>,
    pub effort: Effort,
    /// The engine that gave this answer (a later one when the first gave up on the
    /// instance: see `prove_using`).
    pub engine: Engine,
    /// The engine itself gave up (not a limit, not the lowering): another engine may not.
    engine_gave_up: bool,
}

impl Proof {
    fn unknown(reason: impl Into<String>, effort: Effort) -> Proof {
        Proof {
            status: Status::Unknown,
            reason: Some(reason.into()),
            witness: None,
            witness_checked: false,
            alternative: None,
            effort,
            engine: Engine::FiniteDomain,
            engine_gave_up: false,
        }
    }
}

/// Z3's version, e.g. "5.4.1".
pub fn z3_version() -> String {
    let full = z3::full_version();
    full.trim_start_matches("Z3 ")
        .split(' ')
        .next()
        .unwrap_or(full)
        .to_string()
}

/// True for a Z3 at or above 4.13.3, the oldest this project trusts (older builds gave
/// wrong UNSAT answers on pseudo-boolean constraints).
pub fn z3_is_supported() -> bool {
    let v: Vec<u32> = z3_version()
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    (get(0), get(1), get(2)) >= (4, 13, 3)
}

/// Which Z3 engine decides the formula.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Our own bit-blaster into an embedded CDCL solver (compiler/src/sat.rs): the first
    /// engine wherever `QF_FD` would be, because Z3 spends about a microsecond per clause
    /// around its search, which on the simulations is most of a proof (maze_path level 3:
    /// a 10k-clause CNF, 0.5 ms in MiniSat, 11-15 ms in Z3). Formulas it does not take
    /// (a product of two unknowns, an unbounded int) go to `QF_FD`.
    Sat,
    /// `QF_FD`: bounded ints and bools bit-blasted to SAT. Measured here it is 10-80x
    /// faster than the default on the examples' simulations and grids (water_jugs 0.9 ->
    /// 76 instances/s, maze_path 2.4 -> 40/s) and cheap to create per instance.
    FiniteDomain,
    /// Z3's SMT core (simplex for linear integer arithmetic) after light preprocessing:
    /// the first engine instead of `QF_FD` when verify does arithmetic on the answer's
    /// ints, so they are plain `Int`s (see [`lower_verify`]) that `QF_FD` would bit-blast
    /// into adders, and the answer is of fixed size (see [`Engine::first_for`]).
    /// Measured back to back (level 3, median per instance): magic_square 5.9-8.6 ->
    /// 3.6-3.7 ms, cryptarithm 33-45 -> 13-14 ms (its 90th percentile rose 66-73 -> 79-83).
    Linear,
    /// Z3's default solver (arithmetic theories): the fallback when `QF_FD` gives up
    /// (unbounded or nonlinear ints), and the second opinion in the differential tests.
    /// (The SAT engine and `QF_FD` are each other's third opinion there.)
    General,
}

impl Engine {
    /// The first engine for a lowering of an answer of `shape`: [`Engine::Linear`] when
    /// arithmetic on the answer's small ints made them plain `Int`s (`one_hot` false) and
    /// the answer has no list of bounded length, else the SAT engine (where `QF_FD` was
    /// first before it). A bounded-length answer is a sequence verify simulates step by
    /// step, naming each step's state with case splits, which bit-blasting handles better
    /// (measured, water_jugs level 3: median 217 ms with `QF_FD`, 494 ms with the SMT
    /// core).
    fn first_for(one_hot: bool, shape: &Shape) -> Engine {
        if one_hot || has_bounded_list(shape) {
            Engine::Sat
        } else {
            Engine::Linear
        }
    }

    /// A fresh solver of this engine.
    ///
    /// `QF_FD` runs without failed-literal probing, measured at level 3 over the same 100
    /// instances (`effort.rlimit`, Z3's deterministic work count): maze_path median 371k ->
    /// 228k (-38%), water_jugs 730k -> 536k (-27%); callgrind over 10 instances: -18% and
    /// -22% instructions; every other example's work unchanged (their formulas stay below
    /// what probing works on). Measured and not taken: delaying all in-processing
    /// (`sat.simplify.delay`), -46% on maze_path but only -15% on water_jugs and no better
    /// combined with this; Luby restarts and random phases, slower on both. These are
    /// search heuristics only: which answer a check finds may change, never whether one
    /// exists.
    fn solver(self) -> Solver {
        match self {
            // The SAT engine never asks for a Z3 solver (`solve_fresh`); its formulas'
            // Z3 solver is `QF_FD`'s.
            Engine::Sat | Engine::FiniteDomain => {
                let solver = Solver::new_for_logic("QF_FD").unwrap_or_default();
                let mut p = Params::new();
                p.set_bool("sat.probing", false);
                solver.set_params(&p);
                solver
            }
            // Z3's tactics as a solver: each check solves the whole formula again, which
            // a proof (one check, two under a uniqueness question) does not mind. Not
            // `solve-eqs`, though it halved magic_square's proofs: with it, the same
            // command gave different models from run to run (ASLR off, one thread), and
            // output must be reproducible; these three gave the same bytes every time.
            // The SMT core with Z3's older arithmetic solver (`arith.solver=2`, not the
            // default `lp` one, 6): on cryptarithm's column equations the default spent
            // most of its time in exact-rational pivoting; measured, median per instance at
            // levels 3/4/5: 1.85 -> 1.27, 8.1 -> 3.1, 34.7 -> 13.1 ms; magic_square
            // unchanged. Its UNSAT answers are held to the same differential tests as the
            // rest (the general engine keeps the default solver).
            Engine::Linear => {
                let mut p = Params::new();
                p.set_u32("arith.solver", 2);
                z3::Tactic::new("simplify")
                    .and_then(&z3::Tactic::new("propagate-values"))
                    .and_then(&z3::Tactic::new("smt").with(&p))
                    .solver()
            }
            Engine::General => Solver::new(),
        }
    }
}

/// Whether `shape` holds a list whose length is not fixed (see [`Engine::first_for`]).
fn has_bounded_list(shape: &Shape) -> bool {
    use resyn_runtime::shape::Len;
    match shape {
        Shape::List { elem, len } => !matches!(len, Len::Exact(_)) || has_bounded_list(elem),
        Shape::Tuple(items) => items.iter().any(has_bounded_list),
        Shape::Record(fields) => fields.iter().any(|(_, s)| has_bounded_list(s)),
        Shape::Set(s) => has_bounded_list(s),
        Shape::Map(k, v) => has_bounded_list(k) || has_bounded_list(v),
        Shape::Member { base, .. } => has_bounded_list(base),
        Shape::Bool
        | Shape::Int { .. }
        | Shape::Float
        | Shape::Str { .. }
        | Shape::Unit
        | Shape::Enum { .. } => false,
    }
}

/// `Err` with the message every solver entry point gives when the linked Z3 is too old.
pub fn check_z3() -> Result<(), String> {
    if z3_is_supported() {
        return Ok(());
    }
    Err(format!(
        "this resyn is linked against Z3 {}, older than 4.13.3 (older builds give wrong UNSAT answers); rebuild with ./x, which fetches a modern Z3",
        z3_version()
    ))
}

/// Proves one instance: is there an answer that passes verify, and (when `unique`) is it
/// the only one? Tries the first engine ([`Engine::first_for`]), then the later ones if it
/// gave up. Runs in fresh Z3 contexts (see [`BatchProver`] for proofs that share one).
pub fn prove(
    program: &Program,
    env: &CEnv,
    params: &[Value],
    fields: &[Value],
    unique: bool,
    limits: Limits,
) -> Proof {
    let query = Query::new(program, env, params, fields, unique, limits);
    prove_using(None, &query)
}

/// What one proof is asked.
struct Query<'a> {
    program: &'a Program,
    env: &'a CEnv,
    params: &'a [Value],
    fields: &'a [Value],
    unique: bool,
    limits: Limits,
}

impl<'a> Query<'a> {
    fn new(
        program: &'a Program,
        env: &'a CEnv,
        params: &'a [Value],
        fields: &'a [Value],
        unique: bool,
        limits: Limits,
    ) -> Query<'a> {
        Query {
            program,
            env,
            params,
            fields,
            unique,
            limits,
        }
    }
}

/// The first engine, then the later ones while each gives up on its own. In a batch (its
/// context and lowered rules) or, without one, in fresh contexts.
fn prove_using(batch: Option<(&z3::Context, &mut BatchRules)>, q: &Query<'_>) -> Proof {
    let ctx = batch.as_ref().map(|(ctx, _)| *ctx);
    let mut proof = match batch {
        Some((ctx, rules)) => in_context(ctx, || {
            rules
                .prove(q)
                .unwrap_or_else(|| prove_in_context(q, None, None))
        }),
        None => prove_engine(None, q, None),
    };
    // The SMT core may give up on nonlinear arithmetic that `QF_FD`, complete on bounded
    // ints, decides: it comes before the general engine, so every instance the first
    // engine used to decide alone still is.
    let fallbacks: &[Engine] = match proof.engine {
        Engine::Linear | Engine::Sat => &[Engine::FiniteDomain, Engine::General],
        _ => &[Engine::General],
    };
    for &engine in fallbacks {
        if !proof.engine_gave_up {
            break;
        }
        let spent = proof.effort.time_us;
        proof = prove_engine(ctx, q, Some(engine));
        proof.effort.time_us += spent;
    }
    proof
}

/// Proofs of a batch of consecutive instances (`resyn_runtime::rows::BATCH`) in one Z3
/// context. A fresh context costs about a millisecond here, more than a whole proof of the
/// smaller examples. Z3's models and effort depend on the context's history, so a context
/// is never shared beyond its batch: the driver hands a batch to one worker, in index
/// order, and a proof then depends only on its batch's earlier instances, never on
/// `--jobs`. For the same reason the rules it lowers once ([`BatchRules`]) live and die
/// with the batch's context.
#[derive(Default)]
pub struct BatchProver {
    /// The batch (plan, batch number) the context belongs to, and its lowered rules.
    current: Option<((usize, u64), z3::Context, BatchRules)>,
}

impl BatchProver {
    /// [`prove`] for an instance of batch `batch`.
    #[allow(clippy::too_many_arguments)]
    pub fn prove(
        &mut self,
        batch: (usize, u64),
        program: &Program,
        env: &CEnv,
        params: &[Value],
        fields: &[Value],
        unique: bool,
        limits: Limits,
    ) -> Proof {
        if !matches!(&self.current, Some((b, _, _)) if *b == batch) {
            self.current = Some((batch, new_context(), BatchRules::default()));
        }
        let (_, ctx, rules) = self.current.as_mut().expect("set above");
        let query = Query::new(program, env, params, fields, unique, limits);
        prove_using(Some((&*ctx, rules)), &query)
    }
}

/// Runs `f` with a fresh Z3 context as the thread's context. Z3's answers (which model,
/// how much effort) depend on the context's history (fresh-name counters, hash-consed term
/// ids), so sharing one context per worker would make `gen --prove` output depend on which
/// instances a worker proved before, i.e. on `--jobs`. A context per instance costs well
/// under a millisecond here. (`givens` does share one: its results are SAT/UNSAT answers
/// only, which do not depend on history.)
pub fn in_fresh_context<R>(f: impl FnOnce() -> R) -> R {
    in_context(&new_context(), f)
}

/// A new Z3 context with the default configuration.
pub fn new_context() -> z3::Context {
    z3::with_z3_config(&z3::Config::new(), || {
        SameThread(z3::Context::thread_local())
    })
    .into_inner()
}

/// Runs `f` with `ctx` as the thread's Z3 context.
pub fn in_context<R>(ctx: &z3::Context, f: impl FnOnce() -> R) -> R {
    let f = SameThread(f);
    z3::with_z3_context(ctx, move || SameThread(f.into_inner()())).into_inner()
}

/// `with_z3_context` demands `Send + Sync` so Z3 objects of different contexts are not
/// mixed across threads. It runs the callback synchronously on *this* thread, so nothing
/// crosses a thread here; the wrapper only carries the (`Rc`-based) closure and result
/// through the bound.
struct SameThread<T>(T);
// SAFETY: see above: the value is created, used and unwrapped on one thread.
unsafe impl<T> Send for SameThread<T> {}
// SAFETY: as above; it is never shared.
unsafe impl<T> Sync for SameThread<T> {}
impl<T> SameThread<T> {
    fn into_inner(self) -> T {
        self.0
    }
}

/// [`prove`] with one engine, or (`None`) with the first engine [`prove`] would choose,
/// without fallback: the differential tests compare them.
pub fn prove_with(
    program: &Program,
    env: &CEnv,
    params: &[Value],
    fields: &[Value],
    unique: bool,
    limits: Limits,
    engine: Option<Engine>,
) -> Proof {
    let query = Query::new(program, env, params, fields, unique, limits);
    prove_engine(None, &query, engine)
}

/// One engine (`None`: the first for the instance's lowering, [`Engine::first_for`]), in
/// `ctx` or in a fresh context.
fn prove_engine(ctx: Option<&z3::Context>, q: &Query<'_>, engine: Option<Engine>) -> Proof {
    let run = || prove_in_context(q, engine, None);
    match ctx {
        Some(ctx) => in_context(ctx, run),
        None => in_fresh_context(run),
    }
}

/// [`prove`] with uniqueness asked and the first engine on the [`Encoding::Unrolled`]
/// lowering, in a fresh context: the differential tests compare it with the enumeration
/// of loop states.
pub fn prove_unrolled(program: &Program, env: &CEnv, instance: (&[Value], &[Value])) -> Proof {
    let (params, fields) = instance;
    let query = Query::new(program, env, params, fields, true, Limits::default());
    in_fresh_context(|| prove_in_context(&query, None, Some(Encoding::Unrolled)))
}

/// One engine (`None`: the first for the lowering) on `encoding` (`None`: the engine's
/// own, [`Encoding::Arithmetic`] for the general engine and [`Encoding::Boolean`] for the
/// others).
fn prove_in_context(q: &Query<'_>, engine: Option<Engine>, encoding: Option<Encoding>) -> Proof {
    let started = Instant::now();
    let shape = match q.env.answer_shape(q.params, q.fields) {
        Ok(s) => s,
        Err(e) => return Proof::unknown(format!("the answer type: {e}"), Effort::default()),
    };
    // Verify over the instance's fields; see `lower_verify` for the encoding choice.
    let frame = instance_frame(q);
    let encoding = encoding.unwrap_or(match engine {
        Some(Engine::General) => Encoding::Arithmetic,
        _ => Encoding::Boolean,
    });
    let lowered = lower_verify(q.program, q.env, &shape, &frame, encoding, true);
    let (mut lowering, answer) = match lowered {
        Ok(x) => x,
        Err(h) => {
            let mut p = Proof::unknown(halt_reason(&h), Effort::default());
            p.engine = engine.unwrap_or(Engine::FiniteDomain);
            return p;
        }
    };
    let engine = engine.unwrap_or_else(|| Engine::first_for(lowering.one_hot, &shape));
    let (facts, circuit) = lowering.take_formula();
    solve_fresh(
        q,
        engine,
        (&circuit, facts.iter()),
        &mut lowering,
        &shape,
        &answer,
        started,
    )
}

/// Decides a circuit and `facts` (the lowering's, with the circuit's gates kept out of Z3:
/// `Lowering::defer_circuit`) with a new solver of `engine`, under the query's limits, and
/// measures the effort from `started`.
fn solve_fresh<'a>(
    q: &Query<'_>,
    engine: Engine,
    (circuit, facts): (&Circuit, impl Iterator<Item = &'a z3::ast::Bool>),
    lowering: &mut Lowering<'_>,
    shape: &Shape,
    answer: &S,
    started: Instant,
) -> Proof {
    if engine == Engine::Sat {
        let mut blaster = Blaster::new(&z3::Context::thread_local(), lowering.declared_bounds());
        return solve_blasted(
            q,
            &mut blaster,
            (circuit, facts),
            lowering,
            shape,
            answer,
            started,
        );
    }
    let solver = engine.solver();
    set_limits(&solver, q.limits);
    let before = Counters::of(&solver);
    for f in &circuit.terms() {
        solver.assert(f);
    }
    for f in facts {
        solver.assert(f);
    }
    let mut proof = decide(q, &mut &solver, lowering, shape, answer);
    proof.effort = before.effort_since(&solver, started);
    proof.engine = engine;
    proof
}

/// Bit-blasts `facts` and the answer's terms into `blaster` (fresh, or kept with the
/// rules and a scope open for this instance), then decides. A formula it cannot take
/// gives an `unknown` that hands over to `QF_FD`. The effort is this call's.
fn solve_blasted<'a>(
    q: &Query<'_>,
    blaster: &mut Blaster,
    (circuit, mut facts): (&Circuit, impl Iterator<Item = &'a z3::ast::Bool>),
    lowering: &mut Lowering<'_>,
    shape: &Shape,
    answer: &S,
    started: Instant,
) -> Proof {
    let before = (blaster.work(), blaster.conflicts(), blaster.decisions());
    let effort = |b: &Blaster| Effort {
        rlimit: b.work() - before.0,
        conflicts: b.conflicts() - before.1,
        decisions: b.decisions() - before.2,
        time_us: started.elapsed().as_micros() as u64,
    };
    // The circuit first: its named constants appear in the facts.
    let built = blaster
        .assert_circuit(circuit)
        .and_then(|()| facts.try_for_each(|f| blaster.assert(f)))
        .and_then(|()| blaster.touch(answer));
    if let Err(Unsupported(why)) = built {
        let mut p = Proof::unknown(format!("the SAT engine: {why}"), effort(blaster));
        p.engine = Engine::Sat;
        p.engine_gave_up = true;
        return p;
    }
    let deadline = (q.limits.timeout_ms > 0)
        .then(|| started + std::time::Duration::from_millis(u64::from(q.limits.timeout_ms)));
    let work = match q.limits.rlimit {
        0 => 0,
        r => before.0 + u64::from(r),
    };
    let mut d = SatDecider {
        blaster,
        work,
        deadline,
        last: Outcome::Sat,
    };
    let mut proof = decide(q, &mut d, lowering, shape, answer);
    proof.effort = effort(d.blaster);
    proof.engine = Engine::Sat;
    proof
}

/// An engine's side of [`decide`]: checks, the model's answer, and adding the fact that
/// blocks a witness.
trait Decider {
    fn check(&mut self) -> SatResult;
    /// The answer of the last check's model.
    fn witness(&self, shape: &Shape, answer: &S) -> Option<Value>;
    /// Adds `fact`; false when the engine cannot take it.
    fn add(&mut self, fact: &z3::ast::Bool) -> bool;
    /// Why the last check was unknown, and whether the engine gave up (no limit ran out).
    fn why_unknown(&self, limits: Limits) -> (String, bool);
}

impl Decider for &Solver {
    fn check(&mut self) -> SatResult {
        Solver::check(self)
    }

    fn witness(&self, shape: &Shape, answer: &S) -> Option<Value> {
        self.get_model().and_then(|m| read_model(&m, shape, answer))
    }

    fn add(&mut self, fact: &z3::ast::Bool) -> bool {
        self.assert(fact);
        true
    }

    fn why_unknown(&self, limits: Limits) -> (String, bool) {
        reason_unknown(self, limits)
    }
}

struct SatDecider<'b> {
    blaster: &'b mut Blaster,
    /// Where the work budget ends (`--rlimit`, in the SAT engine's unit: see
    /// [`Blaster::work`]; 0: none).
    work: u64,
    deadline: Option<Instant>,
    last: Outcome,
}

impl Decider for SatDecider<'_> {
    fn check(&mut self) -> SatResult {
        self.last = self.blaster.solve(self.work, self.deadline);
        match self.last {
            Outcome::Sat => SatResult::Sat,
            Outcome::Unsat => SatResult::Unsat,
            Outcome::OutOfWork | Outcome::OutOfTime => SatResult::Unknown,
        }
    }

    fn witness(&self, shape: &Shape, answer: &S) -> Option<Value> {
        read_model(&*self.blaster, shape, answer)
    }

    fn add(&mut self, fact: &z3::ast::Bool) -> bool {
        self.blaster.assert(fact).is_ok()
    }

    fn why_unknown(&self, _: Limits) -> (String, bool) {
        let why = match self.last {
            Outcome::OutOfTime => "out of time (--timeout-ms)",
            _ => "out of resources (--rlimit)",
        };
        (why.into(), false)
    }
}

/// Params, then the instance's fields: verify's frame.
fn instance_frame(q: &Query<'_>) -> Vec<S> {
    q.params.iter().chain(q.fields).cloned().map(S::C).collect()
}

fn set_limits(solver: &Solver, limits: Limits) {
    let mut p = Params::new();
    if limits.rlimit > 0 {
        p.set_u32("rlimit", limits.rlimit);
    }
    if limits.timeout_ms > 0 {
        p.set_u32("timeout", limits.timeout_ms);
    }
    solver.set_params(&p);
}

/// A solver's cumulative counters, read before an instance's checks so its effort is the
/// difference (Z3's rlimit counter is per context, so it adds up over a batch).
struct Counters {
    rlimit: u64,
    conflicts: u64,
    decisions: u64,
}

impl Counters {
    fn of(solver: &Solver) -> Counters {
        let stats = solver.get_statistics();
        Counters {
            rlimit: stat(&stats, "rlimit count"),
            // The SMT core and the SAT core (QF_FD) name their counters differently.
            conflicts: stat(&stats, "conflicts") + stat(&stats, "sat conflicts"),
            decisions: stat(&stats, "decisions") + stat(&stats, "sat decisions"),
        }
    }

    fn effort_since(&self, solver: &Solver, started: Instant) -> Effort {
        let now = Counters::of(solver);
        Effort {
            rlimit: now.rlimit.saturating_sub(self.rlimit),
            conflicts: now.conflicts.saturating_sub(self.conflicts),
            decisions: now.decisions.saturating_sub(self.decisions),
            time_us: started.elapsed().as_micros() as u64,
        }
    }
}

/// The checks of one instance on a solver that holds its whole formula: is there a model,
/// does it pass the native verifier, and (when asked) is it the only one. Effort is left
/// to the caller.
fn decide(
    q: &Query<'_>,
    solver: &mut impl Decider,
    lowering: &mut Lowering<'_>,
    shape: &Shape,
    answer: &S,
) -> Proof {
    let effort = Effort::default();
    let (params, fields, env) = (q.params, q.fields, q.env);
    let first = solver.check();
    let mut proof = match first {
        SatResult::Unsat => Proof {
            status: Status::Unsolvable,
            reason: None,
            witness: None,
            witness_checked: false,
            alternative: None,
            effort,
            engine: Engine::FiniteDomain,
            engine_gave_up: false,
        },
        SatResult::Unknown => {
            let (why, gave_up) = solver.why_unknown(q.limits);
            let mut p = Proof::unknown(why, effort);
            p.engine_gave_up = gave_up;
            p
        }
        SatResult::Sat => match solver.witness(shape, answer) {
            None => Proof::unknown("the solver's model could not be read back", effort),
            Some(w) => {
                let verdict = env.verify(params, fields, w.clone());
                if !verdict.valid {
                    let why = verdict
                        .failures
                        .first()
                        .map(|f| f.message.clone())
                        .or(verdict.error)
                        .unwrap_or_default();
                    let mut pr = Proof::unknown(
                            format!("internal error: the solver's answer fails the native verifier ({why}); please report it"),
                            effort,
                        );
                    pr.witness = Some(w);
                    pr
                } else {
                    Proof {
                        status: Status::Solvable,
                        reason: None,
                        witness: Some(w),
                        witness_checked: true,
                        alternative: None,
                        effort,
                        engine: Engine::FiniteDomain,
                        engine_gave_up: false,
                    }
                }
            }
        },
    };

    if q.unique && proof.status == Status::Solvable {
        let w = proof.witness.clone().expect("solvable has a witness");
        match lowering.eq(answer, &S::C(w.clone())) {
            Err(h) => {
                proof.status = Status::Unknown;
                proof.reason = Some(format!("uniqueness: {}", halt_reason(&h)));
            }
            Ok(same) if !solver.add(&same.not()) => {
                proof.status = Status::Unknown;
                proof.reason = Some("uniqueness: the engine cannot take the blocking fact".into());
                proof.engine_gave_up = true;
            }
            Ok(_) => {
                match solver.check() {
                    SatResult::Unsat => proof.status = Status::Unique,
                    SatResult::Unknown => {
                        let (why, gave_up) = solver.why_unknown(q.limits);
                        proof.status = Status::Unknown;
                        proof.reason = Some(format!("uniqueness: {why}"));
                        proof.engine_gave_up = gave_up;
                    }
                    SatResult::Sat => {
                        let alt = solver.witness(shape, answer);
                        // A second answer is a certificate only when it differs from the
                        // first and passes the native verifier: then `solvable` rests on
                        // no UNSAT answer at all.
                        match alt {
                            Some(a) if a != w && env.verify(params, fields, a.clone()).valid => {
                                proof.alternative = Some(a);
                            }
                            other => {
                                proof.status = Status::Unknown;
                                proof.reason = Some(format!(
                                    "internal error: the solver's second answer {} repeats the first or fails the native verifier; please report it",
                                    other.map(|a| a.display()).unwrap_or_default()
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    proof
}

/// How many answer shapes a batch keeps rules for (a batch is one level, so usually one).
const RULE_SHAPES: usize = 4;

/// The rules of the puzzle a batch has lowered, per env, params and answer shape: the
/// answer's unknowns with their domain facts and the part of verify that reads no instance
/// value (sudoku's `all_different`s), lowered once as terms of the batch's context. Each
/// instance lowers only its own part, and its formula is the fresh path's (the rules hold
/// for every instance with these params and shape). Measured (`bench/prove_medians.sh`,
/// level 3): lowering the rules was half of a 9 x 9 sudoku proof (11.6 -> 6.9 ms). Where
/// the answer is all Booleans, a solver told the rules is kept too ([`Rules::keep`]).
#[derive(Default)]
struct BatchRules {
    /// `None`: the rules of this key cannot be lowered on their own, so its instances take
    /// the fresh path (remembered, so they are not tried again per instance).
    shapes: Vec<(RulesKey, Option<Rules>)>,
}

#[derive(Clone, PartialEq)]
struct RulesKey {
    env: u64,
    params: Vec<Value>,
    shape: Shape,
}

struct Rules {
    /// The answer's domain and the shared part of verify, as terms of the batch context.
    shared: Vec<z3::ast::Bool>,
    /// What each instance lowers on top.
    part: InstancePart,
    /// The engine of its instances ([`Engine::first_for`]).
    engine: Engine,
    /// Whether a solver is kept for these rules, and where it stands: the SAT engine with
    /// `shared` bit-blasted once for the batch, each instance's part asserted in a scope
    /// of its own ([`Blaster::open`]), so the rules are encoded once per batch rather than
    /// once per instance. Only where the SAT engine is first and every answer unknown is a
    /// Boolean ([`InstancePart::declares_ints`]): an answer with `Int`s (the length of a
    /// bounded list) is a simulation whose instance part is most of the formula, and each
    /// instance would leave its leaves behind as dead decision variables. Measured at
    /// level 3 (`bench/prove_medians.sh`, median per instance) against the fresh SAT
    /// solver per instance and against the `QF_FD` solver that was kept before: see
    /// spec/proofs.md §4. Output stays reproducible: the batch's instances come in index
    /// order to one worker, so the solver's history is the same in every run.
    keep: Keep,
}

enum Keep {
    /// Fresh solvers only.
    Never,
    /// The next instance makes the kept solver.
    Next,
    Kept(Box<Blaster>),
}

impl BatchRules {
    /// The finite-domain proof of `q` with the batch's rules, or `None` when the fresh path
    /// must take it (the rules cannot be lowered on their own, or lowering the instance
    /// stopped: the fresh path then reports the reason).
    fn prove(&mut self, q: &Query<'_>) -> Option<Proof> {
        let started = Instant::now();
        let shape = q.env.answer_shape(q.params, q.fields).ok()?;
        let key = RulesKey {
            env: q.env.id,
            params: q.params.to_vec(),
            shape,
        };
        let at = match self.shapes.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                if self.shapes.len() >= RULE_SHAPES {
                    self.shapes.remove(0);
                }
                let rules = Rules::new(q, &key.shape, true);
                self.shapes.push((key, rules));
                self.shapes.len() - 1
            }
        };
        let (key, slot) = &mut self.shapes[at];
        match slot.as_mut()?.prove(q, &key.shape, started) {
            Ok(proof) => Some(proof),
            // This instance only: the rules stay good for the others.
            Err(PartMiss::Halted) => None,
            Err(PartMiss::NeedsInt) => {
                *slot = Rules::new(q, &key.shape, false);
                slot.as_mut()?.prove(q, &key.shape, started).ok()
            }
        }
    }
}

impl Rules {
    /// The answer's unknowns and the shared part of verify, lowered for `shape`; `None`
    /// when that part cannot be lowered without instance values.
    fn new(q: &Query<'_>, shape: &Shape, one_hot: bool) -> Option<Rules> {
        let rules = lower_rules(q.program, q.env, q.params, shape, one_hot)?;
        let engine = Engine::first_for(rules.part.one_hot, shape);
        Some(Rules {
            shared: rules.lowering.facts,
            keep: if engine == Engine::Sat && !rules.part.declares_ints() {
                Keep::Next
            } else {
                Keep::Never
            },
            part: rules.part,
            engine,
        })
    }

    fn prove(&mut self, q: &Query<'_>, shape: &Shape, started: Instant) -> Result<Proof, PartMiss> {
        let mut lowering = self
            .part
            .lower(q.program, &q.env.ir, &instance_frame(q), true)?;
        let (facts, circuit) = lowering.take_formula();
        if matches!(self.keep, Keep::Next) {
            // The first instance's bounds include the rules' (its lowering started from
            // them); rules the engine cannot take leave the key to fresh solvers, and
            // from there to the fallback.
            let mut blaster =
                Blaster::new(&z3::Context::thread_local(), lowering.declared_bounds());
            self.keep = match self.shared.iter().try_for_each(|f| blaster.assert(f)) {
                Ok(()) => Keep::Kept(Box::new(blaster)),
                Err(_) => Keep::Never,
            };
        }
        let Keep::Kept(blaster) = &mut self.keep else {
            return Ok(solve_fresh(
                q,
                self.engine,
                (&circuit, self.shared.iter().chain(&facts)),
                &mut lowering,
                shape,
                &self.part.answer,
                started,
            ));
        };
        blaster.declare(lowering.declared_bounds());
        blaster.open();
        let proof = solve_blasted(
            q,
            blaster,
            (&circuit, facts.iter()),
            &mut lowering,
            shape,
            &self.part.answer,
            started,
        );
        blaster.close();
        Ok(proof)
    }
}

/// Lowers `block` (verify or a part of it) with `frame` (params, then instance fields)
/// and `answer` into `lowering`. A path that is dead (a failed `require`-like error on
/// every branch) is not an error: its facts say so.
pub(crate) fn lower_block(
    lowering: &mut Lowering<'_>,
    ir: &crate::ir::Env,
    block: &Block,
    frame: &[S],
    answer: &S,
) -> Result<(), Halt> {
    let mut slots = vec![S::C(Value::Unit); ir.verify_slots as usize];
    slots[..frame.len()].clone_from_slice(frame);
    slots[frame.len()] = answer.clone();
    match lowering.block(&mut slots, block) {
        Ok(_) | Err(Halt::Dead) => Ok(()),
        Err(h) => Err(h),
    }
}

/// How the answer's small ints are encoded (spec/proofs.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// One-hot, with arithmetic and order on them split case by case while the splits stay
    /// small; plain `Int`s when they do not. For the bit-blasting engine.
    Boolean,
    /// Plain `Int`s throughout: for Z3's arithmetic solver, and the second encoding the
    /// differential tests compare the first with.
    Arithmetic,
    /// [`Encoding::Boolean`] with every loop unrolled symbolically, none lowered by
    /// enumerating its states: the differential tests' second opinion on the enumeration
    /// where the general engine is too slow (long walks).
    Unrolled,
}

/// Lowers `env`'s verify with `frame` (params, then instance fields) and the answer's
/// unknowns. Encoding choice (measured, spec/proofs.md §2): answer ints of small domains
/// are one-hot, and so stay comparisons, `all_different`, indexing and arithmetic or
/// order split case by case (`Lowering::one_hot_op`). When a split would be too large
/// (cryptarithm's column sums), the plain `Int` encoding is 1.6-3x faster than one-hot
/// terms converted to `Int`, so the lowering is redone with it; lowering costs far less
/// than solving.
pub(crate) fn lower_verify<'p>(
    program: &'p Program,
    env: &CEnv,
    shape: &resyn_runtime::Shape,
    frame: &[S],
    encoding: Encoding,
    defer_circuit: bool,
) -> Result<(Lowering<'p>, S), Halt> {
    let ir = &env.ir;
    let run = |one_hot: bool| -> Result<(Lowering<'p>, S), Halt> {
        let mut lowering = Lowering::new(program, DEFAULT_BUDGET);
        lowering.enumerate_states = encoding == Encoding::Boolean;
        lowering.defer_circuit = defer_circuit;
        lowering.one_hot = one_hot;
        lowering.columns = encoding != Encoding::Arithmetic;
        lowering.learns = encoding != Encoding::Arithmetic;
        let answer = lowering.declare(shape, "answer")?;
        lower_block(&mut lowering, ir, &ir.verify, frame, &answer)?;
        Ok((lowering, answer))
    };
    if encoding == Encoding::Arithmetic {
        return run(false);
    }
    let first = run(true)?;
    if first.0.one_hot_arith.get() {
        return run(false);
    }
    Ok(first)
}

/// Why the solver answered unknown, and whether it gave up on its own (rather than
/// running into a limit the user set).
pub(crate) fn reason_unknown(solver: &Solver, limits: Limits) -> (String, bool) {
    let r = solver
        .get_reason_unknown()
        .unwrap_or_else(|| "unknown".into());
    let limited = matches!(
        r.as_str(),
        "canceled" | "timeout" | "max. resource limit exceeded" | "resource limits reached"
    );
    // Z3 reports both limits as `canceled`; the limits that were set tell them apart.
    match (limited, limits.rlimit > 0, limits.timeout_ms > 0) {
        (true, true, false) => ("out of resources (--rlimit)".into(), false),
        (true, false, true) => ("out of time (--timeout-ms)".into(), false),
        (true, true, true) => (
            "out of resources or time (--rlimit, --timeout-ms)".into(),
            false,
        ),
        _ => (format!("the solver gave up: {r}"), true),
    }
}

fn stat(stats: &z3::Statistics, key: &str) -> u64 {
    match stats.value(key) {
        Some(z3::StatisticsValue::UInt(v)) => u64::from(v),
        Some(z3::StatisticsValue::Double(v)) => v as u64,
        None => 0,
    }
}

pub(crate) fn halt_reason(h: &Halt) -> String {
    match h {
        Halt::Unsupported(what) => format!("not expressible in the SMT lowering: {what}"),
        Halt::Budget => "the instance is too large to lower (step budget)".into(),
        Halt::Dead => "verify fails on every answer".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tests/prove/branch_let.rsn: a branch-local `let` of a one-hot int left the slot
    /// merged with its "unset" value, and converting the one-hot side on the way marked
    /// the lowering as doing arithmetic, so the prover dropped to plain ints.
    /// Lowers the first env of tests/prove/`name`.rsn at level 1 with instance `fields`
    /// in the Boolean encoding; `check` sees the lowering and the answer. Returns the
    /// proof of that instance (uniqueness asked).
    fn lower_test_env(name: &str, fields: Vec<Value>, check: impl FnOnce(&Lowering, &S)) -> Proof {
        lower_test_env_with(name, fields, true, check)
    }

    /// `f` on the program and env of `tests/prove/NAME.rsn`, with its level-1 params.
    fn with_test_env<R>(name: &str, f: impl FnOnce(&Program, &CEnv, &[Value]) -> R) -> R {
        let path = format!("{}/../tests/prove/{name}.rsn", env!("CARGO_MANIFEST_DIR"));
        let src = std::fs::read(&path).expect("test env");
        let (_, program) = crate::build_bytes(&path, &src);
        let program = program.expect("compiles");
        let compiled = crate::eval::compile(&program);
        let env = &compiled.envs[0];
        let params = env.resolve_params(1, &[]).expect("params");
        f(&program, env, &params)
    }

    fn lower_test_env_with(
        name: &str,
        fields: Vec<Value>,
        enumerate_states: bool,
        check: impl FnOnce(&Lowering, &S),
    ) -> Proof {
        with_test_env(name, |program, env, params| {
            let shape = env.answer_shape(params, &fields).expect("shape");
            let frame: Vec<S> = params.iter().chain(&fields).cloned().map(S::C).collect();
            in_fresh_context(|| {
                let encoding = match enumerate_states {
                    true => Encoding::Boolean,
                    false => Encoding::Unrolled,
                };
                let (lowering, answer) =
                    lower_verify(program, env, &shape, &frame, encoding, false).expect("lowers");
                check(&lowering, &answer);
            });
            prove(program, env, params, &fields, true, Limits::default())
        })
    }

    #[test]
    fn a_let_inside_a_branch_keeps_the_one_hot_encoding() {
        let proof = lower_test_env("branch_let", vec![Value::Int(1)], |lowering, answer| {
            assert!(!lowering.one_hot_arith.get());
            let S::List(items, _) = answer else {
                panic!("a list answer")
            };
            assert!(matches!(items[0], S::OneHot(_)), "{:?}", items[0]);
        });
        // And it is proved right: some answers pass, e.g. [1, 0].
        assert_eq!(proof.status, Status::Solvable);
        assert!(proof.witness_checked);
    }

    /// tests/prove/columns.rsn: the four asserted place-value equations (a sum with a
    /// repeated digit, a difference under a path condition, a base-2 sum and one with an
    /// empty column inside `or`s) are put in column form; the ones under `not`, `!=`, in
    /// an `if` condition and in a count are not.
    #[test]
    fn asserted_place_value_equations_are_put_in_column_form() {
        // d = [1, 2, 3, 4] passes: 121 + 34 = 155, bits 0 + 2·1 + 4·0 = 2.
        let fields = vec![
            Value::Int(155),
            Value::Int(18),
            Value::Int(3),
            Value::Int(2),
        ];
        let proof = lower_test_env("columns", fields, |lowering, _| {
            assert!(lowering.columns);
            assert_eq!(lowering.column_facts, 4);
        });
        assert_ne!(proof.status, Status::Unsolvable);
        assert!(proof.witness_checked, "{:?}", proof.reason);
    }

    /// tests/prove/distinct.rsn: the unconditional `all_different(s.0)` makes `s.0` known
    /// distinct; `all_different(s.1)` under a condition on the answer does not.
    #[test]
    fn only_an_unconditional_all_different_makes_a_list_distinct() {
        let pair = |a: &str, b: &str| Value::tuple(vec![Value::str(a), Value::str(b)]);
        let fields = vec![
            Value::list(vec![pair("a", "b"), pair("b", "c")]),
            Value::str("a"),
            Value::Int(2),
            Value::Bool(true),
            Value::list(vec![Value::str("c"), Value::str("a"), Value::str("b")]),
        ];
        let proof = lower_test_env("distinct", fields, |lowering, answer| {
            let S::Tuple(parts) = answer else {
                panic!("a tuple answer")
            };
            let S::List(first, _) = &parts[0] else {
                panic!("a list")
            };
            let lists = lowering.distinct_lists();
            assert_eq!(lists.len(), 1);
            assert_eq!(lists[0].len(), first.len());
        });
        // s = (["a", "b", "c", "d"], ["c", "a", "b"]) passes, and others do too.
        assert_ne!(proof.status, Status::Unsolvable);
        assert!(proof.witness_checked, "{:?}", proof.reason);
    }

    /// tests/prove/known.rsn on an open track: in each step, the first check makes
    /// `inside` known (so `not inside` in the second is false), and the second makes
    /// `free` known, so both branches on it (`moved` and the state update) are lowered as
    /// one side: 3 x 5 steps. `len(path) > 2`, checked only inside a branch, is not known
    /// after it, nor is `s != Step::left`, checked under a binder whose condition depends
    /// on the answer (a sixteenth decision would mean either leaked). The branch of each
    /// step (taken while the path is long enough) merges only the walk's state. This is
    /// the symbolic lowering, which walks get where enumerating their states does not
    /// apply (it is turned off here; with it, the walk is one enumerated loop).
    #[test]
    fn checked_conditions_decide_branches_on_their_path_only() {
        let fields = vec![
            Value::list(vec![Value::Bool(true); 5]),
            Value::Int(0),
            Value::Int(4),
            Value::Bool(true),
            Value::Int(2),
        ];
        let proof = lower_test_env_with("known", fields, false, |lowering, _| {
            assert_eq!(lowering.decided.get(), 15);
            // Each step's position is named with the range `inside` gives it on the
            // step's path (0..=4), not its interval, which grows by one per step.
            assert_eq!(lowering.narrowed, 5);
            // Each step merges what it carries (`p` and `stays`), not its own `let`s nor
            // the answer list it reads (same elements, same length term).
            assert_eq!(lowering.merged, 10);
        });
        // Four steps right (or with stays, up to 2) reach 4: not unique.
        assert_eq!(proof.status, Status::Solvable);
        assert!(proof.witness_checked);
    }

    /// tests/prove/states.rsn: the first loop is lowered by enumerating its states, the
    /// second (whose steps read the answer's length) falls back to the symbolic lowering,
    /// with what the attempt recorded taken back. Both answers checked below are read
    /// back from models or refuted, so the facts of both loops are in place.
    #[test]
    fn a_loop_with_concrete_steps_is_enumerated_and_one_without_falls_back() {
        // Level 1: one step at most, and in step 0 an increment adds one (`bias` = 1).
        let status = |target: [i64; 3]| {
            let fields = vec![
                Value::list(target.iter().map(|&v| Value::Int(v)).collect()),
                Value::Int(1),
                Value::Bool(false),
            ];
            let proof = lower_test_env("states", fields, |lowering, _| {
                assert_eq!(lowering.enumerated_loops, 1);
                assert!(lowering.evaluated_steps > 0);
            });
            if proof.status != Status::Unsolvable {
                assert!(proof.witness_checked);
            }
            proof.status
        };
        // Only [inc at 2].
        assert_eq!(status([0, 0, 1]), Status::Unique);
        // No answer, a swap at 0 or at 1 (a swap at 2 errs: `far` is false).
        assert_eq!(status([0, 0, 0]), Status::Solvable);
        // One step adds one.
        assert_eq!(status([2, 0, 0]), Status::Unsolvable);
    }

    /// tests/prove/states_message.rsn: a step that reads an answer-dependent value only in a
    /// message runs in the symbolic executor, and the loop is still enumerated.
    #[test]
    fn a_loop_reading_the_answer_in_a_message_is_enumerated_symbolically() {
        let status = |goal: i64, wall: i64| {
            let fields = vec![Value::Int(goal), Value::Int(wall)];
            let proof = lower_test_env("states_message", fields, |lowering, _| {
                assert_eq!(lowering.enumerated_loops, 1);
                assert_eq!(lowering.evaluated_steps, 0);
            });
            if proof.status != Status::Unsolvable {
                assert!(proof.witness_checked);
            }
            proof.status
        };
        // Level 1: at most one move. [] and [0] end at 0.
        assert_eq!(status(0, 1), Status::Solvable);
        // Only [2].
        assert_eq!(status(2, 1), Status::Unique);
        // [1] lands on the wall.
        assert_eq!(status(1, 1), Status::Unsolvable);
    }

    /// tests/prove/named_states.rsn: a loop over what an enumerated loop computed; its
    /// elements' conditions name the first loop's final states.
    #[test]
    fn a_loop_over_enumerated_results_sees_their_states() {
        let status = |goal: i64| {
            let proof = lower_test_env("named_states", vec![Value::Int(goal)], |lowering, _| {
                assert_eq!(lowering.enumerated_loops, 2);
            });
            assert_eq!(proof.engine, Engine::Sat, "{:?}", proof.reason);
            if proof.status != Status::Unsolvable {
                assert!(proof.witness_checked);
            }
            proof.status
        };
        // The sum would have to be 3.
        assert_eq!(status(6), Status::Unsolvable);
        assert_eq!(status(4), Status::Solvable);
        // Only [2, 2, 2].
        assert_eq!(status(12), Status::Unique);
    }

    /// tests/prove/fuel_in_check.rsn: a step that runs out of the lowering's budget inside
    /// a check gives the enumeration up; it is not a failed check.
    #[test]
    fn a_step_out_of_fuel_in_a_check_is_not_a_failure() {
        let fields = [Value::Int(0)];
        let proof = with_test_env("fuel_in_check", |program, env, params| {
            prove(program, env, params, &fields, true, Limits::default())
        });
        // Not `unique` (three answers pass) and not `unsolvable`: the budget runs out.
        assert_eq!(proof.status, Status::Unknown, "{:?}", proof.witness);
    }

    /// tests/prove/long_positions.rsn: positions too long to compare by case split become
    /// `Int` terms without sending the answer's small ints to the plain encoding.
    #[test]
    fn positions_as_ints_keep_the_one_hot_encoding() {
        let proof = lower_test_env("long_positions", vec![Value::Int(2)], |lowering, answer| {
            assert!(!lowering.one_hot_arith.get());
            let S::Tuple(parts) = answer else {
                panic!("a tuple answer")
            };
            assert!(matches!(parts[1], S::OneHot(_)), "{:?}", parts[1]);
        });
        // A bit-blasting engine, not the linear one that plain ints would bring.
        assert_eq!(proof.engine, Engine::Sat);
        assert_eq!(proof.status, Status::Solvable);
        assert!(proof.witness_checked);
    }
}
