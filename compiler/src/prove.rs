//! Proving instances solvable (and unique) with Z3, on top of the SMT lowering in `smt`.
//!
//! Every answer is cross-checked: a model becomes an answer value that must pass the
//! *native* verifier, or the result is reported as `unknown` with the disagreement named
//! (it would be a resyn bug; the test suite shows there are none on the examples). A
//! uniqueness claim (UNSAT after blocking the witness) cannot be cross-checked that way,
//! so tests guard it with native enumeration and a second encoding.
//!
//! Z3's context is thread-local in the `z3` crate, so each worker thread has its own; a
//! solver is made per instance (the formula differs per instance; `Solver::new` is cheap
//! next to the check).

use std::time::Instant;

use resyn_runtime::Value;
use z3::{Params, SatResult, Solver};

use crate::eval::CEnv;
use crate::ir::Program;
use crate::smt::{read_model, Halt, Lowering, DEFAULT_BUDGET, S};

/// The `--rlimit` of the command line when none is given, and the limit of every
/// `unique_givens` solver: Z3 resource units (measured here: about 7 million a second),
/// deterministic, so an env can never make a proof or a generator run unbounded.
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
    /// `QF_FD`: bounded ints and bools bit-blasted to SAT. Measured here it is 10-80x
    /// faster than the default on the examples' simulations and grids (water_jugs 0.9 ->
    /// 76 instances/s, maze_path 2.4 -> 40/s) and cheap to create per instance.
    FiniteDomain,
    /// Z3's default solver (arithmetic theories): the fallback when `QF_FD` gives up
    /// (unbounded or nonlinear ints), and the second opinion in the differential tests.
    General,
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
/// the only one? Tries the finite-domain engine, then the general one if it gave up. Runs
/// in fresh Z3 contexts (see [`BatchProver`] for proofs that share one).
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

fn prove_using(ctx: Option<&z3::Context>, q: &Query<'_>) -> Proof {
    let first = prove_engine(ctx, q, Engine::FiniteDomain);
    if !first.engine_gave_up {
        return first;
    }
    let mut second = prove_engine(ctx, q, Engine::General);
    second.effort.time_us += first.effort.time_us;
    second
}

