//! State fingerprints follow the serde layout of what a state stores, not
//! how its types are spelled: a respelled type keeps them; a field added,
//! removed or retyped in an activity's output kept across an await changes
//! the fingerprint of each state that stores it, and only those.

use steadfast::Workflow;

/// Version 1: the receipt an activity returns, kept across `ship`.
mod v1 {
    use serde::{Deserialize, Serialize};
    use steadfast::prelude::*;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub(crate) struct Receipt {
        pub(crate) id: String,
        pub(crate) cents: u64,
    }

    #[activity]
    pub(crate) async fn charge(order_id: String) -> Result<Receipt, String> {
        Ok(Receipt {
            id: order_id,
            cents: 100,
        })
    }

    #[activity]
    pub(crate) async fn ship(order_id: String) -> Result<(), String> {
        let _ = order_id;
        Ok(())
    }

    #[workflow]
    pub(crate) async fn order(order_id: String) -> Result<String, ActivityError<String>> {
        let receipt = charge(order_id.clone()).await?;
        ship(order_id).await?;
        Ok(receipt.id)
    }
}

/// Version 1 again, every type spelled another way: `std::string::String`,
/// an alias, another name for the receipt, its fields in another order.
mod respelled {
    use serde::{Deserialize, Serialize};
    use steadfast::prelude::*;

    type Text = std::string::String;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub(crate) struct Payment {
        pub(crate) cents: u64,
        pub(crate) id: Text,
    }

    #[activity]
    pub(crate) async fn charge(order_id: std::string::String) -> Result<Payment, String> {
        Ok(Payment {
            cents: 100,
            id: order_id,
        })
    }

    #[activity]
    pub(crate) async fn ship(order_id: Text) -> Result<(), String> {
        let _ = order_id;
        Ok(())
    }

    #[workflow]
    pub(crate) async fn order(order_id: Text) -> Result<String, ActivityError<String>> {
        let receipt = charge(order_id.clone()).await?;
        ship(order_id).await?;
        Ok(receipt.id)
    }
}

/// The receipt changed: `version!(name { field: Type = value })` builds a
/// version whose receipt has `id` and these fields.
macro_rules! version {
    ($module:ident { $($field:ident: $ty:ty = $value:expr),* }) => {
        mod $module {
            use serde::{Deserialize, Serialize};
            use steadfast::prelude::*;

            #[derive(Debug, Clone, Serialize, Deserialize)]
            pub(crate) struct Receipt {
                pub(crate) id: String,
                $(pub(crate) $field: $ty,)*
            }

            #[activity]
            pub(crate) async fn charge(order_id: String) -> Result<Receipt, String> {
                Ok(Receipt { id: order_id, $($field: $value,)* })
            }

            #[activity]
            pub(crate) async fn ship(order_id: String) -> Result<(), String> {
                let _ = order_id;
                Ok(())
            }

            #[workflow]
            pub(crate) async fn order(order_id: String) -> Result<String, ActivityError<String>> {
                let receipt = charge(order_id.clone()).await?;
                ship(order_id).await?;
                Ok(receipt.id)
            }
        }
    };
}

version!(added {
    cents: u64 = 100,
    currency: String = "EUR".to_owned()
});
version!(removed {});
version!(retyped { cents: i64 = 100 });

fn fp<W: Workflow>(state: &str) -> &'static str {
    W::info()
        .state(state)
        .unwrap_or_else(|| panic!("{} has no state {state}", W::NAME))
        .fingerprint
}

#[test]
fn respelling_a_type_keeps_every_fingerprint() {
    for state in ["start", "charge#0", "ship#0"] {
        assert_eq!(
            fp::<v1::order>(state),
            fp::<respelled::order>(state),
            "{state}"
        );
    }
}

#[test]
fn changing_a_stored_struct_changes_the_states_that_store_it() {
    for (name, other) in [
        ("added", fp::<added::order>("ship#0")),
        ("removed", fp::<removed::order>("ship#0")),
        ("retyped", fp::<retyped::order>("ship#0")),
    ] {
        assert_ne!(fp::<v1::order>("ship#0"), other, "{name}");
    }
    // `charge#0` stores only the order id: untouched.
    assert_eq!(fp::<v1::order>("charge#0"), fp::<added::order>("charge#0"));
    assert_eq!(fp::<v1::order>("start"), fp::<retyped::order>("start"));
}
