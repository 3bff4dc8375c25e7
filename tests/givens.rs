//! `unique_givens` reuses one Z3 solver per worker and shape (compiler/src/givens.rs). Its
//! results must be exactly those of a fresh solver per call: the same kept givens, the
//! same errors. Checked on every example that calls it and on the cases in tests/givens/,
//! with levels interleaved so several cached solvers (and their eviction) are exercised.

mod common;

use resyn_compiler::eval::{compile, DEFAULT_ATTEMPTS, DEFAULT_FUEL};
use resyn_compiler::givens::{
    clues_by_value, removes_in_blocks, set_removal, set_solver_reuse, Removal,
};
use resyn_runtime::{derive_seed, Rng};

fn sources() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = common::examples()
        .into_iter()
        .filter(|(_, src)| String::from_utf8_lossy(src).contains("unique_givens("))
        .collect();
    out.extend(common::examples_in(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/givens"
    )));
    out.sort();
    assert!(
        out.len() >= 4,
        "examples and cases: {:?}",
        out.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
    out
}

/// Every instance of `n` per level, levels interleaved, as text (fields or the error).
fn generate(name: &str, src: &[u8], n: u64, reuse: bool) -> Vec<String> {
    generate_with(name, src, n, reuse, Removal::Auto)
}

fn generate_with(name: &str, src: &[u8], n: u64, reuse: bool, removal: Removal) -> Vec<String> {
    let (_, program) = resyn_compiler::build_bytes(name, src);
    let compiled = compile(&program.expect("compiles"));
    let cenv = &compiled.envs[0];
    set_solver_reuse(reuse);
    set_removal(removal);
    let mut out = Vec::new();
    for index in 0..n {
        for level in 1..=5u8 {
            let params = cenv.resolve_params(level, &[]).expect("params");
            let key = derive_seed(&cenv.ir.name, level, "{}", 5, index);
            out.push(
                match cenv.generate(&params, Rng::from_key(key), DEFAULT_FUEL, DEFAULT_ATTEMPTS) {
                    Ok(inst) => format!(
                        "{:?}",
                        inst.fields.iter().map(|v| v.display()).collect::<Vec<_>>()
                    ),
                    Err(e) => format!("error: {e}"),
                },
            );
        }
    }
    set_solver_reuse(true);
    set_removal(Removal::Auto);
    out
}

#[test]
fn reused_solvers_answer_as_fresh_ones() {
    for (name, src) in sources() {
        let n = if name.contains("sudoku") && !name.contains("mini") {
            4
        } else {
            60
        };
        let reused = generate(&name, &src, n, true);
        let fresh = generate(&name, &src, n, false);
        for (i, (a, b)) in reused.iter().zip(&fresh).enumerate() {
            assert_eq!(a, b, "{name}: instance {i} (level {}) differs", i % 5 + 1);
        }
        let errors = fresh.iter().filter(|r| r.starts_with("error")).count();
        assert!(
            errors < fresh.len(),
            "{name}: every instance failed: {:?}",
            fresh.first()
        );
    }
}

/// Removal in blocks (where verify is monotone in the givens) must keep exactly the givens
/// that the one-by-one definition keeps, with the same errors.
#[test]
fn blocks_keep_what_one_by_one_keeps() {
    let mut in_blocks = Vec::new();
    for (name, src) in sources() {
        let n = if name.contains("sudoku") && !name.contains("mini") {
            4
        } else {
            60
        };
        let (_, program) = resyn_compiler::build_bytes(&name, &src);
        let compiled = compile(&program.expect("compiles"));
        if removes_in_blocks(&compiled.envs[0], "fixed") == Some(true) {
            in_blocks.push(name.clone());
        }
        let auto = generate_with(&name, &src, n, true, Removal::Auto);
        let one = generate_with(&name, &src, n, false, Removal::OneByOne);
        for (i, (a, b)) in auto.iter().zip(&one).enumerate() {
            assert_eq!(a, b, "{name}: instance {i} (level {}) differs", i % 5 + 1);
        }
    }
    // The examples and the monotone cases do take the fast path.
    for expected in ["mini_sudoku", "sudoku", "partial", "shifted"] {
        assert!(
            in_blocks.iter().any(|n| n == expected),
            "{expected} should remove in blocks: {in_blocks:?}"
        );
    }
}

/// Verify that reads `len` of the givens is not monotone in them: the analysis must say
/// so, and blocks there would keep other givens than the definition (so the test above
/// would catch an analysis that said yes).
#[test]
fn non_monotone_verify_removes_one_by_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/givens/nonmonotone.rsn");
    let src = std::fs::read(path).expect("test case");
    let (_, program) = resyn_compiler::build_bytes(path, &src);
    let compiled = compile(&program.expect("compiles"));
    assert_eq!(removes_in_blocks(&compiled.envs[0], "fixed"), Some(false));
    let one = generate_with(path, &src, 20, true, Removal::OneByOne);
    let forced = generate_with(path, &src, 20, true, Removal::Blocks);
    let differ = one.iter().zip(&forced).filter(|(a, b)| a != b).count();
    assert!(
        differ > 0,
        "blocks and one by one agree on every instance: the case does not test the analysis"
    );
    assert!(
        one.iter().all(|r| !r.starts_with("error")),
        "{:?}",
        one.first()
    );
}

/// Where a given's clues read nothing but the given (the sudokus), a solver with kept facts
/// lowers each given value once; where they read another instance value (`offset`'s shift,
/// `avoid`'s rule, `partial`'s limit) or verify is not monotone, it must lower per
/// instance. `reused_solvers_answer_as_fresh_ones` shows the results agree either way.
#[test]
fn clues_are_lowered_once_per_value_only_where_they_read_nothing_else() {
    let mut answers = Vec::new();
    for (name, src) in sources() {
        let (_, program) = resyn_compiler::build_bytes(&name, &src);
        let compiled = compile(&program.expect("compiles"));
        let stem = std::path::Path::new(&name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        answers.push((stem, clues_by_value(&compiled.envs[0], "fixed")));
    }
    let expected = [
        ("avoid", Some(false)),
        ("mini_sudoku", Some(true)),
        ("nonmonotone", Some(false)),
        ("offset", Some(false)),
        ("partial", Some(false)),
        ("shifted", Some(false)),
        ("sudoku", Some(true)),
    ];
    for (stem, want) in expected {
        let got = answers.iter().find(|(n, _)| n == stem).map(|(_, a)| *a);
        assert_eq!(got, Some(want), "{stem}: {answers:?}");
    }
}
