//! Resolution through `use` items, on small crates written to a temporary
//! directory.

use std::path::{Path, PathBuf};

use super::*;

/// A crate in a fresh directory: `files` are (path under the package, text).
fn package(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("steadfast-resolve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("creates dirs");
        std::fs::write(&p, text).expect("writes");
    }
    dir
}

fn resolver(dir: &Path, file: &str, func: &str) -> Resolver {
    Resolver::for_fn(&dir.join(file), Some(dir), func, "").expect("finds the function")
}

fn resolved(r: &Resolver, path: &str) -> Vec<(String, Via)> {
    let segs: Vec<String> = path.split("::").map(str::to_owned).collect();
    r.resolve(&segs)
        .into_iter()
        .map(|r| (r.path.join("::"), r.via))
        .collect()
}

#[test]
fn follows_renames_groups_globs_and_body_uses() {
    let dir = package(
        "module",
        &[(
            "src/lib.rs",
            "use std::time::Instant as Clock;\n\
             use tokio::{spawn, time::{self, sleep as nap}};\n\
             use rand::*;\n\
             fn sleep() {}\n\
             async fn w() {\n    use std::thread::spawn as go;\n    go(|| ());\n}\n",
        )],
    );
    let r = resolver(&dir, "src/lib.rs", "w");
    assert_eq!(
        resolved(&r, "Clock::now"),
        [("std::time::Instant::now".into(), Via::Import { line: 1 })]
    );
    assert_eq!(
        resolved(&r, "spawn"),
        [("tokio::spawn".into(), Via::Import { line: 2 })]
    );
    assert_eq!(
        resolved(&r, "time::sleep"),
        [("tokio::time::sleep".into(), Via::Import { line: 2 })]
    );
    assert_eq!(
        resolved(&r, "nap"),
        [("tokio::time::sleep".into(), Via::Import { line: 2 })]
    );
    assert_eq!(
        resolved(&r, "random"),
        [(
            "rand::random".into(),
            Via::Glob {
                glob: "rand".into(),
                line: 3
            }
        )]
    );
    assert_eq!(
        resolved(&r, "go"),
        [("std::thread::spawn".into(), Via::Import { line: 6 })]
    );
    // The crate's own `sleep` is no import.
    assert!(resolved(&r, "sleep").is_empty());
    assert!(resolved(&r, "unknown_name::f").len() == 1);
}

#[test]
fn follows_re_exports_through_the_crates_files() {
    let dir = package(
        "crate",
        &[
            ("src/lib.rs", "mod util;\nmod flows;\n"),
            (
                "src/util.rs",
                "pub use tokio::time::sleep as pause;\npub mod inner;\npub fn sleep() {}\n",
            ),
            ("src/util/inner.rs", "pub use std::thread::*;\n"),
            (
                "src/flows/mod.rs",
                "use crate::util::pause;\nuse super::util::inner::*;\n\
                 mod deep {\n    use super::super::util;\n    async fn w() {}\n}\n\
                 async fn v() {}\n",
            ),
        ],
    );
    let r = resolver(&dir, "src/flows/mod.rs", "v");
    assert_eq!(
        resolved(&r, "pause"),
        [("tokio::time::sleep".into(), Via::Import { line: 1 })]
    );
    assert_eq!(
        resolved(&r, "crate::util::pause"),
        [("tokio::time::sleep".into(), Via::Path)]
    );
    assert!(resolved(&r, "crate::util::sleep").is_empty());
    assert_eq!(
        resolved(&r, "spawn"),
        [(
            "std::thread::spawn".into(),
            Via::Glob {
                glob: "super::util::inner".into(),
                line: 2
            }
        )]
    );
    let r = resolver(&dir, "src/flows/mod.rs", "w");
    assert_eq!(
        resolved(&r, "util::pause"),
        [("tokio::time::sleep".into(), Via::Import { line: 4 })]
    );
    assert!(resolved(&r, "util::sleep").is_empty());
    assert!(resolved(&r, "pause").is_empty(), "not in scope in `deep`");
}

#[test]
fn a_missing_file_or_function_gives_no_resolver() {
    let dir = package("missing", &[("src/lib.rs", "fn other() {}\n")]);
    assert!(Resolver::for_fn(&dir.join("src/lib.rs"), Some(&dir), "w", "").is_none());
    assert!(Resolver::for_fn(&dir.join("src/nope.rs"), Some(&dir), "w", "").is_none());
}
