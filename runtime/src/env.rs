//! The instance protocol, shared by the evaluator and by emitted code: what an env is to
//! the outside (its metadata and a few operations on runtime values), and the one driver
//! that turns generator attempts into an instance (retries, one fuel budget, the answer
//! type, the witness check, the question). Because both back ends go through
//! [`generate`] and score with [`Scorer`], they agree on every rule that is not the env's
//! own code (spec/language.md §10.10–10.11, spec/formats.md §5).

use crate::extract::ExtractMode;
use crate::rng::Rng;
use crate::shape::{decode, to_json_string, Shape};
use crate::value::{RtError, RtResult, Value};

/// Steps (loop iterations, comprehension elements, calls) one instance may take, across all
/// its generator attempts; verify and the prompt get the same budget per run.
pub const DEFAULT_FUEL: u64 = 50_000_000;
/// Generator attempts before a `require` that keeps failing is reported.
pub const DEFAULT_ATTEMPTS: u32 = 1_000;
/// Failures kept in a verification report (all are counted).
pub const MAX_REPORTED_FAILURES: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    Solvable,
    Unique,
}

impl Requirement {
    pub fn as_str(self) -> &'static str {
        match self {
            Requirement::Solvable => "solvable",
            Requirement::Unique => "unique",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scoring {
    All,
    Partial,
}

/// A param: its name, the shape its values decode by, and its type as written (for
/// messages about `--param`).
#[derive(Clone, Debug)]
pub struct ParamMeta {
    pub name: String,
    pub shape: Shape,
    pub ty: String,
}

/// An instance value: name, whether the question may show it, and its decoding shape.
#[derive(Clone, Debug)]
pub struct FieldMeta {
    pub name: String,
    pub shown: bool,
    pub shape: Shape,
}

/// What rows need to know about an env, besides running it.
#[derive(Clone, Debug)]
pub struct EnvMeta {
    pub name: String,
    pub category: String,
    pub requirement: Requirement,
    pub scoring: Scoring,
    /// Params in declaration order.
    pub params: Vec<ParamMeta>,
    pub fields: Vec<FieldMeta>,
    pub extract: ExtractMode,
    /// Source text of each constraint, by constraint id (for failure reports).
    pub constraint_text: Vec<String>,
}

/// Why one generator attempt stopped early.
#[derive(Debug)]
pub enum Stop {
    Error(RtError),
    /// A generator `require` failed (its rendered message).
    Reject(String),
}

impl From<RtError> for Stop {
    fn from(e: RtError) -> Stop {
        Stop::Error(e)
    }
}

/// What one successful generator attempt made.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// Instance values, in [`EnvMeta::fields`] order.
    pub fields: Vec<Value>,
    pub witness: Option<Value>,
}

/// One generated instance.
#[derive(Clone, Debug)]
pub struct Instance {
    /// Resolved params, in declaration order.
    pub params: Vec<Value>,
    /// Instance fields, in [`EnvMeta::fields`] order.
    pub fields: Vec<Value>,
    pub witness: Option<Value>,
    pub question: String,
    /// Generator attempts used (1 when the first draw was accepted).
    pub attempts: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum GenError {
    /// A param value is invalid (override out of its domain, or a runtime error); `level`
    /// is the level being instantiated (`None` for an override that does not parse).
    Param {
        name: String,
        level: Option<u8>,
        message: String,
    },
    /// A runtime error in the generator or the prompt.
    Runtime { message: String },
    /// Every attempt was rejected by a `require`.
    Exhausted { attempts: u32, last: String },
    /// The planted witness does not fit the answer type or fails verify.
    Witness { message: String },
}

impl std::fmt::Display for GenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GenError::Param {
                name,
                level: Some(level),
                message,
            } => write!(f, "param `{name}` at level {level}: {message}"),
            GenError::Param {
                name,
                level: None,
                message,
            } => write!(f, "param `{name}`: {message}"),
            GenError::Runtime { message } => write!(f, "runtime error: {message}"),
            GenError::Exhausted { attempts, last } => {
                write!(
                    f,
                    "no instance after {attempts} attempts; last rejected by: {last}"
                )
            }
            GenError::Witness { message } => {
                write!(f, "the planted witness is rejected: {message}")
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// Constraint number (source order).
    pub constraint: usize,
    pub message: String,
}

/// The result of verifying one answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub score: f64,
    pub valid: bool,
    pub failures: Vec<Failure>,
    pub failure_count: usize,
    /// A runtime error outside any constraint (the answer scores 0).
    pub error: Option<String>,
}

/// Tallies constraint evaluations while verify runs (spec/language.md §10.11).
#[derive(Clone, Debug, Default)]
pub struct Scorer {
    pub evaluations: usize,
    pub passed: usize,
    pub failures: Vec<Failure>,
    pub failure_count: usize,
}

impl Scorer {
    /// Records one failing binding of constraint `id`; `message` is rendered only when the
    /// report still has room.
    pub fn fail(&mut self, id: usize, message: impl FnOnce() -> String) {
        self.failure_count += 1;
        if self.failures.len() < MAX_REPORTED_FAILURES {
            self.failures.push(Failure {
                constraint: id,
                message: message(),
            });
        }
    }

    /// Ends one evaluation of a constraint statement.
    pub fn evaluated(&mut self, failed: bool) {
        self.evaluations += 1;
        if !failed {
            self.passed += 1;
        }
    }

