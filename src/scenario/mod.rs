//! Scenario files, the load generator, the runner and its reports (issue 7).
//!
//! Not built yet: `run` reports that plainly instead of pretending.

use std::process::ExitCode;

/// `caplab scenario ...`
#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    /// The scenario file.
    pub file: Option<std::path::PathBuf>,
}

/// The runner is not built yet.
#[derive(Debug, thiserror::Error)]
#[error("`caplab scenario` is not built yet (issue 7)")]
pub struct NotBuilt;

/// Runs a scenario subcommand.
pub async fn run(_args: ScenarioArgs) -> Result<ExitCode, NotBuilt> {
    Err(NotBuilt)
}
