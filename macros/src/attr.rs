//! Typed attribute arguments of `#[activity(..)]` and `#[workflow(..)]`.
//!
//! Every key is named once, as a constant, and every value is set through
//! [`Slot::set`], which reports a duplicate in one place.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit, Meta, Path, Token};

use crate::duration;
use crate::errors::Errors;

const NAME: &str = "name";
const TIMEOUT: &str = "timeout";
const RETRY: &str = "retry";
const COMPENSATE: &str = "compensate";
const MAX_ATTEMPTS: &str = "max_attempts";
const INITIAL_INTERVAL: &str = "initial_interval";
const BACKOFF: &str = "backoff";
const MAX_INTERVAL: &str = "max_interval";
const NON_RETRYABLE: &str = "non_retryable";
const QUEUE: &str = "queue";
const STATE: &str = "state";
const MIGRATIONS: &str = "migrations";

const ACTIVITY_KEYS: &[&str] = &[NAME, TIMEOUT, RETRY, COMPENSATE, QUEUE];
const RETRY_KEYS: &[&str] = &[
    MAX_ATTEMPTS,
    INITIAL_INTERVAL,
    BACKOFF,
    MAX_INTERVAL,
    NON_RETRYABLE,
];
const WORKFLOW_KEYS: &[&str] = &[NAME, QUEUE, STATE, MIGRATIONS];

/// One attribute value, remembering where it was set.
pub(crate) struct Slot<T> {
    key: &'static str,
    value: Option<(Span, T)>,
}

impl<T> Slot<T> {
    fn new(key: &'static str) -> Self {
        Slot { key, value: None }
    }

    /// Sets the value, or reports a duplicate at `span`.
    fn set(&mut self, errors: &Errors, span: Span, value: T) {
        if self.value.is_some() {
            errors.at(span, format!("duplicate attribute `{}`", self.key));
        } else {
            self.value = Some((span, value));
        }
    }

    pub(crate) fn get(&self) -> Option<&T> {
        self.value.as_ref().map(|(_, v)| v)
    }

    pub(crate) fn take(self) -> Option<T> {
        self.value.map(|(_, v)| v)
    }
}

/// `compensate = refund` or `compensate = release(output, order_id)`.
pub(crate) struct Compensate {
    /// The compensating activity.
    pub(crate) path: Path,
    /// Its arguments: `output` (the step's result) or names of the step's
    /// own parameters. `None` means `(output)`.
    pub(crate) args: Option<Vec<Ident>>,
}

/// `retry(..)`.
#[derive(Default)]
pub(crate) struct RetryAttrs {
    pub(crate) max_attempts: Option<u32>,
    pub(crate) initial_interval_ms: Option<u64>,
    pub(crate) backoff: Option<f64>,
    pub(crate) max_interval_ms: Option<u64>,
    pub(crate) non_retryable: Option<Path>,
}

/// The arguments of `#[activity(..)]`.
pub(crate) struct ActivityAttrs {
    pub(crate) name: Slot<String>,
    pub(crate) timeout_ms: Slot<u64>,
    pub(crate) retry: Slot<RetryAttrs>,
    pub(crate) compensate: Slot<Compensate>,
    /// The task queue the activity's attempts run on (`None`: the
    /// workflow's own worker runs them).
    pub(crate) queue: Slot<String>,
}

/// The arguments of `#[workflow(..)]`.
pub(crate) struct WorkflowAttrs {
    pub(crate) name: Slot<String>,
    pub(crate) queue: Slot<String>,
    pub(crate) state: Slot<Ident>,
    /// A function returning the workflow's migrations of older states.
    pub(crate) migrations: Slot<Path>,
}

fn parse_metas(errors: &Errors, tokens: TokenStream) -> Vec<Meta> {
    match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
        Ok(metas) => metas.into_iter().collect(),
        Err(e) => {
            errors.push(e);
            Vec::new()
        }
    }
}

fn key_of(meta: &Meta) -> String {
    meta.path()
        .get_ident()
        .map(Ident::to_string)
        .unwrap_or_else(|| quote::quote!(#meta).to_string())
}

fn unknown(errors: &Errors, meta: &Meta, valid: &[&str]) {
    let list = valid
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    errors.spanned(
        meta.path(),
        format!(
            "unknown attribute `{}`; expected one of: {list}",
            key_of(meta)
        ),
    );
}

fn name_value<'a>(errors: &Errors, meta: &'a Meta, example: &str) -> Option<&'a Expr> {
    match meta {
        Meta::NameValue(nv) => Some(&nv.value),
        _ => {
            errors.spanned(
                meta,
                format!("`{}` takes a value: `{example}`", key_of(meta)),
            );
            None
        }
    }
}

