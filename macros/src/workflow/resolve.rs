//! Resolves the paths a workflow body uses through the `use` items in scope:
//! the body's own, the module's, glob imports, and re-exports in the
//! crate's other modules (`crate::`, `self::`, `super::` and local modules).
//!
//! The result is what a path names *outside* the crate (`tokio::spawn` for a
//! `spawn` imported from it); a name the crate defines itself is nobody's
//! business here. Resolution is best effort: what it cannot follow (a
//! `#[path]` module, a macro-generated item) it leaves unresolved, and the
//! checks fall back to the path as written.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::imports::{self, CrateLayout, Glob, Import, ItemKind, Module, Scope};

/// How deep re-exports are followed before giving up (cycles included).
const MAX_HOPS: usize = 16;

/// How the first segment of a written path was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Via {
    /// A `use` naming it, at this line of the workflow's file.
    Import { line: usize },
    /// A glob import, at this line.
    Glob { glob: String, line: usize },
    /// The path itself leads there (`crate::util::pause`).
    Path,
}

/// What a written path names outside the crate, and how that was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolution {
    pub(crate) path: Vec<String>,
    pub(crate) via: Via,
}

/// The scopes around one workflow function.
pub(crate) struct Resolver {
    layout: CrateLayout,
    /// The workflow's file, parsed.
    file: Rc<Module>,
    /// The inline modules from the file's top to the workflow.
    mods: Vec<String>,
    /// The workflow's module path in the crate, when known.
    here: Option<Vec<String>>,
    /// What the function body declares.
    body: Scope,
    /// Module files loaded so far, by path.
    loaded: RefCell<HashMap<PathBuf, Option<Rc<Module>>>>,
}

/// A module: the file it is in, the inline modules inside that file, and
/// the directory of its child modules.
struct Loc {
    file: Rc<Module>,
    inline: Vec<String>,
    dir: PathBuf,
}

impl Loc {
    fn get(&self) -> Option<&Module> {
        let mut m = &*self.file;
        for s in &self.inline {
            m = m.inline.get(s)?;
        }
        Some(m)
    }
}

impl Resolver {
    /// The resolver for the function `name` whose body reads as `body_text`
    /// (whitespace removed), in the source file `path`; `None` when the file
    /// cannot be read or parsed, or the function is not found in it.
    pub(crate) fn for_fn(
        path: &Path,
        manifest_dir: Option<&Path>,
        name: &str,
        body_text: &str,
    ) -> Option<Self> {
        let (file, mut found) = imports::parse_file(path, |f| {
            let mut found = Vec::new();
            imports::find_fns(&f.items, name, &mut Vec::new(), &mut found);
            (Module::from_items(&f.items), found)
        })?;
        let pick = if found.len() == 1 {
            0
        } else {
            found.iter().position(|f| f.text == body_text)?
        };
        let found = found.swap_remove(pick);
        let layout = CrateLayout::of(path, manifest_dir);
        let here = layout.file_module.clone().map(|mut m| {
            m.extend(found.mods.iter().cloned());
            m
        });
        let file = Rc::new(file);
        let mut loaded = HashMap::new();
        loaded.insert(path.to_path_buf(), Some(file.clone()));
        Some(Resolver {
            layout,
            file,
            mods: found.mods,
            here,
            body: found.body,
            loaded: RefCell::new(loaded),
        })
    }

    /// The module that holds the workflow.
    fn current(&self) -> Option<&Module> {
        let mut m = &*self.file;
        for s in &self.mods {
            m = m.inline.get(s)?;
        }
        Some(m)
    }

    /// What a path written in the workflow body may name outside the crate:
    /// one candidate, several when only glob imports of other crates could
    /// bring its first segment, none when it is the crate's own or unknown.
    pub(crate) fn resolve(&self, segs: &[String]) -> Vec<Resolution> {
        let Some(first) = segs.first() else {
            return Vec::new();
        };
        if matches!(first.as_str(), "crate" | "self" | "super") {
            return self
                .relative(self.here.as_deref(), segs, 0)
                .pipe_via(Via::Path);
        }
        let rest = &segs[1..];
        if let Some(imp) = self.body.import(first) {
            let via = Via::Import { line: imp.line };
            return self
                .expand(self.here.as_deref(), imp, rest, 0)
                .pipe_via(via);
        }
        if self.body.items.contains_key(first) {
            return Vec::new();
        }
        let Some(current) = self.current() else {
            return Vec::new();
        };
        if let Some(imp) = current.scope.import(first) {
            let via = Via::Import { line: imp.line };
            return self
                .expand(self.here.as_deref(), imp, rest, 0)
                .pipe_via(via);
        }
        if current.scope.items.contains_key(first) {
            return match (&self.here, is_mod(current, first)) {
                (Some(here), true) => {
                    let mp = join(here, first);
                    self.in_module(&mp, rest, 0).pipe_via(Via::Path)
                }
                _ => Vec::new(),
            };
        }
        let globs = self.body.globs.iter().chain(&current.scope.globs);
        self.through_globs(self.here.as_deref(), globs, segs, 0, true)
    }

