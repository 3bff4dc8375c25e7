//! The evaluator: compiles IR to Rust closures once, then runs them per instance.
//!
//! Why closures (not bytecode, not tree walking): every name is already a slot and every
//! call a resolved index, so a closure per node does only the node's real work — no
//! decode loop, no operand stack, no lookups — and the compiler stays a direct mirror of
//! the IR (easy to keep equal to the spec, the SMT lowering and the Rust emitter).
//! Values are copy-on-write `Rc`s (runtime crate), so closures are per thread.
//!
//! Three closure shapes, chosen per node when compiling, all with the same results,
//! errors and fuel as the plain one:
//! - `CExpr` (`&mut Machine` -> value): the general case (calls, loops, rng, blocks).
//! - `PExpr` (`&Machine` -> `Cow`): *pure* expressions, which only read the machine, so
//!   `xs[i]`, `r.f`, `len(xs)`, comparisons and arithmetic borrow locals instead of
//!   cloning them; locals, literals and `xs[i]` of two locals are inline operands (`POp`).
//! - `CCond` / `PCond` (-> bool): expressions used as conditions, without a `Value`.
//!
//! Loops over ranges, `enumerate` and `zip` bind their elements without building the
//! list, and `xs = xs + ys` appends in place (see `CColl`, `Stmt::Assign`).

use crate::ir::*;
use resyn_grammar::ast::{BinOp, UnOp};
use resyn_runtime::ops;
use resyn_runtime::value::{int, RtResult};
use resyn_runtime::{Rng, RtError, Value};
use std::borrow::Cow;
use std::cell::Cell;
use std::rc::Rc;

pub use resyn_runtime::env::{
    Attempt, Environment, Failure, GenError, Instance, Stop, Verdict, DEFAULT_ATTEMPTS,
    DEFAULT_FUEL, MAX_REPORTED_FAILURES,
};
use resyn_runtime::env::{EnvMeta, FieldMeta, ParamMeta, Scorer};

/// The state one run mutates.
pub struct Machine {
    pub slots: Vec<Value>,
    pub rng: Option<Rng>,
    /// Steps left. A `Cell`, so that the expressions evaluated from a shared `&Machine`
    /// (see [`is_pure`]) can pay for the builtins they call.
    pub fuel: Cell<u64>,
    pub fields: Vec<Option<Value>>,
    pub witness: Option<Value>,
    pub scorer: Scorer,
    /// Emptied frames of returned calls, reused by later calls (no allocation per call).
    frames: Vec<Vec<Value>>,
}

impl Machine {
    pub fn new(slots: u32, rng: Option<Rng>, fuel: u64) -> Machine {
        Machine {
            slots: vec![Value::Unit; slots as usize],
            rng,
            fuel: Cell::new(fuel),
            fields: Vec::new(),
            witness: None,
            scorer: Scorer::default(),
            frames: Vec::new(),
        }
    }

    /// One step: a call of a user function.
    fn tick(&self) -> RtResult<()> {
        self.pay(1)
    }

    /// The steps of a loop over `n` elements, paid when it starts.
    fn charge(&self, n: usize) -> RtResult<()> {
        self.pay(n as u64)
    }

    fn pay(&self, n: u64) -> RtResult<()> {
        pay(&self.fuel, n)
    }
}

/// Spends `n` steps of `fuel` with the runtime's rule (`native::charge`).
#[inline]
fn pay(fuel: &Cell<u64>, n: u64) -> RtResult<()> {
    let mut left = fuel.get();
    let r = resyn_runtime::native::charge(&mut left, n);
    fuel.set(left);
    r
}

/// A builtin call with the fuel it pays beyond the call ([`ops::Paid`]), from the runtime's
/// one table, at the points emitted code pays it: `Args` before the call, `Result` after.
#[inline]
fn call_paid<A: std::borrow::Borrow<Value>>(
    fuel: &Cell<u64>,
    rng: Option<&mut Rng>,
    b: ops::Builtin,
    paid: ops::Paid,
    args: &[A],
) -> RtResult<Value> {
    if let ops::Paid::Args(ix) = paid {
        let n = ix
            .iter()
            .map(|&i| args.get(i).map_or(0, |a| ops::elements(a.borrow())))
            .sum();
        pay(fuel, n)?;
    }
    let v = ops::call_builtin(b, args, rng)?;
    if paid == ops::Paid::Result {
        pay(fuel, ops::elements(&v))?;
    }
    Ok(v)
}

/// `x in coll`, with what a list search pays ([`ops::contains_paid`]).
#[inline]
fn contains_paid(fuel: &Cell<u64>, coll: &Value, x: &Value) -> RtResult<bool> {
    pay(fuel, ops::contains_paid(coll))?;
    ops::contains(coll, x)
}

type CExpr = Box<dyn Fn(&mut Machine) -> RtResult<Value>>;
type CStmt = Box<dyn Fn(&mut Machine) -> Result<(), Stop>>;

struct CBlock {
    stmts: Vec<CStmt>,
    value: Option<CExpr>,
}

impl CBlock {
    fn run(&self, m: &mut Machine) -> Result<Value, Stop> {
        for s in &self.stmts {
            s(m)?;
        }
        match &self.value {
            Some(v) => Ok(v(m)?),
            None => Ok(Value::Unit),
        }
    }
}

/// A compiled *pure* expression (see [`is_pure`]): it only reads the machine, so it can
/// hand back a local, or a part of one, by reference; its parent reads it in place instead
/// of cloning the collection (`rows[d]` no longer copies the `Rc` of `rows` and drops it).
type PExpr = Box<dyn for<'m> Fn(&'m Machine) -> RtResult<Cow<'m, Value>>>;

/// An operand of a pure node. Locals and literals are read inline, without a call.
enum POp {
    Slot(usize),
    Lit(Value),
    /// `xs[i]` of two locals, the commonest index.
    Elem(usize, usize),
    Node(PExpr),
}

impl POp {
    /// The operand's value, for a result that may outlive the operand (a literal is cloned).
    #[inline(always)]
    fn get<'m>(&self, m: &'m Machine) -> RtResult<Cow<'m, Value>> {
        match self {
            POp::Slot(s) => Ok(Cow::Borrowed(&m.slots[*s])),
            POp::Lit(v) => Ok(Cow::Owned(v.clone())),
            POp::Elem(a, i) => ops::index_ref(&m.slots[*a], &m.slots[*i]).map(Cow::Borrowed),
            POp::Node(f) => f(m),
        }
    }

    /// The operand's value when it is an int that can be read without a call: a local, a
    /// literal or `xs[i]` in range. `None` otherwise (another value, a node, or an index
    /// that fails), and the caller takes the general path, which gives the value or the
    /// error. Reading is pure, so trying this first is not observable.
    #[inline(always)]
    fn int(&self, m: &Machine) -> Option<i64> {
        match self {
            POp::Slot(s) => match m.slots[*s] {
                Value::Int(x) => Some(x),
                _ => None,
            },
            POp::Lit(Value::Int(x)) => Some(*x),
            POp::Elem(a, i) => match (&m.slots[*a], &m.slots[*i]) {
                (Value::List(xs), Value::Int(k)) => match xs.get(usize::try_from(*k).ok()?) {
                    Some(Value::Int(x)) => Some(*x),
                    _ => None,
                },
                _ => None,
            },
            POp::Lit(_) | POp::Node(_) => None,
        }
    }

    /// The operand's value, to be read and dropped by the caller (a literal is borrowed).
    #[inline(always)]
    fn peek<'a>(&'a self, m: &'a Machine) -> RtResult<Cow<'a, Value>> {
        match self {
            POp::Slot(s) => Ok(Cow::Borrowed(&m.slots[*s])),
            POp::Lit(v) => Ok(Cow::Borrowed(v)),
            POp::Elem(a, i) => ops::index_ref(&m.slots[*a], &m.slots[*i]).map(Cow::Borrowed),
            POp::Node(f) => f(m),
        }
    }
}

/// How a pure node's closure is boxed: as a [`PExpr`] when its parent is pure too, or as
/// an ordinary [`CExpr`] (owning its result) under an effectful parent. Generic so that
/// the node's closure is inlined into the box either way (no extra call per root).
trait Boxer {
    type Out;
    fn boxed<F>(f: F) -> Self::Out
    where
        F: for<'m> Fn(&'m Machine) -> RtResult<Cow<'m, Value>> + 'static;
}

struct AsPure;

impl Boxer for AsPure {
    type Out = PExpr;
    fn boxed<F>(f: F) -> PExpr
    where
        F: for<'m> Fn(&'m Machine) -> RtResult<Cow<'m, Value>> + 'static,
    {
        Box::new(f)
    }
}

struct AsExpr;

impl Boxer for AsExpr {
    type Out = CExpr;
    fn boxed<F>(f: F) -> CExpr
    where
        F: for<'m> Fn(&'m Machine) -> RtResult<Cow<'m, Value>> + 'static,
    {
        Box::new(move |m| f(m).map(Cow::into_owned))
    }
}

/// Whether `e` can be evaluated from a shared `&Machine`: it reads locals but draws no
/// random numbers, spends no fuel (no user calls, no loops), writes no slot and runs no
/// block. Evaluating such an expression has no effect but its result or error, which is
/// what lets its operands be borrowed.
fn is_pure(e: &Expr) -> bool {
    match e {
        Expr::Lit(_) | Expr::Local(_) => true,
        Expr::Tuple(xs) | Expr::List(xs) => xs.iter().all(is_pure),
        Expr::Unary(_, x) | Expr::Field(x, _) | Expr::TupleField(x, _) => is_pure(x),
        Expr::Binary(_, a, b, _) | Expr::Index(a, b, _) => is_pure(a) && is_pure(b),
        Expr::Call(Callee::Builtin(name), args, _) => {
            ops::Builtin::from_name(name).is_some()
                && !crate::builtins::is_random(name)
                && args.iter().all(is_pure)
        }
        _ => false,
    }
}