fn string_value(errors: &Errors, meta: &Meta, example: &str) -> Option<(Span, String)> {
    let expr = name_value(errors, meta, example)?;
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some((s.span(), s.value())),
        other => {
            errors.spanned(
                other,
                format!("`{}` takes a string: `{example}`", key_of(meta)),
            );
            None
        }
    }
}

fn duration_value(errors: &Errors, meta: &Meta, example: &str) -> Option<u64> {
    let (span, text) = string_value(errors, meta, example)?;
    match duration::parse_millis(&text) {
        Ok(ms) => Some(ms),
        Err(message) => {
            errors.at(span, message);
            None
        }
    }
}

impl ActivityAttrs {
    pub(crate) fn parse(errors: &Errors, tokens: TokenStream) -> Self {
        let mut attrs = ActivityAttrs {
            name: Slot::new(NAME),
            timeout_ms: Slot::new(TIMEOUT),
            retry: Slot::new(RETRY),
            compensate: Slot::new(COMPENSATE),
            queue: Slot::new(QUEUE),
        };
        for meta in parse_metas(errors, tokens) {
            let span = meta.path().span();
            match key_of(&meta).as_str() {
                NAME => {
                    if let Some((_, v)) = string_value(errors, &meta, "name = \"charge-card\"") {
                        attrs.name.set(errors, span, v);
                    }
                }
                TIMEOUT => {
                    if let Some(ms) = duration_value(errors, &meta, "timeout = \"30s\"") {
                        if ms == 0 {
                            errors.spanned(&meta, "`timeout` must be longer than zero");
                        }
                        attrs.timeout_ms.set(errors, span, ms);
                    }
                }
                RETRY => match &meta {
                    Meta::List(list) => {
                        let retry = RetryAttrs::parse(errors, list.tokens.clone());
                        attrs.retry.set(errors, span, retry);
                    }
                    _ => errors.spanned(
                        &meta,
                        "`retry` takes a list: `retry(max_attempts = 3, initial_interval = \"1s\")`",
                    ),
                },
                COMPENSATE => {
                    if let Some(expr) = name_value(errors, &meta, "compensate = refund")
                        && let Some(c) = Compensate::parse(errors, expr) {
                            attrs.compensate.set(errors, span, c);
                        }
                }
                QUEUE => {
                    if let Some((s, v)) = string_value(errors, &meta, "queue = \"payments\"") {
                        if v.is_empty() {
                            errors.at(s, "`queue` must not be empty");
                        }
                        attrs.queue.set(errors, span, v);
                    }
                }
                _ => unknown(errors, &meta, ACTIVITY_KEYS),
            }
        }
        attrs
    }
}

impl RetryAttrs {
    fn parse(errors: &Errors, tokens: TokenStream) -> Self {
        let mut max_attempts = Slot::new(MAX_ATTEMPTS);
        let mut initial = Slot::new(INITIAL_INTERVAL);
        let mut backoff = Slot::new(BACKOFF);
        let mut max_interval = Slot::new(MAX_INTERVAL);
        let mut non_retryable = Slot::new(NON_RETRYABLE);
        for meta in parse_metas(errors, tokens) {
            let span = meta.path().span();
            match key_of(&meta).as_str() {
                MAX_ATTEMPTS => {
                    let Some(expr) = name_value(errors, &meta, "max_attempts = 3") else {
                        continue;
                    };
                    match expr {
                        Expr::Lit(ExprLit {
                            lit: Lit::Int(i), ..
                        }) => match i.base10_parse::<u32>() {
                            Ok(0) => errors.spanned(
                                i,
                                "`max_attempts` must be at least 1 (the first attempt counts)",
                            ),
                            Ok(n) => max_attempts.set(errors, span, n),
                            Err(e) => errors.push(e),
                        },
                        other => errors.spanned(
                            other,
                            "`max_attempts` takes a whole number: `max_attempts = 3`",
                        ),
                    }
                }
                INITIAL_INTERVAL => {
                    if let Some(ms) = duration_value(errors, &meta, "initial_interval = \"1s\"") {
                        initial.set(errors, span, ms);
                    }
                }
                MAX_INTERVAL => {
                    if let Some(ms) = duration_value(errors, &meta, "max_interval = \"1m\"") {
                        max_interval.set(errors, span, ms);
                    }
                }
                BACKOFF => {
                    let Some(expr) = name_value(errors, &meta, "backoff = 2.0") else {
                        continue;
                    };
                    let value = match expr {
                        Expr::Lit(ExprLit {
                            lit: Lit::Float(f), ..
                        }) => f.base10_parse::<f64>().ok(),
                        Expr::Lit(ExprLit {
                            lit: Lit::Int(i), ..
                        }) => i.base10_parse::<f64>().ok(),
                        _ => None,
                    };
                    match value {
                        Some(v) if v >= 1.0 && v.is_finite() => backoff.set(errors, span, v),
                        _ => errors.spanned(
                            expr,
                            "`backoff` takes a number of at least 1.0: `backoff = 2.0`",
                        ),
                    }
                }
                NON_RETRYABLE => {
                    let Some(expr) =
                        name_value(errors, &meta, "non_retryable = PaymentError::is_permanent")
                    else {
                        continue;
                    };
                    match expr {
                        Expr::Path(p) => non_retryable.set(errors, span, p.path.clone()),
                        other => errors.spanned(
                            other,
                            "`non_retryable` takes the path of a `fn(&Error) -> bool`",
                        ),
                    }
                }
                _ => unknown(errors, &meta, RETRY_KEYS),
            }
        }
        RetryAttrs {
            max_attempts: max_attempts.take(),
            initial_interval_ms: initial.take(),
            backoff: backoff.take(),
            max_interval_ms: max_interval.take(),
            non_retryable: non_retryable.take(),
        }
    }
}

