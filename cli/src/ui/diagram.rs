//! A workflow's state graph as SVG, drawn on the server from the catalog
//! entry its workers registered: states in rows by their depth from
//! `start`, the run's current state highlighted, the states it went
//! through and the edges it took marked, compensation edges dashed.

use std::collections::{BTreeMap, BTreeSet};

use maud::{Markup, html};
use steadfast_runtime::Status;
use steadfast_runtime::catalog::{
    COMPENSATING, COMPLETED, CONTINUED, CatalogEntry, EdgeKind, FAILED,
};

const NODE_H: f64 = 30.0;
const ROW_H: f64 = 70.0;
const GAP: f64 = 24.0;
const MARGIN: f64 = 16.0;

/// Where a run is on its graph.
#[derive(Debug, Default)]
pub(crate) struct RunPath {
    /// The node to highlight: a state, or an end.
    pub(crate) current: Option<String>,
    /// Whether the run waits for an operator there.
    pub(crate) attention: bool,
    /// The states it went through, oldest first (from its history).
    pub(crate) steps: Vec<String>,
}

impl RunPath {
    /// The path of a run at `step` with `status`, through `history_steps`.
    pub(crate) fn of(step: &str, status: Status, history_steps: Vec<String>) -> Self {
        let current = match status {
            Status::Completed => Some(COMPLETED.to_owned()),
            Status::Failed | Status::Cancelled | Status::TimedOut | Status::Terminated => {
                Some(FAILED.to_owned())
            }
            Status::Compensating => Some(COMPENSATING.to_owned()),
            Status::CompensationFailed => Some(COMPENSATING.to_owned()),
            _ if step.is_empty() => None,
            _ => Some(step.to_owned()),
        };
        let mut steps: Vec<String> = history_steps
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        steps.dedup();
        RunPath {
            current,
            attention: status.needs_attention(),
            steps,
        }
    }
}

/// What an end node is labelled.
fn label(node: &str) -> &str {
    match node {
        COMPLETED => "completed",
        FAILED => "failed / stopped",
        CONTINUED => "continued as new",
        COMPENSATING => "compensating",
        other => other,
    }
}

fn width(node: &str) -> f64 {
    (label(node).chars().count() as f64 * 7.2 + 24.0).max(90.0)
}

/// Rows by longest path from `start` over the graph without its back
/// edges (loops); ends below everything.
fn rows(entry: &CatalogEntry) -> Vec<Vec<String>> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in &entry.edges {
        if e.kind != EdgeKind::Compensation {
            out.entry(e.from.as_str()).or_default().push(e.to.as_str());
        }
    }
    let is_end = |n: &str| [COMPLETED, FAILED, CONTINUED, COMPENSATING].contains(&n);
    // Depth-first from the start: an edge to a node on the stack closes a
    // loop and does not count for depth.
    let mut order: Vec<&str> = Vec::new();
    let mut back: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut state: BTreeMap<&str, u8> = BTreeMap::new(); // 1 on stack, 2 done
    let start = entry.states.first().map_or("start", |s| s.name.as_str());
    let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
    state.insert(start, 1);
    while let Some((node, i)) = stack.pop() {
        let next = out.get(node).and_then(|v| v.get(i)).copied();
        match next {
            Some(to) => {
                stack.push((node, i + 1));
                match state.get(to) {
                    Some(1) => {
                        back.insert((node, to));
                    }
                    Some(_) => {}
                    None => {
                        state.insert(to, 1);
                        stack.push((to, 0));
                    }
                }
            }
            None => {
                state.insert(node, 2);
                order.push(node);
            }
        }
    }
    order.reverse();
    let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
    for node in &order {
        let d = depth.get(node).copied().unwrap_or(0);
        for to in out.get(node).into_iter().flatten() {
            if !back.contains(&(*node, *to)) {
                let e = depth.entry(to).or_insert(0);
                *e = (*e).max(d + 1);
            }
        }
    }
    let deepest = entry
        .states
        .iter()
        .filter_map(|s| depth.get(s.name.as_str()))
        .max()
        .copied()
        .unwrap_or(0);
    let mut rows: Vec<Vec<String>> = vec![Vec::new(); deepest + 2];
    for s in &entry.states {
        let d = depth.get(s.name.as_str()).copied().unwrap_or(0);
        rows[d].push(s.name.clone());
    }
    let mut ends: Vec<&str> = entry
        .edges
        .iter()
        .map(|e| e.to.as_str())
        .filter(|t| is_end(t))
        .collect();
    ends.sort_by_key(|e| {
        [COMPLETED, CONTINUED, FAILED, COMPENSATING]
            .iter()
            .position(|x| x == e)
    });
    ends.dedup();
    rows[deepest + 1] = ends.iter().map(|e| (*e).to_owned()).collect();
    rows.retain(|r| !r.is_empty());
    rows
}

