//! What the source file around a workflow declares: its `use` items, the
//! names of its own items and its modules, read from disk and reduced to
//! plain data.
//!
//! An attribute macro sees only the function it is attached to, so the
//! determinism checks would see `spawn(..)` but not the `use tokio::spawn;`
//! above it. Since Rust 1.88 a span tells which file it comes from
//! (`Span::local_file`); this module reads and parses that file, and the
//! crate's own module files when a path leads into them. Whatever cannot be
//! read or parsed is simply absent: the checks then fall back to the paths
//! as written.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use syn::visit::{self, Visit};
use syn::{Item, UseTree};

/// One name a `use` (or `extern crate .. as ..`) brings into scope.
#[derive(Debug, Clone)]
pub(crate) struct Import {
    /// The name it binds (`Clock` in `use std::time::Instant as Clock;`).
    pub(crate) name: String,
    /// The path it names (`std`, `time`, `Instant`).
    pub(crate) target: Vec<String>,
    /// Whether the path starts with `::` (an external crate for certain).
    pub(crate) absolute: bool,
    /// The line of the `use` item in its file.
    pub(crate) line: usize,
}

/// A glob import: `use std::time::*;`.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    pub(crate) target: Vec<String>,
    pub(crate) absolute: bool,
    pub(crate) line: usize,
}

/// What kind of item a name defines, as far as the workflow checks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemKind {
    /// A function without `#[activity]`.
    PlainFn,
    /// A function with `#[activity]`.
    Activity,
    /// Anything else (a type, a module, a constant, ...).
    Other,
}

/// What one scope (a module, or a function body) declares.
#[derive(Debug, Default)]
pub(crate) struct Scope {
    pub(crate) imports: Vec<Import>,
    pub(crate) globs: Vec<Glob>,
    /// The items defined here (functions, types, modules, ...) by name.
    pub(crate) items: HashMap<String, ItemKind>,
}

impl Scope {
    pub(crate) fn import(&self, name: &str) -> Option<&Import> {
        self.imports.iter().find(|i| i.name == name)
    }

    /// Whether the scope declares `name` itself or imports it by name.
    pub(crate) fn provides(&self, name: &str) -> bool {
        self.items.contains_key(name) || self.import(name).is_some()
    }

    fn add_item(&mut self, item: &Item) {
        let name = match item {
            Item::Use(u) => {
                let line = u.use_token.span.start().line;
                let absolute = u.leading_colon.is_some();
                flatten(&u.tree, &mut Vec::new(), absolute, line, self);
                return;
            }
            Item::ExternCrate(e) => {
                let name = match &e.rename {
                    Some((_, rename)) => ident(rename),
                    None => ident(&e.ident),
                };
                self.imports.push(Import {
                    name,
                    target: vec![ident(&e.ident)],
                    absolute: true,
                    line: e.extern_token.span.start().line,
                });
                return;
            }
            Item::Const(i) => &i.ident,
            Item::Enum(i) => &i.ident,
            Item::Fn(i) => {
                let activity = i.attrs.iter().any(|a| {
                    a.path()
                        .segments
                        .last()
                        .is_some_and(|s| s.ident == "activity")
                });
                let kind = if activity {
                    ItemKind::Activity
                } else {
                    ItemKind::PlainFn
                };
                // An activity also defines a struct of the same name; the
                // function decides what an awaited call is.
                self.items.insert(ident(&i.sig.ident), kind);
                return;
            }
            Item::Mod(i) => &i.ident,
            Item::Static(i) => &i.ident,
            Item::Struct(i) => &i.ident,
            Item::Trait(i) => &i.ident,
            Item::TraitAlias(i) => &i.ident,
            Item::Type(i) => &i.ident,
            Item::Union(i) => &i.ident,
            Item::Macro(m) => match &m.ident {
                Some(i) => i,
                None => return,
            },
            _ => return,
        };
        self.items.entry(ident(name)).or_insert(ItemKind::Other);
    }
}

/// A module of the crate: what it declares, and where its child modules are.
#[derive(Debug, Default)]
pub(crate) struct Module {
    pub(crate) scope: Scope,
    /// Modules written inline: `mod name { .. }`.
    pub(crate) inline: HashMap<String, Module>,
    /// Modules in files of their own: `mod name;`.
    pub(crate) outlined: HashSet<String>,
}

impl Module {
    pub(crate) fn from_items(items: &[Item]) -> Self {
        let mut m = Module::default();
        for item in items {
            m.scope.add_item(item);
            if let Item::Mod(md) = item {
                // `#[path = ".."]` modules are not followed.
                if md.attrs.iter().any(|a| a.path().is_ident("path")) {
                    continue;
                }
                match &md.content {
                    Some((_, items)) => {
                        m.inline.insert(ident(&md.ident), Module::from_items(items));
                    }
                    None => {
                        m.outlined.insert(ident(&md.ident));
                    }
                }
            }
        }
        m
    }
}

/// A function found in a file: the inline modules around it and what its
/// body declares.
pub(crate) struct FoundFn {
    pub(crate) mods: Vec<String>,
    pub(crate) body: Scope,
    /// The body's tokens without whitespace, to tell apart two functions of
    /// one name.
    pub(crate) text: String,
}

/// Finds every function called `name` in `items`, inline modules included.
pub(crate) fn find_fns(items: &[Item], name: &str, mods: &mut Vec<String>, out: &mut Vec<FoundFn>) {
    for item in items {
        match item {
            Item::Fn(f) if f.sig.ident == name => {
                let mut body = Scope::default();
                BodyItems(&mut body).visit_block(&f.block);
                let block = &f.block;
                out.push(FoundFn {
                    mods: mods.clone(),
                    body,
                    text: squash(&quote::quote!(#block).to_string()),
                });
            }
            Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    mods.push(ident(&m.ident));
                    find_fns(items, name, mods, out);
                    mods.pop();
                }
            }
            _ => {}
        }
    }
}

