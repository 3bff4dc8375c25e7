//! The parser driver: runs the lalrpop tables over the lexer's tokens, turns syntax errors
//! into diagnostics, parses string templates, and caps expression depth. Parsing never
//! fails: it returns an AST (possibly with `Error` nodes) plus diagnostics.

use crate::ast::*;
use crate::diag::Diagnostic;
use crate::grammar::StartParser;
use crate::lexer::{self, LexErrorKind, Spanned, Token};
use crate::span::{FileId, Span};
use lalrpop_util::{ErrorRecovery, ParseError};

/// Deepest expression tree accepted (operator chains like `1+1+…` have no brackets to
/// count, so the parser measures height as it builds). Later passes recurse on the tree.
pub const MAX_EXPR_DEPTH: u32 = 256;

/// What the single start symbol produced, chosen by a marker token.
pub enum Parsed {
    File(SourceFile),
    Expr(Expr),
    ForHeader(Pattern, Expr),
}

/// Shared state of one parse: the file, its text, and the diagnostics so far.
pub struct Ctx<'input> {
    pub file: FileId,
    pub src: &'input str,
    pub diagnostics: Vec<Diagnostic>,
    /// Byte offset of the token slice being parsed inside `src` (non-zero for templates).
    base: usize,
    depth_reported: bool,
    /// See `Lexed::unclosed_at_newline` (offsets in the file).
    unclosed_at_newline: Vec<(usize, usize)>,
    /// Starts of `9223372036854775808` literals not (yet) negated.
    pending_min: Vec<u32>,
    /// (code, start, end) of every syntax error so far, to report each position once.
    reported: std::collections::HashSet<(&'static str, u32, u32)>,
    /// Ends of lexical errors (E0001, E0002): a syntax error right after one is its echo.
    lex_error_ends: std::collections::BTreeSet<usize>,
    /// After "unexpected end of line" at `.0`, the following line ends at `.1`.
    eol_window: Option<(usize, usize)>,
}

pub struct ParseOutput {
    pub file: SourceFile,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses one source file. Never panics on any input; always returns an AST.
pub fn parse_file(src: &str, file: FileId) -> ParseOutput {
    let lexed = lexer::lex(src, file, false);
    let lex_ends = lex_error_ends(&lexed.diagnostics).collect();
    let mut ctx = Ctx {
        file,
        src,
        diagnostics: lexed.diagnostics,
        base: 0,
        depth_reported: false,
        pending_min: Vec::new(),
        unclosed_at_newline: lexed.unclosed_at_newline,
        reported: Default::default(),
        lex_error_ends: lex_ends,
        eol_window: None,
    };
    let fatal = lexed.fatal;
    let result = StartParser::new().parse(&mut ctx, lexed.tokens);
    let ast = match result {
        Ok(Parsed::File(f)) => f,
        Ok(_) => SourceFile::default(),
        Err(e) => {
            if !fatal {
                let d = ctx.syntax_error(e);
                ctx.push_syntax(d);
            }
            SourceFile::default()
        }
    };
    for at in std::mem::take(&mut ctx.pending_min) {
        let span = Span::new(file, at as usize, at as usize + 19);
        ctx.diagnostics.push(
            Diagnostic::new(
                "E0004",
                span,
                "integer literal `9223372036854775808` is too large",
            )
            .with_label("does not fit in 64 bits")
            .with_help(format!(
                "integers are 64-bit: at most {}; only `-9223372036854775808` is allowed",
                i64::MAX
            )),
        );
    }
    if fatal {
        // The token stream was cut at the nesting limit; syntax errors after it are noise.
        ctx.diagnostics
            .retain(|d| !matches!(d.code, "E0010" | "E0011"));
    }
    if ctx.diagnostics.iter().any(|d| d.code == "E0010") {
        // After an earlier syntax error, recovery may have consumed the very brackets the
        // end of the file finds missing.
        ctx.diagnostics.retain(|d| d.code != "E0011");
    }
    ParseOutput {
        file: ast,
        diagnostics: ctx.diagnostics,
    }
}

impl<'input> Ctx<'input> {
    pub fn span(&self, l: usize, r: usize) -> Span {
        Span::new(self.file, self.base + l, self.base + r)
    }

    pub fn ident(&self, s: &str, l: usize, r: usize) -> Ident {
        Ident {
            name: s.to_string(),
            span: self.span(l, r),
        }
    }

