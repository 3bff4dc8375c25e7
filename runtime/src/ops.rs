//! Operators and builtin functions over runtime values, with the spec's semantics
//! (spec/language.md §10): checked integer arithmetic, Euclidean division, runtime errors
//! instead of panics. Shared by the evaluator and by emitted code.

use crate::rng::Rng;
use crate::value::{int, RtError, RtResult, Value};
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// Largest collection a program may build (elements); beyond it is a runtime error.
pub const MAX_COLLECTION: usize = 10_000_000;

fn err<T>(msg: impl Into<String>) -> RtResult<T> {
    Err(RtError::new(msg))
}

fn float(f: f64) -> RtResult<Value> {
    if f.is_finite() {
        // -0.0 is normalised so that equal numbers display and compare alike.
        Ok(Value::Float(if f == 0.0 { 0.0 } else { f }))
    } else {
        err(format!("float result is not finite ({f})"))
    }
}

/// The error of a collection that would grow past [`MAX_COLLECTION`].
pub fn check_len(n: usize) -> RtResult<()> {
    if n > MAX_COLLECTION {
        err(format!(
            "collection of {n} elements exceeds the limit of {MAX_COLLECTION}"
        ))
    } else {
        Ok(())
    }
}

pub fn add(a: &Value, b: &Value) -> RtResult<Value> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(Value::Int(int::add(*x, *y)?)),
        (Value::Float(x), Value::Float(y)) => float(x + y),
        (Value::Str(x), Value::Str(y)) => Ok(Value::Str(Rc::from(format!("{x}{y}")))),
        (Value::List(x), Value::List(y)) => {
            check_len(x.len() + y.len())?;
            let mut v = Vec::with_capacity(x.len() + y.len());
            v.extend(x.iter().cloned());
            v.extend(y.iter().cloned());
            Ok(Value::list(v))
        }
        _ => err(format!("cannot add {} and {}", a.display(), b.display())),
    }
}

pub fn arith(op: char, a: &Value, b: &Value) -> RtResult<Value> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(Value::Int(match op {
            '-' => int::sub(*x, *y)?,
            '*' => int::mul(*x, *y)?,
            '/' => int::div(*x, *y)?,
            '%' => int::rem(*x, *y)?,
            _ => int::add(*x, *y)?,
        })),
        (Value::Float(x), Value::Float(y)) => match op {
            '-' => float(x - y),
            '*' => float(x * y),
            '/' => float(x / y),
            _ => float(x + y),
        },
        _ => err(format!(
            "cannot apply `{op}` to {} and {}",
            a.display(),
            b.display()
        )),
    }
}

pub fn neg(a: &Value) -> RtResult<Value> {
    match a {
        Value::Int(x) => Ok(Value::Int(int::neg(*x)?)),
        Value::Float(x) => float(-x),
        _ => err(format!("cannot negate {}", a.display())),
    }
}

/// `x in coll`: list/set membership, map key membership.
pub fn contains(coll: &Value, x: &Value) -> RtResult<bool> {
    match coll {
        Value::List(v) => Ok(v.contains(x)),
        Value::Set(s) => Ok(s.contains(x)),
        Value::Map(m) => Ok(m.contains_key(x)),
        other => err(format!(
            "`in` needs a collection, found {}",
            other.display()
        )),
    }
}

pub fn index(coll: &Value, i: &Value) -> RtResult<Value> {
    index_ref(coll, i).cloned()
}

/// `coll[i]` by reference: what [`index`] returns, without cloning (the evaluator reads
/// elements of locals in place).
pub fn index_ref<'a>(coll: &'a Value, i: &Value) -> RtResult<&'a Value> {
    match (coll, i) {
        (Value::List(v), Value::Int(k)) => usize::try_from(*k)
            .ok()
            .and_then(|k| v.get(k))
            .ok_or_else(|| {
                RtError::new(format!(
                    "index {k} is out of range for a list of {} elements",
                    v.len()
                ))
            }),
        (Value::Map(m), k) => m
            .get(k)
            .ok_or_else(|| RtError::new(format!("key {} is not in the map", k.display()))),
        _ => err(format!(
            "cannot index {} with {}",
            coll.display(),
            i.display()
        )),
    }
}

