//! Migrations: how a state checkpointed by older code (another layout,
//! told apart by its fingerprint) becomes a state of this code.
//!
//! A migration is a typed function from the old state's data — a struct
//! you write with the fields the old code stored — to this code's state
//! enum. It is compiled and type-checked with the workflow, unit-testable
//! as a plain function, and applied by the worker when it acquires a run
//! checkpointed in the old layout; the history records it. Declare them
//! with `#[workflow(migrations = my_migrations)]`, where `my_migrations`
//! returns them:
//!
//! ```ignore
//! #[derive(Deserialize)]
//! struct ShipV1 {
//!     payment: PaymentIdV1,
//!     reservation: ReservationId,
//! }
//!
//! fn order_migrations() -> Vec<Migration<OrderState>> {
//!     vec![Migration::from("ship#0", "3f2a9c1e04b7d6a5", |old: ShipV1| OrderState::Ship0 {
//!         payment: PaymentId { id: old.payment.0, currency: "EUR".into() },
//!         reservation: old.reservation,
//!     })
//!     .named("ship_from_v1")]
//! }
//! ```
//!
//! `steadfast::check` (the pre-deploy check) reports, before a rollout,
//! which runs the new code resumes as they are, migrates, or would park.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

type Apply<S> = dyn Fn(&Value) -> Result<S, String> + Send + Sync;

/// How a state of an older layout becomes a state of workflow state enum `S`.
pub struct Migration<S> {
    step: String,
    fingerprint: String,
    name: String,
    apply: Box<Apply<S>>,
}

impl<S> fmt::Debug for Migration<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migration")
            .field("name", &self.name)
            .field("step", &self.step)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl<S: 'static> Migration<S> {
    /// Migrates state `step` checkpointed with layout `fingerprint` (as
    /// `steadfast::check` and the park reason report it): its data decodes
    /// as `Old`, and `migrate` makes this code's state from it.
    pub fn from<Old, F>(step: impl Into<String>, fingerprint: impl Into<String>, migrate: F) -> Self
    where
        Old: DeserializeOwned + 'static,
        F: Fn(Old) -> S + Send + Sync + 'static,
    {
        let step = step.into();
        let fingerprint = fingerprint.into();
        let name = format!("{step}@{fingerprint}");
        let key = step.clone();
        Migration {
            step,
            fingerprint,
            name,
            apply: Box::new(move |state: &Value| {
                // A state is checkpointed as `{"<step>": {<its fields>}}`.
                let data = state
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| format!("the checkpoint does not hold state `{key}`"))?;
                let old: Old = serde_json::from_value(data).map_err(|e| {
                    format!("state `{key}` does not decode as the migration's old layout: {e}")
                })?;
                Ok(migrate(old))
            }),
        }
    }

    /// Names the migration (for the history and the check report; default
    /// `<step>@<fingerprint>`).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The state it migrates.
    pub fn step(&self) -> &str {
        &self.step
    }

    /// The layout it migrates from.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it migrates this checkpointed state.
    pub fn applies_to(&self, step: &str, fingerprint: &str) -> bool {
        self.step == step && self.fingerprint == fingerprint
    }

    /// Migrates a checkpointed state (the JSON of the old state enum).
    pub fn apply(&self, state: &Value) -> Result<S, String> {
        (self.apply)(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Old {
        amount: u32,
    }

    #[derive(Debug, PartialEq)]
    enum New {
        Priced { cents: u64 },
    }

    #[test]
    fn a_migration_decodes_the_old_data_and_makes_the_new_state() {
        let m = Migration::from("pay#0", "abc", |old: Old| New::Priced {
            cents: u64::from(old.amount) * 100,
        })
        .named("euros_to_cents");
        assert!(m.applies_to("pay#0", "abc") && !m.applies_to("pay#0", "def"));
        assert_eq!(m.name(), "euros_to_cents");
        let state = serde_json::json!({"pay#0": {"amount": 3}});
        assert_eq!(m.apply(&state), Ok(New::Priced { cents: 300 }));
        let wrong = serde_json::json!({"pay#0": {"amount": "three"}});
        assert!(
            m.apply(&wrong)
                .expect_err("does not decode")
                .contains("old layout")
        );
    }
}