    pub fn doc(&self, lines: &[&str]) -> String {
        let mut out = String::new();
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let l = l.strip_prefix("///").unwrap_or(l);
            out.push_str(l.strip_prefix(' ').unwrap_or(l).trim_end());
        }
        out
    }

    pub fn expr(&mut self, kind: ExprKind, l: usize, r: usize) -> Expr {
        let span = self.span(l, r);
        let depth = 1 + child_depth(&kind);
        if depth > MAX_EXPR_DEPTH {
            if !self.depth_reported {
                self.depth_reported = true;
                // Point at where the limit was crossed, not at the whole (huge) expression.
                let at = Span {
                    start: span.end.saturating_sub(1).max(span.start),
                    ..span
                };
                self.diagnostics.push(
                    Diagnostic::new("E0003", at, "expression nested too deeply")
                        .with_label(format!("deeper than {MAX_EXPR_DEPTH} levels"))
                        .with_help(
                            "split it into named parts with `let`, or use `sum`/`all` over a list",
                        ),
                );
            }
            // Dropping the shallow children here keeps every tree (and its Drop) bounded.
            return Expr {
                kind: ExprKind::Error,
                span,
                depth: 1,
            };
        }
        Expr { kind, span, depth }
    }

    pub fn binary(&mut self, op: BinOp, a: Expr, b: Expr, l: usize, r: usize) -> Expr {
        self.expr(ExprKind::Binary(op, Box::new(a), Box::new(b)), l, r)
    }

    /// `-` applied to a literal folds into it, so `-9223372036854775808` is representable.
    pub fn neg(&mut self, e: Expr, l: usize, r: usize) -> Expr {
        if matches!(e.kind, ExprKind::Int(i64::MIN))
            && self.pending_min.last() == Some(&e.span.start)
        {
            // `-9223372036854775808`: the literal 2^63 negated is i64::MIN itself.
            self.pending_min.pop();
            return self.expr(ExprKind::Int(i64::MIN), l, r);
        }
        match e.kind {
            // Fold only when the negation is exact; otherwise evaluation reports the overflow.
            ExprKind::Int(v) if v.checked_neg().is_some() => self.expr(ExprKind::Int(-v), l, r),
            ExprKind::Float(v) => self.expr(ExprKind::Float(-v), l, r),
            _ => self.expr(ExprKind::Unary(UnOp::Neg, Box::new(e)), l, r),
        }
    }

    pub fn int(&mut self, s: &str, l: usize, r: usize) -> Expr {
        let digits: String = s.chars().filter(|c| *c != '_').collect();
        // Parsed as u64 so that the literal 9223372036854775808 can be negated (see `neg`).
        let v = match digits.parse::<u64>() {
            Ok(v) if v <= i64::MAX as u64 => v as i64,
            Ok(v) if v == i64::MAX as u64 + 1 => {
                // Only valid as the operand of `-`; `neg` clears it, `finish` reports the rest.
                self.pending_min.push(self.base as u32 + l as u32);
                i64::MIN
            }
            _ => {
                self.diagnostics.push(
                    Diagnostic::new(
                        "E0004",
                        self.span(l, r),
                        format!("integer literal `{s}` is too large"),
                    )
                    .with_label("does not fit in 64 bits")
                    .with_help(format!("integers are 64-bit: at most {}", i64::MAX)),
                );
                0
            }
        };
        self.expr(ExprKind::Int(v), l, r)
    }

    pub fn float(&mut self, s: &str, l: usize, r: usize) -> Expr {
        let digits: String = s.chars().filter(|c| *c != '_').collect();
        let v = digits.parse::<f64>().unwrap_or(f64::NAN);
        if !v.is_finite() {
            self.diagnostics.push(
                Diagnostic::new(
                    "E0004",
                    self.span(l, r),
                    format!("float literal `{s}` is out of range"),
                )
                .with_label("not a finite 64-bit float")
                .with_help("write a smaller number"),
            );
        }
        self.expr(ExprKind::Float(if v.is_finite() { v } else { 0.0 }), l, r)
    }