pub fn field(rec: &Value, name: &str) -> RtResult<Value> {
    field_ref(rec, name).cloned()
}

/// `rec.name` by reference (see [`index_ref`]).
pub fn field_ref<'a>(rec: &'a Value, name: &str) -> RtResult<&'a Value> {
    match rec {
        Value::Record(fs) => match fs.binary_search_by(|(k, _)| (**k).cmp(name)) {
            Ok(i) => Ok(&fs[i].1),
            Err(_) => err(format!("no field `{name}`")),
        },
        other => err(format!("{} has no field `{name}`", other.display())),
    }
}

/// `rec.name` by reference, for a `name` that is usually the very `Rc` the record was
/// built with (the evaluator interns field names): the field is found by pointer first
/// and by text otherwise. Field names are distinct, so both find the same field.
pub fn field_ref_rc<'a>(rec: &'a Value, name: &Rc<str>) -> RtResult<&'a Value> {
    if let Value::Record(fs) = rec {
        if let Some((_, v)) = fs.iter().find(|(k, _)| Rc::ptr_eq(k, name)) {
            return Ok(v);
        }
    }
    field_ref(rec, name)
}

pub fn tuple_field(t: &Value, i: usize) -> RtResult<Value> {
    tuple_field_ref(t, i).cloned()
}

/// `t.i` by reference (see [`index_ref`]).
pub fn tuple_field_ref(t: &Value, i: usize) -> RtResult<&Value> {
    match t {
        Value::Tuple(v) => v
            .get(i)
            .ok_or_else(|| RtError::new(format!("tuple has no element {i}"))),
        other => err(format!("{} is not a tuple", other.display())),
    }
}

/// `abs(x)`.
pub fn abs(x: &Value) -> RtResult<Value> {
    match x {
        Value::Int(i) => i
            .checked_abs()
            .map(Value::Int)
            .ok_or_else(|| RtError::new("integer overflow in abs")),
        Value::Float(f) => float(f.abs()),
        other => err(format!("abs of {}", other.display())),
    }
}

/// `len(x)`: elements of a collection, characters of a string.
pub fn len(x: &Value) -> RtResult<Value> {
    Ok(Value::Int(match x {
        Value::List(v) => v.len(),
        Value::Set(s) => s.len(),
        Value::Map(m) => m.len(),
        Value::Str(s) => s.chars().count(),
        other => return err(format!("len of {}", other.display())),
    } as i64))
}

/// One step of an assignment target's path, evaluated (spec §10.2: the right-hand side
/// first, then every index expression, left to right, then the store).
#[derive(Clone, Debug)]
pub enum Key {
    Index(Value),
    Field(String),
    Tuple(usize),
}

/// `target[k1][k2]… = v`: copy-on-write at every level, in place where the value is not
/// shared (so `g[r][c] = v` copies no row it does not have to).
pub fn store_at(target: &mut Value, path: &[Key], v: Value) -> RtResult<()> {
    let Some((first, rest)) = path.split_first() else {
        *target = v;
        return Ok(());
    };
    match first {
        Key::Index(k) if rest.is_empty() => store(target, k, v),
        Key::Index(k) => store_at(index_mut(target, k)?, rest, v),
        Key::Field(name) => match target {
            Value::Record(fs) => {
                let fs = Rc::make_mut(fs);
                let i = fs
                    .binary_search_by(|(k, _)| (**k).cmp(name.as_str()))
                    .map_err(|_| RtError::new(format!("no field `{name}`")))?;
                store_at(&mut fs[i].1, rest, v)
            }
            other => err(format!("{} has no field `{name}`", other.display())),
        },
        Key::Tuple(i) => match target {
            Value::Tuple(items) if *i < items.len() => {
                store_at(&mut Rc::make_mut(items)[*i], rest, v)
            }
            other => err(format!("{} has no element {i}", other.display())),
        },
    }
}

