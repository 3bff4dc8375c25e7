//! The `resyn` command line: argument parsing, file I/O and rendering. Everything else
//! lives in the `resyn-compiler` library.

use clap::{Parser, Subcommand, ValueEnum};
use resyn_compiler::{check_bytes, render};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

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
    /// Parse, resolve and type-check environment files.
    Check {
        /// Files to check (each is its own compilation unit).
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// `human` (default) or `json`: one JSON object per diagnostic per line.
        #[arg(long, value_enum, default_value = "human")]
        message_format: MessageFormat,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // clap: help/version are successes, everything else a usage error (2).
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
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
        } => check(&files, message_format),
    }
}

fn check(files: &[std::path::PathBuf], format: MessageFormat) -> ExitCode {
    let mut errors = 0usize;
    let mut warnings = 0usize;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let color = format == MessageFormat::Human && std::io::stderr().is_terminal();
    for path in files {
        let name = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                errors += 1;
                match format {
                    MessageFormat::Human => eprintln!("error[E0014]: cannot read `{name}`: {e}"),
                    MessageFormat::Json => {
                        let obj = serde_json::json!({
                            "code": "E0014", "severity": "error",
                            "message": format!("cannot read `{name}`: {e}"),
                            "file": name, "line": 1, "column": 1,
                            "span": {"start": 0, "end": 0}, "label": null, "labels": [],
                            "help": "check the path"
                        });
                        let _ = writeln!(out, "{obj}");
                    }
                }
                continue;
            }
        };
        let result = check_bytes(&name, &bytes);
        for d in &result.diagnostics {
            if d.is_error() {
                errors += 1;
            } else {
                warnings += 1;
            }
            match format {
                MessageFormat::Human => eprint!("{}", render::human(d, &result.sources, color)),
                MessageFormat::Json => {
                    let _ = writeln!(out, "{}", render::json_line(d, &result.sources));
                }
            }
        }
    }
    if format == MessageFormat::Human {
        if errors == 0 {
            eprintln!(
                "checked {} file(s): ok ({warnings} warning(s))",
                files.len()
            );
        } else {
            eprintln!(
                "checked {} file(s): {errors} error(s), {warnings} warning(s)",
                files.len()
            );
        }
    }
    ExitCode::from(if errors > 0 { 1 } else { 0 })
}
