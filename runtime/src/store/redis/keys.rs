//! The key layout: every key of a run shares a hash tag with its shard's
//! task streams and indexes, so one script can touch them atomically, also
//! on Redis Cluster.

/// Key names under a prefix, for a number of logical shards.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
    shards: u32,
}

impl Keys {
    pub(crate) fn new(prefix: String, shards: u32) -> Self {
        Keys {
            prefix,
            shards: shards.max(1),
        }
    }

    pub(crate) fn shards(&self) -> u32 {
        self.shards
    }

    /// The shard of a run: a stable hash of its id (FNV-1a).
    pub(crate) fn shard_of(&self, workflow_id: &str) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        for b in workflow_id.as_bytes() {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
        h % self.shards
    }

    fn tag(&self, shard: u32) -> String {
        format!("{}{{s{shard}}}:", self.prefix)
    }

    /// `<prefix>{s<n>}:wf:<id>` — the run's hash.
    pub(crate) fn run(&self, id: &str) -> String {
        format!("{}wf:{id}", self.tag(self.shard_of(id)))
    }

    /// `<prefix>{s<n>}:hist:<id>` — the run's bounded history stream.
    pub(crate) fn history(&self, id: &str) -> String {
        format!("{}hist:{id}", self.tag(self.shard_of(id)))
    }

    /// `<prefix>{s<n>}:sig:<id>` — signals sent to the run, not yet consumed.
    pub(crate) fn signals(&self, id: &str) -> String {
        format!("{}sig:{id}", self.tag(self.shard_of(id)))
    }

    /// `<prefix>{s<n>}:timers` — when each run of the shard is to be woken.
    pub(crate) fn timers(&self, shard: u32) -> String {
        format!("{}timers", self.tag(shard))
    }

    /// `<prefix>{sched}:schedules` — every schedule's spec, by id.
    pub(crate) fn schedules(&self) -> String {
        format!("{}{{sched}}:schedules", self.prefix)
    }

    /// `<prefix>{sched}:due` — schedules by next firing time.
    pub(crate) fn schedules_due(&self) -> String {
        format!("{}{{sched}}:due", self.prefix)
    }

    /// `<prefix>catalog` — each workflow type's catalog entry (JSON), by
    /// name. Outside any shard: only single-key commands touch it, so it
    /// may live in any Cluster slot.
    pub(crate) fn catalog(&self) -> String {
        format!("{}catalog", self.prefix)
    }

    /// `<prefix>{s<n>}:q:<queue>` — a task queue's stream in one shard.
    pub(crate) fn tasks(&self, shard: u32, queue: &str) -> String {
        format!("{}q:{queue}", self.tag(shard))
    }

    /// The task stream a run's tasks go to.
    pub(crate) fn tasks_of(&self, id: &str, queue: &str) -> String {
        self.tasks(self.shard_of(id), queue)
    }

    /// `<prefix>{s<n>}:active` — runs not settled, scored by creation time.
    pub(crate) fn active(&self, shard: u32) -> String {
        format!("{}active", self.tag(shard))
    }

    /// `<prefix>{s<n>}:done` — completed and failed runs, scored by when.
    pub(crate) fn done(&self, shard: u32) -> String {
        format!("{}done", self.tag(shard))
    }

    /// `<prefix>{s<n>}:attention` — parked runs and failed compensations.
    pub(crate) fn attention(&self, shard: u32) -> String {
        format!("{}attention", self.tag(shard))
    }

    /// The channel on which a settled run's id is published.
    pub(crate) fn settled_channel(&self, shard: u32) -> String {
        format!("{}settled", self.tag(shard))
    }

    /// A pattern matching every shard's settled channel.
    pub(crate) fn settled_pattern(&self) -> String {
        let escaped: String = self
            .prefix
            .chars()
            .flat_map(|c| match c {
                '*' | '?' | '[' | ']' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        format!("{escaped}{{s*}}:settled")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_a_run_share_its_shard_tag() {
        let k = Keys::new("steadfast:".into(), 8);
        let id = "order-42";
        let s = k.shard_of(id);
        let tag = format!("{{s{s}}}");
        for key in [
            k.run(id),
            k.history(id),
            k.tasks_of(id, "orders"),
            k.active(s),
        ] {
            assert!(key.contains(&tag), "{key}");
            assert!(key.starts_with("steadfast:"), "{key}");
        }
        assert_eq!(
            Keys::new("steadfast:".into(), 1).run(id),
            "steadfast:{s0}:wf:order-42"
        );
    }

    #[test]
    fn shards_are_stable_and_spread() {
        let k = Keys::new("p:".into(), 4);
        assert_eq!(k.shard_of("order-42"), k.shard_of("order-42"));
        let used: std::collections::HashSet<u32> = (0..100)
            .map(|i| k.shard_of(&format!("order-{i}")))
            .collect();
        assert_eq!(used.len(), 4);
    }

    #[test]
    fn the_settled_pattern_escapes_the_prefix() {
        assert_eq!(
            Keys::new("a*b:".into(), 1).settled_pattern(),
            "a\\*b:{s*}:settled"
        );
    }
}
