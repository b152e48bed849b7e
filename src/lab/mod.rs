//! The local lab (issue 6): the whole topology of DESIGN.md on one machine, no Docker.
//!
//! Built so far: [`redis_node`], which starts and controls real `redis-server` processes (the
//! test harness uses it too), and [`ports`]. `caplab lab` and `caplab demo` are not built yet.

use std::process::ExitCode;

pub use node_action::{LabNode, NodeAction};

pub mod node_action;
pub mod ports;
pub mod redis_node;

/// `caplab lab ...`
#[derive(Debug, clap::Args)]
pub struct LabArgs {}

/// `caplab demo`
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

/// The lab commands are not built yet.
#[derive(Debug, thiserror::Error)]
#[error("`caplab lab` and `caplab demo` are not built yet (issue 6)")]
pub struct NotBuilt;

/// Runs a lab subcommand.
pub async fn run(_args: LabArgs) -> Result<ExitCode, NotBuilt> {
    Err(NotBuilt)
}

/// Runs the demo.
pub async fn demo(_args: DemoArgs) -> Result<ExitCode, NotBuilt> {
    Err(NotBuilt)
}
