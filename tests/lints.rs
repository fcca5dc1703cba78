//! The code style is part of the suite: `cargo fmt --check` and
//! `cargo clippy --workspace --all-targets -- -D warnings` must pass, so
//! the README's one test command (which CI runs) enforces them.
//!
//! Clippy builds into a target directory of its own (`target/lints`): the
//! one `cargo test` uses is locked while the tests run.

use std::path::Path;
use std::process::Command;

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

fn run(what: &str, cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_code_is_formatted() {
    run(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--check"]),
    );
}

#[test]
fn clippy_finds_nothing() {
    let target = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("lints");
    run(
        "cargo clippy",
        cargo()
            .args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--quiet",
                "--",
                "-D",
                "warnings",
            ])
            .env("CARGO_TARGET_DIR", target),
    );
}