    /// `t.0.1`: the lexer sees the float `0.1`; it means `(t.0).1`.
    pub fn tuple_field_pair(&mut self, a: Expr, f: &str, il: usize, l: usize, r: usize) -> Expr {
        let Some((x, y)) = f.split_once('.').filter(|(x, y)| {
            x.bytes().all(|b| b.is_ascii_digit()) && y.bytes().all(|b| b.is_ascii_digit())
        }) else {
            self.diagnostics.push(
                Diagnostic::new(
                    "E0010",
                    self.span(il, r),
                    format!("unexpected number `{f}`"),
                )
                .with_label("expected a tuple index or field name")
                .with_help("tuple elements are `.0`, `.1`, …"),
            );
            return self.expr(ExprKind::Error, l, r);
        };
        let mid = il + x.len();
        let inner = self.tuple_field(a, x, il, l, mid);
        self.tuple_field(inner, y, mid + 1, l, r)
    }

    pub fn category(&mut self, t: Template, l: usize, r: usize) -> EnvItem {
        let text = t.as_plain().unwrap_or_else(|| {
            self.diagnostics.push(
                Diagnostic::new("E0006", t.span, "a category must be plain text")
                    .with_label("interpolation is not allowed here")
                    .with_help("write the category as a word or a string without `{…}`"),
            );
            String::new()
        });
        EnvItem::Category(text, self.span(l, r))
    }

    pub fn tuple_field(&mut self, a: Expr, i: &str, il: usize, l: usize, r: usize) -> Expr {
        let idx = i.parse::<u32>().unwrap_or(u32::MAX);
        let fspan = self.span(il, r);
        self.expr(ExprKind::TupleField(Box::new(a), idx, fspan), l, r)
    }

    /// `param n: T` without `= value`: reported, and the param stays declared.
    pub fn missing_param_value(&mut self, name: &Ident, r: usize) -> Expr {
        self.diagnostics.push(
            Diagnostic::new("E0010", name.span, format!("param `{}` has no value", name.name))
                .with_label("a param needs a value")
                .with_help(format!(
                    "write `param {}: T = value`, or `= levels(v1, v2, v3, v4, v5)` for one value per difficulty level",
                    name.name
                )),
        );
        self.expr(ExprKind::Error, r, r)
    }

    /// A line break (or `;`) between two record fields.
    pub fn missing_comma(&mut self, l: usize, r: usize) {
        let d = if l == r {
            Diagnostic::new(
                "E0010",
                self.span(l, r),
                "missing `,` between record fields",
            )
            .with_label("the line ends here without a `,`")
            .with_help(
                "record fields are separated by `,`, also across lines: end this line with `,`",
            )
        } else {
            Diagnostic::new(
                "E0010",
                self.span(l, r),
                "record fields are separated by `,`, not `;`",
            )
            .with_label("expected `,`")
            .with_help("replace the `;` with `,`")
        };
        self.push_syntax(d);
    }

    pub fn recover(&mut self, e: ErrorRecovery<usize, Token<'input>, LexErrorKind>) {
        let d = self.syntax_error(e.error);
        self.push_syntax(d);
    }

    fn push_syntax(&mut self, d: Diagnostic) {
        // One report per position: recovery may revisit the same token.
        if !self.reported.insert((d.code, d.span.start, d.span.end)) {
            return;
        }
        let start = d.span.start as usize;
        // A syntax error right after a lexical error echoes it: the bad text was dropped.
        // Only the nearest one can be separated by whitespace alone.
        if let Some(&from) = self.lex_error_ends.range(..=start).next_back() {
            if self
                .src
                .get(from..start)
                .is_some_and(|gap| gap.trim().is_empty())
            {
                return;
            }
        }
        // After "unexpected end of line", the next line was parsed out of context: its
        // errors are echoes of the first one.
        if let Some((at, line_end)) = self.eol_window {
            if at < start && start <= line_end {
                return;
            }
        }
        if d.code == "E0010" && d.message == END_OF_LINE {
            let next_end = |from: usize| {
                self.src
                    .get(from..)
                    .and_then(|t| t.find('\n'))
                    .map_or(self.src.len(), |i| from + i)
            };
            self.eol_window = Some((start, next_end(next_end(start) + 1)));
        }
        self.diagnostics.push(d);
    }

