//! Rows: instance rows in the resyn, Reasoning Gym and verl forms, and the verification of
//! answer rows. Shared by `resyn gen` / `resyn verify` and by emitted binaries, so both
//! write the same bytes (spec/formats.md §3, §6). Rows are JSON objects with sorted keys
//! (serde_json's default map), so the same inputs give byte-identical output.
//!
//! The row loops are the hot path of `gen` and `verify`, so the rows they write are not
//! built as serde_json trees: [`instance_row_text`] and [`VerifiedRow::write_json`] write
//! the text that printing the tree ([`instance_row`], [`VerifiedRow::to_json`]) gives,
//! member by member, with numbers and strings still printed by serde_json; tests compare
//! the two forms. A plain verify row is read in one pass (`read_plain_row`); any other
//! row, or any problem, is read again the general way, which writes the messages.

use crate::env::{EnvMeta, Environment, GenError, Instance};
use crate::extract::{ExtractMode, MAX_RESPONSE_BYTES};
use crate::shape::fast::Seed as ValueSeed;
use crate::shape::{
    decode, decode_answer, encode, encoded_object, put, to_json_string, write_encoded, Shape,
};
use crate::value::Value;
use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, Visitor,
};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
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

/// The most worker threads `--jobs` may ask for: a bound on what a typo (`--jobs 1000000`)
/// can make the process start, each worker with an env of its own.
pub const MAX_JOBS: usize = 1024;

