//! The bridge to OpenTelemetry through `tracing-opentelemetry` (feature
//! `opentelemetry`).

use std::str::FromStr;

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{TraceContext, TracePropagator};

/// A [`TracePropagator`] for spans exported by `tracing-opentelemetry`'s
/// layer: reads a span's OpenTelemetry context as a W3C `traceparent` and
/// `tracestate`, and sets a stored one as the remote parent of a span.
///
/// ```
/// use steadfast_runtime::telemetry::OpenTelemetryPropagator;
/// use steadfast_runtime::{Client, MemoryStore};
///
/// let store = std::sync::Arc::new(MemoryStore::new());
/// let client = Client::new_shared(store.clone()).with_trace_propagator(OpenTelemetryPropagator);
/// let worker = steadfast_runtime::Worker::builder_shared(store)
///     .queue("orders")
///     .trace_propagator(OpenTelemetryPropagator)
///     .build();
/// # let _ = (client, worker);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenTelemetryPropagator;

impl TracePropagator for OpenTelemetryPropagator {
    fn context_of(&self, span: &tracing::Span) -> Option<TraceContext> {
        let cx = span.context();
        let otel = cx.span();
        let sc = otel.span_context();
        if !sc.is_valid() {
            return None;
        }
        let traceparent = format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        );
        let tracestate = sc.trace_state().header();
        TraceContext::parse(&traceparent, Some(&tracestate)).ok()
    }

    fn continue_trace(&self, span: &tracing::Span, context: &TraceContext) {
        let (Ok(trace_id), Ok(span_id), Ok(flags)) = (
            TraceId::from_hex(context.trace_id()),
            SpanId::from_hex(context.parent_id()),
            u8::from_str_radix(&context.traceparent()[53..55], 16),
        ) else {
            return;
        };
        let state = context
            .tracestate()
            .and_then(|s| TraceState::from_str(s).ok())
            .unwrap_or_default();
        let remote = SpanContext::new(trace_id, span_id, TraceFlags::new(flags), true, state);
        let _ = span.set_parent(Context::new().with_remote_span_context(remote));
    }
}
