//! The IR: a checked program with every name resolved to a frame slot, a function index,
//! a builtin or an enum variant. It is plain data (no `Rc`, `Send`), shared by the
//! evaluator (which compiles it to closures), and later by the SMT lowering and the Rust
//! emitter. Produced by `lower` from programs that checked without errors.

use resyn_grammar::ast::{BinOp, UnOp};
use resyn_grammar::span::Span;

pub type Slot = u32;
pub type FnIdx = usize;

#[derive(Clone, Debug, Default)]
pub struct Program {
    /// Callees before callers: a function only calls lower indices.
    pub fns: Vec<Function>,
    pub envs: Vec<Env>,
}

#[derive(Clone, Debug)]
pub struct Function {
    pub name: String,
    /// The module the function is defined in (`""` for the user's file, `grid` for
    /// `std::grid`), for names in emitted code.
    pub module: String,
    /// Parameters occupy slots `0..arity`.
    pub arity: u32,
    pub slots: u32,
    /// Source names of the slots (for readable emitted code).
    pub names: Vec<String>,
    pub body: Block,
    /// Parameter and result types, as checked.
    pub params: Vec<crate::types::Ty>,
    pub ret: crate::types::Ty,
}

/// Shared with the runtime, which writes them into rows.
pub use resyn_runtime::env::{Requirement, Scoring};

#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub ty: crate::types::Ty,
    /// One expression per level 1..5 (the same one five times for a plain value).
    pub levels: Vec<Expr>,
    /// `lo..hi` / a collection the value must lie in, evaluated with earlier params.
    pub domain: Option<Expr>,
}

/// An instance value: computed by the generator, stored in the row.
#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub shown: bool,
    pub ty: crate::types::Ty,
}

/// The answer's type with its domain expressions (evaluated per instance).
#[derive(Clone, Debug)]
pub enum ShapeExpr {
    Bool,
    Int,
    Float,
    Str,
    Unit,
    /// `base in collection`.
    In(Box<ShapeExpr>, Expr),
    Tuple(Vec<ShapeExpr>),
    List(Box<ShapeExpr>, LenExpr),
    Set(Box<ShapeExpr>),
    Map(Box<ShapeExpr>, Box<ShapeExpr>),
    Record(Vec<(String, ShapeExpr)>),
    Enum(Vec<String>),
}

#[derive(Clone, Debug)]
pub enum LenExpr {
    Any,
    Exact(Expr),
    AtMost(Expr),
}

/// Frame layouts. Every env body runs in a frame whose first slots are the params
/// (`0..params.len()`); verify and the answer shape then see the instance fields, in
/// `fields` order; verify's next slot is the answer; the prompt sees the shown fields.
#[derive(Clone, Debug)]
pub struct Env {
    pub name: String,
    /// The span of the env's name (env-level reports point here).
    pub span: Span,
    pub doc: String,
    pub category: String,
    pub requirement: Requirement,
    pub scoring: Scoring,
    pub params: Vec<Param>,
    pub fields: Vec<Field>,
    pub answer_name: String,
    pub answer_ty: crate::types::Ty,
    pub gen: Block,
    pub gen_slots: u32,
    pub gen_names: Vec<String>,
    pub answer: ShapeExpr,
    pub answer_slots: u32,
    pub answer_names: Vec<String>,
    pub verify: Block,
    pub verify_slots: u32,
    pub verify_names: Vec<String>,
    pub prompt: Template,
    pub prompt_slots: u32,
    pub prompt_names: Vec<String>,
    pub has_witness: bool,
    /// How answers are found in raw model text (`extract …`, default auto).
    pub extract: resyn_runtime::ExtractMode,
    /// Source text of each constraint, by constraint id (for failure reports).
    pub constraint_text: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    /// The block's value (its last expression statement) where a value is wanted.
    pub value: Option<Box<Expr>>,
}

#[derive(Clone, Debug)]
pub enum Pattern {
    Bind(Slot),
    Wild,
    Tuple(Vec<Pattern>),
}

#[derive(Clone, Debug)]
pub enum Access {
    /// `[i]`, with the span of the whole indexing expression (static safety reports it).
    Index(Expr, Span),
    Field(String),
    TupleField(usize),
}

