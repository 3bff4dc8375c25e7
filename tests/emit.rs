//! `resyn build --emit rust` against the evaluator: every example goes into one emitted
//! crate, built once (its target directory is kept under `target/emitted`, so reruns only
//! rebuild what changed), and for every example and level the crate's binary must
//! - generate the same bytes as the evaluator for 1,000 instances (envs whose generator
//!   needs Z3, through `unique_givens`, instead report that and are compared on verify);
//! - verify the same bytes: the witness (as JSON and as text in a tag), one-element
//!   perturbations of it, and junk responses.

mod common;

use common::{examples, examples_in, perturbations};
use resyn_compiler::dataset::{generate, verify_line, Format, GenRequest};
use resyn_compiler::eval::compile;
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};
use std::process::Command;

const PER_LEVEL: u64 = 1_000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What the crate holds: every example, and the cases of `tests/emit/` that drive the
/// emitted code's fast paths into their fallbacks. (env name, path from the root, text)
fn cases() -> Vec<(String, String, Vec<u8>)> {
    let mut v: Vec<(String, String, Vec<u8>)> = examples()
        .into_iter()
        .map(|(n, b)| (n.clone(), format!("examples/{n}.rsn"), b))
        .collect();
    let dir = root().join("tests/emit");
    v.extend(
        examples_in(&dir.to_string_lossy())
            .into_iter()
            .map(|(n, b)| (n.clone(), format!("tests/emit/{n}.rsn"), b)),
    );
    v.sort();
    v
}

