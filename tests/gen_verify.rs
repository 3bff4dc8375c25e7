//! Issue-3 contract over every example and level: generation is deterministic (same
//! inputs ⇒ byte-identical rows, another seed ⇒ different rows), planted witnesses score 1,
//! one-element perturbations are mostly rejected (and an independent checker agrees on
//! graph coloring), and junk responses score 0 with a row error and no crash.

mod common;
use common::{examples, perturbations};
use resyn_compiler::dataset::{generate, verify_line, Format, GenRequest};
use resyn_compiler::eval::compile;
use serde_json::{json, Value as Json};

fn rows(
    program: &resyn_compiler::ir::Program,
    seed: u64,
    n: u64,
    format: Format,
    jobs: usize,
) -> Vec<String> {
    let req = GenRequest {
        program,
        env: 0,
        levels: vec![1, 2, 3, 4, 5],
        n,
        seed,
        overrides: vec![],
        format,
        source_hash: "test".into(),
        jobs,
        prove: None,
    };
    let (rows, failures) = generate(&req, &|| {}).expect("params resolve");
    assert!(failures.is_empty(), "{failures:?}");
    rows
}

#[test]
fn deterministic_and_jobs_independent() {
    for (name, src) in examples() {
        let (_, program) = resyn_compiler::build_bytes(&name, &src);
        let program = program.unwrap();
        let a = rows(&program, 7, 6, Format::Resyn, 1);
        assert_eq!(
            a,
            rows(&program, 7, 6, Format::Resyn, 1),
            "{name}: two runs differ"
        );
        assert_eq!(
            a,
            rows(&program, 7, 6, Format::Resyn, 2),
            "{name}: --jobs 2 differs"
        );
        assert_ne!(
            a,
            rows(&program, 8, 6, Format::Resyn, 1),
            "{name}: another seed gives the same rows"
        );
    }
}

#[test]
fn witnesses_pass_perturbations_fail_junk_errors() {
    for (name, src) in examples() {
        let (_, program) = resyn_compiler::build_bytes(&name, &src);
        let program = program.unwrap();
        let compiled = compile(&program);
        let cenv = &compiled.envs[0];
        let (mut perturbed, mut rejected) = (0usize, 0usize);
        for line in rows(&program, 3, 4, Format::Resyn, 1) {
            let row: Json = serde_json::from_str(&line).unwrap();
            let w = row["witness"].clone();
            assert!(!w.is_null(), "{name}: every example plants a witness");
            let with = |extra: Json| {
                let mut r = row.clone();
                for (k, v) in extra.as_object().unwrap() {
                    r[k] = v.clone();
                }
                verify_line(cenv, &r.to_string(), None)
            };
            let ok = with(json!({"answer": w}));
            assert_eq!(ok["score"], 1.0, "{name}: witness scored {ok}");
            let tagged = with(json!({"response": format!("Reasoning...\n<answer>{w}</answer>")}));
            assert_eq!(
                tagged["score"], 1.0,
                "{name}: tagged witness scored {tagged}"
            );
            for p in perturbations(&w).into_iter().take(40) {
                let r = with(json!({"answer": p}));
                perturbed += 1;
                if r["score"] == 0.0 {
                    rejected += 1;
                    assert!(r["valid"] == false);
                }
            }
            let deep = "[".repeat(100_000);
            let garbage: String = (0..1_000_000u32)
                .map(|i| char::from(b'!' + (i.wrapping_mul(2654435761) % 90) as u8))
                .collect();
            for junk in [
                "",
                "I have no idea.",
                "```\n\n```",
                deep.as_str(),
                garbage.as_str(),
            ] {
                let r = with(json!({"response": junk}));
                assert_eq!(r["score"], 0.0, "{name}: junk scored {r}");
                assert!(
                    !r["error"].is_null() || !r["failures"].as_array().unwrap().is_empty(),
                    "{name}: junk without a reason: {r}"
                );
            }
            let r = verify_line(cenv, "{not json", None);
            assert_eq!(r["error"]["code"], "row.invalid");
            // A lone surrogate escape (half an emoji cut by a JavaScript client) is read as
            // U+FFFD, like an invalid byte, in the response and in the id: the answer
            // around it still counts.
            let lit = serde_json::to_string(&format!("<answer>{w}</answer> ")).unwrap();
            let lone = format!("{}\\ud83d\"", &lit[..lit.len() - 1]);
            let mut r = row.clone();
            r["response"] = json!("RESPONSE");
            r["id"] = json!("ID");
            let text = r
                .to_string()
                .replace("\"RESPONSE\"", &lone)
                .replace("\"ID\"", "\"a\\udc00b\"");
            let v = verify_line(cenv, &text, None);
            assert_eq!(v["score"], 1.0, "{name}: {v}");
            // So is a row that a Windows tool opened with a byte order mark.
            let bom = verify_line(cenv, &format!("\u{feff}{text}"), None);
            assert_eq!(bom, v, "{name}");
            assert_eq!(v["id"], "a\u{fffd}\u{fffd}\u{fffd}b", "{name}: {v}");
        }
        // A verifier that accepts near-misses is broken: most one-element changes must fail.
        assert!(
            rejected * 2 >= perturbed,
            "{name}: only {rejected} of {perturbed} perturbations rejected"
        );
    }
}

