//! A decision as one call of the apply script: its effects rendered by
//! name into a small JSON document (with the keys and texts Redis needs),
//! the record's fields as arguments after it, and the typed reply.

use std::collections::HashMap;

use redis::Value;
use serde::{Deserialize, Serialize};

use super::connection::ScriptCall;
use super::keys::Keys;
use super::reply::text;
use super::{GROUP, RedisStore};
use crate::core::{Decision, Effect, Guard, Interrupt, Notice, RunIndex, RunRecord, Write};
use crate::store::codec;
use crate::store::{Applied, StoreError};

/// The decision as the script reads it.
#[derive(Serialize)]
struct Document<'a> {
    id: &'a str,
    guard: LuaGuard<'a>,
    pairs: usize,
    delete: Vec<&'static str>,
    history: Option<LuaHistory>,
    history_max: u64,
    group: &'static str,
    retention_ms: u64,
    channel: String,
    /// The largest decision the script accepts, in bytes of arguments.
    max_bytes: usize,
    effects: Vec<LuaEffect<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum LuaGuard<'a> {
    Absent,
    Exists,
    Unended,
    Held {
        worker: &'a str,
        fence: String,
        /// Empty: unchecked.
        seq: String,
        receipt: &'a str,
        lease_ms: u64,
    },
    Current {
        seq: String,
        exclusive: bool,
    },
}

#[derive(Serialize)]
struct LuaHistory {
    seq: String,
    step: String,
    status: &'static str,
    event: String,
    at: String,
}

#[derive(Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum LuaEffect<'a> {
    KeepLease,
    Release,
    /// `stream` is an index into KEYS.
    Dispatch {
        stream: usize,
    },
    /// Dispatch if the stored `waiting` field is `signal:<signal>`.
    WakeIfWaiting {
        stream: usize,
        waiting: String,
    },
    ArmTimer {
        member: String,
        at: u64,
    },
    ClearTimer {
        member: String,
    },
    AwaitSignal {
        name: &'a str,
    },
    ConsumeSignal {
        nonce: u64,
    },
    AppendSignal {
        entry: String,
        bound: u32,
    },
    DropSignals,
    DropUnreadableSignals,
    SetInterrupt {
        value: String,
        /// A cancel does not replace a stored terminate.
        kind: &'static str,
    },
    ClearInterrupt {
        kind: &'static str,
        reason: &'a str,
    },
    TrimHistory,
    Index {
        index: &'static str,
        score: u64,
        /// The index it leaves (`None`: every other).
        from: Option<&'static str>,
    },
    Expire,
    Publish {
        message: String,
    },
}

/// The script's answer.
#[derive(Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Reply {
    Applied { interrupt: String, signal: String },
    Exists { fields: Vec<String> },
    Missing,
    Fenced,
    Ended { status: String },
    Stale { found: String },
    Held,
    Full { bound: u32 },
    TooLarge { bytes: usize, max: usize },
}

/// A commit script's raw reply, and how many replicas acknowledged it of
/// how many wanted, when fewer did.
pub(super) struct Committed {
    raw: Value,
    unreplicated: Option<(u32, u32)>,
}

/// What applying came to: done, or the existing run of a creation.
pub(super) enum Outcome {
    Applied(Applied),
    Exists(HashMap<String, String>),
}

/// The KEYS index of a task stream an effect dispatches to (streams after
/// the first eight keys, each once).
fn stream_index(streams: &mut Vec<String>, key: String) -> usize {
    let at = match streams.iter().position(|s| *s == key) {
        Some(i) => i,
        None => {
            streams.push(key);
            streams.len() - 1
        }
    };
    9 + at
}

/// A run's member in its shard's timer set: `<queue>\n<id>`.
pub(super) fn timer_member(queue: &str, id: &str) -> String {
    format!("{queue}\n{id}")
}

/// What the apply of a settling run publishes: its id and, when small, the
/// settled record itself, so that a waiting client needs no read.
fn settled_message(id: &str, record: Option<&RunRecord>) -> String {
    const INLINE_LIMIT: usize = 16 * 1024;
    match record.map(serde_json::to_string) {
        Some(Ok(json)) if json.len() <= INLINE_LIMIT => format!("{id}\n{json}"),
        _ => id.to_owned(),
    }
}

fn index_name(index: RunIndex) -> &'static str {
    match index {
        RunIndex::Active => "active",
        RunIndex::Done => "done",
        RunIndex::Attention => "attention",
    }
}

fn interrupt_parts(i: &Interrupt) -> (&'static str, &str) {
    match i {
        Interrupt::Cancel { reason } => ("cancel", reason),
        Interrupt::Terminate { reason } => ("terminate", reason),
    }
}

