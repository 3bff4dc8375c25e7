//! Runtime values. Values are immutable and shared (`Rc`); updates such as `x[i] = v`
//! copy on write (`Rc::make_mut`), which gives the language's value semantics without
//! copying in the common case. A total order over values makes sets and maps iterate
//! deterministically (the spec's "ascending key order").

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write};
use std::rc::Rc;

#[derive(Clone, Debug)]
pub enum Value {
    Unit,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<Vec<Value>>),
    Set(Rc<BTreeSet<Value>>),
    Map(Rc<BTreeMap<Value, Value>>),
    /// Fields sorted by name (records are structural).
    Record(Rc<Vec<(Rc<str>, Value)>>),
    /// Variant index (declaration order, which is also the sort order) and its name.
    Enum(u32, Rc<str>),
}

/// A runtime error: in the generator it fails the instance, in verify it makes the
/// constraint false. Never a panic.
///
/// The message is boxed so that the error is one pointer: every fallible operation returns
/// `RtResult`, and a small `Err` keeps `Result<i64, RtError>` in two registers instead of
/// a stack slot (measured: emitted n_queens generation 82 -> 72 us, graph_coloring verify
/// 35 -> 30 ns). Errors are rare; the allocation is on the cold path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtError {
    pub message: Box<String>,
}

impl RtError {
    pub fn new(message: impl Into<String>) -> RtError {
        RtError {
            message: Box::new(message.into()),
        }
    }
}

impl fmt::Display for RtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RtError {}

pub type RtResult<T> = Result<T, RtError>;

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Rc::from(s))
    }

    pub fn list(v: Vec<Value>) -> Value {
        Value::List(Rc::new(v))
    }

    pub fn tuple(v: Vec<Value>) -> Value {
        Value::Tuple(Rc::new(v))
    }

    /// A record from fields in any order (they are sorted by name here).
    pub fn record(mut fields: Vec<(Rc<str>, Value)>) -> Value {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        Value::Record(Rc::new(fields))
    }

    /// Rank of each variant kind in the total order (values of one type share a kind;
    /// the rank only matters for `Unknown`-typed corner cases).
    fn rank(&self) -> u8 {
        match self {
            Value::Unit => 0,
            Value::Bool(_) => 1,
            Value::Int(_) => 2,
            Value::Float(_) => 3,
            Value::Str(_) => 4,
            Value::Tuple(_) => 5,
            Value::List(_) => 6,
            Value::Set(_) => 7,
            Value::Map(_) => 8,
            Value::Record(_) => 9,
            Value::Enum(..) => 10,
        }
    }

    #[inline]
    pub fn as_int(&self) -> RtResult<i64> {
        match self {
            Value::Int(i) => Ok(*i),
            other => Err(other.expected("an int")),
        }
    }

    /// Inlined (conditions call it everywhere); the error is built out of line.
    #[inline]
    pub fn as_bool(&self) -> RtResult<bool> {
        match self {
            Value::Bool(b) => Ok(*b),
            other => Err(other.expected("a bool")),
        }
    }

    #[cold]
    #[inline(never)]
    fn expected(&self, what: &str) -> RtError {
        RtError::new(format!("expected {what}, found {}", self.display()))
    }

    /// The elements visited by `for` / comprehensions / quantifiers.
    pub fn iter_elems(&self) -> RtResult<Vec<Value>> {
        match self {
            Value::List(v) => Ok(v.as_ref().clone()),
            Value::Set(s) => Ok(s.iter().cloned().collect()),
            Value::Map(m) => Ok(m
                .iter()
                .map(|(k, v)| Value::tuple(vec![k.clone(), v.clone()]))
                .collect()),
            other => Err(RtError::new(format!(
                "cannot iterate over {}",
                other.display()
            ))),
        }
    }

    /// Text as templates and `str` show it (strings unquoted at top level).
    pub fn display(&self) -> String {
        let mut s = String::new();
        self.write_display(&mut s, true);
        s
    }

    fn write_display(&self, out: &mut String, top: bool) {
        match self {
            Value::Unit => out.push_str("()"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => write_float(out, *f),
            Value::Str(s) if top => out.push_str(s),
            Value::Str(s) => write_json_string(out, s),
            // A one-element tuple shows its comma, as it is written: `(1,)`.
            Value::Tuple(v) if v.len() == 1 => write_seq(out, "(", ",)", v.iter()),
            Value::Tuple(v) => write_seq(out, "(", ")", v.iter()),
            Value::List(v) => write_seq(out, "[", "]", v.iter()),
            Value::Set(v) => write_seq(out, "{", "}", v.iter()),
            Value::Map(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write_display(out, false);
                    out.push_str(": ");
                    v.write_display(out, false);
                }
                out.push('}');
            }
            Value::Record(fs) => {
                out.push('{');
                for (i, (k, v)) in fs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(k);
                    out.push_str(": ");
                    v.write_display(out, false);
                }
                out.push('}');
            }
            Value::Enum(_, name) => out.push_str(name),
        }
    }
}

