//! Keeps the diagnostic codes, their documentation and the UI tests in step:
//! - every code string literal (`"E0…"`, `"W0…"`) in the compiler's Rust sources has a
//!   `### CODE: title` entry in `spec/diagnostics.md`, and every entry is such a code;
//! - every code is produced by at least one `tests/ui/*.rsn` case, except the CLI- and
//!   limit-level ones that a small case file cannot trigger.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Codes no UI case can produce: a file over 16 MiB (E0013), an unreadable path (E0014),
/// and an env beyond static safety's effort limit (W0008, seconds of solver work; tested
/// with a small limit in tests/safety.rs and pinned on water_jugs by the examples test).
const NOT_IN_UI: &[&str] = &["E0013", "E0014", "W0008"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn is_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 5 && matches!(b[0], b'E' | b'W') && b[1..].iter().all(u8::is_ascii_digit)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Every `"E0123"` / `"W0123"` string literal in the Rust sources of the compiler.
fn source_codes() -> BTreeSet<String> {
    let mut files = Vec::new();
    for dir in ["grammar/src", "compiler/src", "src"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut codes = BTreeSet::new();
    for f in files {
        let text =
            std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
        for (i, _) in text.match_indices('"') {
            if let Some(lit) = text.get(i + 1..i + 6) {
                if is_code(lit) && text[i + 6..].starts_with('"') {
                    codes.insert(lit.to_string());
                }
            }
        }
    }
    codes
}

/// The codes of the `### CODE: title` headings of spec/diagnostics.md.
fn spec_codes() -> BTreeSet<String> {
    let path = root().join("spec/diagnostics.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut codes = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("### ") else {
            continue;
        };
        let code = rest
            .split(|c: char| c == ':' || c.is_whitespace())
            .next()
            .unwrap_or("");
        assert!(
            is_code(code),
            "spec/diagnostics.md: heading `{line}` does not start with a code"
        );
        assert!(
            codes.insert(code.to_string()),
            "spec/diagnostics.md: {code} is documented twice"
        );
    }
    codes
}

/// The codes produced by the UI cases.
fn ui_codes() -> BTreeSet<String> {
    let dir = root().join("tests/ui");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/ui")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rsn"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no UI cases in {}", dir.display());
    let mut codes = BTreeSet::new();
    for case in cases {
        let bytes = std::fs::read(&case).expect("readable case");
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let out = resyn_compiler::check_bytes(&name, &bytes);
        codes.extend(out.diagnostics.iter().map(|d| d.code.to_string()));
    }
    codes
}

fn list(codes: impl IntoIterator<Item = String>) -> String {
    codes.into_iter().collect::<Vec<_>>().join(", ")
}

#[test]
fn every_code_in_the_sources_is_documented_and_nothing_else() {
    let source = source_codes();
    let spec = spec_codes();
    assert!(
        source.len() > 10,
        "found only {} codes in the sources: is the scan broken?",
        source.len()
    );
    let undocumented: Vec<String> = source.difference(&spec).cloned().collect();
    let stale: Vec<String> = spec.difference(&source).cloned().collect();
    assert!(
        undocumented.is_empty(),
        "codes the compiler emits but spec/diagnostics.md does not document (add a `### CODE: title` entry): {}",
        list(undocumented)
    );
    assert!(
        stale.is_empty(),
        "codes documented in spec/diagnostics.md that no compiler source emits (remove the entry): {}",
        list(stale)
    );
}

#[test]
fn every_code_is_exercised_by_a_ui_case() {
    let source = source_codes();
    let ui = ui_codes();
    let missing: Vec<String> = source
        .iter()
        .filter(|c| !NOT_IN_UI.contains(&c.as_str()) && !ui.contains(*c))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "codes that no tests/ui/*.rsn case produces (add a case): {}",
        list(missing)
    );
    let unknown: Vec<String> = ui.difference(&source).cloned().collect();
    assert!(
        unknown.is_empty(),
        "UI cases produce codes not found in the sources: {}",
        list(unknown)
    );
}
