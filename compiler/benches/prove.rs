//! Proof throughput per example (issue 4), level 3: one instance per iteration, rotating
//! over 16 pre-generated instances. Two groups: `prove_unique_level3` asks uniqueness of
//! every env, each proof in a fresh Z3 context (`prove::prove`); `prove_required_level3`
//! proves what the env requires (unique for `require unique`, else solvable) with a context
//! per batch of `rows::BATCH` proofs: what `gen --prove` and `prove` do.
//! Generation with `unique_givens` (sudoku, mini_sudoku) is measured by the `gen_level3`
//! group of the `throughput` bench.

#[path = "../../tests/common/mod.rs"]
mod common;
use common::examples;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use resyn_compiler::eval::{compile, DEFAULT_ATTEMPTS, DEFAULT_FUEL};
use resyn_compiler::ir::Requirement;
use resyn_compiler::prove::{prove, BatchProver, Limits, Status};
use resyn_runtime::rows::BATCH;
use resyn_runtime::{derive_seed, Rng};

fn bench(c: &mut Criterion) {
    group(c, "prove_unique_level3", |_| true, false);
    group(
        c,
        "prove_required_level3",
        |req| req == Requirement::Unique,
        true,
    );
}

fn group(c: &mut Criterion, title: &str, unique: fn(Requirement) -> bool, batched: bool) {
    let mut group = c.benchmark_group(title);
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    for (name, src) in examples() {
        let (_, program) = resyn_compiler::build_bytes(&name, &src);
        let program = program.expect("example compiles");
        let compiled = compile(&program);
        let env = &compiled.envs[0];
        let params = env.resolve_params(3, &[]).expect("params");
        let instances: Vec<_> = (0..16u64)
            .map(|i| {
                let rng = Rng::from_key(derive_seed(&name, 3, "{}", 0, i));
                env.generate(&params, rng, DEFAULT_FUEL, DEFAULT_ATTEMPTS)
                    .expect("instance")
                    .fields
            })
            .collect();
        let unique = unique(env.ir.requirement);
        let mut k = 0usize;
        let mut calls = 0u64;
        let mut prover = BatchProver::default();
        group.bench_function(BenchmarkId::from_parameter(&name), |b| {
            b.iter(|| {
                k = (k + 1) % instances.len();
                calls += 1;
                let p = if batched {
                    let batch = (0, calls / BATCH);
                    let fields = &instances[k];
                    prover.prove(
                        batch,
                        &program,
                        env,
                        &params,
                        fields,
                        unique,
                        Limits::default(),
                    )
                } else {
                    prove(
                        &program,
                        env,
                        &params,
                        &instances[k],
                        unique,
                        Limits::default(),
                    )
                };
                assert!(matches!(p.status, Status::Unique | Status::Solvable));
                p
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