/// The element `coll[k]` for updating in place (the list or map is unshared first).
fn index_mut<'a>(coll: &'a mut Value, k: &Value) -> RtResult<&'a mut Value> {
    match (coll, k) {
        (Value::List(items), Value::Int(i)) => {
            let len = items.len();
            let slot = usize::try_from(*i)
                .ok()
                .filter(|s| *s < len)
                .ok_or_else(|| {
                    RtError::new(format!(
                        "index {i} is out of range for a list of {len} elements"
                    ))
                })?;
            Ok(&mut Rc::make_mut(items)[slot])
        }
        (Value::Map(m), k) => Rc::make_mut(m)
            .get_mut(k)
            .ok_or_else(|| RtError::new(format!("key {} is not in the map", k.display()))),
        (c, k) => err(format!("cannot index {} with {}", c.display(), k.display())),
    }
}

/// `target[path] = v` on a copy-on-write value.
pub fn store(target: &mut Value, key: &Value, v: Value) -> RtResult<()> {
    match (target, key) {
        (Value::List(items), Value::Int(k)) => {
            let len = items.len();
            let slot = usize::try_from(*k)
                .ok()
                .filter(|k| *k < len)
                .ok_or_else(|| {
                    RtError::new(format!(
                        "index {k} is out of range for a list of {len} elements"
                    ))
                })?;
            Rc::make_mut(items)[slot] = v;
            Ok(())
        }
        (Value::Map(m), k) => {
            Rc::make_mut(m).insert(k.clone(), v);
            Ok(())
        }
        (t, k) => err(format!("cannot assign to {}[{}]", t.display(), k.display())),
    }
}

pub fn range(lo: i64, hi: i64, inclusive: bool) -> RtResult<Value> {
    let n = range_len(lo, hi, inclusive)?;
    Ok(Value::list(
        (0..n).map(|k| Value::Int(lo + k as i64)).collect(),
    ))
}

/// The number of elements of [`range`]`(lo, hi, inclusive)`, which are `lo`, `lo + 1`, …
/// (with its errors): loops over a range count instead of building the list.
/// `lo..=9223372036854775807` has its last element (language.md §10.4).
pub fn range_len(lo: i64, hi: i64, inclusive: bool) -> RtResult<usize> {
    // The bounds and the size limit are emitted code's (`range_bounds`): one rule.
    let (first, last) = crate::native::range_bounds(lo, hi, inclusive)?;
    Ok(if last < first {
        0
    } else {
        (last - first) as usize + 1
    })
}

/// The error of a range longer than the collection limit, written as in the source (shared
/// with emitted code, so the two back ends report the same text).
#[cold]
#[inline(never)]
pub fn range_too_long(lo: i64, hi: i64, inclusive: bool) -> RtError {
    let dots = if inclusive { "..=" } else { ".." };
    RtError::new(format!(
        "range {lo}{dots}{hi} has more than {MAX_COLLECTION} elements"
    ))
}

/// The list argument of builtin `what` (a set gives its elements in order).
pub fn list_of(v: &Value, what: &str) -> RtResult<Rc<Vec<Value>>> {
    match v {
        Value::List(l) => Ok(l.clone()),
        Value::Set(s) => Ok(Rc::new(s.iter().cloned().collect())),
        other => err(format!("{what} needs a list, found {}", other.display())),
    }
}

fn int_arg(v: &Value, what: &str) -> RtResult<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => err(format!("{what} needs an int, found {}", other.display())),
    }
}

/// A builtin function, resolved from its name once (at compile time), so a call is an
/// enum dispatch rather than a string comparison chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    Len,
    Abs,
    Min,
    Max,
    Sum,
    Count,
    All,
    Any,
    AllDifferent,
    IsPermutation,
    Sorted,
    Reversed,
    IndexOf,
    Keys,
    Values,
    Set,
    Map,
    Get,
    Zip,
    Enumerate,
    Repeat,
    Slice,
    Flatten,
    Str,
    Join,
    Float,
    Int,
    RandInt,
    RandFloat,
    Bernoulli,
    Choice,
    Shuffle,
    Sample,
    Permutation,
}

