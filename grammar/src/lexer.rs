//! The lexer: logos does the tokenizing; a small post-pass turns significant newlines into
//! `;` (Go-style semicolon insertion, plus "a line that starts with an operator continues
//! the previous one") and enforces the bracket-nesting limit, so that every later stage can
//! recurse on the tree without risking the stack.

use crate::diag::Diagnostic;
use crate::span::{FileId, Span};
use logos::Logos;
use std::fmt;

/// Deepest bracket nesting accepted. Real environments stay below 10.
pub const MAX_NESTING: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LexErrorKind {
    #[default]
    UnexpectedChar,
    UnterminatedString,
}

// Two `skip` patterns need `allow_greedy`; clippy reads that as a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq)]
#[logos(error = LexErrorKind)]
#[logos(skip r"[ \t\r\f]+")]
#[logos(skip(r"//([^/\n][^\n]*)?", allow_greedy = true))]
#[logos(skip(r"////[^\n]*", allow_greedy = true))]
pub enum Token<'a> {
    #[regex(r"\n")]
    Newline,
    #[regex(r"///[^\n]*", |lex| lex.slice(), allow_greedy = true)]
    Doc(&'a str),

    // Keywords.
    #[token("env")]
    Env,
    #[token("fn")]
    Fn,
    #[token("use")]
    Use,
    #[token("let")]
    Let,
    #[token("var")]
    Var,
    #[token("for")]
    For,
    #[token("in")]
    In,
    #[token("if")]
    If,
    #[token("else")]
    Else,
    #[token("forall")]
    Forall,
    #[token("exists")]
    Exists,
    #[token("and")]
    And,
    #[token("or")]
    Or,
    #[token("not")]
    Not,
    #[token("implies")]
    Implies,
    #[token("true")]
    True,
    #[token("false")]
    False,
    #[token("param")]
    Param,
    #[token("gen")]
    Gen,
    #[token("verify")]
    Verify,
    #[token("answer")]
    Answer,
    #[token("show")]
    Show,
    #[token("hide")]
    Hide,
    #[token("witness")]
    Witness,
    #[token("require")]
    Require,
    #[token("prompt")]
    Prompt,
    #[token("category")]
    Category,
    #[token("type")]
    Type,
    #[token("enum")]
    Enum,
    #[token("scoring")]
    Scoring,

    // Punctuation.
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token("::")]
    ColonColon,
    #[token(";")]
    Semi,
    #[token(".")]
    Dot,
    #[token("..")]
    DotDot,
    #[token("..=")]
    DotDotEq,
    #[token("@")]
    At,
    #[token("=")]
    Eq,
    #[token("==")]
    EqEq,
    #[token("!=")]
    Ne,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("->")]
    Arrow,
    #[token("_", priority = 10)]
    Underscore,

    /// Never produced by logos: the parser driver prepends these to choose an entry point
    /// (one LR table serves files, template expressions and template `for` headers).
    StartExpr,
    StartForHeader,

    // Literals and names.
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice())]
    Ident(&'a str),
    #[regex(r"[0-9][0-9_]*", |lex| lex.slice())]
    Int(&'a str),
    #[regex(r"[0-9][0-9_]*\.[0-9][0-9_]*([eE][+-]?[0-9]+)?", |lex| lex.slice())]
    Float(&'a str),
    /// The whole literal including its quotes; templates are parsed from it later.
    #[token("\"", |lex| scan_string(lex, false))]
    #[token("\"\"\"", |lex| scan_string(lex, true))]
    Str(&'a str),
}

/// Scans a string literal after its opening quote(s). Inside `{…}` interpolations a `"`
/// opens a nested string, so `"{join(xs, ", ")}"` is one literal.
fn scan_string<'a>(
    lex: &mut logos::Lexer<'a, Token<'a>>,
    triple: bool,
) -> Result<&'a str, LexErrorKind> {
    let rest = lex.remainder().as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    while i < rest.len() {
        let c = rest[i];
        if c == b'\n' && !triple {
            break;
        }
        if depth == 0 {
            match c {
                b'\\' => i += 2,
                b'{' if rest.get(i + 1) == Some(&b'{') => i += 2,
                b'{' => {
                    depth = 1;
                    i += 1;
                }
                b'"' if !triple => {
                    lex.bump(i + 1);
                    return Ok(lex.slice());
                }
                b'"' if rest[i..].starts_with(b"\"\"\"") => {
                    lex.bump(i + 3);
                    return Ok(lex.slice());
                }
                _ => i += 1,
            }
        } else {
            match c {
                b'{' => depth += 1,
                b'}' => depth -= 1,
                b'"' => {
                    // A nested plain string inside an interpolation.
                    i += 1;
                    while i < rest.len() && rest[i] != b'"' && rest[i] != b'\n' {
                        if rest[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                    if rest.get(i) == Some(&b'\n') {
                        // Leave the line break to the loop: it ends a plain literal.
                        continue;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    // Unterminated: consume to the end of the line (or file, for `"""`) and report it.
    lex.bump(i.min(rest.len()));
    Err(LexErrorKind::UnterminatedString)
}

impl fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Token::Newline => "newline",
            Token::Doc(_) => "doc comment",
            Token::Ident(s) => return write!(f, "identifier `{s}`"),
            Token::Int(s) | Token::Float(s) => return write!(f, "number `{s}`"),
            Token::Str(_) => "string literal",
            other => return write!(f, "`{}`", token_text(other)),
        };
        f.write_str(s)
    }
}

/// The source text of a fixed token (keywords and punctuation).
pub fn token_text(t: &Token<'_>) -> &'static str {
    use Token::*;
    match t {
        Env => "env",
        Fn => "fn",
        Use => "use",
        Let => "let",
        Var => "var",
        For => "for",
        In => "in",
        If => "if",
        Else => "else",
        Forall => "forall",
        Exists => "exists",
        And => "and",
        Or => "or",
        Not => "not",
        Implies => "implies",
        True => "true",
        False => "false",
        Param => "param",
        Gen => "gen",
        Verify => "verify",
        Answer => "answer",
        Show => "show",
        Hide => "hide",
        Witness => "witness",
        Require => "require",
        Prompt => "prompt",
        Category => "category",
        Type => "type",
        Enum => "enum",
        Scoring => "scoring",
        LParen => "(",
        RParen => ")",
        LBracket => "[",
        RBracket => "]",
        LBrace => "{",
        RBrace => "}",
        Comma => ",",
        Colon => ":",
        ColonColon => "::",
        Semi => ";",
        Dot => ".",
        DotDot => "..",
        DotDotEq => "..=",
        At => "@",
        Eq => "=",
        EqEq => "==",
        Ne => "!=",
        Lt => "<",
        Le => "<=",
        Gt => ">",
        Ge => ">=",
        Plus => "+",
        Minus => "-",
        Star => "*",
        Slash => "/",
        Percent => "%",
        Arrow => "->",
        Underscore => "_",
        Newline | Doc(_) | StartExpr | StartForHeader | Ident(_) | Int(_) | Float(_) | Str(_) => "",
    }
}

pub type Spanned<'a> = (usize, Token<'a>, usize);

/// The lexer's output: tokens for the parser, plus lexical diagnostics. When `fatal` is set
/// the token stream was cut short (nesting limit) and syntax errors after it are noise.
pub struct Lexed<'a> {
    pub tokens: Vec<Spanned<'a>>,
    pub diagnostics: Vec<Diagnostic>,
    pub fatal: bool,
    /// Line breaks ignored because a `(` or `[` was open that is never closed (its
    /// closer is missing or mismatched): (offset of the line break, offset of the
    /// bracket). Syntax errors use it to name the unclosed bracket as the likely cause.
    pub unclosed_at_newline: Vec<(usize, usize)>,
}

/// May this token end a statement (so a newline after it becomes `;`)?
fn can_end(t: &Token<'_>) -> bool {
    use Token::*;
    matches!(
        t,
        Ident(_)
            | Int(_)
            | Float(_)
            | Str(_)
            | True
            | False
            | RParen
            | RBracket
            | RBrace
            | Underscore
    )
}

/// Does a line starting with this token continue the previous line?
fn continues(t: &Token<'_>) -> bool {
    use Token::*;
    matches!(
        t,
        Plus | Minus
            | Star
            | Slash
            | Percent
            | EqEq
            | Ne
            | Lt
            | Le
            | Gt
            | Ge
            | And
            | Or
            | Implies
            | In
            | DotDot
            | DotDotEq
            | Dot
            | At
            | ColonColon
            | Colon
            | Comma
            | RParen
            | RBracket
            | RBrace
            | Else
            | Eq
            | Arrow
            | LBrace
    )
}

pub fn lex(src: &str, file: FileId, in_parens: bool) -> Lexed<'_> {
    let mut raw: Vec<Spanned<'_>> = Vec::new();
    let mut diagnostics = Vec::new();
    let mut lexer = Token::lexer(src);
    // A byte order mark opening the file (Windows editors write one) is not part of the
    // program; spans keep counting from the file's first byte.
    if src.starts_with('\u{feff}') {
        lexer.bump('\u{feff}'.len_utf8());
    }
    while let Some(res) = lexer.next() {
        let r = lexer.span();
        match res {
            Ok(tok) => raw.push((r.start, tok, r.end)),
            Err(LexErrorKind::UnterminatedString) => {
                let d = Diagnostic::new(
                    "E0002",
                    Span::new(file, r.start, r.end),
                    "unterminated string literal",
                )
                .with_label("this string is never closed");
                // A `{` that is never closed swallows the closing quote: point at it.
                let d = match unclosed_interpolation(&src[r.start..r.end]) {
                    Some(at) => d
                        .with_secondary(
                            Span::new(file, r.start + at, r.start + at + 1),
                            "this `{` opens an interpolation that is never closed, so the `\"` after it does not end the string",
                        )
                        .with_help("close the interpolation with `}`, or write `{{` for a literal brace"),
                    None => d.with_help(
                        "close it with `\"` on the same line (`\"\"\"` for multi-line text); \
                         a `{` opens an interpolation, write `{{` for a literal brace",
                    ),
                };
                diagnostics.push(d);
            }
            Err(LexErrorKind::UnexpectedChar) => {
                let ch = src[r.start..].chars().next().unwrap_or('?');
                // Merge a run of bad characters into one diagnostic.
                if let Some(last) = diagnostics.last_mut() {
                    if last.code == "E0001" && last.span.end as usize == r.start {
                        last.span.end = r.end as u32;
                        continue;
                    }
                }
                diagnostics.push(
                    Diagnostic::new(
                        "E0001",
                        Span::new(file, r.start, r.end),
                        format!("unexpected character {ch:?}"),
                    )
                    .with_label("not part of the language")
                    .with_help(unexpected_char_help(ch)),
                );
            }
        }
    }

    // Post-pass: newline handling and nesting limit.
    let mut tokens = Vec::with_capacity(raw.len());
    // Template fragments start inside an implicit `(` so their newlines never end anything.
    let mut stack: Vec<Token<'_>> = if in_parens {
        vec![Token::LParen]
    } else {
        Vec::new()
    };
    // Offsets of the open brackets in `stack` (`usize::MAX` for the implicit one).
    let mut open_pos: Vec<usize> = stack.iter().map(|_| usize::MAX).collect();
    let mut open_at_newline: Vec<(usize, usize)> = Vec::new();
    let mut unclosed: std::collections::HashSet<usize> = std::collections::HashSet::new();
    let mut fatal = false;
    // next_real[i]: index of the first non-newline token after i (one backward pass, so a
    // file of ten million newlines stays linear).
    let mut next_real = vec![usize::MAX; raw.len()];
    // next_item[i]: the first token after i that is neither a newline nor a doc comment;
    // prev_real[i]: the last non-newline token before i. Both precomputed for the same reason.
    let mut next_item = vec![usize::MAX; raw.len()];
    let (mut nxt, mut nxt_item) = (usize::MAX, usize::MAX);
    for i in (0..raw.len()).rev() {
        next_real[i] = nxt;
        next_item[i] = nxt_item;
        if raw[i].1 != Token::Newline {
            nxt = i;
        }
        if !matches!(raw[i].1, Token::Newline | Token::Doc(_)) {
            nxt_item = i;
        }
    }
    let mut prev_real = vec![usize::MAX; raw.len()];
    let mut prv = usize::MAX;
    for (i, slot) in prev_real.iter_mut().enumerate() {
        *slot = prv;
        if raw[i].1 != Token::Newline {
            prv = i;
        }
    }
    for i in 0..raw.len() {
        let (s, tok, e) = raw[i];
        match tok {
            Token::Doc(_) => {
                // A doc comment must precede an item that carries docs; anywhere else the
                // grammar would fail on the *next* token and recover badly, so report it
                // here and drop it.
                let next = raw.get(next_item[i]);
                let attached = next.is_some_and(|(_, t, _)| {
                    matches!(
                        t,
                        Token::Env | Token::Fn | Token::Enum | Token::Type | Token::Param
                    )
                });
                let first_of_run = !raw
                    .get(prev_real[i])
                    .is_some_and(|(_, t, _)| matches!(t, Token::Doc(_)));
                if attached {
                    tokens.push((s, tok, e));
                } else if first_of_run {
                    let what =
                        next.map_or("the end of the file".to_string(), |(_, t, _)| t.to_string());
                    diagnostics.push(
                        Diagnostic::new("E0010", Span::new(file, s, e), "doc comment in the wrong place")
                            .with_label(format!("documents nothing: it is followed by {what}"))
                            .with_help(
                                "a doc comment (`///`) must stand right before an `env`, `fn`, `enum`, `type` or `param`; \
                                 use `//` for an ordinary comment",
                            ),
                    );
                }
                continue;
            }
            Token::Newline => {
                let in_parens = matches!(stack.last(), Some(Token::LParen | Token::LBracket));
                if in_parens {
                    if let Some(&at) = open_pos.last().filter(|at| **at != usize::MAX) {
                        open_at_newline.push((s, at));
                    }
                    continue;
                }
                let prev_ends = tokens
                    .last()
                    .is_some_and(|(_, t, _): &Spanned<'_>| can_end(t));
                let next = raw.get(next_real[i]);
                let next_continues = next.is_some_and(|(_, t, _)| continues(t));
                if prev_ends && !next_continues {
                    tokens.push((s, Token::Semi, s));
                }
                continue;
            }
            Token::LParen | Token::LBracket | Token::LBrace => {
                stack.push(tok);
                open_pos.push(s);
                if stack.len() > MAX_NESTING {
                    diagnostics.push(
                        Diagnostic::new(
                            "E0003",
                            Span::new(file, s, e),
                            "brackets nested too deeply",
                        )
                        .with_label(format!("this is nesting level {}", stack.len()))
                        .with_help(format!(
                            "at most {MAX_NESTING} levels of (), [] and {{}} are allowed; \
                                 name intermediate values with `let`"
                        )),
                    );
                    fatal = true;
                    break;
                }
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                let top = stack.pop();
                let at = open_pos.pop().unwrap_or(usize::MAX);
                let pair = matches!(
                    (top, tok),
                    (Some(Token::LParen), Token::RParen)
                        | (Some(Token::LBracket), Token::RBracket)
                        | (Some(Token::LBrace), Token::RBrace)
                );
                if !pair && at != usize::MAX {
                    unclosed.insert(at);
                }
            }
            _ => {}
        }
        tokens.push((s, tok, e));
    }
    unclosed.extend(open_pos.iter().filter(|at| **at != usize::MAX));
    open_at_newline.retain(|(_, at)| unclosed.contains(at));
    Lexed {
        tokens,
        diagnostics,
        fatal,
        unclosed_at_newline: open_at_newline,
    }
}

/// The offset of the `{` whose interpolation runs to the end of an unterminated literal.
fn unclosed_interpolation(lit: &str) -> Option<usize> {
    let b = lit.as_bytes();
    let mut i = if lit.starts_with("\"\"\"") { 3 } else { 1 };
    let mut depth = 0usize;
    let mut open = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if depth == 0 => i += 1,
            b'{' if depth == 0 && b.get(i + 1) == Some(&b'{') => i += 1,
            b'{' => {
                if depth == 0 {
                    open = i;
                }
                depth += 1;
            }
            b'}' if depth > 0 => depth -= 1,
            b'"' if depth > 0 => {
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        i += 1;
    }
    (depth > 0).then_some(open)
}

fn unexpected_char_help(ch: char) -> String {
    match ch {
        '!' => "use `not` for negation; `!=` is the inequality operator".into(),
        '&' | '|' => "use the keywords `and` and `or`".into(),
        '#' => "comments start with `//`".into(),
        '\'' => "strings use double quotes: \"text\"".into(),
        _ => "remove it; identifiers are ASCII letters, digits and `_`".into(),
    }
}