/// An independent checker for graph coloring: verify's verdict must equal it exactly.
#[test]
fn graph_coloring_verdicts_match_an_independent_checker() {
    let src = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/graph_coloring.rsn"
    ))
    .unwrap();
    let (_, program) = resyn_compiler::build_bytes("graph_coloring", &src);
    let program = program.unwrap();
    let compiled = compile(&program);
    let cenv = &compiled.envs[0];
    let mut checked = 0;
    for line in rows(&program, 11, 10, Format::Resyn, 1) {
        let row: Json = serde_json::from_str(&line).unwrap();
        let edges: Vec<(usize, usize)> =
            serde_json::from_value(row["instance"]["edges"].clone()).unwrap();
        let colors = row["instance"]["colors"].as_i64().unwrap();
        for p in perturbations(&row["witness"]) {
            let c: Vec<i64> = serde_json::from_value(p.clone()).unwrap();
            let expect = c.iter().all(|x| (0..colors).contains(x))
                && edges.iter().all(|&(u, v)| c[u] != c[v]);
            let mut r = row.clone();
            r["answer"] = p;
            let got = verify_line(cenv, &r.to_string(), None);
            assert_eq!(got["valid"] == true, expect, "{got} for {c:?}");
            checked += 1;
        }
    }
    assert!(checked > 100);
}

#[test]
fn export_forms_have_fixed_column_types() {
    let src = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/water_jugs.rsn"
    ))
    .unwrap();
    let (_, program) = resyn_compiler::build_bytes("water_jugs", &src);
    let program = program.unwrap();
    let compiled = compile(&program);
    for line in rows(&program, 1, 2, Format::Verl, 1) {
        let r: Json = serde_json::from_str(&line).unwrap();
        assert!(r["data_source"].is_string() && r["ability"].is_string());
        assert_eq!(r["prompt"][0]["role"], "user");
        assert!(r["reward_model"]["ground_truth"].is_string());
        assert!(r["extra_info"]["instance_json"].is_string());
        // The export row verifies on its own, with the ground truth as the answer.
        let mut q = r.clone();
        q["response"] = r["reward_model"]["ground_truth"].clone();
        assert_eq!(
            verify_line(&compiled.envs[0], &q.to_string(), None)["score"],
            1.0
        );
    }
    for line in rows(&program, 1, 2, Format::ReasoningGym, 1) {
        let r: Json = serde_json::from_str(&line).unwrap();
        assert!(r["question"].is_string() && r["answer"].is_string() && r["metadata"].is_object());
        // Fed back without a `response`, the ground truth is not graded as a candidate.
        let unchanged = verify_line(&compiled.envs[0], &r.to_string(), None);
        assert_eq!(unchanged["score"], 0.0);
        assert_eq!(unchanged["error"]["code"], "row.invalid");
        assert!(unchanged["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`response`"));
        let mut q = r.clone();
        q["response"] = r["answer"].clone();
        assert_eq!(
            verify_line(&compiled.envs[0], &q.to_string(), None)["score"],
            1.0
        );
    }
}