/// Proofs of a batch of consecutive instances (`resyn_runtime::rows::BATCH`) in one Z3
/// context. A fresh context costs about a millisecond here, more than a whole proof of the
/// smaller examples. Z3's models and effort depend on the context's history, so a context
/// is never shared beyond its batch: the driver hands a batch to one worker, in index
/// order, and a proof then depends only on its batch's earlier instances, never on
/// `--jobs`.
#[derive(Default)]
pub struct BatchProver {
    /// The batch (plan, batch number) the context belongs to.
    current: Option<((usize, u64), z3::Context)>,
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
        let ctx = match &self.current {
            Some((b, ctx)) if *b == batch => ctx.clone(),
            _ => {
                let ctx = new_context();
                self.current = Some((batch, ctx.clone()));
                ctx
            }
        };
        let query = Query::new(program, env, params, fields, unique, limits);
        prove_using(Some(&ctx), &query)
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

/// [`prove`] with one engine (the differential tests compare the two).
pub fn prove_with(
    program: &Program,
    env: &CEnv,
    params: &[Value],
    fields: &[Value],
    unique: bool,
    limits: Limits,
    engine: Engine,
) -> Proof {
    let query = Query::new(program, env, params, fields, unique, limits);
    prove_engine(None, &query, engine)
}

/// One engine, in `ctx` or in a fresh context.
fn prove_engine(ctx: Option<&z3::Context>, q: &Query<'_>, engine: Engine) -> Proof {
    let run = || {
        prove_in_context(
            q.program, q.env, q.params, q.fields, q.unique, q.limits, engine,
        )
    };
    match ctx {
        Some(ctx) => in_context(ctx, run),
        None => in_fresh_context(run),
    }
}

fn prove_in_context(
    program: &Program,
    env: &CEnv,
    params: &[Value],
    fields: &[Value],
    unique: bool,
    limits: Limits,
    engine: Engine,
) -> Proof {
    let started = Instant::now();
    let effort = Effort::default();
    let shape = match env.answer_shape(params, fields) {
        Ok(s) => s,
        Err(e) => return Proof::unknown(format!("the answer type: {e}"), effort),
    };
    // Verify over the instance's fields; see `lower_verify` for the encoding choice.
    let frame: Vec<S> = params.iter().chain(fields).cloned().map(S::C).collect();
    let encoding = match engine {
        Engine::FiniteDomain => Encoding::Boolean,
        Engine::General => Encoding::Arithmetic,
    };
    let (mut lowering, answer) = match lower_verify(program, env, &shape, &frame, encoding) {
        Ok(x) => x,
        Err(h) => return Proof::unknown(halt_reason(&h), effort),
    };

    let solver = match engine {
        Engine::FiniteDomain => Solver::new_for_logic("QF_FD").unwrap_or_default(),
        Engine::General => Solver::new(),
    };
    let mut p = Params::new();
    if limits.rlimit > 0 {
        p.set_u32("rlimit", limits.rlimit);
    }
    if limits.timeout_ms > 0 {
        p.set_u32("timeout", limits.timeout_ms);
    }
    solver.set_params(&p);
    let rlimit_before = stat(&solver.get_statistics(), "rlimit count");
    for f in &lowering.facts {
        solver.assert(f);
    }

    let first = solver.check();
    let mut proof = match first {
        SatResult::Unsat => Proof {
            status: Status::Unsolvable,
            reason: None,
            witness: None,
            witness_checked: false,
            alternative: None,
            effort,
            engine_gave_up: false,
        },
        SatResult::Unknown => {
            let (why, gave_up) = reason_unknown(&solver, limits);
            let mut p = Proof::unknown(why, effort);
            p.engine_gave_up = gave_up;
            p
        }
        SatResult::Sat => {
            let model = solver.get_model();
            let witness = model.as_ref().and_then(|m| read_model(m, &shape, &answer));
            match witness {
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
                            engine_gave_up: false,
                        }
                    }
                }
            }
        }
    };

    if unique && proof.status == Status::Solvable {
        let w = proof.witness.clone().expect("solvable has a witness");
        match lowering.eq(&answer, &S::C(w)) {
            Err(h) => {
                proof.status = Status::Unknown;
                proof.reason = Some(format!("uniqueness: {}", halt_reason(&h)));
            }
            Ok(same) => {
                solver.assert(same.not());
                match solver.check() {
                    SatResult::Unsat => proof.status = Status::Unique,
                    SatResult::Unknown => {
                        let (why, gave_up) = reason_unknown(&solver, limits);
                        proof.status = Status::Unknown;
                        proof.reason = Some(format!("uniqueness: {why}"));
                        proof.engine_gave_up = gave_up;
                    }
                    SatResult::Sat => {
                        let alt = solver
                            .get_model()
                            .and_then(|m| read_model(&m, &shape, &answer));
                        match alt {
                            Some(a) if env.verify(params, fields, a.clone()).valid => {
                                proof.alternative = Some(a);
                            }
                            other => {
                                proof.status = Status::Unknown;
                                proof.reason = Some(format!(
                                    "internal error: the solver's second answer {} fails the native verifier; please report it",
                                    other.map(|a| a.display()).unwrap_or_default()
                                ));
                            }
                        }
                    }
                }
            }
        }
    }

    let stats = solver.get_statistics();
    proof.effort = Effort {
        // Z3's rlimit counter is per context (thread), so the instance's share is a delta.
        rlimit: stat(&stats, "rlimit count").saturating_sub(rlimit_before),
        // The SMT core and the SAT core (QF_FD) name their counters differently.
        conflicts: stat(&stats, "conflicts") + stat(&stats, "sat conflicts"),
        decisions: stat(&stats, "decisions") + stat(&stats, "sat decisions"),
        time_us: started.elapsed().as_micros() as u64,
    };
    proof
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
) -> Result<(Lowering<'p>, S), Halt> {
    let ir = &env.ir;
    let run = |one_hot: bool| -> Result<(Lowering<'p>, S), Halt> {
        let mut lowering = Lowering::new(program, DEFAULT_BUDGET);
        lowering.one_hot = one_hot;
        let answer = lowering.declare(shape, "answer")?;
        let mut slots = vec![S::C(Value::Unit); ir.verify_slots as usize];
        slots[..frame.len()].clone_from_slice(frame);
        slots[frame.len()] = answer.clone();
        match lowering.block(&mut slots, &ir.verify) {
            Ok(_) | Err(Halt::Dead) => Ok((lowering, answer)),
            Err(h) => Err(h),
        }
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
