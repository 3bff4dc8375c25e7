//! Lowering to native Rust (`resyn build --emit rust`): the IR of checked files becomes a
//! Cargo crate that depends only on the runtime. Each env becomes one module implementing
//! `resyn_runtime::env::Environment`, so the runtime's shared generation driver, scorer,
//! row writers and command line give the same rows as the evaluator, byte for byte.
//!
//! The code is typed: language values become the Rust types of `resyn_runtime::native`
//! (`i64`, `F64`, `Str`, `List<T>`, tuples, record structs…), so a constraint like
//! `coloring[u] != coloring[v]` compiles to two bounds-checked reads and a comparison. Types
//! are written where Rust needs them (function signatures, params, instance values, the
//! answer); everywhere else rustc infers them, and the runtime's operators are generic
//! over the few types they accept. Every construct mirrors the evaluator's closure for it
//! (`eval.rs`): evaluation order, fuel, runtime errors and their messages. Pure integer
//! regions also get a fast form that falls back to the exact one (spec/emit.md §3.1).

use std::collections::BTreeMap;
use std::fmt::Write;

use resyn_grammar::ast::{BinOp, UnOp};
use resyn_runtime::ops;

use crate::ir::*;
use crate::types::Ty;

/// What an emitted generator that calls `unique_givens` reports: the call proves
/// uniqueness with Z3, which emitted code does not link (its verify, prompt and decoding
/// are emitted as usual).
pub const UNIQUE_GIVENS_NEEDS_Z3: &str = "unique_givens needs the Z3 solver, which emitted code does not include: generate this env with `resyn gen`";

/// One checked file to emit: its program and provenance.
pub struct Unit<'a> {
    /// The file name as given (comments and `source_file` of each env).
    pub file: &'a str,
    /// The file's text (constraint comments give their line).
    pub text: &'a str,
    pub program: &'a Program,
    pub source_hash: &'a str,
}

/// The emitted crate: (path relative to the crate root, contents).
pub struct Crate {
    pub files: Vec<(String, String)>,
}

/// Does the env's generator need Z3 (`unique_givens`)? Its emitted generator then reports
/// [`UNIQUE_GIVENS_NEEDS_Z3`]; verify, the prompt and decoding are emitted as usual.
pub fn generator_needs_solver(env: &Env) -> bool {
    fn block(b: &Block) -> bool {
        b.stmts.iter().any(stmt) || b.value.as_deref().is_some_and(expr)
    }
    fn stmt(s: &Stmt) -> bool {
        match s {
            Stmt::Let(_, e) | Stmt::Assign(_, _, e) | Stmt::Eval(e) | Stmt::Witness(e) => expr(e),
            Stmt::Set(_, e) => expr(e),
            Stmt::If(c, t, e) => expr(c) || block(t) || e.as_ref().is_some_and(block),
            Stmt::For(_, c, b) => expr(c) || block(b),
            Stmt::Require { cond, .. } => expr(cond),
            Stmt::Constraint { cond, .. } => expr(cond),
        }
    }
    fn expr(e: &Expr) -> bool {
        match e {
            Expr::Call(Callee::Builtin("unique_givens"), _, _) => true,
            Expr::Call(_, args, _) | Expr::Tuple(args) | Expr::List(args) => args.iter().any(expr),
            Expr::Record(fs) => fs.iter().any(|(_, e)| expr(e)),
            Expr::Comprehension(_, b) | Expr::Quant { body: b, .. } => expr(b),
            Expr::Unary(_, x) | Expr::Field(x, _) | Expr::TupleField(x, _) => expr(x),
            Expr::Binary(_, a, b, _) | Expr::Index(a, b, _) => expr(a) || expr(b),
            Expr::Range { lo, hi, .. } => expr(lo) || expr(hi),
            Expr::If(c, t, e) => expr(c) || block(t) || e.as_ref().is_some_and(block),
            Expr::Lit(_) | Expr::Local(_) | Expr::Str(_) => false,
        }
    }
    block(&env.gen)
}

/// The most expressions a function may have to be inlined into its callers.
const INLINE_MAX_EXPRS: usize = 32;

/// Whether a function is emitted `#[inline(always)]`: a leaf (it calls no user function,
/// so inlining it cannot cascade) whose body has at most [`INLINE_MAX_EXPRS`] expressions.
/// Such functions are typically helpers called inside the loops of their callers, where a
/// call costs a good part of the work it does. Their emitted body is several times the
/// source (each pure region is written twice, §3.1 of spec/emit.md), which LLVM's size
/// estimate counts against inlining; the bound on the source keeps the growth of each
/// caller small.
fn inline_always(f: &Function) -> bool {
    let (mut exprs, mut calls) = (0usize, false);
    walk_block(&f.body, &mut |w| {
        if let Walked::Expr(e) = w {
            exprs += 1;
            calls |= matches!(e, Expr::Call(Callee::Fn(_), ..));
        }
    });
    !calls && exprs <= INLINE_MAX_EXPRS
}

/// Which parameters of a function are passed by reference: those of a type that is not a
/// plain scalar (so passing it by value would copy a shared pointer, counting a reference
/// in and out) that the body never assigns or rebinds. The body reads them through the
/// reference; the caller lends its local or a temporary.
fn ref_params(f: &Function) -> Vec<bool> {
    let mut written = std::collections::BTreeSet::new();
    fn binds(p: &Pattern, out: &mut std::collections::BTreeSet<Slot>) {
        match p {
            Pattern::Bind(s) => {
                out.insert(*s);
            }
            Pattern::Wild => {}
            Pattern::Tuple(ps) => ps.iter().for_each(|p| binds(p, out)),
        }
    }
    walk_block(&f.body, &mut |w| match w {
        Walked::Binds(p) => binds(p, &mut written),
        Walked::Assigns(s) => {
            written.insert(s);
        }
        Walked::Expr(_) => {}
    });
    (0..f.arity as usize)
        .map(|p| {
            let scalar = matches!(
                f.params.get(p),
                None | Some(Ty::Bool | Ty::Int | Ty::Float | Ty::Unit | Ty::Unknown)
            );
            !scalar && !written.contains(&(p as Slot))
        })
        .collect()
}

/// Does evaluating `e` run statements (an `if` expression's blocks), which could assign
/// a local that an earlier argument lent by reference?
fn runs_statements(e: &Expr) -> bool {
    let mut found = false;
    walk_expr(e, &mut |w| {
        if let Walked::Expr(Expr::If(..)) = w {
            found = true;
        }
    });
    found
}

/// Record structs of the crate: one per set of field names, generic over field types.
#[derive(Default)]
struct Records {
    by_names: BTreeMap<Vec<String>, usize>,
}

impl Records {
    fn id(&mut self, names: Vec<String>) -> usize {
        let n = self.by_names.len();
        *self.by_names.entry(names).or_insert(n)
    }

    fn source(&self) -> String {
        let mut out = String::from(
            "//! Record types: one struct per set of field names (fields in name order, as the\n\
             //! language orders records), generic over the field types.\n\n\
             #![allow(non_camel_case_types, unused_imports, clippy::all)]\n\n\
             use resyn_runtime::native::*;\n\
             use resyn_runtime::{RtResult, Value};\n\n",
        );
        let mut all: Vec<(&Vec<String>, &usize)> = self.by_names.iter().collect();
        all.sort_by_key(|(_, id)| **id);
        for (names, id) in all {
            let tys: Vec<String> = (0..names.len()).map(|i| format!("T{i}")).collect();
            let generics = tys.join(", ");
            let bounds = tys
                .iter()
                .map(|t| format!("{t}: Val"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(out, "/// `{{{}}}`", names.join(", "));
            let _ = writeln!(
                out,
                "#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]\npub struct Rec{id}<{generics}> {{"
            );
            for (n, t) in names.iter().zip(&tys) {
                let _ = writeln!(out, "    pub {}: {t},", ident(n));
            }
            out.push_str("}\n\n");
            let _ = writeln!(out, "impl<{bounds}> Val for Rec{id}<{generics}> {{");
            out.push_str("    fn to_value(&self) -> Value {\n        Value::record(vec![\n");
            for n in names {
                let _ = writeln!(
                    out,
                    "            (std::rc::Rc::from({n:?}), self.{}.to_value()),",
                    ident(n)
                );
            }
            out.push_str("        ])\n    }\n");
            out.push_str("    fn from_value(v: &Value) -> RtResult<Self> {\n");
            let _ = writeln!(out, "        Ok(Rec{id} {{");
            for n in names {
                let _ = writeln!(out, "            {}: record_field(v, {n:?})?,", ident(n));
            }
            out.push_str("        })\n    }\n");
            out.push_str(
                "    fn show(&self, out: &mut String, _: bool) {\n        out.push('{');\n",
            );
            for (i, n) in names.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "        show_field(out, {}, {n:?}, &self.{});",
                    i == 0,
                    ident(n)
                );
            }
            out.push_str("        out.push('}');\n    }\n}\n\n");
        }
        out
    }
}

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// A language identifier as a Rust identifier (keywords as raw identifiers).
fn ident(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    }
}

