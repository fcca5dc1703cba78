//! The control-flow graph a workflow body is lowered to.
//!
//! A *block* is a run of await-free statements ending in a terminator. Blocks
//! are only split where a construct contains an await; everything else stays
//! ordinary Rust inside one block. A *suspension* ends a block with a command
//! (run this activity) and names the block that resumes with its outcome.
//! Suspensions become the persisted variants of the state enum; every other
//! block boundary is transient and never checkpointed.

use std::collections::BTreeSet;
use std::rc::Rc;

use proc_macro2::{Span, TokenStream};
use syn::{Expr, ExprMethodCall, Ident, Lifetime, Pat, Path, Stmt, Type};

pub(crate) type BlockId = usize;
pub(crate) type VarId = usize;
pub(crate) type SuspendId = usize;

/// A local of the workflow body (a parameter, a `let` binding, a pattern
/// binding, or a temporary the lowering introduced).
pub(crate) struct Var {
    pub(crate) name: Ident,
    /// The type, when the source names it (or it follows from an activity).
    pub(crate) ty: Option<Type>,
    pub(crate) mutable: bool,
    pub(crate) origin: VarOrigin,
}

/// Where a variable comes from, for error messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarOrigin {
    Param,
    Let,
    /// Bound by a pattern in a `match` arm, `if let` or `for`.
    Pattern,
    /// A temporary for a hoisted await or a `for` loop's items.
    Temp,
}

/// What a `break` out of a split loop (or a block's tail) does with a value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Tail {
    /// The value is dropped (statement position).
    Discard,
    /// The value is the workflow's return value.
    Return,
    /// The value is assigned to this variable.
    Assign(VarId),
}

/// A split loop enclosing a statement: where its `break` and `continue` go.
#[derive(Clone)]
pub(crate) struct LoopFrame {
    pub(crate) label: Option<Lifetime>,
    pub(crate) brk: BlockId,
    pub(crate) cont: BlockId,
    pub(crate) tail: Tail,
}

/// An await-free statement of the user's code, kept as written (it is
/// rewritten at emission: `?`, `return`, and `break`/`continue` to split
/// loops).
pub(crate) struct Piece {
    pub(crate) stmt: Stmt,
    /// Variables read (or partly written) by the statement.
    pub(crate) uses: BTreeSet<VarId>,
    /// Variables the statement assigns only on some paths.
    pub(crate) may_defs: BTreeSet<VarId>,
    /// Variables the statement certainly (re)defines: its `let` bindings and
    /// a top-level `x = ..`.
    pub(crate) defs: BTreeSet<VarId>,
    /// Variables declared by the statement (a `let`).
    pub(crate) decls: Vec<VarId>,
    /// Variables whose earlier value this point ends without assigning them
    /// (a `let x = <control flow>` declares `x` here; its value comes later).
    pub(crate) kills: BTreeSet<VarId>,
    /// Split loops around the statement, innermost last.
    pub(crate) loops: Rc<Vec<LoopFrame>>,
    /// Blocks reached by `break`/`continue` inside the statement, with the
    /// variable a valued `break` assigns on the way.
    pub(crate) jumps: Vec<(BlockId, Option<VarId>)>,
    /// Whether the statement contains `?` (a path to the failed state).
    pub(crate) may_fail: bool,
    /// Whether the statement contains `return`.
    pub(crate) may_return: bool,
    /// Whether the statement is `ctx.continue_as_new(..).await` (its
    /// `return` starts the run again rather than completing it).
    pub(crate) continues: bool,
}

/// How a block ends.
pub(crate) enum Terminator {
    /// Not yet set (only while lowering).
    Open,
    Goto(BlockId),
    /// `if cond { then } else { else }`; `binds` are the variables bound by
    /// `let` patterns in the condition, live in `then`.
    If {
        cond: Expr,
        binds: Vec<VarId>,
        then: BlockId,
        els: BlockId,
    },
    Match {
        scrutinee: Expr,
        arms: Vec<MatchArm>,
    },
    Suspend(SuspendId),
    /// The block's last statement diverges (`return`, `break`, `continue`).
    Diverged,
}

pub(crate) struct MatchArm {
    pub(crate) pat: Pat,
    pub(crate) guard: Option<Expr>,
    pub(crate) binds: Vec<VarId>,
    pub(crate) target: BlockId,
}