    /// The kind of the crate's own item that a path written in the workflow
    /// body names, when it can be found: explicit imports, local modules and
    /// `crate::`/`self::`/`super::` paths are followed (not globs).
    pub(crate) fn crate_item(&self, segs: &[String]) -> Option<ItemKind> {
        let first = segs.first()?;
        let rest = &segs[1..];
        if matches!(first.as_str(), "crate" | "self" | "super") {
            let path = normalize(self.here.as_deref(), segs)?;
            return self.item_in(&[], &path, 0);
        }
        if let Some(imp) = self.body.import(first) {
            return self.item_via(self.here.as_deref(), imp, rest, 0);
        }
        if rest.is_empty()
            && let Some(k) = self.body.items.get(first)
        {
            return Some(*k);
        }
        let current = self.current()?;
        if let Some(imp) = current.scope.import(first) {
            return self.item_via(self.here.as_deref(), imp, rest, 0);
        }
        if rest.is_empty() {
            return current.scope.items.get(first).copied();
        }
        let here = self.here.as_ref()?;
        if is_mod(current, first) {
            return self.item_in(&join(here, first), rest, 0);
        }
        None
    }

    /// The kind of the item `imp` names, followed by `rest`, seen from `at`.
    fn item_via(
        &self,
        at: Option<&[String]>,
        imp: &Import,
        rest: &[String],
        hops: usize,
    ) -> Option<ItemKind> {
        if imp.absolute || hops > MAX_HOPS {
            return None;
        }
        let full: Vec<String> = imp.target.iter().chain(rest).cloned().collect();
        let first = full.first()?;
        if matches!(first.as_str(), "crate" | "self" | "super") {
            let path = normalize(at, &full)?;
            return self.item_in(&[], &path, hops + 1);
        }
        let at = at?;
        if is_mod(self.locate(at)?.get()?, first) {
            return self.item_in(at, &full, hops + 1);
        }
        None
    }

    /// The kind of the item `rest` names inside crate module `mp`.
    fn item_in(&self, mp: &[String], rest: &[String], hops: usize) -> Option<ItemKind> {
        if hops > MAX_HOPS {
            return None;
        }
        let (first, tail) = rest.split_first()?;
        let loc = self.locate(mp)?;
        let m = loc.get()?;
        if let Some(imp) = m.scope.import(first) {
            return self.item_via(Some(mp), imp, tail, hops + 1);
        }
        if tail.is_empty() {
            return m.scope.items.get(first).copied();
        }
        if is_mod(m, first) {
            return self.item_in(&join(mp, first), tail, hops + 1);
        }
        None
    }

