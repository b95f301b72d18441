//! `balms data`: every dataset and where it was found, or how to get it.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use strum::IntoEnumIterator;

use crate::data::{DataLocator, DatasetKind};

/// Arguments of `balms data`.
#[derive(Debug, clap::Args)]
pub struct DataArgs {
    /// Data folder (also `BALMS_DATA`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Prints [`data_listing`].
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn run(args: DataArgs) -> ExitCode {
    print!("{}", data_listing(&DataLocator { data_dir: args.data_dir }));
    ExitCode::SUCCESS
}

/// What `balms data` prints: every dataset of the registry ([`DatasetKind`] with default
/// parameters; `image-list` is named by its matrix) and where it was found, or how to get it.
#[must_use]
pub fn data_listing(locator: &DataLocator) -> String {
    let mut out = String::new();
    for kind in DatasetKind::iter() {
        let line = match locator.locate(&kind) {
            Ok(None) => "embedded".to_string(),
            Ok(Some(dir)) => format!("found in {}", dir.display()),
            Err(_) => format!("missing; {}", kind.hint()),
        };
        let _ = writeln!(out, "{:<18} {line}", kind.name());
    }
    out
}
