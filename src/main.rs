//! The `balms` command line: errors are printed with their causes, exit code 2.

use std::process::ExitCode;

fn main() -> ExitCode {
    balms::device::register_cuda();
    match balms::cli::main() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
