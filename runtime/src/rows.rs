//! Rows: instance rows in the resyn, Reasoning Gym and verl forms, and the verification of
//! answer rows. Shared by `resyn gen` / `resyn verify` and by emitted binaries, so both
//! write the same bytes (spec/formats.md §3, §6). Rows are JSON objects with sorted keys
//! (serde_json's default map), so the same inputs give byte-identical output.

use crate::env::{EnvMeta, Environment, GenError, Instance};
use crate::extract::ExtractMode;
use crate::shape::{decode, decode_answer, encode, to_json_string, Shape};
use crate::value::Value;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};
use std::io::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Resyn,
    ReasoningGym,
    Verl,
}

/// `--levels A..B` (inclusive, within 1..5, low to high).
pub fn parse_levels(s: &str) -> Result<(u8, u8), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or("write levels as A..B, e.g. 1..5")?;
    let p = |x: &str| {
        x.trim_start_matches('=')
            .parse::<u8>()
            .ok()
            .filter(|l| (1..=5).contains(l))
    };
    match (p(a), p(b)) {
        (Some(a), Some(b)) if a <= b => Ok((a, b)),
        _ => Err("levels are 1..5, low to high, e.g. 2..4".into()),
    }
}

/// `--param name=value`.
pub fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or("write params as name=value")?;
    Ok((k.trim().to_string(), v.to_string()))
}

/// Parses a `--param name=value` value for a param of shape `shape` (`ty` as written).
pub fn parse_param(text: &str, shape: &Shape, ty: &str) -> Result<Value, String> {
    let t = text.trim();
    match shape {
        Shape::Int { .. } => t
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| format!("`{t}` is not an int")),
        Shape::Float => match t.parse::<f64>() {
            // -0.0 is normalised like every computed float (language.md §10.3).
            Ok(f) if f.is_finite() => Ok(Value::Float(if f == 0.0 { 0.0 } else { f })),
            _ => Err(format!("`{t}` is not a finite float")),
        },
        Shape::Bool => match t {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("`{t}` is not `true` or `false`")),
        },
        Shape::Str { .. } => Ok(Value::str(text)),
        _ => Err(format!("params of type `{ty}` cannot be set")),
    }
}

