//! The `resyn` command line: argument parsing, file I/O and rendering. Everything else
//! lives in the `resyn-compiler` library.

use clap::{Parser, Subcommand, ValueEnum};
use resyn_compiler::dataset::{self, Format};
use resyn_compiler::{build_bytes, check_bytes_with, render};
use resyn_runtime::cli::{clap_exit, print_stdout, RowFormat, Selection};
use resyn_runtime::{say, say_part};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

#[global_allocator]
static ALLOC: resyn_runtime::cli::Allocator = resyn_runtime::cli::ALLOCATOR;

#[derive(Parser)]
#[command(
    name = "resyn",
    version,
    about = "Compiler for resyn reasoning environments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum MessageFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Parse, resolve and type-check environment files, and prove that their indexing and
    /// division cannot fail (static safety).
    Check {
        /// Files to check (each is its own compilation unit).
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// `human` (default) or `json`: one JSON object per diagnostic per line.
        #[arg(long, value_enum, default_value = "human")]
        message_format: MessageFormat,
        /// Skip the static-safety proofs (the only part of `check` that runs Z3).
        #[arg(long)]
        no_safety: bool,
    },
    /// Generate instances as JSONL.
    Gen {
        #[command(flatten)]
        inst: Instances,
        #[arg(long, value_enum, default_value = "resyn")]
        format: RowFormat,
        /// Prove each instance with Z3: attach a `proof` and drop instances that fail the
        /// env's `require` (implied by --unique, --rlimit and --timeout-ms).
        #[arg(long)]
        prove: bool,
        #[command(flatten)]
        proof: ProofArgs,
    },
    /// Prove generated instances solvable (and unique) with Z3; one proof row each.
    Prove {
        #[command(flatten)]
        inst: Instances,
        #[command(flatten)]
        proof: ProofArgs,
    },
    /// Check a dataset's proofs: provenance (rows regenerate byte-identically), witness
    /// certificates (native verifier) and, with --reprove, proof claims re-proved with Z3.
    Audit {
        file: std::path::PathBuf,
        #[arg(long)]
        env: Option<String>,
        /// JSONL rows as `gen` wrote them (any --format).
        #[arg(long)]
        data: std::path::PathBuf,
        /// Re-prove each row's claimed status (unique / solvable) with Z3.
        #[arg(long)]
        reprove: bool,
        /// Output file (default: stdout).
        #[arg(short = 'o')]
        out: Option<std::path::PathBuf>,
        /// Worker threads; the output does not depend on it.
        #[arg(long, default_value_t = 1, value_parser = resyn_runtime::rows::parse_jobs)]
        jobs: usize,
    },
    /// Compile envs to a native Rust crate (library + `gen`/`verify` binary) that needs
    /// neither the compiler nor Z3 and writes the same rows as `resyn gen`/`resyn verify`.
    Build {
        /// The `.rsn` files whose envs go into the crate.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// What to emit (only `rust`).
        #[arg(long, value_enum, default_value = "rust")]
        emit: Emit,
        /// The crate's directory (created; files in it are overwritten).
        #[arg(short = 'o')]
        out: std::path::PathBuf,
        /// The crate's name.
        #[arg(long, default_value = "resyn-envs")]
        name: String,
        /// The runtime dependency: a path to the `runtime` directory of a resyn checkout
        /// (default: this build's own, when it exists) …
        #[arg(long, conflicts_with = "runtime_version")]
        runtime_path: Option<std::path::PathBuf>,
        /// … or a version of `resyn-runtime` from a registry.
        #[arg(long)]
        runtime_version: Option<String>,
    },
    /// Score answers: rows with `instance` and `response` (raw text) or `answer` (JSON).
    Verify {
        file: std::path::PathBuf,
        #[arg(long)]
        env: Option<String>,
        /// JSONL rows to verify.
        #[arg(long)]
        data: std::path::PathBuf,
        /// How to find the answer in `response` text: auto, tag, fence, json or text
        /// (default: the env's `extract` setting, else auto).
        #[arg(long)]
        extract: Option<resyn_runtime::ExtractMode>,
        /// Output file (default: stdout).
        #[arg(short = 'o')]
        out: Option<std::path::PathBuf>,
        /// Worker threads; the output does not depend on it.
        #[arg(long, default_value_t = 1, value_parser = resyn_runtime::rows::parse_jobs)]
        jobs: usize,
    },
}

/// Which instances: shared by `gen` and `prove` (the flags are the emitted binaries' too).
#[derive(clap::Args)]
struct Instances {
    file: std::path::PathBuf,
    #[command(flatten)]
    which: Selection,
}

