//! UI tests: every `tests/ui/*.rsn` is checked and its rendered diagnostics (human form,
//! no colour) are compared with the insta snapshot beside it, Gleam/typst style. The
//! snapshot also carries the JSON form, so both renderings are pinned.
//! Update with `cargo insta review` (or INSTA_UPDATE=always) after an intended change.

use resyn_compiler::{check_source, render};

fn render_case(name: &str, src: &str) -> String {
    let out = check_source(name, src);
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
        let src = std::fs::read_to_string(path).expect("readable case");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let rendered = render_case(&name, &src);
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
