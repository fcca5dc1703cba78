//! The decision a worker commits most, sent to a script of its own: a step
//! of a run whose worker keeps its lease. The general apply script reads a
//! document of named effects; this one (`lua/step.lua`) reads its
//! arguments from fixed places, which costs Redis 13 µs per step instead
//! of 18 (`docs/performance.md`). The places are named once, here:
//! [`StepArguments`] gives both the order the arguments are sent in and the
//! line that binds them to locals of the same names in the script.

use super::RedisStore;
use super::apply::Outcome;
use super::connection::ScriptCall;
use crate::core::{Decision, Effect, Guard, Write};
use crate::store::StoreError;

/// Declares the step script's named arguments: a struct with one `String`
/// per name, its names in order, and its values in the same order.
macro_rules! named_arguments {
    ($(#[$doc:meta])* struct $name:ident { $($(#[$fdoc:meta])* $field:ident,)* }) => {
        $(#[$doc])*
        pub(super) struct $name {
            $($(#[$fdoc])* $field: String,)*
        }

        impl $name {
            /// The names, in the order the script reads them.
            pub(super) const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];

            /// The values, in the order of [`Self::NAMES`].
            fn into_values(self) -> Vec<String> {
                vec![$(self.$field),*]
            }
        }
    };
}

named_arguments! {
    /// What the step script needs beside the fields it writes and deletes.
    struct StepArguments {
        /// The worker holding the lease.
        worker,
        /// Its fence.
        fence,
        /// The sequence number the run must be at ('' unchecked).
        seq,
        /// The task the lease was taken for.
        receipt,
        /// How long the lease is extended by.
        lease_ms,
        /// The largest decision accepted, in bytes of arguments.
        max_bytes,
        /// The history stream's approximate bound.
        history_max,
        /// The history entry: sequence number, step, status, event, time.
        h_seq,
        h_step,
        h_status,
        h_event,
        h_at,
        /// How many field names to delete follow.
        delete_count,
        /// How many field/value pairs to write follow them.
        pair_count,
    }
}

/// The line the step script starts with:
/// `local worker, fence, .. = ARGV[1], ARGV[2], ..`, and their number.
pub(super) fn lua_locals() -> String {
    let names = StepArguments::NAMES;
    let places: Vec<String> = (1..=names.len()).map(|i| format!("ARGV[{i}]")).collect();
    format!(
        "local {} = {}\nlocal step_arguments = {}",
        names.join(", "),
        places.join(", "),
        names.len()
    )
}

/// Whether `decision` under `guard` is a plain step: the worker keeps its
/// lease and nothing else happens beside the record written and a history
/// entry appended.
pub(super) fn is_plain_step(guard: &Guard, decision: &Decision) -> bool {
    matches!(guard, Guard::Held { .. })
        && matches!(decision.write, Write::Record(_))
        && !decision.new_generation()
        && decision.history.is_some()
        && matches!(decision.effects.as_slice(), [Effect::KeepLease])
}

impl RedisStore {
    /// Applies a plain step ([`is_plain_step`]) through the step script.
    pub(super) async fn apply_step(
        &self,
        id: &str,
        guard: &Guard,
        decision: &Decision,
        pairs: &[(String, String)],
        delete: &[&'static str],
    ) -> Result<Outcome, StoreError> {
        let (
            Guard::Held {
                worker,
                fence,
                seq,
                receipt,
                lease_ms,
                ..
            },
            Some(history),
        ) = (guard, &decision.history)
        else {
            return Err(StoreError::Backend(
                "a step needs a held lease and a history entry; nothing was written".into(),
            ));
        };
        let keys = &self.inner.keys;
        let arguments = StepArguments {
            worker: worker.clone(),
            fence: fence.to_string(),
            seq: seq.map(|s| s.to_string()).unwrap_or_default(),
            receipt: receipt.clone(),
            lease_ms: lease_ms.to_string(),
            max_bytes: self.inner.max_decision_bytes.to_string(),
            history_max: self.inner.history_len.to_string(),
            h_seq: history.seq.to_string(),
            h_step: history.step.clone(),
            h_status: history.status.as_str().to_owned(),
            h_event: history.event.clone(),
            h_at: history.at_ms.to_string(),
            delete_count: delete.len().to_string(),
            pair_count: pairs.len().to_string(),
        }
        .into_values();
        // Refused here, before it is sent, as the apply script's callers are.
        let bytes = arguments.iter().map(String::len).sum::<usize>()
            + delete.iter().map(|f| f.len()).sum::<usize>()
            + pairs.iter().map(|(f, v)| f.len() + v.len()).sum::<usize>();
        self.refuse_oversized(id, bytes)?;
        let mut call = ScriptCall::new(
            &self.inner.scripts.step,
            2,
            2 + arguments.len() + delete.len() + 2 * pairs.len(),
            bytes + 128,
        );
        call.key(keys.run(id)).key(keys.history(id));
        for value in &arguments {
            call.arg(value);
        }
        for field in delete {
            call.arg(*field);
        }
        for (field, value) in pairs {
            call.arg(field).arg(value);
        }
        let committed = self.invoke_commit(&call).await?;
        self.read_reply(id, guard, committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_binds_every_argument_in_the_order_it_is_sent() {
        let line = lua_locals();
        assert!(line.starts_with("local worker, fence, seq, receipt, lease_ms, "));
        assert!(line.contains(&format!(
            "ARGV[{}]\nlocal step_arguments = {}",
            StepArguments::NAMES.len(),
            StepArguments::NAMES.len()
        )));
        let values = StepArguments {
            worker: "w".into(),
            fence: "f".into(),
            seq: "s".into(),
            receipt: "r".into(),
            lease_ms: "l".into(),
            max_bytes: "m".into(),
            history_max: "hm".into(),
            h_seq: "hs".into(),
            h_step: "ht".into(),
            h_status: "hu".into(),
            h_event: "he".into(),
            h_at: "ha".into(),
            delete_count: "d".into(),
            pair_count: "p".into(),
        }
        .into_values();
        assert_eq!(values.len(), StepArguments::NAMES.len());
        assert_eq!(values[0], "w");
        assert_eq!(values[values.len() - 1], "p");
    }
}
