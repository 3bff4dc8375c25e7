//! Datasets: generating instance rows (resyn, Reasoning Gym and verl forms) and verifying
//! answer rows. Rows are JSON objects with sorted keys (serde_json's default map), so the
//! same inputs give byte-identical output. Formats are specified in spec/formats.md.

use crate::eval::{compile, CEnv, GenError, Instance, DEFAULT_ATTEMPTS, DEFAULT_FUEL};
use crate::ir::{Env, Program, Requirement};
use crate::prove::{prove, Limits, Proof, Status};
use crate::types::Ty;
use rayon::prelude::*;
use resyn_runtime::{derive_seed, encode, to_json_string, Domain, Len, Rng, Shape, Value};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};

pub const RESYN_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Resyn,
    ReasoningGym,
    Verl,
}

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

/// Parses a `--param name=value` value for a param of type `ty`.
pub fn parse_param(text: &str, ty: &Ty) -> Result<Value, String> {
    let t = text.trim();
    match ty {
        Ty::Int => t
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| format!("`{t}` is not an int")),
        Ty::Float => match t.parse::<f64>() {
            // -0.0 is normalised like every computed float (language.md §10.3).
            Ok(f) if f.is_finite() => Ok(Value::Float(if f == 0.0 { 0.0 } else { f })),
            _ => Err(format!("`{t}` is not a finite float")),
        },
        Ty::Bool => match t {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("`{t}` is not `true` or `false`")),
        },
        Ty::Str => Ok(Value::str(text)),
        other => Err(format!("params of type `{other}` cannot be set")),
    }
}