pub(crate) struct Block {
    pub(crate) pieces: Vec<Piece>,
    pub(crate) term: Terminator,
    /// Uses by the terminator (its condition, scrutinee or command).
    pub(crate) term_uses: BTreeSet<VarId>,
    /// Variables bound on entry by the predecessor (pattern bindings).
    pub(crate) entry_binds: Vec<VarId>,
    /// The split loops around the terminator (for rewriting command args).
    pub(crate) loops: Rc<Vec<LoopFrame>>,
    /// When lowering first entered the block: blocks are emitted in this
    /// (source) order, so type inference meets a local's definition before
    /// its uses, as in the source.
    pub(crate) order: usize,
}

/// What a suspension waits for.
pub(crate) enum SuspendKind {
    /// An `#[activity]` call: `path(args)`.
    Activity { path: Path, args: Vec<Expr> },
    /// A command of the workflow context, as written: `ctx.sleep(d)`,
    /// `ctx.signal::<S>()`, `ctx.signal_within::<S>(t)`, `ctx.child::<W>(id, input)`.
    Ctx {
        method: CtxMethod,
        call: Box<ExprMethodCall>,
        /// The turbofish type (`S` or `W`), when the method takes one.
        ty: Option<Box<Type>>,
    },
}

/// The context commands a workflow can await.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum CtxMethod {
    Sleep,
    Signal,
    SignalWithin,
    Child,
}

/// A suspension point: a persisted state of the workflow.
pub(crate) struct Suspend {
    /// The stable name (`charge_card#0`, or pinned with `#[step("..")]`).
    pub(crate) name: String,
    /// The variant's identifier (`ChargeCard0`).
    pub(crate) variant: Ident,
    pub(crate) kind: SuspendKind,
    /// The block that resumes with the outcome.
    pub(crate) resume: BlockId,
    /// The await expression's span.
    pub(crate) span: Span,
    /// `path` written as a type, for outcome types (`<charge_card as ..>`).
    pub(crate) outcome_path: TokenStream,
}

impl SuspendKind {
    pub(crate) fn describe(&self) -> String {
        let ty_name = |ty: &Option<Box<Type>>| {
            ty.as_ref()
                .map(|t| quote::quote!(#t).to_string().replace(' ', ""))
                .unwrap_or_default()
        };
        match self {
            SuspendKind::Activity { path, .. } => {
                let name = path
                    .segments
                    .last()
                    .map(|s| s.ident.to_string())
                    .unwrap_or_default();
                format!("activity {name}")
            }
            SuspendKind::Ctx { method, ty, .. } => match method {
                CtxMethod::Sleep => "timer".to_owned(),
                CtxMethod::Signal => format!("signal {}", ty_name(ty)),
                CtxMethod::SignalWithin => format!("signal {} or its timeout", ty_name(ty)),
                CtxMethod::Child => format!("child workflow {}", ty_name(ty)),
            },
        }
    }
}

/// The lowered workflow body.
pub(crate) struct Cfg {
    pub(crate) vars: Vec<Var>,
    pub(crate) blocks: Vec<Block>,
    pub(crate) suspends: Vec<Suspend>,
    pub(crate) entry: BlockId,
    /// Parameters, in signature order.
    pub(crate) params: Vec<VarId>,
    /// Items (`use`, `fn`, ..) declared among the body's statements; emitted
    /// once at the top of the step function so every block sees them.
    pub(crate) items: Vec<Stmt>,
    /// Blocks whose terminator (condition, scrutinee, command arguments)
    /// contains `?`.
    pub(crate) fail_terms: BTreeSet<BlockId>,
}

impl Cfg {
    /// Successors of a block, with the variables each edge binds.
    pub(crate) fn successors(&self, b: BlockId) -> Vec<(BlockId, Vec<VarId>)> {
        let block = &self.blocks[b];
        let mut out: Vec<(BlockId, Vec<VarId>)> = block
            .pieces
            .iter()
            .flat_map(|p| {
                p.jumps
                    .iter()
                    .map(|(j, v)| (*j, v.iter().copied().collect()))
            })
            .collect();
        match &block.term {
            Terminator::Open | Terminator::Diverged => {}
            Terminator::Goto(t) => out.push((*t, Vec::new())),
            Terminator::If {
                binds, then, els, ..
            } => {
                out.push((*then, binds.clone()));
                out.push((*els, Vec::new()));
            }
            Terminator::Match { arms, .. } => {
                for arm in arms {
                    out.push((arm.target, arm.binds.clone()));
                }
            }
            Terminator::Suspend(s) => out.push((self.suspends[*s].resume, Vec::new())),
        }
        out
    }
}