#[derive(Clone, Debug)]
pub enum Stmt {
    Let(Pattern, Expr),
    /// `slot[path…] = value`
    Assign(Slot, Vec<Access>, Expr),
    /// An expression evaluated for its effects (an `if` statement's branches).
    Eval(Expr),
    If(Expr, Block, Option<Block>),
    For(Pattern, Expr, Block),
    /// Generator: resample when false.
    Require {
        cond: Expr,
        message: Option<Template>,
        span: Span,
    },
    /// Generator: the planted answer.
    Witness(Expr),
    /// Generator: set instance field `field` (index into `Env::fields`).
    Set(usize, Expr),
    /// Verify: a constraint. `binders` are the clauses of its leading `forall`s when it has
    /// a message (so the message can name the failing case); `id` numbers constraints.
    Constraint {
        id: usize,
        binders: Vec<Clause>,
        cond: Expr,
        message: Option<Template>,
        span: Span,
    },
}

#[derive(Clone, Debug)]
pub enum Clause {
    For(Pattern, Expr),
    If(Expr),
}

#[derive(Clone, Debug)]
pub enum Lit {
    Unit,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// Variant index and name.
    Enum(u32, String),
}

impl Lit {
    /// The runtime value of the literal (shared by the evaluator and the SMT lowering).
    pub fn value(&self) -> resyn_runtime::Value {
        use resyn_runtime::Value;
        match self {
            Lit::Unit => Value::Unit,
            Lit::Bool(b) => Value::Bool(*b),
            Lit::Int(i) => Value::Int(*i),
            Lit::Float(f) => Value::Float(*f),
            Lit::Str(s) => Value::str(s),
            Lit::Enum(i, n) => Value::Enum(*i, std::rc::Rc::from(n.as_str())),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Callee {
    Builtin(&'static str),
    Fn(FnIdx),
}

#[derive(Clone, Debug)]
pub enum Expr {
    Lit(Lit),
    Local(Slot),
    Tuple(Vec<Expr>),
    List(Vec<Expr>),
    /// Fields sorted by name.
    Record(Vec<(String, Expr)>),
    Comprehension(Vec<Clause>, Box<Expr>),
    Quant {
        forall: bool,
        clauses: Vec<Clause>,
        body: Box<Expr>,
    },
    Range {
        lo: Box<Expr>,
        hi: Box<Expr>,
        inclusive: bool,
    },
    Unary(UnOp, Box<Expr>),
    /// The span covers the whole operation (static safety reports divisions by it).
    Binary(BinOp, Box<Expr>, Box<Expr>, Span),
    /// The span of the call (static safety reports problems inside callees here).
    Call(Callee, Vec<Expr>, Span),
    /// `a[i]` and its span.
    Index(Box<Expr>, Box<Expr>, Span),
    Field(Box<Expr>, String),
    TupleField(Box<Expr>, usize),
    If(Box<Expr>, Block, Option<Block>),
    Str(Template),
}

#[derive(Clone, Debug, Default)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
}

#[derive(Clone, Debug)]
pub enum TemplatePart {
    Text(String),
    Expr(Expr),
    For(Pattern, Expr, Vec<TemplatePart>),
    If(Expr, Vec<TemplatePart>, Vec<TemplatePart>),
}

/// How a statement or expression uses a local slot (see [`Stmt::each_use`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotUse {
    Read(Slot),
    /// Bound (`let`, loop and comprehension variables) or assigned.
    Write(Slot),
}

impl Expr {
    /// Calls `f` with every use of a local slot in the expression, at any depth (blocks,
    /// clauses, templates and index paths included; callees' bodies excluded: a function
    /// reads only its arguments).
    pub fn each_use(&self, f: &mut impl FnMut(SlotUse)) {
        match self {
            Expr::Lit(_) => {}
            Expr::Local(s) => f(SlotUse::Read(*s)),
            Expr::Tuple(xs) | Expr::List(xs) | Expr::Call(_, xs, _) => {
                xs.iter().for_each(|x| x.each_use(f))
            }
            Expr::Record(fs) => fs.iter().for_each(|(_, x)| x.each_use(f)),
            Expr::Comprehension(cs, body)
            | Expr::Quant {
                clauses: cs, body, ..
            } => {
                Clause::each_use(cs, f);
                body.each_use(f);
            }
            Expr::Range { lo, hi, .. } | Expr::Binary(_, lo, hi, _) | Expr::Index(lo, hi, _) => {
                lo.each_use(f);
                hi.each_use(f);
            }
            Expr::Unary(_, x) | Expr::Field(x, _) | Expr::TupleField(x, _) => x.each_use(f),
            Expr::If(c, t, e) => {
                c.each_use(f);
                t.each_use(f);
                if let Some(e) = e {
                    e.each_use(f);
                }
            }
            Expr::Str(t) => TemplatePart::each_use(&t.parts, f),
        }
    }
}

impl Clause {
    fn each_use(cs: &[Clause], f: &mut impl FnMut(SlotUse)) {
        for c in cs {
            match c {
                Clause::For(p, x) => {
                    x.each_use(f);
                    p.each_write(f);
                }
                Clause::If(x) => x.each_use(f),
            }
        }
    }
}

impl TemplatePart {
    fn each_use(parts: &[TemplatePart], f: &mut impl FnMut(SlotUse)) {
        for p in parts {
            match p {
                TemplatePart::Text(_) => {}
                TemplatePart::Expr(x) => x.each_use(f),
                TemplatePart::For(p, x, body) => {
                    x.each_use(f);
                    p.each_write(f);
                    TemplatePart::each_use(body, f);
                }
                TemplatePart::If(c, t, e) => {
                    c.each_use(f);
                    TemplatePart::each_use(t, f);
                    TemplatePart::each_use(e, f);
                }
            }
        }
    }
}

impl Pattern {
    /// The slots the pattern binds, left to right.
    pub fn slots(&self) -> Vec<Slot> {
        let mut out = Vec::new();
        self.each_write(&mut |u| {
            if let SlotUse::Write(s) = u {
                out.push(s);
            }
        });
        out
    }

    fn each_write(&self, f: &mut impl FnMut(SlotUse)) {
        match self {
            Pattern::Bind(s) => f(SlotUse::Write(*s)),
            Pattern::Wild => {}
            Pattern::Tuple(ps) => ps.iter().for_each(|p| p.each_write(f)),
        }
    }
}

impl Block {
    /// The slots this block binds itself, with `pattern` (a loop's variables) bound first:
    /// `let`s, loop and comprehension variables at any depth. Each is scoped to the block
    /// and slots are never reused (lower.rs), so none is read once the block is left. A
    /// slot bound here is one whose first use in the walk is a write (an assignment to an
    /// outer variable reads it first).
    pub fn bound_slots(&self, pattern: Option<&Pattern>) -> Vec<Slot> {
        let mut seen = std::collections::BTreeSet::new();
        let mut bound = Vec::new();
        let mut visit = |u: SlotUse| {
            let (s, write) = match u {
                SlotUse::Read(s) => (s, false),
                SlotUse::Write(s) => (s, true),
            };
            if seen.insert(s) && write {
                bound.push(s);
            }
        };
        if let Some(p) = pattern {
            p.each_write(&mut visit);
        }
        self.each_use(&mut visit);
        bound
    }

    /// Whether `slot` is read anywhere in the block but in a check's message (messages
    /// are not part of the formula: a loop counter used only there does not make two
    /// steps differ). Expressions count whole, messages inside them included.
    pub fn reads_beyond_messages(&self, slot: Slot) -> bool {
        let mut hit = false;
        self.uses(false, &mut |u| hit |= u == SlotUse::Read(slot));
        hit
    }

    pub fn each_use(&self, f: &mut impl FnMut(SlotUse)) {
        self.uses(true, f);
    }

    /// [`Block::each_use`], with or without the uses in checks' messages.
    fn uses(&self, messages: bool, f: &mut impl FnMut(SlotUse)) {
        for s in &self.stmts {
            s.uses(messages, f);
        }
        if let Some(v) = &self.value {
            v.each_use(f);
        }
    }
}

impl Stmt {
    /// Calls `f` with every use of a local slot in the statement, at any depth (blocks
    /// inside expressions included). An assignment `x[i] = v` reads `x` too (the rest of
    /// `x` is kept) and writes it.
    pub fn each_use(&self, f: &mut impl FnMut(SlotUse)) {
        self.uses(true, f);
    }

    /// [`Stmt::each_use`], with or without the uses in checks' messages.
    fn uses(&self, messages: bool, f: &mut impl FnMut(SlotUse)) {
        match self {
            Stmt::Let(p, x) => {
                x.each_use(f);
                p.each_write(f);
            }
            Stmt::Eval(x) | Stmt::Witness(x) | Stmt::Set(_, x) => x.each_use(f),
            Stmt::Assign(s, path, x) => {
                f(SlotUse::Read(*s));
                for a in path {
                    if let Access::Index(i, _) = a {
                        i.each_use(f);
                    }
                }
                x.each_use(f);
                f(SlotUse::Write(*s));
            }
            Stmt::If(c, t, e) => {
                c.each_use(f);
                t.uses(messages, f);
                if let Some(e) = e {
                    e.uses(messages, f);
                }
            }
            Stmt::For(p, x, body) => {
                x.each_use(f);
                p.each_write(f);
                body.uses(messages, f);
            }
            Stmt::Require { cond, message, .. } => {
                cond.each_use(f);
                if let Some(t) = message.as_ref().filter(|_| messages) {
                    TemplatePart::each_use(&t.parts, f);
                }
            }
            Stmt::Constraint {
                binders,
                cond,
                message,
                ..
            } => {
                Clause::each_use(binders, f);
                cond.each_use(f);
                if let Some(t) = message.as_ref().filter(|_| messages) {
                    TemplatePart::each_use(&t.parts, f);
                }
            }
        }
    }
}

/// Every expression of a block (statements, clauses, nested blocks and templates), in
/// pre-order, and every pattern bound or slot assigned in it.
pub fn walk_block(b: &Block, f: &mut dyn FnMut(Walked<'_>)) {
    for s in &b.stmts {
        match s {
            Stmt::Let(p, e) => {
                f(Walked::Binds(p));
                walk_expr(e, f);
            }
            Stmt::Assign(slot, path, e) => {
                f(Walked::Assigns(*slot));
                for a in path {
                    if let Access::Index(i, _) = a {
                        walk_expr(i, f);
                    }
                }
                walk_expr(e, f);
            }
            Stmt::Eval(e) | Stmt::Witness(e) | Stmt::Set(_, e) => walk_expr(e, f),
            Stmt::If(c, t, e) => {
                walk_expr(c, f);
                walk_block(t, f);
                if let Some(e) = e {
                    walk_block(e, f);
                }
            }
            Stmt::For(p, c, b) => {
                f(Walked::Binds(p));
                walk_expr(c, f);
                walk_block(b, f);
            }
            Stmt::Require { cond, message, .. } => {
                walk_expr(cond, f);
                if let Some(t) = message {
                    walk_parts(&t.parts, f);
                }
            }
            Stmt::Constraint {
                binders,
                cond,
                message,
                ..
            } => {
                walk_clauses(binders, f);
                walk_expr(cond, f);
                if let Some(t) = message {
                    walk_parts(&t.parts, f);
                }
            }
        }
    }
    if let Some(v) = &b.value {
        walk_expr(v, f);
    }
}

/// What [`walk_block`] reports.
pub enum Walked<'e> {
    Expr(&'e Expr),
    Binds(&'e Pattern),
    Assigns(Slot),
}

pub fn walk_clauses(cs: &[Clause], f: &mut dyn FnMut(Walked<'_>)) {
    for c in cs {
        match c {
            Clause::For(p, e) => {
                f(Walked::Binds(p));
                walk_expr(e, f);
            }
            Clause::If(e) => walk_expr(e, f),
        }
    }
}

pub fn walk_parts(parts: &[TemplatePart], f: &mut dyn FnMut(Walked<'_>)) {
    for p in parts {
        match p {
            TemplatePart::Text(_) => {}
            TemplatePart::Expr(e) => walk_expr(e, f),
            TemplatePart::For(p, e, body) => {
                f(Walked::Binds(p));
                walk_expr(e, f);
                walk_parts(body, f);
            }
            TemplatePart::If(c, t, e) => {
                walk_expr(c, f);
                walk_parts(t, f);
                walk_parts(e, f);
            }
        }
    }
}

pub fn walk_expr(e: &Expr, f: &mut dyn FnMut(Walked<'_>)) {
    f(Walked::Expr(e));
    match e {
        Expr::Lit(_) | Expr::Local(_) => {}
        Expr::Tuple(v) | Expr::List(v) | Expr::Call(_, v, _) => {
            for x in v {
                walk_expr(x, f);
            }
        }
        Expr::Record(fs) => {
            for (_, x) in fs {
                walk_expr(x, f);
            }
        }
        Expr::Comprehension(cs, x)
        | Expr::Quant {
            clauses: cs,
            body: x,
            ..
        } => {
            walk_clauses(cs, f);
            walk_expr(x, f);
        }
        Expr::Range { lo: a, hi: b, .. } | Expr::Binary(_, a, b, _) | Expr::Index(a, b, _) => {
            walk_expr(a, f);
            walk_expr(b, f);
        }
        Expr::Unary(_, x) | Expr::Field(x, _) | Expr::TupleField(x, _) => walk_expr(x, f),
        Expr::If(c, t, e) => {
            walk_expr(c, f);
            walk_block(t, f);
            if let Some(e) = e {
                walk_block(e, f);
            }
        }
        Expr::Str(t) => walk_parts(&t.parts, f),
    }
}