/// Parses `--param` overrides against the env's params (unknown names are errors).
pub fn parse_overrides(
    env: &Env,
    raw: &[(String, String)],
) -> Result<Vec<(String, Value)>, GenError> {
    raw.iter()
        .map(|(name, text)| {
            let p = env
                .params
                .iter()
                .find(|p| p.name == *name)
                .ok_or_else(|| GenError::Param {
                    name: name.clone(),
                    level: None,
                    message: format!(
                        "no such param in env `{}` (params: {})",
                        env.name,
                        env.params
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
            parse_param(text, &p.ty)
                .map(|v| (name.clone(), v))
                .map_err(|message| GenError::Param {
                    name: name.clone(),
                    level: None,
                    message,
                })
        })
        .collect()
}

/// The canonical params text hashed into every instance's seed: `{"name":value,…}`, names
/// sorted, values in the runtime's own JSON writer (`to_json_string`), so the seed never
/// depends on a serialisation library's float formatting.
pub fn canonical_params(env: &Env, params: &[Value]) -> String {
    let mut pairs: Vec<(&str, String)> = env
        .params
        .iter()
        .zip(params)
        .map(|(p, v)| (p.name.as_str(), to_json_string(v)))
        .collect();
    pairs.sort();
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}:{v}", Json::String(k.to_string())))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// The canonical JSON of the resolved params (keys sorted): part of the seed derivation.
pub fn params_json(env: &Env, params: &[Value]) -> Map<String, Json> {
    env.params
        .iter()
        .zip(params)
        .map(|(p, v)| (p.name.clone(), encode(v)))
        .collect()
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

/// Instances generated between two hand-overs to `emit`: bounds memory whatever `-n` is,
/// while keeping every worker busy.
const CHUNK: u64 = 4096;

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
        let overrides = parse_overrides(env, &req.overrides)?;
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
    let run = |state: &mut (crate::eval::Compiled, Vec<Vec<Value>>),
               (p, index): (usize, u64)|
     -> Result<Produced, GenFailure> {
        let plan = &plans[p];
        let (level, pj) = (&plan.level, &plan.params_json);
        let (c, params) = state;
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
                    let row = row(req, env, plan, index, &inst, None).to_string();
                    return Produced {
                        level: *level,
                        row: Some(row),
                        proof: None,
                    };
                };
                let unique = cfg.unique || env.requirement == Requirement::Unique;
                let proof = prove(
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
                    Some(row(req, env, plan, index, &inst, Some(&proof)).to_string())
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
    // Values are `Rc`-based, so each worker compiles the program for itself (cheap).
    let pool = if req.jobs > 1 {
        Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(req.jobs)
                .build()
                .map_err(|e| GenError::Runtime {
                    message: format!("thread pool: {e}"),
                })?,
        )
    } else {
        None
    };
    let mut state = (compiled, params);
    for p in 0..plans.len() {
        let mut start = 0u64;
        while start < req.n {
            let end = start.saturating_add(CHUNK).min(req.n);
            let results: Vec<Result<Produced, GenFailure>> = match &pool {
                None => (start..end).map(|i| run(&mut state, (p, i))).collect(),
                Some(pool) => pool.install(|| {
                    (start..end)
                        .into_par_iter()
                        .map_init(
                            || {
                                let c = compile(req.program);
                                let ps = resolve(&c).unwrap_or_default();
                                (c, ps)
                            },
                            |st, i| run(st, (p, i)),
                        )
                        .collect()
                }),
            };
            for r in results {
                if !emit(r) {
                    return Ok(());
                }
            }
            start = end;
        }
    }
    Ok(())
}

/// What every instance of one level shares: the level, its canonical params text (hashed
/// into each seed) and the prefix of its ids.
struct Plan {
    level: u8,
    params_json: String,
    /// `ENV-LLEVEL`, plus `-pHASH` when the params differ from the level's own (`--param`),
    /// so datasets made with different overrides never share an id.
    id_prefix: String,
}

impl Plan {
    fn new(cenv: &CEnv, level: u8, params: &[Value]) -> Plan {
        let env = &cenv.ir;
        let params_json = canonical_params(env, params);
        let own = cenv.resolve_params(level, &[]).ok();
        let id_prefix = if own.as_deref() == Some(params) {
            format!("{}-L{level}", env.name)
        } else {
            let digest = Sha256::digest(params_json.as_bytes());
            let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
            format!("{}-L{level}-p{short}", env.name)
        };
        Plan {
            level,
            params_json,
            id_prefix,
        }
    }

    fn id(&self, seed: u64, index: u64) -> String {
        format!("{}-s{seed}-{index}", self.id_prefix)
    }
}

fn row(
    req: &GenRequest<'_>,
    env: &Env,
    plan: &Plan,
    index: u64,
    inst: &Instance,
    proof: Option<&Proof>,
) -> Json {
    let (level, params_json) = (plan.level, plan.params_json.as_str());
    let mut shown = Map::new();
    let mut hidden = Map::new();
    for (f, v) in env.fields.iter().zip(&inst.fields) {
        if f.shown {
            shown.insert(f.name.clone(), encode(v));
        } else {
            hidden.insert(f.name.clone(), encode(v));
        }
    }
    let params: Json = serde_json::from_str(params_json).unwrap_or(Json::Null);
    let id = plan.id(req.seed, index);
    let witness = inst.witness.as_ref().map(encode).unwrap_or(Json::Null);
    let base = json!({
        "id": id,
        "env": env.name,
        "level": level,
        "seed": req.seed,
        "index": index,
        "params": params,
        "instance": shown,
        "hidden": hidden,
        "question": inst.question,
        "witness": witness,
        "category": env.category,
        "require": match env.requirement { crate::ir::Requirement::Solvable => "solvable", crate::ir::Requirement::Unique => "unique" },
        "source_hash": req.source_hash,
        "resyn_version": RESYN_VERSION,
    });
    let mut base = base;
    if let Some(p) = proof {
        base["proof"] = proof_json(p, false);
    }
    let witness_text = inst
        .witness
        .as_ref()
        .map(to_json_string)
        .unwrap_or_default();
    match req.format {
        Format::Resyn => base,
        // Fixed column types across environments: nested per-env data travels as JSON text.
        Format::ReasoningGym => json!({
            "question": inst.question,
            "answer": witness_text,
            "metadata": {
                "id": base["id"], "env": env.name, "level": level, "seed": req.seed, "index": index,
                "source_hash": req.source_hash, "resyn_version": RESYN_VERSION,
                "row_json": base.to_string(),
            },
        }),
        Format::Verl => json!({
            "data_source": format!("resyn/{}", env.name),
            "prompt": [{"role": "user", "content": inst.question}],
            "ability": if env.category.is_empty() { "reasoning".to_string() } else { env.category.clone() },
            "reward_model": {"style": "rule", "ground_truth": witness_text},
            "extra_info": {
                "id": base["id"], "env": env.name, "level": level, "seed": req.seed, "index": index,
                "source_hash": req.source_hash, "resyn_version": RESYN_VERSION,
                "instance_json": Json::Object(shown_and_hidden(&base)).to_string(),
                "row_json": base.to_string(),
            },
        }),
    }
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

fn shown_and_hidden(base: &Json) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert("instance".into(), base["instance"].clone());
    m.insert("hidden".into(), base["hidden"].clone());
    m.insert("params".into(), base["params"].clone());
    m
}

// ---------------------------------------------------------------------- verify

/// A row-level error: a stable code and a message.
#[derive(Clone, Debug, PartialEq)]
pub struct RowError {
    pub code: &'static str,
    pub message: String,
}

fn row_err(code: &'static str, message: impl Into<String>) -> RowError {
    RowError {
        code,
        message: message.into(),
    }
}

/// Largest input row accepted.
pub const MAX_ROW_BYTES: usize = 16 * 1024 * 1024;

/// Verifies one input line. Never fails: problems become a row `error`.
/// `extract` overrides the env's extraction mode for this run (`--extract`).
pub fn verify_line(cenv: &CEnv, line: &str, extract: Option<resyn_runtime::ExtractMode>) -> Json {
    // Only the top level is tokenised; values stay raw slices of `line` and are decoded
    // once, against their types (no intermediate JSON tree, no re-serialisation).
    let parsed: Result<RawMap<'_>, RowError> = if line.len() > MAX_ROW_BYTES {
        Err(too_large(line.len()))
    } else {
        serde_json::from_str(line)
            .map_err(|e| row_err("row.invalid", format!("not a JSON object: {e}")))
    };
    let id = parsed.as_ref().ok().map_or(Json::Null, row_id);
    let outcome = parsed.and_then(|r| verify_row(cenv, &r, extract.unwrap_or(cenv.ir.extract)));
    let mut out = Map::new();
    let id = match id {
        Json::Null => outcome
            .as_ref()
            .ok()
            .map(|o| o.id.clone())
            .unwrap_or(Json::Null),
        other => other,
    };
    out.insert("id".into(), id);
    match outcome {
        Ok(o) => {
            out.insert("score".into(), json!(o.score));
            out.insert("valid".into(), json!(o.valid));
            out.insert("failures".into(), Json::Array(o.failures));
            out.insert("failure_count".into(), json!(o.failure_count));
            out.insert(
                "error".into(),
                o.error.map_or(
                    Json::Null,
                    |e| json!({"code": e.code, "message": e.message}),
                ),
            );
        }
        Err(e) => return error_row(out.remove("id").unwrap_or(Json::Null), e),
    }
    Json::Object(out)
}

/// The output row of a row that could not be verified: score 0 and the error.
fn error_row(id: Json, e: RowError) -> Json {
    json!({
        "id": id, "score": 0.0, "valid": false, "failures": [], "failure_count": 0,
        "error": {"code": e.code, "message": e.message},
    })
}

fn too_large(len: usize) -> RowError {
    row_err(
        "row.too_large",
        format!("row of {len} bytes exceeds {MAX_ROW_BYTES}"),
    )
}

/// The output row for an input line of `len` bytes that [`read_row`] refused to hold.
pub fn oversized_row(len: usize) -> Json {
    error_row(Json::Null, too_large(len))
}

/// Reads one `\n`-terminated line into `buf`, keeping at most `MAX_ROW_BYTES + 1` bytes of
/// it (the rest is skipped, so a multi-gigabyte line costs no memory). Returns the line's
/// full length, or `None` at the end of the input.
pub fn read_row(
    r: &mut impl std::io::BufRead,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<usize>> {
    buf.clear();
    let mut total = 0usize;
    let mut any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some(total));
        }
        any = true;
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        let room = (MAX_ROW_BYTES + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..take.min(room)]);
        total += take;
        r.consume(take + usize::from(done));
        if done {
            return Ok(Some(total));
        }
    }
}

