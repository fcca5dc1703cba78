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
//! steadfast workflows order            # a registered workflow's states and edges
//! steadfast doctor                    # connection, permissions, what Redis can lose
//! steadfast ui                        # the web console on http://127.0.0.1:8080/
//! ```

mod args;
mod catalog;
mod doctor;
mod ops;
mod render;
mod ui;

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
        Ok(out) => write_out(&out),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the command's output. A reader that went away (`steadfast show x
/// | head -1`) is no error: the rest is not wanted, so stop quietly instead
/// of panicking as `print!` does on a closed pipe.
fn write_out(out: &str) -> ExitCode {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            ExitCode::FAILURE
        }
    }
}