    /// Resolves `segs` through glob imports declared in module `at`: a glob
    /// of one of the crate's modules that provides the first segment wins;
    /// otherwise every glob of another crate is a candidate.
    fn through_globs<'g>(
        &self,
        at: Option<&[String]>,
        globs: impl Iterator<Item = &'g Glob>,
        segs: &[String],
        hops: usize,
        top: bool,
    ) -> Vec<Resolution> {
        let first = &segs[0];
        let mut maybe = Vec::new();
        let mut found = Vec::new();
        for g in globs {
            let via = glob_via(g, top);
            let Some(mp) = self.glob_module(at, g) else {
                found.push(Resolution {
                    path: g.target.iter().chain(segs).cloned().collect(),
                    via,
                });
                continue;
            };
            let provides = self.locate(&mp).and_then(|l| {
                let m = l.get()?;
                Some(m.scope.provides(first) || is_mod(m, first))
            });
            if provides == Some(true) {
                return self.in_module(&mp, segs, hops + 1).pipe_via(via);
            }
            // The module may still pass the name on through globs of its own.
            maybe.push((mp, via));
        }
        for (mp, via) in maybe {
            found.extend(self.in_module(&mp, segs, hops + 1).pipe_via(via));
        }
        found
    }

    /// The crate module a glob imports from, or `None` for another crate's.
    fn glob_module(&self, at: Option<&[String]>, g: &Glob) -> Option<Vec<String>> {
        if g.absolute {
            return None;
        }
        let first = g.target.first()?;
        if matches!(first.as_str(), "crate" | "self" | "super") {
            return normalize(at, &g.target);
        }
        let at = at?;
        let m = self.locate(at)?;
        if is_mod(m.get()?, first) {
            let mut mp = at.to_vec();
            mp.extend(g.target.iter().cloned());
            return Some(mp);
        }
        None
    }

    /// `imp`'s path followed by `rest`, as seen from module `at`.
    fn expand(
        &self,
        at: Option<&[String]>,
        imp: &Import,
        rest: &[String],
        hops: usize,
    ) -> Vec<Vec<String>> {
        let full: Vec<String> = imp.target.iter().chain(rest).cloned().collect();
        if imp.absolute {
            return vec![full];
        }
        let Some(first) = full.first() else {
            return Vec::new();
        };
        if matches!(first.as_str(), "crate" | "self" | "super") {
            return self.relative(at, &full, hops + 1);
        }
        // Since Rust 2018 a `use` path may start with a module of the same
        // scope (`use util::pause;`).
        if let Some(at) = at
            && let Some(m) = self.locate(at).as_ref().and_then(Loc::get)
        {
            if is_mod(m, first) {
                return self.in_module(at, &full, hops + 1);
            }
            if m.scope.items.contains_key(first) {
                return Vec::new();
            }
        }
        vec![full]
    }

    /// A path starting with `crate`, `self` or `super`, seen from `at`.
    fn relative(&self, at: Option<&[String]>, segs: &[String], hops: usize) -> Vec<Vec<String>> {
        let Some(base) = normalize(at, segs) else {
            return Vec::new();
        };
        self.in_module(&[], &base, hops)
    }

    /// Resolves `rest` inside the crate module `mp`.
    fn in_module(&self, mp: &[String], rest: &[String], hops: usize) -> Vec<Vec<String>> {
        if hops > MAX_HOPS || rest.is_empty() {
            return Vec::new();
        }
        let Some(loc) = self.locate(mp) else {
            return Vec::new();
        };
        let Some(m) = loc.get() else {
            return Vec::new();
        };
        let first = &rest[0];
        if let Some(imp) = m.scope.import(first) {
            return self.expand(Some(mp), imp, &rest[1..], hops + 1);
        }
        if is_mod(m, first) {
            return self.in_module(&join(mp, first), &rest[1..], hops + 1);
        }
        if m.scope.items.contains_key(first) {
            return Vec::new();
        }
        self.through_globs(Some(mp), m.scope.globs.iter(), rest, hops + 1, false)
            .into_iter()
            .map(|r| r.path)
            .collect()
    }

    /// Finds a module of the crate by its path, loading files as needed.
    fn locate(&self, path: &[String]) -> Option<Loc> {
        let root = self.layout.root.as_ref()?;
        let mut loc = Loc {
            file: self.load(root)?,
            inline: Vec::new(),
            dir: imports::child_dir(root, true)?,
        };
        for seg in path {
            let m = loc.get()?;
            if m.inline.contains_key(seg) {
                loc.inline.push(seg.clone());
                loc.dir = loc.dir.join(seg);
            } else if m.outlined.contains(seg) {
                let flat = loc.dir.join(format!("{seg}.rs"));
                let nested = loc.dir.join(seg).join("mod.rs");
                let file = if flat.is_file() { flat } else { nested };
                loc = Loc {
                    file: self.load(&file)?,
                    inline: Vec::new(),
                    dir: imports::child_dir(&file, false)?,
                };
            } else {
                return None;
            }
        }
        Some(loc)
    }

    fn load(&self, path: &Path) -> Option<Rc<Module>> {
        if let Some(m) = self.loaded.borrow().get(path) {
            return m.clone();
        }
        let m = imports::parse_file(path, |f| Rc::new(Module::from_items(&f.items)));
        self.loaded
            .borrow_mut()
            .insert(path.to_path_buf(), m.clone());
        m
    }
}

/// Tags each found path with how it was found.
trait PipeVia {
    fn pipe_via(self, via: Via) -> Vec<Resolution>;
}

impl PipeVia for Vec<Vec<String>> {
    fn pipe_via(self, via: Via) -> Vec<Resolution> {
        self.into_iter()
            .map(|path| Resolution {
                path,
                via: via.clone(),
            })
            .collect()
    }
}

fn glob_via(g: &Glob, top: bool) -> Via {
    if top {
        Via::Glob {
            glob: g.target.join("::"),
            line: g.line,
        }
    } else {
        Via::Path
    }
}

fn is_mod(m: &Module, name: &str) -> bool {
    m.inline.contains_key(name) || m.outlined.contains(name)
}

fn join(mp: &[String], seg: &str) -> Vec<String> {
    let mut out = mp.to_vec();
    out.push(seg.to_owned());
    out
}

/// Turns `crate::a`, `self::a`, `super::super::a` seen from module `at`
/// into a path from the crate root.
fn normalize(at: Option<&[String]>, segs: &[String]) -> Option<Vec<String>> {
    let mut iter = segs.iter().peekable();
    let mut base: Vec<String> = match iter.peek().map(|s| s.as_str()) {
        Some("crate") => {
            iter.next();
            Vec::new()
        }
        Some("self") => {
            iter.next();
            at?.to_vec()
        }
        Some("super") => at?.to_vec(),
        _ => return None,
    };
    while iter.peek().is_some_and(|s| *s == "super") {
        iter.next();
        base.pop()?;
    }
    base.extend(iter.cloned());
    Some(base)
}

#[cfg(test)]
mod tests;
