//! The command line of an emitted crate's binary: `gen` and `verify` for its envs, with
//! the flags and the rows of `resyn gen` / `resyn verify` (spec/cli.md §8). Rows are
//! written by the same code as the compiler's (`rows`), so they are byte-identical.

use crate::env::{generate, Environment, GenError, DEFAULT_ATTEMPTS, DEFAULT_FUEL};
use crate::extract::ExtractMode;
use crate::rng::{derive_seed, Rng};
use crate::rows::{self, parse_kv, parse_levels, Format, Plan, RowContext, VerifyTally};
use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

/// The global allocator of the binaries that run generation and verification (`resyn`
/// and every emitted crate's), declared by each `main.rs` as
/// `#[global_allocator] static ALLOC: Allocator = ALLOCATOR;`. Values are many small
/// `Rc` allocations made and freed per row: mimalloc instead of glibc's malloc measured
/// verify +5-20% and emitted generation +15% (n_queens, graph_coloring, maze_path,
/// water_jugs, dependency_sort, sudoku; same bytes). A binary, not this library, installs
/// it, so a program that links the runtime keeps its own allocator.
pub type Allocator = mimalloc::MiMalloc;
/// The value to install as [`Allocator`].
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;

/// `eprintln!` that cannot panic. `eprintln!` panics when standard error is closed or
/// full (`2>/dev/full`, a reader that went away), which turned a finished run into exit
/// 101. A message that cannot be written is dropped: there is nowhere left to report it,
/// and the exit code still tells the outcome.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` that cannot panic (see [`say!`]).
#[macro_export]
macro_rules! say_part {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::write!(::std::io::stderr(), $($arg)*);
    }};
}

/// Writes `text` to standard output for a command whose output is the point (`list`,
/// `--version`): a failed write is an error (exit 1, said on standard error), not a
/// panic and not a silent success.
pub fn print_stdout(text: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("error: cannot write the output: {e}");
            ExitCode::from(1)
        }
    }
}

