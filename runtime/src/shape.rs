//! Answer shapes and the JSON codec for values: [`decode`] turns (untrusted) JSON text
//! into a [`Value`] of a given [`Shape`], checking every domain, and [`encode`] /
//! [`to_json_string`] give a value's canonical JSON form, which `decode` accepts.
//!
//! * **Complexity.** `decode` is O(n) memory and O(n log n) time worst case in the text
//!   length n. A first pass reads the text straight into the value and stops at the
//!   first problem; only then does the reference pass run: serde_json parses the text
//!   into a small tree (about 32 bytes per JSON value), then one walk converts it against
//!   the shape, keeping the JSON path for the message. Both passes accept the same texts.
//!   Everything in either pass is O(1) per JSON value except set and map insertions
//!   (O(log n) comparisons, each bounded by the size of the inserted element) and record
//!   field lookups (O(fields of the shape) per member). Texts longer than
//!   [`MAX_RESPONSE_BYTES`] are rejected unparsed. serde_json's recursion limit (127
//!   levels of nesting) turns deeper input into an error instead of a stack overflow,
//!   which bounds both recursive passes too. Error messages quote at most 40 characters
//!   of any input string and list at most 10 names. `encode` and `to_json_string` are
//!   O(size of the value). Nothing here panics.
//!
//! ## What `decode` accepts
//!
//! Exactly the canonical form, plus harmless variation:
//! surrounding whitespace; an integral float (`3.0`, `1e3`) for an int; any JSON number
//! for a float (`-0.0` becomes `0.0`; the strings `"NaN"`, `"Infinity"`, `"-Infinity"` are
//! rejected: no float value is non-finite); `[]` as well as `null` for unit; for maps, either form (object
//! or array of `[key, value]` pairs) whatever the key type, where object keys are
//! decoded from their string: `"3"` / `"-12"` (JSON integer syntax) for int keys,
//! `"true"`/`"false"` for bool keys, a JSON number for float keys, variant names for
//! enum keys. Composite keys need the pair form.
//!
//! Everything else is an error naming the JSON path (`$[2].jug`): wrong type (`expected
//! an int at $[2], found "x"`; bools are never `0`/`1` or `"true"`, ints never strings
//! outside map keys), non-integral or out-of-range numbers, values outside the domain
//! (`7 is not in 0..3 at $[4]`), wrong lengths (`expected 9 elements, found 8`),
//! duplicate set elements or map keys, duplicate, missing or unknown record fields,
//! unknown enum variants (names are exact, case-sensitive).
//!
//! ## Canonical form (`encode`)
//!
//! unit `null`; bools, ints as JSON; finite floats as JSON numbers (shortest form that
//! round-trips), non-finite ones as the strings above (every NaN becomes `"NaN"`);
//! strings as strings; enums as their variant name; tuples, lists and sets as arrays
//! (sets in ascending order); records as objects (fields by name); maps whose keys are
//! strings or enums as objects, other non-empty maps as arrays of `[key, value]` pairs in
//! ascending key order; an empty map as `{}`.

use crate::extract::MAX_RESPONSE_BYTES;
use crate::value::{write_float, write_json_string, Value};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write};
use std::rc::Rc;

/// The type of an answer, with its domains evaluated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    Bool,
    Int {
        domain: Domain,
    },
    Float,
    Str {
        domain: Domain,
    },
    Unit,
    Tuple(Vec<Shape>),
    List {
        elem: Box<Shape>,
        len: Len,
    },
    Set(Box<Shape>),
    Map(Box<Shape>, Box<Shape>),
    /// Fields sorted by name.
    Record(Vec<(String, Shape)>),
    /// Variants in declaration order (a value's index is its position here).
    Enum {
        variants: Vec<String>,
    },
    /// `base in collection` for a base other than int and string (whose domains live in
    /// their own shapes): a value of `base` that must be one of `values`.
    Member {
        base: Box<Shape>,
        values: BTreeSet<Value>,
    },
}

impl Shape {
    /// `int in lo..hi` (`..=` when `inclusive`): [`Shape::within`] of the range's elements,
    /// with the same errors as building them (a range longer than the collection limit),
    /// computed from the bounds. The answer type is evaluated per instance and per verified
    /// row, and building a range of, say, 100,000 ints into a set each time cost far more
    /// than the verification itself.
    pub fn int_range(lo: i64, hi: i64, inclusive: bool) -> crate::value::RtResult<Shape> {
        let (first, last) = crate::native::range_bounds(lo, hi, inclusive)?;
        Ok(Shape::Int {
            domain: if last < first {
                Domain::Values(BTreeSet::new())
            } else {
                Domain::Range {
                    lo: first,
                    hi: last,
                }
            },
        })
    }