/// Text without whitespace.
pub(crate) fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Collects the `use` items and item names anywhere in a function body.
struct BodyItems<'a>(&'a mut Scope);

impl<'ast> Visit<'ast> for BodyItems<'_> {
    fn visit_item(&mut self, item: &'ast Item) {
        self.0.add_item(item);
    }
    fn visit_block(&mut self, b: &'ast syn::Block) {
        visit::visit_block(self, b);
    }
}

fn flatten(tree: &UseTree, prefix: &mut Vec<String>, absolute: bool, line: usize, out: &mut Scope) {
    match tree {
        UseTree::Path(p) => {
            prefix.push(ident(&p.ident));
            flatten(&p.tree, prefix, absolute, line, out);
            prefix.pop();
        }
        UseTree::Name(n) => {
            let (name, target) = if n.ident == "self" {
                let Some(last) = prefix.last() else { return };
                (last.clone(), prefix.clone())
            } else {
                let mut t = prefix.clone();
                t.push(ident(&n.ident));
                (ident(&n.ident), t)
            };
            out.imports.push(Import {
                name,
                target,
                absolute,
                line,
            });
        }
        UseTree::Rename(r) => {
            // `use a::b as _;` binds no name.
            if r.rename == "_" {
                return;
            }
            let mut target = prefix.clone();
            if r.ident != "self" {
                target.push(ident(&r.ident));
            }
            out.imports.push(Import {
                name: ident(&r.rename),
                target,
                absolute,
                line,
            });
        }
        UseTree::Glob(_) => out.globs.push(Glob {
            target: prefix.clone(),
            absolute,
            line,
        }),
        UseTree::Group(g) => {
            for t in &g.items {
                flatten(t, prefix, absolute, line, out);
            }
        }
    }
}

/// An identifier's name without a raw prefix.
pub(crate) fn ident(i: &syn::Ident) -> String {
    let s = i.to_string();
    match s.strip_prefix("r#") {
        Some(rest) => rest.to_owned(),
        None => s,
    }
}

/// Parses a Rust source file into plain data, or `None` when it cannot be
/// read or parsed.
///
/// Parsing runs on proc-macro2's own implementation (`fallback::force`):
/// inside a macro, text parsed through the compiler gets spans without line
/// numbers, and the messages name the line of each `use`. Only plain data
/// leaves this function, so no token of that implementation meets one of
/// the compiler's.
pub(crate) fn parse_file<T>(path: &Path, read: impl FnOnce(&syn::File) -> T) -> Option<T> {
    let text = std::fs::read_to_string(path).ok()?;
    let _fallback = FallbackGuard::new();
    let file = syn::parse_file(&text).ok()?;
    Some(read(&file))
}

/// Switches proc-macro2 to its own implementation until dropped.
struct FallbackGuard;

impl FallbackGuard {
    fn new() -> Self {
        proc_macro2::fallback::force();
        FallbackGuard
    }
}

impl Drop for FallbackGuard {
    fn drop(&mut self) {
        proc_macro2::fallback::unforce();
    }
}

/// Where a file of the crate sits in the crate's module tree.
pub(crate) struct CrateLayout {
    /// The crate's root file (`src/lib.rs`), when known.
    pub(crate) root: Option<PathBuf>,
    /// The module path of the file holding the workflow, when known.
    pub(crate) file_module: Option<Vec<String>>,
}

impl CrateLayout {
    /// Works out the crate root and the module path of `file` from the
    /// usual Cargo layout: a file directly in `tests/`, `examples/`,
    /// `benches/`, `src/bin/`, `src/lib.rs`, `src/main.rs`, or outside the
    /// package's `src/` is a crate root; `src/a/b.rs` and `src/a/b/mod.rs`
    /// are module `a::b` of `src/lib.rs` (or `src/main.rs`).
    pub(crate) fn of(file: &Path, manifest_dir: Option<&Path>) -> Self {
        let unknown = CrateLayout {
            root: None,
            file_module: None,
        };
        let as_root = CrateLayout {
            root: Some(file.to_path_buf()),
            file_module: Some(Vec::new()),
        };
        let Some(src) = manifest_dir.map(|d| d.join("src")) else {
            return as_root;
        };
        let Ok(rel) = file.strip_prefix(&src) else {
            let Some(dir) = manifest_dir else {
                return as_root;
            };
            // Files under the package but outside `src/` other than a
            // target's own file (`tests/support/mod.rs`) belong to a crate
            // we cannot name.
            return match file.strip_prefix(dir) {
                Ok(r) if r.components().count() == 2 => as_root,
                Ok(_) => unknown,
                Err(_) => as_root,
            };
        };
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        match parts.as_slice() {
            [one] if one == "lib.rs" || one == "main.rs" => return as_root,
            [bin, _] if bin == "bin" => return as_root,
            _ => {}
        }
        let root = ["lib.rs", "main.rs"]
            .iter()
            .map(|r| src.join(r))
            .find(|r| r.is_file());
        let mut module: Vec<String> = parts;
        if let Some(last) = module.pop()
            && last != "mod.rs"
        {
            module.push(last.trim_end_matches(".rs").to_owned());
        }
        CrateLayout {
            root,
            file_module: Some(module),
        }
    }
}

/// The directory holding the child modules of a module loaded from `file`.
pub(crate) fn child_dir(file: &Path, is_root: bool) -> Option<PathBuf> {
    let dir = file.parent()?;
    let stem = file.file_stem()?.to_string_lossy().into_owned();
    if is_root || stem == "mod" {
        Some(dir.to_path_buf())
    } else {
        Some(dir.join(stem))
    }
}