    /// The message of a failing binding: the rendered `@` message, the runtime error that
    /// made it fail (or both), or the constraint's number.
    pub fn message(id: usize, rendered: Option<RtResult<String>>, why: Option<String>) -> String {
        match (rendered, why) {
            (Some(Ok(t)), None) if !t.is_empty() => t,
            (Some(Ok(t)), Some(w)) if !t.is_empty() => format!("{t} ({w})"),
            (_, Some(w)) => w,
            _ => format!("constraint {id} does not hold"),
        }
    }

    /// The verdict, given the error that stopped verification outside any constraint.
    pub fn verdict(self, error: Option<String>, scoring: Scoring) -> Verdict {
        let all_pass = error.is_none() && self.passed == self.evaluations;
        let score = if error.is_some() {
            0.0
        } else {
            match scoring {
                Scoring::All => f64::from(u8::from(all_pass)),
                Scoring::Partial if self.evaluations == 0 => 1.0,
                Scoring::Partial => self.passed as f64 / self.evaluations as f64,
            }
        };
        Verdict {
            score,
            valid: all_pass,
            failures: self.failures,
            failure_count: self.failure_count,
            error,
        }
    }
}

/// An env as the outside sees it: the evaluator's compiled env and emitted code both
/// implement this, over runtime values.
pub trait Environment {
    fn meta(&self) -> &EnvMeta;

    /// Params for a level (1..=5) with `name=value` overrides applied; each value must lie
    /// in its param's domain.
    fn resolve_params(
        &self,
        level: u8,
        overrides: &[(String, Value)],
    ) -> Result<Vec<Value>, GenError>;

    /// One run of the generator with the random stream `rng` and `fuel` steps left (both
    /// continue into the next attempt).
    fn attempt(&self, params: &[Value], rng: Rng, fuel: &mut u64) -> (Rng, Result<Attempt, Stop>);

    /// The answer type with its domains evaluated for this instance.
    fn answer_shape(&self, params: &[Value], fields: &[Value]) -> RtResult<Shape>;

    /// Checks an answer value against verify.
    fn verify(&self, params: &[Value], fields: &[Value], answer: Value) -> Verdict;

    /// The question: the prompt rendered with the params and the shown values.
    fn question(&self, params: &[Value], fields: &[Value]) -> RtResult<String>;

    /// Generates an instance: see [`generate`].
    fn generate(
        &self,
        params: &[Value],
        rng: Rng,
        fuel: u64,
        attempts: u32,
    ) -> Result<Instance, GenError>
    where
        Self: Sized,
    {
        generate(self, params, rng, fuel, attempts)
    }
}

/// Runs the generator until an attempt passes every `require` (at most `attempts` tries,
/// one `fuel` budget across all of them), evaluates the answer type, checks the planted
/// witness against it and against verify, and renders the question (spec §10.10).
pub fn generate(
    env: &dyn Environment,
    params: &[Value],
    mut rng: Rng,
    fuel: u64,
    attempts: u32,
) -> Result<Instance, GenError> {
    let mut last = String::new();
    // One fuel budget for the whole instance, across attempts: a generator that rejects
    // slowly cannot multiply its cost by the attempt limit.
    let mut fuel_left = fuel;
    for attempt in 1..=attempts.max(1) {
        let (back, r) = env.attempt(params, rng, &mut fuel_left);
        rng = back;
        let made = match r {
            Ok(made) => made,
            Err(Stop::Reject(msg)) => {
                last = msg;
                continue;
            }
            Err(Stop::Error(e)) => {
                return Err(GenError::Runtime {
                    message: *e.message,
                })
            }
        };
        // The answer type must evaluate for every instance (verify needs it), witness or
        // not; then the witness, then the question (spec §10.10).
        let shape = env
            .answer_shape(params, &made.fields)
            .map_err(|e| GenError::Runtime {
                message: format!("in the answer's type: {}", e.message),
            })?;
        if let Some(w) = &made.witness {
            check_witness(env, params, &made.fields, &shape, w)?;
        }
        let question = env
            .question(params, &made.fields)
            .map_err(|e| GenError::Runtime {
                message: format!("in the prompt: {}", e.message),
            })?;
        return Ok(Instance {
            params: params.to_vec(),
            fields: made.fields,
            witness: made.witness,
            question,
            attempts: attempt,
        });
    }
    Err(GenError::Exhausted {
        attempts,
        last: if last.is_empty() {
            "a `require`".into()
        } else {
            last
        },
    })
}

/// A witness must be a value of the answer type (it round-trips through its canonical JSON)
/// and pass verify.
fn check_witness(
    env: &dyn Environment,
    params: &[Value],
    fields: &[Value],
    shape: &Shape,
    w: &Value,
) -> Result<(), GenError> {
    let json = to_json_string(w);
    match decode(&json, shape) {
        Ok(back) if back == *w => {}
        Ok(_) => {
            return Err(GenError::Witness {
                message: format!("{json} does not round-trip through the answer type"),
            })
        }
        Err(e) => {
            return Err(GenError::Witness {
                message: format!("{json} does not fit the answer type: {e}"),
            })
        }
    }
    let v = env.verify(params, fields, w.clone());
    if !v.valid {
        let why = v
            .error
            .or_else(|| v.failures.first().map(|f| f.message.clone()))
            .unwrap_or_default();
        return Err(GenError::Witness {
            message: format!("verify fails: {why}"),
        });
    }
    Ok(())
}