/// `--jobs J`: 0 to [`MAX_JOBS`] (0 and 1 both mean one thread).
pub fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(j) if j <= MAX_JOBS => Ok(j),
        _ => Err(format!(
            "expected a number of worker threads from 0 to {MAX_JOBS}"
        )),
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
    /// The `params` member of every row of this plan, as rows print it (`params_json`
    /// read back and printed by serde_json): made once here, not per row.
    pub params_row: String,
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
        let params_row = serde_json::from_str::<Json>(&params_json)
            .unwrap_or(Json::Null)
            .to_string();
        Plan {
            level,
            params_json,
            id_prefix,
            params_row,
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

/// [`instance_row`]'s text, `instance_row(..).to_string()` byte for byte, written
/// directly: the generators' rows are made here. Members are written in ascending key
/// order, values by [`write_encoded`], numbers and strings by serde_json (tests compare
/// the two functions on every example and form).
pub fn instance_row_text(
    ctx: &RowContext<'_>,
    meta: &EnvMeta,
    plan: &Plan,
    index: u64,
    inst: &Instance,
    proof: Option<&Json>,
) -> String {
    let mut base = Vec::with_capacity(1024);
    let members = |shown: bool| {
        meta.fields
            .iter()
            .zip(&inst.fields)
            .filter(move |(f, _)| f.shown == shown)
            .map(|(f, v)| (f.name.as_str(), v))
    };
    let id = plan.id(ctx.seed, index);
    base.extend_from_slice(b"{\"category\":");
    put(&mut base, &meta.category);
    base.extend_from_slice(b",\"env\":");
    put(&mut base, &meta.name);
    base.extend_from_slice(b",\"hidden\":");
    let hidden_at = base.len();
    encoded_object(&mut base, members(false));
    let hidden = hidden_at..base.len();
    base.extend_from_slice(b",\"id\":");
    put(&mut base, &id);
    base.extend_from_slice(b",\"index\":");
    put(&mut base, &index);
    base.extend_from_slice(b",\"instance\":");
    let shown_at = base.len();
    encoded_object(&mut base, members(true));
    let shown = shown_at..base.len();
    base.extend_from_slice(b",\"level\":");
    put(&mut base, &plan.level);
    base.extend_from_slice(b",\"params\":");
    base.extend_from_slice(plan.params_row.as_bytes());
    if let Some(p) = proof {
        base.extend_from_slice(b",\"proof\":");
        put(&mut base, p);
    }
    base.extend_from_slice(b",\"question\":");
    put(&mut base, &inst.question);
    base.extend_from_slice(b",\"require\":");
    put(&mut base, meta.requirement.as_str());
    base.extend_from_slice(b",\"resyn_version\":");
    put(&mut base, ctx.resyn_version);
    base.extend_from_slice(b",\"seed\":");
    put(&mut base, &ctx.seed);
    base.extend_from_slice(b",\"source_hash\":");
    put(&mut base, ctx.source_hash);
    base.extend_from_slice(b",\"witness\":");
    match &inst.witness {
        Some(w) => write_encoded(&mut base, w),
        None => base.extend_from_slice(b"null"),
    }
    base.push(b'}');
    let base = text_of(base);
    let witness_text = || {
        inst.witness
            .as_ref()
            .map(to_json_string)
            .unwrap_or_default()
    };
    // The members the export forms copy from the resyn row, from `env` to `source_hash`
    // in key order; `extra` (`instance_json`) goes between `index` and `level`.
    let copies = |out: &mut Vec<u8>, extra: Option<&str>| {
        out.extend_from_slice(b"\"env\":");
        put(out, &meta.name);
        out.extend_from_slice(b",\"id\":");
        put(out, &id);
        out.extend_from_slice(b",\"index\":");
        put(out, &index);
        if let Some(text) = extra {
            out.extend_from_slice(b",\"instance_json\":");
            put(out, text);
        }
        out.extend_from_slice(b",\"level\":");
        put(out, &plan.level);
        out.extend_from_slice(b",\"resyn_version\":");
        put(out, ctx.resyn_version);
        out.extend_from_slice(b",\"row_json\":");
        put(out, &base);
        out.extend_from_slice(b",\"seed\":");
        put(out, &ctx.seed);
        out.extend_from_slice(b",\"source_hash\":");
        put(out, ctx.source_hash);
    };
    match ctx.format {
        Format::Resyn => base,
        Format::ReasoningGym => {
            let mut out = Vec::with_capacity(2 * base.len() + 256);
            out.extend_from_slice(b"{\"answer\":");
            put(&mut out, &witness_text());
            out.extend_from_slice(b",\"metadata\":{");
            copies(&mut out, None);
            out.extend_from_slice(b"},\"question\":");
            put(&mut out, &inst.question);
            out.push(b'}');
            text_of(out)
        }
        Format::Verl => {
            // `{"hidden":…,"instance":…,"params":…}`, the parts cut from the resyn row.
            let part = |r: &std::ops::Range<usize>| &base[r.clone()];
            let instance_json = format!(
                "{{\"hidden\":{},\"instance\":{},\"params\":{}}}",
                part(&hidden),
                part(&shown),
                plan.params_row
            );
            let mut out = Vec::with_capacity(3 * base.len() + 256);
            out.extend_from_slice(b"{\"ability\":");
            put(
                &mut out,
                if meta.category.is_empty() {
                    "reasoning"
                } else {
                    &meta.category
                },
            );
            out.extend_from_slice(b",\"data_source\":");
            put(&mut out, &format!("resyn/{}", meta.name));
            out.extend_from_slice(b",\"extra_info\":{");
            copies(&mut out, Some(&instance_json));
            out.extend_from_slice(b"},\"prompt\":[{\"content\":");
            put(&mut out, &inst.question);
            out.extend_from_slice(b",\"role\":\"user\"}],\"reward_model\":{\"ground_truth\":");
            put(&mut out, &witness_text());
            out.extend_from_slice(b",\"style\":\"rule\"}}");
            text_of(out)
        }
    }
}

/// The text of bytes made of serde_json's output and ASCII punctuation: always UTF-8
/// (checked, not assumed; a failure cannot happen and would only replace characters).
fn text_of(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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

/// The output row of one input row (spec/formats.md §6). [`VerifiedRow::write_json`]
/// writes its JSON text straight into a byte buffer (the row loop reuses one buffer for
/// every row); [`VerifiedRow::to_json`] is the same row as a JSON value.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedRow {
    /// The input row's id (`null` when it has none).
    pub id: Json,
    pub score: f64,
    pub valid: bool,
    /// The reported failures: (constraint text, message).
    pub failures: Vec<(String, String)>,
    pub failure_count: usize,
    pub error: Option<RowError>,
}

impl VerifiedRow {
    /// The row of an input row that could not be verified: score 0 and the error.
    pub fn failed(id: Json, e: RowError) -> VerifiedRow {
        VerifiedRow {
            id,
            score: 0.0,
            valid: false,
            failures: Vec::new(),
            failure_count: 0,
            error: Some(e),
        }
    }

    pub fn to_json(&self) -> Json {
        json!({
            "id": self.id,
            "score": self.score,
            "valid": self.valid,
            "failures": self
                .failures
                .iter()
                .map(|(c, m)| json!({"constraint": c, "message": m}))
                .collect::<Vec<_>>(),
            "failure_count": self.failure_count,
            "error": self
                .error
                .as_ref()
                .map_or(Json::Null, |e| json!({"code": e.code, "message": e.message})),
        })
    }

    /// Appends the row's JSON text: exactly `to_json().to_string()` (members in ascending
    /// key order; numbers, strings and the id written by serde_json itself, so every byte
    /// is the same), without building the JSON value first.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"error\":");
        match &self.error {
            None => out.extend_from_slice(b"null"),
            Some(e) => {
                out.extend_from_slice(b"{\"code\":");
                put(out, e.code);
                out.extend_from_slice(b",\"message\":");
                put(out, &e.message);
                out.push(b'}');
            }
        }
        out.extend_from_slice(b",\"failure_count\":");
        put(out, &self.failure_count);
        out.extend_from_slice(b",\"failures\":[");
        for (i, (c, m)) in self.failures.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"constraint\":");
            put(out, c);
            out.extend_from_slice(b",\"message\":");
            put(out, m);
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"id\":");
        put(out, &self.id);
        out.extend_from_slice(b",\"score\":");
        // As `json!` has it: a non-finite score would be `null` (none is).
        put(out, &self.score);
        out.extend_from_slice(if self.valid {
            b",\"valid\":true}"
        } else {
            b",\"valid\":false}"
        });
    }
}

/// A row the row loop ([`map_rows`]) writes.
pub trait OutRow {
    /// Appends the row's compact JSON text (no newline).
    fn write_json(&self, out: &mut Vec<u8>);
    /// The row for an input line of `len` bytes that [`read_row`] refused to hold.
    fn oversized(len: usize) -> Self;
}

impl OutRow for VerifiedRow {
    fn write_json(&self, out: &mut Vec<u8>) {
        VerifiedRow::write_json(self, out)
    }
    fn oversized(len: usize) -> Self {
        VerifiedRow::failed(Json::Null, too_large(len))
    }
}

impl OutRow for Json {
    fn write_json(&self, out: &mut Vec<u8>) {
        put(out, self)
    }
    fn oversized(len: usize) -> Self {
        oversized_row(len)
    }
}