const BUILTINS: &[(Builtin, &str)] = &[
    (Builtin::Len, "len"),
    (Builtin::Abs, "abs"),
    (Builtin::Min, "min"),
    (Builtin::Max, "max"),
    (Builtin::Sum, "sum"),
    (Builtin::Count, "count"),
    (Builtin::All, "all"),
    (Builtin::Any, "any"),
    (Builtin::AllDifferent, "all_different"),
    (Builtin::IsPermutation, "is_permutation"),
    (Builtin::Sorted, "sorted"),
    (Builtin::Reversed, "reversed"),
    (Builtin::IndexOf, "index_of"),
    (Builtin::Keys, "keys"),
    (Builtin::Values, "values"),
    (Builtin::Set, "set"),
    (Builtin::Map, "map"),
    (Builtin::Get, "get"),
    (Builtin::Zip, "zip"),
    (Builtin::Enumerate, "enumerate"),
    (Builtin::Repeat, "repeat"),
    (Builtin::Slice, "slice"),
    (Builtin::Flatten, "flatten"),
    (Builtin::Str, "str"),
    (Builtin::Join, "join"),
    (Builtin::Float, "float"),
    (Builtin::Int, "int"),
    (Builtin::RandInt, "rand_int"),
    (Builtin::RandFloat, "rand_float"),
    (Builtin::Bernoulli, "bernoulli"),
    (Builtin::Choice, "choice"),
    (Builtin::Shuffle, "shuffle"),
    (Builtin::Sample, "sample"),
    (Builtin::Permutation, "permutation"),
];

impl Builtin {
    pub fn from_name(name: &str) -> Option<Builtin> {
        BUILTINS.iter().find(|(_, n)| *n == name).map(|(b, _)| *b)
    }

    /// The table lists the builtins in declaration order (a test checks it), so the name
    /// is one lookup: `call_builtin` asks for it on every call.
    pub fn name(self) -> &'static str {
        BUILTINS[self as usize].1
    }
}

/// What a builtin call pays in fuel beyond the call itself (spec/formats.md §5.2): one
/// step per element of the collections it goes through, so that a loop calling it pays
/// for that work (`forall d in deps: index_of(order, d.0) < …` over 100,000 deps of a
/// tampered row took 30 s to verify before; the spec lists what is still unpaid). Both back ends pay from this one table, at the same
/// point: `Args` after the arguments are evaluated and before the call, `Result` after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paid {
    /// Nothing beyond the call: constant work, a lookup (`get`), a scalar (`abs`, `min(a,
    /// b)`), or a view whose elements the loop that uses it pays for (`enumerate`, `zip`).
    Nothing,
    /// The elements of these arguments (lists, sets and maps; nothing for anything else).
    Args(&'static [usize]),
    /// The elements of the collection the call returns (what it builds).
    Result,
}

impl Builtin {
    /// The fuel a call with `arity` arguments pays (see [`Paid`]).
    pub fn paid(self, arity: usize) -> Paid {
        use Builtin as B;
        match self {
            B::Min | B::Max if arity == 1 => Paid::Args(&[0]),
            B::Sum
            | B::Count
            | B::All
            | B::Any
            | B::AllDifferent
            | B::Sorted
            | B::Reversed
            | B::IndexOf
            | B::Keys
            | B::Values
            | B::Set
            | B::Map
            | B::Join
            | B::Shuffle
            | B::Sample => Paid::Args(&[0]),
            B::IsPermutation => Paid::Args(&[0, 1]),
            B::Slice | B::Flatten | B::Repeat | B::Permutation => Paid::Result,
            _ => Paid::Nothing,
        }
    }
}

