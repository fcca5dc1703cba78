//! W3C trace context, carried from the code that starts a run to every
//! worker that drives it, without a dependency on OpenTelemetry: the run
//! record stores the `traceparent` (and `tracestate`) text, and a
//! [`TracePropagator`] set on the client and the workers turns it into the
//! parent of their spans and back.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A validated W3C trace context (<https://www.w3.org/TR/trace-context/>):
/// the `traceparent` header's text and, if any, `tracestate`'s.
///
/// ```
/// use steadfast_runtime::telemetry::TraceContext;
///
/// let ctx = TraceContext::parse(
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
///     None,
/// )?;
/// assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(ctx.parent_id(), "00f067aa0ba902b7");
/// assert!(ctx.sampled());
/// assert!(TraceContext::parse("00-not-a-trace-01", None).is_err());
/// # Ok::<(), steadfast_runtime::telemetry::InvalidTraceContext>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    traceparent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tracestate: Option<String>,
}

/// Why a `traceparent` or `tracestate` text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid trace context: {0}")]
pub struct InvalidTraceContext(&'static str);

/// The longest `tracestate` kept (the W3C limit is 512 characters).
const MAX_TRACESTATE: usize = 512;

impl TraceContext {
    /// Checks `traceparent` (version `00`: `00-<32 hex>-<16 hex>-<2 hex>`,
    /// lowercase, neither id all zeros; a later version may append
    /// `-<more>`) and `tracestate` (printable ASCII, at most 512
    /// characters; an empty one is dropped).
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Result<Self, InvalidTraceContext> {
        check_traceparent(traceparent)?;
        let tracestate = match tracestate.map(str::trim) {
            None | Some("") => None,
            Some(s) if s.len() > MAX_TRACESTATE => {
                return Err(InvalidTraceContext(
                    "tracestate is longer than 512 characters",
                ));
            }
            Some(s) if !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) => {
                return Err(InvalidTraceContext("tracestate is not printable ASCII"));
            }
            Some(s) => Some(s.to_owned()),
        };
        Ok(TraceContext {
            traceparent: traceparent.to_owned(),
            tracestate,
        })
    }

    /// The `traceparent` text.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The `tracestate` text, if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// The trace id: 32 lowercase hex digits.
    pub fn trace_id(&self) -> &str {
        &self.traceparent[3..35]
    }

    /// The id of the span this context continues: 16 lowercase hex digits.
    pub fn parent_id(&self) -> &str {
        &self.traceparent[36..52]
    }

    /// Whether the caller sampled the trace (flag `01`).
    pub fn sampled(&self) -> bool {
        u8::from_str_radix(&self.traceparent[53..55], 16).is_ok_and(|f| f & 1 == 1)
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent)
    }
}

fn check_traceparent(s: &str) -> Result<(), InvalidTraceContext> {
    let bad = |why| Err(InvalidTraceContext(why));
    let b = s.as_bytes();
    if b.len() < 55 {
        return bad("traceparent is shorter than 55 characters");
    }
    let hex =
        |r: std::ops::Range<usize>| b[r].iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return bad("traceparent is not `version-traceid-parentid-flags`");
    }
    if !hex(0..2) || !hex(3..35) || !hex(36..52) || !hex(53..55) {
        return bad("traceparent has a character that is not lowercase hex");
    }
    match &s[..2] {
        "ff" => return bad("traceparent version ff is invalid"),
        "00" if b.len() != 55 => return bad("traceparent version 00 is 55 characters long"),
        _ if b.len() > 55 && b[55] != b'-' => {
            return bad("traceparent has trailing characters after its flags");
        }
        _ => {}
    }
    if b[3..35].iter().all(|&c| c == b'0') {
        return bad("traceparent has an all-zero trace id");
    }
    if b[36..52].iter().all(|&c| c == b'0') {
        return bad("traceparent has an all-zero parent id");
    }
    Ok(())
}

/// Turns spans into W3C trace contexts and back: the bridge to whatever
/// tracing system exports the spans. Set one on the client
/// ([`Client::with_trace_propagator`](crate::Client::with_trace_propagator))
/// and on the workers
/// ([`WorkerBuilder::trace_propagator`](crate::WorkerBuilder::trace_propagator)).
/// Without one, runs store no trace context and each worker's spans start
/// their own trace.
///
/// With the `opentelemetry` feature,
/// [`OpenTelemetryPropagator`](crate::telemetry::OpenTelemetryPropagator)
/// implements it for `tracing-opentelemetry`.
pub trait TracePropagator: Send + Sync + 'static {
    /// The trace context of `span` (a run's start, a parent run's
    /// transition), to store with the run; `None` when the span is in no
    /// trace.
    fn context_of(&self, span: &tracing::Span) -> Option<TraceContext>;

    /// Makes `span`, just created and not yet entered, continue `context`
    /// (read from a run record, so it comes from another process).
    fn continue_trace(&self, span: &tracing::Span, context: &TraceContext);
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_good_traceparent_reads() {
        let ctx = TraceContext::parse(GOOD, Some("congo=t61rcWkgMzE")).expect("valid");
        assert_eq!(ctx.traceparent(), GOOD);
        assert_eq!(ctx.tracestate(), Some("congo=t61rcWkgMzE"));
        assert!(ctx.sampled());
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-comes";
        let ctx = TraceContext::parse(later, Some("")).expect("a later version reads");
        assert!(!ctx.sampled());
        assert_eq!(ctx.tracestate(), None);
    }

    #[test]
    fn malformed_traceparents_are_refused_without_panicking() {
        let bad = [
            "",
            "00",
            "garbage",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01xextra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
            "0é-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ];
        for s in bad {
            assert!(TraceContext::parse(s, None).is_err(), "{s:?} was accepted");
        }
        assert!(TraceContext::parse(GOOD, Some("a=\u{7}")).is_err());
        assert!(TraceContext::parse(GOOD, Some(&"a".repeat(513))).is_err());
    }
}
