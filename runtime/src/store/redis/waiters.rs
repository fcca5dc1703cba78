//! Waking clients that wait for runs to settle: the commit script publishes
//! the id of every run that settles; one subscription per store dispatches
//! it to the waiters of that id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// Waiters by run id, and the subscription feeding them.
pub(crate) struct Waiters {
    by_id: Mutex<HashMap<String, Weak<Notify>>>,
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
    pub(crate) async fn ensure_listening(self: &Arc<Self>, client: &redis::Client, pattern: &str) {
        {
            let mut listener = self.listener.lock().unwrap_or_else(|e| e.into_inner());
            if listener.is_none() {
                let weak = Arc::downgrade(self);
                *listener = Some(tokio::spawn(listen(
                    weak,
                    client.clone(),
                    pattern.to_owned(),
                )));
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

async fn listen(waiters: Weak<Waiters>, client: redis::Client, pattern: String) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.psubscribe(&pattern).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    let Some(w) = waiters.upgrade() else { return };
                    w.subscribed.send_replace(true);
                    w.everyone.notify_waiters();
                    drop(w);
                    let mut messages = pubsub.into_on_message();
                    while let Some(msg) = messages.next().await {
                        let Some(w) = waiters.upgrade() else { return };
                        match msg.get_payload::<String>() {
                            Ok(id) => w.wake(&id),
                            Err(e) => {
                                debug!(error = %e, "ignoring a settled message that is not text")
                            }
                        }
                    }
                    debug!("settled-run subscription ended; reconnecting");
                }
                Err(e) => warn!(error = %e, "cannot subscribe to settled runs; retrying"),
            },
            Err(e) => debug!(error = %e, "cannot open the settled-run subscription; retrying"),
        }
        match waiters.upgrade() {
            Some(w) => {
                w.subscribed.send_replace(false);
            }
            None => return,
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
