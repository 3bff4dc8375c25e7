//! Z3 proofs on every example: each generated instance is proved solvable (unique where the
//! env requires it), and every solver witness passes the native verifier.

mod common;

use resyn_compiler::eval::{compile, DEFAULT_ATTEMPTS, DEFAULT_FUEL};
use resyn_compiler::ir::Requirement;
use resyn_compiler::prove::{prove, Limits, Status};
use resyn_runtime::{derive_seed, Rng};

#[test]
fn every_example_instance_is_proved_with_a_checked_witness() {
    for (name, src) in common::examples() {
        let (_, program) = resyn_compiler::build_bytes(&name, &src);
        let program = program.expect("example compiles");
        let compiled = compile(&program);
        for (e, cenv) in compiled.envs.iter().enumerate() {
            let unique = program.envs[e].requirement == Requirement::Unique;
            for level in 1..=5u8 {
                let params = cenv.resolve_params(level, &[]).expect("params");
                for index in 0..4u64 {
                    let key = derive_seed(&cenv.ir.name, level, "{}", 9, index);
                    let inst = cenv
                        .generate(&params, Rng::from_key(key), DEFAULT_FUEL, DEFAULT_ATTEMPTS)
                        .expect("generates");
                    let p = prove(
                        &program,
                        cenv,
                        &params,
                        &inst.fields,
                        unique,
                        Limits::default(),
                    );
                    let want = if unique {
                        Status::Unique
                    } else {
                        Status::Solvable
                    };
                    assert_eq!(
                        p.status, want,
                        "{name} L{level} #{index}: {:?} {:?}",
                        p.reason, p.alternative
                    );
                    assert!(p.witness_checked, "{name} L{level} #{index}");
                }
            }
        }
    }
}
