//! Tracing and metrics: a thin layer the engine and the client call where
//! they apply decisions and run attempts.
//!
//! - [`spans`](self#spans): a span for each drive of a run on a worker, each
//!   transition, each activity attempt and each compensation.
//! - [`metrics`]: counters, histograms and gauges through the `metrics`
//!   facade, with bounded labels.
//! - [`TraceContext`] and [`TracePropagator`]: the W3C trace context a run
//!   carries from the code that started it to every worker that drives it.
//!
//! The runtime depends on the `tracing` and `metrics` facades only; the
//! `opentelemetry` feature adds [`OpenTelemetryPropagator`], the bridge to
//! `tracing-opentelemetry`. `docs/observability.md` lists the spans, their
//! fields and the metrics.
//!
//! # Spans
//! `steadfast.start` (client), `steadfast.run`, `steadfast.transition`,
//! `steadfast.activity`, `steadfast.compensation`; see
//! `docs/observability.md`.

mod context;
pub mod metrics;
#[cfg(feature = "opentelemetry")]
mod otel;
pub(crate) mod spans;

use std::sync::Arc;

pub use context::{InvalidTraceContext, TraceContext, TracePropagator};
#[cfg(feature = "opentelemetry")]
pub use otel::OpenTelemetryPropagator;

/// The propagator a client or a worker was given, if any.
#[derive(Clone, Default)]
pub(crate) struct Propagation(Option<Arc<dyn TracePropagator>>);

impl Propagation {
    pub(crate) fn new(propagator: Arc<dyn TracePropagator>) -> Self {
        Propagation(Some(propagator))
    }

    /// The trace context of `span`, when a propagator is set and the span
    /// is recorded.
    pub(crate) fn context_of(&self, span: &tracing::Span) -> Option<TraceContext> {
        match &self.0 {
            Some(p) if !span.is_disabled() => p.context_of(span),
            _ => None,
        }
    }

    /// Makes `span` continue the trace a run record carries.
    pub(crate) fn continue_trace(&self, span: &tracing::Span, context: Option<&TraceContext>) {
        if let (Some(p), Some(ctx)) = (&self.0, context)
            && !span.is_disabled()
        {
            p.continue_trace(span, ctx);
        }
    }
}
