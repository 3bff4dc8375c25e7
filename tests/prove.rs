//! Z3 proofs on every example. SAT answers are cross-checked by construction (a witness
//! must pass the native verifier); UNSAT answers ("unsolvable", "unique") cannot be, so
//! they are guarded here: the first engine (bit-blasting `QF_FD`, or Z3's SMT core for
//! arithmetic on answer ints) and the general one (Z3's default solver) must agree, and
//! where the answer space is small a native enumeration of every possible answer must
//! agree too.

mod common;

use resyn_compiler::eval::{compile, CEnv, DEFAULT_ATTEMPTS, DEFAULT_FUEL};
use resyn_compiler::ir::{Program, Requirement};
use resyn_compiler::prove::{
    prove, prove_unrolled, prove_with, BatchProver, Engine, Limits, Status,
};
use resyn_runtime::rows::BATCH;
use resyn_runtime::{derive_seed, Domain, Len, Rng, Shape, Value};

fn instance(cenv: &CEnv, params: &[Value], level: u8, index: u64) -> Vec<Value> {
    let key = derive_seed(&cenv.ir.name, level, "{}", 9, index);
    cenv.generate(params, Rng::from_key(key), DEFAULT_FUEL, DEFAULT_ATTEMPTS)
        .expect("generates")
        .fields
}

fn programs() -> Vec<(String, Program)> {
    common::examples()
        .into_iter()
        .map(|(name, src)| {
            let (_, program) = resyn_compiler::build_bytes(&name, &src);
            (name, program.expect("example compiles"))
        })
        .collect()
}

#[test]
fn every_example_instance_is_proved_with_a_checked_witness() {
    for (name, program) in programs() {
        let compiled = compile(&program);
        for (e, cenv) in compiled.envs.iter().enumerate() {
            let unique = program.envs[e].requirement == Requirement::Unique;
            for level in 1..=5u8 {
                let params = cenv.resolve_params(level, &[]).expect("params");
                for index in 0..3u64 {
                    let fields = instance(cenv, &params, level, index);
                    let p = prove(&program, cenv, &params, &fields, unique, Limits::default());
                    let want = if unique {
                        Status::Unique
                    } else {
                        Status::Solvable
                    };
                    assert_eq!(p.status, want, "{name} L{level} #{index}: {:?}", p.reason);
                    assert!(p.witness_checked, "{name} L{level} #{index}");
                    let v = cenv.verify(&params, &fields, p.witness.clone().unwrap());
                    assert!(v.valid, "{name} L{level} #{index}: {:?}", v.failures);
                }
            }
        }
    }
}

/// A pseudo-Boolean comparison whose constant part (a weight picked for sure) is near the
/// i64 limit (`tests/prove/pb_near_limit.rsn`): the lowering must fall back, not overflow
/// moving it across the comparison.
#[test]
fn a_sum_near_the_int_limit_is_proved_exactly() {
    let program = test_env("pb_near_limit");
    let p = prove_at_level_one(&program, |cenv, params| instance(cenv, params, 1, 0));
    // Both values of pick[1] pass: two answers.
    assert_eq!(p.status, Status::Solvable, "{:?}", p.reason);
    assert!(p.witness_checked);
}

