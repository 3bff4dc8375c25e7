//! Front-end throughput: lex + parse + resolve + type-check of the bundled examples.
//! Goal (issue 2): at least 1,000 example files per second on one core.

#[path = "../../tests/common/mod.rs"]
mod common;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let exs: Vec<(String, String)> = common::examples()
        .into_iter()
        .map(|(n, b)| (n, String::from_utf8(b).expect("UTF-8 example")))
        .collect();
    let mut all = c.benchmark_group("check_all_examples");
    all.throughput(Throughput::Elements(exs.len() as u64));
    all.bench_function("files", |b| {
        b.iter(|| {
            for (name, src) in &exs {
                let out = resyn_compiler::check_source(name, src);
                assert!(!out.has_errors());
            }
        })
    });
    all.finish();

    let mut each = c.benchmark_group("check_example");
    for (name, src) in &exs {
        each.throughput(Throughput::Bytes(src.len() as u64));
        each.bench_with_input(BenchmarkId::from_parameter(name), src, |b, src| {
            b.iter(|| resyn_compiler::check_source(name, src))
        });
    }
    each.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