struct Outcome {
    id: Json,
    score: f64,
    valid: bool,
    failures: Vec<Json>,
    failure_count: usize,
    error: Option<RowError>,
}

/// A JSON object with its values left as raw text.
type RawMap<'a> = std::collections::BTreeMap<String, &'a RawValue>;

fn raw_map<'a>(raw: Option<&&'a RawValue>) -> Option<RawMap<'a>> {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
}

fn raw_str(raw: Option<&&RawValue>) -> Option<String> {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
}

/// The row's id: top-level, else `metadata.id` (Reasoning Gym), else `extra_info.id` (verl).
fn row_id(row: &RawMap<'_>) -> Json {
    let found = row.get("id").copied().or_else(|| {
        ["metadata", "extra_info"]
            .iter()
            .find_map(|h| raw_map(row.get(*h)).and_then(|m| m.get("id").copied()))
    });
    found
        .and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or(Json::Null)
}

/// The resyn row text inside a Reasoning Gym (`metadata.row_json`) or verl
/// (`extra_info.row_json`) row; `None` for a resyn row.
fn wrapped_row_json(row: &RawMap<'_>) -> Result<Option<String>, RowError> {
    if row.contains_key("instance") {
        return Ok(None);
    }
    for holder in ["metadata", "extra_info"] {
        if let Some(text) = raw_map(row.get(holder)).and_then(|m| raw_str(m.get("row_json"))) {
            return Ok(Some(text));
        }
    }
    Err(row_err(
        "row.invalid",
        "the row has no `instance` (nor `metadata.row_json` / `extra_info.row_json`)",
    ))
}

