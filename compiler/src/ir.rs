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

impl Expr {
    /// Calls `f` with every local slot the expression reads, at any depth (blocks,
    /// clauses, templates and index paths included; callees' bodies excluded: a function
    /// reads only its arguments).
    pub fn each_local(&self, f: &mut impl FnMut(Slot)) {
        match self {
            Expr::Lit(_) => {}
            Expr::Local(s) => f(*s),
            Expr::Tuple(xs) | Expr::List(xs) | Expr::Call(_, xs, _) => {
                xs.iter().for_each(|x| x.each_local(f))
            }
            Expr::Record(fs) => fs.iter().for_each(|(_, x)| x.each_local(f)),
            Expr::Comprehension(cs, body)
            | Expr::Quant {
                clauses: cs, body, ..
            } => {
                Clause::each_local(cs, f);
                body.each_local(f);
            }
            Expr::Range { lo, hi, .. } => {
                lo.each_local(f);
                hi.each_local(f);
            }
            Expr::Unary(_, x) | Expr::Field(x, _) | Expr::TupleField(x, _) => x.each_local(f),
            Expr::Binary(_, a, b, _) | Expr::Index(a, b, _) => {
                a.each_local(f);
                b.each_local(f);
            }
            Expr::If(c, t, e) => {
                c.each_local(f);
                t.each_local(f);
                if let Some(e) = e {
                    e.each_local(f);
                }
            }
            Expr::Str(t) => t.each_local(f),
        }
    }
}

impl Clause {
    pub fn each_local(cs: &[Clause], f: &mut impl FnMut(Slot)) {
        for c in cs {
            match c {
                Clause::For(_, x) | Clause::If(x) => x.each_local(f),
            }
        }
    }
}

impl Template {
    pub fn each_local(&self, f: &mut impl FnMut(Slot)) {
        TemplatePart::each_local(&self.parts, f);
    }
}

impl TemplatePart {
    fn each_local(parts: &[TemplatePart], f: &mut impl FnMut(Slot)) {
        for p in parts {
            match p {
                TemplatePart::Text(_) => {}
                TemplatePart::Expr(x) => x.each_local(f),
                TemplatePart::For(_, x, body) => {
                    x.each_local(f);
                    TemplatePart::each_local(body, f);
                }
                TemplatePart::If(c, t, e) => {
                    c.each_local(f);
                    TemplatePart::each_local(t, f);
                    TemplatePart::each_local(e, f);
                }
            }
        }
    }
}

impl Block {
    /// Every local slot read by the block's statements and value (see [`Expr::each_local`]).
    pub fn each_local(&self, f: &mut impl FnMut(Slot)) {
        for s in &self.stmts {
            s.each_local(f);
        }
        if let Some(v) = &self.value {
            v.each_local(f);
        }
    }
}

impl Stmt {
    /// Every local slot the statement reads, at any depth. An assignment `x[i] = v` reads
    /// `x` too (the rest of `x` is kept).
    pub fn each_local(&self, f: &mut impl FnMut(Slot)) {
        match self {
            Stmt::Let(_, x) | Stmt::Eval(x) | Stmt::Witness(x) | Stmt::Set(_, x) => x.each_local(f),
            Stmt::Assign(s, path, x) => {
                f(*s);
                for a in path {
                    if let Access::Index(i, _) = a {
                        i.each_local(f);
                    }
                }
                x.each_local(f);
            }
            Stmt::If(c, t, e) => {
                c.each_local(f);
                t.each_local(f);
                if let Some(e) = e {
                    e.each_local(f);
                }
            }
            Stmt::For(_, x, body) => {
                x.each_local(f);
                body.each_local(f);
            }
            Stmt::Require { cond, message, .. } => {
                cond.each_local(f);
                if let Some(t) = message {
                    t.each_local(f);
                }
            }
            Stmt::Constraint {
                binders,
                cond,
                message,
                ..
            } => {
                Clause::each_local(binders, f);
                cond.each_local(f);
                if let Some(t) = message {
                    t.each_local(f);
                }
            }
        }
    }
}

impl Pattern {
    pub fn each_slot(&self, f: &mut impl FnMut(Slot)) {
        match self {
            Pattern::Bind(s) => f(*s),
            Pattern::Wild => {}
            Pattern::Tuple(ps) => ps.iter().for_each(|p| p.each_slot(f)),
        }
    }
}

impl Stmt {
    /// Every local slot the statement binds or assigns, at any depth (blocks inside
    /// expressions included).
    pub fn each_write(&self, f: &mut impl FnMut(Slot)) {
        match self {
            Stmt::Let(p, x) => {
                p.each_slot(f);
                x.each_write(f);
            }
            Stmt::Assign(s, path, x) => {
                f(*s);
                for a in path {
                    if let Access::Index(i, _) = a {
                        i.each_write(f);
                    }
                }
                x.each_write(f);
            }
            Stmt::Eval(x) | Stmt::Witness(x) | Stmt::Set(_, x) => x.each_write(f),
            Stmt::If(c, t, e) => {
                c.each_write(f);
                t.each_write(f);
                if let Some(e) = e {
                    e.each_write(f);
                }
            }
            Stmt::For(p, x, body) => {
                p.each_slot(f);
                x.each_write(f);
                body.each_write(f);
            }
            Stmt::Require { cond, .. } => cond.each_write(f),
            Stmt::Constraint { binders, cond, .. } => {
                Clause::each_write(binders, f);
                cond.each_write(f);
            }
        }
    }
}

impl Block {
    pub fn each_write(&self, f: &mut impl FnMut(Slot)) {
        for s in &self.stmts {
            s.each_write(f);
        }
        if let Some(v) = &self.value {
            v.each_write(f);
        }
    }
}

impl Clause {
    fn each_write(cs: &[Clause], f: &mut impl FnMut(Slot)) {
        for c in cs {
            match c {
                Clause::For(p, x) => {
                    p.each_slot(f);
                    x.each_write(f);
                }
                Clause::If(x) => x.each_write(f),
            }
        }
    }
}

impl Expr {
    /// Every local slot bound or assigned inside the expression (comprehension variables,
    /// statements of `if` blocks).
    pub fn each_write(&self, f: &mut impl FnMut(Slot)) {
        match self {
            Expr::Lit(_) | Expr::Local(_) | Expr::Str(_) => {}
            Expr::Tuple(xs) | Expr::List(xs) | Expr::Call(_, xs, _) => {
                xs.iter().for_each(|x| x.each_write(f))
            }
            Expr::Record(fs) => fs.iter().for_each(|(_, x)| x.each_write(f)),
            Expr::Comprehension(cs, body)
            | Expr::Quant {
                clauses: cs, body, ..
            } => {
                Clause::each_write(cs, f);
                body.each_write(f);
            }
            Expr::Range { lo, hi, .. } => {
                lo.each_write(f);
                hi.each_write(f);
            }
            Expr::Unary(_, x) | Expr::Field(x, _) | Expr::TupleField(x, _) => x.each_write(f),
            Expr::Binary(_, a, b, _) | Expr::Index(a, b, _) => {
                a.each_write(f);
                b.each_write(f);
            }
            Expr::If(c, t, e) => {
                c.each_write(f);
                t.each_write(f);
                if let Some(e) = e {
                    e.each_write(f);
                }
            }
        }
    }
}