#[test]
fn extraction_mode_per_env_and_per_run() {
    let src = "/// t\nenv pick {\n category test\n extract tag\n param n: int = levels(1, 1, 1, 1, 1)\n gen { show n }\n answer a: int in 0..3\n verify { a == n }\n prompt \"Answer {n} inside <answer></answer>.\"\n}\n";
    let (out, program) = resyn_compiler::build_bytes("pick.rsn", src.as_bytes());
    assert!(!out.has_errors());
    let compiled = compile(&program.unwrap());
    let env = &compiled.envs[0];
    let row = |resp: &str| {
        json!({"instance": {"n": 1}, "hidden": {}, "params": {"n": 1}, "response": resp})
            .to_string()
    };
    // The env says `extract tag`: a bare `1` is not an answer…
    let r = verify_line(env, &row("the answer is 1"), None);
    assert_eq!(r["error"]["code"], "answer.extract", "{r}");
    assert_eq!(
        verify_line(env, &row("<answer>1</answer>"), None)["score"],
        1.0
    );
    // …unless the run overrides it.
    let r = verify_line(
        env,
        &row("the answer is 1"),
        Some(resyn_runtime::ExtractMode::Json),
    );
    assert_eq!(r["score"], 1.0, "{r}");
}

#[test]
fn fuel_is_shared_by_all_attempts_of_an_instance() {
    // Each attempt spends 100k steps and is rejected: with a 1M budget the instance must fail
    // on the step limit after about ten attempts, not run all 1,000.
    let src = "/// t\nenv slow {\n category test\n param n: int = levels(1, 1, 1, 1, 1)\n gen {\n  var s = 0\n  for i in 0..100000 { s = s + i }\n  require s < 0\n  show n\n }\n answer a: int in 0..3\n verify { a == n }\n prompt \"{n}\"\n}\n";
    let (out, program) = resyn_compiler::build_bytes("slow.rsn", src.as_bytes());
    assert!(!out.has_errors());
    let compiled = compile(&program.unwrap());
    let env = &compiled.envs[0];
    let params = env.resolve_params(1, &[]).unwrap();
    let err = env
        .generate(
            &params,
            resyn_runtime::Rng::from_key([1; 32]),
            1_000_000,
            1_000,
        )
        .unwrap_err();
    match err {
        resyn_compiler::eval::GenError::Runtime { message } => {
            assert!(message.contains("step limit"), "{message}")
        }
        other => panic!("expected the step limit, got {other:?}"),
    }
}

#[test]
fn chunked_streaming_is_jobs_independent_across_chunk_boundaries() {
    let src = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/subset_sum.rsn"
    ))
    .unwrap();
    let (_, program) = resyn_compiler::build_bytes("subset_sum", &src);
    let program = program.unwrap();
    let run = |jobs| {
        let req = GenRequest {
            program: &program,
            env: 0,
            levels: vec![1, 2],
            n: 4096 + 3, // more than one chunk per level
            seed: 5,
            overrides: vec![],
            format: Format::Resyn,
            source_hash: "test".into(),
            jobs,
            prove: None,
        };
        generate(&req, &|| {}).unwrap().0
    };
    let a = run(1);
    assert_eq!(a.len(), 2 * 4099);
    assert_eq!(a, run(2));
    let ids: std::collections::HashSet<String> = a
        .iter()
        .map(|r| {
            serde_json::from_str::<Json>(r).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), a.len(), "every row has its own id, in order");
}

#[test]
fn duplicate_keys_inside_an_answer_are_rejected_not_merged() {
    let src = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/water_jugs.rsn"
    ))
    .unwrap();
    let (_, program) = resyn_compiler::build_bytes("water_jugs", &src);
    let program = program.unwrap();
    let compiled = compile(&program);
    let line = rows(&program, 2, 1, Format::Resyn, 1).remove(0);
    let row: Json = serde_json::from_str(&line).unwrap();
    let w = row["witness"].to_string();
    assert!(w.starts_with("[{\"jug\":"), "{w}");
    // The same answer with a repeated field in its first action.
    let dup = w.replacen("{\"jug\":", "{\"jug\":0,\"jug\":", 1);
    let mut base = row.clone();
    base.as_object_mut().unwrap().remove("witness");
    let text = base.to_string();
    let with = |answer: &str| format!("{},\"answer\":{answer}}}", &text[..text.len() - 1]);
    assert_eq!(
        verify_line(&compiled.envs[0], &with(&w), None)["score"],
        1.0
    );
    let r = verify_line(&compiled.envs[0], &with(&dup), None);
    assert_eq!(r["error"]["code"], "answer.decode", "{r}");
}