fn verify_row(
    cenv: &CEnv,
    row: &RawMap<'_>,
    mode: resyn_runtime::ExtractMode,
) -> Result<Outcome, RowError> {
    let env = &cenv.ir;
    let owned = wrapped_row_json(row)?;
    let unwrapped: RawMap<'_>;
    let inner: &RawMap<'_> = match &owned {
        None => row,
        Some(text) => {
            unwrapped = serde_json::from_str(text).map_err(|e| {
                row_err("row.invalid", format!("row_json is not a JSON object: {e}"))
            })?;
            &unwrapped
        }
    };
    if let Some(name) = raw_str(inner.get("env")) {
        if name != env.name {
            return Err(row_err(
                "row.env",
                format!("the row is for env `{name}`, not `{}`", env.name),
            ));
        }
    }
    // Params: as recorded, else the level's defaults.
    let params = match raw_map(inner.get("params")) {
        Some(obj) => env
            .params
            .iter()
            .map(|p| {
                let j = obj.get(&p.name).ok_or_else(|| {
                    row_err("row.instance", format!("params has no `{}`", p.name))
                })?;
                resyn_runtime::decode(j.get(), &ty_shape(&p.ty))
                    .map_err(|e| row_err("row.instance", format!("param `{}`: {e}", p.name)))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => {
            let level = inner
                .get("level")
                .and_then(|r| serde_json::from_str::<u64>(r.get()).ok())
                .unwrap_or(1)
                .clamp(1, 5) as u8;
            cenv.resolve_params(level, &[])
                .map_err(|e| row_err("row.instance", e.to_string()))?
        }
    };
    let shown = raw_map(inner.get("instance"));
    let hidden = raw_map(inner.get("hidden"));
    let mut fields = Vec::new();
    for f in &env.fields {
        let j = shown
            .as_ref()
            .and_then(|m| m.get(&f.name))
            .or_else(|| hidden.as_ref().and_then(|m| m.get(&f.name)))
            .ok_or_else(|| row_err("row.instance", format!("the instance has no `{}`", f.name)))?;
        let v = resyn_runtime::decode(j.get(), &ty_shape(&f.ty))
            .map_err(|e| row_err("row.instance", format!("instance value `{}`: {e}", f.name)))?;
        fields.push(v);
    }
    let shape = cenv
        .answer_shape(&params, &fields)
        .map_err(|e| row_err("row.instance", e.message))?;
    let answer = if let Some(raw) = row.get("response") {
        let text: String = serde_json::from_str(raw.get())
            .map_err(|_| row_err("row.invalid", "`response` must be a string"))?;
        let ex = resyn_runtime::extract(&text, mode)
            .map_err(|e| row_err("answer.extract", e.to_string()))?;
        resyn_runtime::decode_answer(ex.text, &shape)
            .map_err(|e| row_err("answer.decode", e.to_string()))?
    } else if owned.is_some()
        && raw_map(row.get("metadata")).is_some_and(|m| m.contains_key("row_json"))
    {
        // A Reasoning Gym row's `answer` column is its ground truth, never a candidate:
        // scoring it would grade the dataset against itself.
        return Err(row_err(
            "row.invalid",
            "a Reasoning Gym row carries the model's text in `response`; its `answer` is the ground truth",
        ));
    } else if let Some(raw) = row.get("answer") {
        resyn_runtime::decode(raw.get(), &shape)
            .map_err(|e| row_err("answer.decode", e.to_string()))?
    } else {
        return Err(row_err(
            "row.invalid",
            "the row has neither `response` nor `answer`",
        ));
    };
    let v = cenv.verify(&params, &fields, answer);
    Ok(Outcome {
        id: row_id(inner),
        score: v.score,
        valid: v.valid,
        failures: v
            .failures
            .iter()
            .map(|f| json!({"constraint": env.constraint_text.get(f.constraint).cloned().unwrap_or_default(), "message": f.message}))
            .collect(),
        failure_count: v.failure_count,
        error: v.error.map(|m| row_err("verify.runtime", m)),
    })
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
            return serde_json::from_str(text)
                .map_err(|e| row_err("row.invalid", format!("row_json is not JSON: {e}")));
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
            let mut mine = row(&req, env, &plan, index, inst, None);
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
                    .map_err(|e| row_err("row.instance", e.message))?;
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