/// Every value of a finite shape, or None when there are more than `cap`.
fn enumerate(shape: &Shape, cap: usize) -> Option<Vec<Value>> {
    let ints = |d: &Domain| -> Option<Vec<Value>> {
        match d {
            Domain::Range { lo, hi } => {
                let n = hi.checked_sub(*lo)?;
                (n >= 0 && (n as usize) < cap).then(|| (*lo..=*hi).map(Value::Int).collect())
            }
            Domain::Values(vs) => Some(vs.iter().cloned().collect()),
            Domain::Any => None,
        }
    };
    let product =
        |parts: Vec<Vec<Value>>, mk: &dyn Fn(Vec<Value>) -> Value| -> Option<Vec<Value>> {
            let mut acc: Vec<Vec<Value>> = vec![vec![]];
            for p in parts {
                if acc.len().checked_mul(p.len())? > cap {
                    return None;
                }
                acc = acc
                    .iter()
                    .flat_map(|a| {
                        p.iter().map(move |x| {
                            let mut b = a.clone();
                            b.push(x.clone());
                            b
                        })
                    })
                    .collect();
            }
            Some(acc.into_iter().map(mk).collect())
        };
    match shape {
        Shape::Bool => Some(vec![Value::Bool(false), Value::Bool(true)]),
        Shape::Int { domain } | Shape::Str { domain } => ints(domain),
        Shape::Member { values, .. } => Some(values.iter().cloned().collect()),
        Shape::Enum { variants } => Some(
            variants
                .iter()
                .enumerate()
                .map(|(i, n)| Value::Enum(i as u32, n.as_str().into()))
                .collect(),
        ),
        Shape::Tuple(ps) => {
            let parts = ps
                .iter()
                .map(|p| enumerate(p, cap))
                .collect::<Option<Vec<_>>>()?;
            product(parts, &Value::tuple)
        }
        Shape::Record(fields) => {
            let parts = fields
                .iter()
                .map(|(_, p)| enumerate(p, cap))
                .collect::<Option<Vec<_>>>()?;
            let names: Vec<std::rc::Rc<str>> =
                fields.iter().map(|(k, _)| k.as_str().into()).collect();
            product(parts, &|vs| {
                Value::record(names.iter().cloned().zip(vs).collect())
            })
        }
        Shape::List { elem, len } => {
            let e = enumerate(elem, cap)?;
            let lens: Vec<usize> = match len {
                Len::Exact(n) => vec![*n],
                Len::AtMost(n) => (0..=*n).collect(),
                Len::Any => return None,
            };
            let mut out = Vec::new();
            for n in lens {
                out.extend(product(vec![e.clone(); n], &Value::list)?);
                if out.len() > cap {
                    return None;
                }
            }
            Some(out)
        }
        Shape::Map(k, v) => {
            // Every subset of the keys, each key with every value.
            let keys = enumerate(k, cap)?;
            let vals = enumerate(v, cap)?;
            let mut maps: Vec<std::collections::BTreeMap<Value, Value>> = vec![Default::default()];
            for key in keys {
                let mut next = maps.clone();
                for m in &maps {
                    for x in &vals {
                        let mut m2 = m.clone();
                        m2.insert(key.clone(), x.clone());
                        next.push(m2);
                    }
                }
                if next.len() > cap {
                    return None;
                }
                maps = next;
            }
            Some(
                maps.into_iter()
                    .map(|m| Value::Map(std::rc::Rc::new(m)))
                    .collect(),
            )
        }
        _ => None,
    }
}