/// Emits every example into one crate and builds its binary (release: the comparison runs
/// 65,000 generations).
fn build_crate() -> PathBuf {
    let dir = root().join("target/emitted/crate");
    let _ = std::fs::remove_dir_all(dir.join("src"));
    let files: Vec<String> = cases().into_iter().map(|(_, path, _)| path).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_resyn"))
        .arg("build")
        .args(&files)
        .arg("-o")
        .arg(&dir)
        .arg("--runtime-path")
        .arg(root().join("runtime"))
        .current_dir(root())
        .output()
        .expect("run resyn build");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The workspace's lock file pins the runtime's dependencies to the versions this
    // checkout was tested with (and needs no registry access for them).
    std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy Cargo.lock");
    let out = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", root().join("target/emitted/target"))
        // The emitted crate links no Z3: build it without the workspace's set-up, and
        // without its whole-program optimisation (speed is benchmarked, not tested here).
        .env_remove("RUSTFLAGS")
        .env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
        .output()
        .expect("run cargo build on the emitted crate");
    assert!(
        out.status.success(),
        "the emitted crate does not build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    root().join("target/emitted/target/release/resyn-envs")
}

fn run(bin: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin)
        .args(args)
        .output()
        .expect("run the emitted binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The evaluator's rows for one example and level.
fn evaluator_rows(
    program: &resyn_compiler::ir::Program,
    level: u8,
    n: u64,
    hash: &str,
) -> Vec<String> {
    let req = GenRequest {
        program,
        env: 0,
        levels: vec![level],
        n,
        seed: 0,
        overrides: vec![],
        format: Format::Resyn,
        source_hash: hash.to_string(),
        jobs: 2,
        prove: None,
    };
    let (rows, failures) = generate(&req, &|| {}).expect("params resolve");
    assert!(failures.is_empty(), "{failures:?}");
    rows
}

/// Answer rows for verify: the witness, as JSON and wrapped in a tag, its perturbations,
/// and junk responses.
fn answer_rows(rows: &[String]) -> String {
    let junk = [
        "",
        "I think the answer is 42.",
        "<answer>[1, 2</answer>",
        "```json\n[[[[[[[]]]]]]]\n```",
        "<answer>null</answer>",
    ];
    let mut out = String::new();
    for (i, line) in rows.iter().enumerate() {
        let r: Json = serde_json::from_str(line).unwrap();
        let base = json!({"id": r["id"], "env": r["env"], "params": r["params"],
                          "instance": r["instance"], "hidden": r["hidden"]});
        let w = &r["witness"];
        let with = |k: &str, v: Json| {
            let mut b = base.clone();
            b[k] = v;
            format!("{b}\n")
        };
        out.push_str(&with("answer", w.clone()));
        out.push_str(&with("response", json!(format!("<answer>{w}</answer>"))));
        for p in perturbations(w).into_iter().take(3) {
            out.push_str(&with("answer", p));
        }
        out.push_str(&with("response", json!(junk[i % junk.len()])));
    }
    out
}

#[test]
fn emitted_code_generates_and_verifies_like_the_evaluator() {
    let bin = build_crate();
    let tmp = std::env::temp_dir().join(format!("resyn-emit-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let (mut compared_gen, mut compared_verify) = (0usize, 0usize);
    // Fallbacks from fast forms seen in `fast_paths` (reads out of range, overflow).
    let (mut out_of_range, mut overflow) = (0usize, 0usize);
    // Rows of `paid_builtins` whose verifier ran out of steps (it must at levels 3-5 only).
    let mut ran_out = 0usize;
    for (name, path, bytes) in cases() {
        let text = String::from_utf8(bytes).unwrap();
        let hash = resyn_compiler::dataset::source_hash(&text);
        let (_, program) = resyn_compiler::build_bytes(&path, text.as_bytes());
        let program = program.expect("the example builds");
        let solver = resyn_compiler::emit::generator_needs_solver(&program.envs[0]);
        let compiled = compile(&program);
        for level in 1..=5u8 {
            let n = if solver { 40 } else { PER_LEVEL };
            let mine = evaluator_rows(&program, level, n, &hash);
            let lv = level.to_string();
            let (ok, out, err) = run(
                &bin,
                &[
                    "gen",
                    "--env",
                    &name,
                    "-n",
                    &n.to_string(),
                    "--level",
                    &lv,
                    "--jobs",
                    "2",
                ],
            );
            if solver {
                assert!(!ok && out.is_empty(), "{name}: {err}");
                assert!(
                    err.contains(resyn_compiler::emit::UNIQUE_GIVENS_NEEDS_Z3),
                    "{name}: {err}"
                );
            } else {
                assert!(ok, "{name} level {level}: {err}");
                let theirs: Vec<&str> = out.lines().collect();
                assert_eq!(theirs.len(), mine.len(), "{name} level {level}");
                for (i, (a, b)) in mine.iter().zip(&theirs).enumerate() {
                    assert_eq!(a, b, "{name} level {level} instance {i}");
                }
                compared_gen += theirs.len();
            }
            // Verify: the same output rows, byte for byte.
            let data = tmp.join(format!("{name}-{level}.jsonl"));
            let rows = answer_rows(&mine[..mine.len().min(200)]);
            std::fs::write(&data, &rows).unwrap();
            // Odd levels on one thread, even ones on three: the rows must not differ.
            let jobs = if level % 2 == 0 { "3" } else { "1" };
            let (ok, out, err) = run(
                &bin,
                &[
                    "verify",
                    "--env",
                    &name,
                    "--data",
                    data.to_str().unwrap(),
                    "--jobs",
                    jobs,
                ],
            );
            assert!(ok, "{name}: {err}");
            let expected: Vec<String> = rows
                .lines()
                .map(|l| verify_line(&compiled.envs[0], l, None).to_string())
                .collect();
            let theirs: Vec<&str> = out.lines().collect();
            assert_eq!(theirs.len(), expected.len(), "{name} level {level}");
            for (a, b) in expected.iter().zip(&theirs) {
                assert_eq!(a, b, "{name} level {level}");
            }
            if name == "paid_builtins" {
                let n = theirs
                    .iter()
                    .filter(|l| l.contains("ran out of steps"))
                    .count();
                assert_eq!(
                    n == 0,
                    level <= 2,
                    "paid_builtins level {level}: {n} rows ran out"
                );
                ran_out += n;
            }
            if name == "fast_paths" {
                out_of_range += theirs.iter().filter(|l| l.contains("out of range")).count();
                overflow += theirs.iter().filter(|l| l.contains("overflow")).count();
            }
            compared_verify += theirs.len();
        }
    }
    // A full standard output is an error (exit 1, said on stderr), a full standard error
    // loses the summary but not the outcome: neither panics (exit 101).
    let full = |stdout: bool| {
        let dev = std::fs::File::create("/dev/full").expect("/dev/full");
        let mut cmd = Command::new(&bin);
        cmd.args(["list"]);
        if stdout {
            cmd.stdout(dev);
        } else {
            cmd.stderr(dev);
        }
        cmd.output().expect("run the emitted binary")
    };
    let out = full(true);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write the output"));
    let out = full(false);
    assert_eq!(out.status.code(), Some(0));
    assert!(!out.stdout.is_empty());

    let _ = std::fs::remove_dir_all(&tmp);
    eprintln!("{compared_gen} generated rows and {compared_verify} verify rows identical");
    assert!(compared_gen >= 50_000 && compared_verify >= 20_000);
    assert!(ran_out > 0, "paid_builtins must run out of steps");
    assert!(
        out_of_range > 0 && overflow > 0,
        "fast_paths must exercise both fallbacks: {out_of_range} rows out of range, {overflow} overflowing"
    );
}

#[test]
fn build_refuses_files_with_errors_and_duplicate_envs() {
    let dir = std::env::temp_dir().join(format!("resyn-emit-bad-{}", std::process::id()));
    let bad = dir.join("bad.rsn");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&bad, "env e { gen { show x } }").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_resyn"))
        .args(["build", bad.to_str().unwrap(), "-o"])
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !dir.join("out").exists(),
        "nothing is written for a file with errors"
    );
    let gc = root().join("examples/graph_coloring.rsn");
    let out = Command::new(env!("CARGO_BIN_EXE_resyn"))
        .args(["build", gc.to_str().unwrap(), gc.to_str().unwrap(), "-o"])
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("declared in both"));
    let out = Command::new(env!("CARGO_BIN_EXE_resyn"))
        .args(["build", gc.to_str().unwrap(), "--name", "no spaces", "-o"])
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