/// Whether `e` is a pair literal `(a, b)`, which conditions compare in place.
fn is_pair(e: &Expr) -> bool {
    matches!(e, Expr::Tuple(xs) if xs.len() == 2)
}

/// A part of a value read through `f` (an element, a field): borrowed from a borrowed
/// whole, cloned out of an owned one.
#[inline(always)]
fn project<'m, F>(whole: Cow<'m, Value>, f: F) -> RtResult<Cow<'m, Value>>
where
    F: for<'x> FnOnce(&'x Value) -> RtResult<&'x Value>,
{
    match whole {
        Cow::Borrowed(w) => f(w).map(Cow::Borrowed),
        Cow::Owned(w) => f(&w).cloned().map(Cow::Owned),
    }
}

/// Whether `op` is a comparison (a strict operator that cannot fail).
fn is_comparison(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
    )
}

/// A strict binary operator (every one but `and`, `or`, `implies` and `in`). Two ints
/// take the direct path (the common case); everything else goes through the runtime's
/// generic operators. Both give the same values and errors. Always inlined with a
/// constant `op`, so the dispatch folds away.
#[inline(always)]
fn strict(op: BinOp, x: &Value, y: &Value) -> RtResult<Value> {
    if is_comparison(op) {
        return Ok(Value::Bool(compare(op, x, y)));
    }
    if let (Value::Int(p), Value::Int(q)) = (x, y) {
        return strict_ints(op, *p, *q);
    }
    match op {
        BinOp::Add => ops::add(x, y),
        BinOp::Sub => ops::arith('-', x, y),
        BinOp::Mul => ops::arith('*', x, y),
        BinOp::Div => ops::arith('/', x, y),
        BinOp::Rem => ops::arith('%', x, y),
        _ => unreachable!("`{op:?}` is not arithmetic"),
    }
}

/// The comparison `op` in `T`'s order (for `Value`, the spec's order).
#[inline(always)]
fn compare_by<T: PartialOrd + ?Sized>(op: BinOp, x: &T, y: &T) -> bool {
    match op {
        BinOp::Eq => x == y,
        BinOp::Ne => x != y,
        BinOp::Lt => x < y,
        BinOp::Le => x <= y,
        BinOp::Gt => x > y,
        BinOp::Ge => x >= y,
        _ => unreachable!("`{op:?}` is not a comparison"),
    }
}

/// [`compare`] of two ints.
#[inline(always)]
fn compare_ints(op: BinOp, p: i64, q: i64) -> bool {
    compare_by(op, &p, &q)
}

/// [`strict`] of two ints (its int path): checked arithmetic, or a comparison.
#[inline(always)]
fn strict_ints(op: BinOp, p: i64, q: i64) -> RtResult<Value> {
    Ok(match op {
        BinOp::Add => Value::Int(int::add(p, q)?),
        BinOp::Sub => Value::Int(int::sub(p, q)?),
        BinOp::Mul => Value::Int(int::mul(p, q)?),
        BinOp::Div => Value::Int(int::div(p, q)?),
        BinOp::Rem => Value::Int(int::rem(p, q)?),
        op => Value::Bool(compare_ints(op, p, q)),
    })
}

/// A comparison (the value order of `Value`'s `Ord`; ints directly). Always inlined with
/// a constant `op`.
#[inline(always)]
fn compare(op: BinOp, x: &Value, y: &Value) -> bool {
    if let (Value::Int(p), Value::Int(q)) = (x, y) {
        return compare_ints(op, *p, *q);
    }
    compare_by(op, x, y)
}

/// A compiled condition: an expression used as a bool (`if`, `require`, `and`, a
/// quantifier's body…), evaluated straight to the bool. Same result and errors as the
/// expression's value followed by `as_bool`, without building and unwrapping a `Value`.
type CCond = Box<dyn Fn(&mut Machine) -> RtResult<bool>>;
/// A pure condition (see [`is_pure`]).
type PCond = Box<dyn Fn(&Machine) -> RtResult<bool>>;

/// [`Boxer`] for conditions.
trait CondBoxer {
    type Out;
    fn boxed<F: Fn(&Machine) -> RtResult<bool> + 'static>(f: F) -> Self::Out;
}

impl CondBoxer for AsPure {
    type Out = PCond;
    fn boxed<F: Fn(&Machine) -> RtResult<bool> + 'static>(f: F) -> PCond {
        Box::new(f)
    }
}

impl CondBoxer for AsExpr {
    type Out = CCond;
    fn boxed<F: Fn(&Machine) -> RtResult<bool> + 'static>(f: F) -> CCond {
        Box::new(move |m| f(m))
    }
}

/// An operand of a pure `and`, `or` or `not`. Comparisons, the commonest, are evaluated
/// inline (no call).
enum COp {
    Compare(BinOp, POp, POp),
    Node(PCond),
}

impl COp {
    #[inline(always)]
    fn eval(&self, m: &Machine) -> RtResult<bool> {
        match self {
            COp::Compare(op, a, b) => {
                if let (Some(x), Some(y)) = (a.int(m), b.int(m)) {
                    return Ok(compare_ints(*op, x, y));
                }
                Ok(compare(*op, &*a.peek(m)?, &*b.peek(m)?))
            }
            COp::Node(c) => c(m),
        }
    }
}

/// Whether `e`'s value, when it has one, is a bool whatever its operands (logic,
/// comparisons, membership, quantifiers).
fn yields_bool(e: &Expr) -> bool {
    match e {
        Expr::Binary(op, ..) => {
            is_comparison(*op) || matches!(op, BinOp::And | BinOp::Or | BinOp::Implies | BinOp::In)
        }
        Expr::Unary(UnOp::Not, _) | Expr::Quant { .. } => true,
        _ => false,
    }
}

/// Whether evaluating `e` (pure) can neither fail nor have an effect, so that a value
/// nobody reads need not be computed.
fn infallible(e: &Expr) -> bool {
    match e {
        Expr::Lit(_) | Expr::Local(_) => true,
        Expr::Tuple(xs) | Expr::List(xs) => xs.iter().all(infallible),
        _ => false,
    }
}

/// Builds `$mk!(BinOp::X)` for the strict operator `$op`, so that each closure is
/// compiled with its operator as a constant.
macro_rules! per_strict_op {
    ($op:expr, $mk:ident) => {
        match $op {
            BinOp::Add => $mk!(BinOp::Add),
            BinOp::Sub => $mk!(BinOp::Sub),
            BinOp::Mul => $mk!(BinOp::Mul),
            BinOp::Div => $mk!(BinOp::Div),
            BinOp::Rem => $mk!(BinOp::Rem),
            op => per_comparison!(op, $mk),
        }
    };
}

/// `per_strict_op!` for the comparisons.
macro_rules! per_comparison {
    ($op:expr, $mk:ident) => {
        match $op {
            BinOp::Eq => $mk!(BinOp::Eq),
            BinOp::Ne => $mk!(BinOp::Ne),
            BinOp::Lt => $mk!(BinOp::Lt),
            BinOp::Le => $mk!(BinOp::Le),
            BinOp::Gt => $mk!(BinOp::Gt),
            BinOp::Ge => $mk!(BinOp::Ge),
            op => unreachable!("`{op:?}` is not a comparison"),
        }
    };
}

enum CPattern {
    Bind(usize),
    Wild,
    Tuple(Vec<CPattern>),
}

/// Inlined into every loop; destructuring is out of line.
#[inline]
fn bind(m: &mut Machine, p: &CPattern, v: Value) -> RtResult<()> {
    match p {
        CPattern::Bind(s) => {
            m.slots[*s] = v;
            Ok(())
        }
        CPattern::Wild => Ok(()),
        CPattern::Tuple(ps) => bind_tuple(m, ps, v),
    }
}

fn bind_tuple(m: &mut Machine, ps: &[CPattern], v: Value) -> RtResult<()> {
    match v {
        Value::Tuple(items) if items.len() == ps.len() => {
            for (p, x) in ps.iter().zip(items.iter()) {
                bind(m, p, x.clone())?;
            }
            Ok(())
        }
        other => Err(RtError::new(format!(
            "cannot destructure {} into {} parts",
            other.display(),
            ps.len()
        ))),
    }
}

enum CClause {
    For(CPattern, CColl),
    If(CCond),
}

/// The collection of a loop (`for`, comprehension clause, template loop).
enum CColl {
    /// `lo..hi` / `lo..=hi`, counted instead of built: the same elements, fuel and errors
    /// as the list `ops::range` would build, without allocating it.
    Range(CExpr, CExpr, bool),
    /// `enumerate(xs)`: the pairs are bound without building the list of tuples.
    Enumerate(CExpr),
    /// `zip(xs, ys)`, likewise.
    Zip(CExpr, CExpr),
    Value(CExpr),
}

