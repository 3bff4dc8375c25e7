//! What emitted code is written in: the language's types as Rust types, and its operators
//! and builtins over them, with exactly the evaluator's semantics and messages (the same
//! checked arithmetic, samplers, orders and displays, from this crate).
//!
//! | language | Rust |
//! |---|---|
//! | `int`, `bool`, `()` | `i64`, `bool`, `()` |
//! | `float` | [`F64`] (ordered by the IEEE total order, as values are) |
//! | `string` | [`Str`] (`Rc<str>`: cheap to copy) |
//! | `[T]`, `set[T]`, `map[K, V]` | [`List`], [`Set`], [`Map`] (shared, copy on write) |
//! | tuples | Rust tuples |
//! | records | structs emitted per set of field names (generic over the field types) |
//! | enums | [`Enum`] (variant index and name) |
//!
//! Every type implements [`Val`]: conversion to and from runtime [`Value`]s (the boundary
//! with rows, decoding and the row writers) and display.

use crate::ops::{check_len, MAX_COLLECTION};
use crate::rng::Rng;
use crate::value::{write_float, write_json_string, RtError, RtResult, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

pub type Str = Rc<str>;

/// A string value from a literal.
#[inline]
pub fn s(text: &str) -> Str {
    Rc::from(text)
}

#[inline]
fn err<T>(msg: impl Into<String>) -> RtResult<T> {
    Err(RtError::new(msg))
}

/// The machine state emitted code threads through: fuel (steps left) and, in the
/// generator, the random stream.
pub struct Machine {
    pub fuel: u64,
    pub rng: Option<Rng>,
}

impl Machine {
    #[inline]
    pub fn new(fuel: u64, rng: Option<Rng>) -> Machine {
        Machine { fuel, rng }
    }

    /// One step: a call of a user function.
    #[inline]
    pub fn tick(&mut self) -> RtResult<()> {
        charge(&mut self.fuel, 1)
    }

    /// The steps of a loop over `n` elements, paid when the loop starts.
    #[inline]
    pub fn charge(&mut self, n: usize) -> RtResult<()> {
        charge(&mut self.fuel, n as u64)
    }

    pub fn rng(&mut self, name: &str) -> RtResult<&mut Rng> {
        match &mut self.rng {
            Some(r) => Ok(r),
            None => err(format!(
                "`{name}` is random and can only run in the generator"
            )),
        }
    }
}

/// Spends `n` steps of the budget `fuel` (spec/formats.md §6.4): one per call of a user
/// function, and one per element of a loop, comprehension, quantifier or template `{for}`,
/// paid all at once when it starts (so a huge loop fails before doing any work, and no
/// iteration pays a check). When the budget cannot pay, it is emptied: everything after
/// fails too. The evaluator and emitted code both count with this.
#[inline]
pub fn charge(fuel: &mut u64, n: u64) -> RtResult<()> {
    match fuel.checked_sub(n) {
        Some(left) => {
            *fuel = left;
            Ok(())
        }
        None => {
            *fuel = 0;
            Err(fuel_out())
        }
    }
}

// Error constructors stay out of the hot paths they guard.
#[cold]
#[inline(never)]
fn fuel_out() -> RtError {
    RtError::new("step limit exceeded (a loop or comprehension is too large)")
}

// ---------------------------------------------------------------------------- values

/// A float of the language: finite, never `-0.0`, totally ordered.
#[derive(Clone, Copy, Debug)]
pub struct F64(pub f64);

impl PartialEq for F64 {
    #[inline]
    fn eq(&self, o: &F64) -> bool {
        self.0.total_cmp(&o.0) == std::cmp::Ordering::Equal
    }
}
impl Eq for F64 {}
impl PartialOrd for F64 {
    #[inline]
    fn partial_cmp(&self, o: &F64) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for F64 {
    #[inline]
    fn cmp(&self, o: &F64) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// A float result: an error when not finite, `-0.0` normalised (spec §10.3).
#[inline]
pub fn float(f: f64) -> RtResult<F64> {
    if f.is_finite() {
        Ok(F64(if f == 0.0 { 0.0 } else { f }))
    } else {
        err(format!("float result is not finite ({f})"))
    }
}

/// An enum value: the variant's index (its order) and name. All enums share this type:
/// the checker keeps them apart.
#[derive(Clone, Debug)]
pub struct Enum(pub u32, pub Str);

impl PartialEq for Enum {
    #[inline]
    fn eq(&self, o: &Enum) -> bool {
        self.0 == o.0
    }
}
impl Eq for Enum {}
impl PartialOrd for Enum {
    #[inline]
    fn partial_cmp(&self, o: &Enum) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Enum {
    #[inline]
    fn cmp(&self, o: &Enum) -> std::cmp::Ordering {
        self.0.cmp(&o.0)
    }
}

/// A list: shared, copy on write. The empty list holds no allocation, so the many empty
/// results of filtering comprehensions cost nothing (`None`; never `Some` of an empty
/// slice, though comparisons would not mind). The elements live in the `Rc`'s own
/// allocation (`Rc<[T]>`, not `Rc<Vec<T>>`): a list costs one allocation, exactly sized,
/// and reading an element follows one pointer.
#[derive(Clone, Debug)]
pub struct List<T>(Option<Rc<[T]>>);

impl<T> List<T> {
    #[inline]
    pub fn as_slice(&self) -> &[T] {
        match &self.0 {
            Some(v) => v,
            None => &[],
        }
    }
}

impl<T: PartialEq> PartialEq for List<T> {
    #[inline]
    fn eq(&self, o: &List<T>) -> bool {
        self.as_slice() == o.as_slice()
    }
}

impl<T: Eq> Eq for List<T> {}

impl<T: PartialOrd> PartialOrd for List<T> {
    #[inline]
    fn partial_cmp(&self, o: &List<T>) -> Option<std::cmp::Ordering> {
        self.as_slice().partial_cmp(o.as_slice())
    }
}

impl<T: Ord> Ord for List<T> {
    #[inline]
    fn cmp(&self, o: &List<T>) -> std::cmp::Ordering {
        self.as_slice().cmp(o.as_slice())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Set<T>(pub Rc<BTreeSet<T>>);

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Map<K, V>(pub Rc<BTreeMap<K, V>>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(None)
    }
}

#[cold]
#[inline(never)]
fn out_of_range(i: i64, len: usize) -> RtError {
    RtError::new(format!(
        "index {i} is out of range for a list of {len} elements"
    ))
}

#[inline]
fn slot(i: i64, len: usize) -> RtResult<usize> {
    // A negative index wraps to a huge one: one comparison checks both ends.
    if (i as u64) < len as u64 {
        Ok(i as usize)
    } else {
        Err(out_of_range(i, len))
    }
}

impl<T: Clone> List<T> {
    #[inline]
    pub fn new() -> List<T> {
        List::default()
    }

    #[inline]
    pub fn from_vec(v: Vec<T>) -> List<T> {
        List(if v.is_empty() {
            None
        } else {
            Some(Rc::from(v))
        })
    }

    /// A list literal: one allocation, the elements moved in (`from_vec` would allocate
    /// the `Vec` and then the `Rc`).
    #[inline]
    pub fn from_array<const N: usize>(a: [T; N]) -> List<T> {
        List(if N == 0 { None } else { Some(Rc::from(a)) })
    }

    /// The list of a copy of `s`: one allocation.
    #[inline]
    pub fn from_slice(s: &[T]) -> List<T> {
        List(if s.is_empty() {
            None
        } else {
            Some(Rc::from(s))
        })
    }

    /// The list of the elements of `buf`, which is left empty with its capacity: emitted
    /// comprehensions collect into a buffer reused across their runs (spec/emit.md §3),
    /// so building a list costs one allocation of its exact size and no growth.
    #[inline]
    pub fn take(buf: &mut Vec<T>) -> List<T> {
        // `Drain` has an exact length: the `Rc<[T]>` is allocated once and the elements
        // are moved into it.
        List(if buf.is_empty() {
            None
        } else {
            Some(buf.drain(..).collect())
        })
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    #[inline]
    pub fn items(&self) -> impl Iterator<Item = T> + '_ {
        self.as_slice().iter().cloned()
    }
}

/// Reading `c[k]`: a list by position, a map by key.
pub trait At<K> {
    type Out;
    fn at_ref(&self, k: &K) -> RtResult<&Self::Out>;
    #[inline]
    fn at(&self, k: &K) -> RtResult<Self::Out>
    where
        Self::Out: Clone,
    {
        self.at_ref(k).cloned()
    }
}

/// Writing `c[k] = v` (a list position must exist; a map key is inserted) and reaching
/// into `c[k]` to write deeper (both must exist).
pub trait AtMut<K>: At<K> {
    fn at_mut(&mut self, k: &K) -> RtResult<&mut Self::Out>;
    fn store(&mut self, k: K, v: Self::Out) -> RtResult<()>;
}

impl<T: Clone> At<i64> for List<T> {
    type Out = T;
    #[inline]
    fn at_ref(&self, k: &i64) -> RtResult<&T> {
        let s = self.as_slice();
        let i = slot(*k, s.len())?;
        Ok(&s[i])
    }
}

impl<T: Clone> AtMut<i64> for List<T> {
    #[inline]
    fn at_mut(&mut self, k: &i64) -> RtResult<&mut T> {
        let i = slot(*k, self.len())?;
        match &mut self.0 {
            Some(v) => Ok(&mut Rc::make_mut(v)[i]),
            None => Err(out_of_range(*k, 0)),
        }
    }
    #[inline]
    fn store(&mut self, k: i64, v: T) -> RtResult<()> {
        *self.at_mut(&k)? = v;
        Ok(())
    }
}

impl<K: Val, V: Clone> At<K> for Map<K, V> {
    type Out = V;
    #[inline]
    fn at_ref(&self, k: &K) -> RtResult<&V> {
        self.0
            .get(k)
            .ok_or_else(|| RtError::new(format!("key {} is not in the map", k.display())))
    }
}

impl<K: Val, V: Clone> AtMut<K> for Map<K, V> {
    #[inline]
    fn at_mut(&mut self, k: &K) -> RtResult<&mut V> {
        if !self.0.contains_key(k) {
            return err(format!("key {} is not in the map", k.display()));
        }
        Ok(Rc::make_mut(&mut self.0)
            .get_mut(k)
            .expect("present: checked above"))
    }
    #[inline]
    fn store(&mut self, k: K, v: V) -> RtResult<()> {
        Rc::make_mut(&mut self.0).insert(k, v);
        Ok(())
    }
}

/// What `for`, comprehensions, quantifiers and template loops iterate: lists in order,
/// sets ascending, maps as ascending `(key, value)` pairs. Elements are copied out one at
/// a time (cheap: values share their contents), the collection itself is not.
pub trait Iter {
    type Item: Clone;
    type It<'a>: Iterator<Item = Self::Item>
    where
        Self: 'a;
    fn iter_items(&self) -> Self::It<'_>;
}

impl<T: Clone> Iter for List<T> {
    type Item = T;
    type It<'a>
        = std::iter::Cloned<std::slice::Iter<'a, T>>
    where
        T: 'a;
    #[inline]
    fn iter_items(&self) -> Self::It<'_> {
        self.as_slice().iter().cloned()
    }
}

impl<T: Clone> Iter for Set<T> {
    type Item = T;
    type It<'a>
        = std::iter::Cloned<std::collections::btree_set::Iter<'a, T>>
    where
        T: 'a;
    #[inline]
    fn iter_items(&self) -> Self::It<'_> {
        self.0.iter().cloned()
    }
}

/// The `(key, value)` pairs of a map, in ascending key order.
pub struct Pairs<'a, K, V>(std::collections::btree_map::Iter<'a, K, V>);

impl<K: Clone, V: Clone> Iterator for Pairs<'_, K, V> {
    type Item = (K, V);
    #[inline]
    fn next(&mut self) -> Option<(K, V)> {
        self.0.next().map(|(k, v)| (k.clone(), v.clone()))
    }
}

impl<K: Clone, V: Clone> Iter for Map<K, V> {
    type Item = (K, V);
    type It<'a>
        = Pairs<'a, K, V>
    where
        K: 'a,
        V: 'a;
    #[inline]
    fn iter_items(&self) -> Self::It<'_> {
        Pairs(self.0.iter())
    }
}