/// The diagram of `entry` with `path` on it.
pub(crate) fn svg(entry: &CatalogEntry, path: &RunPath) -> Markup {
    let rows = rows(entry);
    let row_w = |r: &Vec<String>| r.iter().map(|n| width(n) + GAP).sum::<f64>() - GAP;
    // Room on the right for the curves of loops.
    let total_w = rows.iter().map(row_w).fold(0.0, f64::max) + 2.0 * MARGIN + 50.0;
    let total_h = rows.len() as f64 * ROW_H + 2.0 * MARGIN - (ROW_H - NODE_H);
    // Node centre and width.
    let mut at: BTreeMap<String, (f64, f64, f64)> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        let mut x = (total_w - row_w(r)) / 2.0;
        let y = MARGIN + i as f64 * ROW_H + NODE_H / 2.0;
        for n in r {
            let w = width(n);
            at.insert(n.clone(), (x + w / 2.0, y, w));
            x += w + GAP;
        }
    }
    let visited: BTreeSet<&str> = path.steps.iter().map(String::as_str).collect();
    let taken: BTreeSet<(&str, &str)> = path
        .steps
        .windows(2)
        .map(|w| (w[0].as_str(), w[1].as_str()))
        .chain(
            path.steps
                .last()
                .zip(path.current.as_deref())
                .map(|(l, c)| (l.as_str(), c)),
        )
        .collect();
    html! {
        svg.diagram xmlns="http://www.w3.org/2000/svg" width=(fmt(total_w)) height=(fmt(total_h))
            viewBox={ "0 0 " (fmt(total_w)) " " (fmt(total_h)) } role="img"
            aria-label={ "state diagram of " (entry.workflow) } {
            defs {
                marker #arrow viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" {}
                }
            }
            @for e in &entry.edges {
                @if let (Some(a), Some(b)) = (at.get(&e.from), at.get(&e.to)) {
                    @let class = edge_class(e.kind, taken.contains(&(e.from.as_str(), e.to.as_str())));
                    path class=(class) d=(edge_path(*a, *b)) marker-end="url(#arrow)" data-from=(e.from) data-to=(e.to) {
                        title { (e.from) " → " (label(&e.to)) }
                    }
                }
            }
            @for (name, (cx, cy, w)) in &at {
                @let current = path.current.as_deref() == Some(name.as_str());
                @let class = node_class(name, current, path.attention, visited.contains(name.as_str()));
                g class=(class) data-state=(name) data-current=[current.then_some("true")] {
                    rect x=(fmt(cx - w / 2.0)) y=(fmt(cy - NODE_H / 2.0)) width=(fmt(*w)) height=(fmt(NODE_H)) rx="8" {}
                    text x=(fmt(*cx)) y=(fmt(cy + 4.5)) text-anchor="middle" { (label(name)) }
                    @if let Some(s) = entry.state(name) {
                        title { (s.name) ": waits for " (s.waits_for) }
                    }
                }
            }
        }
    }
}

fn node_class(name: &str, current: bool, attention: bool, visited: bool) -> String {
    let mut class = String::from("node");
    if name.starts_with('(') {
        class.push_str(" end");
    }
    if current {
        class.push_str(if attention {
            " current attention"
        } else {
            " current"
        });
    } else if visited {
        class.push_str(" visited");
    }
    class
}

fn edge_class(kind: EdgeKind, taken: bool) -> String {
    let mut class = String::from(match kind {
        EdgeKind::Compensation => "edge compensation",
        EdgeKind::Fails => "edge fails",
        _ => "edge",
    });
    if taken {
        class.push_str(" taken");
    }
    class
}

/// A straight line down to the next row; a curve around the side for
/// edges that go up or stay in their row (loops).
fn edge_path(from: (f64, f64, f64), to: (f64, f64, f64)) -> String {
    let (fx, fy, fw) = from;
    let (tx, ty, tw) = to;
    if ty > fy + ROW_H * 1.5 {
        // Past the rows between: bend around the nodes in them.
        let dir = if tx < fx { -1.0 } else { 1.0 };
        format!(
            "M {} {} C {} {}, {} {}, {} {}",
            fmt(fx + dir * fw / 4.0),
            fmt(fy + NODE_H / 2.0),
            fmt(fx + dir * (fw / 2.0 + 40.0)),
            fmt(fy + ROW_H),
            fmt(tx + dir * (tw / 2.0 + 20.0)),
            fmt(ty - ROW_H),
            fmt(tx),
            fmt(ty - NODE_H / 2.0)
        )
    } else if ty > fy {
        format!(
            "M {} {} L {} {}",
            fmt(fx),
            fmt(fy + NODE_H / 2.0),
            fmt(tx),
            fmt(ty - NODE_H / 2.0)
        )
    } else {
        let (sx, ex) = (fx + fw / 2.0, tx + tw / 2.0);
        let bulge = sx.max(ex) + 40.0;
        format!(
            "M {} {} C {} {}, {} {}, {} {}",
            fmt(sx),
            fmt(fy),
            fmt(bulge),
            fmt(fy),
            fmt(bulge),
            fmt(ty),
            fmt(ex),
            fmt(ty)
        )
    }
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}