#[test]
fn answer_domains_over_other_types_are_enforced_by_the_decoder() {
    // `(int, int) in edges` is checked when the answer is read, before verify runs.
    let src = "/// t\nenv pick_edge {\n category test\n param n: int = levels(4, 4, 4, 4, 4)\n gen {\n  let edges = [(0, 1), (1, 2), (2, 3)]\n  witness (1, 2)\n  show edges\n }\n answer e: (int, int) in edges\n verify { e.0 < e.1 }\n prompt \"Pick one of {edges}.\"\n}\n";
    let (out, program) = resyn_compiler::build_bytes("pick_edge", src.as_bytes());
    assert!(!out.has_errors(), "{:?}", out.diagnostics);
    let program = program.unwrap();
    let compiled = compile(&program);
    let row = |answer: &str| {
        format!(
            r#"{{"instance":{{"edges":[[0,1],[1,2],[2,3]]}},"hidden":{{}},"params":{{"n":4}},"answer":{answer}}}"#
        )
    };
    let ok = verify_line(&compiled.envs[0], &row("[2,3]"), None);
    assert_eq!(ok["score"], 1.0, "{ok}");
    // (0, 3) satisfies verify's `e.0 < e.1` but is not one of the edges.
    let outside = verify_line(&compiled.envs[0], &row("[0,3]"), None);
    assert_eq!(outside["score"], 0.0);
    assert_eq!(outside["error"]["code"], "answer.decode", "{outside}");
    assert!(outside["error"]["message"]
        .as_str()
        .unwrap()
        .contains("is not one of"));
}

#[test]
fn assignment_evaluates_its_indices_before_storing() {
    // The index expressions may read the target itself (spec §10.2: value, then indices,
    // then the store).
    let src = "/// t\nenv t {\n category test\n param n: int = 3\n gen {\n  var g = [[0, 1], [1, 0]]\n  g[0][g[1][0]] = 7\n  g[g[0][0]][0] = 5\n  show n, g\n }\n answer a: bool\n verify { a }\n prompt \"{n} {g}\"\n}\n";
    let (out, program) = resyn_compiler::build_bytes("t", src.as_bytes());
    assert!(!out.has_errors(), "{:?}", out.diagnostics);
    let program = program.unwrap();
    let rows = rows(&program, 0, 1, Format::Resyn, 1);
    let r: Json = serde_json::from_str(&rows[0]).unwrap();
    assert_eq!(r["instance"]["g"], json!([[5, 7], [1, 0]]), "{r}");
}

#[test]
fn record_fields_are_evaluated_in_written_order() {
    // Spec §10.2: record elements in written order. The same env name, level, params and
    // seed give the same random stream, so the field written first must get the first draw
    // whatever its name.
    let first_draw = |gen: &str| -> Json {
        let src = format!("/// t\nenv t {{\n category test\n param n: int = 3\n gen {{\n  {gen}\n  show n, x\n }}\n answer a: bool\n verify {{ a }}\n prompt \"{{n}} {{x}}\"\n}}\n");
        let (out, program) = resyn_compiler::build_bytes("t", src.as_bytes());
        assert!(!out.has_errors(), "{:?}", out.diagnostics);
        let rows = rows(&program.unwrap(), 7, 1, Format::Resyn, 1);
        let r: Json = serde_json::from_str(&rows[0]).unwrap();
        r["instance"]["x"].clone()
    };
    let plain = first_draw("let x = [rand_int(0, 1000000000), rand_int(0, 1000000000)]");
    let record = first_draw(
        "let r = {zeta: rand_int(0, 1000000000), alpha: rand_int(0, 1000000000)}\n  let x = [r.zeta, r.alpha]",
    );
    assert_eq!(plain, record);
    assert_ne!(plain[0], plain[1]);
}