/// The elements of a list or set as a slice (builtins taking `C[T]`).
pub trait Elems<T> {
    fn with<R>(&self, f: impl FnOnce(&[T]) -> R) -> R;
}

impl<T> Elems<T> for List<T> {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&[T]) -> R) -> R {
        f(self.as_slice())
    }
}

impl<T: Clone> Elems<T> for Set<T> {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&[T]) -> R) -> R {
        let v: Vec<T> = self.0.iter().cloned().collect();
        f(&v)
    }
}

// ------------------------------------------------------------------ conversion, display

/// A value of the language in its Rust form.
pub trait Val: Clone + Ord {
    fn to_value(&self) -> Value;
    fn from_value(v: &Value) -> RtResult<Self>;
    /// The display (spec §10.8): strings raw at the top level, quoted inside containers.
    fn show(&self, out: &mut String, top: bool);

    fn display(&self) -> String {
        let mut s = String::new();
        self.show(&mut s, true);
        s
    }
}

fn mismatch<T>(want: &str, v: &Value) -> RtResult<T> {
    err(format!("expected {want}, found {}", v.display()))
}

impl Val for () {
    fn to_value(&self) -> Value {
        Value::Unit
    }
    fn from_value(v: &Value) -> RtResult<()> {
        match v {
            Value::Unit => Ok(()),
            other => mismatch("()", other),
        }
    }
    fn show(&self, out: &mut String, _: bool) {
        out.push_str("()");
    }
}

