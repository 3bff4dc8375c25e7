//! UI tests: every `tests/ui/*.rsn` is checked and its rendered diagnostics (human form,
//! no colour) are compared with the insta snapshot beside it, Gleam/typst style. The
//! snapshot also carries the JSON form, so both renderings are pinned.
//! Update with `cargo insta review` (or INSTA_UPDATE=always) after an intended change.

use resyn_compiler::{check_bytes, render};

fn render_case(name: &str, bytes: &[u8]) -> String {
    let out = check_bytes(name, bytes);
    let mut s = String::new();
    if out.diagnostics.is_empty() {
        s.push_str("(no diagnostics)\n");
    }
    for d in &out.diagnostics {
        s.push_str(&render::human(d, &out.sources, false));
    }
    s.push_str("\n--- json ---\n");
    for d in &out.diagnostics {
        s.push_str(&render::json_line(d, &out.sources));
        s.push('\n');
    }
    s
}

#[test]
fn ui() {
    insta::glob!("ui/*.rsn", |path| {
        // Bytes, not text: some cases are deliberately not valid UTF-8 (E0012).
        let bytes = std::fs::read(path).expect("readable case");
        let src = String::from_utf8_lossy(&bytes).into_owned();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let rendered = render_case(&name, &bytes);
        insta::with_settings!({
            description => src.clone(),
            omit_expression => true,
            snapshot_path => "ui/snapshots",
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(name.trim_end_matches(".rsn"), rendered);
        });
    });
}
