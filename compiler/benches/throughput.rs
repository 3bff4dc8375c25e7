//! Generation and verification throughput per example (issue 3), level 3: one instance
//! per iteration (rotating the index), and the verification of its planted witness.

#[path = "../../tests/common/mod.rs"]
mod common;
use common::examples;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use resyn_compiler::eval::{compile, DEFAULT_ATTEMPTS, DEFAULT_FUEL};
use resyn_runtime::{derive_seed, Rng};

fn bench(c: &mut Criterion) {
    let mut gen = c.benchmark_group("gen_level3");
    gen.throughput(Throughput::Elements(1));
    let mut prepared = Vec::new();
    for (name, src) in examples() {
        let (_, program) = resyn_compiler::build_bytes(&name, &src);
        let compiled = compile(&program.expect("example compiles"));
        let params = compiled.envs[0].resolve_params(3, &[]).expect("params");
        let mut index = 0u64;
        gen.bench_function(BenchmarkId::from_parameter(&name), |b| {
            b.iter(|| {
                index += 1;
                let rng = Rng::from_key(derive_seed(&name, 3, "{}", 0, index));
                compiled.envs[0]
                    .generate(&params, rng, DEFAULT_FUEL, DEFAULT_ATTEMPTS)
                    .expect("instance")
            })
        });
        prepared.push((name, compiled, params));
    }
    gen.finish();

    let mut ver = c.benchmark_group("verify_witness_level3");
    ver.throughput(Throughput::Elements(1));
    for (name, compiled, params) in &prepared {
        let env = &compiled.envs[0];
        let inst = env
            .generate(
                params,
                Rng::from_key(derive_seed(name, 3, "{}", 0, 0)),
                DEFAULT_FUEL,
                DEFAULT_ATTEMPTS,
            )
            .expect("instance");
        let witness = inst.witness.clone().expect("witness");
        ver.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let v = env.verify(params, &inst.fields, witness.clone());
                assert!(v.valid);
                v
            })
        });
    }
    ver.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