/// Solver settings: shared by `gen --prove` and `prove`.
#[derive(clap::Args, Clone, Copy)]
struct ProofArgs {
    /// Prove uniqueness too (always done for `require unique` envs).
    #[arg(long)]
    unique: bool,
    /// Z3 resource limit per solver call: deterministic, unlike a timeout, so the same
    /// instances are proved on every machine. Default 500000000 (about a minute of
    /// solving here), so no env can make a proof run unbounded; 0 = none.
    #[arg(long)]
    rlimit: Option<u32>,
    /// Wall-clock limit per solver call in milliseconds (0 = none).
    #[arg(long, default_value_t = 0)]
    timeout_ms: u32,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Emit {
    Rust,
}

fn main() -> ExitCode {
    // `--version` names the Z3 in use, which only the linked library knows (so clap's
    // static version string cannot).
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.as_slice(), [a] if a == "--version" || a == "-V") {
        return print_stdout(&format!(
            "resyn {} (Z3 {})\n",
            env!("CARGO_PKG_VERSION"),
            resyn_compiler::prove::z3_version()
        ));
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return clap_exit(&e),
    };
    // Deeply nested input is capped by the parser; a generous stack keeps the
    // recursive passes comfortable on any platform's default main-thread stack.
    let handle = std::thread::Builder::new()
        .stack_size(64 * 1024 * 1024)
        .spawn(move || run(cli))
        .expect("spawning the main worker thread");
    handle.join().unwrap_or(ExitCode::from(101))
}

fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check {
            files,
            message_format,
            no_safety,
        } => check(&files, message_format, !no_safety),
        Command::Gen {
            inst,
            format,
            prove,
            proof,
        } => {
            let format = Format::from(format);
            let prove = prove || proof.unique || proof.rlimit.is_some() || proof.timeout_ms > 0;
            let cfg = prove.then(|| proof.config(false));
            gen(&inst, format, cfg)
        }
        Command::Prove { inst, proof } => gen(&inst, Format::Resyn, Some(proof.config(true))),
        Command::Audit {
            file,
            env,
            data,
            reprove,
            out,
            jobs,
        } => audit(&file, env.as_deref(), &data, reprove, out.as_deref(), jobs),
        Command::Build {
            files,
            emit: Emit::Rust,
            out,
            name,
            runtime_path,
            runtime_version,
        } => build(&files, &out, &name, runtime_path, runtime_version),
        Command::Verify {
            file,
            env,
            data,
            out,
            extract,
            jobs,
        } => verify(&file, env.as_deref(), &data, out.as_deref(), extract, jobs),
    }
}

fn check(files: &[std::path::PathBuf], format: MessageFormat, safety: bool) -> ExitCode {
    let mut errors = 0usize;
    let mut warnings = 0usize;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // The first failed write of a JSON diagnostic: the run then exits 1 (the diagnostics
    // are its output), not 0 with them lost.
    let mut write_error: Option<std::io::Error> = None;
    let color = format == MessageFormat::Human && std::io::stderr().is_terminal();
    for path in files {
        let name = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                errors += 1;
                match format {
                    MessageFormat::Human => say!("error[E0014]: cannot read `{name}`: {e}"),
                    MessageFormat::Json => {
                        let obj = serde_json::json!({
                            "code": "E0014", "severity": "error",
                            "message": format!("cannot read `{name}`: {e}"),
                            "file": name, "line": 1, "column": 1,
                            "span": {"start": 0, "end": 0}, "label": null, "labels": [],
                            "help": "check the path"
                        });
                        if let Err(e) = writeln!(out, "{obj}") {
                            write_error.get_or_insert(e);
                        }
                    }
                }
                continue;
            }
        };
        let result = check_bytes_with(&name, &bytes, safety);
        for d in &result.diagnostics {
            if d.is_error() {
                errors += 1;
            } else {
                warnings += 1;
            }
            match format {
                MessageFormat::Human => say_part!("{}", render::human(d, &result.sources, color)),
                MessageFormat::Json => {
                    if let Err(e) = writeln!(out, "{}", render::json_line(d, &result.sources)) {
                        write_error.get_or_insert(e);
                    }
                }
            }
        }
    }
    if format == MessageFormat::Human {
        if errors == 0 {
            say!(
                "checked {} file(s): ok ({warnings} warning(s))",
                files.len()
            );
        } else {
            say!(
                "checked {} file(s): {errors} error(s), {warnings} warning(s)",
                files.len()
            );
        }
    }
    if let Some(e) = write_error.or_else(|| out.flush().err()) {
        say!("error: cannot write the diagnostics: {e}");
        return ExitCode::from(1);
    }
    ExitCode::from(if errors > 0 { 1 } else { 0 })
}

