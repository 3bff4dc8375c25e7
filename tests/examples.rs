//! Every bundled example checks clean (no errors, no warnings other than static safety's)
//! and carries what a published environment needs: a doc comment, a category and
//! five-level params. What static safety cannot prove in the examples is pinned by the
//! `examples_safety` snapshot: a change in the analysis's reach shows up there.

use resyn_grammar::ast::{EnvItem, ExprKind, Item};

#[test]
fn every_example_checks_clean_and_is_complete() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut seen = 0;
    let mut safety = String::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    paths.sort();
    for p in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "rsn"))
    {
        seen += 1;
        let src = std::fs::read_to_string(p).unwrap();
        // The file name alone: the snapshot must not depend on where the repository is.
        let name = format!("examples/{}", p.file_name().unwrap().to_string_lossy());
        let out = resyn_compiler::check_source(&name, &src);
        let (proofs, others): (Vec<_>, Vec<_>) = out
            .diagnostics
            .iter()
            .partition(|d| matches!(d.code, "W0006" | "W0007" | "W0008"));
        let rendered: String = others
            .iter()
            .map(|d| resyn_compiler::render::human(d, &out.sources, false))
            .collect();
        assert!(others.is_empty(), "{name}:\n{rendered}");
        for d in proofs {
            safety.push_str(&resyn_compiler::render::json_line(d, &out.sources));
            safety.push('\n');
        }

        let ast = resyn_grammar::parse_file(&src, resyn_grammar::span::FileId(0)).file;
        let stem = p.file_stem().unwrap().to_string_lossy();
        let env = ast
            .items
            .iter()
            .find_map(|i| match i {
                Item::Env(e) if e.name.name == stem => Some(e),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name}: no env named `{stem}`"));
        assert!(
            env.doc.as_deref().is_some_and(|d| !d.is_empty()),
            "{name}: doc comment"
        );
        assert!(
            env.items.iter().any(|i| matches!(i, EnvItem::Category(..))),
            "{name}: category"
        );
        let leveled = env.items.iter().any(|i| match i {
            EnvItem::Param(p) => matches!(&p.default.kind, ExprKind::Call { callee, args }
                if callee.to_string_path() == "levels" && args.len() == 5),
            _ => false,
        });
        assert!(
            leveled,
            "{name}: at least one param with levels(…) for levels 1..5"
        );
    }
    assert!(seen >= 1, "no examples found");
    insta::assert_snapshot!("examples_safety", safety);
}