    /// `base in values`: an int or string shape gets the domain (a contiguous run of ints
    /// becomes a range: cheap to check, clear messages), any other base a membership check.
    pub fn within(base: Shape, values: BTreeSet<Value>) -> Shape {
        match base {
            Shape::Int { .. } => {
                let (lo, hi) = (values.first().cloned(), values.last().cloned());
                match (lo, hi) {
                    (Some(Value::Int(lo)), Some(Value::Int(hi)))
                        if (hi as i128 - lo as i128 + 1) == values.len() as i128 =>
                    {
                        Shape::Int {
                            domain: Domain::Range { lo, hi },
                        }
                    }
                    _ => Shape::Int {
                        domain: Domain::Values(values),
                    },
                }
            }
            Shape::Str { .. } => Shape::Str {
                domain: Domain::Values(values),
            },
            other => Shape::Member {
                base: Box::new(other),
                values,
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Len {
    Any,
    Exact(usize),
    AtMost(usize),
}

/// The values an int or string may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Domain {
    Any,
    /// `lo..=hi`, `lo <= hi` (ints only; no string is in a range). Inclusive, so that a
    /// domain may end at 9223372036854775807.
    Range {
        lo: i64,
        hi: i64,
    },
    Values(BTreeSet<Value>),
}

impl Domain {
    /// Whether `v` is in the domain (both decoding passes ask this).
    pub fn contains(&self, v: &Value) -> bool {
        match self {
            Domain::Any => true,
            Domain::Range { lo, hi } => matches!(v, Value::Int(i) if lo <= i && i <= hi),
            Domain::Values(set) => set.contains(v),
        }
    }
}

/// Why a text is not a value of the shape. `message` is the complete sentence (it names
/// the path unless the problem is at the root, `$`); `path` is the same JSON path, for
/// programs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

/// Parses `json_text` and converts it to a value of `shape` (see the module docs).
///
/// Two passes, one of them only on failure: `fast::decode` reads the text straight into
/// a value (no intermediate tree, no JSON path kept) and gives up at the first problem of
/// any kind; only then does [`decode_reference`] parse and convert again, which is the
/// definition and writes the error. Both accept exactly the same texts with the same
/// values (the fast pass checks each rule the reference checks, see `fast`), so the
/// result never depends on which pass answered; the property tests compare them.
pub fn decode(json_text: &str, shape: &Shape) -> Result<Value, DecodeError> {
    if json_text.len() > MAX_RESPONSE_BYTES {
        return Err(too_large(json_text.len()));
    }
    match fast::decode(json_text, shape) {
        Some(v) => Ok(v),
        None => decode_reference(json_text, shape),
    }
}

/// The reference decoder: parse into a tree, then convert it against the shape with the
/// JSON path at hand for messages. [`decode`] only calls it when its fast pass fails;
/// public for the tests that compare the two.
#[doc(hidden)]
pub fn decode_reference(json_text: &str, shape: &Shape) -> Result<Value, DecodeError> {
    let j = parse(json_text)?;
    convert(&j, shape, &mut String::from("$"))
}

/// [`decode`] for an extracted answer, with one more leniency: when the shape is a
/// string or an enum, an answer that does not start with `"` is taken as the bare
/// (trimmed) string, so `<answer>pour</answer>` decodes like `"pour"`. (A string that
/// does start with a quote must be a valid JSON string.)
pub fn decode_answer(text: &str, shape: &Shape) -> Result<Value, DecodeError> {
    let bare = text.trim();
    match shape {
        Shape::Str { .. } | Shape::Enum { .. } if !bare.starts_with('"') => {
            if text.len() > MAX_RESPONSE_BYTES {
                return Err(too_large(text.len()));
            }
            convert(&J::Str(bare.to_owned()), shape, &mut String::from("$"))
        }
        _ => decode(text, shape),
    }
}

/// The canonical JSON form of a value (see the module docs).
pub fn encode(value: &Value) -> serde_json::Value {
    use serde_json::Value as JV;
    match value {
        Value::Unit => JV::Null,
        Value::Bool(b) => JV::Bool(*b),
        Value::Int(i) => JV::from(*i),
        Value::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => JV::Number(n),
            None => JV::String(non_finite_name(*f).to_string()),
        },
        Value::Str(s) => JV::String(s.to_string()),
        Value::Tuple(v) | Value::List(v) => JV::Array(v.iter().map(encode).collect()),
        Value::Set(s) => JV::Array(s.iter().map(encode).collect()),
        Value::Map(m) => {
            if m.keys().all(is_string_like) {
                JV::Object(
                    m.iter()
                        .map(|(k, v)| (string_key(k).to_string(), encode(v)))
                        .collect(),
                )
            } else {
                JV::Array(
                    m.iter()
                        .map(|(k, v)| JV::Array(vec![encode(k), encode(v)]))
                        .collect(),
                )
            }
        }
        Value::Record(fs) => {
            JV::Object(fs.iter().map(|(k, v)| (k.to_string(), encode(v))).collect())
        }
        Value::Enum(_, name) => JV::String(name.to_string()),
    }
}

/// Appends `encode(value)` as serde_json prints it (`encode(value).to_string()`), without
/// building the JSON value: rows write every value inside them this way. Numbers and
/// strings are written by serde_json itself; objects get their members in ascending
/// bytewise key order, the last of equal keys winning, as a `serde_json::Map` holds them.
pub fn write_encoded(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Unit => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => put(out, i),
        Value::Float(f) if f.is_finite() => put(out, f),
        Value::Float(f) => put(out, non_finite_name(*f)),
        Value::Str(s) => put(out, &**s),
        Value::Enum(_, name) => put(out, &**name),
        Value::Tuple(v) | Value::List(v) => encoded_array(out, v.iter()),
        Value::Set(s) => encoded_array(out, s.iter()),
        Value::Map(m) if m.keys().all(is_string_like) => {
            encoded_object(out, m.iter().map(|(k, v)| (string_key(k), v)))
        }
        Value::Map(m) => {
            out.push(b'[');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.push(b'[');
                write_encoded(out, k);
                out.push(b',');
                write_encoded(out, v);
                out.push(b']');
            }
            out.push(b']');
        }
        Value::Record(fs) => encoded_object(out, fs.iter().map(|(k, v)| (&**k, v))),
    }
}