impl Val for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
    fn from_value(v: &Value) -> RtResult<bool> {
        match v {
            Value::Bool(b) => Ok(*b),
            other => mismatch("a bool", other),
        }
    }
    fn show(&self, out: &mut String, _: bool) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

impl Val for i64 {
    fn to_value(&self) -> Value {
        Value::Int(*self)
    }
    fn from_value(v: &Value) -> RtResult<i64> {
        match v {
            Value::Int(i) => Ok(*i),
            other => mismatch("an int", other),
        }
    }
    fn show(&self, out: &mut String, _: bool) {
        use std::fmt::Write;
        let _ = write!(out, "{self}");
    }
}

impl Val for F64 {
    fn to_value(&self) -> Value {
        Value::Float(self.0)
    }
    fn from_value(v: &Value) -> RtResult<F64> {
        match v {
            Value::Float(f) => Ok(F64(*f)),
            other => mismatch("a float", other),
        }
    }
    fn show(&self, out: &mut String, _: bool) {
        write_float(out, self.0);
    }
}

impl Val for Str {
    fn to_value(&self) -> Value {
        Value::Str(self.clone())
    }
    fn from_value(v: &Value) -> RtResult<Str> {
        match v {
            Value::Str(s) => Ok(s.clone()),
            other => mismatch("a string", other),
        }
    }
    fn show(&self, out: &mut String, top: bool) {
        if top {
            out.push_str(self);
        } else {
            write_json_string(out, self);
        }
    }
}

