//! The `caplab` binary: parses the command line, sets up logging and hands the job to the
//! library. Everything else lives in the `caplab` library crate (see its crate docs).

use std::process::ExitCode;

use clap::Parser;

use caplab::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    caplab::logging::init(&cli.log_level, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            // Exit 2 means "could not run", as Jepsen's tools and the scenario runner use it.
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    Ok(match command {
        Command::Serve(args) => caplab::app::serve(args).await?,
        Command::Check(args) => caplab::check::run(args).await?,
        Command::Proxy(args) => caplab::proxy::run(args).await?,
        Command::Lab(args) => caplab::lab::run(args).await?,
        Command::Demo(args) => caplab::lab::demo(args).await?,
        Command::Scenario(args) => caplab::scenario::run(args).await?,
    })
}
