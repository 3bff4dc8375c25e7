//! Lowering: checked AST → IR. Runs only on programs the checker accepted, so every name
//! resolves; it assigns frame slots (scoping exactly as the checker does), picks builtins
//! and functions, expands type aliases in the answer's type, and numbers constraints.

use crate::builtins;
use crate::check::EnvSummary;
use crate::ir::*;
use crate::resolve::{FnId, ModId, Unit};
use resyn_grammar::ast::{self, EnvItem, ExprKind, Item, StmtKind, TypeKind};
use std::collections::HashMap;

/// How a block's statements are read (mirrors the checker's roles).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Gen,
    Verify,
    Plain,
}

struct Lowerer<'u> {
    unit: &'u Unit,
    fn_index: HashMap<FnId, FnIdx>,
    module: ModId,
    /// Env-local types (aliases and enums) shadow module ones.
    env_types: HashMap<String, &'u ast::EnvItem>,
    scopes: Vec<Vec<(String, Slot)>>,
    next_slot: Slot,
    max_slot: Slot,
    /// The source name of each slot of the frame being lowered.
    names: Vec<String>,
    /// Generator: instance field index by name.
    field_index: HashMap<String, usize>,
    fields: Vec<Field>,
    constraints: usize,
    constraint_text: Vec<String>,
    sources: &'u crate::source::SourceMap,
    /// `sum` calls over floats, lowered as `float(sum(…))` (see `check::Typed`).
    float_sums: &'u std::collections::HashSet<resyn_grammar::span::Span>,
}

pub fn lower(
    unit: &Unit,
    summaries: &[EnvSummary],
    typed: &crate::check::Typed,
    sources: &crate::source::SourceMap,
) -> Program {
    let fn_types = &typed.fn_types;
    let mut l = Lowerer {
        unit,
        fn_index: HashMap::new(),
        module: 0,
        env_types: HashMap::new(),
        scopes: Vec::new(),
        next_slot: 0,
        max_slot: 0,
        names: Vec::new(),
        field_index: HashMap::new(),
        fields: Vec::new(),
        constraints: 0,
        constraint_text: Vec::new(),
        sources,
        float_sums: &typed.float_sums,
    };
    let mut program = Program::default();
    for (i, f) in unit.fn_order.iter().enumerate() {
        l.fn_index.insert(*f, i);
    }
    for f in &unit.fn_order {
        let mut func = l.lower_fn(*f);
        if let Some((params, ret)) = fn_types.get(f) {
            func.params = params.clone();
            func.ret = ret.clone();
        }
        program.fns.push(func);
    }
    let mut envs = Vec::new();
    for (mid, m) in unit.modules.iter().enumerate() {
        for item in &m.ast.items {
            if let Item::Env(e) = item {
                envs.push((mid, e));
            }
        }
    }
    for (mid, e) in envs {
        let summary = summaries.iter().find(|s| s.name == e.name.name);
        l.module = mid;
        program.envs.push(l.lower_env(e, summary));
    }
    program
}

impl<'u> Lowerer<'u> {
    /// `""` for the user's file, `grid` for `std::grid`.
    fn module_name(&self, m: ModId) -> String {
        let name = &self.unit.modules[m].name;
        name.strip_prefix("std::").unwrap_or("").to_string()
    }

    fn reset_frame(&mut self) {
        self.scopes = vec![Vec::new()];
        self.next_slot = 0;
        self.max_slot = 0;
        self.names.clear();
    }

    fn alloc(&mut self, name: &str) -> Slot {
        let s = self.next_slot;
        self.next_slot += 1;
        self.max_slot = self.max_slot.max(self.next_slot);
        self.names.push(name.to_string());
        self.scopes
            .last_mut()
            .expect("scope")
            .push((name.to_string(), s));
        s
    }

    fn push(&mut self) {
        self.scopes.push(Vec::new());
    }

    /// Slots are not reused after a scope ends: frames stay small and this keeps closures
    /// simple (a slot is written before it is read, in every path).
    fn pop(&mut self) {
        self.scopes.pop();
    }