impl Val for Enum {
    fn to_value(&self) -> Value {
        Value::Enum(self.0, self.1.clone())
    }
    fn from_value(v: &Value) -> RtResult<Enum> {
        match v {
            Value::Enum(i, n) => Ok(Enum(*i, n.clone())),
            other => mismatch("an enum value", other),
        }
    }
    fn show(&self, out: &mut String, _: bool) {
        out.push_str(&self.1);
    }
}

fn show_seq<'a, T: Val + 'a>(
    out: &mut String,
    open: &str,
    close: &str,
    items: impl Iterator<Item = &'a T>,
) {
    crate::value::write_items(out, open, close, items, |v, out| v.show(out, false));
}

impl<T: Val> Val for List<T> {
    fn to_value(&self) -> Value {
        Value::list(self.as_slice().iter().map(Val::to_value).collect())
    }
    fn from_value(v: &Value) -> RtResult<List<T>> {
        match v {
            Value::List(items) => Ok(List::from_vec(
                items.iter().map(T::from_value).collect::<RtResult<_>>()?,
            )),
            other => mismatch("a list", other),
        }
    }
    fn show(&self, out: &mut String, _: bool) {
        show_seq(out, "[", "]", self.as_slice().iter());
    }
}

impl<T: Val> Val for Set<T> {
    fn to_value(&self) -> Value {
        Value::Set(Rc::new(self.0.iter().map(Val::to_value).collect()))
    }
    fn from_value(v: &Value) -> RtResult<Set<T>> {
        match v {
            Value::Set(items) => Ok(Set(Rc::new(
                items.iter().map(T::from_value).collect::<RtResult<_>>()?,
            ))),
            other => mismatch("a set", other),
        }
    }
    fn show(&self, out: &mut String, _: bool) {
        show_seq(out, "{", "}", self.0.iter());
    }
}

impl<K: Val, V: Val> Val for Map<K, V> {
    fn to_value(&self) -> Value {
        Value::Map(Rc::new(
            self.0
                .iter()
                .map(|(k, v)| (k.to_value(), v.to_value()))
                .collect(),
        ))
    }
    fn from_value(v: &Value) -> RtResult<Map<K, V>> {
        match v {
            Value::Map(m) => Ok(Map(Rc::new(
                m.iter()
                    .map(|(k, v)| Ok((K::from_value(k)?, V::from_value(v)?)))
                    .collect::<RtResult<_>>()?,
            ))),
            other => mismatch("a map", other),
        }
    }
    fn show(&self, out: &mut String, _: bool) {
        out.push('{');
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            k.show(out, false);
            out.push_str(": ");
            v.show(out, false);
        }
        out.push('}');
    }
}

macro_rules! tuple_val {
    ($n:expr; $($t:ident $i:tt),+) => {
        impl<$($t: Val),+> Val for ($($t,)+) {
            fn to_value(&self) -> Value {
                Value::tuple(vec![$(self.$i.to_value()),+])
            }
            fn from_value(v: &Value) -> RtResult<Self> {
                match v {
                    Value::Tuple(items) if items.len() == $n => {
                        Ok(($($t::from_value(&items[$i])?,)+))
                    }
                    other => mismatch(concat!("a tuple of ", stringify!($n)), other),
                }
            }
            fn show(&self, out: &mut String, _: bool) {
                out.push('(');
                $(
                    if $i > 0 {
                        out.push_str(", ");
                    }
                    self.$i.show(out, false);
                )+
                // A one-element tuple shows its comma: `(1,)`.
                if $n == 1 {
                    out.push(',');
                }
                out.push(')');
            }
        }
    };
}

