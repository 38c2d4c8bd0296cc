//! `gen-docs`: rewrites `docs/<framework>/cli.md` and `rest.md` from the
//! frameworks' clap trees and OpenAPI documents, for every framework whose
//! crate is wired in and whose guide directory exists. `--check` only reports
//! the files that are out of date (exit status 1).

use std::process::ExitCode;

use clap::Parser;

/// Writes the generated CLI and REST references of the operator guides.
#[derive(Parser)]
#[command(name = "gen-docs")]
struct Args {
    /// Report out-of-date files instead of writing them
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args.check) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(check: bool) -> anyhow::Result<bool> {
    let root = operator_docs::repo_root();
    let mut up_to_date = true;
    for framework in operator_docs::FRAMEWORKS {
        let dir = framework.guide_dir(&root);
        if !dir.is_dir() {
            eprintln!(
                "{}: no guide in {} yet; nothing generated",
                framework.name,
                dir.display()
            );
            continue;
        }
        let Some(files) = operator_docs::references(framework, &root)? else {
            eprintln!(
                "{}: its crate is not wired into operator-docs yet; nothing generated",
                framework.name
            );
            continue;
        };
        for (path, text) in files {
            let current = std::fs::read_to_string(&path).unwrap_or_default();
            if current == text {
                continue;
            }
            if check {
                eprintln!("out of date: {}", path.display());
                up_to_date = false;
            } else {
                std::fs::write(&path, text)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(up_to_date)
}
