//! The docs show the real compiled workflow: `docs/order-saga.md` must
//! contain the states and graph that `#[workflow]` produces for the example.

#[path = "../examples/order_saga.rs"]
#[allow(dead_code, unreachable_pub)]
mod order_saga;

#[test]
fn order_saga_doc_matches_the_compiled_workflow() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/order-saga.md"))
        .expect("docs/order-saga.md exists");
    let described = order_saga::describe();
    assert!(
        doc.contains(described.trim()),
        "docs/order-saga.md is out of date; paste the output of \
         `cargo run --example order_saga -- --describe`:\n{described}"
    );
}

#[test]
fn order_saga_payment_is_stored_as_the_doc_says() {
    use steadfast::Workflow;
    let state = order_saga::OrderState::Ship0 {
        payment: order_saga::PaymentId("pay-order-42".into()),
        reservation: order_saga::ReservationId("res-order-42".into()),
    };
    assert_eq!(order_saga::order::state_name(&state), "ship#0");
    assert_eq!(
        serde_json::to_string(&state).expect("encodes"),
        r#"{"ship#0":{"payment":"pay-order-42","reservation":"res-order-42"}}"#
    );
}
