//! `unique_givens` reuses one Z3 solver per worker and shape (compiler/src/givens.rs). Its
//! results must be exactly those of a fresh solver per call: the same kept givens, the
//! same errors. Checked on every example that calls it and on the cases in tests/givens/,
//! with levels interleaved so several cached solvers (and their eviction) are exercised.

mod common;

use resyn_compiler::eval::{compile, DEFAULT_ATTEMPTS, DEFAULT_FUEL};
use resyn_compiler::givens::set_solver_reuse;
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
    let (_, program) = resyn_compiler::build_bytes(name, src);
    let compiled = compile(&program.expect("compiles"));
    let cenv = &compiled.envs[0];
    set_solver_reuse(reuse);
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
