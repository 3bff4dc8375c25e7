//! Proof throughput per example (issue 4), level 3: one instance per iteration, rotating
//! over 16 pre-generated instances, proved with uniqueness asked (`prove --unique`).
//! Generation with `unique_givens` (sudoku, mini_sudoku) is measured by the `gen_level3`
//! group of the `throughput` bench.

#[path = "../../tests/common/mod.rs"]
mod common;
use common::examples;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use resyn_compiler::eval::{compile, DEFAULT_ATTEMPTS, DEFAULT_FUEL};
use resyn_compiler::prove::{prove, Limits, Status};
use resyn_runtime::{derive_seed, Rng};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("prove_unique_level3");
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
        let mut k = 0usize;
        group.bench_function(BenchmarkId::from_parameter(&name), |b| {
            b.iter(|| {
                k = (k + 1) % instances.len();
                let p = prove(
                    &program,
                    env,
                    &params,
                    &instances[k],
                    true,
                    Limits::default(),
                );
                assert!(matches!(p.status, Status::Unique | Status::Solvable));
                p
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