    fn lookup(&self, name: &str) -> Slot {
        for frame in self.scopes.iter().rev() {
            if let Some((_, s)) = frame.iter().rev().find(|(n, _)| n == name) {
                return *s;
            }
        }
        unreachable!("the checker resolved `{name}`")
    }

    fn lower_fn(&mut self, f: FnId) -> Function {
        let decl = self.unit.fn_decl(f);
        self.module = f.module;
        self.env_types.clear();
        self.reset_frame();
        for (p, _) in &decl.params {
            self.alloc(&p.name);
        }
        let body = self.block(&decl.body, Role::Plain, true);
        Function {
            name: decl.name.name.clone(),
            module: self.module_name(f.module),
            arity: decl.params.len() as u32,
            slots: self.max_slot,
            names: self.names.clone(),
            body,
            params: Vec::new(),
            ret: crate::types::Ty::Unknown,
        }
    }

    fn lower_env(&mut self, env: &'u ast::EnvDecl, summary: Option<&EnvSummary>) -> Env {
        self.env_types.clear();
        for item in &env.items {
            match item {
                EnvItem::TypeAlias(t) => {
                    self.env_types.insert(t.name.name.clone(), item);
                }
                EnvItem::Enum(e) => {
                    self.env_types.insert(e.name.name.clone(), item);
                }
                _ => {}
            }
        }
        let mut category = String::new();
        let mut requirement = Requirement::Solvable;
        let mut scoring = Scoring::All;
        let mut extract = resyn_runtime::ExtractMode::Auto;
        let (mut gen_b, mut answer, mut verify_b, mut prompt_t) = (None, None, None, None);
        let mut params_ast = Vec::new();
        for item in &env.items {
            match item {
                EnvItem::Category(c, _) => category = c.clone(),
                EnvItem::Require(i) if i.name == "unique" => requirement = Requirement::Unique,
                EnvItem::Scoring(i) if i.name == "partial" => scoring = Scoring::Partial,
                EnvItem::Setting(n, v) if n.name == "extract" => {
                    extract = v.name.parse().unwrap_or(extract)
                }
                EnvItem::Gen(b) => gen_b = gen_b.or(Some(b)),
                EnvItem::Answer { name, ty, .. } => answer = answer.or(Some((name, ty))),
                EnvItem::Verify(b) => verify_b = verify_b.or(Some(b)),
                EnvItem::Prompt(t) => prompt_t = prompt_t.or(Some(t)),
                EnvItem::Param(p) => params_ast.push(p),
                _ => {}
            }
        }

        // Params: slot i is param i; each value sees the params before it.
        self.reset_frame();
        let mut params = Vec::new();
        for p in &params_ast {
            let levels = match &p.default.kind {
                ExprKind::Call { callee, args } if callee.to_string_path() == builtins::LEVELS => {
                    args.iter().map(|a| self.expr(a)).collect()
                }
                _ => {
                    let e = self.expr(&p.default);
                    vec![e; 5]
                }
            };
            let domain = match &p.ty.kind {
                TypeKind::Domain(_, d) => Some(self.expr(d)),
                _ => None,
            };
            let ty = summary
                .and_then(|s| s.params.iter().find(|(n, _)| *n == p.name.name))
                .map_or(crate::types::Ty::Unknown, |(_, t)| t.clone());
            params.push(Param {
                name: p.name.name.clone(),
                ty,
                levels,
                domain,
            });
            self.alloc(&p.name.name);
        }
        let param_names: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
        let with_params = |l: &mut Self| {
            l.reset_frame();
            for n in &param_names {
                l.alloc(n);
            }
        };

        // Generator.
        with_params(self);
        self.fields.clear();
        self.field_index.clear();
        let mut has_witness = false;
        let gen = match gen_b {
            Some(b) => {
                let blk = self.block(b, Role::Gen, false);
                has_witness = blk.stmts.iter().any(|s| matches!(s, Stmt::Witness(_)));
                blk
            }
            None => Block::default(),
        };
        let gen_slots = self.max_slot;
        let gen_names = self.names.clone();
        let fields: Vec<Field> = self
            .fields
            .iter()
            .map(|f| {
                let ty = summary
                    .and_then(|s| s.shown.iter().chain(&s.hidden).find(|(n, _)| *n == f.name))
                    .map_or(crate::types::Ty::Unknown, |(_, t)| t.clone());
                Field { ty, ..f.clone() }
            })
            .collect();
        let field_names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();

        // Answer shape: params, then fields.
        with_params(self);
        for n in &field_names {
            self.alloc(n);
        }
        let (answer_name, answer_shape) = match answer {
            Some((name, te)) => (name.name.clone(), self.shape(te, 0)),
            None => (String::new(), ShapeExpr::Unit),
        };
        let answer_slots = self.max_slot;
        let answer_names = self.names.clone();

        // Verify: params, fields, answer.
        with_params(self);
        for n in &field_names {
            self.alloc(n);
        }
        self.alloc(&answer_name);
        self.constraints = 0;
        self.constraint_text.clear();
        let verify = verify_b.map_or_else(Block::default, |b| self.block(b, Role::Verify, false));
        let verify_slots = self.max_slot;
        let verify_names = self.names.clone();

        // Prompt: params, shown fields.
        with_params(self);
        for f in fields.iter().filter(|f| f.shown) {
            self.alloc(&f.name);
        }
        let prompt = prompt_t.map_or_else(Template::default, |t| self.template(&t.parts));
        let prompt_slots = self.max_slot;
        let prompt_names = self.names.clone();

        Env {
            name: env.name.name.clone(),
            span: env.name.span,
            doc: env.doc.clone().unwrap_or_default(),
            category,
            requirement,
            scoring,
            params,
            answer_ty: summary
                .and_then(|s| s.answer.as_ref())
                .map_or(crate::types::Ty::Unknown, |(_, t)| t.clone()),
            fields,
            answer_name,
            gen,
            gen_slots,
            gen_names,
            answer: answer_shape,
            answer_slots,
            answer_names,
            verify,
            verify_slots,
            verify_names,
            prompt,
            prompt_slots,
            prompt_names,
            has_witness,
            extract,
            constraint_text: std::mem::take(&mut self.constraint_text),
        }
    }

