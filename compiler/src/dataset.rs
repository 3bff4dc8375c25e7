//! Datasets with the evaluator: generating instance rows in parallel (with proofs for
//! `gen --prove` and `prove`) and auditing received rows. The row forms themselves, and
//! the verification of answer rows, are the runtime's (`resyn_runtime::rows`), shared with
//! emitted binaries. Formats are specified in spec/formats.md.

use crate::eval::{compile, CEnv, GenError, Instance, DEFAULT_ATTEMPTS, DEFAULT_FUEL};
use crate::ir::{Env, Program, Requirement};
use crate::prove::{prove, BatchProver, Limits, Proof, Status};
use crate::types::Ty;
use resyn_runtime::env::Environment;
pub use resyn_runtime::rows::{
    canonical_params, oversized_row, parse_overrides, parse_param, read_row, verify_line, Format,
    Plan, RowContext, RowError, MAX_ROW_BYTES,
};
use resyn_runtime::rows::{row_err, too_large};
use resyn_runtime::{derive_seed, encode, Domain, Len, Rng, Shape, Value};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

pub const RESYN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// SHA-256 (hex) of the source with CRLF normalised to LF: the provenance of every row.
pub fn source_hash(text: &str) -> String {
    let normalized = text.replace("\r\n", "\n");
    Sha256::digest(normalized.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The decoding shape of a value of type `ty` (no domains).
pub fn ty_shape(ty: &Ty) -> Shape {
    match ty {
        Ty::Bool => Shape::Bool,
        Ty::Int => Shape::Int {
            domain: Domain::Any,
        },
        Ty::Float => Shape::Float,
        Ty::Str => Shape::Str {
            domain: Domain::Any,
        },
        Ty::Unit | Ty::Unknown => Shape::Unit,
        Ty::Tuple(ts) => Shape::Tuple(ts.iter().map(ty_shape).collect()),
        Ty::List(t) => Shape::List {
            elem: Box::new(ty_shape(t)),
            len: Len::Any,
        },
        Ty::Set(t) => Shape::Set(Box::new(ty_shape(t))),
        Ty::Map(k, v) => Shape::Map(Box::new(ty_shape(k)), Box::new(ty_shape(v))),
        Ty::Record(fs) => Shape::Record(fs.iter().map(|(n, t)| (n.clone(), ty_shape(t))).collect()),
        Ty::Enum(_, _, variants) => Shape::Enum {
            variants: variants.clone(),
        },
    }
}

pub struct GenRequest<'a> {
    pub program: &'a Program,
    pub env: usize,
    pub levels: Vec<u8>,
    pub n: u64,
    pub seed: u64,
    /// `--param name=value` as given (parsed per worker: values are not `Send`).
    pub overrides: Vec<(String, String)>,
    pub format: Format,
    pub source_hash: String,
    pub jobs: usize,
    /// Prove each instance with Z3 (`gen --prove`, `prove`).
    pub prove: Option<ProveConfig>,
}

/// What to prove and what to write.
#[derive(Clone, Copy, Debug)]
pub struct ProveConfig {
    /// Ask for uniqueness even when the env only requires solvability.
    pub unique: bool,
    pub limits: Limits,
    /// `prove`: write one proof row per instance instead of the instance row.
    pub proof_rows: bool,
}

/// One generated instance as handed to the caller.
#[derive(Debug)]
pub struct Produced {
    pub level: u8,
    /// The row to write; `None` when `gen --prove` drops the instance.
    pub row: Option<String>,
    pub proof: Option<ProofOutcome>,
}

/// A proof's verdict against the env's `require`.
#[derive(Clone, Copy, Debug)]
pub struct ProofOutcome {
    pub status: Status,
    /// The instance is proved to meet the env's requirement (solvable / unique).
    pub meets: bool,
    /// The instance is proved to violate it (unsolvable, or a second answer for `unique`).
    pub refuted: bool,
}

/// One failed instance: which one, and why.
#[derive(Debug)]
pub struct GenFailure {
    pub level: u8,
    pub index: u64,
    pub error: GenError,
}

/// Generates all rows, in (level, index) order; `progress` is called once per instance.
/// Collects everything in memory: for tests and small runs (the CLI streams, see
/// [`generate_with`]).
pub fn generate(
    req: &GenRequest<'_>,
    progress: &(dyn Fn() + Sync),
) -> Result<(Vec<String>, Vec<GenFailure>), GenError> {
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    generate_with(req, progress, &mut |r| {
        match r {
            Ok(p) => rows.extend(p.row),
            Err(f) => failures.push(f),
        }
        true
    })?;
    Ok((rows, failures))
}

/// A generating worker's state: its own compiled program (values are `Rc`-based), the
/// params of each plan, and the Z3 context of its current batch of proofs.
type Worker = (crate::eval::Compiled, Vec<Vec<Value>>, BatchProver);

/// Generates rows in (level, index) order and hands each to `emit` (row text, or the failure)
/// as soon as its chunk is done; `emit` returns false to stop early. Output does not depend
/// on `jobs`.
pub fn generate_with(
    req: &GenRequest<'_>,
    progress: &(dyn Fn() + Sync),
    emit: &mut dyn FnMut(Result<Produced, GenFailure>) -> bool,
) -> Result<(), GenError> {
    let env = &req.program.envs[req.env];
    // Params per level, validated once up front; workers keep their own `Rc` values.
    let compiled = compile(req.program);
    let resolve = |c: &crate::eval::Compiled| -> Result<Vec<Vec<Value>>, GenError> {
        let overrides = parse_overrides(c.envs[req.env].meta(), &req.overrides)?;
        req.levels
            .iter()
            .map(|&l| c.envs[req.env].resolve_params(l, &overrides))
            .collect()
    };
    let params = resolve(&compiled)?;
    let cenv = &compiled.envs[req.env];
    let plans: Vec<Plan> = req
        .levels
        .iter()
        .zip(&params)
        .map(|(&l, p)| Plan::new(cenv, l, p))
        .collect();
    let run = |state: &mut Worker, (p, index): (usize, u64)| -> Result<Produced, GenFailure> {
        let plan = &plans[p];
        let (level, pj) = (&plan.level, &plan.params_json);
        let (c, params, prover) = state;
        let cenv = &c.envs[req.env];
        let key = derive_seed(&env.name, *level, pj, req.seed, index);
        let r = cenv
            .generate(
                &params[p],
                Rng::from_key(key),
                DEFAULT_FUEL,
                DEFAULT_ATTEMPTS,
            )
            .map(|inst| {
                let Some(cfg) = req.prove else {
                    let row = row(req, cenv, plan, index, &inst, None);
                    return Produced {
                        level: *level,
                        row: Some(row),
                        proof: None,
                    };
                };
                let unique = cfg.unique || env.requirement == Requirement::Unique;
                let batch = (p, index / resyn_runtime::rows::BATCH);
                let proof = prover.prove(
                    batch,
                    req.program,
                    cenv,
                    &params[p],
                    &inst.fields,
                    unique,
                    cfg.limits,
                );
                let outcome = outcome(env, &proof, unique);
                let row = if cfg.proof_rows {
                    Some(proof_row(req, env, plan, index, &proof).to_string())
                } else if outcome.meets {
                    Some(row(req, cenv, plan, index, &inst, Some(&proof)))
                } else {
                    None
                };
                Produced {
                    level: *level,
                    row,
                    proof: Some(outcome),
                }
            })
            .map_err(|error| GenFailure {
                level: *level,
                index,
                error,
            });
        progress();
        r
    };
    // Values are `Rc`-based, so each worker compiles the program for itself (cheap); the
    // runtime's chunked driver keeps the output independent of `jobs`.
    let init = || {
        let c = compile(req.program);
        let ps = resolve(&c).unwrap_or_default();
        (c, ps, BatchProver::default())
    };
    let work = |st: &mut Worker, p: usize, i: u64| run(st, (p, i));
    resyn_runtime::rows::run_chunked(plans.len(), req.n, req.jobs, &init, &work, emit)
        .map_err(|message| GenError::Runtime { message })?;
    Ok(())
}

/// Does a proof meet (or refute) the env's requirement?
fn outcome(env: &Env, proof: &Proof, unique_asked: bool) -> ProofOutcome {
    let need_unique = env.requirement == Requirement::Unique;
    let meets = match proof.status {
        Status::Unique => true,
        Status::Solvable => !need_unique,
        Status::Unsolvable | Status::Unknown => false,
    };
    let refuted = match proof.status {
        Status::Unsolvable => true,
        Status::Solvable => need_unique && unique_asked,
        Status::Unique | Status::Unknown => false,
    };
    ProofOutcome {
        status: proof.status,
        meets,
        refuted,
    }
}

/// The `proof` object. `with_time`: include the (non-deterministic) wall time, which
/// `prove` rows carry and `gen --prove` rows leave out so their bytes stay reproducible.
pub fn proof_json(p: &Proof, with_time: bool) -> Json {
    let mut effort = json!({
        "rlimit": p.effort.rlimit,
        "conflicts": p.effort.conflicts,
        "decisions": p.effort.decisions,
    });
    if with_time {
        effort["time_us"] = json!(p.effort.time_us);
    }
    let mut out = json!({
        "status": p.status.as_str(),
        "witness": p.witness.as_ref().map(encode).unwrap_or(Json::Null),
        "witness_checked": p.witness_checked,
        "effort": effort,
        "z3": crate::prove::z3_version(),
    });
    if let Some(a) = &p.alternative {
        out["alternative"] = encode(a);
    }
    if let Some(r) = &p.reason {
        out["reason"] = json!(r);
    }
    out
}

/// What every row of this run says about the run.
fn row_context<'r>(req: &'r GenRequest<'_>) -> RowContext<'r> {
    RowContext {
        seed: req.seed,
        source_hash: &req.source_hash,
        resyn_version: RESYN_VERSION,
        format: req.format,
    }
}

/// The text of an instance row of this run (the runtime's form; a proof attached without
/// wall time).
fn row(
    req: &GenRequest<'_>,
    cenv: &CEnv,
    plan: &Plan,
    index: u64,
    inst: &Instance,
    proof: Option<&Proof>,
) -> String {
    resyn_runtime::rows::instance_row_text(
        &row_context(req),
        cenv.meta(),
        plan,
        index,
        inst,
        proof.map(|p| proof_json(p, false)).as_ref(),
    )
}

/// An instance row of this run without a proof, as a JSON value (audit compares members).
fn row_value(req: &GenRequest<'_>, cenv: &CEnv, plan: &Plan, index: u64, inst: &Instance) -> Json {
    resyn_runtime::rows::instance_row(&row_context(req), cenv.meta(), plan, index, inst, None)
}

fn proof_row(req: &GenRequest<'_>, env: &Env, plan: &Plan, index: u64, p: &Proof) -> Json {
    let level = plan.level;
    let mut row = proof_json(p, true);
    row["id"] = json!(plan.id(req.seed, index));
    row["env"] = json!(env.name);
    row["level"] = json!(level);
    row["seed"] = json!(req.seed);
    row["index"] = json!(index);
    row
}

/// Audits one row of a dataset (`resyn audit`): provenance (the row regenerates
/// byte-identically from its source, level, params, seed and index), a solvability
/// certificate that needs no solver (the witness passes the native verifier) and, with
/// `reprove`, the row's proof status re-proved with Z3.
pub fn audit_line(
    program: &Program,
    env_idx: usize,
    cenv: &CEnv,
    source_hash_now: &str,
    line: &str,
    reprove: bool,
) -> Json {
    let parsed: Result<Json, RowError> = if line.len() > MAX_ROW_BYTES {
        Err(too_large(line.len()))
    } else {
        serde_json::from_str::<Json>(line)
            .map_err(|e| row_err("row.invalid", format!("not JSON: {e}")))
            .and_then(unwrap_export)
    };
    let id = parsed
        .as_ref()
        .ok()
        .and_then(|r| r.get("id").cloned())
        .unwrap_or(Json::Null);
    match parsed.and_then(|row| audit_row(program, env_idx, cenv, source_hash_now, &row, reprove)) {
        Ok(mut out) => {
            out["id"] = id;
            out["error"] = Json::Null;
            out
        }
        Err(e) => json!({
            "id": id, "ok": false, "provenance": false, "certified": false,
            "claimed": Json::Null, "reproved": Json::Null,
            "error": {"code": e.code, "message": e.message},
        }),
    }
}

/// The resyn row inside an export row (`metadata.row_json` / `extra_info.row_json`).
fn unwrap_export(row: Json) -> Result<Json, RowError> {
    if row.get("instance").is_some() {
        return Ok(row);
    }
    for holder in ["metadata", "extra_info"] {
        if let Some(text) = row
            .get(holder)
            .and_then(|m| m.get("row_json"))
            .and_then(Json::as_str)
        {
            return serde_json::from_str(text).map_err(|e| {
                row_err("row.invalid", format!("row_json is not a JSON object: {e}"))
            });
        }
    }
    Err(row_err(
        "row.invalid",
        "the row has no `instance` (nor `metadata.row_json` / `extra_info.row_json`)",
    ))
}

fn audit_row(
    program: &Program,
    env_idx: usize,
    cenv: &CEnv,
    source_hash_now: &str,
    given: &Json,
    reprove: bool,
) -> Result<Json, RowError> {
    let env = &program.envs[env_idx];
    let field = |k: &str| {
        given
            .get(k)
            .ok_or_else(|| row_err("row.instance", format!("the row has no `{k}`")))
    };
    if field("env")?.as_str() != Some(env.name.as_str()) {
        return Err(row_err(
            "row.env",
            format!("the row is not for env `{}`", env.name),
        ));
    }
    let level = field("level")?
        .as_u64()
        .filter(|l| (1..=5).contains(l))
        .ok_or_else(|| row_err("row.instance", "`level` is not 1..5"))? as u8;
    let seed = field("seed")?
        .as_u64()
        .ok_or_else(|| row_err("row.instance", "`seed` is not a u64"))?;
    let index = field("index")?
        .as_u64()
        .ok_or_else(|| row_err("row.instance", "`index` is not a u64"))?;
    let hash = field("source_hash")?
        .as_str()
        .unwrap_or_default()
        .to_string();

    // Params as recorded, which must be what the level gives with these values set (so a
    // row made with `--param` audits too, and a tampered param does not).
    let pobj = field("params")?
        .as_object()
        .ok_or_else(|| row_err("row.instance", "`params` is not an object"))?;
    let mut recorded = Vec::new();
    for p in &env.params {
        let j = pobj
            .get(&p.name)
            .ok_or_else(|| row_err("row.instance", format!("params has no `{}`", p.name)))?;
        let v = resyn_runtime::decode(&j.to_string(), &ty_shape(&p.ty))
            .map_err(|e| row_err("row.instance", format!("param `{}`: {e}", p.name)))?;
        recorded.push((p.name.clone(), v));
    }
    let params = cenv
        .resolve_params(level, &recorded)
        .map_err(|e| row_err("row.instance", e.to_string()))?;

    let mut problems: Vec<String> = Vec::new();
    if hash != source_hash_now {
        problems.push("the row was generated from a different source (source_hash differs)".into());
    }
    let plan = Plan::new(cenv, level, &params);
    let key = derive_seed(&env.name, level, &plan.params_json, seed, index);
    let regenerated = cenv.generate(&params, Rng::from_key(key), DEFAULT_FUEL, DEFAULT_ATTEMPTS);
    let fields = match &regenerated {
        Ok(inst) => {
            let req = GenRequest {
                program,
                env: env_idx,
                levels: vec![level],
                n: 1,
                seed,
                overrides: Vec::new(),
                format: Format::Resyn,
                source_hash: hash.clone(),
                jobs: 1,
                prove: None,
            };
            let mut mine = row_value(&req, cenv, &plan, index, inst);
            let mut theirs = given.clone();
            // The proof is checked below, not regenerated; `resyn_version` may differ.
            for r in [&mut mine, &mut theirs] {
                if let Some(o) = r.as_object_mut() {
                    o.remove("proof");
                    o.remove("resyn_version");
                }
            }
            // Compared as canonical text: the bytes `gen` writes (sorted keys, same number forms).
            if mine.to_string().as_str() != theirs.to_string().as_str() {
                let differing: Vec<&str> =
                    ["instance", "hidden", "question", "witness", "params", "id"]
                        .into_iter()
                        .filter(|k| mine.get(*k) != theirs.get(*k))
                        .collect();
                problems.push(format!(
                    "the row does not regenerate identically (differs in: {})",
                    if differing.is_empty() {
                        "other keys".to_string()
                    } else {
                        differing.join(", ")
                    }
                ));
            }
            Some(inst.fields.clone())
        }
        Err(e) => {
            problems.push(format!("the instance does not regenerate: {e}"));
            None
        }
    };
    let provenance = problems.is_empty();

    // The certificate: a witness that passes the native verifier, on the regenerated
    // instance (so a tampered instance cannot certify itself).
    let claimed = given
        .get("proof")
        .and_then(|p| p.get("status"))
        .and_then(Json::as_str)
        .map(str::to_string);
    let witness_json = match given.get("witness") {
        Some(w) if !w.is_null() => Some(w.clone()),
        _ => given
            .get("proof")
            .and_then(|p| p.get("witness"))
            .filter(|w| !w.is_null())
            .cloned(),
    };
    let mut certified = false;
    if let Some(fields) = &fields {
        match witness_json {
            None => problems.push("the row carries no witness to certify".into()),
            Some(w) => {
                let shape = cenv
                    .answer_shape(&params, fields)
                    .map_err(|e| row_err("row.instance", *e.message))?;
                match resyn_runtime::decode(&w.to_string(), &shape) {
                    Ok(v) => {
                        let verdict = cenv.verify(&params, fields, v);
                        certified = verdict.valid;
                        if !certified {
                            problems.push("the witness fails verify".into());
                        }
                    }
                    Err(e) => problems.push(format!("the witness does not decode: {e}")),
                }
            }
        }
    }

    let mut reproved = Json::Null;
    if let (true, Some(fields)) = (reprove, &fields) {
        let unique = claimed.as_deref() == Some("unique") || env.requirement == Requirement::Unique;
        // The same deterministic bound as the CLI's default `--rlimit`: a row cannot
        // make the audit run unbounded.
        let limits = Limits {
            rlimit: crate::prove::DEFAULT_RLIMIT,
            timeout_ms: 0,
        };
        let p = prove(program, cenv, &params, fields, unique, limits);
        reproved = json!(p.status.as_str());
        let agrees = match claimed.as_deref() {
            Some("unique") => p.status == Status::Unique,
            Some("solvable") => matches!(p.status, Status::Solvable | Status::Unique),
            Some(other) => p.status.as_str() == other,
            None => p.status != Status::Unsolvable,
        };
        if !agrees {
            problems.push(format!(
                "the row claims `{}` but it re-proves `{}`",
                claimed.as_deref().unwrap_or("nothing"),
                p.status.as_str()
            ));
        }
    }
    Ok(json!({
        "ok": problems.is_empty(),
        "provenance": provenance,
        "certified": certified,
        "claimed": claimed,
        "reproved": reproved,
        "problems": problems,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_row_splits_lines_and_caps_what_it_holds() {
        let mut data = b"{\"a\":1}\n\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_ROW_BYTES + 100));
        data.extend(b"\nlast");
        let mut r = std::io::BufReader::with_capacity(4096, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(read_row(&mut r, &mut buf).unwrap(), Some(7));
        assert_eq!(buf, b"{\"a\":1}");
        assert_eq!(read_row(&mut r, &mut buf).unwrap(), Some(0));
        assert_eq!(
            read_row(&mut r, &mut buf).unwrap(),
            Some(MAX_ROW_BYTES + 100)
        );
        assert_eq!(
            buf.len(),
            MAX_ROW_BYTES + 1,
            "the oversized line is not held in full"
        );
        assert_eq!(read_row(&mut r, &mut buf).unwrap(), Some(4));
        assert_eq!(buf, b"last");
        assert_eq!(read_row(&mut r, &mut buf).unwrap(), None);
        assert_eq!(
            oversized_row(MAX_ROW_BYTES + 100)["error"]["code"],
            "row.too_large"
        );
    }
}
