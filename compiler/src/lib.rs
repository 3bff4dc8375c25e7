//! The resyn compiler front end as a library: no printing, no process exits.
//!
//! Pipeline (one module per stage): `source` (file table) → `resyn_grammar` (lex, parse)
//! → `resolve` (items, imports, call graph, recursion) → `check` (types, scopes, purity,
//! environment structure) → diagnostics, rendered by `render` at the edge.

pub mod builtins;
pub mod check;
pub mod circuit;
pub mod columns;
pub mod dataset;
pub mod emit;
pub mod eval;
pub mod givens;
pub mod interval;
pub mod ir;
pub mod lower;
pub mod prove;
pub mod render;
pub mod resolve;
pub mod safety;
pub mod sat;
pub mod smt;
pub mod source;
pub mod stdlib;
pub mod types;
mod visit;

use resyn_grammar::diag::Diagnostic;
use resyn_grammar::span::{FileId, Span};
use source::SourceMap;

/// Largest source file accepted; bigger inputs get a diagnostic instead of a parse.
pub const MAX_SOURCE_BYTES: usize = 16 * 1024 * 1024;

/// The result of checking one compilation unit (a user file plus the stdlib it uses).
pub struct CheckOutput {
    pub sources: SourceMap,
    pub root: FileId,
    pub diagnostics: Vec<Diagnostic>,
}

impl CheckOutput {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks one source file given as raw bytes (untrusted: any bytes are accepted),
/// static safety included.
pub fn check_bytes(name: &str, bytes: &[u8]) -> CheckOutput {
    check_bytes_with(name, bytes, true)
}

/// [`check_bytes`], with static safety (`safety`: proofs that indexing and division
/// cannot fail, warnings where they cannot be proved) only when asked: it is the one
/// stage of `check` that calls the solver.
pub fn check_bytes_with(name: &str, bytes: &[u8], safety: bool) -> CheckOutput {
    let (mut out, program) = run_front_end(name, bytes, safety);
    if let Some(p) = program {
        out.diagnostics
            .extend(safety::analyze(&p, &out.sources, out.root));
        sort_diagnostics(&mut out.diagnostics);
    }
    out
}

/// Checks source text.
pub fn check_source(name: &str, text: &str) -> CheckOutput {
    check_bytes(name, text.as_bytes())
}

/// A file refused before parsing (too large, not UTF-8): one diagnostic, no program.
fn refused(sources: SourceMap, root: FileId, d: Diagnostic) -> (CheckOutput, Option<ir::Program>) {
    (
        CheckOutput {
            sources,
            root,
            diagnostics: vec![d],
        },
        None,
    )
}

/// Checks a file and, when it has no errors, lowers it to IR.
pub fn build_bytes(name: &str, bytes: &[u8]) -> (CheckOutput, Option<ir::Program>) {
    run_front_end(name, bytes, true)
}

/// The front end; lowers to IR only when asked (`check` does not need it) and error-free.
fn run_front_end(name: &str, bytes: &[u8], lower: bool) -> (CheckOutput, Option<ir::Program>) {
    let mut sources = SourceMap::default();
    if bytes.len() > MAX_SOURCE_BYTES {
        let root = sources.add(name, String::new());
        let d = Diagnostic::new("E0013", Span::new(root, 0, 0), "source file is too large")
            .with_label(format!("{} bytes", bytes.len()))
            .with_help(format!(
                "an environment file may be at most {MAX_SOURCE_BYTES} bytes"
            ));
        return refused(sources, root, d);
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.valid_up_to();
            let root = sources.add(name, String::from_utf8_lossy(bytes).into_owned());
            let d = Diagnostic::new(
                "E0012",
                Span::new(root, at, at + 1),
                "source is not valid UTF-8",
            )
            .with_label(format!("invalid byte 0x{:02x}", bytes[at]))
            .with_help("save the file as UTF-8");
            return refused(sources, root, d);
        }
    };
    let root = sources.add(name, text);
    let parsed = resyn_grammar::parse_file(text, root);
    let mut diags = parsed.diagnostics;
    // Syntax errors drop parts of the file, so "never used" and "has no …" reports would
    // be guesses; they come back once the syntax is fixed.
    let incomplete = diags
        .iter()
        .any(|d| d.is_error() && d.span.file == root && !matches!(d.code, "E0004" | "E0005"));
    let unit = resolve::resolve(&mut sources, root, parsed.file, &mut diags);
    let (mut check_diags, envs, typed) = check::check(&unit);
    if incomplete {
        check_diags.retain(|d| !ABSENCE_CODES.contains(&d.code));
    }
    diags.extend(check_diags);
    // Warnings in stdlib modules are ours, not the user's.
    diags.retain(|d| d.is_error() || d.span.file == root);
    sort_diagnostics(&mut diags);
    // A type used in several places may report the same problem at its definition each time.
    diags.dedup_by(|a, b| a.code == b.code && a.span == b.span && a.message == b.message);
    let program = if !lower || diags.iter().any(Diagnostic::is_error) {
        None
    } else {
        Some(lower::lower(&unit, &envs, &typed, &sources))
    };
    (
        CheckOutput {
            sources,
            root,
            diagnostics: diags,
        },
        program,
    )
}

/// Diagnostics about something missing or unused, suppressed while the file has syntax
/// errors (see `build_bytes`).
const ABSENCE_CODES: &[&str] = &[
    "E0108", "E0305", "E0306", "W0001", "W0002", "W0003", "W0004", "W0005",
];

/// Stable order: by file, position, then code.
pub fn sort_diagnostics(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        (a.span.file, a.span.start, a.span.end, a.code).cmp(&(
            b.span.file,
            b.span.start,
            b.span.end,
            b.code,
        ))
    });
}