/// Generators write rows with `instance_row_text`; `instance_row` is the same row as a
/// JSON value. Every example, level and form, with and without a proof: the same bytes.
#[test]
fn instance_row_text_prints_instance_row() {
    use resyn_runtime::env::Environment;
    use resyn_runtime::rows::{instance_row, instance_row_text, Plan, RowContext};
    use resyn_runtime::{derive_seed, Rng};
    let proof = json!({"status": "unique", "witness": [1, {"b": 2.5, "a": "\u{1}"}], "effort": {"rlimit": 3}});
    for (name, src) in examples() {
        let (_, program) = resyn_compiler::build_bytes(&name, &src);
        let program = program.unwrap();
        let compiled = compile(&program);
        let cenv = &compiled.envs[0];
        for level in 1..=5u8 {
            let params = cenv.resolve_params(level, &[]).unwrap();
            let plan = Plan::new(cenv, level, &params);
            for index in 0..8u64 {
                let key = derive_seed(&cenv.meta().name, level, &plan.params_json, 3, index);
                let inst = cenv
                    .generate(&params, Rng::from_key(key), 50_000_000, 1_000)
                    .unwrap();
                for format in [Format::Resyn, Format::ReasoningGym, Format::Verl] {
                    let ctx = RowContext {
                        seed: u64::MAX - index,
                        source_hash: "ab\"c",
                        resyn_version: "0.1.0",
                        format,
                    };
                    for p in [None, Some(&proof)] {
                        assert_eq!(
                            instance_row_text(&ctx, cenv.meta(), &plan, index, &inst, p),
                            instance_row(&ctx, cenv.meta(), &plan, index, &inst, p.cloned())
                                .to_string(),
                            "{name} level {level} index {index} {format:?}"
                        );
                    }
                }
            }
        }
    }
}

