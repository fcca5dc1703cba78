//! Reachability and backward liveness over the block graph.
//!
//! A variable is live at a point when some path from there reads it before
//! redefining it. Each persisted state stores exactly the variables live
//! where its block resumes; every other local is left behind.

use std::collections::BTreeSet;

use super::cfg::{BlockId, Cfg, VarId};

/// Which blocks run at all, and what is live into each.
pub(crate) struct Liveness {
    pub(crate) reachable: Vec<bool>,
    pub(crate) live_in: Vec<BTreeSet<VarId>>,
}

impl Liveness {
    pub(crate) fn compute(cfg: &Cfg) -> Self {
        let n = cfg.blocks.len();
        let reachable = reachability(cfg);
        let succ: Vec<Vec<(BlockId, Vec<VarId>)>> = (0..n).map(|b| cfg.successors(b)).collect();

        // Upward-exposed uses and certain definitions of each block.
        let mut uses = vec![BTreeSet::new(); n];
        let mut defs = vec![BTreeSet::new(); n];
        for (b, block) in cfg.blocks.iter().enumerate() {
            let mut killed: BTreeSet<VarId> = BTreeSet::new();
            for piece in &block.pieces {
                for v in &piece.uses {
                    if !killed.contains(v) {
                        uses[b].insert(*v);
                    }
                }
                killed.extend(piece.defs.iter().copied());
                killed.extend(piece.kills.iter().copied());
            }
            for v in &block.term_uses {
                if !killed.contains(v) {
                    uses[b].insert(*v);
                }
            }
            defs[b] = killed;
        }

        let mut live_in: Vec<BTreeSet<VarId>> = vec![BTreeSet::new(); n];
        let mut changed = true;
        while changed {
            changed = false;
            for b in (0..n).rev() {
                if !reachable[b] {
                    continue;
                }
                let mut out = BTreeSet::new();
                for (s, binds) in &succ[b] {
                    out.extend(live_in[*s].iter().filter(|v| !binds.contains(v)).copied());
                }
                let mut inn = uses[b].clone();
                inn.extend(out.difference(&defs[b]).copied());
                if inn != live_in[b] {
                    live_in[b] = inn;
                    changed = true;
                }
            }
        }
        Liveness { reachable, live_in }
    }
}

fn reachability(cfg: &Cfg) -> Vec<bool> {
    let mut seen = vec![false; cfg.blocks.len()];
    let mut stack = vec![cfg.entry];
    while let Some(b) = stack.pop() {
        if std::mem::replace(&mut seen[b], true) {
            continue;
        }
        for (s, _) in cfg.successors(b) {
            if !seen[s] {
                stack.push(s);
            }
        }
    }
    seen
}
