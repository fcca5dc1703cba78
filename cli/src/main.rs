//! `steadfast`: list, inspect, signal, cancel and repair workflow runs kept
//! in Redis, without the workflows' code.
//!
//! ```text
//! steadfast runs                      # runs in progress
//! steadfast runs --attention          # parked runs and failed compensations
//! steadfast show order-42             # status, state, next call, compensations owed
//! steadfast history order-42
//! steadfast resume order-42 --note "refund service fixed"
//! steadfast signal order-45 cancel '{"reason":"customer asked"}'
//! steadfast schedules pause weekly-report
//! steadfast doctor                    # connection, permissions, what Redis can lose
//! ```

mod args;
mod doctor;
mod ops;
mod render;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ops::run(cli)) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