/// Verifies one input line, as a JSON value: [`verify_row_of_line`]'s row.
pub fn verify_line(env: &dyn Environment, line: &str, extract: Option<ExtractMode>) -> Json {
    verify_row_of_line(env, line, extract).to_json()
}

/// Verifies one input line. Never fails: problems become a row `error`.
/// `extract` overrides the env's extraction mode for this run (`--extract`).
pub fn verify_row_of_line(
    env: &dyn Environment,
    line: &str,
    extract: Option<ExtractMode>,
) -> VerifiedRow {
    verify_line_with(env, line, extract, true)
}

/// [`verify_row_of_line`] without the one-pass reading of plain rows: every row read the
/// general way. For the tests that compare the two.
#[doc(hidden)]
pub fn verify_line_reference(
    env: &dyn Environment,
    line: &str,
    extract: Option<ExtractMode>,
) -> VerifiedRow {
    verify_line_with(env, line, extract, false)
}

fn verify_line_with(
    env: &dyn Environment,
    line: &str,
    extract: Option<ExtractMode>,
    one_pass: bool,
) -> VerifiedRow {
    let line = without_bom(line);
    let mode = extract.unwrap_or(env.meta().extract);
    let plain = if one_pass {
        read_plain_row(env.meta(), line)
    } else {
        None
    };
    let (id, outcome) = match plain {
        // The common row, read in one pass (see `read_plain_row`).
        Some(row) => {
            let id = row_id(&row.rest);
            let outcome = check_env(env.meta(), &row.rest)
                .and_then(|()| finish_row(env, &row.rest, false, row.params, row.fields, mode));
            (id, outcome)
        }
        None => {
            // Only the top level is tokenised; values stay raw slices of `line` and are
            // decoded once, against their types (no intermediate JSON tree).
            let parsed: Result<RawMap<'_>, RowError> = if line.len() > MAX_ROW_BYTES {
                Err(too_large(line.len()))
            } else {
                serde_json::from_str(line)
                    .map_err(|e| row_err("row.invalid", format!("not a JSON object: {e}")))
            };
            let id = parsed.as_ref().ok().map_or(Json::Null, row_id);
            // The id of a wrapped resyn row (`row_json`) is only looked up when the row
            // has none.
            let outcome = parsed.and_then(|r| verify_row(env, &r, mode, id.is_null()));
            (id, outcome)
        }
    };
    match outcome {
        Ok(o) => VerifiedRow {
            id: match id {
                Json::Null => o.id,
                other => other,
            },
            score: o.score,
            valid: o.valid,
            failures: o.failures,
            failure_count: o.failure_count,
            error: o.error,
        },
        Err(e) => VerifiedRow::failed(id, e),
    }
}

/// The output row of a row that could not be verified: score 0 and the error.
fn error_row(id: Json, e: RowError) -> Json {
    VerifiedRow::failed(id, e).to_json()
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
    failures: Vec<(String, String)>,
    failure_count: usize,
    error: Option<RowError>,
}

/// A JSON object with its values left as raw text: its members in order, names borrowed
/// from the text unless they hold escapes. It reads like the `BTreeMap<String, &RawValue>`
/// it replaces (a repeated name means its last value) without allocating a tree node and a
/// name per member of every row.
struct RawMap<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> RawMap<'a> {
    /// The member's value (the last one, when the name repeats).
    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }

    fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawMap<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawMap<'a>;
            // The words of serde's map visitor: a row that is not an object gets the same
            // message as before.
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawMap<'a>, A::Error> {
                let mut members = Vec::new();
                while let Some(Name(k)) = m.next_key()? {
                    members.push((k, m.next_value::<&'a RawValue>()?));
                }
                Ok(RawMap(members))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A JSON string, borrowed from the text when it has no escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Name<'a>;
            // As serde's `String` says it.
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Name<'a>, E> {
                Ok(Name(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Name<'a>, E> {
                Ok(Name(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_string(V(std::marker::PhantomData))
    }
}

/// A JSON string read leniently: a lone surrogate escape (`"\ud83d"`, what JavaScript writes
/// for half of an emoji, or Python for an undecodable byte) becomes U+FFFD, as invalid
/// UTF-8 bytes in the file do (spec/formats.md §6.1). serde_json hands such a string to
/// `deserialize_bytes` as WTF-8; `from_utf8_lossy` replaces each of its bytes. Only where
/// strict [`Name`] failed: `response` text and the `id`.
struct Lossy(String);

impl<'de> Deserialize<'de> for Lossy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Lossy;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E>(self, s: &str) -> Result<Lossy, E> {
                Ok(Lossy(s.to_owned()))
            }
            fn visit_bytes<E>(self, b: &[u8]) -> Result<Lossy, E> {
                Ok(Lossy(String::from_utf8_lossy(b).into_owned()))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// A string member: strictly (borrowed where it can be), else leniently ([`Lossy`]).
fn string_of(raw: &RawValue) -> Option<Cow<'_, str>> {
    match serde_json::from_str::<Name<'_>>(raw.get()) {
        Ok(n) => Some(n.0),
        Err(_) => serde_json::from_str::<Lossy>(raw.get())
            .ok()
            .map(|l| Cow::Owned(l.0)),
    }
}

/// A line without the byte order mark that may open it: a file saved by a Windows tool
/// starts with one, and files concatenated line by line may carry one per line. It is not
/// part of the row, and a line of a mark and whitespace is blank.
fn without_bom(line: &str) -> &str {
    line.strip_prefix('\u{feff}').unwrap_or(line)
}

fn raw_map<'a>(raw: Option<&'a RawValue>) -> Option<RawMap<'a>> {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
}

fn raw_str(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    raw.and_then(|r| serde_json::from_str::<Name<'_>>(r.get()).ok())
        .map(|n| n.0)
}

/// The row's id: top-level, else `metadata.id` (Reasoning Gym), else `extra_info.id` (verl).
fn row_id(row: &RawMap<'_>) -> Json {
    let found = row.get("id").or_else(|| {
        ["metadata", "extra_info"]
            .iter()
            .find_map(|h| raw_map(row.get(h)).and_then(|m| m.get("id")))
    });
    found
        .and_then(|r| {
            serde_json::from_str(r.get()).ok().or_else(|| {
                serde_json::from_str::<Lossy>(r.get())
                    .ok()
                    .map(|l| Json::String(l.0))
            })
        })
        .unwrap_or(Json::Null)
}

/// The resyn row text inside a Reasoning Gym (`metadata.row_json`) or verl
/// (`extra_info.row_json`) row; `None` for a resyn row.
fn wrapped_row_json<'a>(row: &RawMap<'a>) -> Result<Option<Cow<'a, str>>, RowError> {
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

/// A plain resyn row read in one pass: its params and instance values decoded where they
/// stand in the text (no raw slice kept, no second tokenisation of the objects holding
/// them), every other member kept raw in `rest`.
struct PlainRow<'a> {
    rest: RawMap<'a>,
    params: Vec<Value>,
    fields: Vec<Value>,
}