impl RedisStore {
    /// Applies `decision` to run `id` in one script call.
    pub(super) async fn apply_decision(
        &self,
        id: &str,
        guard: &Guard,
        decision: &Decision,
    ) -> Result<Outcome, StoreError> {
        crate::store::check_fits(guard, decision)?;
        let keys: &Keys = &self.inner.keys;
        let shard = keys.shard_of(id);
        let (pairs, delete) = match (&decision.write, guard) {
            (Write::Record(r), Guard::Absent) => (codec::creation_fields(r), Vec::new()),
            (Write::Record(r), _) => codec::transition_fields(r, decision.new_generation()),
            (
                Write::Status {
                    status,
                    reason,
                    seq,
                    updated_at_ms,
                },
                _,
            ) => (
                codec::status_fields(*status, reason, *seq, *updated_at_ms),
                Vec::new(),
            ),
            (Write::Nothing, _) => (Vec::new(), Vec::new()),
        };
        if super::step::is_plain_step(guard, decision) {
            return self.apply_step(id, guard, decision, &pairs, &delete).await;
        }
        let lua_guard = match guard {
            Guard::Absent => LuaGuard::Absent,
            Guard::Exists => LuaGuard::Exists,
            Guard::Unended => LuaGuard::Unended,
            Guard::Held {
                worker,
                fence,
                seq,
                receipt,
                lease_ms,
                ..
            } => LuaGuard::Held {
                worker,
                fence: fence.to_string(),
                seq: seq.map(|s| s.to_string()).unwrap_or_default(),
                receipt,
                lease_ms: *lease_ms,
            },
            Guard::Current { seq } => LuaGuard::Current {
                seq: seq.to_string(),
                exclusive: decision.exclusive,
            },
        };
        let task_stream = match guard {
            Guard::Held { task_queue, .. } => keys.tasks_of(id, task_queue),
            _ => keys.history(id),
        };
        let mut streams: Vec<String> = Vec::new();
        let mut effects = Vec::with_capacity(decision.effects.len());
        for effect in &decision.effects {
            effects.push(match effect {
                Effect::KeepLease => LuaEffect::KeepLease,
                Effect::Release => LuaEffect::Release,
                Effect::Dispatch { queue } => LuaEffect::Dispatch {
                    stream: stream_index(&mut streams, keys.tasks_of(id, queue)),
                },
                Effect::WakeIfWaiting { queue, signal } => LuaEffect::WakeIfWaiting {
                    stream: stream_index(&mut streams, keys.tasks_of(id, queue)),
                    waiting: format!("signal:{signal}"),
                },
                Effect::ArmTimer { queue, at_ms } => LuaEffect::ArmTimer {
                    member: timer_member(queue, id),
                    at: *at_ms,
                },
                Effect::ClearTimer { queue } => LuaEffect::ClearTimer {
                    member: timer_member(queue, id),
                },
                Effect::AwaitSignal { name } => LuaEffect::AwaitSignal { name },
                Effect::ConsumeSignal { nonce } => LuaEffect::ConsumeSignal { nonce: *nonce },
                Effect::AppendSignal { signal, bound } => LuaEffect::AppendSignal {
                    entry: codec::signal_entry(signal),
                    bound: *bound,
                },
                Effect::DropSignals => LuaEffect::DropSignals,
                Effect::DropUnreadableSignals => LuaEffect::DropUnreadableSignals,
                Effect::SetInterrupt { interrupt } => LuaEffect::SetInterrupt {
                    value: serde_json::to_string(interrupt)
                        .map_err(|e| StoreError::Backend(e.to_string()))?,
                    kind: interrupt_parts(interrupt).0,
                },
                Effect::ClearInterrupt { interrupt } => {
                    let (kind, reason) = interrupt_parts(interrupt);
                    LuaEffect::ClearInterrupt { kind, reason }
                }
                Effect::TrimHistory => LuaEffect::TrimHistory,
                Effect::Index {
                    index,
                    score_ms,
                    from,
                } => LuaEffect::Index {
                    index: index_name(*index),
                    score: *score_ms,
                    from: from.filter(|f| f != index).map(index_name),
                },
                Effect::Expire => LuaEffect::Expire,
                Effect::Publish { notice } => LuaEffect::Publish {
                    message: match notice {
                        Notice::Settled => settled_message(id, decision.record()),
                        Notice::Resumed => format!("{id}\n{}", super::waiters::RESUMED),
                    },
                },
            });
        }
        let document = Document {
            id,
            guard: lua_guard,
            pairs: pairs.len(),
            delete,
            history: decision.history.as_ref().map(|h| LuaHistory {
                seq: h.seq.to_string(),
                step: h.step.clone(),
                status: h.status.as_str(),
                event: h.event.clone(),
                at: h.at_ms.to_string(),
            }),
            history_max: self.inner.history_len,
            group: GROUP,
            retention_ms: super::reply::millis(self.inner.retention),
            channel: keys.settled_channel(shard),
            max_bytes: self.inner.max_decision_bytes,
            effects,
        };
        let header =
            serde_json::to_string(&document).map_err(|e| StoreError::Backend(e.to_string()))?;
        // Refused here, before it is sent (or even built): a huge command
        // costs Redis its size several times over (query buffer, Lua
        // strings) even when the script then refuses it.
        let bytes = header.len() + pairs.iter().map(|(f, v)| f.len() + v.len()).sum::<usize>();
        self.refuse_oversized(id, bytes)?;
        let mut call = ScriptCall::new(
            &self.inner.scripts.apply,
            8 + streams.len(),
            8 + streams.len() + 1 + 2 * pairs.len(),
            bytes + 256,
        );
        call.key(keys.run(id))
            .key(keys.history(id))
            .key(keys.signals(id))
            .key(keys.timers(shard))
            .key(keys.active(shard))
            .key(keys.done(shard))
            .key(keys.attention(shard))
            .key(task_stream);
        for s in &streams {
            call.key(s);
        }
        call.arg(&header);
        for (field, value) in &pairs {
            call.arg(field).arg(value);
        }
        let raw = self.invoke_commit(&call).await?;
        self.read_reply(id, guard, raw)
    }