fn write_seq<'a>(
    out: &mut String,
    open: &str,
    close: &str,
    items: impl Iterator<Item = &'a Value>,
) {
    write_items(out, open, close, items, |v, out| {
        v.write_display(out, false)
    });
}

/// `open`, the items separated by `, `, `close`: the display of every sequence, for runtime
/// values and for the typed values of emitted code alike.
pub(crate) fn write_items<T>(
    out: &mut String,
    open: &str,
    close: &str,
    items: impl Iterator<Item = T>,
    mut each: impl FnMut(T, &mut String),
) {
    out.push_str(open);
    for (i, v) in items.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        each(v, out);
    }
    out.push_str(close);
}

/// Shortest round-trip form that always shows it is a float (`2.0`, `0.5`, `1e300`).
pub fn write_float(out: &mut String, f: f64) {
    let s = format!("{f:?}");
    out.push_str(&s);
}

/// A JSON string literal with the escapes JSON requires.
pub fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Equality is the order's `Equal` (so `==`, `in`, sets and maps agree). The common
/// scalar cases and sequences of different lengths are answered directly: `cmp` is a
/// recursive call that does not inline, and `==` on ints is the hottest comparison of
/// verifiers (`all_different`, clue checks).
impl PartialEq for Value {
    #[inline]
    fn eq(&self, other: &Value) -> bool {
        use Value::*;
        match (self, other) {
            (Int(a), Int(b)) => a == b,
            (Bool(a), Bool(b)) => a == b,
            (Str(a), Str(b)) => a.as_bytes() == b.as_bytes(),
            (Enum(a, _), Enum(b, _)) => a == b,
            (Tuple(a), Tuple(b)) | (List(a), List(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x == y)
            }
            _ => self.cmp(other) == Ordering::Equal,
        }
    }
}

impl Eq for Value {}