/// Plain rows are read in one pass (values decoded where they stand); every other row,
/// and every row with a problem, the general way. Both must give the same output row, on
/// rows that sit on the boundary between the two.
#[test]
fn one_pass_reading_agrees_with_the_general_reading() {
    use resyn_runtime::rows::{verify_line_reference, verify_row_of_line};
    for (name, src) in examples() {
        let (_, program) = resyn_compiler::build_bytes(&name, &src);
        let program = program.unwrap();
        let compiled = compile(&program);
        let cenv = &compiled.envs[0];
        let all = rows(&program, 5, 2, Format::Resyn, 1);
        for (i, line) in all.iter().enumerate() {
            let row: Json = serde_json::from_str(line).unwrap();
            // Another instance's values: valid, and (mostly) different.
            let other: Json = serde_json::from_str(&all[(i + 1) % all.len()]).unwrap();
            let text = |v: &Json| v.to_string();
            let w = text(&row["witness"]);
            let (inst, hidden, params) = (
                text(&row["instance"]),
                text(&row["hidden"]),
                text(&row["params"]),
            );
            // The members of an object's text, ready to go after or before others.
            let inner = |o: &str| o.trim_start_matches('{').trim_end_matches('}').to_string();
            let join = |a: &str, b: &str| match (a.is_empty(), b.is_empty()) {
                (true, _) => b.to_string(),
                (_, true) => a.to_string(),
                _ => format!("{a},{b}"),
            };
            // A shown value that differs from the other instance's, if one does.
            let shown = row["instance"].as_object().unwrap();
            let first_shown = shown
                .keys()
                .find(|k| other["instance"][k.as_str()] != row["instance"][k.as_str()])
                .or_else(|| shown.keys().next())
                .unwrap()
                .clone();
            let first_param = row["params"]
                .as_object()
                .unwrap()
                .keys()
                .next()
                .unwrap()
                .clone();
            let shown_value = text(&row["instance"][&first_shown]);
            let other_value = text(&other["instance"][&first_shown]);
            let both = format!("{{{},{}}}", inner(&inst), inner(&hidden)).replace(",}", "}");
            let variants = [
                format!(
                    r#"{{"instance":{inst},"hidden":{hidden},"params":{params},"answer":{w}}}"#
                ),
                format!(
                    r#"{{"answer":{w},"params":{params},"hidden":{hidden},"instance":{inst},"id":7}}"#
                ),
                // Every value in `hidden`, or in both objects.
                format!(r#"{{"instance":{{}},"hidden":{both},"params":{params},"answer":{w}}}"#),
                format!(r#"{{"instance":{both},"hidden":{both},"params":{params},"answer":{w}}}"#),
                format!(
                    r#"{{"instance":{inst},"hidden":{{{}}},"params":{params},"answer":{w}}}"#,
                    join(
                        &format!(r#""{first_shown}":{other_value}"#),
                        &inner(&hidden)
                    )
                ),
                format!(
                    r#"{{"instance":{{{}}},"hidden":{hidden},"params":{params},"answer":{w}}}"#,
                    join(&format!(r#""{first_shown}":{other_value}"#), &inner(&inst))
                ),
                // A name repeated: the last one counts.
                format!(
                    r#"{{"instance":{{{}}},"hidden":{hidden},"params":{params},"answer":{w}}}"#,
                    join(&format!(r#""{first_shown}":"x""#), &inner(&inst))
                ),
                format!(
                    r#"{{"instance":{{{}}},"hidden":{hidden},"params":{params},"answer":{w}}}"#,
                    join(&inner(&inst), &format!(r#""{first_shown}":"x""#))
                ),
                format!(
                    r#"{{"instance":{inst},"instance":{inst},"hidden":{hidden},"params":{params},"answer":{w}}}"#
                ),
                format!(
                    r#"{{"instance":{inst},"hidden":{hidden},"params":{params},"params":{{}},"answer":{w}}}"#
                ),
                format!(
                    r#"{{"instance":{inst},"hidden":{hidden},"params":{{{}}},"answer":{w}}}"#,
                    join(&format!(r#""{first_param}":[]"#), &inner(&params))
                ),
                // Escaped names, extra members, other kinds of values where objects go.
                format!(
                    r#"{{"inst\u0061nce":{inst},"hidden":{hidden},"par\u0061ms":{params},"\u0061nswer":{w}}}"#
                ),
                format!(
                    r#"{{"instance":{{{}}},"hidden":{hidden},"params":{params},"x":[[[]]],"answer":{w}}}"#,
                    join(r#""zz":[1,{"a":null}]"#, &inner(&inst))
                ),
                format!(r#"{{"instance":{inst},"hidden":[],"params":{params},"answer":{w}}}"#),
                format!(
                    r#"{{"instance":{inst},"hidden":{hidden},"params":null,"level":2,"answer":{w}}}"#
                ),
                format!(r#"{{"instance":{inst},"hidden":{hidden},"answer":{w}}}"#),
                format!(r#"{{"instance":{inst},"params":{params},"answer":{w}}}"#),
                format!(
                    r#"{{"instance":[{inst}],"hidden":{hidden},"params":{params},"answer":{w}}}"#
                ),
                format!(
                    r#"{{"instance":{{"{first_shown}":{shown_value}}},"hidden":{hidden},"params":{params},"answer":{w}}}"#
                ),
                format!(
                    r#"{{"instance":{inst},"hidden":{hidden},"params":{params},"env":"other","answer":{w}}}"#
                ),
                format!(
                    r#"{{"instance":{inst},"hidden":{hidden},"params":{params},"env":"{name}","response":"<answer>{}</answer>"}}"#,
                    w.replace('"', "\\\"")
                ),
                format!(
                    r#"{{"instance":{inst},"hidden":{hidden},"params":{params},"answer":{w}}} x"#
                ),
                format!(
                    r#"{{"instance":{inst},"hidden":{hidden},"params":{params},"answer":{w},}}"#
                ),
                format!(r#"{{"instance":{inst},"hidden":{hidden},"params":{params}}}"#),
                format!(
                    r#"{{"instance":{inst},"hidden":{hidden},"params":{params},"answer":{w},"x":{}1{}}}"#,
                    "[".repeat(300),
                    "]".repeat(300)
                ),
                format!(
                    r#"{{"instance":{{"{first_shown}":{}{shown_value}{}}},"hidden":{hidden},"params":{params},"answer":{w}}}"#,
                    "[".repeat(130),
                    "]".repeat(130)
                ),
                line.clone(),
            ];
            // A value longer than the 4 MiB a decoded text may have (spec/formats.md §9),
            // in a row within the 16 MiB a row may have: a list padded inside with JSON
            // whitespace.
            let mut variants = variants.to_vec();
            if i == 0 && inst.contains('[') {
                let padded = inst.replacen('[', &format!("[{}", " ".repeat(5 << 20)), 1);
                variants.push(format!(
                    r#"{{"instance":{padded},"hidden":{hidden},"params":{params},"answer":{w}}}"#
                ));
            }
            for v in &variants {
                assert_eq!(
                    verify_row_of_line(cenv, v, None),
                    verify_line_reference(cenv, v, None),
                    "{name}: {v}"
                );
            }
        }
    }
}