/// Appends `v` as serde_json writes it (compact). Writing into a `Vec` cannot fail, nor
/// can serialising the types it gets (strings, numbers, JSON values with string keys).
pub(crate) fn put<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    let _ = serde_json::to_writer(out, v);
}

fn encoded_array<'a>(out: &mut Vec<u8>, items: impl Iterator<Item = &'a Value>) {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_encoded(out, item);
    }
    out.push(b']');
}

/// An object from members in any order, as `serde_json::Map` (a `BTreeMap`) orders them.
/// Record fields and string keys come sorted already; enum keys (in declaration order)
/// are sorted here.
pub(crate) fn encoded_object<'a>(
    out: &mut Vec<u8>,
    members: impl Iterator<Item = (&'a str, &'a Value)>,
) {
    let mut members: Vec<(&str, &Value)> = members.collect();
    if !members.windows(2).all(|w| w[0].0 < w[1].0) {
        // Stable, so of equal keys the last one stays last: keep it (a map insert replaces).
        members.sort_by(|a, b| a.0.cmp(b.0));
        let mut kept: Vec<(&str, &Value)> = Vec::with_capacity(members.len());
        for m in members {
            match kept.last_mut() {
                Some(last) if last.0 == m.0 => *last = m,
                _ => kept.push(m),
            }
        }
        members = kept;
    }
    out.push(b'{');
    for (i, (k, v)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put(out, k);
        out.push(b':');
        write_encoded(out, v);
    }
    out.push(b'}');
}

/// The canonical JSON text of a value: compact (no spaces), deterministic (object
/// members in the value's own order: record fields and string keys ascending by bytes,
/// enum keys in declaration order). Parses to [`encode`]'s result.
pub fn to_json_string(value: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out
}

fn write_json(out: &mut String, value: &Value) {
    match value {
        Value::Unit => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) if f.is_finite() => write_float(out, *f),
        Value::Float(f) => write_json_string(out, non_finite_name(*f)),
        Value::Str(s) => write_json_string(out, s),
        Value::Enum(_, name) => write_json_string(out, name),
        Value::Tuple(v) | Value::List(v) => write_array(out, v.iter(), write_json),
        Value::Set(s) => write_array(out, s.iter(), write_json),
        Value::Map(m) if m.keys().all(is_string_like) => {
            write_object(out, m.iter().map(|(k, v)| (string_key(k), v)))
        }
        Value::Map(m) => write_array(out, m.iter(), |out, (k, v)| {
            out.push('[');
            write_json(out, k);
            out.push(',');
            write_json(out, v);
            out.push(']');
        }),
        Value::Record(fs) => write_object(out, fs.iter().map(|(k, v)| (&**k, v))),
    }
}

fn write_array<T>(out: &mut String, items: impl Iterator<Item = T>, each: fn(&mut String, T)) {
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(out, item);
    }
    out.push(']');
}

fn write_object<'a>(out: &mut String, members: impl Iterator<Item = (&'a str, &'a Value)>) {
    out.push('{');
    for (i, (k, v)) in members.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(out, k);
        out.push(':');
        write_json(out, v);
    }
    out.push('}');
}

fn is_string_like(v: &Value) -> bool {
    matches!(v, Value::Str(_) | Value::Enum(..))
}

fn string_key(v: &Value) -> &str {
    match v {
        Value::Str(s) | Value::Enum(_, s) => s,
        _ => "",
    }
}

