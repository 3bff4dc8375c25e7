//! The resyn front end's syntax layer: spans, diagnostics data, lexer, AST and parser.
//! Nothing here resolves names or types; see the `resyn-compiler` crate for that.

pub mod ast;
pub mod diag;
pub mod lexer;
pub mod parser;
pub mod span;

#[allow(clippy::all, clippy::pedantic, unused_parens, dead_code)]
mod grammar {
    include!(concat!(env!("OUT_DIR"), "/grammar.rs"));
}

pub use parser::{parse_file, ParseOutput};