/// Reads and compiles a file whose program is needed (`gen`, `verify`, `build`, …);
/// diagnostics go to stderr. Returns the program and the source text.
fn compile_file(file: &std::path::Path) -> Result<(resyn_compiler::ir::Program, String), ExitCode> {
    let name = file.display().to_string();
    let bytes = std::fs::read(file).map_err(|e| {
        say!("error[E0014]: cannot read `{name}`: {e}");
        ExitCode::from(1)
    })?;
    let (out, program) = build_bytes(&name, &bytes);
    let color = std::io::stderr().is_terminal();
    for d in &out.diagnostics {
        say_part!("{}", render::human(d, &out.sources, color));
    }
    let Some(program) = program else {
        say!("error: `{name}` has errors; fix them first (`resyn check {name}`)");
        return Err(ExitCode::from(1));
    };
    Ok((program, String::from_utf8_lossy(&bytes).into_owned()))
}

/// Compiles a file and picks one of its envs; returns the program, the env's index and
/// the source hash.
fn load(
    file: &std::path::Path,
    env: Option<&str>,
) -> Result<(resyn_compiler::ir::Program, usize, String), ExitCode> {
    let name = file.display().to_string();
    let (program, text) = compile_file(file)?;
    let names: Vec<&str> = program.envs.iter().map(|e| e.name.as_str()).collect();
    let idx = match env {
        Some(want) => names.iter().position(|n| *n == want).ok_or_else(|| {
            say!(
                "error: no env `{want}` in `{name}` (envs: {})",
                names.join(", ")
            );
            ExitCode::from(1)
        })?,
        None if names.len() == 1 => 0,
        None if names.is_empty() => {
            say!("error: `{name}` declares no env");
            return Err(ExitCode::from(1));
        }
        None => {
            say!(
                "error: `{name}` has {} envs; choose one with --env ({})",
                names.len(),
                names.join(", ")
            );
            return Err(ExitCode::from(2));
        }
    };
    Ok((program, idx, dataset::source_hash(&text)))
}

impl ProofArgs {
    fn config(self, proof_rows: bool) -> dataset::ProveConfig {
        dataset::ProveConfig {
            unique: self.unique,
            limits: resyn_compiler::prove::Limits {
                rlimit: self.rlimit.unwrap_or(resyn_compiler::prove::DEFAULT_RLIMIT),
                timeout_ms: self.timeout_ms,
            },
            proof_rows,
        }
    }
}

