//! The `resyn check` command-line contract: exit codes and the JSON diagnostic format.

use std::process::Command;

fn resyn(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_resyn"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run resyn");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// This test process's scratch directory (created).
fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("resyn-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn temp_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let p = temp_dir().join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

#[test]
fn clean_example_exits_zero() {
    let (code, stdout, stderr) = resyn(&["check", "examples/graph_coloring.rsn"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("ok"), "{stderr}");
}

#[test]
fn errors_exit_one_and_json_has_the_contract_fields() {
    let p = temp_file(
        "bad.rsn",
        b"env e {\n  gen { let a = 1 +\n  }\n  verify { x == }\n}\n",
    );
    let (code, stdout, _) = resyn(&["check", "--message-format", "json", p.to_str().unwrap()]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 2, "several independent errors: {stdout}");
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
        for key in [
            "code", "severity", "message", "file", "line", "column", "span", "labels", "help",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {line}");
        }
        assert!(v["line"].as_u64().unwrap() >= 1 && v["column"].as_u64().unwrap() >= 1);
        let (s, e) = (
            v["span"]["start"].as_u64().unwrap(),
            v["span"]["end"].as_u64().unwrap(),
        );
        assert!(s <= e);
        assert!(v["code"].as_str().unwrap().starts_with('E'));
    }
    let syntax: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["code"] == "E0010")
        .collect();
    // The `}` that cuts `1 +` short (line 3) and the `}` after `x ==` (line 4), independently.
    let lines: Vec<u64> = syntax.iter().map(|v| v["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![3, 4], "{stdout}");
}

#[test]
fn warnings_alone_exit_zero() {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/graph_coloring.rsn"
    ))
    .unwrap();
    let src = src.replace("    gen {", "    param unused_knob: int = 3\n    gen {");
    let p = temp_file("warn.rsn", src.as_bytes());
    let (code, stdout, _) = resyn(&["check", "--message-format", "json", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("\"W0001\""), "{stdout}");
}

/// Runs resyn with standard output (`stdout`) or standard error to `/dev/full`, where
/// every write fails: the exit code and the other stream.
fn resyn_full(args: &[&str], stdout: bool) -> (i32, String) {
    let dev = std::fs::File::create("/dev/full").expect("/dev/full");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_resyn"));
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    if stdout {
        cmd.stdout(dev);
    } else {
        cmd.stderr(dev);
    }
    let out = cmd.output().expect("run resyn");
    let other = if stdout { out.stderr } else { out.stdout };
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&other).into_owned(),
    )
}

#[test]
fn failed_writes_are_errors_not_panics() {
    // Output that is the command's point: exit 1 with a message, never 101 or 0.
    for args in [
        &["--version"][..],
        &["--help"],
        &[
            "check",
            "--message-format",
            "json",
            "tests/ui/hidden_value_unused.rsn",
        ],
        &["gen", "examples/graph_coloring.rsn", "-n", "3"],
    ] {
        let (code, stderr) = resyn_full(args, true);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains("cannot write"), "{args:?}: {stderr}");
    }
    // Standard error lost: the messages are dropped, the outcome is unchanged.
    let (code, stdout) = resyn_full(&["check", "examples/n_queens.rsn"], false);
    assert_eq!(code, 0, "{stdout}");
    let (code, _) = resyn_full(
        &[
            "check",
            "tests/ui/hidden_value_unused.rsn",
            "--no-such-flag",
        ],
        false,
    );
    assert_eq!(code, 2);
    let (code, stdout) = resyn_full(&["gen", "examples/graph_coloring.rsn", "-n", "3"], false);
    assert_eq!((code, stdout.lines().count()), (0, 3));
    let (code, _) = resyn_full(
        &["gen", "examples/graph_coloring.rsn", "--param", "p=0"],
        false,
    );
    assert_eq!(code, 1);
}