    fn syntax_error(&self, e: ParseError<usize, Token<'input>, LexErrorKind>) -> Diagnostic {
        match e {
            ParseError::UnrecognizedEof { location, expected } => {
                let at = self.src.len().min(self.base + location) - self.base;
                let exp = |s: &str| expected.iter().any(|e| e == s);
                let label = match ["\"}\"", "\")\"", "\"]\""].into_iter().find(|c| exp(c)) {
                    Some(c) => format!("a `{}` is missing here", c.trim_matches('"')),
                    None => format!("expected {}", describe_expected(&expected)),
                };
                if self.base != 0 {
                    // Inside a template's `{…}`: the interpolation ends, not the file.
                    return Diagnostic::new("E0010", self.span(at, at), "the interpolation ends in the middle of an expression")
                        .with_label(format!("expected {}", describe_expected(&expected)))
                        .with_help("complete the expression before the closing `}`, or write `{{` and `}}` for literal braces");
                }
                Diagnostic::new("E0011", self.span(at, at), "unexpected end of file")
                    .with_label(label)
                    .with_help(
                        "the file ends in the middle of something: close every `{`, `(` and `[`",
                    )
            }
            ParseError::UnrecognizedToken {
                token: (l, tok, r), ..
            }
            | ParseError::ExtraToken { token: (l, tok, r) }
                if matches!(tok, Token::Semi) && l == r =>
            {
                let label = match &e {
                    ParseError::UnrecognizedToken { expected, .. } => {
                        format!(
                            "the line ends here, but {} was expected",
                            describe_expected(expected)
                        )
                    }
                    _ => "the line ends here, but the construct is not complete".to_string(),
                };
                Diagnostic::new("E0010", self.span(l, r), END_OF_LINE)
                    .with_label(label)
                    .with_help(
                        "a newline ends a statement; to continue on the next line, end this \
                         line with an operator or wrap the expression in parentheses",
                    )
            }
            ParseError::UnrecognizedToken {
                token: (l, tok, r),
                expected,
            } => {
                let mut d = Diagnostic::new("E0010", self.span(l, r), format!("unexpected {tok}"));
                // First token of a line that an unclosed `(`/`[` joined to the previous one?
                let at = self.base + l;
                // Entries are in source order: only the nearest newline before `at` can be
                // separated from it by whitespace alone (binary search keeps errors O(log n)).
                let idx = self.unclosed_at_newline.partition_point(|(nl, _)| *nl < at);
                let unclosed = idx
                    .checked_sub(1)
                    .map(|i| &self.unclosed_at_newline[i])
                    .filter(|(nl, _)| self.src.get(*nl..at).is_some_and(|t| t.trim().is_empty()));
                match unclosed {
                    Some(&(_, open)) if self.base == 0 => {
                        let b = &self.src[open..open + 1];
                        d = d
                            .with_label(format!("this line still continues the `{b}` opened earlier"))
                            .with_secondary(Span::new(self.file, open, open + 1), format!("this `{b}` is never closed"))
                            .with_help(format!(
                                "close the `{b}` where the expression ends; inside `(…)` and `[…]` a line break does not end a statement"
                            ));
                    }
                    _ if matches!(tok, Token::Eq) && expected.iter().any(|e| e == "\"==\"") => {
                        d = d.with_label("`=` is not a comparison");
                        d.help = Some(token_help(&tok, &expected));
                    }
                    _ => {
                        d = d.with_label(format!("expected {}", describe_expected(&expected)));
                        d.help = Some(token_help(&tok, &expected));
                    }
                }
                d
            }
            ParseError::ExtraToken { token: (l, tok, r) } => {
                Diagnostic::new("E0010", self.span(l, r), format!("unexpected {tok}"))
                    .with_label("nothing more was expected here")
                    .with_help("remove it")
            }
            ParseError::InvalidToken { location } => {
                Diagnostic::new("E0001", self.span(location, location), "invalid token")
                    .with_help("remove it")
            }
            ParseError::User { error } => {
                Diagnostic::new("E0001", self.span(0, 0), format!("lexer error: {error:?}"))
                    .with_help("remove it")
            }
        }
    }

    /// Parses a string literal token (with its quotes) into a template.
    pub fn template(&mut self, raw: &'input str, l: usize, r: usize) -> Template {
        let span = self.span(l, r);
        let triple = raw.starts_with("\"\"\"") && raw.len() >= 6;
        let q = if triple { 3 } else { 1 };
        let inner_start = l + q;
        let inner = &raw[q..raw.len().saturating_sub(q).max(q)];
        let indent = if triple { common_indent(inner) } else { 0 };
        let mut tp = TemplateParser {
            ctx: self,
            text: inner,
            base: inner_start,
            pos: 0,
            indent,
            triple,
        };
        if triple {
            // Skip a first line that holds only whitespace (the newline after `"""`).
            if let Some(nl) = inner.find('\n') {
                if inner[..nl].trim().is_empty() {
                    tp.pos = nl + 1;
                    tp.skip_indent();
                }
            }
        }
        let (parts, stop) = tp.parse_parts();
        if let Some((what, sp)) = stop {
            self.diagnostics.push(
                Diagnostic::new(
                    "E0006",
                    sp,
                    format!("`{{{what}}}` without a matching `{{for …}}` or `{{if …}}`"),
                )
                .with_label("nothing to close here")
                .with_help("remove it, or open the block it ends"),
            );
        }
        let mut parts = parts;
        if triple {
            // Drop the trailing newline + indentation before the closing `"""`.
            if let Some(TemplatePart::Text(t)) = parts.last_mut() {
                if let Some(nl) = t.rfind('\n') {
                    if t[nl + 1..].trim().is_empty() {
                        t.truncate(nl);
                    }
                }
                if t.is_empty() {
                    parts.pop();
                }
            }
        }
        Template { parts, span }
    }