/// Prints clap's message for a command line it did not run (help, version or a usage
/// error) and gives the exit code: help and version are successes unless the message
/// could not be written (1), everything else a usage error (2).
pub fn clap_exit(e: &clap::Error) -> ExitCode {
    let printed = e.print();
    if e.use_stderr() {
        ExitCode::from(2)
    } else if let Err(w) = printed {
        say!("error: cannot write the output: {w}");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Looks an env of the crate up by name.
pub type Find = fn(&str) -> Option<Box<dyn Environment>>;

#[derive(Parser)]
#[command(about = "Generate instances and verify answers of compiled resyn environments")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the envs of this crate.
    List,
    /// Generate instances as JSONL (the rows of `resyn gen`).
    Gen {
        #[command(flatten)]
        which: Selection,
        #[arg(long, value_enum, default_value = "resyn")]
        format: RowFormat,
    },
    /// Score answers: rows with `instance` and `response` (raw text) or `answer` (JSON).
    Verify {
        #[arg(long)]
        env: Option<String>,
        /// JSONL rows to verify.
        #[arg(long)]
        data: std::path::PathBuf,
        /// How to find the answer in `response` text (default: the env's setting).
        #[arg(long)]
        extract: Option<ExtractMode>,
        /// Output file (default: stdout).
        #[arg(short = 'o')]
        out: Option<std::path::PathBuf>,
        /// Worker threads; the output does not depend on it.
        #[arg(long, default_value_t = 1, value_parser = rows::parse_jobs)]
        jobs: usize,
    },
}

/// Which instances `gen` makes and where it writes them: the flags `resyn gen`,
/// `resyn prove` and the emitted binaries share (spec/cli.md).
#[derive(clap::Args, Clone)]
pub struct Selection {
    /// The env to generate (required when there are several).
    #[arg(long)]
    pub env: Option<String>,
    /// Instances per level.
    #[arg(short = 'n', default_value_t = 10)]
    pub n: u64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// One level, 1..5.
    #[arg(long, conflicts_with = "levels", value_parser = clap::value_parser!(u8).range(1..=5))]
    pub level: Option<u8>,
    /// A range of levels, `A..B` (inclusive), e.g. `1..5`.
    #[arg(long, value_parser = parse_levels)]
    pub levels: Option<(u8, u8)>,
    /// Override a param: `--param name=value` (repeatable).
    #[arg(long = "param", value_parser = parse_kv)]
    pub params: Vec<(String, String)>,
    /// Output file (default: stdout).
    #[arg(short = 'o')]
    pub out: Option<std::path::PathBuf>,
    /// Worker threads; the output does not depend on it.
    #[arg(long, default_value_t = 1, value_parser = rows::parse_jobs)]
    pub jobs: usize,
}

impl Selection {
    /// The levels asked for, in order (level 1 when none is).
    pub fn level_list(&self) -> Vec<u8> {
        match (self.level, self.levels) {
            (Some(l), _) => vec![l],
            (None, Some((a, b))) => (a..=b).collect(),
            (None, None) => vec![1],
        }
    }
}

/// The `--format` of `gen`.
#[derive(Clone, Copy, ValueEnum)]
pub enum RowFormat {
    Resyn,
    ReasoningGym,
    Verl,
}

impl From<RowFormat> for Format {
    fn from(f: RowFormat) -> Format {
        match f {
            RowFormat::Resyn => Format::Resyn,
            RowFormat::ReasoningGym => Format::ReasoningGym,
            RowFormat::Verl => Format::Verl,
        }
    }
}

/// The binary's `main`: `names` are the crate's envs, `find` builds one, `sources` gives
/// each env's (name, file, source hash), `version` the resyn that compiled them.
pub fn main(names: &[&str], find: Find, sources: &[(&str, &str, &str)], version: &str) -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return clap_exit(&e),
    };
    let pick = |env: Option<&str>| -> Result<&str, ExitCode> {
        match env {
            Some(want) => names.iter().copied().find(|n| *n == want).ok_or_else(|| {
                say!("error: no env `{want}` here (envs: {})", names.join(", "));
                ExitCode::from(1)
            }),
            None if names.len() == 1 => Ok(names[0]),
            None => {
                say!(
                    "error: {} envs here; choose one with --env ({})",
                    names.len(),
                    names.join(", ")
                );
                Err(ExitCode::from(2))
            }
        }
    };
    match cli.command {
        Command::List => {
            let text: String = sources
                .iter()
                .map(|(name, file, hash)| format!("{name}\t{file}\t{hash}\n"))
                .collect();
            print_stdout(&text)
        }
        Command::Gen { which, format } => {
            let name = match pick(which.env.as_deref()) {
                Ok(n) => n,
                Err(code) => return code,
            };
            let hash = sources
                .iter()
                .find(|(n, _, _)| *n == name)
                .map_or("", |(_, _, h)| *h);
            let ctx = RowContext {
                seed: which.seed,
                source_hash: hash,
                resyn_version: version,
                format: format.into(),
            };
            gen(
                find,
                name,
                &which.level_list(),
                which.n,
                &which.params,
                ctx,
                which.out.as_deref(),
                which.jobs,
            )
        }
        Command::Verify {
            env,
            data,
            extract,
            out,
            jobs,
        } => {
            let name = match pick(env.as_deref()) {
                Ok(n) => n,
                Err(code) => return code,
            };
            if find(name).is_none() {
                return ExitCode::from(1);
            }
            let mut tally = VerifyTally::default();
            // Each worker builds the env itself (its values are not `Send`); `find` gave
            // one above, so it gives one every time, and the `None` arm is not taken.
            let r = rows::with_rows(&data, out.as_deref(), |input, w| {
                rows::map_rows_parallel(
                    input,
                    w,
                    jobs,
                    &|| find(name),
                    &|e, text| match e {
                        Some(e) => rows::verify_row_of_line(e.as_ref(), text, extract),
                        None => rows::VerifiedRow::failed(
                            serde_json::Value::Null,
                            rows::row_err("row.env", format!("this binary has no env `{name}`")),
                        ),
                    },
                    &mut |row| tally.add_row(row),
                )
            });
            if let Err(msg) = r {
                say!("error: {msg}");
                return ExitCode::from(1);
            }
            say!("{}", tally.summary());
            ExitCode::SUCCESS
        }
    }
}

