//! Front-end throughput: lex + parse + resolve + type-check of the bundled examples.
//! Goal (issue 2): at least 1,000 example files per second on one core.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn examples() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("examples")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rsn"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

fn bench(c: &mut Criterion) {
    let exs = examples();
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