    /// Refuses a decision whose script arguments come to more than the
    /// store accepts (`RedisStoreBuilder::max_decision_bytes`), before its
    /// command is built.
    pub(super) fn refuse_oversized(&self, id: &str, bytes: usize) -> Result<(), StoreError> {
        let max = self.inner.max_decision_bytes;
        if bytes > max {
            return Err(StoreError::TooLarge {
                workflow_id: id.to_owned(),
                bytes,
                max,
            });
        }
        Ok(())
    }

    /// Sends one commit script, followed by `WAIT` when commits wait for
    /// replicas: its raw reply, or `StoreError::Unreplicated` (after the
    /// reply is read, so that a refusal still reads as one) through
    /// [`Self::read_reply`].
    pub(super) async fn invoke_commit(
        &self,
        call: &ScriptCall<'_>,
    ) -> Result<Committed, StoreError> {
        let mut conn = self.commit_connection();
        match self.inner.replica_ack {
            Some(ack) => {
                let (raw, n): (Value, u32) = call
                    .invoke_and_wait(&mut conn, ack)
                    .await
                    .map_err(|e| self.error(&e))?;
                Ok(Committed {
                    raw,
                    unreplicated: (n < ack.replicas).then_some((n, ack.replicas)),
                })
            }
            None => Ok(Committed {
                raw: call.invoke(&mut conn).await.map_err(|e| self.error(&e))?,
                unreplicated: None,
            }),
        }
    }

    /// What a commit script's reply means for the run `id` under `guard`.
    pub(super) fn read_reply(
        &self,
        id: &str,
        guard: &Guard,
        committed: Committed,
    ) -> Result<Outcome, StoreError> {
        let Committed { raw, unreplicated } = committed;
        let raw = text(raw);
        let reply: Reply = serde_json::from_str(&raw)
            .map_err(|e| StoreError::Backend(format!("unexpected reply to apply ({e}): {raw}")))?;
        let corrupt = |reason: String| StoreError::Corrupt {
            workflow_id: id.to_owned(),
            reason,
        };
        match reply {
            Reply::Applied { interrupt, signal } => {
                let interrupt =
                    if interrupt.is_empty() {
                        None
                    } else {
                        Some(serde_json::from_str(&interrupt).map_err(|e| {
                            corrupt(format!("field `interrupt` does not decode: {e}"))
                        })?)
                    };
                let signal = if signal.is_empty() {
                    None
                } else {
                    codec::parse_signals(&[signal]).map_err(corrupt)?.pop()
                };
                if let Some((acknowledged, wanted)) = unreplicated {
                    return Err(StoreError::Unreplicated {
                        workflow_id: id.to_owned(),
                        acknowledged,
                        wanted,
                    });
                }
                Ok(Outcome::Applied(Applied::new(interrupt, signal)))
            }
            Reply::Exists { fields } => {
                let mut map = HashMap::with_capacity(fields.len() / 2);
                let mut it = fields.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    map.insert(k, v);
                }
                Ok(Outcome::Exists(map))
            }
            Reply::Missing => Err(StoreError::NotFound(id.to_owned())),
            Reply::Fenced => Err(StoreError::Fenced {
                workflow_id: id.to_owned(),
                fence: match guard {
                    Guard::Held { fence, .. } => *fence,
                    _ => 0,
                },
            }),
            Reply::Stale { found } => Err(StoreError::Stale {
                workflow_id: id.to_owned(),
                expected: match guard {
                    Guard::Held { seq, .. } => seq.map(|s| s.to_string()).unwrap_or_default(),
                    Guard::Current { seq } => seq.to_string(),
                    Guard::Absent | Guard::Exists | Guard::Unended => String::new(),
                },
                found,
            }),
            Reply::Held => Err(StoreError::Held(id.to_owned())),
            Reply::Ended { status } => Err(match crate::core::Status::parse(&status) {
                Some(status) => StoreError::Ended {
                    workflow_id: id.to_owned(),
                    status,
                },
                None => StoreError::Backend(format!("unexpected status in a reply: {status}")),
            }),
            Reply::Full { bound } => Err(StoreError::BufferFull {
                workflow_id: id.to_owned(),
                bound,
            }),
            Reply::TooLarge { bytes, max } => Err(StoreError::TooLarge {
                workflow_id: id.to_owned(),
                bytes,
                max,
            }),
        }
    }
}
