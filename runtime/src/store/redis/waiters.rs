//! Waking clients that wait for runs to settle: the commit script publishes
//! the id of every run that settles; one subscription per store dispatches
//! it to the waiters of that id.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::connection::RedisConnection;
use crate::core::RunRecord;

/// How many recently settled ids, and recently started ids, are remembered.
const REMEMBERED: usize = 65_536;

/// What follows the id in the message published when an operator resumes
/// a settled run (not JSON, so never mistaken for a checkpoint).
pub(crate) const RESUMED: &str = "resumed";

/// Waiters by run id, and the subscription feeding them.
pub(crate) struct Waiters {
    by_id: Mutex<HashMap<String, Weak<Notify>>>,
    /// Ids seen settling since the subscription (re)started, so that a run
    /// that settles before its waiter registers is not missed.
    recent: Mutex<Remembered>,
    /// Ids this store started while subscribed, with the subscription's
    /// epoch: their waiters need not read the run before waiting.
    started: Mutex<HashMap<String, u64>>,
    /// Incremented whenever the subscription (re)starts.
    epoch: AtomicU64,
    /// Woken when the subscription (re)starts: a message may have been
    /// missed while it was down, so every waiter looks again.
    everyone: Notify,
    subscribed: watch::Sender<bool>,
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl Waiters {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Waiters {
            by_id: Mutex::new(HashMap::new()),
            recent: Mutex::new(Remembered::default()),
            started: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            everyone: Notify::new(),
            subscribed: watch::channel(false).0,
            listener: Mutex::new(None),
        })
    }

    /// The notifier of `id` (created on first use; dropped with its last
    /// waiter).
    pub(crate) fn register(&self, id: &str) -> Arc<Notify> {
        let mut map = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get(id).and_then(Weak::upgrade) {
            return n;
        }
        let n = Arc::new(Notify::new());
        map.insert(id.to_owned(), Arc::downgrade(&n));
        // Forget ids nobody waits for any more.
        if map.len() > 1024 {
            map.retain(|_, w| w.strong_count() > 0);
        }
        n
    }

    pub(crate) fn everyone(&self) -> &Notify {
        &self.everyone
    }

    /// Notes that this store started `id` while the subscription was up.
    pub(crate) fn started(&self, id: &str) {
        if !*self.subscribed.borrow() {
            return;
        }
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if started.len() >= REMEMBERED {
            started.clear();
        }
        started.insert(id.to_owned(), self.epoch.load(Ordering::SeqCst));
    }

    /// Whether a settle of `id` cannot have been missed: this store started
    /// it while subscribed, and the subscription has not been interrupted
    /// since. Forgets the start.
    pub(crate) fn watched_since_start(&self, id: &str) -> bool {
        let started = self
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        started == Some(self.epoch.load(Ordering::SeqCst)) && *self.subscribed.borrow()
    }

    /// Whether `id` was seen settling since the subscription (re)started:
    /// `Some(Some(envelope))` when the notification carried the settled
    /// checkpoint, `Some(None)` when it carried only the id.
    /// A carried checkpoint is handed out once.
    pub(crate) fn seen_settled(&self, id: &str) -> Option<Option<RunRecord>> {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let entry = recent.seen.get_mut(id)?;
        Some(entry.take())
    }

    /// Forgets that `id` settled: an operator resumed it, so a remembered
    /// settle (and its checkpoint) is stale.
    pub(crate) fn forget(&self, id: &str) {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Handles a notification: `id`, `id\n<settled checkpoint as JSON>`, or
    /// `id\nresumed` ([`RESUMED`]: the run is no longer settled).
    fn on_message(&self, payload: &str) {
        let (id, json) = match payload.split_once('\n') {
            Some((id, json)) => (id, Some(json)),
            None => (payload, None),
        };
        if json == Some(RESUMED) {
            self.forget(id);
            return;
        }
        // Keep the checkpoint only for runs someone here waits for, or will.
        let wanted = self
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(id)
            || self
                .by_id
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(id)
                .is_some_and(|w| w.strong_count() > 0);
        let envelope = json
            .filter(|_| wanted)
            .and_then(|j| serde_json::from_str::<RunRecord>(j).ok());
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(id, envelope);
        self.wake(id);
    }

    fn wake(&self, id: &str) {
        let notify = {
            let map = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
            map.get(id).and_then(Weak::upgrade)
        };
        if let Some(n) = notify {
            n.notify_waiters();
        }
    }

    /// Starts the subscription if it is not running, and waits (briefly) for
    /// it to be active, so that a settle published after this returns is
    /// not missed.
    pub(crate) async fn ensure_listening(self: &Arc<Self>, conn: &RedisConnection, pattern: &str) {
        {
            let mut listener = self.listener.lock().unwrap_or_else(|e| e.into_inner());
            if listener.is_none() {
                let weak = Arc::downgrade(self);
                *listener = Some(tokio::spawn(listen(weak, conn.clone(), pattern.to_owned())));
            }
        }
        let mut rx = self.subscribed.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|s| *s)).await;
    }

    pub(crate) fn stop(&self) {
        if let Some(h) = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            h.abort();
        }
    }
}

/// Keeps one pattern subscription open through `conn.pubsub()`: to the
/// server, the current master behind Sentinels, or any live node of a
/// cluster (where classic `PUBLISH` reaches every node). When it drops (a
/// node died, a failover), it subscribes again, and every waiter looks
/// again, since a message may have been missed meanwhile.
async fn listen(waiters: Weak<Waiters>, conn: RedisConnection, pattern: String) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match conn.pubsub().await {
            Ok(mut pubsub) => match pubsub.psubscribe(&pattern).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    let Some(w) = waiters.upgrade() else { return };
                    w.epoch.fetch_add(1, Ordering::SeqCst);
                    w.recent.lock().unwrap_or_else(|e| e.into_inner()).clear();
                    w.subscribed.send_replace(true);
                    w.everyone.notify_waiters();
                    drop(w);
                    let mut messages = pubsub.into_on_message();
                    while let Some(msg) = messages.next().await {
                        let Some(w) = waiters.upgrade() else { return };
                        match msg.get_payload::<String>() {
                            Ok(payload) => w.on_message(&payload),
                            Err(e) => {
                                debug!(error = %e, "ignoring a settled message that is not text")
                            }
                        }
                    }
                    debug!("settled-run subscription ended; reconnecting");
                }
                Err(e) => {
                    warn!(error = %conn.error(&e), "cannot subscribe to settled runs; retrying")
                }
            },
            Err(e) => debug!(error = %e, "cannot open the settled-run subscription; retrying"),
        }
        match waiters.upgrade() {
            Some(w) => {
                w.subscribed.send_replace(false);
                w.epoch.fetch_add(1, Ordering::SeqCst);
            }
            None => return,
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Recently settled runs, forgetting the oldest.
#[derive(Default)]
struct Remembered {
    seen: HashMap<String, Option<RunRecord>>,
    order: VecDeque<String>,
}

impl Remembered {
    fn add(&mut self, id: &str, envelope: Option<RunRecord>) {
        if self.seen.insert(id.to_owned(), envelope).is_none() {
            self.order.push_back(id.to_owned());
            if self.order.len() > REMEMBERED
                && let Some(old) = self.order.pop_front()
            {
                self.seen.remove(&old);
            }
        }
    }

    fn remove(&mut self, id: &str) {
        if self.seen.remove(id).is_some() {
            self.order.retain(|o| o != id);
        }
    }

    fn clear(&mut self) {
        self.seen.clear();
        self.order.clear();
    }
}
