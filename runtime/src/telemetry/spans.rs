//! The spans of a run's life. Attribute names follow the OpenTelemetry
//! semantic conventions where one exists (`messaging.destination.name`,
//! `error.type`, and `tracing-opentelemetry`'s `otel.kind` /
//! `otel.status_code` / `otel.status_description`); the rest are under
//! `steadfast.`. With no subscriber, or one that filters them out, each
//! span is `Span::none()` and no field is formatted.

use tracing::field::Empty;
use tracing::{Span, info_span};

use super::metrics::AttemptOutcome;

/// A drive of a run by a worker: from acquiring its lease to releasing it
/// (or dropping the run).
pub(crate) fn run(id: &str, workflow: &str, queue: &str, worker: &str, fence: u64) -> Span {
    info_span!(
        "steadfast.run",
        otel.kind = "consumer",
        steadfast.workflow.id = id,
        steadfast.workflow.type = workflow,
        messaging.destination.name = queue,
        steadfast.worker.id = worker,
        steadfast.fence = fence,
        steadfast.status = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
        error.type = Empty,
    )
}

/// A run started by a client.
pub(crate) fn start(id: &str, workflow: &str, queue: &str) -> Span {
    info_span!(
        "steadfast.start",
        otel.kind = "producer",
        steadfast.workflow.id = id,
        steadfast.workflow.type = workflow,
        messaging.destination.name = queue,
    )
}

/// One decided and committed transition.
pub(crate) fn transition(from: &str, fence: u64) -> Span {
    info_span!(
        "steadfast.transition",
        steadfast.transition.from = from,
        steadfast.transition.to = Empty,
        steadfast.seq = Empty,
        steadfast.fence = fence,
        steadfast.status = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
        error.type = Empty,
    )
}

/// One activity attempt.
pub(crate) fn attempt(activity: &str, step: &str, attempt: u32, key: &str) -> Span {
    info_span!(
        "steadfast.activity",
        steadfast.activity.name = activity,
        steadfast.activity.step = step,
        steadfast.activity.attempt = attempt,
        steadfast.activity.idempotency_key = key,
        steadfast.activity.outcome = Empty,
        steadfast.activity.duration_ms = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
        error.type = Empty,
    )
}

/// One compensation, its attempts inside.
pub(crate) fn compensation(activity: &str, step: &str, key: &str) -> Span {
    info_span!(
        "steadfast.compensation",
        steadfast.compensation.activity = activity,
        steadfast.compensation.step = step,
        steadfast.activity.idempotency_key = key,
        steadfast.compensation.outcome = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
        error.type = Empty,
    )
}

/// Records how an attempt ended on its span.
pub(crate) fn attempt_ended(
    span: &Span,
    outcome: AttemptOutcome,
    took_ms: u64,
    error: Option<&str>,
) {
    if span.is_disabled() {
        return;
    }
    span.record("steadfast.activity.outcome", outcome.as_str());
    span.record("steadfast.activity.duration_ms", took_ms);
    if let Some(message) = error {
        failed(span, outcome.as_str(), message);
    }
}

/// Marks `span` as failed: an error status with `error.type`, and the
/// message as the status description (an exception event too, for
/// `tracing-opentelemetry`, from the `error` field of the event).
pub(crate) fn failed(span: &Span, error_type: &'static str, message: &str) {
    if span.is_disabled() {
        return;
    }
    span.record("otel.status_code", "ERROR");
    span.record("error.type", error_type);
    span.record("otel.status_description", message);
    tracing::event!(parent: span, tracing::Level::DEBUG, error = message, error.type = error_type, "steadfast error");
}

/// Records a committed transition on its span; a run stopped for an
/// operator marks it failed with the reason.
pub(crate) fn transitioned(span: &Span, entry: &crate::core::HistoryEntry, reason: Option<String>) {
    if span.is_disabled() {
        return;
    }
    span.record("steadfast.transition.to", entry.step.as_str());
    span.record("steadfast.seq", entry.seq);
    span.record("steadfast.status", entry.status.as_str());
    if entry.status.needs_attention() {
        failed(
            span,
            entry.status.as_str(),
            reason.as_deref().unwrap_or_default(),
        );
    }
}

/// Records how a compensation ended on its span (`error`: why it failed).
pub(crate) fn compensation_ended(span: &Span, error: Option<&str>) {
    if span.is_disabled() {
        return;
    }
    span.record(
        "steadfast.compensation.outcome",
        if error.is_some() {
            "failed"
        } else {
            "succeeded"
        },
    );
    if let Some(message) = error {
        failed(span, "compensation_failed", message);
    }
}
