//! The `caplab` binary: parses the command line, sets up logging and hands the job to the
//! library. Everything else lives in the `caplab` library crate (see its crate docs).

use std::process::ExitCode;

use clap::Parser;

use caplab::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logging = cli.log_settings();
    if let Err(e) = caplab::logging::init(&logging) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
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
            let message = error_chain(e.as_ref());
            eprintln!("error: {message}");
            if logging.file.is_some() {
                // The log file holds the reason too, for whoever reads only the file.
                tracing::error!(error = %message, "could not run");
            }
            ExitCode::from(2)
        }
    }
}

/// An error and its causes, `: `-separated, leaving out a cause whose text the message already
/// holds (most errors here put their cause in their own message).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    Ok(match command {
        Command::Serve(args) => caplab::app::serve(args).await?,
        Command::Check(args) => caplab::check::run(args).await?,
        Command::Proxy(args) => caplab::proxy::run(args).await?,
        Command::Lab(args) => caplab::lab::run(args).await?,
        Command::Demo(args) => caplab::lab::demo(args).await?,
        Command::Scenario(args) => caplab::scenario::run(args).await?,
        Command::Console(args) => caplab::console::run(args).await?,
    })
}
