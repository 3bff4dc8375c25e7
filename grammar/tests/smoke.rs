use resyn_grammar::{parse_file, span::FileId};

#[test]
fn graph_coloring_parses() {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/graph_coloring.rsn"
    ))
    .unwrap();
    let out = parse_file(&src, FileId(0));
    assert!(out.diagnostics.is_empty(), "{:#?}", out.diagnostics);
    assert_eq!(out.file.items.len(), 1);
    println!("{:#?}", out.file);
}
