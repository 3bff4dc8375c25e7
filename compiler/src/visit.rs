//! A pre-order walk over every expression in a subtree (blocks, clauses and templates
//! included), for passes that only need to find things, like the call graph.

use resyn_grammar::ast::*;

pub fn walk_block(b: &Block, f: &mut impl FnMut(&Expr)) {
    for s in &b.stmts {
        walk_stmt(s, f);
    }
}

pub fn walk_stmt(s: &Stmt, f: &mut impl FnMut(&Expr)) {
    match &s.kind {
        StmtKind::Let { value, .. } | StmtKind::Var { value, .. } => walk_expr(value, f),
        StmtKind::Assign { target, value } => {
            walk_expr(target, f);
            walk_expr(value, f);
        }
        StmtKind::Expr { expr, message }
        | StmtKind::Require {
            cond: expr,
            message,
        } => {
            walk_expr(expr, f);
            if let Some(t) = message {
                walk_template(&t.parts, f);
            }
        }
        StmtKind::For { iter, body, .. } => {
            walk_expr(iter, f);
            walk_block(body, f);
        }
        StmtKind::Witness(e) => walk_expr(e, f),
        StmtKind::Show(bs) | StmtKind::Hide(bs) => {
            for b in bs {
                if let Some(v) = &b.value {
                    walk_expr(v, f);
                }
            }
        }
        StmtKind::Error => {}
    }
}

pub fn walk_template(parts: &[TemplatePart], f: &mut impl FnMut(&Expr)) {
    for p in parts {
        match p {
            TemplatePart::Text(_) => {}
            TemplatePart::Expr(e) => walk_expr(e, f),
            TemplatePart::For { iter, body, .. } => {
                walk_expr(iter, f);
                walk_template(body, f);
            }
            TemplatePart::If {
                cond, then, els, ..
            } => {
                walk_expr(cond, f);
                walk_template(then, f);
                walk_template(els, f);
            }
        }
    }
}

fn walk_clauses(cs: &[Clause], f: &mut impl FnMut(&Expr)) {
    for c in cs {
        match c {
            Clause::For(_, e) | Clause::If(e) => walk_expr(e, f),
        }
    }
}

pub fn walk_expr(e: &Expr, f: &mut impl FnMut(&Expr)) {
    f(e);
    match &e.kind {
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Path(_)
        | ExprKind::Unit
        | ExprKind::Error => {}
        ExprKind::Str(t) => walk_template(&t.parts, f),
        ExprKind::Tuple(v) | ExprKind::List(v) | ExprKind::Call { args: v, .. } => {
            v.iter().for_each(|x| walk_expr(x, f))
        }
        ExprKind::Record(fs) => fs.iter().for_each(|(_, x)| walk_expr(x, f)),
        ExprKind::Comprehension { elem, clauses } => {
            walk_clauses(clauses, f);
            walk_expr(elem, f);
        }
        ExprKind::Quant { clauses, body, .. } => {
            walk_clauses(clauses, f);
            walk_expr(body, f);
        }
        ExprKind::Range { lo, hi, .. } => {
            walk_expr(lo, f);
            walk_expr(hi, f);
        }
        ExprKind::Unary(_, x) | ExprKind::Field(x, _) | ExprKind::TupleField(x, _, _) => {
            walk_expr(x, f)
        }
        ExprKind::Binary(_, a, b) | ExprKind::Index(a, b) => {
            walk_expr(a, f);
            walk_expr(b, f);
        }
        ExprKind::If { cond, then, els } => {
            walk_expr(cond, f);
            walk_block(then, f);
            match els.as_deref() {
                Some(Else::Block(b)) => walk_block(b, f),
                Some(Else::If(x)) => walk_expr(x, f),
                None => {}
            }
        }
    }
}
