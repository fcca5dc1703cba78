//! Pages of a run index, by a cursor: each page is read from where the
//! last one ended (a score range of the index), so a page costs the same
//! with ten runs as with a hundred thousand.

use std::fmt;
use std::str::FromStr;

use super::RunList;

/// Where a page of an index ends: the score and id of its last run. The
/// next page starts after it. Shown as `<score>:<id>` in URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cursor {
    /// The last run's score in its index (ms since the Unix epoch).
    pub score_ms: u64,
    /// The last run's id.
    pub id: String,
}

impl Cursor {
    /// A cursor after the run `id` scored `score_ms`.
    pub fn new(score_ms: u64, id: impl Into<String>) -> Self {
        Cursor {
            score_ms,
            id: id.into(),
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.score_ms, self.id)
    }
}

/// A cursor text that is not `<score>:<id>`.
#[derive(Debug, thiserror::Error)]
#[error("a cursor is `<score>:<id>`, with the score in ms; take it from the last page's link")]
pub struct BadCursor;

impl FromStr for Cursor {
    type Err = BadCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (score, id) = s.split_once(':').ok_or(BadCursor)?;
        Ok(Cursor::new(score.parse().map_err(|_| BadCursor)?, id))
    }
}

/// Which page of an index to read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageQuery {
    /// The index.
    pub list: RunList,
    /// Start after this run (`None`: from the first).
    pub after: Option<Cursor>,
    /// At most this many runs.
    pub limit: usize,
    /// Only runs scored at or after this time (ms).
    pub since_ms: Option<u64>,
    /// Only runs scored at or before this time (ms).
    pub until_ms: Option<u64>,
}

impl PageQuery {
    /// The first page of `list`, of at most `limit` runs.
    pub fn new(list: RunList, limit: usize) -> Self {
        PageQuery {
            list,
            after: None,
            limit,
            since_ms: None,
            until_ms: None,
        }
    }

    /// Starts after `cursor`.
    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.after = cursor;
        self
    }

    /// Only runs scored in `since_ms..=until_ms` (either end open).
    pub fn between(mut self, since_ms: Option<u64>, until_ms: Option<u64>) -> Self {
        self.since_ms = since_ms;
        self.until_ms = until_ms;
        self
    }

    /// Whether the index is read newest first (finished runs).
    pub fn newest_first(&self) -> bool {
        self.list == RunList::Finished
    }

    /// Whether (`score`, `id`) comes after the cursor in the page order.
    pub(crate) fn is_after_cursor(&self, score: u64, id: &str) -> bool {
        let Some(c) = &self.after else {
            return true;
        };
        if self.newest_first() {
            score < c.score_ms || (score == c.score_ms && id < c.id.as_str())
        } else {
            score > c.score_ms || (score == c.score_ms && id > c.id.as_str())
        }
    }

    /// Whether `score` is in the time range.
    pub(crate) fn in_range(&self, score: u64) -> bool {
        self.since_ms.is_none_or(|s| score >= s) && self.until_ms.is_none_or(|u| score <= u)
    }
}

/// One run of a page: its id and its score in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexedRun {
    /// The run's id.
    pub id: String,
    /// Its score (ms since the Unix epoch): when it was created (active),
    /// settled (finished) or stopped for an operator (attention).
    pub score_ms: u64,
}

impl IndexedRun {
    /// An entry; used by store implementations.
    pub fn new(id: String, score_ms: u64) -> Self {
        IndexedRun { id, score_ms }
    }
}

/// A page of an index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RunPage {
    /// The runs, in the index's order.
    pub runs: Vec<IndexedRun>,
    /// Where the next page starts (`None`: this is the last).
    pub next: Option<Cursor>,
    /// How many index entries the store read to make the page: about
    /// `limit` per shard, however large the index.
    pub entries_read: usize,
}

impl RunPage {
    /// Orders the entries of several shards, keeps the first `limit`, and
    /// sets the cursor when more may follow.
    pub(crate) fn merge(
        query: &PageQuery,
        mut entries: Vec<IndexedRun>,
        entries_read: usize,
        more: bool,
    ) -> Self {
        entries.retain(|e| query.is_after_cursor(e.score_ms, &e.id) && query.in_range(e.score_ms));
        entries.sort_by(|a, b| (a.score_ms, &a.id).cmp(&(b.score_ms, &b.id)));
        if query.newest_first() {
            entries.reverse();
        }
        let more = more || entries.len() > query.limit;
        entries.truncate(query.limit);
        let next = match entries.last() {
            Some(last) if more => Some(Cursor::new(last.score_ms, last.id.clone())),
            _ => None,
        };
        RunPage {
            runs: entries,
            next,
            entries_read,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back() {
        let c = Cursor::new(17, "order:42");
        let back: Cursor = c.to_string().parse().ok().unwrap_or(Cursor::new(0, ""));
        assert_eq!(back, c);
        assert!("nonsense".parse::<Cursor>().is_err());
    }

    #[test]
    fn a_page_starts_after_its_cursor_even_among_equal_scores() {
        let q = PageQuery::new(RunList::Active, 2).after(Some(Cursor::new(5, "b")));
        let entries = ["a", "b", "c", "d"]
            .iter()
            .map(|id| IndexedRun::new((*id).into(), 5))
            .collect();
        let page = RunPage::merge(&q, entries, 4, false);
        let ids: Vec<&str> = page.runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["c", "d"]);
        assert_eq!(page.next, None);
    }
}
