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
fn scan_string<'a>(lex: &mut logos::Lexer<'a, Token<'a>>, triple: bool) -> Result<&'a str, LexErrorKind> {
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
}

/// May this token end a statement (so a newline after it becomes `;`)?
fn can_end(t: &Token<'_>) -> bool {
    use Token::*;
    matches!(
        t,
        Ident(_) | Int(_) | Float(_) | Str(_) | True | False | RParen | RBracket | RBrace | Underscore
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
    while let Some(res) = lexer.next() {
        let r = lexer.span();
        match res {
            Ok(tok) => raw.push((r.start, tok, r.end)),
            Err(LexErrorKind::UnterminatedString) => {
                diagnostics.push(
                    Diagnostic::new("E0002", Span::new(file, r.start, r.end), "unterminated string literal")
                        .with_label("this string is never closed")
                        .with_help(
                            "close it with `\"` on the same line (`\"\"\"` for multi-line text); \
                             a `{` opens an interpolation, write `{{` for a literal brace",
                        ),
                );
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
                    Diagnostic::new("E0001", Span::new(file, r.start, r.end), format!("unexpected character {ch:?}"))
                        .with_label("not part of the language")
                        .with_help(unexpected_char_help(ch)),
                );
            }
        }
    }

    // Post-pass: newline handling and nesting limit.
    let mut tokens = Vec::with_capacity(raw.len());
    // Template fragments start inside an implicit `(` so their newlines never end anything.
    let mut stack: Vec<Token<'_>> = if in_parens { vec![Token::LParen] } else { Vec::new() };
    let mut fatal = false;
    for i in 0..raw.len() {
        let (s, tok, e) = raw[i];
        match tok {
            Token::Newline => {
                let in_parens = matches!(stack.last(), Some(Token::LParen | Token::LBracket));
                if in_parens {
                    continue;
                }
                let prev_ends = tokens.last().is_some_and(|(_, t, _): &Spanned<'_>| can_end(t));
                let next = raw[i + 1..].iter().find(|(_, t, _)| *t != Token::Newline);
                let next_continues = next.is_some_and(|(_, t, _)| continues(t));
                if prev_ends && !next_continues {
                    tokens.push((s, Token::Semi, s));
                }
                continue;
            }
            Token::LParen | Token::LBracket | Token::LBrace => {
                stack.push(tok);
                if stack.len() > MAX_NESTING {
                    diagnostics.push(
                        Diagnostic::new("E0003", Span::new(file, s, e), "brackets nested too deeply")
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
                stack.pop();
            }
            _ => {}
        }
        tokens.push((s, tok, e));
    }
    Lexed {
        tokens,
        diagnostics,
        fatal,
    }
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