tuple_val!(1; A 0);
tuple_val!(2; A 0, B 1);
tuple_val!(3; A 0, B 1, C 2);
tuple_val!(4; A 0, B 1, C 2, D 3);
tuple_val!(5; A 0, B 1, C 2, D 3, E 4);
tuple_val!(6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_val!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_val!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_val!(9; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_val!(10; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_val!(11; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_val!(12; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

/// A record field from a runtime record value (emitted record structs use this).
pub fn record_field<T: Val>(v: &Value, name: &str) -> RtResult<T> {
    match v {
        Value::Record(fs) => match fs.binary_search_by(|(k, _)| (**k).cmp(name)) {
            Ok(i) => T::from_value(&fs[i].1),
            Err(_) => err(format!("no field `{name}`")),
        },
        other => mismatch("a record", other),
    }
}

/// The display of a record's field (emitted record structs use this).
pub fn show_field<T: Val>(out: &mut String, first: bool, name: &str, v: &T) {
    if !first {
        out.push_str(", ");
    }
    out.push_str(name);
    out.push_str(": ");
    v.show(out, false);
}

// ---------------------------------------------------------------------------- operators

/// `+`: ints (checked), floats (finite), strings (concatenation), lists (concatenation).
pub trait Plus: Sized {
    fn plus(self, o: Self) -> RtResult<Self>;
}

impl Plus for i64 {
    #[inline]
    fn plus(self, o: i64) -> RtResult<i64> {
        crate::value::int::add(self, o)
    }
}

impl Plus for F64 {
    #[inline]
    fn plus(self, o: F64) -> RtResult<F64> {
        float(self.0 + o.0)
    }
}

impl Plus for Str {
    #[inline]
    fn plus(self, o: Str) -> RtResult<Str> {
        Ok(Rc::from(format!("{self}{o}")))
    }
}

impl<T: Clone> Plus for List<T> {
    #[inline]
    fn plus(self, o: List<T>) -> RtResult<List<T>> {
        check_len(self.len() + o.len())?;
        if self.is_empty() {
            return Ok(o);
        }
        if o.is_empty() {
            return Ok(self);
        }
        // An exact-size iterator: the `Rc<[T]>` is allocated once (no `Vec` on the way).
        let both = self.as_slice().iter().chain(o.as_slice()).cloned();
        Ok(List(Some(both.collect())))
    }
}

#[inline]
pub fn plus<T: Plus>(a: T, b: T) -> RtResult<T> {
    a.plus(b)
}

/// `-`, `*`, `/`, unary `-`, `abs`: ints (checked, Euclidean) and floats (finite).
pub trait Num: Plus + Copy + Ord {
    const ZERO: Self;
    fn minus(self, o: Self) -> RtResult<Self>;
    fn times(self, o: Self) -> RtResult<Self>;
    fn over(self, o: Self) -> RtResult<Self>;
    fn negate(self) -> RtResult<Self>;
    fn absolute(self) -> RtResult<Self>;
}

impl Num for i64 {
    const ZERO: i64 = 0;
    #[inline]
    fn minus(self, o: i64) -> RtResult<i64> {
        crate::value::int::sub(self, o)
    }
    #[inline]
    fn times(self, o: i64) -> RtResult<i64> {
        crate::value::int::mul(self, o)
    }
    #[inline]
    fn over(self, o: i64) -> RtResult<i64> {
        crate::value::int::div(self, o)
    }
    #[inline]
    fn negate(self) -> RtResult<i64> {
        crate::value::int::neg(self)
    }
    #[inline]
    fn absolute(self) -> RtResult<i64> {
        self.checked_abs()
            .ok_or_else(|| RtError::new("integer overflow in abs"))
    }
}

impl Num for F64 {
    const ZERO: F64 = F64(0.0);
    #[inline]
    fn minus(self, o: F64) -> RtResult<F64> {
        float(self.0 - o.0)
    }
    #[inline]
    fn times(self, o: F64) -> RtResult<F64> {
        float(self.0 * o.0)
    }
    #[inline]
    fn over(self, o: F64) -> RtResult<F64> {
        float(self.0 / o.0)
    }
    #[inline]
    fn negate(self) -> RtResult<F64> {
        float(-self.0)
    }
    #[inline]
    fn absolute(self) -> RtResult<F64> {
        float(self.0.abs())
    }
}

/// The zero a `sum` starts from (`0` or `0.0`, by the elements' type).
#[inline]
pub fn zero<T: Num>() -> T {
    T::ZERO
}

#[inline]
pub fn minus<T: Num>(a: T, b: T) -> RtResult<T> {
    a.minus(b)
}
#[inline]
pub fn times<T: Num>(a: T, b: T) -> RtResult<T> {
    a.times(b)
}
#[inline]
pub fn over<T: Num>(a: T, b: T) -> RtResult<T> {
    a.over(b)
}
#[inline]
pub fn negate<T: Num>(a: T) -> RtResult<T> {
    a.negate()
}
#[inline]
pub fn rem(a: i64, b: i64) -> RtResult<i64> {
    crate::value::int::rem(a, b)
}

/// The error of a comprehension that grew past the collection limit.
#[inline]
pub fn comprehension_limit(len: usize) -> RtResult<()> {
    if len > MAX_COLLECTION {
        err("comprehension exceeds the collection size limit")
    } else {
        Ok(())
    }
}

/// `lo..hi` / `lo..=hi` as an inclusive pair `(first, last)`, `(1, 0)` when empty, with the
/// evaluator's size check (a range is a list of at most `MAX_COLLECTION` elements). Inclusive
/// because `lo..=9223372036854775807` has no half-open end in `i64`. Its length is
/// `last - first + 1`, which cannot overflow below the size limit.
#[inline]
pub fn range_bounds(lo: i64, hi: i64, inclusive: bool) -> RtResult<(i64, i64)> {
    match range_last(lo, hi, inclusive) {
        None => Ok((1, 0)),
        Some(last) if (last as i128 - lo as i128) < MAX_COLLECTION as i128 => Ok((lo, last)),
        Some(_) => Err(crate::ops::range_too_long(lo, hi, inclusive)),
    }
}

/// The last element of `lo..hi` / `lo..=hi`, `None` when it is empty.
#[inline(always)]
fn range_last(lo: i64, hi: i64, inclusive: bool) -> Option<i64> {
    let last = if inclusive { hi } else { hi.checked_sub(1)? };
    (last >= lo).then_some(last)
}

/// A range as a list value.
pub fn range(lo: i64, hi: i64, inclusive: bool) -> RtResult<List<i64>> {
    let (a, b) = range_bounds(lo, hi, inclusive)?;
    Ok(List::from_vec((a..=b).collect()))
}

/// The fuel emitted code pays for a builtin call or an `in` beyond the step of the
/// expression (the evaluator's rule, `ops::Paid`, `ops::elements`, `ops::contains_paid`).
pub trait Paid: Length {
    /// The elements a builtin goes through: a list's, set's or map's (its length); 0 for
    /// a string.
    #[inline]
    fn elements(&self) -> u64 {
        self.length() as u64
    }
    /// What `x in self` searches: a list element by element; a set or map is a lookup.
    #[inline]
    fn searched(&self) -> u64 {
        0
    }
}

impl<T> Paid for List<T> {
    #[inline]
    fn searched(&self) -> u64 {
        self.elements()
    }
}

impl<T> Paid for Set<T> {}

impl<K, V> Paid for Map<K, V> {}

impl Paid for Str {
    #[inline]
    fn elements(&self) -> u64 {
        0
    }
}

/// `x in c`: list or set membership, map key membership.
pub trait Contains<T> {
    fn has(&self, x: &T) -> bool;
}

impl<T: Ord> Contains<T> for List<T> {
    #[inline]
    fn has(&self, x: &T) -> bool {
        self.as_slice().contains(x)
    }
}

impl<T: Ord> Contains<T> for Set<T> {
    #[inline]
    fn has(&self, x: &T) -> bool {
        self.0.contains(x)
    }
}

impl<K: Ord, V> Contains<K> for Map<K, V> {
    #[inline]
    fn has(&self, x: &K) -> bool {
        self.0.contains_key(x)
    }
}

// ---------------------------------------------------------------------------- builtins

/// `len`: lists, sets, maps, and strings (in characters).
pub trait Length {
    fn length(&self) -> i64;
}

impl<T> Length for List<T> {
    #[inline]
    fn length(&self) -> i64 {
        self.as_slice().len() as i64
    }
}
impl<T> Length for Set<T> {
    #[inline]
    fn length(&self) -> i64 {
        self.0.len() as i64
    }
}
impl<K, V> Length for Map<K, V> {
    #[inline]
    fn length(&self) -> i64 {
        self.0.len() as i64
    }
}
impl Length for Str {
    #[inline]
    fn length(&self) -> i64 {
        self.chars().count() as i64
    }
}

#[inline]
pub fn len(x: &impl Length) -> i64 {
    x.length()
}

#[inline]
pub fn abs<T: Num>(x: T) -> RtResult<T> {
    x.absolute()
}

/// `min(a, b)`: `b` when smaller, else `a` (the evaluator's choice on ties).
#[inline]
pub fn min2<T: Ord>(a: T, b: T) -> T {
    if b < a {
        b
    } else {
        a
    }
}

/// `max(a, b)`: `b` unless smaller (the evaluator's choice on ties).
#[inline]
pub fn max2<T: Ord>(a: T, b: T) -> T {
    if b < a {
        a
    } else {
        b
    }
}

pub fn min_of<T: Ord + Clone>(xs: &impl Elems<T>) -> RtResult<T> {
    xs.with(|v| {
        let (first, rest) = v
            .split_first()
            .ok_or_else(|| RtError::new("min of an empty list"))?;
        Ok(rest.iter().cloned().fold(first.clone(), min2))
    })
}

pub fn max_of<T: Ord + Clone>(xs: &impl Elems<T>) -> RtResult<T> {
    xs.with(|v| {
        let (first, rest) = v
            .split_first()
            .ok_or_else(|| RtError::new("max of an empty list"))?;
        Ok(rest.iter().cloned().fold(first.clone(), max2))
    })
}

pub fn sum<T: Num>(xs: &impl Elems<T>) -> RtResult<T> {
    xs.with(|v| v.iter().try_fold(T::ZERO, |acc, x| acc.plus(*x)))
}

pub fn count<T: Ord>(xs: &impl Elems<T>, x: &T) -> i64 {
    xs.with(|v| v.iter().filter(|y| *y == x).count() as i64)
}

pub fn all(xs: &impl Elems<bool>) -> bool {
    xs.with(|v| v.iter().all(|b| *b))
}

pub fn any(xs: &impl Elems<bool>) -> bool {
    xs.with(|v| v.iter().any(|b| *b))
}

pub fn all_different<T: Ord>(xs: &impl Elems<T>) -> bool {
    xs.with(|v| {
        // Short lists (a puzzle's rows, columns and boxes) compare pairwise: no set to
        // allocate, and a verifier calls this dozens of times per answer.
        if v.len() <= 16 {
            v.iter()
                .enumerate()
                .all(|(i, x)| v[..i].iter().all(|y| y.cmp(x) != std::cmp::Ordering::Equal))
        } else {
            v.iter().collect::<BTreeSet<&T>>().len() == v.len()
        }
    })
}

pub fn is_permutation<T: Ord + Clone>(xs: &impl Elems<T>, ys: &impl Elems<T>) -> bool {
    let mut a = xs.with(|v| v.to_vec());
    let mut b = ys.with(|v| v.to_vec());
    a.sort();
    b.sort();
    a == b
}

pub fn sorted<T: Ord + Clone>(xs: &impl Elems<T>) -> List<T> {
    let mut v = xs.with(|v| v.to_vec());
    v.sort();
    List::from_vec(v)
}

pub fn reversed<T: Clone>(xs: &impl Elems<T>) -> List<T> {
    let mut v = xs.with(|v| v.to_vec());
    v.reverse();
    List::from_vec(v)
}

pub fn index_of<T: Ord>(xs: &impl Elems<T>, x: &T) -> i64 {
    xs.with(|v| v.iter().position(|y| y == x).map_or(-1, |i| i as i64))
}

pub fn keys<K: Clone, V>(m: &Map<K, V>) -> List<K> {
    List::from_vec(m.0.keys().cloned().collect())
}

pub fn values<K, V: Clone>(m: &Map<K, V>) -> List<V> {
    List::from_vec(m.0.values().cloned().collect())
}

pub fn set<T: Ord + Clone>(xs: &impl Elems<T>) -> Set<T> {
    Set(Rc::new(xs.with(|v| v.iter().cloned().collect())))
}

pub fn map<K: Ord + Clone, V: Clone>(pairs: &impl Elems<(K, V)>) -> Map<K, V> {
    Map(Rc::new(pairs.with(|v| v.iter().cloned().collect())))
}

pub fn get<K: Ord, V: Clone>(m: &Map<K, V>, k: &K, d: V) -> V {
    m.0.get(k).cloned().unwrap_or(d)
}

pub fn zip<A: Clone, B: Clone>(xs: &impl Elems<A>, ys: &impl Elems<B>) -> List<(A, B)> {
    xs.with(|a| {
        ys.with(|b| {
            List::from_vec(
                a.iter()
                    .zip(b.iter())
                    .map(|(p, q)| (p.clone(), q.clone()))
                    .collect(),
            )
        })
    })
}

pub fn enumerate<T: Clone>(xs: &impl Elems<T>) -> List<(i64, T)> {
    xs.with(|v| {
        List::from_vec(
            v.iter()
                .enumerate()
                .map(|(i, x)| (i as i64, x.clone()))
                .collect(),
        )
    })
}

pub fn repeat<T: Clone>(x: T, n: i64) -> RtResult<List<T>> {
    if n < 0 {
        return err(format!("repeat with a negative count ({n})"));
    }
    check_len(n as usize)?;
    Ok(List::from_vec(vec![x; n as usize]))
}

/// `slice`: positions (characters of a string) `lo..hi`, both clamped.
pub trait Slice: Sized {
    fn slice(&self, lo: i64, hi: i64) -> Self;
}

impl<T: Clone> Slice for List<T> {
    fn slice(&self, lo: i64, hi: i64) -> List<T> {
        let clamp = |i: i64| i.clamp(0, self.as_slice().len() as i64) as usize;
        let (l, h) = (clamp(lo), clamp(hi));
        List::from_slice(if l < h { &self.as_slice()[l..h] } else { &[] })
    }
}

impl Slice for Str {
    fn slice(&self, lo: i64, hi: i64) -> Str {
        let n = self.chars().count() as i64;
        let (l, h) = (lo.clamp(0, n) as usize, hi.clamp(0, n) as usize);
        Rc::from(
            self.chars()
                .skip(l)
                .take(h.saturating_sub(l))
                .collect::<String>(),
        )
    }
}

pub fn slice<T: Slice>(x: &T, lo: i64, hi: i64) -> T {
    x.slice(lo, hi)
}

pub fn flatten<T: Clone>(xss: &impl Elems<List<T>>) -> RtResult<List<T>> {
    xss.with(|v| {
        let mut out = Vec::new();
        for xs in v {
            out.extend(xs.as_slice().iter().cloned());
            check_len(out.len())?;
        }
        Ok(List::from_vec(out))
    })
}

pub fn str_of<T: Val>(x: &T) -> Str {
    Rc::from(x.display())
}

pub fn join<T: Val>(xs: &impl Elems<T>, sep: &Str) -> Str {
    let parts: Vec<String> = xs.with(|v| v.iter().map(Val::display).collect());
    Rc::from(parts.join(sep))
}

/// `float(x)`: an int as the nearest float, a float unchanged.
pub trait ToFloat {
    fn to_float(self) -> RtResult<F64>;
}
impl ToFloat for i64 {
    #[inline]
    fn to_float(self) -> RtResult<F64> {
        float(self as f64)
    }
}
impl ToFloat for F64 {
    #[inline]
    fn to_float(self) -> RtResult<F64> {
        float(self.0)
    }
}

#[inline]
pub fn to_float(x: impl ToFloat) -> RtResult<F64> {
    x.to_float()
}

/// `int(x)`: a float truncated toward zero (an error out of range), an int unchanged.
pub trait ToInt {
    fn to_int(self) -> RtResult<i64>;
}
impl ToInt for i64 {
    #[inline]
    fn to_int(self) -> RtResult<i64> {
        Ok(self)
    }
}
impl ToInt for F64 {
    #[inline]
    fn to_int(self) -> RtResult<i64> {
        let f = self.0;
        if f.is_finite()
            && f.trunc() >= -9.223_372_036_854_776e18
            && f.trunc() < 9.223_372_036_854_776e18
        {
            Ok(f.trunc() as i64)
        } else {
            err(format!("int of {} is out of range", self.display()))
        }
    }
}

#[inline]
pub fn to_int(x: impl ToInt) -> RtResult<i64> {
    x.to_int()
}

// ------------------------------------------------------------------- random builtins

pub fn rand_int(m: &mut Machine, lo: i64, hi: i64) -> RtResult<i64> {
    m.rng("rand_int")?.int_in(lo, hi)
}

pub fn rand_float(m: &mut Machine) -> RtResult<F64> {
    Ok(F64(m.rng("rand_float")?.float01()))
}

pub fn bernoulli(m: &mut Machine, p: F64) -> RtResult<bool> {
    Ok(m.rng("bernoulli")?.bernoulli(p.0))
}

pub fn choice<T: Clone>(m: &mut Machine, xs: &impl Elems<T>) -> RtResult<T> {
    let rng = m.rng("choice")?;
    xs.with(|v| Ok(v[rng.index(v.len())?].clone()))
}

pub fn shuffle<T: Clone>(m: &mut Machine, xs: &impl Elems<T>) -> RtResult<List<T>> {
    let rng = m.rng("shuffle")?;
    let mut v = xs.with(|v| v.to_vec());
    rng.shuffle(&mut v);
    Ok(List::from_vec(v))
}

pub fn sample<T: Clone>(m: &mut Machine, xs: &impl Elems<T>, k: i64) -> RtResult<List<T>> {
    let rng = m.rng("sample")?;
    xs.with(|v| Ok(List::from_vec(rng.sample(v, k)?)))
}

pub fn permutation(m: &mut Machine, n: i64) -> RtResult<List<i64>> {
    if n < 0 {
        return err(format!("permutation of a negative size ({n})"));
    }
    check_len(n as usize)?;
    let rng = m.rng("permutation")?;
    let mut v: Vec<i64> = (0..n).collect();
    rng.shuffle(&mut v);
    Ok(List::from_vec(v))
}

// ------------------------------------------------------------------------- fast paths
//
// Emitted code may run a pure region (a quantifier, a count or sum over a comprehension, a
// verify constraint over integer data) first in a *fast* form: a closure returning an
// `Option` in which each operation below yields `None` instead of an error, and `?` leaves
// the whole fast form at the first one. The fast form's result is then discarded and the
// emitted code runs the exact form instead, which reports the very error (or fuel
// exhaustion) the evaluator would. Leaving at once is what makes the fast form cheap: an
// operation costs its check and a branch that is never taken, with no state carried
// through the loops (raising and merging flags instead cost a third of a verify). The fast
// form pays its steps from a copy of the fuel, kept only when it succeeds: a fast form
// that returns `Some` has done what the exact form does, the same value and the same
// fuel. (spec/emit.md, "Fast paths")

/// `xs[i]` of a list of copyable scalars; `None` out of range.
#[inline(always)]
pub fn fast_at<T: Copy>(xs: &List<T>, i: i64) -> Option<T> {
    // A negative index wraps to a huge one, out of range like the exact form's.
    xs.as_slice().get(i as usize).copied()
}

/// Checked `+`: `None` on overflow.
#[inline(always)]
pub fn fast_add(a: i64, b: i64) -> Option<i64> {
    a.checked_add(b)
}

/// Checked `-`: `None` on overflow.
#[inline(always)]
pub fn fast_sub(a: i64, b: i64) -> Option<i64> {
    a.checked_sub(b)
}

/// Checked `*`: `None` on overflow.
#[inline(always)]
pub fn fast_mul(a: i64, b: i64) -> Option<i64> {
    a.checked_mul(b)
}

/// Checked unary `-`: `None` on overflow.
#[inline(always)]
pub fn fast_neg(a: i64) -> Option<i64> {
    a.checked_neg()
}

/// Checked `abs`: `None` on overflow.
#[inline(always)]
pub fn fast_abs(a: i64) -> Option<i64> {
    // Not `checked_abs`, which compiles to a branch on the sign: with the operands of a
    // search that branch is unpredictable. Only the (never taken) overflow branch is left.
    let (v, overflow) = a.overflowing_abs();
    if overflow {
        None
    } else {
        Some(v)
    }
}

/// Entering a loop over `lo..hi` (`..=` when `inclusive`): its bounds as [`range_bounds`]
/// gives them, its steps paid from `fuel`; `None` for a range the exact form rejects or
/// steps the budget cannot pay.
#[inline(always)]
pub fn fast_range(fuel: &mut u64, lo: i64, hi: i64, inclusive: bool) -> Option<(i64, i64)> {
    let Some(last) = range_last(lo, hi, inclusive) else {
        return Some((1, 0));
    };
    // last >= lo, so the difference is exact as a u64.
    let n = (last as u64).wrapping_sub(lo as u64) + 1;
    if n > MAX_COLLECTION as u64 || n > *fuel {
        return None;
    }
    *fuel -= n;
    Some((lo, last))
}

/// Entering a loop over a whole collection of `n` elements: its steps paid from `fuel`;
/// `None` when the budget cannot pay.
#[inline(always)]
pub fn fast_items(fuel: &mut u64, n: usize) -> Option<()> {
    *fuel = fuel.checked_sub(n as u64)?;
    Some(())
}