    /// Parses a piece of the source (inside a template) with one of the entry points.
    fn parse_fragment(&mut self, start: Token<'input>, lo: usize, hi: usize) -> Option<Parsed> {
        let frag = &self.src[lo..hi];
        let lexed = lexer::lex(frag, self.file, true);
        let mut tokens: Vec<Spanned<'input>> = Vec::with_capacity(lexed.tokens.len() + 1);
        tokens.push((0, start, 0));
        tokens.extend(lexed.tokens);
        let saved = self.base;
        for mut d in lexed.diagnostics {
            d.span.start += lo as u32;
            d.span.end += lo as u32;
            self.lex_error_ends
                .extend(lex_error_ends(std::slice::from_ref(&d)));
            self.diagnostics.push(d);
        }
        if lexed.fatal {
            return None;
        }
        self.base = lo;
        let res = StartParser::new().parse(self, tokens);
        let out = match res {
            Ok(p) => Some(p),
            Err(e) => {
                let d = self.syntax_error(e);
                self.push_syntax(d);
                None
            }
        };
        self.base = saved;
        out
    }
}

fn child_depth(kind: &ExprKind) -> u32 {
    fn m<'a>(it: impl IntoIterator<Item = &'a Expr>) -> u32 {
        it.into_iter().map(|e| e.depth).max().unwrap_or(0)
    }
    fn clauses(cs: &[Clause]) -> u32 {
        cs.iter()
            .map(|c| match c {
                Clause::For(_, e) | Clause::If(e) => e.depth,
            })
            .max()
            .unwrap_or(0)
    }
    match kind {
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Path(_)
        | ExprKind::Unit
        | ExprKind::Error => 0,
        ExprKind::Str(t) => template_depth(&t.parts),
        ExprKind::Tuple(v) | ExprKind::List(v) => m(v),
        ExprKind::Record(fs) => m(fs.iter().map(|(_, e)| e)),
        ExprKind::Comprehension { elem, clauses: cs } => elem.depth.max(clauses(cs)),
        ExprKind::Quant {
            clauses: cs, body, ..
        } => body.depth.max(clauses(cs)),
        ExprKind::Range { lo, hi, .. } => lo.depth.max(hi.depth),
        ExprKind::Unary(_, e) | ExprKind::Field(e, _) | ExprKind::TupleField(e, _, _) => e.depth,
        ExprKind::Binary(_, a, b) | ExprKind::Index(a, b) => a.depth.max(b.depth),
        ExprKind::Call { args, .. } => m(args),
        ExprKind::If { cond, then, els } => {
            let e = match els.as_deref() {
                None => 0,
                Some(Else::Block(b)) => block_depth(b),
                Some(Else::If(e)) => e.depth,
            };
            cond.depth.max(block_depth(then)).max(e)
        }
    }
}

/// Statement blocks count toward depth too: `1 + if c { 1 + if … }` must stay bounded.
fn block_depth(b: &Block) -> u32 {
    b.stmts
        .iter()
        .map(|s| match &s.kind {
            StmtKind::Let { value, .. } | StmtKind::Var { value, .. } => value.depth,
            StmtKind::Assign { target, value } => target.depth.max(value.depth),
            StmtKind::Expr { expr, .. } => expr.depth,
            StmtKind::For { iter, body, .. } => iter.depth.max(block_depth(body)),
            StmtKind::Require { cond, .. } => cond.depth,
            StmtKind::Witness(e) => e.depth,
            StmtKind::Show(bs) | StmtKind::Hide(bs) => bs
                .iter()
                .filter_map(|b| b.value.as_ref())
                .map(|e| e.depth)
                .max()
                .unwrap_or(0),
            StmtKind::Error => 0,
        })
        .max()
        .unwrap_or(0)
        + 1
}