fn non_finite_name(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

// ---------------------------------------------------------------------------------------
// Parsing: serde_json into a small tree that keeps what `serde_json::Value` would lose
// (duplicate object keys, member order, int vs float).

enum J {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<J, D::Error> {
        d.deserialize_any(JVisitor)
    }
}

struct JVisitor;

impl<'de> Visitor<'de> for JVisitor {
    type Value = J;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<J, E> {
        Ok(J::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<J, E> {
        Ok(J::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<J, E> {
        Ok(J::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<J, E> {
        Ok(i64::try_from(u).map_or(J::UInt(u), J::Int))
    }
    fn visit_f64<E>(self, f: f64) -> Result<J, E> {
        Ok(J::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<J, E> {
        Ok(J::Str(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<J, E> {
        Ok(J::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<J, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(J::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<J, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry()? {
            members.push(member);
        }
        Ok(J::Obj(members))
    }
}

fn too_large(len: usize) -> DecodeError {
    DecodeError {
        path: "$".into(),
        // Neutral wording: instance values are decoded here too (their errors are prefixed
        // with the value's name), not only answers.
        message: format!("the text is {len} bytes, more than the limit of {MAX_RESPONSE_BYTES}"),
    }
}

fn parse(text: &str) -> Result<J, DecodeError> {
    if text.len() > MAX_RESPONSE_BYTES {
        return Err(too_large(text.len()));
    }
    let syntax = |e: serde_json::Error| DecodeError {
        path: "$".into(),
        message: format!("invalid JSON: {e}"),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let j = J::deserialize(&mut de).map_err(syntax)?;
    de.end().map_err(syntax)?;
    Ok(j)
}

// ---------------------------------------------------------------------------------------
// Conversion against the shape. `path` is extended in place and restored on success.

/// " at $[2]", or "" at the root.
fn at(path: &str) -> String {
    if path == "$" {
        String::new()
    } else {
        format!(" at {path}")
    }
}

fn fail(path: &str, message: String) -> DecodeError {
    DecodeError {
        path: path.to_string(),
        message,
    }
}

fn expected(what: &str, found: &J, path: &str) -> DecodeError {
    fail(
        path,
        format!("expected {what}{}, found {}", at(path), describe(found)),
    )
}

const SHOW_CHARS: usize = 40;

/// A JSON string literal, cut to a readable length (untrusted text goes in messages).
fn quote(s: &str) -> String {
    let mut out = String::new();
    if s.chars().count() > SHOW_CHARS {
        let cut: String = s.chars().take(SHOW_CHARS).collect();
        write_json_string(&mut out, &cut);
        out.insert(out.len() - 1, '…');
    } else {
        write_json_string(&mut out, s);
    }
    out
}

fn describe(j: &J) -> String {
    match j {
        J::Null => "null".into(),
        J::Bool(b) => b.to_string(),
        J::Int(i) => i.to_string(),
        J::UInt(u) => u.to_string(),
        J::Float(f) => show_float(*f),
        J::Str(s) => quote(s),
        J::Arr(v) if v.len() == 1 => "an array of 1 element".into(),
        J::Arr(v) => format!("an array of {} elements", v.len()),
        J::Obj(_) => "an object".into(),
    }
}

fn show_float(f: f64) -> String {
    let mut s = String::new();
    write_float(&mut s, f);
    s
}

/// A value in a message: strings quoted (and cut), the rest as `Value::display`.
fn show(v: &Value) -> String {
    match v {
        Value::Str(s) => quote(s),
        other => {
            let d = other.display();
            if d.chars().count() > SHOW_CHARS {
                let cut: String = d.chars().take(SHOW_CHARS).collect();
                format!("{cut}…")
            } else {
                d
            }
        }
    }
}

fn show_list<'a>(items: impl ExactSizeIterator<Item = String> + 'a) -> String {
    const MAX: usize = 10;
    let n = items.len();
    let mut shown: Vec<String> = items.take(MAX).collect();
    if n > MAX {
        shown.push(format!("… ({} more)", n - MAX));
    }
    shown.join(", ")
}

fn elements(n: usize) -> String {
    if n == 1 {
        "1 element".into()
    } else {
        format!("{n} elements")
    }
}

/// `.name` for identifier-like names, else `["..."]`.
fn push_field(path: &mut String, name: &str) {
    let ident = name
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    if ident {
        path.push('.');
        path.push_str(name);
    } else {
        path.push('[');
        write_json_string(path, name);
        path.push(']');
    }
}

fn push_index(path: &mut String, i: usize) {
    let _ = write!(path, "[{i}]");
}

fn check_domain(v: Value, domain: &Domain, path: &str) -> Result<Value, DecodeError> {
    if domain.contains(&v) {
        return Ok(v);
    }
    let message = match domain {
        Domain::Any => unreachable!("every value is in `Any`"),
        Domain::Range { lo, hi } => {
            // Written half-open, as domains usually are in sources, where it can be.
            let range = match hi.checked_add(1) {
                Some(end) => format!("{lo}..{end}"),
                None => format!("{lo}..={hi}"),
            };
            format!("{} is not in {range}{}", show(&v), at(path))
        }
        Domain::Values(set) => format!(
            "{} is not one of {{{}}}{}",
            show(&v),
            show_list(set.iter().map(show)),
            at(path)
        ),
    };
    Err(fail(path, message))
}

/// What a JSON number that the parser read as a double (it has a fraction, an exponent or
/// more digits than a 64-bit integer) is worth as an int.
enum FloatInt {
    /// Integral and below 2^53 in magnitude, where a double is exactly the integer its
    /// text means (`3.0`, `1e3`, `-0.0`); 2^53 itself is also what `2^53 + 1` rounds to.
    Exact(i64),
    /// Integral, 2^53 or more and within the i64 range: the double may be a rounding of
    /// the text (`9007199254740993.0` reads as ...992), so the value is not taken.
    Inexact,
    /// Past the i64 range, or the double -2^63 (see `float_int`). Taking it would
    /// saturate (`-9223372036854775809` used to read as i64::MIN).
    OutOfRange,
    NotIntegral,
}

fn float_int(f: f64) -> FloatInt {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if f.fract() != 0.0 || !f.is_finite() {
        FloatInt::NotIntegral
    } else if f.abs() < EXACT {
        FloatInt::Exact(f as i64)
    } else if f > -LIMIT && f < LIMIT {
        // -2^63 itself is excluded: it is what every integer text a little below i64::MIN
        // rounds to (-9223372036854775809 and beyond), which is out of the range.
        FloatInt::Inexact
    } else {
        FloatInt::OutOfRange
    }
}

fn int_of(j: &J, path: &str) -> Result<i64, DecodeError> {
    match j {
        J::Int(i) => Ok(*i),
        J::UInt(u) => Err(fail(
            path,
            format!("{u} is out of the int range{}", at(path)),
        )),
        J::Float(f) => match float_int(*f) {
            FloatInt::Exact(i) => Ok(i),
            FloatInt::Inexact => Err(fail(
                path,
                format!(
                    "{} cannot be read exactly as an int{}: write it as a JSON integer, without a fraction or exponent",
                    show_float(*f),
                    at(path)
                ),
            )),
            FloatInt::OutOfRange => Err(fail(
                path,
                format!("{} is out of the int range{}", show_float(*f), at(path)),
            )),
            FloatInt::NotIntegral => Err(expected("an int", j, path)),
        },
        other => Err(expected("an int", other, path)),
    }
}

/// A float value as the language has them: finite, and `-0.0` normalised to `0.0`
/// (spec/language.md §10.3), so a decoded float behaves like a computed one.
fn float_of(j: &J, path: &str) -> Result<f64, DecodeError> {
    let f = match j {
        J::Int(i) => *i as f64,
        J::UInt(u) => *u as f64,
        J::Float(f) => *f,
        J::Str(s) if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") => {
            return Err(fail(
                path,
                format!("{s} is not a finite number{}", at(path)),
            ))
        }
        other => return Err(expected("a number", other, path)),
    };
    Ok(if f == 0.0 { 0.0 } else { f })
}

fn convert(j: &J, shape: &Shape, path: &mut String) -> Result<Value, DecodeError> {
    match shape {
        Shape::Bool => match j {
            J::Bool(b) => Ok(Value::Bool(*b)),
            other => Err(expected("a bool", other, path)),
        },
        Shape::Int { domain } => check_domain(Value::Int(int_of(j, path)?), domain, path),
        Shape::Float => Ok(Value::Float(float_of(j, path)?)),
        Shape::Member { base, values } => {
            let v = convert(j, base, path)?;
            check_domain(v, &Domain::Values(values.clone()), path)
        }
        Shape::Str { domain } => match j {
            J::Str(s) => check_domain(Value::str(s), domain, path),
            other => Err(expected("a string", other, path)),
        },
        Shape::Unit => match j {
            J::Null => Ok(Value::Unit),
            J::Arr(v) if v.is_empty() => Ok(Value::Unit),
            other => Err(expected("null (unit)", other, path)),
        },
        Shape::Enum { variants } => match j {
            J::Str(s) => match variants.iter().position(|v| v == s) {
                Some(i) => Ok(Value::Enum(
                    u32::try_from(i).unwrap_or(u32::MAX),
                    Rc::from(variants[i].as_str()),
                )),
                None => Err(fail(
                    path,
                    format!(
                        "unknown variant {}{}, expected one of: {}",
                        quote(s),
                        at(path),
                        show_list(variants.iter().cloned())
                    ),
                )),
            },
            other => Err(expected(
                &format!(
                    "a variant name (one of: {})",
                    show_list(variants.iter().cloned())
                ),
                other,
                path,
            )),
        },
        Shape::Tuple(shapes) => {
            let items = array(j, path, "an array (a tuple)")?;
            if items.len() != shapes.len() {
                return Err(wrong_len("", shapes.len(), items.len(), path));
            }
            let v = convert_items(items, shapes.iter(), path)?;
            Ok(Value::tuple(v))
        }
        Shape::List { elem, len } => {
            let items = array(j, path, "an array")?;
            match *len {
                Len::Exact(n) if items.len() != n => {
                    return Err(wrong_len("", n, items.len(), path))
                }
                Len::AtMost(n) if items.len() > n => {
                    return Err(wrong_len("at most ", n, items.len(), path))
                }
                _ => {}
            }
            let v = convert_items(items, std::iter::repeat(&**elem), path)?;
            Ok(Value::list(v))
        }
        Shape::Set(elem) => {
            let items = array(j, path, "an array (a set)")?;
            let mut set = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let mark = path.len();
                push_index(path, i);
                let v = convert(item, elem, path)?;
                if set.contains(&v) {
                    return Err(fail(
                        path,
                        format!("duplicate set element {}{}", show(&v), at(path)),
                    ));
                }
                set.insert(v);
                path.truncate(mark);
            }
            Ok(Value::Set(Rc::new(set)))
        }
        Shape::Map(key, val) => convert_map(j, key, val, path),
        Shape::Record(fields) => convert_record(j, fields, path),
    }
}

fn array<'j>(j: &'j J, path: &str, what: &str) -> Result<&'j [J], DecodeError> {
    match j {
        J::Arr(v) => Ok(v),
        other => Err(expected(what, other, path)),
    }
}

fn wrong_len(qualifier: &str, want: usize, found: usize, path: &str) -> DecodeError {
    fail(
        path,
        format!(
            "expected {qualifier}{}{}, found {found}",
            elements(want),
            at(path)
        ),
    )
}

fn convert_items<'s>(
    items: &[J],
    shapes: impl Iterator<Item = &'s Shape>,
    path: &mut String,
) -> Result<Vec<Value>, DecodeError> {
    let mut out = Vec::with_capacity(items.len());
    for (i, (item, shape)) in items.iter().zip(shapes).enumerate() {
        let mark = path.len();
        push_index(path, i);
        out.push(convert(item, shape, path)?);
        path.truncate(mark);
    }
    Ok(out)
}

/// A map key written as a JSON object key (a string).
/// Whether an object key is an int written canonically: an optional `-`, then `0` or digits
/// without a leading zero (both decoding passes use it).
fn canonical_int_key(k: &str) -> bool {
    let b = k.as_bytes();
    match b.strip_prefix(b"-").unwrap_or(b) {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

fn key_from_str(k: &str, shape: &Shape, path: &mut String) -> Result<Value, DecodeError> {
    let as_str = || J::Str(k.to_owned());
    match shape {
        Shape::Str { .. } | Shape::Enum { .. } => convert(&as_str(), shape, path),
        Shape::Int { domain } => {
            if !canonical_int_key(k) {
                return Err(expected("an int key", &as_str(), path));
            }
            match k.parse::<i64>() {
                Ok(i) => check_domain(Value::Int(i), domain, path),
                Err(_) => Err(fail(
                    path,
                    format!("{k} is out of the int range{}", at(path)),
                )),
            }
        }
        Shape::Bool => match k {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(expected("a bool key (\"true\" or \"false\")", &as_str(), path)),
        },
        Shape::Float => {
            if crate::extract::is_json_number_str(k) {
                match k.parse::<f64>() {
                    Ok(f) if f.is_finite() => Ok(Value::Float(if f == 0.0 { 0.0 } else { f })),
                    _ => Err(fail(
                        path,
                        format!("{k} is out of the float range{}", at(path)),
                    )),
                }
            } else {
                Err(expected("a number key", &as_str(), path))
            }
        }
        _ => Err(fail(
            path,
            format!(
                "keys of this map cannot be written as object keys{}: write the map as an array of [key, value] pairs",
                at(path)
            ),
        )),
    }
}

fn convert_map(j: &J, key: &Shape, val: &Shape, path: &mut String) -> Result<Value, DecodeError> {
    let mut map = BTreeMap::new();
    let mut insert = |k: Value, v: Value, path: &str| {
        if map.contains_key(&k) {
            return Err(fail(
                path,
                format!("duplicate map key {}{}", show(&k), at(path)),
            ));
        }
        map.insert(k, v);
        Ok(())
    };
    match j {
        J::Obj(members) => {
            for (k, v) in members {
                let mark = path.len();
                push_field(path, k);
                let kv = key_from_str(k, key, path)?;
                let vv = convert(v, val, path)?;
                insert(kv, vv, path)?;
                path.truncate(mark);
            }
        }
        J::Arr(pairs) => {
            for (i, pair) in pairs.iter().enumerate() {
                let mark = path.len();
                push_index(path, i);
                let (kj, vj) = match pair {
                    J::Arr(kv) if kv.len() == 2 => (&kv[0], &kv[1]),
                    other => return Err(expected("a [key, value] pair", other, path)),
                };
                let inner = path.len();
                path.push_str("[0]");
                let kv = convert(kj, key, path)?;
                path.truncate(inner);
                path.push_str("[1]");
                let vv = convert(vj, val, path)?;
                path.truncate(inner);
                path.push_str("[0]");
                insert(kv, vv, path)?;
                path.truncate(mark);
            }
        }
        other => {
            return Err(expected(
                "an object or an array of [key, value] pairs (a map)",
                other,
                path,
            ))
        }
    }
    Ok(Value::Map(Rc::new(map)))
}

fn convert_record(
    j: &J,
    fields: &[(String, Shape)],
    path: &mut String,
) -> Result<Value, DecodeError> {
    let members = match j {
        J::Obj(m) => m,
        other => return Err(expected("an object (a record)", other, path)),
    };
    // First the field names: which member is which field, and what is wrong overall.
    let mut slot: Vec<Option<usize>> = vec![None; fields.len()];
    let mut unknown = Vec::new();
    for (m, (name, _)) in members.iter().enumerate() {
        match fields.iter().position(|(f, _)| f == name) {
            Some(f) if slot[f].is_some() => {
                let mut p = path.clone();
                push_field(&mut p, name);
                let message = format!("duplicate field {}{}", quote(name), at(&p));
                return Err(fail(&p, message));
            }
            Some(f) => slot[f] = Some(m),
            None => unknown.push(quote(name)),
        }
    }
    let missing: Vec<String> = fields
        .iter()
        .zip(&slot)
        .filter(|(_, s)| s.is_none())
        .map(|((name, _), _)| quote(name))
        .collect();
    if !missing.is_empty() || !unknown.is_empty() {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!(
                "missing field{} {}",
                plural(missing.len()),
                show_list(missing.into_iter())
            ));
        }
        if !unknown.is_empty() {
            parts.push(format!(
                "unknown field{} {}",
                plural(unknown.len()),
                show_list(unknown.into_iter())
            ));
        }
        return Err(fail(path, format!("{}{}", parts.join(" and "), at(path))));
    }
    let mut out = Vec::with_capacity(fields.len());
    for ((name, shape), m) in fields.iter().zip(&slot) {
        let Some(m) = *m else { continue }; // (none is missing, checked above)
        let member = &members[m].1;
        let mark = path.len();
        push_field(path, name);
        out.push((Rc::from(name.as_str()), convert(member, shape, path)?));
        path.truncate(mark);
    }
    Ok(Value::record(out))
}

// ---------------------------------------------------------------------------------------
// The fast pass of `decode`: serde_json drives a visitor that carries the shape, so the text
// becomes the value directly. It answers `None` at the first problem of any kind (syntax,
// type, domain, length, duplicate, missing or unknown name), and `decode` then runs the
// reference pass, which finds the same problem and words it. So this module only has to
// accept what `convert` accepts, with the same value: every rule below names the branch of
// `convert` (or `key_from_str`) it mirrors. Numbers and nesting reach both passes through
// the same `deserialize_any` calls of the same deserializer, so they see the same numbers
// and the same recursion limit.

pub(crate) mod fast {
    use super::{Domain, Len, Shape, Value};
    use serde::de::{
        self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
    };
    use std::borrow::Cow;
    use std::collections::{BTreeMap, BTreeSet};
    use std::fmt;
    use std::rc::Rc;

    pub(super) fn decode(text: &str, shape: &Shape) -> Option<Value> {
        let mut de = serde_json::Deserializer::from_str(text);
        let v = Seed(shape).deserialize(&mut de).ok()?;
        de.end().ok()?;
        Some(v)
    }

    /// The error of this pass carries nothing: the reference pass writes the message.
    fn no<E: de::Error>() -> E {
        E::custom("")
    }

    fn int<E: de::Error>(i: i64, domain: &Domain) -> Result<Value, E> {
        let v = Value::Int(i);
        if domain.contains(&v) {
            Ok(v)
        } else {
            Err(no())
        }
    }

    /// `float_of`: `-0.0` normalised.
    fn float(f: f64) -> Value {
        Value::Float(if f == 0.0 { 0.0 } else { f })
    }

    /// `convert` for a JSON string (also `key_from_str` for string and enum keys).
    fn from_str<E: de::Error>(s: &str, shape: &Shape) -> Result<Value, E> {
        match shape {
            Shape::Str { domain } => {
                let v = Value::str(s);
                if domain.contains(&v) {
                    Ok(v)
                } else {
                    Err(no())
                }
            }
            Shape::Enum { variants } => match variants.iter().position(|v| v == s) {
                Some(i) => Ok(Value::Enum(
                    u32::try_from(i).unwrap_or(u32::MAX),
                    Rc::from(variants[i].as_str()),
                )),
                None => Err(no()),
            },
            _ => Err(no()),
        }
    }

    /// `key_from_str`: a map key written as an object key.
    fn key<E: de::Error>(k: &str, shape: &Shape) -> Result<Value, E> {
        match shape {
            Shape::Str { .. } | Shape::Enum { .. } => from_str(k, shape),
            Shape::Int { domain } => match k.parse::<i64>() {
                Ok(i) if super::canonical_int_key(k) => int(i, domain),
                _ => Err(no()),
            },
            Shape::Bool => match k {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(no()),
            },
            Shape::Float if crate::extract::is_json_number_str(k) => match k.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(float(f)),
                _ => Err(no()),
            },
            _ => Err(no()),
        }
    }

    /// An object key, borrowed from the text when it has no escapes.
    struct Key<'de>(Cow<'de, str>);

    impl<'de> de::Deserialize<'de> for Key<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Key<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Borrowed(s)))
                }
                fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Owned(s.to_owned())))
                }
                fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Owned(s)))
                }
            }
            d.deserialize_str(V)
        }
    }

    /// A value of a shape: deserialising with it is `decode`'s fast pass on the value's
    /// text (rows use it to decode instance values in the same pass that reads the row).
    #[derive(Clone, Copy)]
    pub(crate) struct Seed<'s>(pub(crate) &'s Shape);

    impl<'de> DeserializeSeed<'de> for Seed<'_> {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            match self.0 {
                // `convert` of the base, then the membership check.
                Shape::Member { base, values } => {
                    let v = Seed(base).deserialize(d)?;
                    if values.contains(&v) {
                        Ok(v)
                    } else {
                        Err(no())
                    }
                }
                _ => d.deserialize_any(self),
            }
        }
    }

    /// Nothing more in this array (`IgnoredAny` only runs, and fails the pass, if there is).
    fn ended<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<(), A::Error> {
        match seq.next_element::<IgnoredAny>()? {
            None => Ok(()),
            Some(_) => Err(no()),
        }
    }

    impl<'de> Visitor<'de> for Seed<'_> {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a value of the answer type")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
            match self.0 {
                Shape::Unit => Ok(Value::Unit),
                _ => Err(no()),
            }
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
            match self.0 {
                Shape::Bool => Ok(Value::Bool(b)),
                _ => Err(no()),
            }
        }
        // `int_of` / `float_of`.
        fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
            match self.0 {
                Shape::Int { domain } => int(i, domain),
                Shape::Float => Ok(float(i as f64)),
                _ => Err(no()),
            }
        }
        fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
            match (i64::try_from(u), self.0) {
                (Ok(i), _) => self.visit_i64(i),
                (Err(_), Shape::Float) => Ok(float(u as f64)),
                (Err(_), _) => Err(no()),
            }
        }
        fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
            match self.0 {
                Shape::Int { domain } => match super::float_int(f) {
                    super::FloatInt::Exact(i) => int(i, domain),
                    _ => Err(no()),
                },
                Shape::Float => Ok(float(f)),
                _ => Err(no()),
            }
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
            from_str(s, self.0)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            match self.0 {
                // `[]` for unit.
                Shape::Unit => {
                    ended(&mut seq)?;
                    Ok(Value::Unit)
                }
                Shape::Tuple(shapes) => {
                    let mut out = Vec::with_capacity(shapes.len());
                    for s in shapes {
                        out.push(seq.next_element_seed(Seed(s))?.ok_or_else(no)?);
                    }
                    ended(&mut seq)?;
                    Ok(Value::tuple(out))
                }
                Shape::List { elem, len } => {
                    let mut out = Vec::new();
                    while let Some(v) = seq.next_element_seed(Seed(elem))? {
                        if matches!(*len, Len::AtMost(n) if out.len() == n) {
                            return Err(no());
                        }
                        out.push(v);
                    }
                    match *len {
                        Len::Exact(n) if out.len() != n => Err(no()),
                        _ => Ok(Value::list(out)),
                    }
                }
                Shape::Set(elem) => {
                    let mut set = BTreeSet::new();
                    while let Some(v) = seq.next_element_seed(Seed(elem))? {
                        if !set.insert(v) {
                            return Err(no());
                        }
                    }
                    Ok(Value::Set(Rc::new(set)))
                }
                // The array of `[key, value]` pairs.
                Shape::Map(k, v) => {
                    let mut map = BTreeMap::new();
                    while let Some((kv, vv)) = seq.next_element_seed(Pair(k, v))? {
                        if map.contains_key(&kv) {
                            return Err(no());
                        }
                        map.insert(kv, vv);
                    }
                    Ok(Value::Map(Rc::new(map)))
                }
                _ => Err(no()),
            }
        }
        fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Value, A::Error> {
            match self.0 {
                // `convert_record`: every field once, no other name.
                Shape::Record(fields) => {
                    let mut slot: Vec<Option<Value>> = vec![None; fields.len()];
                    while let Some(Key(name)) = members.next_key()? {
                        let f = fields.iter().position(|(f, _)| *f == name).ok_or_else(no)?;
                        if slot[f].is_some() {
                            return Err(no());
                        }
                        slot[f] = Some(members.next_value_seed(Seed(&fields[f].1))?);
                    }
                    let mut out = Vec::with_capacity(fields.len());
                    for ((name, _), v) in fields.iter().zip(slot) {
                        out.push((Rc::from(name.as_str()), v.ok_or_else(no)?));
                    }
                    Ok(Value::record(out))
                }
                // `convert_map`, object form.
                Shape::Map(k, v) => {
                    let mut map = BTreeMap::new();
                    while let Some(Key(name)) = members.next_key()? {
                        let kv = key(&name, k)?;
                        let vv = members.next_value_seed(Seed(v))?;
                        if map.contains_key(&kv) {
                            return Err(no());
                        }
                        map.insert(kv, vv);
                    }
                    Ok(Value::Map(Rc::new(map)))
                }
                _ => Err(no()),
            }
        }
    }

    /// One `[key, value]` pair of a map written as an array.
    #[derive(Clone, Copy)]
    struct Pair<'s>(&'s Shape, &'s Shape);

    impl<'de> DeserializeSeed<'de> for Pair<'_> {
        type Value = (Value, Value);
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(Value, Value), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Pair<'_> {
        type Value = (Value, Value);
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a [key, value] pair")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(Value, Value), A::Error> {
            let k = seq.next_element_seed(Seed(self.0))?.ok_or_else(no)?;
            let v = seq.next_element_seed(Seed(self.1))?.ok_or_else(no)?;
            ended(&mut seq)?;
            Ok((k, v))
        }
    }
}
