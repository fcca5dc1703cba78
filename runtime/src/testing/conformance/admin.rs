//! The administration side: paging an index by cursor, the catalog.

use super::{Ctx, Outcome, Scenario, ensure};
use crate::catalog::{CatalogEntry, CatalogState};
use crate::core::create;
use crate::store::{PageQuery, RunList};

pub(super) const ALL: &[Scenario] = &[
    ("pages of an index see each run once, in order", |c| {
        Box::pin(pages(c))
    }),
    ("the catalog keeps one entry per workflow type", |c| {
        Box::pin(catalog(c))
    }),
];

async fn pages(c: &Ctx<'_>) -> Outcome {
    let Some(admin) = c.store.admin() else {
        return Ok(());
    };
    // Five runs created in one millisecond: the cursor must tell them apart.
    let ids: Vec<String> = (0..5).map(|i| c.id(&format!("page-{i}"))).collect();
    for id in &ids {
        c.store
            .create(&create(c.run(id, 7_000)))
            .await
            .map_err(|e| format!("create: {e}"))?;
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let page = admin
            .page_runs(
                &PageQuery::new(RunList::Active, 2)
                    .after(cursor)
                    .between(Some(7_000), Some(7_000)),
            )
            .await
            .map_err(|e| e.to_string())?;
        ensure!(page.runs.len() <= 2, "a page of 2 held {}", page.runs.len());
        seen.extend(page.runs.iter().map(|r| (r.score_ms, r.id.clone())));
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    let mine: Vec<&String> = seen
        .iter()
        .map(|(_, id)| id)
        .filter(|id| ids.contains(id))
        .collect();
    ensure!(
        mine.len() == ids.len(),
        "the pages held {mine:?}, not each of {ids:?} once"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    ensure!(sorted == seen, "the pages are not in index order: {seen:?}");
    ensure!(
        seen.iter().all(|(score, _)| *score == 7_000),
        "the time range let other runs in: {seen:?}"
    );
    Ok(())
}

async fn catalog(c: &Ctx<'_>) -> Outcome {
    let Some(admin) = c.store.admin() else {
        return Ok(());
    };
    let name = c.id("catalogued");
    let mut entry = CatalogEntry {
        workflow: name.clone(),
        version: "0".into(),
        fingerprint: "f1".into(),
        queue: "q".into(),
        patches: Vec::new(),
        states: vec![CatalogState {
            name: "start".into(),
            waits_for: "start".into(),
            fingerprint: "s".into(),
            compensable: false,
        }],
        edges: Vec::new(),
        registered_at_ms: 1,
        worker: "w1".into(),
    };
    admin
        .register_workflow(&entry)
        .await
        .map_err(|e| e.to_string())?;
    entry.fingerprint = "f2".into();
    entry.worker = "w2".into();
    admin
        .register_workflow(&entry)
        .await
        .map_err(|e| e.to_string())?;
    let all = admin.catalog().await.map_err(|e| e.to_string())?;
    let mine: Vec<&(String, String)> = all.iter().filter(|(n, _)| *n == name).collect();
    ensure!(
        mine.len() == 1,
        "{} entries for one workflow type",
        mine.len()
    );
    let read = CatalogEntry::from_json(&name, &mine[0].1).map_err(|e| e.to_string())?;
    ensure!(
        read == entry,
        "the catalog holds {read:?}, not the last entry written"
    );
    Ok(())
}