#[test]
fn a_byte_order_mark_opening_a_source_is_skipped() {
    let src = std::fs::read("examples/graph_coloring.rsn").unwrap();
    let p = temp_file("bom.rsn", &[b"\xef\xbb\xbf".as_slice(), &src].concat());
    let (code, _, stderr) = resyn(&["check", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = resyn(&["gen", p.to_str().unwrap(), "-n", "2"]);
    assert_eq!((code, stdout.lines().count()), (0, 2), "{stderr}");
    // Spans still count from the file's first byte: an error after the mark is reported
    // where it is.
    let p = temp_file("bom_bad.rsn", b"\xef\xbb\xbfenv e { gen { let a = } }\n");
    let (code, stdout, _) = resyn(&["check", "--message-format", "json", p.to_str().unwrap()]);
    assert_eq!(code, 1);
    let d: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(d["line"], 1);
    assert!(d["span"]["start"].as_u64().unwrap() > 3, "{d}");
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(resyn(&[]).0, 2);
    assert_eq!(resyn(&["check"]).0, 2);
    assert_eq!(resyn(&["check", "--message-format", "xml", "a.rsn"]).0, 2);
    assert_eq!(resyn(&["frobnicate"]).0, 2);
    assert_eq!(resyn(&["--help"]).0, 0);
}

#[test]
fn unreadable_file_is_a_user_error() {
    let (code, stdout, _) = resyn(&["check", "--message-format", "json", "no/such/file.rsn"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["code"], "E0014");
}

#[test]
fn one_bad_file_does_not_stop_the_others() {
    let bad = temp_file("b1.rsn", b"env {");
    let (code, stdout, _) = resyn(&[
        "check",
        "--message-format",
        "json",
        bad.to_str().unwrap(),
        "examples/graph_coloring.rsn",
        "no/such.rsn",
    ]);
    assert_eq!(code, 1);
    let files: Vec<String> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["file"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(files.iter().any(|f| f.ends_with("b1.rsn")));
    assert!(files.iter().any(|f| f.ends_with("no/such.rsn")));
}

#[test]
fn gen_writes_rows_and_honours_params_levels_and_output() {
    let out = std::env::temp_dir().join(format!("resyn-gen-{}.jsonl", std::process::id()));
    let (code, _, stderr) = resyn(&[
        "gen",
        "examples/graph_coloring.rsn",
        "-n",
        "3",
        "--levels",
        "2..3",
        "--param",
        "p=0.9",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("generated 6 of 6"), "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 6);
    for key in [
        "id",
        "env",
        "level",
        "seed",
        "index",
        "params",
        "instance",
        "hidden",
        "question",
        "witness",
        "source_hash",
        "resyn_version",
    ] {
        assert!(rows[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(rows[0]["level"], 2);
    assert_eq!(rows[5]["level"], 3);
    assert_eq!(rows[0]["params"]["p"], 0.9);
    // Overridden params are part of the id, so datasets made with different `--param`
    // values never share an id.
    let id = rows[0]["id"].as_str().unwrap();
    assert!(
        id.starts_with("graph_coloring-L2-p") && id.ends_with("-s0-0"),
        "{id}"
    );
    let (_, plain, _) = resyn(&["gen", "examples/graph_coloring.rsn", "--level", "2"]);
    let plain: serde_json::Value = serde_json::from_str(plain.lines().next().unwrap()).unwrap();
    assert_eq!(plain["id"], "graph_coloring-L2-s0-0");
    // An override equal to the level's own value changes nothing.
    let (_, same, _) = resyn(&[
        "gen",
        "examples/graph_coloring.rsn",
        "--level",
        "2",
        "--param",
        "p=0.4",
    ]);
    assert_eq!(same.lines().next(), plain.to_string().lines().next());
    // The rows verify on their own.
    let data = std::env::temp_dir().join(format!("resyn-ver-{}.jsonl", std::process::id()));
    std::fs::write(&data, answered_by_witness(&rows) + "garbage\n").unwrap();
    let (code, stdout, stderr) = resyn(&[
        "verify",
        "examples/graph_coloring.rsn",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let verdicts: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(verdicts.len(), 7);
    assert!(verdicts[..6]
        .iter()
        .all(|v| v["score"] == 1.0 && v["error"].is_null()));
    assert_eq!(verdicts[6]["error"]["code"], "row.invalid");
    assert!(stderr.contains("verified 7 row(s): 6 valid"), "{stderr}");
}

#[test]
fn gen_user_errors_exit_one_and_usage_errors_exit_two() {
    // Unknown param, out-of-domain override, wrong type: user-facing errors.
    assert_eq!(
        resyn(&["gen", "examples/graph_coloring.rsn", "--param", "nope=1"]).0,
        1
    );
    let (code, _, stderr) = resyn(&["gen", "examples/graph_coloring.rsn", "--param", "n=1000"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("param `n` at level 1") && stderr.contains("outside its domain"),
        "{stderr}"
    );
    // -0.0 is read as 0.0, like every float of the language.
    let env = temp_file(
        "float_param.rsn",
        b"/// t\nenv f {\n category test\n param x: float = 0.5\n gen { show x }\n answer a: bool\n verify { a }\n prompt \"x is {x}\"\n}\n",
    );
    let gen_x = |x: &str| resyn(&["gen", env.to_str().unwrap(), "--param", x, "-n", "1"]);
    let (code, negative, stderr) = gen_x("x=-0.0");
    assert_eq!(code, 0, "{stderr}");
    assert!(negative.contains(r#""question":"x is 0.0""#), "{negative}");
    assert_eq!(negative, gen_x("x=0.0").1);
    assert_eq!(
        resyn(&["gen", "examples/graph_coloring.rsn", "--param", "n=abc"]).0,
        1
    );
    assert_eq!(
        resyn(&["gen", "examples/graph_coloring.rsn", "--env", "other"]).0,
        1
    );
    // Usage: level out of range, malformed levels, both flags.
    assert_eq!(
        resyn(&["gen", "examples/graph_coloring.rsn", "--level", "6"]).0,
        2
    );
    assert_eq!(
        resyn(&["gen", "examples/graph_coloring.rsn", "--levels", "3..1"]).0,
        2
    );
    assert_eq!(
        resyn(&[
            "gen",
            "examples/graph_coloring.rsn",
            "--level",
            "1",
            "--levels",
            "1..2"
        ])
        .0,
        2
    );
    // A file with errors cannot generate.
    let bad = temp_file("bad_gen.rsn", b"env e { gen { show x } }");
    assert_eq!(resyn(&["gen", bad.to_str().unwrap()]).0, 1);
    // Verify: unreadable data is a user error.
    assert_eq!(
        resyn(&[
            "verify",
            "examples/graph_coloring.rsn",
            "--data",
            "no/such.jsonl"
        ])
        .0,
        1
    );
    // `--jobs` beyond 1,024 (a typo rather than a machine) is a usage error, not a
    // million threads; 0 means one thread.
    for cmd in ["gen", "prove", "verify", "audit"] {
        let mut args = vec![cmd, "examples/graph_coloring.rsn", "--jobs", "1000000"];
        if matches!(cmd, "verify" | "audit") {
            args.extend(["--data", "x.jsonl"]);
        }
        let (code, _, err) = resyn(&args);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(err.contains("from 0 to 1024"), "{cmd}: {err}");
    }
    assert_eq!(
        resyn(&["gen", "examples/graph_coloring.rsn", "--jobs", "0"]).0,
        0
    );
}

/// `gen` rows as JSONL verify rows whose answer is the row's own witness.
fn answered_by_witness(rows: &[serde_json::Value]) -> String {
    rows.iter()
        .map(|r| {
            let mut r = r.clone();
            r["answer"] = r["witness"].clone();
            format!("{r}\n")
        })
        .collect()
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("JSON row"))
        .collect()
}

#[test]
fn version_names_a_modern_z3() {
    let (code, stdout, _) = resyn(&["--version"]);
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with("resyn ") && stdout.contains("(Z3 "),
        "{stdout}"
    );
    assert!(resyn_compiler::prove::z3_is_supported(), "{stdout}");
}

#[test]
fn prove_rows_and_exit_codes_follow_the_envs_require() {
    // Proved solvable / unique: exit 0, every row has a checked witness.
    let (code, stdout, stderr) = resyn(&[
        "prove",
        "examples/mini_sudoku.rsn",
        "-n",
        "3",
        "--levels",
        "1..2",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let rows = json_lines(&stdout);
    assert_eq!(rows.len(), 6);
    for r in &rows {
        assert_eq!(r["status"], "unique", "{r}");
        assert_eq!(r["witness_checked"], true, "{r}");
        for k in ["id", "effort", "witness"] {
            assert!(r.get(k).is_some(), "{k} missing: {r}");
        }
    }
    assert!(
        stderr.contains("level 1: 3 unique") && stderr.contains("level 2: 3 unique"),
        "{stderr}"
    );

    // A generator that plants unsolvable instances is caught: status unsolvable, exit 1.
    let (code, stdout, stderr) = resyn(&["prove", "tests/prove/unsolvable.rsn", "-n", "2"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(json_lines(&stdout)
        .iter()
        .all(|r| r["status"] == "unsolvable"));
    assert!(stderr.contains("violate its `require`"), "{stderr}");

    // `require unique` with two answers: solvable with an alternative that verifies.
    let (code, stdout, _) = resyn(&[
        "prove",
        "tests/prove/not_unique.rsn",
        "-n",
        "2",
        "--level",
        "3",
    ]);
    assert_eq!(code, 1);
    for r in json_lines(&stdout) {
        assert_eq!(r["status"], "solvable", "{r}");
        assert_ne!(r["alternative"], r["witness"], "{r}");
        assert!(r["alternative"].as_i64().unwrap() <= 3, "{r}");
    }

    // Not expressible in SMT: `unknown` with the reason, honestly, and not an error.
    let (code, stdout, _) = resyn(&["prove", "tests/prove/unsupported.rsn", "-n", "1"]);
    assert_eq!(code, 0);
    let r = &json_lines(&stdout)[0];
    assert_eq!(r["status"], "unknown");
    assert!(r["reason"].as_str().unwrap().contains("sorted"), "{r}");
}

#[test]
fn gen_prove_attaches_proofs_drops_failures_and_stays_deterministic() {
    let run = |jobs: &str| {
        resyn(&[
            "gen",
            "examples/knights_and_knaves.rsn",
            "-n",
            "4",
            "--levels",
            "1..2",
            "--prove",
            "--jobs",
            jobs,
        ])
    };
    let (code, a, stderr) = run("1");
    assert_eq!(code, 0, "{stderr}");
    let (_, b, _) = run("2");
    assert_eq!(a, b, "gen --prove output depends on --jobs");
    // A search-heavy example too: models must not depend on what a worker proved before,
    // nor on the process. Level 3 is where Z3's models depended on term ids: with
    // randomly seeded hash maps of terms (`smt::TermMap`), eight runs of this command
    // gave eight outputs different from the next run's.
    let jugs = |jobs: &str| {
        resyn(&[
            "gen",
            "examples/water_jugs.rsn",
            "-n",
            "8",
            "--level",
            "3",
            "--prove",
            "--jobs",
            jobs,
        ])
        .1
    };
    assert_eq!(
        jugs("1"),
        jugs("2"),
        "gen --prove witnesses depend on --jobs"
    );
    // Proofs share a Z3 context within a batch of 32 instances (rows::BATCH), and where
    // the answer is all Booleans a solver too (told the rules once, each instance in a
    // push/pop scope). Models of a non-unique env depend on that history: across batch
    // boundaries, with two workers, and for a shorter run (a prefix), the rows must still
    // be the same. dependency_sort (orders of a DAG) takes fresh solvers, graph_coloring
    // (colorings) the kept one.
    for example in [
        "examples/dependency_sort.rsn",
        "examples/graph_coloring.rsn",
    ] {
        let rows = |n: &str, jobs: &str| {
            let (code, out, stderr) = resyn(&[
                "gen", example, "-n", n, "--levels", "1..2", "--prove", "--jobs", jobs,
            ]);
            assert_eq!(code, 0, "{example}: {stderr}");
            json_lines(&out)
        };
        // The first row that differs, not two dumps of 140 rows.
        let first_difference = |a: &[serde_json::Value], b: &[serde_json::Value]| {
            a.iter()
                .zip(b)
                .position(|(x, y)| x != y)
                .map(|i| (i, a[i]["id"].clone()))
        };
        let one = rows("70", "1");
        assert_eq!(one.len(), 140, "{example}");
        let two = rows("70", "2");
        assert_eq!(two.len(), 140, "{example}");
        assert_eq!(
            first_difference(&one, &two),
            None,
            "{example}: gen --prove rows depend on --jobs"
        );
        let short = rows("40", "2");
        for level in [1, 2] {
            let of = |rows: &[serde_json::Value]| -> Vec<serde_json::Value> {
                rows.iter()
                    .filter(|r| r["level"] == level)
                    .cloned()
                    .collect()
            };
            let (short, long) = (of(&short), of(&one));
            assert_eq!(short.len(), 40, "{example}");
            assert_eq!(
                first_difference(&short, &long[..40]),
                None,
                "{example} level {level}: -n 40 is not a prefix of -n 70"
            );
        }
    }
    for r in json_lines(&a) {
        assert_eq!(r["proof"]["status"], "unique", "{r}");
        assert!(
            r["proof"]["effort"].get("time_us").is_none(),
            "wall time would break determinism"
        );
    }
    // Instances that fail the env's `require` are dropped, not written.
    let (code, stdout, stderr) =
        resyn(&["gen", "tests/prove/unsolvable.rsn", "-n", "3", "--prove"]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("3 dropped"), "{stderr}");
}

#[test]
fn audit_checks_provenance_certificates_and_claims() {
    let data = temp_file(
        "proved.jsonl",
        &resyn(&[
            "gen",
            "examples/futoshiki.rsn",
            "-n",
            "3",
            "--levels",
            "1..2",
            "--prove",
            "--unique",
        ])
        .1
        .into_bytes(),
    );
    let (code, stdout, stderr) = resyn(&[
        "audit",
        "examples/futoshiki.rsn",
        "--data",
        data.to_str().unwrap(),
        "--reprove",
    ]);
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    for r in json_lines(&stdout) {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["provenance"], true);
        assert_eq!(r["certified"], true);
        assert_eq!(r["reproved"], r["claimed"], "{r}");
    }

    // Tampering: a changed index (another instance's seed), a changed given, a false
    // uniqueness claim, a wrong witness, and junk. Each row fails on its own.
    let text = std::fs::read_to_string(&data).unwrap();
    let rows: Vec<serde_json::Value> = json_lines(&text);
    let mut bad = Vec::new();
    let mut r = rows[0].clone();
    r["index"] = serde_json::json!(7);
    bad.push(r.to_string());
    let mut r = rows[1].clone();
    r["instance"]["n"] = serde_json::json!(9);
    bad.push(r.to_string());
    let mut r = rows[2].clone();
    r["witness"] = serde_json::json!([[1]]);
    r["proof"]["witness"] = serde_json::json!([[1]]);
    bad.push(r.to_string());
    bad.push("{not json".into());
    let claims: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["proof"]["status"] == "solvable")
        .collect();
    if let Some(r) = claims.first() {
        let mut r = (*r).clone();
        r["proof"]["status"] = serde_json::json!("unique");
        bad.push(r.to_string());
    }
    let tampered = temp_file("tampered.jsonl", (bad.join("\n") + "\n").as_bytes());
    let (code, stdout, summary) = resyn(&[
        "audit",
        "examples/futoshiki.rsn",
        "--data",
        tampered.to_str().unwrap(),
        "--reprove",
    ]);
    assert_eq!(code, 1);
    // On three threads: the same verdicts, the same summary.
    let parallel = resyn(&[
        "audit",
        "examples/futoshiki.rsn",
        "--data",
        tampered.to_str().unwrap(),
        "--reprove",
        "--jobs",
        "3",
    ]);
    assert_eq!(
        (parallel.0, &parallel.1, &parallel.2),
        (1, &stdout, &summary)
    );
    let out = json_lines(&stdout);
    assert_eq!(out.len(), bad.len());
    assert!(out.iter().all(|r| r["ok"] == false), "{out:?}");
    assert_eq!(out[0]["provenance"], false);
    assert_eq!(out[1]["provenance"], false);
    assert_eq!(out[2]["certified"], false);
    assert_eq!(out[3]["error"]["code"], "row.invalid");
    if out.len() > 4 {
        assert_eq!(out[4]["provenance"], true);
        assert_eq!(out[4]["reproved"], "solvable", "{}", out[4]);
    }
}

#[test]
fn solver_limits_give_unknown_with_the_limit_named() {
    let (code, stdout, stderr) = resyn(&[
        "prove",
        "examples/sudoku.rsn",
        "-n",
        "2",
        "--level",
        "5",
        "--rlimit",
        "1000",
    ]);
    assert_eq!(code, 0, "unknown is not a refutation: {stderr}");
    for r in json_lines(&stdout) {
        assert_eq!(r["status"], "unknown", "{r}");
        // The SAT engine looks at its budget between chunks of search, so it may find a
        // witness first and run out in the uniqueness check.
        let reason = r["reason"].as_str().unwrap_or_default();
        assert!(
            reason == "out of resources (--rlimit)"
                || reason == "uniqueness: out of resources (--rlimit)",
            "{r}"
        );
    }
    // gen --prove keeps only proved instances: all are dropped here.
    let (_, stdout, stderr) = resyn(&[
        "gen",
        "examples/sudoku.rsn",
        "-n",
        "2",
        "--level",
        "5",
        "--rlimit",
        "1000",
    ]);
    assert!(
        stdout.is_empty() && stderr.contains("2 dropped"),
        "{stderr}"
    );
}

/// `-` names stdin for `--data` and stdout for `-o`, so runs compose in a pipe; no file
/// called `-` is created.
#[test]
fn a_dash_reads_stdin_and_writes_stdout() {
    use std::io::Write;
    let dir = temp_dir().join("dash");
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str], stdin: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_resyn"))
            .args(args)
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run resyn");
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/n_queens.rsn");
    let file = file.to_str().unwrap();
    let (code, rows) = run(&["gen", file, "-n", "3", "--level", "2", "-o", "-"], b"");
    assert_eq!(code, Some(0));
    let rows = json_lines(&rows);
    assert_eq!(rows.len(), 3);
    // Answer each row with its own witness, through stdin.
    let data = answered_by_witness(&rows);
    let (code, out) = run(&["verify", file, "--data", "-", "-o", "-"], data.as_bytes());
    assert_eq!(code, Some(0));
    let verdicts = json_lines(&out);
    assert_eq!(verdicts.len(), 3);
    for (v, r) in verdicts.iter().zip(&rows) {
        assert_eq!(v["id"], r["id"]);
        assert_eq!(v["score"], 1.0, "{v}");
    }
    assert!(!dir.join("-").exists(), "`-` is not a file name here");
}

/// A trainer keeps one `verify --data - -o -` process and sends a row only once the last
/// one is answered: each answer must come out before the next row exists (no wait for the
/// end of the input or a full buffer), on one thread or several. The timeout only turns a
/// hang into a failure.
#[test]
fn a_long_lived_verify_answers_each_row_as_it_arrives() {
    for jobs in ["1", "2"] {
        long_lived_verify(jobs);
    }
}

fn long_lived_verify(jobs: &str) {
    use std::io::{BufRead, Write};
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/n_queens.rsn");
    let file = file.to_str().unwrap();
    let (code, rows, _) = resyn(&["gen", file, "-n", "3", "--level", "2", "-o", "-"]);
    assert_eq!(code, 0);
    let rows = json_lines(&rows);
    let data = answered_by_witness(&rows);
    let mut child = Command::new(env!("CARGO_BIN_EXE_resyn"))
        .args(["verify", file, "--data", "-", "-o", "-", "--jobs", jobs])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run resyn");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, answers) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.expect("UTF-8 output")).is_err() {
                break;
            }
        }
    });
    for (row, sent) in data.lines().zip(&rows) {
        writeln!(stdin, "{row}").unwrap();
        stdin.flush().unwrap();
        let answer = match answers.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(a) => a,
            Err(e) => {
                child.kill().ok();
                panic!("--jobs {jobs}: no answer to a row while the input stays open: {e}");
            }
        };
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(v["id"], sent["id"]);
        assert_eq!(v["score"], 1.0, "{v}");
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// `verify --jobs J` answers on J threads in chunks; the rows and the summary must be those
/// of one thread: good, wrong and extracted answers, junk, blank lines and a line over the
/// row limit, over more rows than one chunk holds.
#[test]
fn verify_output_does_not_depend_on_jobs() {
    let (code, rows, _) = resyn(&[
        "gen",
        "examples/graph_coloring.rsn",
        "-n",
        "60",
        "--level",
        "3",
    ]);
    assert_eq!(code, 0);
    let rows = json_lines(&rows);
    let mut data = String::new();
    for (i, r) in rows.iter().cycle().take(6_000).enumerate() {
        let mut row = serde_json::json!({
            "id": i,
            "instance": r["instance"],
            "hidden": r["hidden"],
            "params": r["params"],
        });
        let mut wrong = r["witness"].clone();
        wrong[0] = serde_json::json!((wrong[0].as_i64().unwrap() + 1) % 3);
        match i % 5 {
            0 => row["answer"] = r["witness"].clone(),
            1 => row["answer"] = wrong,
            2 => row["response"] = format!("<answer>{}</answer>", r["witness"]).into(),
            3 => row["response"] = "I could not solve it.".into(),
            _ => {
                data.push_str("{not json\n\n");
                continue;
            }
        }
        data.push_str(&row.to_string());
        data.push('\n');
    }
    data.push_str(&"x".repeat(16 * 1024 * 1024 + 1));
    data.push('\n');
    let path = temp_file("jobs.jsonl", data.as_bytes());
    let runs: Vec<(String, String)> = ["1", "2", "3"]
        .iter()
        .map(|jobs| {
            let (code, out, err) = resyn(&[
                "verify",
                "examples/graph_coloring.rsn",
                "--data",
                path.to_str().unwrap(),
                "--jobs",
                jobs,
            ]);
            assert_eq!(code, 0, "--jobs {jobs}: {err}");
            (out, err)
        })
        .collect();
    let verdicts = json_lines(&runs[0].0);
    assert_eq!(verdicts.len(), 6_001);
    assert_eq!(verdicts[0]["score"], 1.0);
    assert!(verdicts[1]["error"].is_null(), "{}", verdicts[1]);
    assert_eq!(verdicts[2]["score"], 1.0);
    assert!(verdicts[4]["error"].is_object());
    assert_eq!(verdicts[6_000]["error"]["code"], "row.too_large");
    for (jobs, run) in ["2", "3"].iter().zip(&runs[1..]) {
        assert!(
            run.0 == runs[0].0,
            "--jobs {jobs} wrote other rows than --jobs 1"
        );
        assert_eq!(run.1, runs[0].1, "--jobs {jobs}: another summary");
    }
}
