//! The abstract syntax tree. Every node keeps its span; nothing here is resolved or typed.
//! `Error` variants stand where the parser recovered from a syntax error, so later stages
//! can keep going without reporting follow-on noise.

use crate::span::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// `a::b::c`
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    pub segments: Vec<Ident>,
    pub span: Span,
}

impl Path {
    pub fn last(&self) -> &Ident {
        self.segments.last().expect("paths are never empty")
    }
    pub fn to_string_path(&self) -> String {
        self.segments
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join("::")
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct SourceFile {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Use(UseDecl),
    Fn(FnDecl),
    Env(EnvDecl),
    TypeAlias(TypeAlias),
    Enum(EnumDecl),
    Error(Span),
}

/// `use std::graph` or `use std::graph::{a, b}`.
#[derive(Clone, Debug, PartialEq)]
pub struct UseDecl {
    pub path: Path,
    pub names: Option<Vec<Ident>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FnDecl {
    pub doc: Option<String>,
    pub name: Ident,
    pub params: Vec<(Ident, TypeExpr)>,
    pub ret: Option<TypeExpr>,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypeAlias {
    pub doc: Option<String>,
    pub name: Ident,
    pub ty: TypeExpr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EnumDecl {
    pub doc: Option<String>,
    pub name: Ident,
    pub variants: Vec<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EnvDecl {
    pub doc: Option<String>,
    pub name: Ident,
    pub items: Vec<EnvItem>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EnvItem {
    /// `category word` or `category "text"`.
    Category(String, Span),
    Param(ParamDecl),
    Gen(Block),
    Answer {
        name: Ident,
        ty: TypeExpr,
        span: Span,
    },
    Verify(Block),
    /// `require solvable` / `require unique` (checked by the resolver).
    Require(Ident),
    /// `scoring all` / `scoring partial`.
    Scoring(Ident),
    /// `name value`, e.g. `extract tag` (validated by the checker).
    Setting(Ident, Ident),
    Prompt(Template),
    TypeAlias(TypeAlias),
    Enum(EnumDecl),
    Error(Span),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    pub doc: Option<String>,
    pub name: Ident,
    pub ty: TypeExpr,
    /// `levels(a, b, c, d, e)` is recognised by the type checker.
    pub default: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub kind: TypeKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeKind {
    /// `int`, `Op`, `set[int]`, `map[string, int]`.
    Named(Path, Vec<TypeExpr>),
    Unit,
    Tuple(Vec<TypeExpr>),
    List(Box<TypeExpr>, ListLen),
    Record(Vec<(Ident, TypeExpr)>),
    /// `T in E`: the values of `T` that are members of the collection `E`.
    Domain(Box<TypeExpr>, Box<Expr>),
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ListLen {
    Any,
    Exact(Box<Expr>),
    AtMost(Box<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    Let {
        pat: Pattern,
        ty: Option<TypeExpr>,
        value: Expr,
    },
    Var {
        name: Ident,
        ty: Option<TypeExpr>,
        value: Expr,
    },
    /// `x = e`, `x[i] = e`, `x.f = e`.
    Assign {
        target: Expr,
        value: Expr,
    },
    /// An expression; in `verify` a constraint, optionally with a failure message.
    Expr {
        expr: Expr,
        message: Option<Template>,
    },
    For {
        pat: Pattern,
        iter: Expr,
        body: Block,
    },
    Require {
        cond: Expr,
        message: Option<Template>,
    },
    Witness(Expr),
    Show(Vec<Binding>),
    Hide(Vec<Binding>),
    Error,
}

/// `name` or `name = expr` in `show` / `hide`.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub name: Ident,
    pub value: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pattern {
    pub kind: PatternKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PatternKind {
    Bind(Ident),
    Wildcard,
    Tuple(Vec<Pattern>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Implies,
    In,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Implies => "implies",
            BinOp::In => "in",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantifier {
    Forall,
    Exists,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    /// Height of this node's tree, kept by the parser to cap depth (see `MAX_EXPR_DEPTH`).
    pub depth: u32,
}

/// One `for pat in iter` or `if cond` clause of a comprehension or quantifier.
#[derive(Clone, Debug, PartialEq)]
pub enum Clause {
    For(Pattern, Expr),
    If(Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(Template),
    Path(Path),
    Unit,
    Tuple(Vec<Expr>),
    List(Vec<Expr>),
    Record(Vec<(Ident, Expr)>),
    Comprehension {
        elem: Box<Expr>,
        clauses: Vec<Clause>,
    },
    Quant {
        q: Quantifier,
        clauses: Vec<Clause>,
        body: Box<Expr>,
    },
    Range {
        lo: Box<Expr>,
        hi: Box<Expr>,
        inclusive: bool,
    },
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call {
        callee: Path,
        args: Vec<Expr>,
    },
    Index(Box<Expr>, Box<Expr>),
    Field(Box<Expr>, Ident),
    TupleField(Box<Expr>, u32, Span),
    If {
        cond: Box<Expr>,
        then: Block,
        els: Option<Box<Else>>,
    },
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Else {
    Block(Block),
    If(Expr),
}

/// An interpolated string: `"a {x} b"`, with `{for p in e}…{end}` and `{if c}…{else}…{end}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
    pub span: Span,
}

impl Template {
    /// The literal text when the template has no interpolation.
    pub fn as_plain(&self) -> Option<String> {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                TemplatePart::Text(t) => s.push_str(t),
                _ => return None,
            }
        }
        Some(s)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum TemplatePart {
    Text(String),
    Expr(Expr),
    For {
        pat: Pattern,
        iter: Expr,
        body: Vec<TemplatePart>,
        span: Span,
    },
    If {
        cond: Expr,
        then: Vec<TemplatePart>,
        els: Vec<TemplatePart>,
        span: Span,
    },
}
