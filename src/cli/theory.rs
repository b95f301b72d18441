//! `balms theory`: the paper's theory checked numerically, written to `paper/theory/`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::bound::Check;
use crate::seed::Seed;

/// Arguments of `balms theory`.
#[derive(Debug, clap::Args)]
pub struct TheoryArgs {
    /// Checks (comma-separated; default all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Check>,
    /// Seeds (at least two; the toy uses the first).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    seeds: Vec<u64>,
    /// Output folder.
    #[arg(long, default_value = "paper/theory")]
    out: PathBuf,
}

/// Runs the checks, prints their summary and the files written.
///
/// # Errors
/// Fewer than two seeds, or a file that cannot be written.
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn run(args: TheoryArgs) -> anyhow::Result<ExitCode> {
    let checks = if args.only.is_empty() { Check::ALL.to_vec() } else { args.only };
    let seeds: Vec<Seed> = args.seeds.into_iter().map(Seed).collect();
    let (summary, written) = crate::bound::run(&checks, &seeds, &args.out)?;
    print!("{summary}");
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
