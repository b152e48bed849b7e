//! History checkers (issue 2): turn a recorded history into verdicts.
//!
//! Not built yet: `run` reports that plainly instead of pretending.

use std::path::PathBuf;
use std::process::ExitCode;

/// `caplab check HISTORY.jsonl`
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The history to check (JSON Lines).
    pub history: PathBuf,
}

/// The checker is not built yet.
#[derive(Debug, thiserror::Error)]
#[error("`caplab check` is not built yet (issue 2)")]
pub struct NotBuilt;

/// Runs the checkers on a history file.
pub async fn run(_args: CheckArgs) -> Result<ExitCode, NotBuilt> {
    Err(NotBuilt)
}