/// The elements a [`Paid`] rule counts in `v`: a list's, set's or map's; 0 for anything
/// else (strings included).
pub fn elements(v: &Value) -> u64 {
    match v {
        Value::List(x) => x.len() as u64,
        Value::Set(x) => x.len() as u64,
        Value::Map(x) => x.len() as u64,
        _ => 0,
    }
}

/// The fuel `x in coll` pays: a list is searched element by element, one step each; a
/// set or map lookup pays nothing beyond the expression.
pub fn contains_paid(coll: &Value) -> u64 {
    match coll {
        Value::List(x) => x.len() as u64,
        _ => 0,
    }
}

/// Calls a builtin by name (see [`call_builtin`]).
pub fn call(name: &str, args: &[Value], rng: Option<&mut Rng>) -> RtResult<Value> {
    match Builtin::from_name(name) {
        Some(b) => call_builtin(b, args, rng),
        None => err(format!("unknown builtin `{name}`")),
    }
}

/// Calls a builtin. `rng` is `Some` only in the generator (the checker guarantees random
/// builtins are never reached elsewhere; reaching one without an rng is an error).
/// The arguments may be borrowed (`Cow`, `&Value`): the evaluator passes locals in place.
pub fn call_builtin<A: Borrow<Value>>(
    b: Builtin,
    args: &[A],
    rng: Option<&mut Rng>,
) -> RtResult<Value> {
    let name = b.name();
    let a = |i: usize| args.get(i).map_or(&Value::Unit, Borrow::borrow);
    match b {
        Builtin::Len => len(a(0)),
        Builtin::Abs => abs(a(0)),
        Builtin::Min | Builtin::Max => {
            let pick = |x: Value, y: Value| if (name == "min") == (y < x) { y } else { x };
            if args.len() == 2 {
                return Ok(pick(a(0).clone(), a(1).clone()));
            }
            let xs = list_of(a(0), name)?;
            let mut it = xs.iter().cloned();
            let first = it
                .next()
                .ok_or_else(|| RtError::new(format!("{name} of an empty list")))?;
            Ok(it.fold(first, pick))
        }
        Builtin::Sum => {
            let xs = list_of(a(0), "sum")?;
            let mut acc = match xs.first() {
                Some(Value::Float(_)) => Value::Float(0.0),
                _ => Value::Int(0),
            };
            for x in xs.iter() {
                acc = add(&acc, x)?;
            }
            Ok(acc)
        }
        Builtin::Count => Ok(Value::Int(
            list_of(a(0), "count")?
                .iter()
                .filter(|x| *x == a(1))
                .count() as i64,
        )),
        Builtin::All | Builtin::Any => {
            let xs = list_of(a(0), name)?;
            let want = name == "any";
            for x in xs.iter() {
                if x.as_bool()? == want {
                    return Ok(Value::Bool(want));
                }
            }
            Ok(Value::Bool(!want))
        }
        Builtin::AllDifferent => {
            let xs = list_of(a(0), name)?;
            // Small non-negative ints (digits, colours, positions), the common case: one
            // bit each. A repeat settles it; any other value falls back to the general
            // paths below, which use the same equality.
            let mut seen = 0u128;
            let mut small = true;
            for x in xs.iter() {
                match x {
                    Value::Int(i) if (0..128).contains(i) => {
                        let bit = 1u128 << i;
                        if seen & bit != 0 {
                            return Ok(Value::Bool(false));
                        }
                        seen |= bit;
                    }
                    _ => {
                        small = false;
                        break;
                    }
                }
            }
            if small {
                return Ok(Value::Bool(true));
            }
            // Short lists (rows of a puzzle) compare pairwise, without building a set.
            if xs.len() <= 16 {
                let distinct = xs
                    .iter()
                    .enumerate()
                    .all(|(i, x)| xs[..i].iter().all(|y| y != x));
                return Ok(Value::Bool(distinct));
            }
            let set: BTreeSet<&Value> = xs.iter().collect();
            Ok(Value::Bool(set.len() == xs.len()))
        }
        Builtin::IsPermutation => {
            let mut xs = list_of(a(0), name)?.as_ref().clone();
            let mut ys = a(1).iter_elems()?;
            xs.sort();
            ys.sort();
            Ok(Value::Bool(xs == ys))
        }
        Builtin::Sorted => {
            let mut xs = list_of(a(0), name)?.as_ref().clone();
            xs.sort();
            Ok(Value::list(xs))
        }
        Builtin::Reversed => {
            let mut xs = list_of(a(0), name)?.as_ref().clone();
            xs.reverse();
            Ok(Value::list(xs))
        }
        Builtin::IndexOf => Ok(Value::Int(
            list_of(a(0), name)?
                .iter()
                .position(|x| x == a(1))
                .map_or(-1, |i| i as i64),
        )),
        Builtin::Keys | Builtin::Values => match a(0) {
            Value::Map(m) => Ok(Value::list(if name == "keys" {
                m.keys().cloned().collect()
            } else {
                m.values().cloned().collect()
            })),
            other => err(format!("{name} of {}", other.display())),
        },
        Builtin::Set => Ok(Value::Set(Rc::new(
            a(0).iter_elems()?.into_iter().collect(),
        ))),
        Builtin::Map => {
            let mut m = BTreeMap::new();
            for p in list_of(a(0), name)?.iter() {
                let k = crate::ops::tuple_field(p, 0)?;
                let v = crate::ops::tuple_field(p, 1)?;
                m.insert(k, v);
            }
            Ok(Value::Map(Rc::new(m)))
        }
        Builtin::Get => match a(0) {
            Value::Map(m) => Ok(m.get(a(1)).cloned().unwrap_or_else(|| a(2).clone())),
            other => err(format!("get on {}", other.display())),
        },
        Builtin::Zip => {
            let (x, y) = (list_of(a(0), name)?, list_of(a(1), name)?);
            Ok(Value::list(
                x.iter()
                    .zip(y.iter())
                    .map(|(p, q)| Value::tuple(vec![p.clone(), q.clone()]))
                    .collect(),
            ))
        }
        Builtin::Enumerate => Ok(Value::list(
            list_of(a(0), name)?
                .iter()
                .enumerate()
                .map(|(i, x)| Value::tuple(vec![Value::Int(i as i64), x.clone()]))
                .collect(),
        )),
        Builtin::Repeat => {
            let n = int_arg(a(1), name)?;
            if n < 0 {
                return err(format!("repeat with a negative count ({n})"));
            }
            check_len(n as usize)?;
            Ok(Value::list(vec![a(0).clone(); n as usize]))
        }
        Builtin::Slice => {
            let (lo, hi) = (int_arg(a(1), name)?, int_arg(a(2), name)?);
            match a(0) {
                Value::List(v) => {
                    let clamp = |i: i64| i.clamp(0, v.len() as i64) as usize;
                    let (l, h) = (clamp(lo), clamp(hi));
                    Ok(Value::list(if l < h {
                        v[l..h].to_vec()
                    } else {
                        Vec::new()
                    }))
                }
                Value::Str(s) => {
                    let n = s.chars().count() as i64;
                    let (l, h) = (lo.clamp(0, n) as usize, hi.clamp(0, n) as usize);
                    Ok(Value::str(
                        &s.chars()
                            .skip(l)
                            .take(h.saturating_sub(l))
                            .collect::<String>(),
                    ))
                }
                other => err(format!("slice of {}", other.display())),
            }
        }
        Builtin::Flatten => {
            let mut out = Vec::new();
            for x in list_of(a(0), name)?.iter() {
                out.extend(list_of(x, name)?.iter().cloned());
                check_len(out.len())?;
            }
            Ok(Value::list(out))
        }
        Builtin::Str => Ok(Value::str(&a(0).display())),
        Builtin::Join => {
            let sep = match a(1) {
                Value::Str(s) => s.clone(),
                other => return err(format!("join separator {}", other.display())),
            };
            let parts: Vec<String> = list_of(a(0), name)?.iter().map(Value::display).collect();
            Ok(Value::str(&parts.join(&sep)))
        }
        Builtin::Float => match a(0) {
            Value::Int(i) => float(*i as f64),
            Value::Float(f) => float(*f),
            other => err(format!("float of {}", other.display())),
        },
        Builtin::Int => match a(0) {
            Value::Int(i) => Ok(Value::Int(*i)),
            Value::Float(f)
                if f.is_finite()
                    && f.trunc() >= -9.223_372_036_854_776e18
                    && f.trunc() < 9.223_372_036_854_776e18 =>
            {
                Ok(Value::Int(f.trunc() as i64))
            }
            other => err(format!("int of {} is out of range", other.display())),
        },
        _ => {
            let Some(rng) = rng else {
                return err(format!(
                    "`{name}` is random and can only run in the generator"
                ));
            };
            random(b, args, rng)
        }
    }
}