/// `gen` (with or without `--prove`) and `prove`: the same instance stream, different rows.
fn gen(inst: &Instances, format: Format, prove: Option<dataset::ProveConfig>) -> ExitCode {
    let which = &inst.which;
    let levels = which.level_list();
    let (n, seed, out) = (which.n, which.seed, which.out.as_deref());
    if let (Some(_), Err(e)) = (prove, resyn_compiler::prove::check_z3()) {
        say!("error: {e}");
        return ExitCode::from(1);
    }
    let (program, idx, source_hash) = match load(&inst.file, which.env.as_deref()) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let env_name = program.envs[idx].name.clone();
    let total = n.saturating_mul(levels.len() as u64);
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} instances ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let req = dataset::GenRequest {
        program: &program,
        env: idx,
        levels: levels.clone(),
        n,
        seed,
        overrides: which.params.clone(),
        format,
        source_hash,
        jobs: which.jobs.max(1),
        prove,
    };
    // Per level: instances by proof status (in `Status` order), for the summary.
    let mut tally: std::collections::BTreeMap<u8, [u64; 4]> = std::collections::BTreeMap::new();
    let (mut dropped, mut refuted) = (0u64, 0u64);
    let started = std::time::Instant::now();
    // Rows are written as their chunk finishes (bounded memory for any `-n`); the output
    // is opened on the first row, so a param error leaves no empty file behind.
    let mut sink = resyn_runtime::rows::RowSink::new(out);
    let mut write_failed: Option<String> = None;
    let mut failed = 0u64;
    let result = dataset::generate_with(&req, &|| bar.inc(1), &mut |r| match r {
        Ok(produced) => {
            if let Some(p) = produced.proof {
                let t = tally.entry(produced.level).or_default();
                t[p.status as usize] += 1;
                refuted += u64::from(p.refuted);
            }
            let Some(row) = produced.row else {
                dropped += 1;
                return true;
            };
            match sink.write(&row) {
                Ok(()) => true,
                Err(msg) => {
                    write_failed = Some(msg);
                    false
                }
            }
        }
        Err(f) => {
            bar.suspend(|| {
                say!(
                    "error: env `{env_name}` level {} seed {seed} index {}: {}",
                    f.level,
                    f.index,
                    f.error
                )
            });
            failed += 1;
            true
        }
    });
    bar.finish_and_clear();
    if let Err(e) = result {
        say!("error: env `{env_name}`: {e}");
        return ExitCode::from(1);
    }
    let written = sink.written;
    if let Some(msg) = write_failed.or_else(|| sink.finish().err()) {
        say!("error: {msg}");
        return ExitCode::from(1);
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = |k: u64| k as f64 / secs.max(1e-9);
    let failed_note = if failed == 0 {
        String::new()
    } else {
        format!(", {failed} failed")
    };
    let Some(cfg) = prove else {
        say!(
            "generated {written} of {total} instance(s) of `{env_name}` in {secs:.2}s ({:.0}/s){failed_note}",
            rate(written)
        );
        return ExitCode::from(if failed == 0 { 0 } else { 1 });
    };
    for (level, [unique, solvable, unsolvable, unknown]) in &tally {
        say!(
            "level {level}: {unique} unique, {solvable} solvable, {unsolvable} unsolvable, {unknown} unknown"
        );
    }
    let done = tally.values().map(|t| t.iter().sum::<u64>()).sum::<u64>();
    if cfg.proof_rows {
        say!(
            "proved {done} of {total} instance(s) of `{env_name}` in {secs:.2}s ({:.1}/s){failed_note}",
            rate(done)
        );
    } else {
        say!(
            "generated {written} proved instance(s) of `{env_name}` ({dropped} dropped of {total}) in {secs:.2}s ({:.1}/s){failed_note}",
            rate(written)
        );
    }
    // An instance proved unsolvable (or not unique, for a `require unique` env) means the
    // generator breaks the env's promise: a user-facing error.
    if refuted > 0 {
        say!(
            "error: {refuted} instance(s) of `{env_name}` violate its `require` (see the rows' status)"
        );
    }
    ExitCode::from(if failed > 0 || refuted > 0 { 1 } else { 0 })
}

fn verify(
    file: &std::path::Path,
    env: Option<&str>,
    data: &std::path::Path,
    out: Option<&std::path::Path>,
    extract: Option<resyn_runtime::ExtractMode>,
    jobs: usize,
) -> ExitCode {
    let (program, idx, _) = match load(file, env) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mut tally = resyn_runtime::rows::VerifyTally::default();
    let streamed = rows_with_env(
        data,
        out,
        jobs,
        &program,
        idx,
        &|cenv, text| resyn_runtime::rows::verify_row_of_line(cenv, text, extract),
        &mut |r| tally.add_row(r),
    );
    if let Err(code) = streamed {
        return code;
    }
    say!("{}", tally.summary());
    ExitCode::SUCCESS
}