/// Parses `--param` overrides against the env's params (unknown names are errors).
pub fn parse_overrides(
    meta: &EnvMeta,
    raw: &[(String, String)],
) -> Result<Vec<(String, Value)>, GenError> {
    raw.iter()
        .map(|(name, text)| {
            let p = meta
                .params
                .iter()
                .find(|p| p.name == *name)
                .ok_or_else(|| GenError::Param {
                    name: name.clone(),
                    level: None,
                    message: format!(
                        "no such param in env `{}` (params: {})",
                        meta.name,
                        meta.params
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
            parse_param(text, &p.shape, &p.ty)
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
pub fn canonical_params(meta: &EnvMeta, params: &[Value]) -> String {
    let mut pairs: Vec<(&str, String)> = meta
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

/// What every instance of one level shares: the level, its canonical params text (hashed
/// into each seed) and the prefix of its ids.
#[derive(Clone, Debug)]
pub struct Plan {
    pub level: u8,
    pub params_json: String,
    /// `ENV-LLEVEL`, plus `-pHASH` when the params differ from the level's own (`--param`),
    /// so datasets made with different overrides never share an id.
    pub id_prefix: String,
}

impl Plan {
    pub fn new(env: &dyn Environment, level: u8, params: &[Value]) -> Plan {
        let meta = env.meta();
        let params_json = canonical_params(meta, params);
        let own = env.resolve_params(level, &[]).ok();
        let id_prefix = if own.as_deref() == Some(params) {
            format!("{}-L{level}", meta.name)
        } else {
            let digest = Sha256::digest(params_json.as_bytes());
            let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
            format!("{}-L{level}-p{short}", meta.name)
        };
        Plan {
            level,
            params_json,
            id_prefix,
        }
    }

    pub fn id(&self, seed: u64, index: u64) -> String {
        format!("{}-s{seed}-{index}", self.id_prefix)
    }
}

/// Provenance and form shared by every row of a run.
#[derive(Clone, Copy, Debug)]
pub struct RowContext<'a> {
    pub seed: u64,
    pub source_hash: &'a str,
    /// The version of resyn that compiled the env (emitted code records its compiler's).
    pub resyn_version: &'a str,
    pub format: Format,
}

/// The row of one instance (spec/formats.md §3). `proof` is attached to resyn rows as is.
pub fn instance_row(
    ctx: &RowContext<'_>,
    meta: &EnvMeta,
    plan: &Plan,
    index: u64,
    inst: &Instance,
    proof: Option<Json>,
) -> Json {
    let level = plan.level;
    let mut shown = Map::new();
    let mut hidden = Map::new();
    for (f, v) in meta.fields.iter().zip(&inst.fields) {
        if f.shown {
            shown.insert(f.name.clone(), encode(v));
        } else {
            hidden.insert(f.name.clone(), encode(v));
        }
    }
    let params: Json = serde_json::from_str(&plan.params_json).unwrap_or(Json::Null);
    let id = plan.id(ctx.seed, index);
    let witness = inst.witness.as_ref().map(encode).unwrap_or(Json::Null);
    let mut base = json!({
        "id": id,
        "env": meta.name,
        "level": level,
        "seed": ctx.seed,
        "index": index,
        "params": params,
        "instance": shown,
        "hidden": hidden,
        "question": inst.question,
        "witness": witness,
        "category": meta.category,
        "require": meta.requirement.as_str(),
        "source_hash": ctx.source_hash,
        "resyn_version": ctx.resyn_version,
    });
    if let Some(p) = proof {
        base["proof"] = p;
    }
    let witness_text = inst
        .witness
        .as_ref()
        .map(to_json_string)
        .unwrap_or_default();
    match ctx.format {
        Format::Resyn => base,
        // Fixed column types across environments: nested per-env data travels as JSON text.
        Format::ReasoningGym => json!({
            "question": inst.question,
            "answer": witness_text,
            "metadata": {
                "id": base["id"], "env": meta.name, "level": level, "seed": ctx.seed, "index": index,
                "source_hash": ctx.source_hash, "resyn_version": ctx.resyn_version,
                "row_json": base.to_string(),
            },
        }),
        Format::Verl => json!({
            "data_source": format!("resyn/{}", meta.name),
            "prompt": [{"role": "user", "content": inst.question}],
            "ability": if meta.category.is_empty() { "reasoning".to_string() } else { meta.category.clone() },
            "reward_model": {"style": "rule", "ground_truth": witness_text},
            "extra_info": {
                "id": base["id"], "env": meta.name, "level": level, "seed": ctx.seed, "index": index,
                "source_hash": ctx.source_hash, "resyn_version": ctx.resyn_version,
                "instance_json": Json::Object(shown_and_hidden(&base)).to_string(),
                "row_json": base.to_string(),
            },
        }),
    }
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

pub fn row_err(code: &'static str, message: impl Into<String>) -> RowError {
    RowError {
        code,
        message: message.into(),
    }
}

/// Largest input row accepted.
pub const MAX_ROW_BYTES: usize = 16 * 1024 * 1024;

/// Verifies one input line. Never fails: problems become a row `error`.
/// `extract` overrides the env's extraction mode for this run (`--extract`).
pub fn verify_line(env: &dyn Environment, line: &str, extract: Option<ExtractMode>) -> Json {
    // Only the top level is tokenised; values stay raw slices of `line` and are decoded
    // once, against their types (no intermediate JSON tree, no re-serialisation).
    let parsed: Result<RawMap<'_>, RowError> = if line.len() > MAX_ROW_BYTES {
        Err(too_large(line.len()))
    } else {
        serde_json::from_str(line)
            .map_err(|e| row_err("row.invalid", format!("not a JSON object: {e}")))
    };
    let id = parsed.as_ref().ok().map_or(Json::Null, row_id);
    let mode = extract.unwrap_or(env.meta().extract);
    let outcome = parsed.and_then(|r| verify_row(env, &r, mode));
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

pub fn too_large(len: usize) -> RowError {
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
    env: &dyn Environment,
    row: &RawMap<'_>,
    mode: ExtractMode,
) -> Result<Outcome, RowError> {
    let meta = env.meta();
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
        if name != meta.name {
            return Err(row_err(
                "row.env",
                format!("the row is for env `{name}`, not `{}`", meta.name),
            ));
        }
    }
    // Params: as recorded, else the level's defaults.
    let params = match raw_map(inner.get("params")) {
        Some(obj) => meta
            .params
            .iter()
            .map(|p| {
                let j = obj.get(&p.name).ok_or_else(|| {
                    row_err("row.instance", format!("params has no `{}`", p.name))
                })?;
                decode(j.get(), &p.shape)
                    .map_err(|e| row_err("row.instance", format!("param `{}`: {e}", p.name)))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => {
            let level = inner
                .get("level")
                .and_then(|r| serde_json::from_str::<u64>(r.get()).ok())
                .unwrap_or(1)
                .clamp(1, 5) as u8;
            env.resolve_params(level, &[])
                .map_err(|e| row_err("row.instance", e.to_string()))?
        }
    };
    let shown = raw_map(inner.get("instance"));
    let hidden = raw_map(inner.get("hidden"));
    let mut fields = Vec::new();
    for f in &meta.fields {
        let j = shown
            .as_ref()
            .and_then(|m| m.get(&f.name))
            .or_else(|| hidden.as_ref().and_then(|m| m.get(&f.name)))
            .ok_or_else(|| row_err("row.instance", format!("the instance has no `{}`", f.name)))?;
        let v = decode(j.get(), &f.shape)
            .map_err(|e| row_err("row.instance", format!("instance value `{}`: {e}", f.name)))?;
        fields.push(v);
    }
    let shape = env
        .answer_shape(&params, &fields)
        .map_err(|e| row_err("row.instance", *e.message))?;
    let answer = if let Some(raw) = row.get("response") {
        let text: String = serde_json::from_str(raw.get())
            .map_err(|_| row_err("row.invalid", "`response` must be a string"))?;
        let ex = crate::extract::extract(&text, mode)
            .map_err(|e| row_err("answer.extract", e.to_string()))?;
        decode_answer(ex.text, &shape).map_err(|e| row_err("answer.decode", e.to_string()))?
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
        decode(raw.get(), &shape).map_err(|e| row_err("answer.decode", e.to_string()))?
    } else {
        return Err(row_err(
            "row.invalid",
            "the row has neither `response` nor `answer`",
        ));
    };
    let v = env.verify(&params, &fields, answer);
    Ok(Outcome {
        id: row_id(inner),
        score: v.score,
        valid: v.valid,
        failures: v
            .failures
            .iter()
            .map(|f| json!({"constraint": meta.constraint_text.get(f.constraint).cloned().unwrap_or_default(), "message": f.message}))
            .collect(),
        failure_count: v.failure_count,
        error: v.error.map(|m| row_err("verify.runtime", m)),
    })
}

// ------------------------------------------------------------------ batch drivers

/// Instances generated between two hand-overs to `emit`: bounds memory whatever the count,
/// while keeping every worker busy.
pub const CHUNK: u64 = 4096;

/// Instances a worker handles in a row, in index order, with one state: batch `b` of a plan
/// is the indices `b * BATCH .. (b + 1) * BATCH`. A worker may thus reuse costly state
/// within a batch (the prover's Z3 context) and still give output that does not depend on
/// `jobs`: what a batch sees depends only on the batch. Divides [`CHUNK`].
pub const BATCH: u64 = 32;
const _: () = assert!(
    CHUNK.is_multiple_of(BATCH),
    "a batch never straddles two chunks"
);

/// Runs `work(state, plan, index)` for every plan (`0..plans`) and index (`0..n`), in that
/// order, in chunks of [`CHUNK`], on `jobs` threads, each with a state of its own made by
/// `init` (values are not `Send`, so each worker builds its env itself); hands the results
/// to `emit` in order, which returns false to stop. The output does not depend on `jobs`.
/// The indices of one [`BATCH`] go to one worker, one after the other, in order.
pub fn run_chunked<S, T: Send>(
    plans: usize,
    n: u64,
    jobs: usize,
    init: &(dyn Fn() -> S + Sync),
    work: &(dyn Fn(&mut S, usize, u64) -> T + Sync),
    emit: &mut dyn FnMut(T) -> bool,
) -> Result<(), String> {
    use rayon::prelude::*;
    let pool = if jobs > 1 {
        Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(jobs)
                .build()
                .map_err(|e| format!("thread pool: {e}"))?,
        )
    } else {
        None
    };
    let mut state = if pool.is_none() { Some(init()) } else { None };
    for p in 0..plans {
        let mut start = 0u64;
        while start < n {
            let end = start.saturating_add(CHUNK).min(n);
            let results: Vec<T> = match (&pool, &mut state) {
                (Some(pool), _) => pool.install(|| {
                    let batches: Vec<Vec<T>> = (start / BATCH..end.div_ceil(BATCH))
                        .into_par_iter()
                        .map_init(init, |st, b| {
                            let first = b * BATCH;
                            (first..first.saturating_add(BATCH).min(end))
                                .map(|i| work(st, p, i))
                                .collect()
                        })
                        .collect();
                    batches.into_iter().flatten().collect()
                }),
                (None, Some(st)) => (start..end).map(|i| work(st, p, i)).collect(),
                (None, None) => Vec::new(),
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

/// Why [`map_rows`] stopped.
#[derive(Debug)]
pub enum MapError {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Streams the JSONL rows of `input` through `per_row` into `out`, one output row per
/// non-blank input line, and shows each output row to `tally`. Lines are read with a
/// bounded reader: an oversized line becomes a `row.too_large` row without being held in
/// memory; a bad row never stops the batch.
pub fn map_rows(
    input: &mut impl std::io::BufRead,
    out: &mut dyn Write,
    per_row: &mut dyn FnMut(&str) -> Json,
    tally: &mut dyn FnMut(&Json),
) -> Result<(), MapError> {
    let mut line = Vec::new();
    while let Some(len) = read_row(input, &mut line).map_err(MapError::Read)? {
        let text = String::from_utf8_lossy(&line);
        if len == text.len() && text.trim().is_empty() {
            continue;
        }
        let r = if len > MAX_ROW_BYTES {
            oversized_row(len)
        } else {
            per_row(&text)
        };
        tally(&r);
        writeln!(out, "{r}").map_err(MapError::Write)?;
    }
    out.flush().map_err(MapError::Write)
}

/// Counts of a `verify` run, for its summary line.
#[derive(Default, Debug)]
pub struct VerifyTally {
    pub rows: usize,
    pub valid: usize,
    pub errors: usize,
    pub total_score: f64,
}

impl VerifyTally {
    pub fn add(&mut self, r: &Json) {
        self.rows += 1;
        self.valid += usize::from(r["valid"] == true);
        self.errors += usize::from(!r["error"].is_null());
        self.total_score += r["score"].as_f64().unwrap_or(0.0);
    }

    pub fn summary(&self) -> String {
        format!(
            "verified {} row(s): {} valid, {} with errors, mean score {:.4}",
            self.rows,
            self.valid,
            self.errors,
            if self.rows == 0 {
                0.0
            } else {
                self.total_score / self.rows as f64
            }
        )
    }
}

/// Opens where a driver writes JSONL: the file at `path`, or stdout.
pub fn open_output(path: Option<&std::path::Path>) -> Result<Box<dyn Write>, String> {
    match path {
        Some(p) => std::fs::File::create(p)
            .map(|f| Box::new(std::io::BufWriter::new(f)) as Box<dyn Write>)
            .map_err(|e| format!("cannot write `{}`: {e}", p.display())),
        None => Ok(Box::new(std::io::BufWriter::new(std::io::stdout().lock()))),
    }
}

/// The output of a generation run. It is opened on the first row, so a run that fails
/// before producing anything (a bad param, say) leaves no empty file behind; a run whose
/// every instance failed still leaves the (empty) file it was asked for.
pub struct RowSink<'p> {
    path: Option<&'p std::path::Path>,
    out: Option<Box<dyn Write>>,
    /// Rows written so far.
    pub written: u64,
}

impl<'p> RowSink<'p> {
    pub fn new(path: Option<&'p std::path::Path>) -> Self {
        RowSink {
            path,
            out: None,
            written: 0,
        }
    }

    /// Writes one row (a line); the error is a message for the user.
    pub fn write(&mut self, row: &str) -> Result<(), String> {
        if self.out.is_none() {
            self.out = Some(open_output(self.path)?);
        }
        let w = self.out.as_mut().expect("opened above");
        writeln!(w, "{row}").map_err(|_| "cannot write the output".to_string())?;
        self.written += 1;
        Ok(())
    }

    /// Flushes what was written, or creates the empty file when nothing was.
    pub fn finish(self) -> Result<(), String> {
        match self.out {
            Some(mut w) => w.flush().map_err(|_| "cannot write the output".to_string()),
            None if self.path.is_some() => open_output(self.path).map(drop),
            None => Ok(()),
        }
    }
}