fn template_depth(parts: &[TemplatePart]) -> u32 {
    parts
        .iter()
        .map(|p| match p {
            TemplatePart::Text(_) => 0,
            TemplatePart::Expr(e) => e.depth,
            TemplatePart::For { iter, body, .. } => iter.depth.max(template_depth(body)),
            TemplatePart::If {
                cond, then, els, ..
            } => cond
                .depth
                .max(template_depth(then))
                .max(template_depth(els)),
        })
        .max()
        .unwrap_or(0)
}

/// Smallest indentation of the non-blank lines after the first line break.
fn common_indent(s: &str) -> usize {
    s.split('\n')
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0)
}

const END_OF_LINE: &str = "unexpected end of line";

/// Where the lexical errors among `diags` end.
fn lex_error_ends(diags: &[Diagnostic]) -> impl Iterator<Item = usize> + '_ {
    diags
        .iter()
        .filter(|d| matches!(d.code, "E0001" | "E0002"))
        .map(|d| d.span.end as usize)
}

/// Tokens that can start an expression, and those that can only start a statement.
const EXPR_START: &[&str] = &[
    "INT",
    "FLOAT",
    "STR",
    "IDENT",
    "\"(\"",
    "\"[\"",
    "\"{\"",
    "\"if\"",
    "\"not\"",
    "\"true\"",
    "\"false\"",
    "\"-\"",
    "\"forall\"",
    "\"exists\"",
];
const STMT_START: &[&str] = &[
    "\"let\"",
    "\"var\"",
    "\"for\"",
    "\"require\"",
    "\"witness\"",
    "\"show\"",
    "\"hide\"",
];

fn describe_expected(expected: &[String]) -> String {
    let has = |s: &str| expected.iter().any(|e| e == s);
    // Summarize the long lists: where an expression (or a statement) may start, say so.
    let (summary, skip): (Option<&str>, &[&[&str]]) = if has("\"let\"") && has("INT") {
        (Some("a statement"), &[EXPR_START, STMT_START])
    } else if has("INT") && has("IDENT") {
        (Some("an expression"), &[EXPR_START])
    } else {
        (None, &[])
    };
    let mut names: Vec<String> = summary.map(str::to_string).into_iter().collect();
    names.extend(
        expected
            .iter()
            .filter(|e| {
                !e.starts_with("START_") && !skip.iter().any(|set| set.contains(&e.as_str()))
            })
            .map(|e| match e.as_str() {
                "IDENT" => "a name".to_string(),
                "INT" => "an integer".to_string(),
                "FLOAT" => "a number".to_string(),
                "STR" => "a string".to_string(),
                "DOC" => "a doc comment".to_string(),
                "\";\"" => "a new line".to_string(),
                other => format!("`{}`", other.trim_matches('"')),
            }),
    );
    names.dedup();
    match names.len() {
        0 => "nothing more".to_string(),
        1 => names.remove(0),
        n if n <= 6 => {
            let last = names.pop().unwrap_or_default();
            format!("{} or {}", names.join(", "), last)
        }
        _ => format!("one of {}, …", names[..5].join(", ")),
    }
}

fn token_help(tok: &Token<'_>, expected: &[String]) -> String {
    use Token::*;
    let exp = |s: &str| expected.iter().any(|e| e == s);
    // Where an operand may start, `INT` is always among the expected tokens.
    let wants_operand = exp("INT");
    match tok {
        Token::Eq if exp("\"==\"") || exp("\"@\"") => {
            "use `==` to compare; `=` only binds or assigns".into()
        }
        Token::Doc(_) => {
            "a doc comment (`///`) must stand right before an `env`, `fn`, `enum`, `type` or `param`".into()
        }
        Forall | Exists if wants_operand => {
            "a quantifier must be a whole expression or the right side of `implies`; \
             otherwise wrap it in parentheses: `a and (forall x in xs: …)`"
                .into()
        }
        RParen | RBracket | RBrace | Comma | Plus | Star | Slash | Percent | EqEq | Ne | Lt
        | Le | Gt | Ge | And | Or | Implies | DotDot | DotDotEq
            if wants_operand =>
        {
            format!("an operand is missing before {tok}")
        }
        Param | Gen | Verify | Answer | Prompt | Category | Scoring | Env | Fn
            if exp("\"let\"") =>
        {
            format!("{tok} cannot stand inside a block; is a `}}` missing before it?")
        }
        Token::Ident(_) if exp("\",\"") => "separate items with `,`".into(),
        Token::RBrace | Token::RParen | Token::RBracket => {
            "this closing bracket does not match what is open here".into()
        }
        _ if exp("\"}\"") && expected.len() <= 3 => "close the block with `}`".into(),
        _ => "check the syntax in spec/language.md; statements end at a newline or `;`".into(),
    }
}

