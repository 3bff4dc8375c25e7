//! Rendering diagnostics at the edge: ariadne reports for people, one JSON object per line
//! for machines (and for LLM repair prompts). Diagnostics themselves stay plain data.

use crate::source::SourceMap;
use ariadne::{Config, IndexType, Label, Report, ReportKind};
use resyn_grammar::diag::{Diagnostic, Severity};
use resyn_grammar::span::FileId;
use serde::Serialize;

/// Renders one diagnostic for a terminal or a snapshot (`color = false`).
pub fn human(diag: &Diagnostic, sources: &SourceMap, color: bool) -> String {
    let kind = match diag.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let name = |id: FileId| sources.get(id).name.clone();
    let span = (name(diag.span.file), clamp(diag.span.range(), sources, diag.span.file));
    let mut report = Report::build(kind, span.clone())
        .with_config(
            Config::default()
                .with_color(color)
                .with_index_type(IndexType::Byte),
        )
        .with_code(diag.code)
        .with_message(&diag.message);
    let mut primary = Label::new(span);
    if let Some(msg) = &diag.primary_label {
        primary = primary.with_message(msg);
    }
    report = report.with_label(primary);
    for l in &diag.labels {
        report = report.with_label(
            Label::new((name(l.span.file), clamp(l.span.range(), sources, l.span.file))).with_message(&l.message),
        );
    }
    if let Some(help) = &diag.help {
        report = report.with_help(help);
    }
    let cache = ariadne::sources(sources.iter().map(|(_, f)| (f.name.clone(), f.text.clone())));
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = report.finish().write(cache, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Ariadne wants ranges inside the text and on char boundaries.
fn clamp(r: std::ops::Range<usize>, sources: &SourceMap, file: FileId) -> std::ops::Range<usize> {
    let text = &sources.get(file).text;
    let fix = |mut i: usize| {
        i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let (s, e) = (fix(r.start), fix(r.end));
    s..e.max(s)
}

#[derive(Serialize)]
pub struct JsonSpan {
    pub start: u32,
    pub end: u32,
}

#[derive(Serialize)]
pub struct JsonLabel {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub span: JsonSpan,
    pub message: String,
}

#[derive(Serialize)]
pub struct JsonDiagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub span: JsonSpan,
    pub label: Option<String>,
    pub labels: Vec<JsonLabel>,
    pub help: Option<String>,
}

pub fn to_json(diag: &Diagnostic, sources: &SourceMap) -> JsonDiagnostic {
    let f = sources.get(diag.span.file);
    let (line, column) = f.line_col(diag.span.start as usize);
    JsonDiagnostic {
        code: diag.code,
        severity: diag.severity,
        message: diag.message.clone(),
        file: f.name.clone(),
        line,
        column,
        span: JsonSpan {
            start: diag.span.start,
            end: diag.span.end,
        },
        label: diag.primary_label.clone(),
        labels: diag
            .labels
            .iter()
            .map(|l| {
                let lf = sources.get(l.span.file);
                let (line, column) = lf.line_col(l.span.start as usize);
                JsonLabel {
                    file: lf.name.clone(),
                    line,
                    column,
                    span: JsonSpan {
                        start: l.span.start,
                        end: l.span.end,
                    },
                    message: l.message.clone(),
                }
            })
            .collect(),
        help: diag.help.clone(),
    }
}

/// One line of JSON (no trailing newline).
pub fn json_line(diag: &Diagnostic, sources: &SourceMap) -> String {
    serde_json::to_string(&to_json(diag, sources)).unwrap_or_else(|_| "{}".to_string())
}