/// The differential check on a test env of `tests/prove/`, instances of levels 1..=5,
/// with every status among them.
macro_rules! env_differentials {
    ($($(#[$doc:meta])* $test:ident: $name:literal, $n:expr;)*) => {$(
        $(#[$doc])*
        #[test]
        fn $test() {
            let statuses = differential_on($name, &test_env($name), $n, 1..=5);
            assert_all_statuses(&statuses);
        }
    )*};
}

env_differentials! {
    /// Map answers: presence literals and values per possible key.
    engines_agree_map_answers: "map_answer", 100;
    /// String and enum choices (one-hot literals) and `index_of` over an answer list (a
    /// one-hot position: the first hit, or -1) against the general engine's int selectors
    /// and `ite` chains and against enumeration of all 2,268 answers.
    engines_agree_on_choices_and_positions: "positions", 100;
    /// Stores at answer indices (out of range for one value; into a list of instance
    /// data, one that depends on the answer, and an answer list of bounded length) against
    /// the general engine and enumeration of all 208 answers.
    engines_agree_on_stores_at_answer_indices: "stores", 150;
    /// Arithmetic, order and division on one-hot answer ints (case splits) and signed sums
    /// and counts of answer bools (pseudo-Boolean constraints): the Boolean encoding
    /// against the plain-Int one and against enumeration of all 4,000 answers.
    engines_agree_on_one_hot_arithmetic_and_pseudo_boolean_sums: "encodings", 300;
    /// Place-value equations in column form with carries (the finite-domain side) against
    /// the general engine, which sees them whole, and against enumeration of all 10^4
    /// answers.
    engines_agree_on_place_value_equations_in_column_form: "columns", 120;
    /// `index_of` over lists an unconditional `all_different` makes distinct (first hits
    /// without "no earlier hit"), next to lists it must not treat so, against the general
    /// engine and enumeration of all 16,384 answers.
    engines_agree_on_positions_in_distinct_lists: "distinct", 120;
    /// Branches on conditions that required facts make known (a walk that checks each
    /// step, then tracks whether it was blocked), next to checks that must not be used
    /// outside their branch or binder, against the general engine (no pruning) and
    /// enumeration of all 364 answers.
    engines_agree_on_branches_decided_by_checks: "known", 120;
    /// Loops over an answer list lowered by enumerating their states (a list and a
    /// counter carried, record elements, a check and an index error forbidding pairs, the
    /// loop index in the cache key), next to a loop that falls back to the symbolic
    /// lowering, against the general engine (symbolic only) and enumeration of all 7,381
    /// answers.
    engines_agree_on_enumerated_loop_states: "states", 100;
    /// The same where a step reads the answer in a message, so the steps run in the
    /// symbolic executor instead of on the evaluator, against the general engine and
    /// enumeration of all 40 answers.
    engines_agree_on_enumerated_steps_run_symbolically: "states_message", 100;
    /// A loop over values an enumerated loop computed, whose elements' conditions are the
    /// first loop's named final states, against the general engine and enumeration of all
    /// 40 answers.
    engines_agree_on_loops_over_enumerated_results: "named_states", 100;
    /// Plain answer ints of a 120-value domain in a bounded-length answer, which the SAT
    /// engine bit-blasts as two's complement words: arithmetic with constants of either
    /// sign, Euclidean `/` and `%` by negative and positive constants, `abs`, `min`,
    /// `max`, order, a lookup indexed by an answer int; against the general engine, `QF_FD`
    /// and enumeration of all 14,521 answers.
    engines_agree_on_words_in_the_sat_engine: "words", 120;
}

/// The SAT engine (compiler/src/sat.rs) is the first engine for simulations over a
/// bounded-length answer and for all-Boolean answers on a fresh solver, and it takes them
/// without handing over to Z3.
#[test]
fn the_sat_engine_decides_simulations_and_words_itself() {
    for (name, program) in [
        ("maze_path", example("maze_path")),
        ("water_jugs", example("water_jugs")),
        ("knapsack", example("knapsack")),
        ("words", test_env("words")),
    ] {
        let compiled = compile(&program);
        let cenv = &compiled.envs[0];
        let params = cenv.resolve_params(1, &[]).expect("params");
        for index in 0..5 {
            let fields = instance(cenv, &params, 1, index);
            let p = prove_with(
                &program,
                cenv,
                &params,
                &fields,
                true,
                Limits::default(),
                None,
            );
            assert_eq!(p.engine, Engine::Sat, "{name} #{index}: {:?}", p.reason);
            assert_ne!(p.status, Status::Unknown, "{name} #{index}: {:?}", p.reason);
            assert!(
                p.effort.rlimit > 0,
                "{name}: the SAT engine's work is counted"
            );
        }
    }
}

/// The walks of maze_path and water_jugs, at the levels the general engine is too slow
/// for, where their first engine enumerates the walk's states: the same statuses as the
/// Boolean lowering that unrolls the walk symbolically (spec/proofs.md §2). Uniqueness is
/// asked, so each status past the first model rests on an UNSAT answer; maze_path's
/// levels 4 and 5 (no slack) have unique paths.
#[test]
fn enumerated_walks_agree_with_unrolled_ones() {
    let mut unique = 0;
    for (name, levels, n) in [("maze_path", 3..=5, 40), ("water_jugs", 2..=3, 40)] {
        let program = example(name);
        let compiled = compile(&program);
        let cenv = &compiled.envs[0];
        for level in levels {
            let params = cenv.resolve_params(level, &[]).expect("params");
            for index in 0..n {
                let fields = instance(cenv, &params, level, index);
                let at = format!("{name} L{level} #{index}");
                let lim = Limits::default();
                let first = prove(&program, cenv, &params, &fields, true, lim);
                let unrolled = prove_unrolled(&program, cenv, (&params[..], &fields[..]));
                assert_ne!(first.status, Status::Unknown, "{at}: {:?}", first.reason);
                assert_eq!(
                    first.status, unrolled.status,
                    "{at}: the lowerings disagree"
                );
                unique += usize::from(first.status == Status::Unique);
            }
        }
    }
    assert!(unique >= 20, "only {unique} unique instance(s)");
}

fn example(name: &str) -> Program {
    programs()
        .into_iter()
        .find(|(p, _)| p == name)
        .expect("example")
        .1
}

/// A product of answer ints goes to the linear engine first (spec/proofs.md §4), which
/// must agree with the general engine and with enumeration.
#[test]
fn engines_agree_on_nonlinear_arithmetic_in_the_smt_core() {
    let program = test_env("factor");
    let proof = prove_at_level_one(&program, |_, _| vec![Value::Int(221)]);
    assert_eq!(proof.engine, Engine::Linear);
    assert_eq!(proof.status, Status::Unique, "221 = 13 x 17");
    let statuses = differential_on("factor", &program, 200, 1..=5);
    assert_all_statuses(&statuses);
}

/// tests/prove/shared_walk.rsn: a fact that is a DAG with binomially many paths, after a
/// scaled int made the lowering look for place-value equations: proved, not hung.
#[test]
fn a_fact_with_shared_subterms_is_walked_once_per_node() {
    let program = test_env("shared_walk");
    let proof = prove_at_level_one(&program, |_, _| vec![Value::Int(7)]);
    assert_eq!(proof.status, Status::Solvable, "{:?}", proof.reason);
    assert!(proof.witness_checked);
}

/// The uniqueness proof (default limits) of the instance `fields` makes for the first
/// env of `program` at level 1.
fn prove_at_level_one(
    program: &Program,
    fields: impl FnOnce(&CEnv, &[Value]) -> Vec<Value>,
) -> resyn_compiler::prove::Proof {
    let compiled = compile(program);
    let cenv = &compiled.envs[0];
    let params = cenv.resolve_params(1, &[]).expect("params");
    let fields = fields(cenv, &params);
    prove(program, cenv, &params, &fields, true, Limits::default())
}

/// `tests/prove/NAME.rsn`, compiled.
fn test_env(name: &str) -> Program {
    let path = format!("{}/tests/prove/{name}.rsn", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read(&path).expect("test env");
    let (_, program) = resyn_compiler::build_bytes(&path, &src);
    program.expect("compiles")
}

/// A differential run proves little unless each kind of answer occurs.
fn assert_all_statuses(statuses: &[Status]) {
    for want in [Status::Unique, Status::Solvable, Status::Unsolvable] {
        let n = statuses.iter().filter(|s| **s == want).count();
        assert!(n >= 10, "only {n} instance(s) are {want:?}");
    }
}

/// Runs the differential check on `n` instances per level of one example.
fn differential(name: &str, n: u64, levels: std::ops::RangeInclusive<u8>) {
    differential_on(name, &example(name), n, levels);
}

/// Returns the status of every instance compared. The finite-domain side is the
/// production path: `gen --prove` and `prove` lower the rules of the puzzle once per batch
/// of `BATCH` instances (prove.rs, `BatchRules`), in one context per batch, so here too.
/// The first instances of each level are also proved in fresh contexts (`prove`, what
/// `audit --reprove` runs), which must answer the same.
fn differential_on(
    name: &str,
    program: &Program,
    n: u64,
    levels: std::ops::RangeInclusive<u8>,
) -> Vec<Status> {
    let compiled = compile(program);
    let cenv = &compiled.envs[0];
    let (mut compared, mut enumerated, mut fresh, mut second) = (0usize, 0usize, 0usize, 0usize);
    let mut engines = std::collections::BTreeMap::<String, usize>::new();
    let mut third = 0usize;
    let mut statuses = Vec::new();
    let (mut fd_time, mut general_time) = (0u64, 0u64);
    let started = std::time::Instant::now();
    let mut batch = BatchProver::default();
    for level in levels {
        let params = cenv.resolve_params(level, &[]).expect("params");
        for index in 0..n {
            let fields = instance(cenv, &params, level, index);
            let lim = Limits::default();
            let at = format!("{name} L{level} #{index}");
            let id = (usize::from(level), index / BATCH);
            let fd = batch.prove(id, program, cenv, &params, &fields, true, lim);
            assert_ne!(fd.status, Status::Unknown, "{at}: {:?}", fd.reason);
            // The first engine (`QF_FD`, or the SMT core for arithmetic on answer ints):
            // the general engine must stay the independent second opinion below.
            assert_ne!(fd.engine, Engine::General, "{at}: fell back");
            if fd.status != Status::Unsolvable {
                assert!(fd.witness_checked, "{at}");
            }
            fd_time += fd.effort.time_us;
            *engines.entry(format!("{:?}", fd.engine)).or_default() += 1;
            if fd.status == Status::Solvable {
                // Two different answers, both passed by the native verifier: certified
                // without any UNSAT answer.
                let alt = fd.alternative.as_ref().expect("a second answer");
                assert_ne!(Some(alt), fd.witness.as_ref(), "{at}");
                assert!(cenv.verify(&params, &fields, alt.clone()).valid, "{at}");
            }
            if index < FRESH_PER_LEVEL {
                let p = prove_with(program, cenv, &params, &fields, true, lim, None);
                assert_eq!(fd.status, p.status, "{at}: kept and fresh solvers disagree");
                fresh += 1;
            }
            compared += 1;
            statuses.push(fd.status);
            // The second engine and the enumeration wherever the status rests on an UNSAT
            // answer (`unique`, `unsolvable`), and on every eighth instance besides.
            if fd.status == Status::Solvable && index % 8 != 0 {
                continue;
            }
            let gen = prove_with(
                program,
                cenv,
                &params,
                &fields,
                true,
                lim,
                Some(Engine::General),
            );
            assert_ne!(gen.status, Status::Unknown, "{at}: {:?}", gen.reason);
            assert_eq!(fd.status, gen.status, "{at}: the engines disagree");
            // The two bit-blasting engines, ours and Z3's `QF_FD`, decide the same
            // formulas with different bit-blasters and SAT cores: whichever did not decide
            // the instance above is a third opinion. (Either may give up where the other
            // does not, e.g. `QF_FD` on `/` and `%` by constants: then it has none.)
            for other in [Engine::Sat, Engine::FiniteDomain] {
                if other == fd.engine {
                    continue;
                }
                let p = prove_with(program, cenv, &params, &fields, true, lim, Some(other));
                if p.status != Status::Unknown {
                    assert_eq!(
                        fd.status, p.status,
                        "{at}: {:?} and {other:?} disagree",
                        fd.engine
                    );
                    third += 1;
                }
            }
            general_time += gen.effort.time_us;
            second += 1;
            let shape = cenv.answer_shape(&params, &fields).expect("shape");
            if let Some(all) = enumerate(&shape, 20_000) {
                let valid = all
                    .into_iter()
                    .filter(|a| cenv.verify(&params, &fields, a.clone()).valid)
                    .take(2)
                    .count();
                let native = match valid {
                    0 => Status::Unsolvable,
                    1 => Status::Unique,
                    _ => Status::Solvable,
                };
                assert_eq!(fd.status, native, "{at}: Z3 disagrees with enumeration");
                enumerated += 1;
            }
        }
    }
    let count = |st: Status| statuses.iter().filter(|s| **s == st).count();
    eprintln!(
        "{name}: {compared} proved ({} unique, {} unsolvable, {} solvable; first engines {engines:?}), {second} by both engines ({third} by a second bit-blaster), {fresh} also fresh, {enumerated} enumerated, in {:.1}s (finite-domain {:.1}s, general {:.1}s)",
        count(Status::Unique),
        count(Status::Unsolvable),
        count(Status::Solvable),
        started.elapsed().as_secs_f64(),
        fd_time as f64 / 1e6,
        general_time as f64 / 1e6,
    );
    statuses
}

/// Instances per level that are also proved in fresh contexts.
const FRESH_PER_LEVEL: u64 = 10;

/// One test per example (the harness runs them in parallel). Counts: thousands where a
/// proof takes milliseconds; the simulations get fewer, at their smallest levels: their
/// first engine enumerates the walk's states (milliseconds), but the general engine, the
/// second opinion, unrolls the walk symbolically (0.1-1 s per proof from level 2 of
/// water_jugs and level 3 of maze_path on). tests/prove/states.rsn and known.rsn check
/// the enumeration against every answer.
macro_rules! differential_tests {
    ($($test:ident: $name:literal, $n:expr, $levels:expr;)*) => {$(
        #[test]
        fn $test() {
            differential($name, $n, $levels);
        }
    )*};
}

differential_tests! {
    engines_agree_cryptarithm: "cryptarithm", 500, 1..=3;
    engines_agree_dependency_sort: "dependency_sort", 500, 1..=3;
    engines_agree_futoshiki: "futoshiki", 200, 1..=5;
    engines_agree_graph_coloring: "graph_coloring", 500, 1..=5;
    engines_agree_knapsack: "knapsack", 400, 1..=3;
    engines_agree_knights_and_knaves: "knights_and_knaves", 500, 1..=5;
    engines_agree_magic_square: "magic_square", 200, 1..=5;
    engines_agree_maze_path: "maze_path", 300, 1..=2;
    engines_agree_mini_sudoku: "mini_sudoku", 200, 1..=5;
    engines_agree_n_queens: "n_queens", 200, 1..=5;
    engines_agree_subset_sum: "subset_sum", 300, 1..=5;
    engines_agree_sudoku: "sudoku", 20, 1..=5;
    engines_agree_water_jugs: "water_jugs", 150, 1..=1;
}

fn gen_error(src: &str) -> String {
    let (out, program) = resyn_compiler::build_bytes("t.rsn", src.as_bytes());
    assert!(!out.has_errors(), "{:?}", out.diagnostics);
    let compiled = compile(&program.unwrap());
    let cenv = &compiled.envs[0];
    let params = cenv.resolve_params(1, &[]).unwrap();
    match cenv.generate(
        &params,
        Rng::from_key([3; 32]),
        DEFAULT_FUEL,
        DEFAULT_ATTEMPTS,
    ) {
        Ok(_) => panic!("expected a generator error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unique_givens_reports_what_it_cannot_do() {
    // Verify reads a value the generator only sets after the call.
    let late = r#"/// t
env late {
    category test
    param n: int = levels(3, 3, 3, 3, 3)
    gen {
        let fixed = unique_givens("fixed", [(0, 1), (1, 2), (2, 0)], [1, 2, 0], 0)
        show fixed
        show n
    }
    answer xs: [int in 0..3; 3]
    verify {
        forall (i, v) in fixed: xs[i] == v
        len(xs) == n
    }
    prompt "{fixed} {n}"
}
"#;
    let e = gen_error(late);
    assert!(
        e.contains("`n`") && e.contains("after unique_givens"),
        "{e}"
    );

    // The givens do not pin the answer down even all together.
    let loose = r#"/// t
env loose {
    category test
    param n: int = levels(3, 3, 3, 3, 3)
    gen {
        let fixed = unique_givens("fixed", [(0, 1)], [1, 2, 0], 0)
        show fixed
    }
    answer xs: [int in 0..3; 3]
    verify {
        forall (i, v) in fixed: xs[i] == v
    }
    prompt "{fixed} {n}"
}
"#;
    let e = gen_error(loose);
    assert!(e.contains("not unique"), "{e}");
}

#[test]
fn unique_givens_keeps_a_minimal_unique_set() {
    // A permutation of 0..4 given as (position, value) pairs: any three pin down the
    // fourth, so exactly one given can go, and the first one in list order goes.
    let src = r#"/// t
env perm {
    category test
    param n: int = levels(4, 4, 4, 4, 4)
    gen {
        let fixed = unique_givens("fixed", [(0, 3), (1, 0), (2, 2), (3, 1)], [3, 0, 2, 1], 0)
        show fixed
        witness [3, 0, 2, 1]
    }
    answer xs: [int in 0..4; 4]
    verify {
        all_different(xs)
        forall (i, v) in fixed: xs[i] == v
    }
    require unique
    prompt "{fixed} {n}"
}
"#;
    let (_, program) = resyn_compiler::build_bytes("t.rsn", src.as_bytes());
    let compiled = compile(&program.unwrap());
    let cenv = &compiled.envs[0];
    let params = cenv.resolve_params(1, &[]).unwrap();
    let inst = cenv
        .generate(
            &params,
            Rng::from_key([3; 32]),
            DEFAULT_FUEL,
            DEFAULT_ATTEMPTS,
        )
        .unwrap();
    assert_eq!(inst.fields[0].display(), "[(1, 0), (2, 2), (3, 1)]");
}
