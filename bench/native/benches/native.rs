//! Generation and verification per instance, level 3, one thread: the evaluator, emitted
//! code through the runtime's protocol (runtime values at the boundary), emitted code
//! called directly (typed), and hand-written Rust (`src/lib.rs`). Before timing, the four
//! are checked to make the same instances (same questions) from the same random streams.

use criterion::{criterion_group, criterion_main, Criterion};
use resyn_native_bench as hand;
use resyn_runtime::env::{generate, Stop, DEFAULT_ATTEMPTS, DEFAULT_FUEL};
use resyn_runtime::native::Machine;
use resyn_runtime::{derive_seed, Rng, Value};
use std::hint::black_box;

const LEVEL: u8 = 3;

fn key(env: &str, i: u64) -> [u8; 32] {
    derive_seed(env, LEVEL, "bench", 0, i)
}

fn evaluator(name: &str) -> resyn_compiler::eval::Compiled {
    let path = format!("{}/../../examples/{name}.rsn", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read(&path).expect("example");
    let (_, program) = resyn_compiler::build_bytes(&path, &src);
    resyn_compiler::eval::compile(&program.expect("the example builds"))
}

macro_rules! typed {
    ($m:ident) => {
        /// The emitted functions called directly: attempts until one is accepted, the
        /// planted witness verified, the question written.
        pub fn typed_gen(p: &resyn_envs::$m::Params, key: [u8; 32]) -> String {
            use resyn_envs::$m::*;
            let mut m = Machine::new(DEFAULT_FUEL, Some(Rng::from_key(key)));
            for _ in 0..DEFAULT_ATTEMPTS {
                match gen(&mut m, p) {
                    Ok((f, w)) => {
                        let w = w.expect("a witness");
                        let mut mv = Machine::new(DEFAULT_FUEL, None);
                        assert!(verify(&mut mv, p, &f, w).valid);
                        return question(&mut mv, p, &f).expect("a question");
                    }
                    Err(Stop::Reject(_)) => continue,
                    Err(Stop::Error(e)) => panic!("{e}"),
                }
            }
            panic!("no instance")
        }
    };
}

mod gc {
    use super::*;
    typed!(env_graph_coloring);
}

mod nq {
    use super::*;
    typed!(env_n_queens);
}

fn bench_env(c: &mut Criterion, name: &str) {
    let compiled = evaluator(name);
    let cenv = &compiled.envs[0];
    let params: Vec<Value> = cenv.resolve_params(LEVEL, &[]).expect("params");
    let emitted = resyn_envs::find(name).expect("emitted env");
    let hand_gen = |i: u64| -> hand::Made<Box<dyn std::any::Any>> {
        let mut rng = Rng::from_key(key(name, i));
        match name {
            "graph_coloring" => {
                let m = hand::coloring_gen(&mut rng, 9, 3, 0.4).expect("instance");
                hand::Made { instance: Box::new(m.instance), witness: m.witness, question: m.question }
            }
            _ => {
                let m = hand::queens_gen(&mut rng, 6, 2).expect("instance");
                hand::Made { instance: Box::new(m.instance), witness: m.witness, question: m.question }
            }
        }
    };
    let typed_gen = |i: u64| -> String {
        match name {
            "graph_coloring" => {
                let p = resyn_envs::env_graph_coloring::resolve_params(LEVEL, &[]).expect("params");
                gc::typed_gen(&p, key(name, i))
            }
            _ => {
                let p = resyn_envs::env_n_queens::resolve_params(LEVEL, &[]).expect("params");
                nq::typed_gen(&p, key(name, i))
            }
        }
    };
    // The same instances everywhere (same random stream, same question).
    for i in 0..40 {
        let a = cenv
            .generate(&params, Rng::from_key(key(name, i)), DEFAULT_FUEL, DEFAULT_ATTEMPTS)
            .expect("evaluator instance");
        let b = generate(emitted.as_ref(), &params, Rng::from_key(key(name, i)), DEFAULT_FUEL, DEFAULT_ATTEMPTS)
            .expect("emitted instance");
        assert_eq!(a.question, b.question, "{name} {i}: evaluator vs emitted");
        assert_eq!(a.question, typed_gen(i), "{name} {i}: typed");
        assert_eq!(a.question, hand_gen(i).question, "{name} {i}: hand-written");
    }

    let mut g = c.benchmark_group(format!("{name}/gen"));
    let mut i = 0u64;
    g.bench_function("evaluator", |b| {
        b.iter(|| {
            i += 1;
            black_box(cenv.generate(&params, Rng::from_key(key(name, i)), DEFAULT_FUEL, DEFAULT_ATTEMPTS).is_ok())
        })
    });
    g.bench_function("emitted (protocol)", |b| {
        b.iter(|| {
            i += 1;
            black_box(generate(emitted.as_ref(), &params, Rng::from_key(key(name, i)), DEFAULT_FUEL, DEFAULT_ATTEMPTS).is_ok())
        })
    });
    g.bench_function("emitted (typed)", |b| {
        b.iter(|| {
            i += 1;
            black_box(typed_gen(i).len())
        })
    });
    g.bench_function("hand-written", |b| {
        b.iter(|| {
            i += 1;
            black_box(hand_gen(i).question.len())
        })
    });
    g.finish();

    // Verification of 64 planted answers, cycled.
    let insts: Vec<_> = (0..64)
        .map(|i| cenv.generate(&params, Rng::from_key(key(name, i)), DEFAULT_FUEL, DEFAULT_ATTEMPTS).expect("instance"))
        .collect();
    let hands: Vec<_> = (0..64).map(hand_gen).collect();
    let mut g = c.benchmark_group(format!("{name}/verify"));
    let mut k = 0usize;
    g.bench_function("evaluator", |b| {
        b.iter(|| {
            k = (k + 1) % insts.len();
            let inst = &insts[k];
            black_box(cenv.verify(&params, &inst.fields, inst.witness.clone().expect("w")).valid)
        })
    });
    g.bench_function("emitted (protocol)", |b| {
        b.iter(|| {
            k = (k + 1) % insts.len();
            let inst = &insts[k];
            black_box(emitted.verify(&params, &inst.fields, inst.witness.clone().expect("w")).valid)
        })
    });
    macro_rules! typed_and_hand {
        ($m:ident, $hand_ty:ty, $hand_verify:path) => {{
            use resyn_envs::$m::*;
            let p = Params::from_values(&params).expect("params");
            let typed: Vec<(Fields, Answer)> = insts
                .iter()
                .map(|inst| {
                    let f = Fields::from_values(&inst.fields).expect("fields");
                    let w = inst.witness.as_ref().expect("w");
                    let a = <Answer as resyn_runtime::native::Val>::from_value(w).expect("answer");
                    (f, a)
                })
                .collect();
            g.bench_function("emitted (typed)", |b| {
                b.iter(|| {
                    k = (k + 1) % typed.len();
                    let (f, a) = &typed[k];
                    black_box(verify(&mut Machine::new(DEFAULT_FUEL, None), &p, f, a.clone()).valid)
                })
            });
            let hs: Vec<(&$hand_ty, &Vec<i64>)> = hands
                .iter()
                .map(|h| (h.instance.downcast_ref::<$hand_ty>().expect("instance"), &h.witness))
                .collect();
            g.bench_function("hand-written", |b| {
                b.iter(|| {
                    k = (k + 1) % hs.len();
                    black_box($hand_verify(hs[k].0, hs[k].1))
                })
            });
        }};
    }
    match name {
        "graph_coloring" => typed_and_hand!(env_graph_coloring, hand::Coloring, hand::coloring_verify),
        _ => typed_and_hand!(env_n_queens, hand::Queens, hand::queens_verify),
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_env(c, "graph_coloring");
    bench_env(c, "n_queens");
}

criterion_group!(native, benches);
criterion_main!(native);