struct TemplateParser<'a, 'input> {
    ctx: &'a mut Ctx<'input>,
    /// The literal's text between its quotes.
    text: &'input str,
    /// Absolute offset of `text` in the source.
    base: usize,
    pos: usize,
    indent: usize,
    triple: bool,
}

enum Stop {
    End(Span),
    Else(Span),
}

impl TemplateParser<'_, '_> {
    fn skip_indent(&mut self) {
        let b = self.text.as_bytes();
        let mut n = 0;
        while n < self.indent && self.pos < b.len() && (b[self.pos] == b' ' || b[self.pos] == b'\t')
        {
            self.pos += 1;
            n += 1;
        }
    }

    fn span(&self, lo: usize, hi: usize) -> Span {
        Span::new(self.ctx.file, self.base + lo, self.base + hi)
    }

    /// Parses parts until the end of the text or a `{end}` / `{else}` tag.
    /// Returns the tag that stopped it (name and span), if any.
    fn parse_parts(&mut self) -> (Vec<TemplatePart>, Option<(&'static str, Span)>) {
        let (parts, stop) = self.parts_until();
        let stop = stop.map(|s| match s {
            Stop::End(sp) => ("end", sp),
            Stop::Else(sp) => ("else", sp),
        });
        (parts, stop)
    }

    fn parts_until(&mut self) -> (Vec<TemplatePart>, Option<Stop>) {
        let mut parts = Vec::new();
        let mut buf = String::new();
        let b = self.text.as_bytes();
        while self.pos < b.len() {
            let c = b[self.pos];
            match c {
                b'\\' => {
                    let esc_start = self.pos;
                    let next = self.text[self.pos + 1..].chars().next();
                    let ch = match next {
                        Some('n') => Some('\n'),
                        Some('t') => Some('\t'),
                        Some('\\') => Some('\\'),
                        Some('"') => Some('"'),
                        Some('{') => Some('{'),
                        Some('}') => Some('}'),
                        _ => None,
                    };
                    let len = 1 + next.map_or(0, char::len_utf8);
                    match ch {
                        Some(ch) => buf.push(ch),
                        None => {
                            let sp = self.span(esc_start, esc_start + len);
                            self.ctx.diagnostics.push(
                                Diagnostic::new("E0005", sp, "unknown escape sequence")
                                    .with_label("not a valid escape")
                                    .with_help("valid escapes: \\n \\t \\\\ \\\" \\{ \\}; `{{` and `}}` also give braces"),
                            );
                        }
                    }
                    self.pos += len;
                }
                b'{' if b.get(self.pos + 1) == Some(&b'{') => {
                    buf.push('{');
                    self.pos += 2;
                }
                b'}' if b.get(self.pos + 1) == Some(&b'}') => {
                    buf.push('}');
                    self.pos += 2;
                }
                b'{' => {
                    let open = self.pos;
                    let Some(close) = self.matching_brace(open) else {
                        let sp = self.span(open, open + 1);
                        self.ctx.diagnostics.push(
                            Diagnostic::new("E0006", sp, "unclosed `{` in string")
                                .with_label("this interpolation is never closed")
                                .with_help("close it with `}`, or write `{{` for a literal brace"),
                        );
                        self.pos = b.len();
                        break;
                    };
                    let inner = &self.text[open + 1..close];
                    let trimmed = inner.trim();
                    let tag_span = self.span(open, close + 1);
                    let kw = trimmed
                        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                        .next()
                        .unwrap_or("");
                    let is_control = matches!(kw, "for" | "if" | "else" | "end");
                    self.pos = close + 1;
                    if is_control {
                        self.trim_control_line(&mut buf, open);
                    }
                    if !buf.is_empty() {
                        parts.push(TemplatePart::Text(std::mem::take(&mut buf)));
                    }
                    let lead = inner.len() - inner.trim_start().len();
                    let lo = self.base + open + 1 + lead;
                    let hi = lo + trimmed.len();
                    match kw {
                        "end" if trimmed == "end" => return (parts, Some(Stop::End(tag_span))),
                        "else" if trimmed == "else" => return (parts, Some(Stop::Else(tag_span))),
                        "for" => {
                            let header = self.ctx.parse_fragment(Token::StartForHeader, lo + 3, hi);
                            let (body, stop) = self.parts_until();
                            self.expect_end(stop, tag_span, "for");
                            if let Some(Parsed::ForHeader(pat, iter)) = header {
                                parts.push(TemplatePart::For {
                                    pat,
                                    iter,
                                    body,
                                    span: tag_span,
                                });
                            }
                        }
                        "if" => {
                            let cond = self.ctx.parse_fragment(Token::StartExpr, lo + 2, hi);
                            let (then, stop) = self.parts_until();
                            let els = match stop {
                                Some(Stop::Else(_)) => {
                                    let (els, stop2) = self.parts_until();
                                    self.expect_end(stop2, tag_span, "if");
                                    els
                                }
                                other => {
                                    self.expect_end(other, tag_span, "if");
                                    Vec::new()
                                }
                            };
                            if let Some(Parsed::Expr(cond)) = cond {
                                parts.push(TemplatePart::If {
                                    cond,
                                    then,
                                    els,
                                    span: tag_span,
                                });
                            }
                        }
                        _ => {
                            if trimmed.is_empty() {
                                self.ctx.diagnostics.push(
                                    Diagnostic::new("E0006", tag_span, "empty interpolation `{}`")
                                        .with_label("nothing to show here")
                                        .with_help("put an expression inside, or write `{{}}` for literal braces"),
                                );
                            } else if let Some(Parsed::Expr(e)) =
                                self.ctx.parse_fragment(Token::StartExpr, lo, hi)
                            {
                                parts.push(TemplatePart::Expr(e));
                            }
                        }
                    }
                }
                b'\n' if self.triple => {
                    buf.push('\n');
                    self.pos += 1;
                    self.skip_indent();
                }
                _ => {
                    let ch = self.text[self.pos..].chars().next().unwrap_or(' ');
                    buf.push(ch);
                    self.pos += ch.len_utf8();
                }
            }
        }
        if !buf.is_empty() {
            parts.push(TemplatePart::Text(buf));
        }
        (parts, None)
    }

    fn expect_end(&mut self, stop: Option<Stop>, open: Span, what: &str) {
        match stop {
            Some(Stop::End(_)) => {}
            Some(Stop::Else(sp)) => {
                self.ctx.diagnostics.push(
                    Diagnostic::new("E0006", sp, format!("`{{else}}` inside `{{{what} …}}`"))
                        .with_label("`{else}` belongs to `{if …}` only")
                        .with_secondary(open, "the block opened here")
                        .with_help(if what == "for" {
                            "`{for}` has no `{else}`; for an empty list, wrap the loop: \
                             `{if len(xs) > 0}{for x in xs}…{end}{else}…{end}`"
                        } else {
                            "close the block with `{end}` first"
                        }),
                );
                // Skip the rest of the block, so its `{end}` is not reported as stray.
                let _ = self.parts_until();
            }
            None => self.ctx.diagnostics.push(
                Diagnostic::new("E0006", open, format!("`{{{what} …}}` is never closed"))
                    .with_label("opened here")
                    .with_help("add `{end}` where the block ends"),
            ),
        }
    }

    /// A control tag alone on its line takes the whole line with it (like Jinja's
    /// trim_blocks), so prompts can put `{for …}` on lines of their own.
    fn trim_control_line(&mut self, buf: &mut String, open: usize) {
        let b = self.text.as_bytes();
        let line_start = self.text[..open].rfind('\n').map_or(0, |i| i + 1);
        let before_blank =
            self.text[line_start..open].trim().is_empty() && (line_start > 0 || self.triple);
        let mut j = self.pos;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t' || b[j] == b'\r') {
            j += 1;
        }
        let after_blank = j < b.len() && b[j] == b'\n';
        if before_blank && after_blank {
            while buf.ends_with([' ', '\t']) {
                buf.pop();
            }
            self.pos = j + 1;
            self.skip_indent();
        }
    }

    /// The index of the `}` closing the `{` at `open`, skipping nested braces and strings.
    fn matching_brace(&self, open: usize) -> Option<usize> {
        let b = self.text.as_bytes();
        let mut depth = 0usize;
        let mut i = open;
        while i < b.len() {
            match b[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                b'"' => {
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        if b[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        None
    }
}
