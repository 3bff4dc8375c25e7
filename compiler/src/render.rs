//! Rendering diagnostics at the edge: ariadne reports for people, one JSON object per line
//! for machines (and for LLM repair prompts). Diagnostics themselves stay plain data.

use crate::source::SourceMap;
use ariadne::{Config, IndexType, Label, Report, ReportKind};
use resyn_grammar::diag::{Diagnostic, Severity};
use resyn_grammar::span::FileId;
use serde::Serialize;

/// Renders one diagnostic for a terminal or a snapshot (`color = false`).
type AriadneLabel = Label<(String, std::ops::Range<usize>)>;

/// Longest source line shown in a snippet; longer lines (minified or generated input) get
/// the compact form, so one diagnostic never prints megabytes.
const MAX_SNIPPET_LINE: usize = 1000;

pub fn human(diag: &Diagnostic, sources: &SourceMap, color: bool) -> String {
    let spans = std::iter::once(diag.span).chain(diag.labels.iter().map(|l| l.span));
    if spans
        .into_iter()
        .any(|s| line_len_at(sources, s.file, s.start as usize) > MAX_SNIPPET_LINE)
    {
        return compact(diag, sources);
    }
    let kind = match diag.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let name = |id: FileId| sources.get(id).name.clone();
    let span = (
        name(diag.span.file),
        clamp(diag.span.range(), sources, diag.span.file),
    );
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
    // Ariadne starts a new snippet (repeating the header) whenever a label lies above the
    // previous one, so labels go in in source order.
    let mut labels: Vec<(FileId, usize, AriadneLabel)> =
        vec![(diag.span.file, diag.span.start as usize, primary)];
    for l in &diag.labels {
        let label = Label::new((
            name(l.span.file),
            clamp(l.span.range(), sources, l.span.file),
        ))
        .with_message(&l.message);
        labels.push((l.span.file, l.span.start as usize, label));
    }
    labels.sort_by_key(|(file, start, _)| (*file, *start));
    for (_, _, label) in labels {
        report = report.with_label(label);
    }
    if let Some(help) = &diag.help {
        report = report.with_help(help);
    }
    let cache = ariadne::sources(
        sources
            .iter()
            .map(|(_, f)| (f.name.clone(), f.text.clone())),
    );
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = report.finish().write(cache, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn line_len_at(sources: &SourceMap, file: FileId, offset: usize) -> usize {
    let text = &sources.get(file).text;
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    end - start
}

/// rustc-style text without a snippet.
fn compact(diag: &Diagnostic, sources: &SourceMap) -> String {
    let f = sources.get(diag.span.file);
    let (line, col) = f.line_col(diag.span.start as usize);
    let kind = match diag.severity {
        Severity::Error => "Error",
        Severity::Warning => "Warning",
    };
    let mut s = format!(
        "[{}] {kind}: {}\n  --> {}:{line}:{col}\n",
        diag.code, diag.message, f.name
    );
    if let Some(l) = &diag.primary_label {
        s.push_str(&format!("  = {l}\n"));
    }
    for l in &diag.labels {
        let lf = sources.get(l.span.file);
        let (line, col) = lf.line_col(l.span.start as usize);
        s.push_str(&format!("  = {}:{line}:{col}: {}\n", lf.name, l.message));
    }
    if let Some(h) = &diag.help {
        s.push_str(&format!("  = help: {h}\n"));
    }
    s
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