/// Reads the row the common way if it can: a JSON object with `instance` (so not a
/// wrapped export row), `params` holding every param, every field in `instance` or
/// `hidden`, each decoding by the fast pass, and none of those names repeated. Then
/// [`verify_row`] would find exactly these values (it looks a field up in `instance`
/// first, then in `hidden`; a member that is no param or field is only checked to be
/// JSON, as a raw value is). Anything else, errors included, answers `None` and
/// `verify_row` reads the row again from the start, which keeps every message and the
/// order in which problems are reported.
fn read_plain_row<'a>(meta: &EnvMeta, line: &'a str) -> Option<PlainRow<'a>> {
    // A value's text may be at most MAX_RESPONSE_BYTES long (`decode` refuses more); no
    // value is longer than its row, so a row within that size needs no check per value.
    if line.len() > MAX_RESPONSE_BYTES {
        return None;
    }
    let mut de = serde_json::Deserializer::from_str(line);
    let row = PlainSeed(meta).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(row)
}

struct PlainSeed<'m>(&'m EnvMeta);

impl<'de> DeserializeSeed<'de> for PlainSeed<'_> {
    type Value = PlainRow<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PlainRow<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PlainSeed<'_> {
    type Value = PlainRow<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a row")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<PlainRow<'de>, A::Error> {
        let meta = self.0;
        let params_seed = Members(meta.params.iter().map(|p| (&*p.name, &p.shape)).collect());
        let fields_seed = Members(meta.fields.iter().map(|f| (&*f.name, &f.shape)).collect());
        let (mut params, mut shown, mut hidden) = (None, None, None);
        let mut rest = Vec::new();
        while let Some(Name(k)) = m.next_key()? {
            let (slot, seed) = match &*k {
                "params" => (&mut params, &params_seed),
                "instance" => (&mut shown, &fields_seed),
                "hidden" => (&mut hidden, &fields_seed),
                _ => {
                    rest.push((k, m.next_value::<&'de RawValue>()?));
                    continue;
                }
            };
            if slot.is_some() {
                return Err(A::Error::custom("repeated"));
            }
            *slot = Some(m.next_value_seed(seed)?);
        }
        let missing = || A::Error::custom("missing");
        let shown = shown.ok_or_else(missing)?;
        let params = params
            .ok_or_else(missing)?
            .into_iter()
            .collect::<Option<Vec<Value>>>()
            .ok_or_else(missing)?;
        let mut hidden = hidden.unwrap_or_default();
        let fields = shown
            .into_iter()
            .enumerate()
            .map(|(i, v)| v.or_else(|| hidden.get_mut(i).and_then(Option::take)))
            .collect::<Option<Vec<Value>>>()
            .ok_or_else(missing)?;
        Ok(PlainRow {
            rest: RawMap(rest),
            params,
            fields,
        })
    }
}

/// An object whose members named in the list are decoded by their shapes (each at most
/// once); other members are skipped (checked to be JSON, as a raw value is).
struct Members<'m>(Vec<(&'m str, &'m Shape)>);