/// Consistent with `==`, the total order's equality: floats by their bits (`total_cmp`
/// tells every bit pattern apart), enums by their variant index, records by field names
/// and values.
impl std::hash::Hash for Value {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        use Value::*;
        h.write_u8(self.rank());
        match self {
            Unit => {}
            Bool(b) => b.hash(h),
            Int(i) => i.hash(h),
            Float(f) => f.to_bits().hash(h),
            Str(s) => s.as_bytes().hash(h),
            Tuple(xs) | List(xs) => xs.as_slice().hash(h),
            Set(xs) => {
                h.write_usize(xs.len());
                xs.iter().for_each(|x| x.hash(h));
            }
            Map(m) => {
                h.write_usize(m.len());
                m.iter().for_each(|kv| kv.hash(h));
            }
            Record(fs) => {
                h.write_usize(fs.len());
                for (k, v) in fs.iter() {
                    k.as_bytes().hash(h);
                    v.hash(h);
                }
            }
            Enum(i, _) => i.hash(h),
        }
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Value) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The spec's total order: numbers numerically (floats by IEEE total order), strings
/// bytewise, sequences lexicographically, records by (name, value) pairs, enums by
/// declaration order.
impl Ord for Value {
    fn cmp(&self, other: &Value) -> Ordering {
        use Value::*;
        match (self, other) {
            (Unit, Unit) => Ordering::Equal,
            (Bool(a), Bool(b)) => a.cmp(b),
            (Int(a), Int(b)) => a.cmp(b),
            (Float(a), Float(b)) => a.total_cmp(b),
            (Str(a), Str(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Tuple(a), Tuple(b)) | (List(a), List(b)) => a.iter().cmp(b.iter()),
            (Set(a), Set(b)) => a.iter().cmp(b.iter()),
            (Map(a), Map(b)) => a.iter().cmp(b.iter()),
            (Record(a), Record(b)) => a
                .iter()
                .map(|(k, v)| (k.as_bytes(), v))
                .cmp(b.iter().map(|(k, v)| (k.as_bytes(), v))),
            (Enum(a, _), Enum(b, _)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// Checked integer arithmetic with the spec's semantics (no wrapping; Euclidean `/` `%`).
pub mod int {
    use super::{RtError, RtResult};

    /// The overflow error, built only when it happens (kept out of the hot path).
    #[cold]
    #[inline(never)]
    fn overflow(op: &str, a: i64, b: i64) -> RtError {
        RtError::new(format!("integer overflow in {a} {op} {b}"))
    }

    #[inline]
    pub fn add(a: i64, b: i64) -> RtResult<i64> {
        a.checked_add(b).ok_or_else(|| overflow("+", a, b))
    }
    #[inline]
    pub fn sub(a: i64, b: i64) -> RtResult<i64> {
        a.checked_sub(b).ok_or_else(|| overflow("-", a, b))
    }
    #[inline]
    pub fn mul(a: i64, b: i64) -> RtResult<i64> {
        a.checked_mul(b).ok_or_else(|| overflow("*", a, b))
    }
    #[inline]
    pub fn neg(a: i64) -> RtResult<i64> {
        a.checked_neg()
            .ok_or_else(|| RtError::new(format!("integer overflow in -({a})")))
    }
    /// Euclidean division: the remainder is never negative.
    #[inline]
    pub fn div(a: i64, b: i64) -> RtResult<i64> {
        if b == 0 {
            return Err(RtError::new(format!("division by zero in {a} / 0")));
        }
        a.checked_div_euclid(b).ok_or_else(|| overflow("/", a, b))
    }
    #[inline]
    pub fn rem(a: i64, b: i64) -> RtResult<i64> {
        if b == 0 {
            return Err(RtError::new(format!("division by zero in {a} % 0")));
        }
        // Only i64::MIN % -1 overflows in the machine op; mathematically it is 0.
        Ok(a.checked_rem_euclid(b).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euclidean_division() {
        assert_eq!(int::div(-7, 2), Ok(-4));
        assert_eq!(int::rem(-7, 2), Ok(1));
        assert_eq!(int::div(7, -2), Ok(-3));
        assert_eq!(int::rem(7, -2), Ok(1));
        assert!(int::div(1, 0).is_err());
        assert!(int::div(i64::MIN, -1).is_err());
        assert_eq!(int::rem(i64::MIN, -1), Ok(0));
        assert!(int::add(i64::MAX, 1).is_err());
        assert!(int::neg(i64::MIN).is_err());
    }

    #[test]
    fn display_matches_the_spec() {
        let v = Value::list(vec![
            Value::tuple(vec![Value::Int(1), Value::str("a\"b")]),
            Value::Float(2.0),
            Value::Float(0.1),
            Value::Bool(true),
            Value::Enum(2, Rc::from("pour")),
        ]);
        assert_eq!(v.display(), r#"[(1, "a\"b"), 2.0, 0.1, true, pour]"#);
        assert_eq!(Value::tuple(vec![Value::Int(1)]).display(), "(1,)");
        assert_eq!(Value::tuple(vec![]).display(), "()");
        assert_eq!(Value::str("plain").display(), "plain");
        let r = Value::record(vec![
            (Rc::from("y"), Value::Int(2)),
            (Rc::from("x"), Value::Int(1)),
        ]);
        assert_eq!(r.display(), "{x: 1, y: 2}");
        let m: BTreeMap<Value, Value> = [
            (Value::Int(2), Value::Bool(false)),
            (Value::Int(-1), Value::Bool(true)),
        ]
        .into();
        assert_eq!(Value::Map(Rc::new(m)).display(), "{-1: true, 2: false}");
    }

    #[test]
    fn order_is_total_and_structural() {
        let mut v = [
            Value::Float(f64::NAN),
            Value::Float(-0.0),
            Value::Float(0.0),
            Value::Float(-1.0),
        ];
        v.sort();
        assert_eq!(v[0].display(), "-1.0");
        assert_eq!(
            Value::list(vec![Value::Int(1), Value::Int(2)]),
            Value::list(vec![Value::Int(1), Value::Int(2)])
        );
        assert!(Value::list(vec![Value::Int(1)]) < Value::list(vec![Value::Int(1), Value::Int(0)]));
        assert!(Value::str("B") < Value::str("a"));
        assert!(Value::Enum(0, Rc::from("z")) < Value::Enum(1, Rc::from("a")));
    }

    #[test]
    fn copy_on_write_keeps_value_semantics() {
        let a = Value::list(vec![Value::Int(1), Value::Int(2)]);
        let mut b = a.clone();
        if let Value::List(items) = &mut b {
            Rc::make_mut(items)[0] = Value::Int(9);
        }
        assert_eq!(a.display(), "[1, 2]");
        assert_eq!(b.display(), "[9, 2]");
    }
}