impl Compensate {
    fn parse(errors: &Errors, expr: &Expr) -> Option<Self> {
        match expr {
            Expr::Path(p) if p.qself.is_none() => Some(Compensate {
                path: p.path.clone(),
                args: None,
            }),
            Expr::Call(call) => {
                let Expr::Path(func) = &*call.func else {
                    errors.spanned(&call.func, "expected the path of a compensating activity");
                    return None;
                };
                let mut args = Vec::new();
                for arg in &call.args {
                    match arg {
                        Expr::Path(p) if p.path.get_ident().is_some() => {
                            if let Some(id) = p.path.get_ident() {
                                args.push(id.clone());
                            }
                        }
                        other => errors.spanned(
                            other,
                            "compensation arguments are `output` or names of this activity's parameters",
                        ),
                    }
                }
                Some(Compensate {
                    path: func.path.clone(),
                    args: Some(args),
                })
            }
            other => {
                errors.spanned(
                    other,
                    "expected a compensating activity: `compensate = refund` or `compensate = release(output, order_id)`",
                );
                None
            }
        }
    }
}

impl WorkflowAttrs {
    pub(crate) fn parse(errors: &Errors, tokens: TokenStream) -> Self {
        let mut attrs = WorkflowAttrs {
            name: Slot::new(NAME),
            queue: Slot::new(QUEUE),
            state: Slot::new(STATE),
            migrations: Slot::new(MIGRATIONS),
        };
        for meta in parse_metas(errors, tokens) {
            let span = meta.path().span();
            match key_of(&meta).as_str() {
                NAME => {
                    if let Some((_, v)) = string_value(errors, &meta, "name = \"order\"") {
                        attrs.name.set(errors, span, v);
                    }
                }
                QUEUE => {
                    if let Some((s, v)) = string_value(errors, &meta, "queue = \"orders\"") {
                        if v.is_empty() {
                            errors.at(s, "`queue` must not be empty");
                        }
                        attrs.queue.set(errors, span, v);
                    }
                }
                STATE => {
                    let Some(expr) = name_value(errors, &meta, "state = OrderState") else {
                        continue;
                    };
                    match expr {
                        Expr::Path(p) if p.path.get_ident().is_some() => {
                            if let Some(id) = p.path.get_ident() {
                                attrs.state.set(errors, span, id.clone());
                            }
                        }
                        other => {
                            errors.spanned(other, "`state` takes a type name: `state = OrderState`")
                        }
                    }
                }
                MIGRATIONS => {
                    let Some(expr) = name_value(errors, &meta, "migrations = order_migrations")
                    else {
                        continue;
                    };
                    match expr {
                        Expr::Path(p) => attrs.migrations.set(errors, span, p.path.clone()),
                        other => errors.spanned(
                            other,
                            "`migrations` takes a function: `migrations = order_migrations`",
                        ),
                    }
                }
                _ => unknown(errors, &meta, WORKFLOW_KEYS),
            }
        }
        attrs
    }
}