/// Binds each element of a loop's collection to `p` and calls `f`, in iteration order;
/// `f` returns false to stop (then so does this). Fuel for all the elements is paid when
/// the loop starts.
fn for_coll(
    m: &mut Machine,
    p: &CPattern,
    coll: &CColl,
    f: &mut dyn FnMut(&mut Machine) -> RtResult<bool>,
) -> RtResult<bool> {
    match coll {
        CColl::Range(lo, hi, inclusive) => {
            let lo = lo(m)?.as_int()?;
            let hi = hi(m)?.as_int()?;
            let n = ops::range_len(lo, hi, *inclusive)?;
            m.charge(n)?;
            for k in 0..n {
                let v = lo + k as i64;
                match p {
                    // The loop variable usually holds the previous int: overwrite it
                    // without dropping a `Value`.
                    CPattern::Bind(s) => match &mut m.slots[*s] {
                        Value::Int(x) => *x = v,
                        slot => *slot = Value::Int(v),
                    },
                    _ => bind(m, p, Value::Int(v))?,
                }
                if !f(m)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        CColl::Enumerate(e) => {
            let xs = ops::list_of(&e(m)?, "enumerate")?;
            m.charge(xs.len())?;
            for (i, x) in xs.iter().enumerate() {
                bind_pair(m, p, Value::Int(i as i64), x.clone())?;
                if !f(m)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        CColl::Zip(x, y) => {
            // As the builtin: both arguments, then both conversions to lists.
            let (x, y) = (x(m)?, y(m)?);
            let (xs, ys) = (ops::list_of(&x, "zip")?, ops::list_of(&y, "zip")?);
            m.charge(xs.len().min(ys.len()))?;
            for (x, y) in xs.iter().zip(ys.iter()) {
                bind_pair(m, p, x.clone(), y.clone())?;
                if !f(m)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        CColl::Value(e) => {
            let c = e(m)?;
            for_elems(m, p, &c, f)
        }
    }
}

/// [`for_coll`] over a collection value, without copying it (lists are walked through
/// their shared `Rc`).
fn for_elems(
    m: &mut Machine,
    p: &CPattern,
    coll: &Value,
    f: &mut dyn FnMut(&mut Machine) -> RtResult<bool>,
) -> RtResult<bool> {
    match coll {
        Value::List(v) => {
            m.charge(v.len())?;
            for x in v.iter() {
                bind(m, p, x.clone())?;
                if !f(m)? {
                    return Ok(false);
                }
            }
        }
        Value::Set(s) => {
            m.charge(s.len())?;
            for x in s.iter() {
                bind(m, p, x.clone())?;
                if !f(m)? {
                    return Ok(false);
                }
            }
        }
        Value::Map(mp) => {
            m.charge(mp.len())?;
            for (k, v) in mp.iter() {
                bind_pair(m, p, k.clone(), v.clone())?;
                if !f(m)? {
                    return Ok(false);
                }
            }
        }
        other => {
            return Err(RtError::new(format!(
                "cannot iterate over {}",
                other.display()
            )))
        }
    }
    Ok(true)
}

/// `bind(m, p, (a, b))`, without building the tuple when `p` takes it apart.
fn bind_pair(m: &mut Machine, p: &CPattern, a: Value, b: Value) -> RtResult<()> {
    match p {
        CPattern::Tuple(ps) if ps.len() == 2 => {
            bind(m, &ps[0], a)?;
            bind(m, &ps[1], b)
        }
        _ => bind(m, p, Value::tuple(vec![a, b])),
    }
}

/// Runs `f` for every binding of the clauses (nested left to right); `f` returns false to
/// stop early. Returns false if stopped.
fn each(
    m: &mut Machine,
    cs: &[CClause],
    f: &mut dyn FnMut(&mut Machine) -> RtResult<bool>,
) -> RtResult<bool> {
    let Some((first, rest)) = cs.split_first() else {
        return f(m);
    };
    match first {
        CClause::If(c) => {
            if c(m)? {
                each(m, rest, f)
            } else {
                Ok(true)
            }
        }
        // The innermost loop, bare or filtered (the common shapes), calls `f` directly.
        CClause::For(p, coll) => match rest {
            [] => for_coll(m, p, coll, f),
            [CClause::If(c)] => for_coll(m, p, coll, &mut |m| if c(m)? { f(m) } else { Ok(true) }),
            _ => for_coll(m, p, coll, &mut |m| each(m, rest, f)),
        },
    }
}

struct CFn {
    slots: u32,
    body: CBlock,
}

enum CPart {
    Text(String),
    Expr(CExpr),
    For(CPattern, CColl, Vec<CPart>),
    If(CCond, Vec<CPart>, Vec<CPart>),
}

fn render(m: &mut Machine, parts: &[CPart], out: &mut String) -> RtResult<()> {
    for p in parts {
        match p {
            CPart::Text(t) => out.push_str(t),
            CPart::Expr(e) => out.push_str(&e(m)?.display()),
            CPart::For(pat, coll, body) => {
                for_coll(m, pat, coll, &mut |m| {
                    render(m, body, out)?;
                    Ok(true)
                })?;
            }
            CPart::If(c, t, e) => {
                if c(m)? {
                    render(m, t, out)?
                } else {
                    render(m, e, out)?
                }
            }
        }
    }
    Ok(())
}

enum CAccess {
    Index(CExpr),
    Field(String),
    Tuple(usize),
}

/// A compiled program: its functions and, per env, the compiled bodies.
pub struct Compiled {
    fns: Vec<Rc<CFn>>,
    pub envs: Vec<CEnv>,
    /// The program and the env being compiled, for `unique_givens`, which proves with the
    /// env's own verify from inside its generator. `None` where only functions and a verify
    /// body are compiled ([`LoopStep`]): the checker allows `unique_givens` only in `gen`.
    program: Option<Rc<Program>>,
    env_index: std::cell::Cell<usize>,
    /// One `Rc` per field name: records built here and field reads share it, so a read
    /// finds its field by pointer (see `ops::field_ref_rc`).
    names: std::cell::RefCell<std::collections::HashMap<String, Rc<str>>>,
}

pub struct CEnv {
    /// Unique per compilation in this process: the key of per-thread caches that hold
    /// solver state for this env (`givens`).
    pub id: u64,
    pub ir: Env,
    meta: EnvMeta,
    params: Vec<(Vec<CExpr>, Option<CExpr>)>,
    gen: CBlock,
    verify: CBlock,
    prompt: Vec<CPart>,
    shape: CShape,
}

/// The answer shape with compiled domain expressions.
enum CShape {
    Bool,
    Int,
    Float,
    Str,
    Unit,
    In(Box<CShape>, CExpr),
    /// `int in lo..hi`, whose domain is the bounds (see `Shape::int_range`).
    IntRange(CExpr, CExpr, bool),
    Tuple(Vec<CShape>),
    List(Box<CShape>, CLen),
    Set(Box<CShape>),
    Map(Box<CShape>, Box<CShape>),
    Record(Vec<(String, CShape)>),
    Enum(Vec<String>),
}

enum CLen {
    Any,
    Exact(CExpr),
    AtMost(CExpr),
}

pub fn compile(p: &Program) -> Compiled {
    let mut c = Compiled::empty(Some(Rc::new(p.clone())));
    c.compile_some_fns(p, &vec![true; p.fns.len()]);
    for (k, e) in p.envs.iter().enumerate() {
        c.env_index.set(k);
        let params = e
            .params
            .iter()
            .map(|p| {
                (
                    p.levels.iter().map(|x| c.expr(x)).collect(),
                    p.domain.as_ref().map(|d| c.expr(d)),
                )
            })
            .collect();
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let env = CEnv {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            params,
            gen: c.block(&e.gen),
            verify: c.block(&e.verify),
            prompt: c.parts(&e.prompt.parts),
            shape: c.shape(&e.answer),
            meta: env_meta(e),
            ir: e.clone(),
        };
        c.envs.push(env);
    }
    c
}

impl Compiled {
    fn empty(program: Option<Rc<Program>>) -> Compiled {
        Compiled {
            fns: Vec::new(),
            envs: Vec::new(),
            program,
            env_index: std::cell::Cell::new(0),
            names: Default::default(),
        }
    }

    /// Compiles the functions marked in `wanted` (the others get an empty body, which no
    /// compiled code calls); a call finds its callee by index, compiled before it.
    fn compile_some_fns(&mut self, p: &Program, wanted: &[bool]) {
        for (f, &w) in p.fns.iter().zip(wanted) {
            let body = if w {
                self.block(&f.body)
            } else {
                CBlock {
                    stmts: Vec::new(),
                    value: None,
                }
            };
            self.fns.push(Rc::new(CFn {
                slots: f.slots,
                body,
            }));
        }
    }

    fn name(&self, n: &str) -> Rc<str> {
        self.names
            .borrow_mut()
            .entry(n.to_string())
            .or_insert_with(|| Rc::from(n))
            .clone()
    }

    fn shape(&self, s: &ShapeExpr) -> CShape {
        match s {
            ShapeExpr::Bool => CShape::Bool,
            ShapeExpr::Int => CShape::Int,
            ShapeExpr::Float => CShape::Float,
            ShapeExpr::Str => CShape::Str,
            ShapeExpr::Unit => CShape::Unit,
            ShapeExpr::In(b, e) => match (&**b, e) {
                (ShapeExpr::Int, Expr::Range { lo, hi, inclusive }) => {
                    CShape::IntRange(self.expr(lo), self.expr(hi), *inclusive)
                }
                _ => CShape::In(Box::new(self.shape(b)), self.expr(e)),
            },
            ShapeExpr::Tuple(v) => CShape::Tuple(v.iter().map(|s| self.shape(s)).collect()),
            ShapeExpr::List(e, len) => CShape::List(
                Box::new(self.shape(e)),
                match len {
                    LenExpr::Any => CLen::Any,
                    LenExpr::Exact(n) => CLen::Exact(self.expr(n)),
                    LenExpr::AtMost(n) => CLen::AtMost(self.expr(n)),
                },
            ),
            ShapeExpr::Set(e) => CShape::Set(Box::new(self.shape(e))),
            ShapeExpr::Map(k, v) => CShape::Map(Box::new(self.shape(k)), Box::new(self.shape(v))),
            ShapeExpr::Record(fs) => {
                CShape::Record(fs.iter().map(|(n, s)| (n.clone(), self.shape(s))).collect())
            }
            ShapeExpr::Enum(vs) => CShape::Enum(vs.clone()),
        }
    }

    fn pattern(&self, p: &Pattern) -> CPattern {
        match p {
            Pattern::Bind(s) => CPattern::Bind(*s as usize),
            Pattern::Wild => CPattern::Wild,
            Pattern::Tuple(ps) => CPattern::Tuple(ps.iter().map(|p| self.pattern(p)).collect()),
        }
    }

    fn clauses(&self, cs: &[Clause]) -> Vec<CClause> {
        cs.iter()
            .map(|c| match c {
                Clause::For(p, e) => CClause::For(self.pattern(p), self.coll(e)),
                Clause::If(e) => CClause::If(self.cond(e)),
            })
            .collect()
    }

    fn parts(&self, ps: &[TemplatePart]) -> Vec<CPart> {
        ps.iter()
            .map(|p| match p {
                TemplatePart::Text(t) => CPart::Text(t.clone()),
                TemplatePart::Expr(e) => CPart::Expr(self.expr(e)),
                TemplatePart::For(p, e, b) => {
                    CPart::For(self.pattern(p), self.coll(e), self.parts(b))
                }
                TemplatePart::If(c, t, e) => CPart::If(self.cond(c), self.parts(t), self.parts(e)),
            })
            .collect()
    }

    fn coll(&self, e: &Expr) -> CColl {
        match e {
            Expr::Range { lo, hi, inclusive } => {
                CColl::Range(self.expr(lo), self.expr(hi), *inclusive)
            }
            Expr::Call(Callee::Builtin("enumerate"), args, _) if args.len() == 1 => {
                CColl::Enumerate(self.expr(&args[0]))
            }
            Expr::Call(Callee::Builtin("zip"), args, _) if args.len() == 2 => {
                CColl::Zip(self.expr(&args[0]), self.expr(&args[1]))
            }
            _ => CColl::Value(self.expr(e)),
        }
    }

    fn block(&self, b: &Block) -> CBlock {
        CBlock {
            stmts: b.stmts.iter().map(|s| self.stmt(s)).collect(),
            value: b.value.as_ref().map(|v| self.expr(v)),
        }
    }

    fn template(&self, t: &Template) -> Rc<Vec<CPart>> {
        Rc::new(self.parts(&t.parts))
    }

    fn stmt(&self, s: &Stmt) -> CStmt {
        match s {
            Stmt::Let(p, e) => {
                let (p, e) = (self.pattern(p), self.expr(e));
                Box::new(move |m| {
                    let v = e(m)?;
                    Ok(bind(m, &p, v)?)
                })
            }
            Stmt::Assign(target, path, Expr::Binary(BinOp::Add, x, y, _))
                if path.is_empty()
                    && matches!(**x, Expr::Local(s) if s == *target)
                    && !writes_slot(y, *target) =>
            {
                // `xs = xs + ys` appends in place when `xs` is not shared, instead of
                // copying it (loops that grow a list were quadratic). `ys` is evaluated
                // first, which is not observable: it cannot write `xs`, and reading a
                // local has no effect and cannot fail.
                let (slot, y) = (*target as usize, self.expr(y));
                Box::new(move |m| {
                    let y = y(m)?;
                    match (&mut m.slots[slot], &y) {
                        (Value::List(xs), Value::List(ys)) => {
                            ops::check_len(xs.len() + ys.len())?;
                            Rc::make_mut(xs).extend(ys.iter().cloned());
                        }
                        (x, y) => *x = strict(BinOp::Add, x, y)?,
                    }
                    Ok(())
                })
            }
            Stmt::Assign(slot, path, e) => {
                let slot = *slot as usize;
                let e = self.expr(e);
                let path: Vec<CAccess> = path
                    .iter()
                    .map(|a| match a {
                        Access::Index(i, _) => CAccess::Index(self.expr(i)),
                        Access::Field(f) => CAccess::Field(f.clone()),
                        Access::TupleField(i) => CAccess::Tuple(*i),
                    })
                    .collect();
                match path.as_slice() {
                    // `x = v` and `x[i] = v`, the common forms, without the key list.
                    [] => {
                        return Box::new(move |m| {
                            m.slots[slot] = e(m)?;
                            Ok(())
                        })
                    }
                    [CAccess::Index(_)] => {
                        let Some(CAccess::Index(k)) = path.into_iter().next() else {
                            unreachable!("matched above")
                        };
                        return Box::new(move |m| {
                            let v = e(m)?;
                            let k = k(m)?;
                            Ok(ops::store(&mut m.slots[slot], &k, v)?)
                        });
                    }
                    _ => {}
                }
                Box::new(move |m| {
                    // The value, then every index (they may read the target), then the store.
                    let v = e(m)?;
                    let mut keys = Vec::with_capacity(path.len());
                    for a in &path {
                        keys.push(match a {
                            CAccess::Index(k) => ops::Key::Index(k(m)?),
                            CAccess::Field(f) => ops::Key::Field(f.clone()),
                            CAccess::Tuple(i) => ops::Key::Tuple(*i),
                        });
                    }
                    Ok(ops::store_at(&mut m.slots[slot], &keys, v)?)
                })
            }
            Stmt::Eval(e) => {
                let e = self.expr(e);
                Box::new(move |m| {
                    e(m)?;
                    Ok(())
                })
            }
            Stmt::If(c, t, e) => {
                let (c, t, e) = (
                    self.cond(c),
                    self.block(t),
                    e.as_ref().map(|b| self.block(b)),
                );
                Box::new(move |m| {
                    if c(m)? {
                        t.run(m)?;
                    } else if let Some(e) = &e {
                        e.run(m)?;
                    }
                    Ok(())
                })
            }
            Stmt::For(p, coll, body) => {
                let (p, coll, body) = (self.pattern(p), self.coll(coll), self.block(body));
                Box::new(move |m| {
                    let mut stop = None;
                    for_coll(m, &p, &coll, &mut |m| match body.run(m) {
                        Ok(_) => Ok(true),
                        Err(Stop::Error(e)) => Err(e),
                        Err(s) => {
                            stop = Some(s);
                            Ok(false)
                        }
                    })?;
                    stop.map_or(Ok(()), Err)
                })
            }
            Stmt::Require { cond, message, .. } => {
                let c = self.cond(cond);
                let msg = message.as_ref().map(|t| self.template(t));
                Box::new(move |m| {
                    if c(m)? {
                        return Ok(());
                    }
                    let mut text = String::new();
                    if let Some(parts) = &msg {
                        render(m, parts, &mut text)?;
                    }
                    Err(Stop::Reject(text))
                })
            }
            Stmt::Witness(e) => {
                let e = self.expr(e);
                Box::new(move |m| {
                    m.witness = Some(e(m)?);
                    Ok(())
                })
            }
            Stmt::Set(idx, e) => {
                let (idx, e) = (*idx, self.expr(e));
                Box::new(move |m| {
                    let v = e(m)?;
                    if m.fields.len() <= idx {
                        m.fields.resize(idx + 1, None);
                    }
                    m.fields[idx] = Some(v);
                    Ok(())
                })
            }
            Stmt::Constraint {
                id,
                binders,
                cond,
                message,
                ..
            } => {
                let id = *id;
                let binders = self.clauses(binders);
                // A condition that can only give a bool is evaluated as one (the common
                // case); anything else may give unit (a statement-like constraint) or a
                // value that is reported.
                enum Check {
                    Bool(CCond),
                    Value(CExpr),
                }
                let cond = if yields_bool(cond) {
                    Check::Bool(self.cond(cond))
                } else {
                    Check::Value(self.expr(cond))
                };
                let msg = message.as_ref().map(|t| self.template(t));
                Box::new(move |m| {
                    // One evaluation per execution of the statement; every failing binding
                    // of its leading `forall`s is reported (bounded).
                    let mut failed = false;
                    let mut check = |m: &mut Machine| -> RtResult<bool> {
                        let v = match &cond {
                            Check::Bool(c) => c(m).map(Value::Bool),
                            Check::Value(e) => e(m),
                        };
                        let (ok, why) = match v {
                            Ok(Value::Bool(b)) => (b, None),
                            Ok(Value::Unit) => (true, None),
                            Ok(other) => {
                                (false, Some(format!("constraint gave {}", other.display())))
                            }
                            Err(e) => (false, Some(*e.message)),
                        };
                        if !ok {
                            failed = true;
                            let mut scorer = std::mem::take(&mut m.scorer);
                            scorer.fail(id, || {
                                let rendered = msg.as_ref().map(|parts| {
                                    let mut text = String::new();
                                    render(m, parts, &mut text).map(|_| text)
                                });
                                Scorer::message(id, rendered, why)
                            });
                            m.scorer = scorer;
                        }
                        Ok(true)
                    };
                    if let Err(e) = each(m, &binders, &mut check) {
                        failed = true;
                        m.scorer.fail(id, || *e.message);
                    }
                    m.scorer.evaluated(failed);
                    Ok(())
                })
            }
        }
    }

    /// Constant folding of an expression built from literals (`[(-1, 0), (1, 0)]`): it is
    /// compiled once and run once here. `Some(Ok(v))`: its value, instead of computing it
    /// on every evaluation; `Some(Err(f))`: running it fails, so it stays the compiled `f`
    /// and fails at run time, as written; `None`: `e` is not such an expression. Each node
    /// is compiled once: folding a failing operand and then compiling it again made
    /// compilation exponential in the nesting depth (`-(-(…(9223372036854775807 + 1)))`).
    fn fold(&self, e: &Expr) -> Option<Result<Value, PExpr>> {
        fn literal_only(e: &Expr) -> bool {
            match e {
                Expr::Lit(_) => true,
                Expr::Tuple(xs) | Expr::List(xs) => xs.iter().all(literal_only),
                Expr::Unary(_, x) | Expr::Field(x, _) | Expr::TupleField(x, _) => literal_only(x),
                Expr::Binary(_, a, b, _) | Expr::Index(a, b, _) => {
                    literal_only(a) && literal_only(b)
                }
                // Not calls: `repeat(0, 10000000)` is better built only when it runs.
                _ => false,
            }
        }
        if matches!(e, Expr::Lit(_)) || !literal_only(e) {
            return None;
        }
        let f = self.pure_node::<AsPure>(e);
        let folded = f(&Machine::new(0, None, 0)).map(Cow::into_owned);
        Some(folded.map_err(|_| f))
    }

    /// An operand of a pure node (`e` must be pure).
    fn pop(&self, e: &Expr) -> POp {
        match self.fold(e) {
            Some(Ok(v)) => return POp::Lit(v),
            Some(Err(f)) => return POp::Node(f),
            None => {}
        }
        match e {
            Expr::Local(s) => POp::Slot(*s as usize),
            Expr::Lit(l) => POp::Lit(l.value()),
            Expr::Index(a, i, _) => match (&**a, &**i) {
                (Expr::Local(a), Expr::Local(i)) => POp::Elem(*a as usize, *i as usize),
                _ => POp::Node(self.pure_node::<AsPure>(e)),
            },
            _ => POp::Node(self.pure_node::<AsPure>(e)),
        }
    }

    /// Compiles a pure expression (see [`is_pure`]); each node does what its effectful
    /// counterpart in [`Compiled::expr`] does, in the same order, with the same errors.
    fn pure<B: Boxer>(&self, e: &Expr) -> B::Out {
        match self.fold(e) {
            Some(Ok(v)) => B::boxed(move |_| Ok(Cow::Owned(v.clone()))),
            Some(Err(f)) => B::boxed(move |m| f(m)),
            None => self.pure_node::<B>(e),
        }
    }

    /// [`Compiled::pure`] without constant folding.
    fn pure_node<B: Boxer>(&self, e: &Expr) -> B::Out {
        match e {
            Expr::Lit(l) => {
                let v = l.value();
                B::boxed(move |_| Ok(Cow::Owned(v.clone())))
            }
            Expr::Local(s) => {
                let s = *s as usize;
                B::boxed(move |m| Ok(Cow::Borrowed(&m.slots[s])))
            }
            Expr::Tuple(xs) | Expr::List(xs) => {
                let xs: Vec<POp> = xs.iter().map(|x| self.pop(x)).collect();
                let tuple = matches!(e, Expr::Tuple(_));
                B::boxed(move |m| {
                    let mut items = Vec::with_capacity(xs.len());
                    for x in &xs {
                        items.push(x.get(m)?.into_owned());
                    }
                    Ok(Cow::Owned(if tuple {
                        Value::tuple(items)
                    } else {
                        Value::list(items)
                    }))
                })
            }
            Expr::Unary(UnOp::Neg, x) => {
                let x = self.pop(x);
                B::boxed(move |m| ops::neg(&*x.peek(m)?).map(Cow::Owned))
            }
            Expr::Unary(UnOp::Not, _)
            | Expr::Binary(BinOp::And | BinOp::Or | BinOp::Implies, ..) => {
                let c = self.pure_cond::<AsPure>(e);
                B::boxed(move |m| Ok(Cow::Owned(Value::Bool(c(m)?))))
            }
            Expr::Binary(op, a, b, _) => {
                let (a, b) = (self.pop(a), self.pop(b));
                let bool = |v: bool| Ok(Cow::Owned(Value::Bool(v)));
                match op {
                    BinOp::In => B::boxed(move |m| {
                        let x = a.peek(m)?;
                        bool(contains_paid(&m.fuel, &*b.peek(m)?, &x)?)
                    }),
                    _ => {
                        macro_rules! mk {
                            ($op:expr) => {
                                B::boxed(move |m| {
                                    if let (Some(x), Some(y)) = (a.int(m), b.int(m)) {
                                        return strict_ints($op, x, y).map(Cow::Owned);
                                    }
                                    strict($op, &*a.peek(m)?, &*b.peek(m)?).map(Cow::Owned)
                                })
                            };
                        }
                        per_strict_op!(*op, mk)
                    }
                }
            }
            Expr::Call(Callee::Builtin(name), args, _) => {
                let b = ops::Builtin::from_name(name).expect("a pure call is to a known builtin");
                let mut args: Vec<POp> = args.iter().map(|x| self.pop(x)).collect();
                let paid = b.paid(args.len());
                match (b, args.len()) {
                    // The hottest builtins skip the call dispatch.
                    (ops::Builtin::Len, 1) => {
                        let x = args.pop().expect("one argument");
                        B::boxed(move |m| ops::len(&*x.peek(m)?).map(Cow::Owned))
                    }
                    (ops::Builtin::Abs, 1) => {
                        let x = args.pop().expect("one argument");
                        B::boxed(move |m| ops::abs(&*x.peek(m)?).map(Cow::Owned))
                    }
                    // Common arities without a heap-allocated argument list.
                    (_, 1) => {
                        let x = args.pop().expect("one argument");
                        B::boxed(move |m| {
                            call_paid(&m.fuel, None, b, paid, &[x.peek(m)?]).map(Cow::Owned)
                        })
                    }
                    (_, 2) => {
                        let (y, x) = (args.pop().expect("two"), args.pop().expect("two"));
                        B::boxed(move |m| {
                            call_paid(&m.fuel, None, b, paid, &[x.peek(m)?, y.peek(m)?])
                                .map(Cow::Owned)
                        })
                    }
                    _ => B::boxed(move |m| {
                        let vals: Vec<Cow<Value>> =
                            args.iter().map(|x| x.peek(m)).collect::<RtResult<_>>()?;
                        call_paid(&m.fuel, None, b, paid, &vals).map(Cow::Owned)
                    }),
                }
            }
            Expr::Index(a, i, _) => {
                let (a, i) = (self.pop(a), self.pop(i));
                B::boxed(move |m| {
                    let c = a.get(m)?;
                    let k = i.peek(m)?;
                    project(c, |c| ops::index_ref(c, &k))
                })
            }
            Expr::Field(a, f) => {
                let (a, f) = (self.pop(a), self.name(f));
                B::boxed(move |m| project(a.get(m)?, |r| ops::field_ref_rc(r, &f)))
            }
            Expr::TupleField(a, i) => {
                let (a, i) = (self.pop(a), *i);
                B::boxed(move |m| project(a.get(m)?, |t| ops::tuple_field_ref(t, i)))
            }
            _ => unreachable!("not a pure expression"),
        }
    }

    /// Compiles an expression used as a bool (see [`CCond`]).
    fn cond(&self, e: &Expr) -> CCond {
        if is_pure(e) {
            return self.pure_cond::<AsExpr>(e);
        }
        match e {
            Expr::Unary(UnOp::Not, x) => {
                let x = self.cond(x);
                Box::new(move |m| Ok(!x(m)?))
            }
            Expr::Binary(op @ (BinOp::And | BinOp::Or | BinOp::Implies), a, b, _) => {
                let (a, b) = (self.cond(a), self.cond(b));
                match op {
                    BinOp::And => Box::new(move |m| Ok(a(m)? && b(m)?)),
                    BinOp::Or => Box::new(move |m| Ok(a(m)? || b(m)?)),
                    _ => Box::new(move |m| Ok(!a(m)? || b(m)?)),
                }
            }
            Expr::Binary(op, a, b, _) if is_comparison(*op) => {
                let (a, b) = (self.expr(a), self.expr(b));
                macro_rules! mk {
                    ($op:expr) => {
                        Box::new(move |m| {
                            let x = a(m)?;
                            Ok(compare($op, &x, &b(m)?))
                        })
                    };
                }
                per_comparison!(*op, mk)
            }
            _ => {
                let e = self.expr(e);
                Box::new(move |m| e(m)?.as_bool())
            }
        }
    }

    /// An operand of a pure `and`/`or`/`not` (`e` must be pure).
    fn cop(&self, e: &Expr) -> COp {
        match e {
            // A pair literal compared goes to `pure_cond`, which compares it in place.
            Expr::Binary(op, a, b, _) if is_comparison(*op) && !is_pair(a) => {
                COp::Compare(*op, self.pop(a), self.pop(b))
            }
            _ => COp::Node(self.pure_cond::<AsPure>(e)),
        }
    }

    /// Compiles a pure expression used as a bool.
    fn pure_cond<B: CondBoxer>(&self, e: &Expr) -> B::Out {
        match e {
            Expr::Local(s) => {
                let s = *s as usize;
                B::boxed(move |m| m.slots[s].as_bool())
            }
            Expr::Unary(UnOp::Not, x) => {
                let x = self.cop(x);
                B::boxed(move |m| Ok(!x.eval(m)?))
            }
            Expr::Binary(op @ (BinOp::And | BinOp::Or | BinOp::Implies), a, b, _) => {
                let (a, b) = (self.cop(a), self.cop(b));
                match op {
                    BinOp::And => B::boxed(move |m| Ok(a.eval(m)? && b.eval(m)?)),
                    BinOp::Or => B::boxed(move |m| Ok(a.eval(m)? || b.eval(m)?)),
                    _ => B::boxed(move |m| Ok(!a.eval(m)? || b.eval(m)?)),
                }
            }
            // `(a, b) == t`, `(a, b) != t` and `(a, b) in xs` with a pair literal (a grid
            // cell): the pair is compared in place instead of built (maze_path's rendering
            // built two pairs a cell). The pair's elements are read first, then the other
            // side, as before; pairs are equal element by element, and a list search pays
            // as `contains_paid` does.
            Expr::Binary(op @ (BinOp::Eq | BinOp::Ne | BinOp::In), a, b, _) if is_pair(a) => {
                let Expr::Tuple(xs) = &**a else {
                    unreachable!("matched above")
                };
                let (p, q, b, op) = (self.pop(&xs[0]), self.pop(&xs[1]), self.pop(b), *op);
                B::boxed(move |m| {
                    let (x, y) = (p.peek(m)?, q.peek(m)?);
                    let other = b.peek(m)?;
                    let is = |v: &Value| {
                        matches!(v, Value::Tuple(t) if t.len() == 2
                            && compare(BinOp::Eq, &t[0], &x)
                            && compare(BinOp::Eq, &t[1], &y))
                    };
                    match op {
                        BinOp::Eq => Ok(is(&other)),
                        BinOp::Ne => Ok(!is(&other)),
                        _ => {
                            pay(&m.fuel, ops::contains_paid(&other))?;
                            match &*other {
                                Value::List(v) => Ok(v.iter().any(is)),
                                // A set or map lookup needs the pair itself.
                                coll => ops::contains(
                                    coll,
                                    &Value::tuple(vec![x.into_owned(), y.into_owned()]),
                                ),
                            }
                        }
                    }
                })
            }
            Expr::Binary(op, a, b, _) if is_comparison(*op) => {
                let (a, b) = (self.pop(a), self.pop(b));
                macro_rules! mk {
                    ($op:expr) => {
                        B::boxed(move |m| {
                            if let (Some(x), Some(y)) = (a.int(m), b.int(m)) {
                                return Ok(compare_ints($op, x, y));
                            }
                            Ok(compare($op, &*a.peek(m)?, &*b.peek(m)?))
                        })
                    };
                }
                per_comparison!(*op, mk)
            }
            Expr::Binary(BinOp::In, a, b, _) => {
                let (a, b) = (self.pop(a), self.pop(b));
                B::boxed(move |m| {
                    let x = a.peek(m)?;
                    contains_paid(&m.fuel, &*b.peek(m)?, &x)
                })
            }
            _ => {
                let x = self.pop(e);
                B::boxed(move |m| x.peek(m)?.as_bool())
            }
        }
    }

    fn exprs(&self, es: &[Expr]) -> Vec<CExpr> {
        es.iter().map(|e| self.expr(e)).collect()
    }

    fn expr(&self, e: &Expr) -> CExpr {
        if is_pure(e) {
            return self.pure::<AsExpr>(e);
        }
        match e {
            Expr::Lit(_) | Expr::Local(_) => unreachable!("literals and locals are pure"),
            Expr::Tuple(v) => {
                let v = self.exprs(v);
                Box::new(move |m| Ok(Value::tuple(eval_all(m, &v)?)))
            }
            Expr::List(v) => {
                let v = self.exprs(v);
                Box::new(move |m| Ok(Value::list(eval_all(m, &v)?)))
            }
            Expr::Record(fs) => {
                let fs: Vec<(Rc<str>, CExpr)> = fs
                    .iter()
                    .map(|(n, e)| (self.name(n), self.expr(e)))
                    .collect();
                // Fields are evaluated in written order, stored in name order.
                let sorted = fs.windows(2).all(|w| w[0].0 <= w[1].0);
                Box::new(move |m| {
                    let mut out = Vec::with_capacity(fs.len());
                    for (n, e) in &fs {
                        out.push((n.clone(), e(m)?));
                    }
                    if !sorted {
                        out.sort_by(|a, b| a.0.cmp(&b.0));
                    }
                    Ok(Value::Record(Rc::new(out)))
                })
            }
            Expr::Comprehension(cs, elem) => {
                let (cs, elem) = (self.clauses(cs), self.expr(elem));
                // The length this comprehension had last time (bounded), as the capacity
                // to start from: one allocation instead of a doubling series.
                let hint = std::cell::Cell::new(0);
                Box::new(move |m| {
                    let mut out = Vec::with_capacity(hint.get());
                    each(m, &cs, &mut |m| {
                        out.push(elem(m)?);
                        if out.len() > ops::MAX_COLLECTION {
                            return Err(RtError::new(
                                "comprehension exceeds the collection size limit",
                            ));
                        }
                        Ok(true)
                    })?;
                    hint.set(out.len().min(1024));
                    Ok(Value::list(out))
                })
            }
            Expr::Quant {
                forall,
                clauses,
                body,
            } => {
                let (forall, cs, body) = (*forall, self.clauses(clauses), self.cond(body));
                Box::new(move |m| {
                    let mut result = forall;
                    each(m, &cs, &mut |m| {
                        let b = body(m)?;
                        if b != forall {
                            result = !forall;
                            return Ok(false);
                        }
                        Ok(true)
                    })?;
                    Ok(Value::Bool(result))
                })
            }
            Expr::Range { lo, hi, inclusive } => {
                let (lo, hi, inc) = (self.expr(lo), self.expr(hi), *inclusive);
                Box::new(move |m| ops::range(lo(m)?.as_int()?, hi(m)?.as_int()?, inc))
            }
            Expr::Unary(UnOp::Neg, x) => {
                let x = self.expr(x);
                Box::new(move |m| ops::neg(&x(m)?))
            }
            Expr::Unary(UnOp::Not, _)
            | Expr::Binary(BinOp::And | BinOp::Or | BinOp::Implies, ..) => {
                let c = self.cond(e);
                Box::new(move |m| Ok(Value::Bool(c(m)?)))
            }
            // `x in lo..hi` compares with the bounds, as emitted code does: no list is built
            // and no search is paid for (a list built here would pay its length, formats.md
            // §5.2). The same operands in the same order, the same range errors.
            Expr::Binary(BinOp::In, x, r, _) if matches!(**r, Expr::Range { .. }) => {
                let Expr::Range { lo, hi, inclusive } = &**r else {
                    unreachable!("matched above")
                };
                let (x, lo, hi, inc) = (self.expr(x), self.expr(lo), self.expr(hi), *inclusive);
                Box::new(move |m| {
                    let x = x(m)?;
                    let (lo, hi) = (lo(m)?.as_int()?, hi(m)?.as_int()?);
                    let (a, b) = resyn_runtime::native::range_bounds(lo, hi, inc)?;
                    Ok(Value::Bool(matches!(x, Value::Int(v) if v >= a && v <= b)))
                })
            }
            Expr::Binary(op, a, b, _) => self.binary(*op, self.expr(a), self.expr(b)),
            Expr::Call(Callee::Builtin(name), args, _)
                if matches!(*name, "all" | "any" | "sum" | "len")
                    && matches!(args.as_slice(), [Expr::Comprehension(..)]) =>
            {
                // `all([… for …])` and friends fold the elements as they are produced instead of
                // building the list. Every element is still evaluated (same errors as the list),
                // except that `len` skips elements whose evaluation can neither fail nor have
                // an effect (`len([(i, j) for …])` builds no tuples).
                let Expr::Comprehension(cs, elem) = &args[0] else {
                    unreachable!("matched above")
                };
                let cs = self.clauses(cs);
                match *name {
                    "all" | "any" => {
                        let (elem, all) = (self.cond(elem), *name == "all");
                        Box::new(move |m| {
                            let mut truth = all;
                            each(m, &cs, &mut |m| {
                                let v = elem(m)?;
                                if all {
                                    truth &= v;
                                } else {
                                    truth |= v;
                                }
                                Ok(true)
                            })?;
                            Ok(Value::Bool(truth))
                        })
                    }
                    "sum" => {
                        let elem = self.expr(elem);
                        Box::new(move |m| {
                            let mut acc: Option<Value> = None;
                            each(m, &cs, &mut |m| {
                                let v = elem(m)?;
                                acc = Some(match acc.take() {
                                    None => match v {
                                        Value::Float(_) => ops::add(&Value::Float(0.0), &v)?,
                                        _ => strict(BinOp::Add, &Value::Int(0), &v)?,
                                    },
                                    Some(a) => strict(BinOp::Add, &a, &v)?,
                                });
                                Ok(true)
                            })?;
                            Ok(acc.unwrap_or(Value::Int(0)))
                        })
                    }
                    _ => {
                        let elem = (!(is_pure(elem) && infallible(elem))).then(|| self.expr(elem));
                        Box::new(move |m| {
                            let mut count = 0i64;
                            each(m, &cs, &mut |m| {
                                if let Some(elem) = &elem {
                                    elem(m)?;
                                }
                                count += 1;
                                Ok(true)
                            })?;
                            Ok(Value::Int(count))
                        })
                    }
                }
            }
            Expr::Call(Callee::Builtin("unique_givens"), args, _) => {
                let args = self.exprs(args);
                let Some(program) = self.program.clone() else {
                    return Box::new(|_| {
                        Err(RtError::new(
                            "`unique_givens` can only run in the generator",
                        ))
                    });
                };
                let env = self.env_index.get();
                // The env's verify, compiled on first use by this closure's thread.
                let checker: Rc<std::cell::OnceCell<Compiled>> = Rc::default();
                Box::new(move |m| {
                    let vals: Vec<Value> = args.iter().map(|e| e(m)).collect::<RtResult<_>>()?;
                    let [Value::Str(field), Value::List(givens), solution, Value::Int(keep)] =
                        vals.as_slice()
                    else {
                        return Err(RtError::new(
                            "unique_givens(field, givens, solution, min_keep) got arguments of the wrong kinds",
                        ));
                    };
                    let compiled = checker.get_or_init(|| compile(&program));
                    let cenv = &compiled.envs[env];
                    let nparams = cenv.ir.params.len();
                    let params = m.slots[..nparams].to_vec();
                    let call = crate::givens::Givens {
                        field,
                        givens,
                        solution,
                        min_keep: usize::try_from(*keep).unwrap_or(0),
                    };
                    let kept =
                        crate::givens::reduce_givens(&program, cenv, &params, &m.fields, &call)
                            .map_err(|e| RtError::new(format!("unique_givens: {e}")))?;
                    Ok(Value::list(kept))
                })
            }
            Expr::Call(callee, args, _) => {
                let args = self.exprs(args);
                match callee {
                    Callee::Builtin(name) => {
                        let Some(bi) = ops::Builtin::from_name(name) else {
                            let msg = format!("unknown builtin `{name}`");
                            return Box::new(move |_| Err(RtError::new(msg.clone())));
                        };
                        let paid = bi.paid(args.len());
                        match args.len() {
                            // Common arities without a heap-allocated argument list.
                            1 => {
                                let a = args.into_iter().next().expect("one argument");
                                Box::new(move |m| {
                                    let x = [a(m)?];
                                    call_paid(&m.fuel, m.rng.as_mut(), bi, paid, &x)
                                })
                            }
                            2 => {
                                let mut it = args.into_iter();
                                let (a, b) = (it.next().expect("two"), it.next().expect("two"));
                                Box::new(move |m| {
                                    let x = [a(m)?, b(m)?];
                                    call_paid(&m.fuel, m.rng.as_mut(), bi, paid, &x)
                                })
                            }
                            _ => Box::new(move |m| {
                                let vals = eval_all(m, &args)?;
                                call_paid(&m.fuel, m.rng.as_mut(), bi, paid, &vals)
                            }),
                        }
                    }
                    Callee::Fn(i) => {
                        let f = self.fns[*i].clone();
                        Box::new(move |m| {
                            m.tick()?;
                            let mut frame = m.frames.pop().unwrap_or_default();
                            frame.resize_with(f.slots as usize, || Value::Unit);
                            for (slot, e) in frame.iter_mut().zip(&args) {
                                *slot = e(m)?;
                            }
                            let saved = std::mem::replace(&mut m.slots, frame);
                            let r = f.body.run(m);
                            let mut frame = std::mem::replace(&mut m.slots, saved);
                            frame.clear();
                            m.frames.push(frame);
                            match r {
                                Ok(v) => Ok(v),
                                Err(Stop::Error(e)) => Err(e),
                                Err(Stop::Reject(_)) => {
                                    Err(RtError::new("`require` inside a function"))
                                }
                            }
                        })
                    }
                }
            }
            Expr::Index(a, i, _) => match **a {
                // `xs[f(x)]`: the list is read in place after the index when the index
                // cannot change it (reading a local has no effect and cannot fail, so the
                // order is not observable).
                Expr::Local(s) if !writes_slot(i, s) => {
                    let (s, i) = (s as usize, self.expr(i));
                    Box::new(move |m| {
                        let k = i(m)?;
                        ops::index(&m.slots[s], &k)
                    })
                }
                _ => {
                    let (a, i) = (self.expr(a), self.expr(i));
                    Box::new(move |m| ops::index(&a(m)?, &i(m)?))
                }
            },
            Expr::Field(a, f) => {
                let (a, f) = (self.expr(a), self.name(f));
                Box::new(move |m| ops::field_ref_rc(&a(m)?, &f).cloned())
            }
            Expr::TupleField(a, i) => {
                let (a, i) = (self.expr(a), *i);
                Box::new(move |m| ops::tuple_field(&a(m)?, i))
            }
            Expr::If(c, t, e) => {
                let (c, t, e) = (
                    self.cond(c),
                    self.block(t),
                    e.as_ref().map(|b| self.block(b)),
                );
                Box::new(move |m| {
                    let r = if c(m)? {
                        t.run(m)
                    } else {
                        match &e {
                            Some(e) => e.run(m),
                            None => Ok(Value::Unit),
                        }
                    };
                    r.map_err(|s| match s {
                        Stop::Error(e) => e,
                        Stop::Reject(_) => RtError::new("`require` inside an expression"),
                    })
                })
            }
            Expr::Str(t) => {
                let parts = self.parts(&t.parts);
                Box::new(move |m| {
                    let mut s = String::new();
                    render(m, &parts, &mut s)?;
                    Ok(Value::str(&s))
                })
            }
        }
    }

    fn binary(&self, op: BinOp, a: CExpr, b: CExpr) -> CExpr {
        match op {
            BinOp::And | BinOp::Or | BinOp::Implies => {
                unreachable!("`{op:?}` is compiled as a condition")
            }
            BinOp::In => Box::new(move |m| {
                let x = a(m)?;
                let coll = b(m)?;
                Ok(Value::Bool(contains_paid(&m.fuel, &coll, &x)?))
            }),
            _ => {
                macro_rules! mk {
                    ($op:expr) => {
                        Box::new(move |m| {
                            let x = a(m)?;
                            strict($op, &x, &b(m)?)
                        })
                    };
                }
                per_strict_op!(op, mk)
            }
        }
    }
}

/// The values of `es`, in order (a loop into an exact-size vector: `collect` over
/// results grows its vector step by step).
fn eval_all(m: &mut Machine, es: &[CExpr]) -> RtResult<Vec<Value>> {
    let mut out = Vec::with_capacity(es.len());
    for e in es {
        out.push(e(m)?);
    }
    Ok(out)
}

/// Whether evaluating `e` may write local `slot` (an `if` block inside it may assign).
fn writes_slot(e: &Expr, slot: Slot) -> bool {
    let mut writes = false;
    e.each_use(&mut |u| writes |= u == SlotUse::Write(slot));
    writes
}

impl CEnv {
    /// Params for a level (1..=5) with `name=value` overrides applied; each value must lie
    /// in its param's domain.
    pub fn resolve_params(
        &self,
        level: u8,
        overrides: &[(String, Value)],
    ) -> Result<Vec<Value>, GenError> {
        let li = usize::from(level.clamp(1, 5) - 1);
        let mut m = Machine::new(self.ir.params.len() as u32, None, DEFAULT_FUEL);
        let mut out = Vec::new();
        for (i, ((levels, domain), p)) in self.params.iter().zip(&self.ir.params).enumerate() {
            let perr = |message: String| GenError::Param {
                name: p.name.clone(),
                level: Some(li as u8 + 1),
                message,
            };
            let v = match overrides.iter().find(|(n, _)| *n == p.name) {
                Some((_, v)) => v.clone(),
                None => levels[li](&mut m).map_err(|e| perr(*e.message))?,
            };
            if let Some(d) = domain {
                let dom = d(&mut m).map_err(|e| perr(*e.message))?;
                if !ops::contains(&dom, &v).map_err(|e| perr(*e.message))? {
                    return Err(perr(format!("{} is outside its domain", v.display())));
                }
            }
            m.slots[i] = v.clone();
            out.push(v);
        }
        Ok(out)
    }

    /// Runs the generator (resampling on `require`), renders the question, and checks the
    /// planted witness against the answer type and verify (the runtime's shared driver).
    pub fn generate(
        &self,
        params: &[Value],
        rng: Rng,
        fuel: u64,
        attempts: u32,
    ) -> Result<Instance, GenError> {
        resyn_runtime::env::generate(self, params, rng, fuel, attempts)
    }

    pub fn question(&self, params: &[Value], fields: &[Value]) -> RtResult<String> {
        let mut m = Machine::new(self.ir.prompt_slots, None, DEFAULT_FUEL);
        let mut i = params.len();
        m.slots[..i].clone_from_slice(params);
        for (f, v) in self.ir.fields.iter().zip(fields) {
            if f.shown {
                m.slots[i] = v.clone();
                i += 1;
            }
        }
        let mut s = String::new();
        render(&mut m, &self.prompt, &mut s)?;
        Ok(s)
    }

    /// The answer type with its domains evaluated for this instance.
    pub fn answer_shape(
        &self,
        params: &[Value],
        fields: &[Value],
    ) -> RtResult<resyn_runtime::Shape> {
        let mut m = Machine::new(self.ir.answer_slots, None, DEFAULT_FUEL);
        m.slots[..params.len()].clone_from_slice(params);
        m.slots[params.len()..params.len() + fields.len()].clone_from_slice(fields);
        eval_shape(&mut m, &self.shape)
    }

    /// Checks an answer value against verify.
    pub fn verify(&self, params: &[Value], fields: &[Value], answer: Value) -> Verdict {
        let mut m = Machine::new(self.ir.verify_slots, None, DEFAULT_FUEL);
        let p = params.len();
        m.slots[..p].clone_from_slice(params);
        m.slots[p..p + fields.len()].clone_from_slice(fields);
        m.slots[p + fields.len()] = answer;
        let error = match self.verify.run(&mut m) {
            Ok(_) => None,
            Err(Stop::Error(e)) => Some(*e.message),
            Err(Stop::Reject(_)) => Some("`require` in verify".into()),
        };
        m.scorer.verdict(error, self.ir.scoring)
    }
}

/// The body of a loop of verify, compiled on its own to run one iteration at a time on
/// concrete values in a frame the caller fills: the SMT lowering enumerates the states of
/// a loop over an answer list with it (`smt::Lowering::enumerate_loop`). Running the
/// evaluator's own closures keeps each step what the native verifier does, at a fraction
/// of the symbolic executor's cost on constants (water_jugs: about 1.3 µs a step there).
pub struct LoopStep {
    body: CBlock,
    pattern: CPattern,
    machine: Machine,
    /// The field names the compiled body reads, by text ([`LoopStep::adopt`]).
    names: std::collections::HashMap<String, Rc<str>>,
}

/// What one iteration of a [`LoopStep`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// It ran to the end with every constraint holding: the frame holds the state after it.
    Pass,
    /// A constraint failed, or the evaluator stopped with an error (which makes an answer
    /// wrong in verify).
    Fail,
    /// It ran out of fuel: the caller cannot tell pass from fail.
    OutOfFuel,
}

impl LoopStep {
    /// Compiles `body` (with loop pattern `pattern`) of a frame of `frame` slots, and the
    /// program's functions it may call.
    pub fn new(p: &Program, frame: usize, pattern: &Pattern, body: &Block) -> LoopStep {
        let mut c = Compiled::empty(None);
        c.compile_some_fns(p, &reachable(p, body));
        let (body, pattern) = (c.block(body), c.pattern(pattern));
        LoopStep {
            body,
            pattern,
            machine: Machine::new(frame as u32, None, 0),
            names: c.names.into_inner(),
        }
    }

    /// `v` with its records' field names replaced by the very `Rc`s the compiled body
    /// reads fields with, so a read finds its field by pointer (`ops::field_ref_rc`)
    /// rather than by comparing text: values made elsewhere (the lowering's choices of
    /// an answer element) are adopted once, then run many times.
    pub fn adopt(&self, v: &Value) -> Value {
        match v {
            Value::Record(fs) => Value::Record(Rc::new(
                fs.iter()
                    .map(|(k, x)| {
                        let k = self.names.get(&**k).cloned().unwrap_or_else(|| k.clone());
                        (k, self.adopt(x))
                    })
                    .collect(),
            )),
            Value::Tuple(xs) => Value::Tuple(Rc::new(xs.iter().map(|x| self.adopt(x)).collect())),
            Value::List(xs) => Value::List(Rc::new(xs.iter().map(|x| self.adopt(x)).collect())),
            other => other.clone(),
        }
    }

    /// Sets a slot of the frame (a value the body reads, or state it carries).
    pub fn set(&mut self, slot: Slot, v: Value) {
        self.machine.slots[slot as usize] = v;
    }

    /// A slot of the frame, after [`LoopStep::run`].
    pub fn get(&self, slot: Slot) -> &Value {
        &self.machine.slots[slot as usize]
    }

    /// Runs one iteration with element `x`, on at most `fuel` steps; returns the outcome
    /// and the fuel spent.
    pub fn run(&mut self, x: Value, fuel: u64) -> (StepOutcome, u64) {
        let m = &mut self.machine;
        m.fuel.set(fuel);
        // Failures are counted, not reported: a machine whose report is full renders no
        // more messages.
        let failures = m.scorer.failure_count;
        let ran = bind(m, &self.pattern, x)
            .map_err(Stop::from)
            .and_then(|()| self.body.run(m));
        let spent = fuel - m.fuel.get();
        // Fuel is checked first: a constraint catches its own errors, running out of fuel
        // among them, and counts them as failures, which here would forbid a step the
        // native verifier (with more fuel) may pass.
        let outcome = match ran {
            _ if m.fuel.get() == 0 => StepOutcome::OutOfFuel,
            Err(_) => StepOutcome::Fail,
            Ok(_) if m.scorer.failure_count != failures => StepOutcome::Fail,
            Ok(_) => StepOutcome::Pass,
        };
        (outcome, spent)
    }
}

/// The functions `body` may call, directly or not. Compiling only those keeps a
/// [`LoopStep`] cheap to make (cryptarithm's `from_digits` loops call none; compiling the
/// whole program was 28 µs of every water_jugs proof).
fn reachable(p: &Program, body: &Block) -> Vec<bool> {
    let mut seen = vec![false; p.fns.len()];
    let mut todo = Vec::new();
    let calls = |b: &Block, todo: &mut Vec<FnIdx>| {
        walk_block(b, &mut |w| {
            if let Walked::Expr(Expr::Call(Callee::Fn(i), ..)) = w {
                todo.push(*i);
            }
        })
    };
    calls(body, &mut todo);
    while let Some(i) = todo.pop() {
        if let Some(false) = seen.get(i) {
            seen[i] = true;
            calls(&p.fns[i].body, &mut todo);
        }
    }
    seen
}

impl Environment for CEnv {
    fn meta(&self) -> &EnvMeta {
        &self.meta
    }

    fn resolve_params(
        &self,
        level: u8,
        overrides: &[(String, Value)],
    ) -> Result<Vec<Value>, GenError> {
        CEnv::resolve_params(self, level, overrides)
    }

    fn attempt(&self, params: &[Value], rng: Rng, fuel: &mut u64) -> (Rng, Result<Attempt, Stop>) {
        let mut m = Machine::new(self.ir.gen_slots, Some(rng), *fuel);
        m.slots[..params.len()].clone_from_slice(params);
        let r = self.gen.run(&mut m);
        *fuel = m.fuel.get();
        let rng = m.rng.take().expect("the generator keeps its rng");
        let r = r.map(|_| Attempt {
            fields: m
                .fields
                .into_iter()
                .map(|f| f.unwrap_or(Value::Unit))
                .collect(),
            witness: m.witness,
        });
        (rng, r)
    }

    fn answer_shape(&self, params: &[Value], fields: &[Value]) -> RtResult<resyn_runtime::Shape> {
        CEnv::answer_shape(self, params, fields)
    }

    fn verify(&self, params: &[Value], fields: &[Value], answer: Value) -> Verdict {
        CEnv::verify(self, params, fields, answer)
    }

    fn question(&self, params: &[Value], fields: &[Value]) -> RtResult<String> {
        CEnv::question(self, params, fields)
    }
}

/// What rows need to know about an env (names, shapes for decoding, requirement).
pub fn env_meta(e: &Env) -> EnvMeta {
    use crate::dataset::ty_shape;
    EnvMeta {
        name: e.name.clone(),
        category: e.category.clone(),
        requirement: e.requirement,
        scoring: e.scoring,
        params: e
            .params
            .iter()
            .map(|p| ParamMeta {
                name: p.name.clone(),
                shape: ty_shape(&p.ty),
                ty: p.ty.to_string(),
            })
            .collect(),
        fields: e
            .fields
            .iter()
            .map(|f| FieldMeta {
                name: f.name.clone(),
                shown: f.shown,
                shape: ty_shape(&f.ty),
            })
            .collect(),
        extract: e.extract,
        constraint_text: e.constraint_text.clone(),
    }
}

fn eval_shape(m: &mut Machine, s: &CShape) -> RtResult<resyn_runtime::Shape> {
    use resyn_runtime::{Domain, Len, Shape};
    Ok(match s {
        CShape::Bool => Shape::Bool,
        CShape::Int => Shape::Int {
            domain: Domain::Any,
        },
        CShape::Float => Shape::Float,
        CShape::Str => Shape::Str {
            domain: Domain::Any,
        },
        CShape::Unit => Shape::Unit,
        CShape::In(base, coll) => {
            let values: std::collections::BTreeSet<Value> =
                coll(m)?.iter_elems()?.into_iter().collect();
            Shape::within(eval_shape(m, base)?, values)
        }
        CShape::IntRange(lo, hi, inclusive) => {
            let lo = lo(m)?.as_int()?;
            let hi = hi(m)?.as_int()?;
            Shape::int_range(lo, hi, *inclusive)?
        }
        CShape::Tuple(v) => Shape::Tuple(
            v.iter()
                .map(|s| eval_shape(m, s))
                .collect::<RtResult<_>>()?,
        ),
        CShape::List(e, len) => {
            let elem = Box::new(eval_shape(m, e)?);
            let n = |x: &CExpr, m: &mut Machine| -> RtResult<usize> {
                let v = x(m)?.as_int()?;
                usize::try_from(v).map_err(|_| {
                    RtError::new(format!("negative list length {v} in the answer type"))
                })
            };
            let len = match len {
                CLen::Any => Len::Any,
                CLen::Exact(x) => Len::Exact(n(x, m)?),
                CLen::AtMost(x) => Len::AtMost(n(x, m)?),
            };
            Shape::List { elem, len }
        }
        CShape::Set(e) => Shape::Set(Box::new(eval_shape(m, e)?)),
        CShape::Map(k, v) => Shape::Map(Box::new(eval_shape(m, k)?), Box::new(eval_shape(m, v)?)),
        CShape::Record(fs) => Shape::Record(
            fs.iter()
                .map(|(n, s)| Ok((n.clone(), eval_shape(m, s)?)))
                .collect::<RtResult<_>>()?,
        ),
        CShape::Enum(vs) => Shape::Enum {
            variants: vs.clone(),
        },
    })
}