/// A name safe to embed in longer identifiers.
fn tidy(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// `from_values`/`to_values` for a struct of named values (params or fields): the boundary
/// with the runtime's untyped values, in declaration order.
fn conversions(out: &mut String, ty: &str, names: &[&str]) {
    let _ = writeln!(out, "impl {ty} {{\n    pub fn from_values(v: &[Value]) -> RtResult<{ty}> {{\n        Ok({ty} {{");
    for (i, name) in names.iter().enumerate() {
        let _ = writeln!(
            out,
            "            {}: Val::from_value(v.get({i}).unwrap_or(&Value::Unit))?,",
            ident(name)
        );
    }
    out.push_str("        })\n    }\n    pub fn to_values(&self) -> Vec<Value> {\n        vec![");
    for name in names {
        let _ = write!(out, "self.{}.to_value(), ", ident(name));
    }
    out.push_str("]\n    }\n}\n\n");
}

fn rust_ty(t: &Ty, recs: &mut Records) -> String {
    match t {
        Ty::Bool => "bool".into(),
        Ty::Int => "i64".into(),
        Ty::Float => "F64".into(),
        Ty::Str => "Str".into(),
        Ty::Unit | Ty::Unknown => "()".into(),
        Ty::Tuple(ts) if ts.len() == 1 => format!("({},)", rust_ty(&ts[0], recs)),
        Ty::Tuple(ts) => format!(
            "({})",
            ts.iter()
                .map(|t| rust_ty(t, recs))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Ty::List(t) => format!("List<{}>", rust_ty(t, recs)),
        Ty::Set(t) => format!("Set<{}>", rust_ty(t, recs)),
        Ty::Map(k, v) => format!("Map<{}, {}>", rust_ty(k, recs), rust_ty(v, recs)),
        Ty::Record(fs) => {
            let id = recs.id(fs.iter().map(|(n, _)| n.clone()).collect());
            format!(
                "Rec{id}<{}>",
                fs.iter()
                    .map(|(_, t)| rust_ty(t, recs))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Ty::Enum(..) => "Enum".into(),
    }
}

/// Rust code building the decoding shape of a type (no domains), like `dataset::ty_shape`.
fn shape_code(t: &Ty) -> String {
    match t {
        Ty::Bool => "Shape::Bool".into(),
        Ty::Int => "Shape::Int { domain: Domain::Any }".into(),
        Ty::Float => "Shape::Float".into(),
        Ty::Str => "Shape::Str { domain: Domain::Any }".into(),
        Ty::Unit | Ty::Unknown => "Shape::Unit".into(),
        Ty::Tuple(ts) => format!(
            "Shape::Tuple(vec![{}])",
            ts.iter().map(shape_code).collect::<Vec<_>>().join(", ")
        ),
        Ty::List(t) => format!(
            "Shape::List {{ elem: Box::new({}), len: Len::Any }}",
            shape_code(t)
        ),
        Ty::Set(t) => format!("Shape::Set(Box::new({}))", shape_code(t)),
        Ty::Map(k, v) => format!(
            "Shape::Map(Box::new({}), Box::new({}))",
            shape_code(k),
            shape_code(v)
        ),
        Ty::Record(fs) => format!(
            "Shape::Record(vec![{}])",
            fs.iter()
                .map(|(n, t)| format!("({n:?}.to_string(), {})", shape_code(t)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Ty::Enum(_, _, vs) => format!(
            "Shape::Enum {{ variants: vec![{}] }}",
            vs.iter()
                .map(|v| format!("{v:?}.to_string()"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn str_lit(text: &str) -> String {
    format!("{text:?}")
}

/// Where the code being written runs: what a `require` does, and the names of the slots.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The generator: `require` rejects the attempt.
    Gen,
    /// Anywhere else.
    Plain,
}

/// Writes the code of one frame (a function or an env body).
struct Writer<'a> {
    program: &'a Program,
    names: &'a [String],
    recs: &'a mut Records,
    role: Role,
    /// Counter for fresh temporaries and labels.
    fresh: usize,
    /// Where constraints come from (verify only).
    comment: Option<&'a Source<'a>>,
    /// The type of each slot's current binding, where known: fast paths are written only
    /// for values of known scalar types (`None` everywhere else keeps the exact form).
    tys: Vec<Option<Ty>>,
    /// The slots that hold a reference (a function's parameters passed by reference):
    /// every use goes through `(*name)`.
    refs: Vec<Slot>,
    /// The comprehension buffers of the Rust function being written, declared at its top
    /// by the caller (`None`: this body has no such place, so comprehensions build their
    /// own vector). A buffer keeps its capacity from one run of its comprehension to the
    /// next (a comprehension inside a loop stops reallocating once it has grown), and
    /// the list is then allocated once at its exact size (`List::take`).
    scratch: Option<Vec<String>>,
}

/// The source of an env's constraints, for comments in the emitted code.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
    constraints: &'a [String],
}

impl<'a> Writer<'a> {
    fn new(
        program: &'a Program,
        names: &'a [String],
        recs: &'a mut Records,
        role: Role,
        comment: Option<&'a Source<'a>>,
    ) -> Writer<'a> {
        Writer {
            program,
            names,
            recs,
            role,
            fresh: 0,
            comment,
            tys: Vec::new(),
            refs: Vec::new(),
            scratch: None,
        }
    }

    /// Gives this body comprehension buffers: they are declared by the code that
    /// [`Writer::scratch_decls`] returns, placed at the top of the Rust function, outside
    /// every loop and closure of the body.
    fn with_scratch(&mut self) {
        self.scratch = Some(Vec::new());
    }

    fn scratch_decls(&mut self) -> String {
        self.scratch
            .take()
            .unwrap_or_default()
            .iter()
            .map(|b| format!("let mut {b} = Vec::new();\n"))
            .collect()
    }

    fn tmp(&mut self, what: &str) -> String {
        self.fresh += 1;
        format!("__{what}{}", self.fresh)
    }

    fn slot(&self, s: Slot) -> String {
        if self.refs.contains(&s) {
            format!("(*{})", self.slot_name(s))
        } else {
            self.slot_name(s)
        }
    }

    /// The Rust name of a slot (for a parameter passed by reference: the reference).
    fn slot_name(&self, s: Slot) -> String {
        let name = self.names.get(s as usize).map_or("v", |n| n.as_str());
        format!("{}_{s}", tidy(name))
    }

    // ------------------------------------------------------------------ statements

    fn block(&mut self, b: &Block, out: &mut String) {
        let mut i = 0;
        while i < b.stmts.len() {
            // Consecutive constraints (verify) with fast forms: one fast form for them all
            // first, which only decides that every one holds; otherwise each runs as usual.
            let run = b.stmts[i..]
                .iter()
                .take_while(|s| matches!(s, Stmt::Constraint { .. }))
                .count();
            if run >= 2 {
                if let Some(f) = self.fast_constraints(&b.stmts[i..i + run]) {
                    let _ = writeln!(
                        out,
                        "{{\nlet mut __fuel = m.fuel;\nlet __held = (|| -> Option<bool> {{ Some({f}) }})();\nif __held == Some(true) {{\nm.fuel = __fuel;\n{}}} else {{",
                        "sc.evaluated(false);\n".repeat(run)
                    );
                    for s in &b.stmts[i..i + run] {
                        self.stmt(s, out);
                    }
                    out.push_str("}\n}\n");
                    i += run;
                    continue;
                }
            }
            self.stmt(&b.stmts[i], out);
            i += 1;
        }
    }

    /// A block as an expression (its statements, then its value or `()`).
    fn block_value(&mut self, b: &Block) -> String {
        let mut out = String::from("{\n");
        self.block(b, &mut out);
        match &b.value {
            Some(v) => {
                let v = self.value(v);
                let _ = writeln!(out, "{v}");
            }
            None => out.push_str("()\n"),
        }
        out.push('}');
        out
    }

    fn pattern(&self, p: &Pattern) -> String {
        match p {
            Pattern::Bind(s) => format!("mut {}", self.slot(*s)),
            Pattern::Wild => "_".into(),
            Pattern::Tuple(ps) if ps.len() == 1 => format!("({},)", self.pattern(&ps[0])),
            Pattern::Tuple(ps) => format!(
                "({})",
                ps.iter()
                    .map(|p| self.pattern(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn stmt(&mut self, s: &Stmt, out: &mut String) {
        match s {
            Stmt::Let(p, e) => {
                let v = self.value(e);
                let t = self.ty_of(e);
                self.bind_ty(p, t);
                let _ = writeln!(out, "let {} = {v};", self.pattern(p));
            }
            Stmt::Assign(slot, path, e) => {
                // The value, then every index, then the store (spec §10.2).
                let v = self.value(e);
                let vt = self.tmp("v");
                let _ = writeln!(out, "let {vt} = {v};");
                let mut keys = Vec::new();
                for a in path {
                    if let Access::Index(i, _) = a {
                        let k = self.value(i);
                        let kt = self.tmp("k");
                        let _ = writeln!(out, "let {kt} = {k};");
                        keys.push(Some(kt));
                    } else {
                        keys.push(None);
                    }
                }
                let mut target = self.slot(*slot);
                let last = path.len().saturating_sub(1);
                for (n, (a, k)) in path.iter().zip(&keys).enumerate() {
                    match (a, k) {
                        (Access::Index(..), Some(k)) if n == last => {
                            let _ = writeln!(out, "AtMut::store(&mut {target}, {k}, {vt})?;");
                            return;
                        }
                        (Access::Index(..), Some(k)) => {
                            target = format!("(*AtMut::at_mut(&mut {target}, &{k})?)");
                        }
                        (Access::Field(f), _) => target = format!("{target}.{}", ident(f)),
                        (Access::TupleField(i), _) => target = format!("{target}.{i}"),
                        _ => {}
                    }
                }
                let _ = writeln!(out, "{target} = {vt};");
            }
            Stmt::Eval(e) => {
                let v = self.value(e);
                let _ = writeln!(out, "let _ = {v};");
            }
            Stmt::If(c, t, e) => {
                let c = self.value(c);
                let _ = writeln!(out, "if {c} {{");
                self.block(t, out);
                out.push('}');
                if let Some(e) = e {
                    out.push_str(" else {\n");
                    self.block(e, out);
                    out.push('}');
                }
                out.push('\n');
            }
            Stmt::For(p, coll, body) => {
                self.bind_clauses(&[Clause::For(p.clone(), coll.clone())]);
                let mut inner = String::new();
                self.block(body, &mut inner);
                let pat = self.pattern(p);
                self.for_each(&pat, coll, &inner, out);
            }
            Stmt::Require { cond, message, .. } => {
                let c = self.value(cond);
                let msg = match message {
                    Some(t) => self.template(t),
                    None => "String::new()".into(),
                };
                let stop = if self.role == Role::Gen {
                    format!("return Err(Stop::Reject({msg}))")
                } else {
                    "return Err(RtError::new(\"`require` inside a function\").into())".into()
                };
                let _ = writeln!(out, "if !{c} {{ {stop}; }}");
            }
            Stmt::Witness(e) => {
                let v = self.value(e);
                let _ = writeln!(out, "__witness = Some({v});");
            }
            Stmt::Set(idx, e) => {
                let v = self.value(e);
                let _ = writeln!(out, "__field{idx} = Some({v});");
            }
            Stmt::Constraint {
                id,
                binders,
                cond,
                message,
                span,
            } => {
                if let Some(c) = self.comment {
                    let upto = (span.start as usize).min(c.text.len());
                    let line = c.text.get(..upto).unwrap_or("").matches('\n').count() + 1;
                    let src = c.constraints.get(*id).map_or("", |s| s.as_str());
                    let _ = writeln!(out, "// constraint {id} ({}:{line}): {src}", c.file);
                }
                self.constraint(*id, binders, cond, message.as_ref(), out)
            }
        }
    }

    /// `for PAT in COLL { BODY }`, its steps paid on entry (one per element); the collection is
    /// evaluated once, before the first iteration. Ranges are not built.
    fn for_each(&mut self, pat: &str, coll: &Expr, body: &str, out: &mut String) {
        if let Expr::Range { lo, hi, inclusive } = coll {
            let (lo, hi) = (self.value(lo), self.value(hi));
            let (a, b) = (self.tmp("lo"), self.tmp("hi"));
            let _ = writeln!(
                out,
                "let ({a}, {b}) = range_bounds({lo}, {hi}, {inclusive})?;\nm.charge(({b} - {a} + 1) as usize)?;\nfor {pat} in {a}..={b} {{\n{body}}}"
            );
        } else {
            let c = self.value(coll);
            let ct = self.tmp("c");
            let _ = writeln!(
                out,
                "let {ct} = {c};\nm.charge(len(&{ct}) as usize)?;\nfor {pat} in Iter::iter_items(&{ct}) {{\n{body}}}"
            );
        }
    }

    /// Nested loops and filters of comprehension clauses around `inner`.
    fn clauses(&mut self, cs: &[Clause], inner: &str) -> String {
        let Some((first, rest)) = cs.split_first() else {
            return inner.to_string();
        };
        let body = self.clauses(rest, inner);
        let mut out = String::new();
        match first {
            Clause::If(c) => {
                let c = self.value(c);
                let _ = writeln!(out, "if {c} {{\n{body}}}");
            }
            Clause::For(p, coll) => {
                let pat = self.pattern(p);
                self.for_each(&pat, coll, &body, &mut out);
            }
        }
        out
    }

    /// A constraint statement: every binding of its leading `forall`s is checked; a
    /// failing one (false, or a runtime error) is reported with its rendered message.
    fn constraint(
        &mut self,
        id: usize,
        binders: &[Clause],
        cond: &Expr,
        message: Option<&Template>,
        out: &mut String,
    ) {
        self.bind_clauses(binders);
        let fast = self.fast_all(binders, cond);
        let c = self.value(cond);
        let msg = match message {
            Some(t) => format!(
                "Some((|| -> RtResult<String> {{ Ok({}) }})())",
                self.template(t)
            ),
            None => "None".into(),
        };
        // A binding fails when the condition is false or errs; its message is rendered
        // only while the report has room.
        let check = format!(
            "match (|| -> RtResult<bool> {{ Ok({c}) }})() {{\n\
             Ok(true) => {{}}\n\
             __res => {{\n\
             let __why = __res.err().map(|e| *e.message);\n\
             __failed = true;\n\
             sc.fail({id}, || Scorer::message({id}, {msg}, __why));\n\
             }}\n\
             }}\n"
        );
        let body = self.clauses(binders, &check);
        let exact = format!(
            "{{\nlet mut __failed = false;\nlet __r = (|| -> RtResult<()> {{\n{body}Ok(())\n}})();\n\
             if let Err(e) = __r {{ __failed = true; sc.fail({id}, || *e.message); }}\n\
             sc.evaluated(__failed);\n}}"
        );
        // Fast path: every binding holds, no error, so nothing to report.
        match fast {
            Some(f) => {
                let _ = writeln!(
                    out,
                    "{{\nlet mut __fuel = m.fuel;\nlet __held = (|| -> Option<bool> {{ Some({f}) }})();\nif __held == Some(true) {{\nm.fuel = __fuel;\nsc.evaluated(false);\n}} else {{\n{exact}\n}}\n}}"
                );
            }
            None => {
                let _ = writeln!(out, "{exact}");
            }
        }
    }

    // ------------------------------------------------------------------ slot types

    fn set_ty(&mut self, s: Slot, t: Option<Ty>) {
        let i = s as usize;
        if self.tys.len() <= i {
            self.tys.resize(i + 1, None);
        }
        self.tys[i] = t.filter(|t| !matches!(t, Ty::Unknown));
    }

    /// Records the types a pattern binds from a value of type `t`.
    fn bind_ty(&mut self, p: &Pattern, t: Option<Ty>) {
        match p {
            Pattern::Bind(s) => self.set_ty(*s, t),
            Pattern::Wild => {}
            Pattern::Tuple(ps) => {
                let parts = match t {
                    Some(Ty::Tuple(ts)) if ts.len() == ps.len() => {
                        ts.into_iter().map(Some).collect()
                    }
                    _ => vec![None; ps.len()],
                };
                for (p, t) in ps.iter().zip(parts) {
                    self.bind_ty(p, t);
                }
            }
        }
    }

    /// Binds the loop variables of clauses, in order (a later collection may use an
    /// earlier variable). Called before any code inside the clauses is written, since
    /// slots are reused across scopes.
    fn bind_clauses(&mut self, cs: &[Clause]) {
        for c in cs {
            if let Clause::For(p, coll) = c {
                let t = self.ty_of(coll).and_then(|t| match t {
                    Ty::List(e) | Ty::Set(e) => Some(*e),
                    Ty::Map(k, v) => Some(Ty::Tuple(vec![*k, *v])),
                    _ => None,
                });
                self.bind_ty(p, t);
            }
        }
    }

    /// The type of an expression where it follows from known slot types (`None` when in
    /// doubt: only fast paths depend on it).
    fn ty_of(&mut self, e: &Expr) -> Option<Ty> {
        Some(match e {
            Expr::Lit(Lit::Int(_)) => Ty::Int,
            Expr::Lit(Lit::Bool(_)) => Ty::Bool,
            Expr::Lit(Lit::Float(_)) => Ty::Float,
            Expr::Lit(Lit::Str(_)) | Expr::Str(_) => Ty::Str,
            Expr::Lit(Lit::Unit) => Ty::Unit,
            Expr::Local(s) => return self.tys.get(*s as usize).cloned().flatten(),
            Expr::Tuple(v) => Ty::Tuple(v.iter().map(|x| self.ty_of(x)).collect::<Option<_>>()?),
            Expr::List(v) => Ty::list(self.ty_of(v.first()?)?),
            Expr::Comprehension(cs, elem) => {
                self.bind_clauses(cs);
                Ty::list(self.ty_of(elem)?)
            }
            Expr::Quant { .. } => Ty::Bool,
            Expr::Range { .. } => Ty::list(Ty::Int),
            Expr::Unary(UnOp::Not, _) => Ty::Bool,
            Expr::Unary(UnOp::Neg, x) => self.ty_of(x)?,
            Expr::Binary(op, a, _, _) => match op {
                BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => self.ty_of(a)?,
                _ => Ty::Bool,
            },
            Expr::Call(Callee::Fn(i), ..) => self.program.fns.get(*i)?.ret.clone(),
            Expr::Call(Callee::Builtin(name), args, _) => {
                let tys = args
                    .iter()
                    .map(|a| self.ty_of(a))
                    .collect::<Option<Vec<_>>>()?;
                crate::builtins::signature(name, &tys).ok()?
            }
            Expr::Index(a, _, _) => match self.ty_of(a)? {
                Ty::List(t) => *t,
                Ty::Map(_, v) => *v,
                _ => return None,
            },
            Expr::Field(a, f) => match self.ty_of(a)? {
                Ty::Record(fs) => fs.into_iter().find(|(n, _)| n == f)?.1,
                _ => return None,
            },
            Expr::TupleField(a, i) => match self.ty_of(a)? {
                Ty::Tuple(ts) => ts.into_iter().nth(*i)?,
                _ => return None,
            },
            _ => return None,
        })
        .filter(|t| !matches!(t, Ty::Unknown))
    }

    fn is(&mut self, e: &Expr, t: &Ty) -> bool {
        self.ty_of(e).as_ref() == Some(t)
    }

    // ------------------------------------------------------------------ fast paths
    //
    // A pure region over integers and booleans (a quantifier, `all`/`any`/`sum`/`len` of
    // a comprehension, a verify constraint) is written twice: a fast form, a closure
    // returning an `Option` whose operations yield `None` instead of an error (runtime
    // `fast_*`) and leave it with `?`, and the exact form. The fast form runs first; if it
    // gave `None`, its copy of the fuel is dropped and the exact form runs and fails
    // exactly as the evaluator does. Pure means: no calls of user functions, no random
    // draws, no collections built, so running it twice is unobservable.

    /// `exact`, preceded by the fast form when there is one.
    fn region(&mut self, fast: Option<String>, exact: String) -> String {
        match fast {
            Some(f) => format!(
                "{{\nlet mut __fuel = m.fuel;\nlet __fast = (|| -> Option<_> {{ Some({f}) }})();\nmatch __fast {{\nSome(__v) => {{\nm.fuel = __fuel;\n__v\n}}\nNone => {exact}\n}}\n}}"
            ),
            None => exact,
        }
    }

    /// The fast form of an int or bool expression, or `None`.
    fn fast(&mut self, e: &Expr) -> Option<String> {
        let int = Ty::Int;
        Some(match e {
            Expr::Lit(Lit::Int(i)) => format!("{i}i64"),
            Expr::Lit(Lit::Bool(b)) => b.to_string(),
            Expr::Local(s) => match self.tys.get(*s as usize).cloned().flatten()? {
                Ty::Int | Ty::Bool => self.slot(*s),
                _ => return None,
            },
            Expr::Tuple(v) if !v.is_empty() => {
                let parts = v.iter().map(|x| self.fast(x)).collect::<Option<Vec<_>>>()?;
                format!("({},)", parts.join(", "))
            }
            Expr::Index(a, i, _) => {
                let Expr::Local(s) = &**a else { return None };
                let Some(Ty::List(t)) = self.tys.get(*s as usize).cloned().flatten() else {
                    return None;
                };
                if !matches!(*t, Ty::Int | Ty::Bool) || !self.is(i, &int) {
                    return None;
                }
                let i = self.fast(i)?;
                format!("fast_at(&{}, {i})?", self.slot(*s))
            }
            Expr::Unary(UnOp::Not, x) => format!("(!{})", self.fast(x)?),
            Expr::Unary(UnOp::Neg, x) if self.is(x, &int) => {
                format!("fast_neg({})?", self.fast(x)?)
            }
            Expr::Binary(op, a, b, _) => {
                let (ta, tb) = (self.ty_of(a)?, self.ty_of(b)?);
                let scalar = ta == tb && matches!(ta, Ty::Int | Ty::Bool);
                let f = match op {
                    BinOp::Add | BinOp::Sub | BinOp::Mul if ta == Ty::Int && tb == Ty::Int => {
                        match op {
                            BinOp::Add => "fast_add",
                            BinOp::Sub => "fast_sub",
                            _ => "fast_mul",
                        }
                    }
                    BinOp::Eq | BinOp::Ne if scalar => "",
                    BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
                        if ta == Ty::Int && tb == Ty::Int =>
                    {
                        ""
                    }
                    BinOp::And | BinOp::Or | BinOp::Implies if ta == Ty::Bool && tb == Ty::Bool => {
                        ""
                    }
                    _ => return None,
                };
                let (x, y) = (self.fast(a)?, self.fast(b)?);
                match op {
                    BinOp::Add | BinOp::Sub | BinOp::Mul => format!("{f}({x}, {y})?"),
                    _ => infix(*op, &x, &y)?,
                }
            }
            Expr::Call(Callee::Builtin("abs"), args, _)
                if args.len() == 1 && self.is(&args[0], &int) =>
            {
                format!("fast_abs({})?", self.fast(&args[0])?)
            }
            Expr::Call(Callee::Builtin("len"), args, _) => match args.as_slice() {
                [Expr::Local(s)] => match self.tys.get(*s as usize).cloned().flatten()? {
                    Ty::List(_) | Ty::Set(_) | Ty::Map(..) => format!("len(&{})", self.slot(*s)),
                    _ => return None,
                },
                [Expr::Comprehension(cs, elem)] => self.fast_fold("len", cs, elem)?,
                _ => return None,
            },
            Expr::Call(Callee::Builtin(name @ ("all" | "any" | "sum")), args, _) => {
                match args.as_slice() {
                    [Expr::Comprehension(cs, elem)] => self.fast_fold(name, cs, elem)?,
                    _ => return None,
                }
            }
            Expr::Quant {
                forall,
                clauses,
                body,
            } => {
                self.bind_clauses(clauses);
                if !self.is(body, &Ty::Bool) {
                    return None;
                }
                let label = self.tmp("fq");
                let forall = *forall;
                let loops = self.fast_clauses(clauses, 1, &mut |w: &mut Self| {
                    let b = w.fast(body)?;
                    Some(quantifier_step(forall, &b, &label))
                })?;
                format!("'{label}: {{\n{loops}{forall}\n}}")
            }
            _ => return None,
        })
    }

    /// The fast form of `all`/`any`/`sum`/`len` over a comprehension.
    fn fast_fold(&mut self, name: &str, cs: &[Clause], elem: &Expr) -> Option<String> {
        self.bind_clauses(cs);
        let t = self.ty_of(elem)?;
        let acc = self.tmp("facc");
        let init = match name {
            "all" if t == Ty::Bool => "true",
            "any" if t == Ty::Bool => "false",
            "sum" if t == Ty::Int => "0i64",
            "len" => "0i64",
            _ => return None,
        };
        let loops = self.fast_clauses(cs, 1, &mut |w: &mut Self| {
            let el = w.fast(elem)?;
            Some(match name {
                "all" => format!("{acc} &= {el};\n"),
                "any" => format!("{acc} |= {el};\n"),
                "sum" => format!("{acc} = fast_add({acc}, {el})?;\n"),
                _ => format!("let _ = {el};\n{acc} += 1;\n"),
            })
        })?;
        Some(format!("{{\nlet mut {acc} = {init};\n{loops}{acc}\n}}"))
    }

    /// The fast form of a constraint: does `cond` hold for every binding of `binders`?
    fn fast_all(&mut self, binders: &[Clause], cond: &Expr) -> Option<String> {
        self.fast_all_of(binders, &[(cond, Vec::new())])
    }

    /// The fast form of constraints that share their binders (up to the slots they bind):
    /// does every condition hold for every binding? The loops run once; each condition
    /// after the first binds its own slots from the first's (`renames`: (its slot, the
    /// first's)), and every loop pays the steps of all of them, as they would one by one.
    fn fast_all_of(
        &mut self,
        binders: &[Clause],
        conds: &[(&Expr, Vec<(Slot, Slot)>)],
    ) -> Option<String> {
        for (c, renames) in conds {
            for (mine, first) in renames {
                let t = self.tys.get(*first as usize).cloned().flatten();
                self.set_ty(*mine, t);
            }
            if !self.is(c, &Ty::Bool) {
                return None;
            }
        }
        let label = self.tmp("fc");
        let loops = self.fast_clauses(binders, conds.len(), &mut |w: &mut Self| {
            let mut checks = String::new();
            for (c, renames) in conds {
                for (mine, first) in renames {
                    let _ = writeln!(checks, "let {} = {};", w.slot(*mine), w.slot(*first));
                }
                let c = w.fast(c)?;
                let _ = writeln!(checks, "if !{c} {{ break '{label} false; }}");
            }
            Some(checks)
        })?;
        Some(format!("('{label}: {{\n{loops}true\n}})"))
    }

    /// The fast form of consecutive constraints (all must have one): do they all hold?
    /// Constraints whose binders are the same (up to the slots they bind) share loops.
    fn fast_constraints(&mut self, stmts: &[Stmt]) -> Option<String> {
        let parts: Vec<(&[Clause], &Expr)> = stmts
            .iter()
            .filter_map(|s| match s {
                Stmt::Constraint { binders, cond, .. } => Some((binders.as_slice(), cond)),
                _ => None,
            })
            .collect();
        let mut forms = Vec::new();
        let mut i = 0;
        while i < parts.len() {
            let (binders, cond) = parts[i];
            self.bind_clauses(binders);
            let mut group = vec![(cond, Vec::new())];
            let mut j = i + 1;
            while let Some((other, c)) = parts.get(j) {
                let mut renames = Vec::new();
                if !same_clauses(binders, other, &mut renames) {
                    break;
                }
                group.push((*c, renames));
                j += 1;
            }
            forms.push(self.fast_all_of(binders, &group)?);
            i = j;
        }
        Some(forms.join(" && "))
    }

    /// Loops and filters of clauses in fast form, around what `inner` writes: ranges with
    /// int bounds and local lists of scalars (or tuples of them), their steps paid on entry
    /// from the fast form's copy of the fuel, `times` over (loops shared by as many
    /// constraints).
    fn fast_clauses(
        &mut self,
        cs: &[Clause],
        times: usize,
        inner: &mut dyn FnMut(&mut Self) -> Option<String>,
    ) -> Option<String> {
        let Some((first, rest)) = cs.split_first() else {
            return inner(self);
        };
        let head = match first {
            Clause::If(c) => {
                if !self.is(c, &Ty::Bool) {
                    return None;
                }
                let c = self.fast(c)?;
                let body = self.fast_clauses(rest, times, inner)?;
                return Some(format!("if {c} {{\n{body}}}\n"));
            }
            Clause::For(p, Expr::Range { lo, hi, inclusive }) => {
                if !self.is(lo, &Ty::Int) || !self.is(hi, &Ty::Int) {
                    return None;
                }
                let (lo, hi) = (self.fast(lo)?, self.fast(hi)?);
                let (a, b) = (self.tmp("flo"), self.tmp("fhi"));
                format!(
                    "let ({a}, {b}) = fast_range(&mut __fuel, {lo}, {hi}, {inclusive})?;\n{}for {} in {a}..={b}",
                    format!("fast_items(&mut __fuel, ({b} - {a} + 1) as usize)?;\n").repeat(times - 1),
                    self.pattern(p)
                )
            }
            Clause::For(p, Expr::Local(s)) => {
                let scalar = |t: &Ty| matches!(t, Ty::Int | Ty::Bool);
                match self.tys.get(*s as usize).cloned().flatten()? {
                    Ty::List(t)
                        if scalar(&t) || matches!(&*t, Ty::Tuple(ts) if ts.iter().all(scalar)) => {}
                    _ => return None,
                }
                let xs = self.slot(*s);
                format!(
                    "{}for {} in {xs}.as_slice().iter().copied()",
                    format!("fast_items(&mut __fuel, {xs}.len())?;\n").repeat(times),
                    self.pattern(p)
                )
            }
            Clause::For(..) => return None,
        };
        let body = self.fast_clauses(rest, times, inner)?;
        Some(format!("{head} {{\n{body}}}\n"))
    }

    // ------------------------------------------------------------------ expressions

    /// A place (an lvalue or a reference) for locals and chains of indexing and fields,
    /// so reads borrow instead of copying whole values.
    fn place(&mut self, e: &Expr) -> Option<String> {
        Some(match e {
            Expr::Local(s) => self.slot(*s),
            Expr::Index(a, i, _) => {
                let base = self.place_or_value(a);
                let i = self.borrow(i);
                format!("(*At::at_ref(&{base}, {i})?)")
            }
            Expr::Field(a, f) => format!("{}.{}", self.place_or_value(a), ident(f)),
            Expr::TupleField(a, i) => format!("{}.{i}", self.place_or_value(a)),
            _ => return None,
        })
    }

    fn place_or_value(&mut self, e: &Expr) -> String {
        match self.place(e) {
            Some(p) => p,
            None => format!("({})", self.value(e)),
        }
    }

    /// A reference to the value of `e` (`&place` or `&(value)`).
    fn borrow(&mut self, e: &Expr) -> String {
        format!("&{}", self.place_or_value(e))
    }

    fn value(&mut self, e: &Expr) -> String {
        if let Some(p) = self.place(e) {
            return format!("{p}.clone()");
        }
        match e {
            Expr::Lit(l) => lit(l),
            Expr::Local(_) | Expr::Index(..) | Expr::Field(..) | Expr::TupleField(..) => {
                unreachable!("places are handled above")
            }
            Expr::Tuple(v) if v.len() == 1 => format!("({},)", self.value(&v[0])),
            Expr::Tuple(v) => format!(
                "({})",
                v.iter()
                    .map(|x| self.value(x))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Expr::List(v) => format!(
                "List::from_array([{}])",
                v.iter()
                    .map(|x| self.value(x))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Expr::Record(fs) => {
                // The struct is the one of the sorted field names; a struct expression
                // evaluates its fields in the order written, the source's order.
                let mut names: Vec<String> = fs.iter().map(|(n, _)| n.clone()).collect();
                names.sort();
                let id = self.recs.id(names);
                let parts: Vec<String> = fs
                    .iter()
                    .map(|(n, x)| format!("{}: {}", ident(n), self.value(x)))
                    .collect();
                format!("Rec{id} {{ {} }}", parts.join(", "))
            }
            Expr::Comprehension(cs, elem) => {
                self.bind_clauses(cs);
                let out = self.tmp("out");
                let el = self.value(elem);
                let inner = format!("{out}.push({el});\ncomprehension_limit({out}.len())?;\n");
                let loops = self.clauses(cs, &inner);
                match &mut self.scratch {
                    // Cleared first: a run that failed midway may have left elements.
                    Some(bufs) => {
                        bufs.push(out.clone());
                        format!("{{\n{out}.clear();\n{loops}List::take(&mut {out})\n}}")
                    }
                    None => {
                        format!("{{\nlet mut {out} = Vec::new();\n{loops}List::from_vec({out})\n}}")
                    }
                }
            }
            Expr::Quant {
                forall,
                clauses,
                body,
            } => {
                self.bind_clauses(clauses);
                let fast = self.fast(e);
                let label = self.tmp("q");
                let b = self.value(body);
                let inner = quantifier_step(*forall, &b, &label);
                let loops = self.clauses(clauses, &inner);
                let exact = format!("'{label}: {{\n{loops}{forall}\n}}");
                self.region(fast, exact)
            }
            Expr::Range { lo, hi, inclusive } => {
                format!(
                    "range({}, {}, {inclusive})?",
                    self.value(lo),
                    self.value(hi)
                )
            }
            Expr::Unary(UnOp::Neg, x) => format!("negate({})?", self.value(x)),
            Expr::Unary(UnOp::Not, x) => format!("(!{})", self.value(x)),
            Expr::Binary(op, a, b, _) => self.binary(*op, a, b),
            Expr::Call(Callee::Fn(i), args, _) => {
                let f = &self.program.fns[*i];
                let name = fn_name(f, *i);
                let by_ref = ref_params(f);
                let mut out = String::from("{\nm.tick()?;\n");
                let mut temps = Vec::new();
                for (k, a) in args.iter().enumerate() {
                    let t = self.tmp("a");
                    if by_ref.get(k).copied().unwrap_or(false) {
                        // A place (a local, an element…) is lent as it is, unless a later
                        // argument could assign it; anything else is lent from a temporary.
                        let lent = if args[k + 1..].iter().any(runs_statements) {
                            None
                        } else {
                            self.place(a)
                        };
                        let v = lent.unwrap_or_else(|| format!("({})", self.value(a)));
                        let _ = writeln!(out, "let {t} = &{v};");
                    } else {
                        let v = self.value(a);
                        let _ = writeln!(out, "let {t} = {v};");
                    }
                    temps.push(t);
                }
                let _ = write!(out, "{name}(m, {})?\n}}", temps.join(", "));
                out
            }
            Expr::Call(Callee::Builtin(name), args, _) => self.builtin(name, args),
            Expr::If(c, t, e) => {
                let c = self.value(c);
                let t = self.block_value(t);
                let e = match e {
                    Some(b) => self.block_value(b),
                    None => "()".into(),
                };
                format!("(if {c} {t} else {e})")
            }
            Expr::Str(t) => format!("Str::from({})", self.template(t)),
        }
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr) -> String {
        if op == BinOp::In {
            // The element first, then the collection (left to right).
            let x = self.value(a);
            let xt = self.tmp("x");
            if let Expr::Range { lo, hi, inclusive } = b {
                let (lo, hi) = (self.value(lo), self.value(hi));
                return format!(
                    "{{ let {xt} = {x}; let (__a, __b) = range_bounds({lo}, {hi}, {inclusive})?; {xt} >= __a && {xt} <= __b }}"
                );
            }
            let c = self.borrow(b);
            let ct = self.tmp("c");
            // Bound by `match`, not `let`: temporaries of the scrutinee (an element read out
            // of a call's result, say) live to the end of the match, as in one expression.
            return format!(
                "{{ let {xt} = {x}; match {c} {{ {ct} => {{ m.charge(Paid::searched({ct}) as usize)?; Contains::has({ct}, &{xt}) }} }} }}"
            );
        }
        let (x, y) = (self.value(a), self.value(b));
        match op {
            BinOp::Add => format!("plus({x}, {y})?"),
            BinOp::Sub => format!("minus({x}, {y})?"),
            BinOp::Mul => format!("times({x}, {y})?"),
            BinOp::Div => format!("over({x}, {y})?"),
            BinOp::Rem => format!("rem({x}, {y})?"),
            _ => infix(op, &x, &y).unwrap_or_else(|| unreachable!("`in` is handled above")),
        }
    }

    fn builtin(&mut self, name: &str, args: &[Expr]) -> String {
        // `all`, `any`, `sum` and `len` of a comprehension fold its elements as they come
        // (every element still evaluated), as the evaluator does.
        if let ("all" | "any" | "sum" | "len", [Expr::Comprehension(cs, elem)]) = (name, args) {
            self.bind_clauses(cs);
            let fast = self.fast_fold(name, cs, elem);
            let acc = self.tmp("acc");
            let el = self.value(elem);
            let (init, step) = match name {
                "all" => ("true".to_string(), format!("{acc} &= {el};\n")),
                "any" => ("false".to_string(), format!("{acc} |= {el};\n")),
                "sum" => (
                    "zero()".to_string(),
                    format!("{acc} = plus({acc}, {el})?;\n"),
                ),
                _ => ("0i64".to_string(), format!("let _ = {el};\n{acc} += 1;\n")),
            };
            let loops = self.clauses(cs, &step);
            let exact = format!("{{\nlet mut {acc} = {init};\n{loops}{acc}\n}}");
            return self.region(fast, exact);
        }
        let random = crate::builtins::is_random(name);
        if random {
            // Arguments first (they may use the machine), then the draw.
            let mut out = String::from("{\n");
            let mut temps = Vec::new();
            for a in args {
                let v = self.value(a);
                let t = self.tmp("a");
                let _ = writeln!(out, "let {t} = {v};");
                temps.push(t);
            }
            let call = match (name, temps.as_slice()) {
                ("rand_int", [lo, hi]) => format!("rand_int(m, {lo}, {hi})?"),
                ("rand_float", []) => "rand_float(m)?".into(),
                ("bernoulli", [p]) => format!("bernoulli(m, {p})?"),
                ("choice", [xs]) => format!("choice(m, &{xs})?"),
                ("shuffle", [xs]) => format!("shuffle(m, &{xs})?"),
                ("sample", [xs, k]) => format!("sample(m, &{xs}, {k})?"),
                ("permutation", [n]) => format!("permutation(m, {n})?"),
                // The kept givens are some of the givens: the same type, for rustc.
                ("unique_givens", [_, givens, ..]) => format!(
                    "if true {{ return Err(RtError::new({}).into()); }}\n{givens}",
                    str_lit(UNIQUE_GIVENS_NEEDS_Z3)
                ),
                _ => format!(
                    "return Err(RtError::new({}).into())",
                    str_lit(&format!("unknown builtin `{name}`"))
                ),
            };
            // The fuel beyond the draw, as for the pure builtins below.
            let tail = match paid_of(name, args.len()) {
                ops::Paid::Nothing => call,
                ops::Paid::Args(ix) => {
                    let refs: Vec<String> = temps.iter().map(|t| format!("&{t}")).collect();
                    format!("{}\n{call}", charge_args(ix, &refs))
                }
                ops::Paid::Result => self.charge_result(&call),
            };
            let _ = write!(out, "{tail}\n}}");
            return out;
        }
        let Some((_, _, func, modes, fallible)) = PURE_CALLS
            .iter()
            .find(|(n, arity, ..)| *n == name && *arity == args.len())
        else {
            return format!(
                "return Err(RtError::new({}).into())",
                str_lit(&format!("unknown builtin `{name}`"))
            );
        };
        // Arguments left to right: borrowed where the runtime takes a reference.
        let parts: Vec<String> = args
            .iter()
            .zip(modes.iter())
            .map(|(a, m)| match m {
                Arg::Ref => self.borrow(a),
                Arg::Val => self.value(a),
            })
            .collect();
        let q = if *fallible { "?" } else { "" };
        // The fuel beyond the call, by the runtime's table (`ops::Paid`), paid where the
        // evaluator pays it: for arguments once they are evaluated, before the call; for
        // the result after it.
        match paid_of(name, args.len()) {
            ops::Paid::Nothing => format!("{func}({}){q}", parts.join(", ")),
            ops::Paid::Result => self.charge_result(&format!("{func}({}){q}", parts.join(", "))),
            ops::Paid::Args(ix) => {
                // The arguments bound by one `match` on their tuple (left to right), not by
                // `let`s: the temporaries a borrowed argument holds (an element of a call's
                // result) live to the end of the match, as they did inside the call.
                let temps: Vec<String> = parts.iter().map(|_| self.tmp("p")).collect();
                format!(
                    "match ({},) {{ ({},) => {{ {} {func}({}){q} }} }}",
                    parts.join(", "),
                    temps.join(", "),
                    charge_args(ix, &temps),
                    temps.join(", ")
                )
            }
        }
    }

    /// `call`'s value, after paying for the elements of the collection it returns.
    fn charge_result(&mut self, call: &str) -> String {
        let r = self.tmp("r");
        format!("{{ let {r} = {call}; m.charge(Paid::elements(&{r}) as usize)?; {r} }}")
    }

    /// A string template as a Rust `String` expression.
    fn template(&mut self, t: &Template) -> String {
        let s = self.tmp("s");
        let mut out = format!("{{\nlet mut {s} = String::new();\n");
        self.parts(&t.parts, &s, &mut out);
        let _ = write!(out, "{s}\n}}");
        out
    }

    fn parts(&mut self, parts: &[TemplatePart], s: &str, out: &mut String) {
        for p in parts {
            match p {
                TemplatePart::Text(t) => {
                    let _ = writeln!(out, "{s}.push_str({});", str_lit(t));
                }
                TemplatePart::Expr(e) => {
                    let r = self.borrow(e);
                    let _ = writeln!(out, "Val::show({r}, &mut {s}, true);");
                }
                TemplatePart::For(pat, coll, body) => {
                    self.bind_clauses(&[Clause::For(pat.clone(), coll.clone())]);
                    let mut inner = String::new();
                    self.parts(body, s, &mut inner);
                    let pat = self.pattern(pat);
                    self.for_each(&pat, coll, &inner, out);
                }
                TemplatePart::If(c, t, e) => {
                    let c = self.value(c);
                    let _ = writeln!(out, "if {c} {{");
                    self.parts(t, s, out);
                    out.push_str("} else {\n");
                    self.parts(e, s, out);
                    out.push_str("}\n");
                }
            }
        }
    }

    /// Code evaluating an answer shape with its domains into a `Shape`, mirroring the
    /// evaluator's `eval_shape` (collection before base, element before length).
    fn shape(&mut self, s: &ShapeExpr) -> String {
        match s {
            ShapeExpr::Bool => "Shape::Bool".into(),
            ShapeExpr::Int => "Shape::Int { domain: Domain::Any }".into(),
            ShapeExpr::Float => "Shape::Float".into(),
            ShapeExpr::Str => "Shape::Str { domain: Domain::Any }".into(),
            ShapeExpr::Unit => "Shape::Unit".into(),
            ShapeExpr::Enum(vs) => format!(
                "Shape::Enum {{ variants: vec![{}] }}",
                vs.iter()
                    .map(|v| format!("{v:?}.to_string()"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ShapeExpr::In(base, Expr::Range { lo, hi, inclusive })
                if matches!(**base, ShapeExpr::Int) =>
            {
                let (lo, hi) = (self.value(lo), self.value(hi));
                format!("Shape::int_range({lo}, {hi}, {inclusive})?")
            }
            ShapeExpr::In(base, coll) => {
                let c = self.value(coll);
                let b = self.shape(base);
                format!(
                    "{{\nlet __dom = {c};\nlet __vals: std::collections::BTreeSet<Value> = Iter::iter_items(&__dom).map(|x| x.to_value()).collect();\nShape::within({b}, __vals)\n}}"
                )
            }
            ShapeExpr::Tuple(v) => format!(
                "Shape::Tuple(vec![{}])",
                v.iter()
                    .map(|s| self.shape(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ShapeExpr::List(e, len) => {
                let elem = self.shape(e);
                let n = |w: &mut Self, x: &Expr| {
                    let v = w.value(x);
                    format!("{{ let __n: i64 = {v}; usize::try_from(__n).map_err(|_| RtError::new(format!(\"negative list length {{__n}} in the answer type\")))? }}")
                };
                let len = match len {
                    LenExpr::Any => "Len::Any".to_string(),
                    LenExpr::Exact(x) => format!("Len::Exact({})", n(self, x)),
                    LenExpr::AtMost(x) => format!("Len::AtMost({})", n(self, x)),
                };
                format!("{{ let __elem = Box::new({elem}); Shape::List {{ elem: __elem, len: {len} }} }}")
            }
            ShapeExpr::Set(e) => format!("Shape::Set(Box::new({}))", self.shape(e)),
            ShapeExpr::Map(k, v) => {
                let (k, v) = (self.shape(k), self.shape(v));
                format!("Shape::Map(Box::new({k}), Box::new({v}))")
            }
            ShapeExpr::Record(fs) => format!(
                "Shape::Record(vec![{}])",
                fs.iter()
                    .map(|(n, s)| format!("({n:?}.to_string(), {})", self.shape(s)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// How a builtin's argument is passed to its runtime function.
#[derive(Clone, Copy)]
enum Arg {
    /// `&value` (collections, keys, separators).
    Ref,
    /// By value (numbers, elements stored, counts).
    Val,
}

/// The pure builtins: (name, arity, runtime function, arguments, returns a `Result`).
/// What a call of builtin `name` with `arity` arguments pays beyond the call: the runtime's
/// table (`ops::Builtin::paid`), which the evaluator pays from too.
fn paid_of(name: &str, arity: usize) -> ops::Paid {
    ops::Builtin::from_name(name).map_or(ops::Paid::Nothing, |b| b.paid(arity))
}

/// The statement paying for the elements of the arguments `ix` names; `refs` are
/// references to the evaluated arguments.
fn charge_args(ix: &[usize], refs: &[String]) -> String {
    let sum: Vec<String> = ix
        .iter()
        .map(|&i| format!("Paid::elements({})", refs[i]))
        .collect();
    format!("m.charge(({}) as usize)?;", sum.join(" + "))
}

const PURE_CALLS: &[(&str, usize, &str, &[Arg], bool)] = {
    use Arg::{Ref as R, Val as V};
    &[
        ("len", 1, "len", &[R], false),
        ("abs", 1, "abs", &[V], true),
        ("min", 2, "min2", &[V, V], false),
        ("max", 2, "max2", &[V, V], false),
        ("min", 1, "min_of", &[R], true),
        ("max", 1, "max_of", &[R], true),
        ("sum", 1, "sum", &[R], true),
        ("count", 2, "count", &[R, R], false),
        ("all", 1, "all", &[R], false),
        ("any", 1, "any", &[R], false),
        ("all_different", 1, "all_different", &[R], false),
        ("is_permutation", 2, "is_permutation", &[R, R], false),
        ("sorted", 1, "sorted", &[R], false),
        ("reversed", 1, "reversed", &[R], false),
        ("index_of", 2, "index_of", &[R, R], false),
        ("keys", 1, "keys", &[R], false),
        ("values", 1, "values", &[R], false),
        ("set", 1, "set", &[R], false),
        ("map", 1, "map", &[R], false),
        ("get", 3, "get", &[R, R, V], false),
        ("zip", 2, "zip", &[R, R], false),
        ("enumerate", 1, "enumerate", &[R], false),
        ("repeat", 2, "repeat", &[V, V], true),
        ("slice", 3, "slice", &[R, V, V], false),
        ("flatten", 1, "flatten", &[R], true),
        ("str", 1, "str_of", &[R], false),
        ("join", 2, "join", &[R, R], false),
        ("float", 1, "to_float", &[V], true),
        ("int", 1, "to_int", &[V], true),
    ]
};

/// Are two lists of clauses the same up to the slots they bind? `renames` collects, for
/// each slot `b` binds, the slot `a` binds in its place. Only the expressions fast forms
/// can loop over are compared; anything else counts as different.
fn same_clauses(a: &[Clause], b: &[Clause], renames: &mut Vec<(Slot, Slot)>) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Clause::If(x), Clause::If(y)) => same_expr(x, y, renames),
            // The collection first: it is evaluated before the pattern binds.
            (Clause::For(p, x), Clause::For(q, y)) => {
                same_expr(x, y, renames) && same_pattern(p, q, renames)
            }
            _ => false,
        })
}

fn same_pattern(a: &Pattern, b: &Pattern, renames: &mut Vec<(Slot, Slot)>) -> bool {
    match (a, b) {
        (Pattern::Bind(x), Pattern::Bind(y)) => {
            renames.push((*y, *x));
            true
        }
        (Pattern::Wild, Pattern::Wild) => true,
        (Pattern::Tuple(xs), Pattern::Tuple(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same_pattern(x, y, renames))
        }
        _ => false,
    }
}

fn same_expr(a: &Expr, b: &Expr, renames: &[(Slot, Slot)]) -> bool {
    let all = |xs: &[Expr], ys: &[Expr]| {
        xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same_expr(x, y, renames))
    };
    match (a, b) {
        (Expr::Lit(Lit::Int(x)), Expr::Lit(Lit::Int(y))) => x == y,
        (Expr::Lit(Lit::Bool(x)), Expr::Lit(Lit::Bool(y))) => x == y,
        // A slot bound by the clauses is the one bound in its place; any other is the same
        // slot, and not one that `a` binds.
        (Expr::Local(x), Expr::Local(y)) => match renames.iter().find(|(mine, _)| mine == y) {
            Some((_, first)) => first == x,
            None => x == y && !renames.iter().any(|(_, first)| first == x),
        },
        (Expr::Tuple(xs), Expr::Tuple(ys)) => all(xs, ys),
        (Expr::Unary(o, x), Expr::Unary(p, y)) => o == p && same_expr(x, y, renames),
        (Expr::Binary(o, x, u, _), Expr::Binary(p, y, v, _)) => {
            o == p && same_expr(x, y, renames) && same_expr(u, v, renames)
        }
        (Expr::Index(x, u, _), Expr::Index(y, v, _)) => {
            same_expr(x, y, renames) && same_expr(u, v, renames)
        }
        (Expr::Call(Callee::Builtin(f), xs, _), Expr::Call(Callee::Builtin(g), ys, _)) => {
            f == g && all(xs, ys)
        }
        (
            Expr::Range {
                lo: x,
                hi: u,
                inclusive: i,
            },
            Expr::Range {
                lo: y,
                hi: v,
                inclusive: j,
            },
        ) => i == j && same_expr(x, y, renames) && same_expr(u, v, renames),
        _ => false,
    }
}

/// Logic and comparisons, which cannot fail: the same Rust in exact and fast forms.
fn infix(op: BinOp, x: &str, y: &str) -> Option<String> {
    Some(match op {
        BinOp::And => format!("({x} && {y})"),
        BinOp::Or => format!("({x} || {y})"),
        BinOp::Implies => format!("(!{x} || {y})"),
        BinOp::Eq => format!("({x} == {y})"),
        BinOp::Ne => format!("({x} != {y})"),
        BinOp::Lt => format!("({x} < {y})"),
        BinOp::Le => format!("({x} <= {y})"),
        BinOp::Gt => format!("({x} > {y})"),
        BinOp::Ge => format!("({x} >= {y})"),
        _ => return None,
    })
}

fn lit(l: &Lit) -> String {
    match l {
        Lit::Unit => "()".into(),
        Lit::Bool(b) => b.to_string(),
        Lit::Int(i) if *i == i64::MIN => "i64::MIN".into(),
        Lit::Int(i) => format!("{i}i64"),
        Lit::Float(f) => format!("F64({f:?}f64)"),
        Lit::Str(s) => format!("s({})", str_lit(s)),
        Lit::Enum(i, n) => format!("Enum({i}, s({}))", str_lit(n)),
    }
}

fn fn_name(f: &Function, i: FnIdx) -> String {
    if f.module.is_empty() {
        format!("f{i}_{}", tidy(&f.name))
    } else {
        format!("f{i}_{}_{}", tidy(&f.module), tidy(&f.name))
    }
}

/// Emits the crate for the given files. `runtime_dep` is the dependency line of
/// `resyn-runtime` in the crate's manifest (a path inside this workspace, or a version).
pub fn emit(units: &[Unit<'_>], crate_name: &str, runtime_dep: &str, version: &str) -> Crate {
    let mut recs = Records::default();
    let mut files = Vec::new();
    let mut mods = Vec::new();
    for u in units {
        for (ei, env) in u.program.envs.iter().enumerate() {
            let module = format!("env_{}", tidy(&env.name));
            let code = emit_env(u, ei, &mut recs, version);
            files.push((format!("src/{module}.rs"), code));
            mods.push((module, env.name.clone(), generator_needs_solver(env)));
        }
    }
    files.push(("src/records.rs".into(), recs.source()));
    let mut lib = format!(
        "//! Environments compiled by resyn {version} (`resyn build --emit rust`). Each module is\n\
         //! one env implementing `resyn_runtime::env::Environment`; `find` looks one up by name.\n\
         //! Generated code: edit the `.rsn` sources and rebuild instead.\n\n\
         pub mod records;\n"
    );
    for (m, _, _) in &mods {
        let _ = writeln!(lib, "pub mod {m};");
    }
    lib.push_str(
        "\nuse resyn_runtime::env::Environment;\n\n\
         /// The names of the envs of this crate, in build order.\n\
         pub const NAMES: &[&str] = &[",
    );
    for (_, name, _) in &mods {
        let _ = write!(lib, "{name:?}, ");
    }
    lib.push_str("];\n\n/// The env called `name`.\npub fn find(name: &str) -> Option<Box<dyn Environment>> {\n    match name {\n");
    for (m, name, _) in &mods {
        let _ = writeln!(lib, "        {name:?} => Some(Box::new({m}::Env::new())),");
    }
    lib.push_str("        _ => None,\n    }\n}\n\n/// Where each env came from: (name, source file, SHA-256 of the source).\npub const SOURCES: &[(&str, &str, &str)] = &[\n");
    for u in units {
        for env in &u.program.envs {
            let _ = writeln!(
                lib,
                "    ({:?}, {:?}, {:?}),",
                env.name, u.file, u.source_hash
            );
        }
    }
    lib.push_str("];\n");
    files.push(("src/lib.rs".into(), lib));
    files.push((
        "src/main.rs".into(),
        format!(
            "//! `gen` and `verify` for the envs of this crate, with the rows of `resyn gen` and\n\
             //! `resyn verify`.\n\n\
             #[global_allocator]\nstatic ALLOC: resyn_runtime::cli::Allocator = resyn_runtime::cli::ALLOCATOR;\n\n\
             fn main() -> std::process::ExitCode {{\n    resyn_runtime::cli::main({crate_ident}::NAMES, {crate_ident}::find, {crate_ident}::SOURCES, {version:?})\n}}\n",
            crate_ident = crate_name.replace('-', "_"),
        ),
    ));
    files.push((
        "Cargo.toml".into(),
        format!(
            "# Generated by resyn {version} (`resyn build --emit rust`).\n\
             [package]\nname = {crate_name:?}\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nresyn-runtime = {{ {runtime_dep}, features = [\"cli\"] }}\n\n\
             # Emitted code is many small calls into the runtime: inlining across the\n\
             # crate boundary is what makes it fast.\n\
             [profile.release]\nlto = \"fat\"\ncodegen-units = 1\n\n\
             # A crate of its own, not a member of an enclosing workspace.\n[workspace]\n"
        ),
    ));
    Crate { files }
}

fn emit_env(u: &Unit<'_>, ei: usize, recs: &mut Records, version: &str) -> String {
    let program = u.program;
    let env = &program.envs[ei];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "//! Env `{}` from `{}` (source SHA-256 {}), compiled by resyn {version}.\n//! Generated code: edit the source and rebuild.\n",
        env.name, u.file, u.source_hash
    );
    out.push_str(
        "#![allow(unused_imports, unused_mut, unused_variables, unused_parens, unused_braces, unused_labels, unreachable_code, dead_code, non_snake_case, clippy::all)]\n\n\
         use crate::records::*;\n\
         use resyn_runtime::env::*;\n\
         use resyn_runtime::native::*;\n\
         use resyn_runtime::{Domain, Len, Rng, RtError, RtResult, Shape, Value};\n\n",
    );
    // Functions: every function of the file (callees first).
    for (i, f) in program.fns.iter().enumerate() {
        let mut w = Writer::new(program, &f.names, recs, Role::Plain, None);
        let by_ref = ref_params(f);
        let params: Vec<String> = (0..f.arity as usize)
            .map(|p| {
                let ty = f.params.get(p).cloned().unwrap_or(Ty::Unknown);
                w.set_ty(p as Slot, Some(ty.clone()));
                let rty = rust_ty(&ty, w.recs);
                if by_ref[p] {
                    w.refs.push(p as Slot);
                    format!("{}: &{rty}", w.slot_name(p as Slot))
                } else {
                    format!("mut {}: {rty}", w.slot(p as Slot))
                }
            })
            .collect();
        let ret = rust_ty(&f.ret, w.recs);
        w.with_scratch();
        let body = w.block_value(&f.body);
        let decls = w.scratch_decls();
        let _ = writeln!(
            out,
            "/// `{}{}` (callees first: a function only calls earlier ones).\n{}fn {}(m: &mut Machine{}{}) -> RtResult<{ret}> {{\n{decls}Ok({body})\n}}\n",
            if f.module.is_empty() { String::new() } else { format!("std::{}::", f.module) },
            f.name,
            if inline_always(f) { "#[inline(always)]\n" } else { "" },
            fn_name(f, i),
            if params.is_empty() { "" } else { ", " },
            params.join(", ")
        );
    }
    // Params and instance values as structs.
    let np = env.params.len();
    out.push_str("/// The params of one level.\n#[derive(Clone, Debug)]\npub struct Params {\n");
    for p in &env.params {
        let _ = writeln!(out, "    pub {}: {},", ident(&p.name), rust_ty(&p.ty, recs));
    }
    out.push_str("}\n\n/// The instance values (shown and hidden).\n#[derive(Clone, Debug)]\npub struct Fields {\n");
    for f in &env.fields {
        let _ = writeln!(out, "    pub {}: {},", ident(&f.name), rust_ty(&f.ty, recs));
    }
    let answer_ty = rust_ty(&env.answer_ty, recs);
    let _ = writeln!(
        out,
        "}}\n\n/// The answer.\npub type Answer = {answer_ty};\n"
    );
    // Conversions at the boundary with runtime values.
    let param_names: Vec<&str> = env.params.iter().map(|p| p.name.as_str()).collect();
    let field_names: Vec<&str> = env.fields.iter().map(|f| f.name.as_str()).collect();
    conversions(&mut out, "Params", &param_names);
    conversions(&mut out, "Fields", &field_names);

    // Param values per level, each checked against its domain.
    {
        let mut w = Writer::new(program, &env.gen_names, recs, Role::Plain, None);
        out.push_str("/// The params of a level (1..=5) with overrides, each in its domain.\npub fn resolve_params(level: u8, overrides: &[(String, Value)]) -> Result<Params, GenError> {\n");
        out.push_str("let li = usize::from(level.clamp(1, 5) - 1);\nlet m = &mut Machine::new(DEFAULT_FUEL, None);\n");
        for (i, p) in env.params.iter().enumerate() {
            let slot = w.slot(i as Slot);
            let ty = rust_ty(&p.ty, w.recs);
            let perr = format!(
                "|e: RtError| GenError::Param {{ name: {:?}.to_string(), level: Some(li as u8 + 1), message: *e.message }}",
                p.name
            );
            let mut arms = String::new();
            for (l, x) in p.levels.iter().enumerate() {
                let v = w.value(x);
                let _ = writeln!(arms, "{l} => (|| -> RtResult<{ty}> {{ Ok({v}) }})(),");
            }
            let _ = writeln!(
                out,
                "let {slot}: {ty} = match overrides.iter().find(|(n, _)| n == {:?}) {{\n\
                 Some((_, v)) => Val::from_value(v).map_err({perr})?,\n\
                 None => match li {{\n{arms}_ => unreachable!(\"levels are 1..=5\"),\n}}.map_err({perr})?,\n}};",
                p.name
            );
            if let Some(d) = &p.domain {
                let dv = w.value(d);
                let _ = writeln!(
                    out,
                    "{{\nlet __dom = (|| -> RtResult<_> {{ Ok({dv}) }})().map_err({perr})?;\n\
                     if !Contains::has(&__dom, &{slot}) {{\nreturn Err(GenError::Param {{ name: {:?}.to_string(), level: Some(li as u8 + 1), message: format!(\"{{}} is outside its domain\", {slot}.display()) }});\n}}\n}}",
                    p.name
                );
            }
        }
        out.push_str("Ok(Params {\n");
        for (i, p) in env.params.iter().enumerate() {
            let _ = writeln!(out, "{}: {},", ident(&p.name), w.slot(i as Slot));
        }
        out.push_str("})\n}\n\n");
    }

    // The frame prologue: params (and instance values) bound to their slots.
    let bind_params = |w: &mut Writer<'_>| -> String {
        let mut s = String::new();
        for (i, p) in env.params.iter().enumerate() {
            w.set_ty(i as Slot, Some(p.ty.clone()));
            let _ = writeln!(
                s,
                "let mut {} = p.{}.clone();",
                w.slot(i as Slot),
                ident(&p.name)
            );
        }
        s
    };
    let bind_fields = |w: &mut Writer<'_>, shown_only: bool| -> String {
        let mut s = String::new();
        let mut slot = np;
        for f in &env.fields {
            if shown_only && !f.shown {
                continue;
            }
            w.set_ty(slot as Slot, Some(f.ty.clone()));
            let _ = writeln!(
                s,
                "let mut {} = f.{}.clone();",
                w.slot(slot as Slot),
                ident(&f.name)
            );
            slot += 1;
        }
        s
    };

    // The generator.
    {
        let mut w = Writer::new(program, &env.gen_names, recs, Role::Gen, None);
        let prologue = bind_params(&mut w);
        let mut body = String::new();
        w.with_scratch();
        w.block(&env.gen, &mut body);
        out.push_str("/// One attempt of the generator: the instance values and the witness.\npub fn gen(m: &mut Machine, p: &Params) -> Result<(Fields, Option<Answer>), Stop> {\n");
        out.push_str(&prologue);
        out.push_str(&w.scratch_decls());
        for (i, f) in env.fields.iter().enumerate() {
            let _ = writeln!(
                out,
                "let mut __field{i}: Option<{}> = None;",
                rust_ty(&f.ty, w.recs)
            );
        }
        out.push_str("let mut __witness: Option<Answer> = None;\n");
        out.push_str(&body);
        out.push_str("Ok((Fields {\n");
        for (i, f) in env.fields.iter().enumerate() {
            let _ = writeln!(
                out,
                "{}: __field{i}.ok_or_else(|| RtError::new({:?}))?,",
                ident(&f.name),
                format!("instance value `{}` was not set", f.name)
            );
        }
        out.push_str("}, __witness))\n}\n\n");
    }

    // The answer's type.
    {
        let mut w = Writer::new(program, &env.answer_names, recs, Role::Plain, None);
        let prologue = format!("{}{}", bind_params(&mut w), bind_fields(&mut w, false));
        let shape = w.shape(&env.answer);
        let _ = writeln!(
            out,
            "/// The answer's type with its domains evaluated.\npub fn answer_shape(m: &mut Machine, p: &Params, f: &Fields) -> RtResult<Shape> {{\n{prologue}Ok({shape})\n}}\n"
        );
    }

    let scoring = match env.scoring {
        Scoring::All => "Scoring::All",
        Scoring::Partial => "Scoring::Partial",
    };

    // Verify.
    {
        let source = Source {
            file: u.file,
            text: u.text,
            constraints: &env.constraint_text,
        };
        let mut w = Writer::new(program, &env.verify_names, recs, Role::Plain, Some(&source));
        let answer_slot = (np + env.fields.len()) as Slot;
        w.set_ty(answer_slot, Some(env.answer_ty.clone()));
        let prologue = format!(
            "{}{}let mut {} = a;\n",
            bind_params(&mut w),
            bind_fields(&mut w, false),
            w.slot(answer_slot)
        );
        let mut body = String::new();
        w.block(&env.verify, &mut body);
        let _ = writeln!(
            out,
            "/// Checks an answer: every constraint evaluated, failures reported.\npub fn verify(m: &mut Machine, p: &Params, f: &Fields, a: Answer) -> Verdict {{\n\
             let mut sc = Scorer::default();\n\
             let r = (|| -> RtResult<()> {{\n{prologue}{body}Ok(())\n}})();\n\
             sc.verdict(r.err().map(|e| *e.message), {scoring})\n}}\n"
        );
    }

    // The prompt.
    {
        let mut w = Writer::new(program, &env.prompt_names, recs, Role::Plain, None);
        let prologue = format!("{}{}", bind_params(&mut w), bind_fields(&mut w, true));
        let t = w.template(&env.prompt);
        let _ = writeln!(
            out,
            "/// The question.\npub fn question(m: &mut Machine, p: &Params, f: &Fields) -> RtResult<String> {{\n{prologue}Ok({t})\n}}\n"
        );
    }

    // The protocol, over runtime values.
    let requirement = match env.requirement {
        Requirement::Solvable => "Requirement::Solvable",
        Requirement::Unique => "Requirement::Unique",
    };
    let mut meta = String::new();
    let _ = writeln!(
        meta,
        "EnvMeta {{\nname: {:?}.to_string(),\ncategory: {:?}.to_string(),\nrequirement: {requirement},\nscoring: {scoring},\nparams: vec![",
        env.name, env.category
    );
    for p in &env.params {
        let _ = writeln!(
            meta,
            "ParamMeta {{ name: {:?}.to_string(), shape: {}, ty: {:?}.to_string() }},",
            p.name,
            shape_code(&p.ty),
            p.ty.to_string()
        );
    }
    meta.push_str("],\nfields: vec![");
    for f in &env.fields {
        let _ = writeln!(
            meta,
            "FieldMeta {{ name: {:?}.to_string(), shown: {}, shape: {} }},",
            f.name,
            f.shown,
            shape_code(&f.ty)
        );
    }
    let extract = format!("{:?}", env.extract);
    let _ = write!(
        meta,
        "],\nextract: resyn_runtime::ExtractMode::{extract},\nconstraint_text: vec![{}],\n}}",
        env.constraint_text
            .iter()
            .map(|t| format!("{t:?}.to_string()"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "/// The env, as the runtime's protocol sees it.\npub struct Env {{\n    meta: EnvMeta,\n}}\n\n\
impl Env {{\n    pub fn new() -> Env {{\n        Env {{ meta: {meta} }}\n    }}\n}}\n\n\
impl Default for Env {{\n    fn default() -> Env {{\n        Env::new()\n    }}\n}}\n\n\
impl Environment for Env {{\n\
    fn meta(&self) -> &EnvMeta {{\n        &self.meta\n    }}\n\n\
    fn resolve_params(&self, level: u8, overrides: &[(String, Value)]) -> Result<Vec<Value>, GenError> {{\n        resolve_params(level, overrides).map(|p| p.to_values())\n    }}\n\n\
    fn attempt(&self, params: &[Value], rng: Rng, fuel: &mut u64) -> (Rng, Result<Attempt, Stop>) {{\n\
        let mut m = Machine::new(*fuel, Some(rng));\n\
        let r = Params::from_values(params).map_err(Stop::from).and_then(|p| gen(&mut m, &p));\n\
        *fuel = m.fuel;\n\
        let rng = m.rng.take().expect(\"the generator keeps its rng\");\n\
        (rng, r.map(|(f, w)| Attempt {{ fields: f.to_values(), witness: w.map(|w| w.to_value()) }}))\n    }}\n\n\
    fn answer_shape(&self, params: &[Value], fields: &[Value]) -> RtResult<Shape> {{\n\
        let (p, f) = (Params::from_values(params)?, Fields::from_values(fields)?);\n\
        answer_shape(&mut Machine::new(DEFAULT_FUEL, None), &p, &f)\n    }}\n\n\
    fn verify(&self, params: &[Value], fields: &[Value], answer: Value) -> Verdict {{\n\
        let typed = (|| Ok::<_, RtError>((Params::from_values(params)?, Fields::from_values(fields)?, <Answer as Val>::from_value(&answer)?)))();\n\
        match typed {{\n\
            Ok((p, f, a)) => verify(&mut Machine::new(DEFAULT_FUEL, None), &p, &f, a),\n\
            Err(e) => Scorer::default().verdict(Some(*e.message), {scoring}),\n\
        }}\n    }}\n\n\
    fn question(&self, params: &[Value], fields: &[Value]) -> RtResult<String> {{\n\
        let (p, f) = (Params::from_values(params)?, Fields::from_values(fields)?);\n\
        question(&mut Machine::new(DEFAULT_FUEL, None), &p, &f)\n    }}\n}}"
    );
    out
}

/// One binding of a quantifier inside its labelled block (exact and fast forms alike):
/// `forall` leaves with false at the first binding whose body is false, `exists` with true
/// at the first that is true; the block's last value is the answer when none does.
fn quantifier_step(forall: bool, body: &str, label: &str) -> String {
    if forall {
        format!("if !{body} {{ break '{label} false; }}\n")
    } else {
        format!("if {body} {{ break '{label} true; }}\n")
    }
}