impl<'de> DeserializeSeed<'de> for &Members<'_> {
    type Value = Vec<Option<Value>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Option<Value>>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for &Members<'_> {
    type Value = Vec<Option<Value>>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Vec<Option<Value>>, A::Error> {
        let mut out: Vec<Option<Value>> = vec![None; self.0.len()];
        while let Some(Name(k)) = m.next_key()? {
            match self.0.iter().position(|(name, _)| *name == k) {
                Some(i) if out[i].is_some() => return Err(A::Error::custom("repeated")),
                Some(i) => out[i] = Some(m.next_value_seed(ValueSeed(self.0[i].1))?),
                None => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// `want_id`: look up the inner row's id (the caller has none).
fn verify_row(
    env: &dyn Environment,
    row: &RawMap<'_>,
    mode: ExtractMode,
    want_id: bool,
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
    check_env(meta, inner)?;
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
    let id = if want_id { row_id(inner) } else { Json::Null };
    let mut outcome = finish_row(env, row, owned.is_some(), params, fields, mode)?;
    outcome.id = id;
    Ok(outcome)
}

/// A row naming another env is refused.
fn check_env(meta: &EnvMeta, inner: &RawMap<'_>) -> Result<(), RowError> {
    if let Some(name) = raw_str(inner.get("env")) {
        if name != meta.name {
            return Err(row_err(
                "row.env",
                format!("the row is for env `{name}`, not `{}`", meta.name),
            ));
        }
    }
    Ok(())
}

/// Verification once the params and instance values are known: the answer (from `row`,
/// the outer row; `wrapped`: the instance came from its `row_json`) against its type,
/// then verify. The outcome's id is left `null`.
fn finish_row(
    env: &dyn Environment,
    row: &RawMap<'_>,
    wrapped: bool,
    params: Vec<Value>,
    fields: Vec<Value>,
    mode: ExtractMode,
) -> Result<Outcome, RowError> {
    let meta = env.meta();
    let shape = env
        .answer_shape(&params, &fields)
        .map_err(|e| row_err("row.instance", *e.message))?;
    let answer = if let Some(raw) = row.get("response") {
        let text =
            string_of(raw).ok_or_else(|| row_err("row.invalid", "`response` must be a string"))?;
        let ex = crate::extract::extract(&text, mode)
            .map_err(|e| row_err("answer.extract", e.to_string()))?;
        decode_answer(ex.text, &shape).map_err(|e| row_err("answer.decode", e.to_string()))?
    } else if wrapped && raw_map(row.get("metadata")).is_some_and(|m| m.contains_key("row_json")) {
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
        id: Json::Null,
        score: v.score,
        valid: v.valid,
        failures: v
            .failures
            .into_iter()
            .map(|f| {
                let text = meta.constraint_text.get(f.constraint);
                (text.cloned().unwrap_or_default(), f.message)
            })
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
    /// The worker threads of [`map_rows_parallel`] could not be started.
    Threads(std::io::Error),
}

/// What the row loops read next (see [`next_row`]).
enum Next {
    /// The input has ended.
    End,
    /// A row too long to hold, of this many bytes: it gets the `row.too_large` row.
    Oversized(usize),
    /// A row, in the line buffer.
    Row,
}

/// Reads the next row of `input` into `line`, skipping blank lines (whitespace only, as
/// `str::trim` sees it, so invalid UTF-8 is never blank).
fn next_row(
    input: &mut std::io::BufReader<impl std::io::Read>,
    line: &mut Vec<u8>,
) -> Result<Next, MapError> {
    loop {
        let Some(len) = read_row(input, line).map_err(MapError::Read)? else {
            return Ok(Next::End);
        };
        if len > MAX_ROW_BYTES {
            return Ok(Next::Oversized(len));
        }
        // A row starts with `{`: only a line that starts otherwise is decoded to decide.
        let blank = !line.first().is_some_and(u8::is_ascii_graphic)
            && std::str::from_utf8(line).is_ok_and(|t| without_bom(t).trim().is_empty());
        if !blank {
            return Ok(Next::Row);
        }
    }
}

/// A row's text: valid UTF-8 (the common case) is checked once and borrowed; anything
/// else is read with replacement characters.
fn row_text(line: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(line) {
        Ok(t) => Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(line),
    }
}

/// Whether the next read may wait: no whole row is left in the buffer. The input may then
/// be a trainer that sends a row only once the rows so far are answered (a long-lived
/// `verify --data -` in a pipe), so the loops write and flush their answers first. Reading
/// a file, this happens once per INPUT_BUFFER bytes: one more write per MiB read.
fn may_wait(input: &std::io::BufReader<impl std::io::Read>) -> bool {
    !input.buffer().contains(&b'\n')
}

fn write_row<R: OutRow>(
    out: &mut dyn Write,
    text_out: &mut Vec<u8>,
    r: &R,
) -> Result<(), MapError> {
    text_out.clear();
    r.write_json(text_out);
    text_out.push(b'\n');
    out.write_all(text_out).map_err(MapError::Write)
}

/// Streams the JSONL rows of `input` through `per_row` into `out`, one output row per
/// non-blank input line, and shows each output row to `tally`. Lines are read with a
/// bounded reader: an oversized line becomes a `row.too_large` row without being held in
/// memory; a bad row never stops the batch. Each row is written into one reused buffer
/// and handed to `out` in one write; `out` is flushed before any read that may wait
/// ([`may_wait`]), so rows are answered as they arrive.
pub fn map_rows<R: OutRow>(
    input: &mut std::io::BufReader<impl std::io::Read>,
    out: &mut dyn Write,
    per_row: &mut dyn FnMut(&str) -> R,
    tally: &mut dyn FnMut(&R),
) -> Result<(), MapError> {
    let mut line = Vec::new();
    let mut text_out = Vec::new();
    loop {
        if may_wait(input) {
            out.flush().map_err(MapError::Write)?;
        }
        let r = match next_row(input, &mut line)? {
            Next::End => break,
            Next::Oversized(len) => R::oversized(len),
            Next::Row => per_row(&row_text(&line)),
        };
        tally(&r);
        write_row(out, &mut text_out, &r)?;
    }
    out.flush().map_err(MapError::Write)
}

/// Rows the parallel row loop reads before its workers answer them (bounds memory).
const ROW_CHUNK: usize = 4096;

/// Bytes of row text a chunk holds at most: rows may be up to [`MAX_ROW_BYTES`] each, and
/// the one-thread loop holds one row at a time, so a chunk must not hold 4,096 of them.
const CHUNK_BYTES: usize = 1 << 26;

/// [`map_rows`] on `jobs` worker threads, each with a state of its own made once by `init`
/// (values are not `Send`, so each worker compiles its env itself). Rows are read in
/// chunks of up to [`ROW_CHUNK`] rows and [`CHUNK_BYTES`] bytes; worker `k` answers the
/// `k`-th contiguous part of each chunk while this thread reads the next one, and the
/// answers are written in input order,
/// so the output and what `tally` sees do not depend on `jobs`. A chunk also ends where
/// the next read may wait ([`may_wait`]), and every answer so far is written before such a
/// read: rows are still answered as they arrive.
pub fn map_rows_parallel<S, R: OutRow + Send>(
    input: &mut std::io::BufReader<impl std::io::Read>,
    out: &mut dyn Write,
    jobs: usize,
    init: &(dyn Fn() -> S + Sync),
    per_row: &(dyn Fn(&mut S, &str) -> R + Sync),
    tally: &mut dyn FnMut(&R),
) -> Result<(), MapError> {
    if jobs <= 1 {
        let mut state = init();
        return map_rows(input, out, &mut |text| per_row(&mut state, text), tally);
    }
    std::thread::scope(|scope| {
        // One long-lived thread per job, so `init` runs once per worker (rayon's
        // `map_init` ran it per split: most of the time for a cheap row).
        // A thread that cannot be had (`--jobs` beyond what the system gives) is an error,
        // not a panic.
        let workers = (0..jobs).map(|_| {
            let (to_worker, rows) = std::sync::mpsc::channel::<Vec<ReadRow>>();
            let (answer, from_worker) = std::sync::mpsc::channel::<Vec<R>>();
            std::thread::Builder::new()
                .spawn_scoped(scope, move || {
                    let mut state = init();
                    for part in rows {
                        let answered = part
                            .iter()
                            .map(|r| match r {
                                ReadRow::Text(text) => per_row(&mut state, text),
                                ReadRow::Oversized(len) => R::oversized(*len),
                            })
                            .collect();
                        if answer.send(answered).is_err() {
                            break;
                        }
                    }
                })
                .map(|_| (to_worker, from_worker))
        });
        let (to_workers, from_workers): (Vec<_>, Vec<_>) = workers
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(MapError::Threads)?
            .into_iter()
            .unzip();
        let mut text_out = Vec::new();
        let mut collect = |busy: &mut usize, out: &mut dyn Write| {
            collect_answers(
                &from_workers[..std::mem::take(busy)],
                out,
                &mut text_out,
                tally,
            )
        };
        let mut line = Vec::new();
        let mut chunk: Vec<ReadRow> = Vec::new();
        let mut busy = 0;
        loop {
            let mut ended = false;
            let mut bytes = 0;
            while chunk.len() < ROW_CHUNK && bytes < CHUNK_BYTES {
                if may_wait(input) {
                    if !collect(&mut busy, out)? {
                        return Ok(());
                    }
                    if !chunk.is_empty() {
                        break;
                    }
                    out.flush().map_err(MapError::Write)?;
                }
                match next_row(input, &mut line)? {
                    Next::End => {
                        ended = true;
                        break;
                    }
                    Next::Oversized(len) => chunk.push(ReadRow::Oversized(len)),
                    Next::Row => {
                        bytes += line.len();
                        chunk.push(ReadRow::Text(row_text(&line).into_owned()));
                    }
                }
            }
            if !collect(&mut busy, out)? {
                return Ok(());
            }
            // Contiguous parts, the first ones one row longer: worker k gets part k.
            let (each, extra) = (chunk.len() / jobs, chunk.len() % jobs);
            let mut rest = std::mem::take(&mut chunk).into_iter();
            for (k, to_worker) in to_workers.iter().enumerate() {
                let part: Vec<ReadRow> =
                    rest.by_ref().take(each + usize::from(k < extra)).collect();
                if part.is_empty() {
                    break;
                }
                if to_worker.send(part).is_err() {
                    return Ok(());
                }
                busy += 1;
            }
            if ended {
                collect(&mut busy, out)?;
                break;
            }
        }
        out.flush().map_err(MapError::Write)
    })
}

/// Writes the answers of `workers` (the ones busy with the last chunk), in order. A worker
/// that stopped has panicked: `false`, and the thread scope re-raises the panic.
fn collect_answers<R: OutRow>(
    workers: &[std::sync::mpsc::Receiver<Vec<R>>],
    out: &mut dyn Write,
    text_out: &mut Vec<u8>,
    tally: &mut dyn FnMut(&R),
) -> Result<bool, MapError> {
    for from_worker in workers {
        let Ok(answered) = from_worker.recv() else {
            return Ok(false);
        };
        for r in &answered {
            tally(r);
            write_row(out, text_out, r)?;
        }
    }
    Ok(true)
}

/// A row as the parallel row loop hands it to a worker.
enum ReadRow {
    Text(String),
    Oversized(usize),
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
    /// Counts a row (as [`VerifyTally::add`] counts its JSON form).
    pub fn add_row(&mut self, r: &VerifiedRow) {
        self.rows += 1;
        self.valid += usize::from(r.valid);
        self.errors += usize::from(r.error.is_some());
        // `add` reads the score back from JSON, where a non-finite one is `null`: 0.
        self.total_score += if r.score.is_finite() { r.score } else { 0.0 };
    }

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

/// Buffer size of the row drivers' input and output: rows are about 1 KiB, so the
/// default 8 KiB meant a system call every few rows (a few percent of a fast `gen`).
pub const IO_BUFFER: usize = 1 << 16;

/// Buffer size of the row drivers' input. A chunk of the parallel row loop ends where the
/// buffer does ([`map_rows_parallel`]), so it holds a few thousand rows: with 64 KiB, two
/// workers spent a third of their time waiting for the next chunk. A pipe's reads return
/// what has arrived, so a large buffer never waits for more.
pub const INPUT_BUFFER: usize = 1 << 20;

/// Whether a path argument is `-`, the usual name for stdin or stdout, so that a run can
/// sit in a pipe (`resyn gen F -o - | resyn verify F --data -`).
pub fn is_stdio(path: &std::path::Path) -> bool {
    path.as_os_str() == "-"
}

/// Where a driver reads JSONL rows: buffered, with the buffer visible to [`map_rows`].
pub type RowInput = std::io::BufReader<Box<dyn std::io::Read>>;

/// Opens where a driver reads JSONL rows: the file at `path`, or stdin for `-`.
pub fn open_input(path: &std::path::Path) -> Result<RowInput, String> {
    let source: Box<dyn std::io::Read> = if is_stdio(path) {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(path)
                .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?,
        )
    };
    Ok(std::io::BufReader::with_capacity(INPUT_BUFFER, source))
}

/// Opens `data` and `out` (stdout by default) for a row loop and runs it: the one place
/// that words what stopped a run (`resyn verify`, `resyn audit` and the emitted binary's
/// `verify` print these as `error: …`, spec/cli.md §4).
pub fn with_rows(
    data: &std::path::Path,
    out: Option<&std::path::Path>,
    run: impl FnOnce(&mut RowInput, &mut dyn Write) -> Result<(), MapError>,
) -> Result<(), String> {
    let mut input = open_input(data)?;
    let mut w = open_output(out)?;
    run(&mut input, &mut w).map_err(|e| match e {
        MapError::Read(e) => format!("reading `{}` failed: {e}", data.display()),
        MapError::Write(_) => "cannot write the output".to_string(),
        MapError::Threads(e) => format!("cannot start the worker threads (--jobs): {e}"),
    })
}

/// Opens where a driver writes JSONL: the file at `path`, or stdout (no path, or `-`).
pub fn open_output(path: Option<&std::path::Path>) -> Result<Box<dyn Write>, String> {
    match path.filter(|p| !is_stdio(p)) {
        Some(p) => std::fs::File::create(p)
            .map(|f| Box::new(std::io::BufWriter::with_capacity(IO_BUFFER, f)) as Box<dyn Write>)
            .map_err(|e| format!("cannot write `{}`: {e}", p.display())),
        None => Ok(Box::new(std::io::BufWriter::with_capacity(
            IO_BUFFER,
            std::io::stdout().lock(),
        ))),
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
        // Two plain writes into the buffered writer (no formatting machinery per row).
        w.write_all(row.as_bytes())
            .and_then(|()| w.write_all(b"\n"))
            .map_err(|_| "cannot write the output".to_string())?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Input that arrives a piece at a time, as from a trainer that sends a row only once
    /// the previous one is answered: before serving a further piece, every row served so
    /// far must have been answered and flushed.
    struct Trainer {
        pieces: Vec<&'static [u8]>,
        served: Vec<u8>,
        flushed: Rc<RefCell<Vec<u8>>>,
    }

    impl Trainer {
        /// Rows served whole so far (blank lines are no rows).
        fn served_rows(&self) -> usize {
            let lines: Vec<&[u8]> = self.served.split(|b| *b == b'\n').collect();
            let whole = &lines[..lines.len() - 1];
            whole.iter().filter(|l| !l.trim_ascii().is_empty()).count()
        }
    }

    impl std::io::Read for Trainer {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let answered = self
                .flushed
                .borrow()
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            assert_eq!(
                answered,
                self.served_rows(),
                "a read waited on unflushed answers"
            );
            if self.pieces.is_empty() {
                return Ok(0);
            }
            let piece = self.pieces.remove(0);
            self.served.extend_from_slice(piece);
            buf[..piece.len()].copy_from_slice(piece);
            Ok(piece.len())
        }
    }

    /// Output that only counts what was flushed.
    struct Pipe {
        pending: Vec<u8>,
        flushed: Rc<RefCell<Vec<u8>>>,
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.pending.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.flushed.borrow_mut().append(&mut self.pending);
            Ok(())
        }
    }

    /// The row loops (one thread or several) answer rows as they arrive: they flush before
    /// any read that may wait, so a long-lived `verify --data -` can serve a trainer one row
    /// at a time. Pieces that arrive together (two rows, a row split in two) are read
    /// without waiting.
    #[test]
    fn rows_are_answered_before_the_next_read() {
        for jobs in [1, 2, 3] {
            answered_before_the_next_read(jobs);
        }
    }

    fn answered_before_the_next_read(jobs: usize) {
        let flushed = Rc::new(RefCell::new(Vec::new()));
        let mut input = std::io::BufReader::new(Trainer {
            pieces: vec![
                b"{\"a\": 1}\n",
                b"{\"a\": 2}\n{\"a\"",
                b": 3}\n",
                b"\n{\"a\": 4}\n",
            ],
            served: Vec::new(),
            flushed: flushed.clone(),
        });
        let mut out = Pipe {
            pending: Vec::new(),
            flushed: flushed.clone(),
        };
        let mut seen = Vec::new();
        map_rows_parallel(
            &mut input,
            &mut out,
            jobs,
            &|| (),
            &|_, text: &str| serde_json::from_str::<Json>(text).expect("test rows are JSON"),
            &mut |row: &Json| seen.push(row["a"].clone()),
        )
        .expect("the loop runs");
        assert_eq!(seen, [json!(1), json!(2), json!(3), json!(4)]);
        assert_eq!(
            String::from_utf8(flushed.borrow().clone()).expect("UTF-8"),
            "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n{\"a\":4}\n"
        );
    }

    /// A blank line (whitespace as `str::trim` sees it, Unicode included) is no row; a line
    /// of invalid UTF-8 or with text after its whitespace is one.
    #[test]
    fn blank_lines_are_what_trim_calls_blank() {
        // ... and a line of a byte order mark and whitespace (the mark is dropped).
        let text: &[u8] = b" \t\n\x0b\n\xc2\xa0\xe2\x80\x83\n\xff\n {\"a\": 1}\n\r\n\xef\xbb\xbf \n\xef\xbb\xbf\n\xc2\x85x\n";
        let mut input = std::io::BufReader::new(text);
        let mut rows = Vec::new();
        map_rows(
            &mut input,
            &mut std::io::sink(),
            &mut |t: &str| json!(t),
            &mut |r: &Json| rows.push(r.clone()),
        )
        .expect("the loop runs");
        assert_eq!(
            rows,
            [json!("\u{fffd}"), json!(" {\"a\": 1}"), json!("\u{85}x")]
        );
    }

    /// The row loop writes rows with `write_json`; tests and library users see `to_json`:
    /// the bytes must be the same, whatever the id, messages and score.
    #[test]
    fn verified_rows_write_their_json_text() {
        let ids = [
            Json::Null,
            json!("graph_coloring-L3-s42-0"),
            json!(12),
            json!(-1.5e300),
            json!(18446744073709551615u64),
            json!({"b": [1, {"z": null, "a": "x"}], "a": "\u{1}\"\\é\n"}),
        ];
        let rows = ids.iter().flat_map(|id| {
            [
                VerifiedRow {
                    id: id.clone(),
                    score: 1.0,
                    valid: true,
                    failures: Vec::new(),
                    failure_count: 0,
                    error: None,
                },
                VerifiedRow {
                    id: id.clone(),
                    score: 2.0 / 3.0,
                    valid: false,
                    failures: vec![
                        (
                            "forall (a, b) in deps: x < y".into(),
                            "b \"c\"\t\u{7f}".into(),
                        ),
                        (String::new(), "\u{1f}\u{8}\u{c}/".into()),
                    ],
                    failure_count: 25,
                    error: Some(row_err("verify.runtime", "index 9 out of range")),
                },
                VerifiedRow::failed(id.clone(), too_large(MAX_ROW_BYTES + 1)),
                VerifiedRow {
                    score: f64::NAN,
                    ..VerifiedRow::failed(id.clone(), row_err("row.invalid", ""))
                },
                VerifiedRow {
                    score: 1e-7,
                    ..VerifiedRow::failed(id.clone(), row_err("row.invalid", "x"))
                },
            ]
        });
        for r in rows {
            let mut out = Vec::new();
            r.write_json(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), r.to_json().to_string());
            let (mut a, mut b) = (VerifyTally::default(), VerifyTally::default());
            a.add_row(&r);
            b.add(&r.to_json());
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
        let mut out = Vec::new();
        OutRow::write_json(
            &<VerifiedRow as OutRow>::oversized(MAX_ROW_BYTES + 5),
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            oversized_row(MAX_ROW_BYTES + 5).to_string()
        );
    }

    /// `RawMap` reads rows like the `BTreeMap<String, &RawValue>` it replaced: the same
    /// members (the last of a repeated name), the same errors word for word.
    #[test]
    fn raw_maps_read_like_btree_maps() {
        type Tree<'a> = std::collections::BTreeMap<String, &'a RawValue>;
        let lines = [
            r#"{"id":"a","answer":[1,2],"x":{"y":1}}"#,
            r#"{"id":"dup","id":"dup2","a\u0062":1,"ab":2}"#,
            r#" { } "#,
            "[1,2,3]",
            "null",
            "17",
            r#""text""#,
            "not json",
            r#"{"id":1,}"#,
            r#"{"id":1} x"#,
            r#"{"a":[1,2}"#,
            r#"{1:2}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a\q":1}"#,
            "",
        ];
        for line in lines {
            let ours = serde_json::from_str::<RawMap<'_>>(line).map_err(|e| e.to_string());
            let tree = serde_json::from_str::<Tree<'_>>(line).map_err(|e| e.to_string());
            match (ours, tree) {
                (Ok(o), Ok(t)) => {
                    for (k, v) in &t {
                        assert_eq!(o.get(k).map(RawValue::get), Some(v.get()), "{line}");
                    }
                    for (k, _) in &o.0 {
                        assert!(t.contains_key(k.as_ref()), "{line}");
                    }
                }
                (o, t) => assert_eq!(o.err(), t.err(), "{line}"),
            }
        }
    }
}
