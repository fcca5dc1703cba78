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

/// A version such as `1.88` or `1.85.0` as numbers, for comparing
/// (`1.88` and `1.88.0` are the same).
fn rust_version(text: &str) -> [u64; 3] {
    let mut version = [0; 3];
    for (slot, part) in version.iter_mut().zip(text.split('.')) {
        *slot = part
            .parse()
            .unwrap_or_else(|e| panic!("rust-version `{text}` does not read: {e}"));
    }
    version
}

#[test]
fn rust_version_is_not_lower_than_what_the_locked_dependencies_need() {
    // `cargo metadata` reads Cargo.lock as it is (`--locked`): every
    // package the workspace builds with, and the rust-version each declares.
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .expect("cannot run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let packages = metadata["packages"].as_array().expect("a package list");
    let ours = packages
        .iter()
        .find(|p| p["name"] == "steadfast")
        .and_then(|p| p["rust_version"].as_str())
        .expect("the steadfast package declares a rust-version");
    let declared = rust_version(ours);
    let too_new: Vec<String> = packages
        .iter()
        .filter_map(|p| {
            let needs = p["rust_version"].as_str()?;
            (rust_version(needs) > declared)
                .then(|| format!("{} {} needs {needs}", p["name"], p["version"]))
        })
        .collect();
    assert!(
        too_new.is_empty(),
        "the workspace says rust-version = {ours}, but locked dependencies need more \
         (raise rust-version in Cargo.toml and the README, or lock older versions):\n{}",
        too_new.join("\n")
    );
}