    // ------------------------------------------------------------------ types

    fn find_type(&self, name: &str) -> Option<TypeRef<'u>> {
        if let Some(item) = self.env_types.get(name) {
            return match item {
                EnvItem::TypeAlias(t) => Some(TypeRef::Alias(&t.ty)),
                EnvItem::Enum(e) => Some(TypeRef::Enum(e)),
                _ => None,
            };
        }
        let m = &self.unit.modules[self.module];
        match &m.ast.items[*m.types.get(name)?] {
            Item::TypeAlias(t) => Some(TypeRef::Alias(&t.ty)),
            Item::Enum(e) => Some(TypeRef::Enum(e)),
            _ => None,
        }
    }

    fn enum_variant(&self, ty: &str, variant: &str) -> Lit {
        match self.find_type(ty) {
            Some(TypeRef::Enum(e)) => {
                let idx = e
                    .variants
                    .iter()
                    .position(|v| v.name == variant)
                    .unwrap_or(0);
                Lit::Enum(idx as u32, variant.to_string())
            }
            _ => unreachable!("the checker resolved `{ty}::{variant}`"),
        }
    }

    fn shape(&mut self, t: &'u ast::TypeExpr, depth: usize) -> ShapeExpr {
        if depth > 64 {
            return ShapeExpr::Unit; // alias cycles were rejected by the checker
        }
        match &t.kind {
            TypeKind::Error | TypeKind::Unit => ShapeExpr::Unit,
            TypeKind::Tuple(ts) => {
                ShapeExpr::Tuple(ts.iter().map(|t| self.shape(t, depth + 1)).collect())
            }
            TypeKind::Record(fs) => {
                let mut v: Vec<(String, ShapeExpr)> = fs
                    .iter()
                    .map(|(n, t)| (n.name.clone(), self.shape(t, depth + 1)))
                    .collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                ShapeExpr::Record(v)
            }
            TypeKind::List(e, len) => {
                let len = match len {
                    ast::ListLen::Any => LenExpr::Any,
                    ast::ListLen::Exact(n) => LenExpr::Exact(self.expr(n)),
                    ast::ListLen::AtMost(n) => LenExpr::AtMost(self.expr(n)),
                };
                ShapeExpr::List(Box::new(self.shape(e, depth + 1)), len)
            }
            TypeKind::Domain(base, dom) => {
                ShapeExpr::In(Box::new(self.shape(base, depth + 1)), self.expr(dom))
            }
            TypeKind::Named(path, args) => match path.to_string_path().as_str() {
                "int" => ShapeExpr::Int,
                "bool" => ShapeExpr::Bool,
                "float" => ShapeExpr::Float,
                "string" => ShapeExpr::Str,
                "set" => ShapeExpr::Set(Box::new(self.shape(&args[0], depth + 1))),
                "map" => ShapeExpr::Map(
                    Box::new(self.shape(&args[0], depth + 1)),
                    Box::new(self.shape(&args[1], depth + 1)),
                ),
                name => match self.find_type(name) {
                    Some(TypeRef::Enum(e)) => {
                        ShapeExpr::Enum(e.variants.iter().map(|v| v.name.clone()).collect())
                    }
                    Some(TypeRef::Alias(te)) => self.shape(te, depth + 1),
                    None => ShapeExpr::Unit,
                },
            },
        }
    }

    // ------------------------------------------------------------------ statements

    fn block(&mut self, b: &ast::Block, role: Role, want_value: bool) -> Block {
        self.push();
        let mut out = Block::default();
        let n = b.stmts.len();
        for (i, s) in b.stmts.iter().enumerate() {
            let is_value = want_value && i + 1 == n;
            if is_value {
                if let StmtKind::Expr { expr, .. } = &s.kind {
                    out.value = Some(Box::new(self.expr(expr)));
                    continue;
                }
            }
            self.stmt(s, role, &mut out.stmts);
        }
        self.pop();
        out
    }

    fn pattern(&mut self, p: &ast::Pattern) -> Pattern {
        match &p.kind {
            ast::PatternKind::Wildcard => Pattern::Wild,
            ast::PatternKind::Bind(i) => Pattern::Bind(self.alloc(&i.name)),
            ast::PatternKind::Tuple(ps) => {
                Pattern::Tuple(ps.iter().map(|p| self.pattern(p)).collect())
            }
        }
    }

    fn stmt(&mut self, s: &ast::Stmt, role: Role, out: &mut Vec<Stmt>) {
        match &s.kind {
            StmtKind::Error => {}
            StmtKind::Let { pat, value, .. } => {
                let v = self.expr(value);
                let p = self.pattern(pat);
                out.push(Stmt::Let(p, v));
            }
            StmtKind::Var { name, value, .. } => {
                let v = self.expr(value);
                let slot = self.alloc(&name.name);
                out.push(Stmt::Let(Pattern::Bind(slot), v));
            }
            StmtKind::Assign { target, value } => {
                let mut path = Vec::new();
                let mut root = target;
                loop {
                    match &root.kind {
                        ExprKind::Index(a, i) => {
                            path.push(Access::Index(self.expr(i), root.span));
                            root = a;
                        }
                        ExprKind::Field(a, f) => {
                            path.push(Access::Field(f.name.clone()));
                            root = a;
                        }
                        ExprKind::TupleField(a, i, _) => {
                            path.push(Access::TupleField(*i as usize));
                            root = a;
                        }
                        _ => break,
                    }
                }
                path.reverse();
                let slot = match &root.kind {
                    ExprKind::Path(p) => self.lookup(&p.segments[0].name),
                    _ => unreachable!("the checker rejected this assignment target"),
                };
                let v = self.expr(value);
                out.push(Stmt::Assign(slot, path, v));
            }
            StmtKind::For { pat, iter, body } => {
                let it = self.expr(iter);
                self.push();
                let p = self.pattern(pat);
                let b = self.block(body, role, false);
                self.pop();
                out.push(Stmt::For(p, it, b));
            }
            StmtKind::Require { cond, message } => {
                let c = self.expr(cond);
                let m = message.as_ref().map(|t| self.template(&t.parts));
                out.push(Stmt::Require {
                    cond: c,
                    message: m,
                    span: s.span,
                });
            }
            StmtKind::Witness(e) => {
                let e = self.expr(e);
                out.push(Stmt::Witness(e));
            }
            StmtKind::Show(bs) | StmtKind::Hide(bs) => {
                let shown = matches!(s.kind, StmtKind::Show(_));
                for b in bs {
                    let v = match &b.value {
                        Some(v) => self.expr(v),
                        None => Expr::Local(self.lookup(&b.name.name)),
                    };
                    let idx = self.fields.len();
                    self.fields.push(Field {
                        name: b.name.name.clone(),
                        shown,
                        ty: crate::types::Ty::Unknown,
                    });
                    self.field_index.insert(b.name.name.clone(), idx);
                    out.push(Stmt::Set(idx, v));
                }
            }
            StmtKind::Expr { expr, message } => {
                if let ExprKind::If { cond, then, els } = &expr.kind {
                    out.push(self.if_stmt(cond, then, els.as_deref(), role));
                    return;
                }
                if role != Role::Verify {
                    out.push(Stmt::Eval(self.expr(expr)));
                    return;
                }
                // A constraint; with a message, its leading `forall`s become binders.
                let mut binders = Vec::new();
                let mut e = expr;
                let mut pushed = 0;
                if message.is_some() {
                    while let ExprKind::Quant {
                        q: ast::Quantifier::Forall,
                        clauses,
                        body,
                    } = &e.kind
                    {
                        self.push();
                        pushed += 1;
                        binders.extend(self.clauses(clauses));
                        e = body;
                    }
                }
                let cond = self.expr(e);
                let message = message.as_ref().map(|t| self.template(&t.parts));
                for _ in 0..pushed {
                    self.pop();
                }
                let id = self.constraints;
                self.constraints += 1;
                let text = &self.sources.get(expr.span.file).text;
                let snippet = text
                    .get(expr.span.range())
                    .unwrap_or("")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                self.constraint_text.push(snippet);
                out.push(Stmt::Constraint {
                    id,
                    binders,
                    cond,
                    message,
                    span: expr.span,
                });
            }
        }
    }

    fn if_stmt(
        &mut self,
        cond: &ast::Expr,
        then: &ast::Block,
        els: Option<&ast::Else>,
        role: Role,
    ) -> Stmt {
        let c = self.expr(cond);
        let t = self.block(then, role, false);
        let e = match els {
            None => None,
            Some(ast::Else::Block(b)) => Some(self.block(b, role, false)),
            Some(ast::Else::If(x)) => match &x.kind {
                ExprKind::If { cond, then, els } => {
                    let inner = self.if_stmt(cond, then, els.as_deref(), role);
                    Some(Block {
                        stmts: vec![inner],
                        value: None,
                    })
                }
                _ => None,
            },
        };
        Stmt::If(c, t, e)
    }

    fn clauses(&mut self, cs: &[ast::Clause]) -> Vec<Clause> {
        cs.iter()
            .map(|c| match c {
                ast::Clause::For(p, e) => {
                    let e = self.expr(e);
                    Clause::For(self.pattern(p), e)
                }
                ast::Clause::If(e) => Clause::If(self.expr(e)),
            })
            .collect()
    }

    fn template(&mut self, parts: &[ast::TemplatePart]) -> Template {
        Template {
            parts: self.template_parts(parts),
        }
    }

    fn template_parts(&mut self, parts: &[ast::TemplatePart]) -> Vec<TemplatePart> {
        parts
            .iter()
            .map(|p| match p {
                ast::TemplatePart::Text(t) => TemplatePart::Text(t.clone()),
                ast::TemplatePart::Expr(e) => TemplatePart::Expr(self.expr(e)),
                ast::TemplatePart::For {
                    pat, iter, body, ..
                } => {
                    let it = self.expr(iter);
                    self.push();
                    let p = self.pattern(pat);
                    let b = self.template_parts(body);
                    self.pop();
                    TemplatePart::For(p, it, b)
                }
                ast::TemplatePart::If {
                    cond, then, els, ..
                } => {
                    let c = self.expr(cond);
                    TemplatePart::If(c, self.template_parts(then), self.template_parts(els))
                }
            })
            .collect()
    }

    // ------------------------------------------------------------------ expressions

    fn boxed(&mut self, e: &ast::Expr) -> Box<Expr> {
        Box::new(self.expr(e))
    }

    fn expr(&mut self, e: &ast::Expr) -> Expr {
        match &e.kind {
            ExprKind::Error => Expr::Lit(Lit::Unit),
            ExprKind::Int(i) => Expr::Lit(Lit::Int(*i)),
            ExprKind::Float(f) => Expr::Lit(Lit::Float(*f)),
            ExprKind::Bool(b) => Expr::Lit(Lit::Bool(*b)),
            ExprKind::Unit => Expr::Lit(Lit::Unit),
            ExprKind::Str(t) => match t.as_plain() {
                Some(s) => Expr::Lit(Lit::Str(s)),
                None => Expr::Str(self.template(&t.parts)),
            },
            ExprKind::Path(p) => match p.segments.as_slice() {
                [one] => Expr::Local(self.lookup(&one.name)),
                [ty, v] => Expr::Lit(self.enum_variant(&ty.name, &v.name)),
                _ => unreachable!("the checker rejected long paths"),
            },
            ExprKind::Tuple(v) => Expr::Tuple(v.iter().map(|x| self.expr(x)).collect()),
            ExprKind::List(v) => Expr::List(v.iter().map(|x| self.expr(x)).collect()),
            ExprKind::Record(fs) => {
                // Written order: the order of evaluation (spec §10.2). Each back end
                // orders the built record by field name.
                Expr::Record(
                    fs.iter()
                        .map(|(n, x)| (n.name.clone(), self.expr(x)))
                        .collect(),
                )
            }
            ExprKind::Comprehension { elem, clauses } => {
                self.push();
                let cs = self.clauses(clauses);
                let el = self.boxed(elem);
                self.pop();
                Expr::Comprehension(cs, el)
            }
            ExprKind::Quant { q, clauses, body } => {
                self.push();
                let cs = self.clauses(clauses);
                let b = self.boxed(body);
                self.pop();
                Expr::Quant {
                    forall: *q == ast::Quantifier::Forall,
                    clauses: cs,
                    body: b,
                }
            }
            ExprKind::Range { lo, hi, inclusive } => Expr::Range {
                lo: self.boxed(lo),
                hi: self.boxed(hi),
                inclusive: *inclusive,
            },
            ExprKind::Unary(op, x) => Expr::Unary(*op, self.boxed(x)),
            ExprKind::Binary(op, a, b) => Expr::Binary(*op, self.boxed(a), self.boxed(b), e.span),
            ExprKind::Call { callee, args } => {
                let args: Vec<Expr> = args.iter().map(|a| self.expr(a)).collect();
                match self.unit.resolve_fn(self.module, callee) {
                    Some(f) => Expr::Call(Callee::Fn(self.fn_index[&f]), args, e.span),
                    None => {
                        let name = callee.to_string_path();
                        let b = builtins::PURE
                            .iter()
                            .chain(builtins::RANDOM)
                            .find(|b| **b == name)
                            .copied()
                            .unwrap_or("len");
                        let call = Expr::Call(Callee::Builtin(b), args, e.span);
                        if self.float_sums.contains(&e.span) {
                            Expr::Call(Callee::Builtin("float"), vec![call], e.span)
                        } else {
                            call
                        }
                    }
                }
            }
            ExprKind::Index(a, i) => Expr::Index(self.boxed(a), self.boxed(i), e.span),
            ExprKind::Field(a, f) => Expr::Field(self.boxed(a), f.name.clone()),
            ExprKind::TupleField(a, i, _) => Expr::TupleField(self.boxed(a), *i as usize),
            ExprKind::If { cond, then, els } => {
                let c = self.boxed(cond);
                let t = self.block(then, Role::Plain, true);
                let e = match els.as_deref() {
                    None => None,
                    Some(ast::Else::Block(b)) => Some(self.block(b, Role::Plain, true)),
                    Some(ast::Else::If(x)) => Some(Block {
                        stmts: vec![],
                        value: Some(self.boxed(x)),
                    }),
                };
                Expr::If(c, t, e)
            }
        }
    }
}

enum TypeRef<'u> {
    Alias(&'u ast::TypeExpr),
    Enum(&'u ast::EnumDecl),
}