/// `resyn build --emit rust`: every file must check clean; env names must be unique
/// across the files (the crate finds envs by name).
fn build(
    files: &[std::path::PathBuf],
    out: &std::path::Path,
    name: &str,
    runtime_path: Option<std::path::PathBuf>,
    runtime_version: Option<String>,
) -> ExitCode {
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid_name {
        say!("error: `{name}` is not a crate name (letters, digits, `-` and `_`)");
        return ExitCode::from(2);
    }
    let mut loaded = Vec::new();
    for f in files {
        let display = f.display().to_string();
        let (program, text) = match compile_file(f) {
            Ok(x) => x,
            Err(code) => return code,
        };
        let hash = dataset::source_hash(&text);
        loaded.push((display, text, program, hash));
    }
    let mut seen = std::collections::BTreeMap::new();
    for (file, _, program, _) in &loaded {
        for env in &program.envs {
            if let Some(first) = seen.insert(env.name.clone(), file.clone()) {
                say!(
                    "error: env `{}` is declared in both `{first}` and `{file}`; the crate finds envs by name",
                    env.name
                );
                return ExitCode::from(1);
            }
        }
    }
    let runtime_dep = match (runtime_path, runtime_version) {
        (Some(p), _) => format!("path = {:?}", absolute(&p)),
        (None, Some(v)) => format!("version = {v:?}"),
        (None, None) => {
            let own = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runtime");
            if own.join("Cargo.toml").is_file() {
                format!("path = {:?}", own.display().to_string())
            } else {
                format!("version = {:?}", env!("CARGO_PKG_VERSION"))
            }
        }
    };
    let units: Vec<resyn_compiler::emit::Unit<'_>> = loaded
        .iter()
        .map(|(file, text, program, hash)| resyn_compiler::emit::Unit {
            file,
            text,
            program,
            source_hash: hash,
        })
        .collect();
    let emitted = resyn_compiler::emit::emit(&units, name, &runtime_dep, env!("CARGO_PKG_VERSION"));
    let mut rust_files = Vec::new();
    for (rel, contents) in &emitted.files {
        let path = out.join(rel);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(&path, contents));
        if let Err(e) = written {
            say!("error: cannot write `{}`: {e}", path.display());
            return ExitCode::from(1);
        }
        if rel.ends_with(".rs") {
            rust_files.push(path);
        }
    }
    // Readable code: rustfmt when the toolchain has it (the code compiles either way).
    let formatted = std::process::Command::new("rustfmt")
        .arg("--edition")
        .arg("2021")
        .args(&rust_files)
        .status()
        .is_ok_and(|s| s.success());
    if !formatted {
        say!("warning: rustfmt did not run; the emitted code is not formatted");
    }
    let envs: usize = loaded.iter().map(|(_, _, p, _)| p.envs.len()).sum();
    say!(
        "emitted {envs} env(s) into `{}` (crate `{name}`): cargo build --release --manifest-path {}",
        out.display(),
        out.join("Cargo.toml").display()
    );
    ExitCode::SUCCESS
}

fn absolute(p: &std::path::Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

fn audit(
    file: &std::path::Path,
    env: Option<&str>,
    data: &std::path::Path,
    reprove: bool,
    out: Option<&std::path::Path>,
    jobs: usize,
) -> ExitCode {
    if let (true, Err(e)) = (reprove, resyn_compiler::prove::check_z3()) {
        say!("error: {e}");
        return ExitCode::from(1);
    }
    let (program, idx, source_hash) = match load(file, env) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let (mut rows, mut ok, mut certified, mut provenance) = (0usize, 0usize, 0usize, 0usize);
    let streamed = rows_with_env(
        data,
        out,
        jobs,
        &program,
        idx,
        &|cenv, text| dataset::audit_line(&program, idx, cenv, &source_hash, text, reprove),
        &mut |r| {
            rows += 1;
            ok += usize::from(r["ok"] == true);
            certified += usize::from(r["certified"] == true);
            provenance += usize::from(r["provenance"] == true);
        },
    );
    if let Err(code) = streamed {
        return code;
    }
    say!(
        "audited {rows} row(s): {ok} ok, {provenance} with provenance, {certified} certified{}",
        if reprove { " (claims re-proved)" } else { "" }
    );
    ExitCode::from(if ok == rows { 0 } else { 1 })
}

/// The row loop of `verify` and `audit`: the rows of `data`, answered by `per_row` with
/// env `idx` on `jobs` threads, into `out`. Each worker compiles the program itself
/// (compiled closures hold `Rc`s).
fn rows_with_env<R: resyn_runtime::rows::OutRow + Send>(
    data: &std::path::Path,
    out: Option<&std::path::Path>,
    jobs: usize,
    program: &resyn_compiler::ir::Program,
    idx: usize,
    per_row: &(dyn Fn(&resyn_compiler::eval::CEnv, &str) -> R + Sync),
    tally: &mut dyn FnMut(&R),
) -> Result<(), ExitCode> {
    with_rows(data, out, |input, w| {
        resyn_runtime::rows::map_rows_parallel(
            input,
            w,
            jobs,
            &|| resyn_compiler::eval::compile(program),
            &|compiled, text| per_row(&compiled.envs[idx], text),
            tally,
        )
    })
}

/// [`resyn_runtime::rows::with_rows`], its error printed: exit code 1.
fn with_rows(
    data: &std::path::Path,
    out: Option<&std::path::Path>,
    run: impl FnOnce(
        &mut resyn_runtime::rows::RowInput,
        &mut dyn Write,
    ) -> Result<(), resyn_runtime::rows::MapError>,
) -> Result<(), ExitCode> {
    resyn_runtime::rows::with_rows(data, out, run).map_err(|msg| {
        say!("error: {msg}");
        ExitCode::from(1)
    })
}