fn random<A: Borrow<Value>>(b: Builtin, args: &[A], rng: &mut Rng) -> RtResult<Value> {
    let name = b.name();
    let a = |i: usize| args.get(i).map_or(&Value::Unit, Borrow::borrow);
    match b {
        Builtin::RandInt => Ok(Value::Int(
            rng.int_in(int_arg(a(0), name)?, int_arg(a(1), name)?)?,
        )),
        Builtin::RandFloat => Ok(Value::Float(rng.float01())),
        Builtin::Bernoulli => match a(0) {
            Value::Float(p) => Ok(Value::Bool(rng.bernoulli(*p))),
            other => err(format!(
                "bernoulli needs a float, found {}",
                other.display()
            )),
        },
        Builtin::Choice => {
            let xs = list_of(a(0), name)?;
            Ok(xs[rng.index(xs.len())?].clone())
        }
        Builtin::Shuffle => {
            let mut xs = list_of(a(0), name)?.as_ref().clone();
            rng.shuffle(&mut xs);
            Ok(Value::list(xs))
        }
        Builtin::Sample => {
            let xs = list_of(a(0), name)?;
            Ok(Value::list(rng.sample(&xs, int_arg(a(1), name)?)?))
        }
        Builtin::Permutation => {
            let n = int_arg(a(0), name)?;
            if n < 0 {
                return err(format!("permutation of a negative size ({n})"));
            }
            check_len(n as usize)?;
            let mut xs: Vec<Value> = (0..n).map(Value::Int).collect();
            rng.shuffle(&mut xs);
            Ok(Value::list(xs))
        }
        _ => err(format!("unknown builtin `{name}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_is_in_declaration_order() {
        for (i, (b, name)) in BUILTINS.iter().enumerate() {
            assert_eq!(*b as usize, i, "{name}");
            assert_eq!(Builtin::from_name(name), Some(*b));
        }
    }

    #[test]
    fn all_different_agrees_with_a_set() {
        // Small ints (the bitset), ints beyond it (pairwise and set), and lists that mix
        // both or hold other values.
        let mixes: [fn(i64) -> Value; 4] = [
            Value::Int,
            |i| Value::Int(i * 37 - 200),
            |i| {
                if i % 3 == 0 {
                    Value::Int(i + 120)
                } else {
                    Value::Int(i)
                }
            },
            |i| {
                if i == 3 {
                    Value::str("x")
                } else {
                    Value::Int(i)
                }
            },
        ];
        for mk in mixes {
            for n in [0usize, 1, 2, 5, 16, 17, 40, 130] {
                for dup in [None, Some(0), Some(n / 2)] {
                    let mut xs: Vec<Value> = (0..n as i64).map(mk).collect();
                    if let (Some(d), true) = (dup, n > 1) {
                        xs[n - 1] = xs[d].clone();
                    }
                    let want = xs.iter().collect::<BTreeSet<_>>().len() == xs.len();
                    let got = call_builtin(Builtin::AllDifferent, &[Value::list(xs)], None);
                    assert_eq!(got, Ok(Value::Bool(want)), "n={n} dup={dup:?}");
                }
            }
        }
    }
}