/// What a generation worker holds: its env and the params of every level.
type Worker = Option<(Box<dyn Environment>, Vec<Vec<crate::Value>>)>;

#[allow(clippy::too_many_arguments)]
fn gen(
    find: Find,
    name: &str,
    levels: &[u8],
    n: u64,
    raw_params: &[(String, String)],
    ctx: RowContext<'_>,
    out: Option<&std::path::Path>,
    jobs: usize,
) -> ExitCode {
    let Some(env) = find(name) else {
        return ExitCode::from(1);
    };
    let resolved = (|| -> Result<Vec<Vec<crate::Value>>, GenError> {
        let overrides = rows::parse_overrides(env.meta(), raw_params)?;
        levels
            .iter()
            .map(|&l| env.resolve_params(l, &overrides))
            .collect()
    })();
    let params = match resolved {
        Ok(p) => p,
        Err(e) => {
            say!("error: env `{name}`: {e}");
            return ExitCode::from(1);
        }
    };
    let plans: Vec<Plan> = levels
        .iter()
        .zip(&params)
        .map(|(&l, p)| Plan::new(env.as_ref(), l, p))
        .collect();
    // Each worker builds its env and params itself (runtime values are not `Send`).
    let init = || -> Worker {
        let env = find(name)?;
        let overrides = rows::parse_overrides(env.meta(), raw_params).ok()?;
        let params = levels
            .iter()
            .map(|&l| env.resolve_params(l, &overrides))
            .collect::<Result<_, _>>()
            .ok()?;
        Some((env, params))
    };
    let work = |st: &mut Worker, p: usize, index: u64| {
        let plan = &plans[p];
        let Some((env, params)) = st.as_ref() else {
            return Err(format!("level {}: the env could not be set up", plan.level));
        };
        let key = derive_seed(
            &env.meta().name,
            plan.level,
            &plan.params_json,
            ctx.seed,
            index,
        );
        generate(
            env.as_ref(),
            &params[p],
            Rng::from_key(key),
            DEFAULT_FUEL,
            DEFAULT_ATTEMPTS,
        )
        .map(|inst| rows::instance_row_text(&ctx, env.meta(), plan, index, &inst, None))
        .map_err(|e| format!("level {} seed {} index {index}: {e}", plan.level, ctx.seed))
    };
    let mut sink = rows::RowSink::new(out);
    let (mut failed, mut write_error) = (0u64, None);
    let started = std::time::Instant::now();
    let r = rows::run_chunked(
        plans.len(),
        n,
        jobs.max(1),
        &init,
        &work,
        &mut |r| match r {
            Ok(row) => match sink.write(&row) {
                Ok(()) => true,
                Err(msg) => {
                    write_error = Some(msg);
                    false
                }
            },
            Err(msg) => {
                say!("error: env `{name}` {msg}");
                failed += 1;
                true
            }
        },
    );
    if let Err(e) = r {
        say!("error: {e}");
        return ExitCode::from(1);
    }
    let written = sink.written;
    if let Some(msg) = write_error.or_else(|| sink.finish().err()) {
        say!("error: {msg}");
        return ExitCode::from(1);
    }
    let secs = started.elapsed().as_secs_f64();
    say!(
        "generated {written} of {} instance(s) of `{name}` in {secs:.2}s ({:.0}/s){}",
        n.saturating_mul(plans.len() as u64),
        written as f64 / secs.max(1e-9),
        if failed > 0 {
            format!(", {failed} failed")
        } else {
            String::new()
        }
    );
    ExitCode::from(if failed == 0 { 0 } else { 1 })
}
