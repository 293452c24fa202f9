//! Events and spans for operators, through `tracing`: nothing at all unless the host installs
//! a subscriber (with none, each call site costs a load and a compare).
//!
//! `Progress` events are for people (a bar, notices); these are for logs. Where both say the
//! same thing, the event is derived from the `Progress` one (`Progress::trace`, which the
//! progress reporter calls), so a site sends one and gets both. Levels: `info` when a file is
//! fetched or reused, `warn` for retries, a source that failed or lacks the file (a fallback),
//! locks that do not work, a partial that did not verify; `debug` for each HTTP request
//! (`sources/logged.rs`) and steps of a download; `trace` on the warm path only. One `ensure`
//! span per download ([`ensure_span`]).
//!
//! A subscriber's panic never unwinds into a download: each event, span and entry into a
//! span is made under `catch_unwind` ([`guarded`]), and is lost instead. Events are never emitted while the
//! transfer holds its mutexes, so a slow subscriber slows a download, nothing else. Nothing
//! here carries a token or a URL's query: sources name themselves and their URLs redacted.

use std::panic::{catch_unwind, AssertUnwindSafe};

use tracing::{Dispatch, Span};

/// Emits a `tracing` event at `$level` (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`) with
/// `tracing::event!`'s fields and message (and target, first, if not the module's), when that
/// level can be enabled at all (else only the level check runs), guarded against a subscriber
/// that panics.
macro_rules! emit {
    (target: $target:expr, $level:ident, $($rest:tt)+) => {
        if $crate::trace::enabled!($level) {
            $crate::trace::guarded((), || {
                ::tracing::event!(target: $target, ::tracing::Level::$level, $($rest)+)
            });
        }
    };
    ($level:ident, $($rest:tt)+) => {
        if $crate::trace::enabled!($level) {
            $crate::trace::guarded((), || ::tracing::event!(::tracing::Level::$level, $($rest)+));
        }
    };
}

/// Whether an event at `$level` may be enabled: tracing's own first check (the build's and
/// the subscribers' maximum level), an atomic load and a compare.
macro_rules! enabled {
    ($level:ident) => {
        ::tracing::Level::$level <= ::tracing::level_filters::STATIC_MAX_LEVEL
            && ::tracing::Level::$level <= ::tracing::level_filters::LevelFilter::current()
    };
}

pub(crate) use {emit, enabled};

/// Runs `f` (an event, a span), returning `fallback` if the subscriber panics in it: the
/// panic is the host's to see (its panic hook runs), not the download's to die of.
pub(crate) fn guarded<R>(fallback: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The span of one `ensure` that is not warm: `model`, `file`, `bytes` at once; `source` and
/// `outcome` (`fetched`, `reused`, `verified`, `waited`, `read-only`, `failed`) recorded as
/// they become known ([`record`]).
pub(crate) fn ensure_span(model: &str, file: &str, bytes: u64) -> Quiet {
    Quiet(guarded(Span::none(), || {
        tracing::info_span!(
            "ensure",
            model,
            file,
            bytes,
            source = tracing::field::Empty,
            outcome = tracing::field::Empty,
        )
    }))
}

/// A span whose closing, when this is dropped, is guarded too: a subscriber that panics in
/// `on_close` (or `try_close`) loses that, not the call that made the span.
pub(crate) struct Quiet(Span);

impl std::ops::Deref for Quiet {
    type Target = Span;
    fn deref(&self) -> &Span {
        &self.0
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        let span = std::mem::replace(&mut self.0, Span::none());
        guarded((), move || drop(span));
    }
}

/// Records `field` (`source`, `outcome`) on the current span, when it has it.
pub(crate) fn record(field: &'static str, value: &str) {
    if enabled!(INFO) {
        guarded((), || {
            Span::current().record(field, value);
        });
    }
}

/// Enters `span` until the guard drops, both guarded against a subscriber that panics (as
/// `Span::enter` does otherwise: the subscriber's `enter`, then its `exit`).
pub(crate) fn enter(span: &Span) -> Entered<'_> {
    guarded((), || {
        span.with_subscriber(|(id, dispatch)| dispatch.enter(id));
    });
    Entered(span)
}

/// A span entered by [`enter`], left when this drops.
pub(crate) struct Entered<'a>(&'a Span);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        guarded((), || {
            self.0.with_subscriber(|(id, dispatch)| dispatch.exit(id));
        });
    }
}

/// The subscriber and span of the calling thread, for the threads a download starts
/// ([`Context::enter`]): a host's scoped subscriber (`with_default`) sees their events too.
pub(crate) struct Context {
    dispatch: Option<Dispatch>,
    span: Quiet,
}

impl Context {
    /// The calling thread's (nothing to carry when it has no subscriber).
    pub(crate) fn current() -> Self {
        let dispatch = tracing::dispatcher::get_default(|d| {
            (!d.is::<tracing::subscriber::NoSubscriber>()).then(|| d.clone())
        });
        let span = Quiet(if dispatch.is_some() { Span::current() } else { Span::none() });
        Self { dispatch, span }
    }

    /// Makes this thread's events go where the captured thread's went, until the guard drops.
    pub(crate) fn enter(&self) -> InContext<'_> {
        let dispatch = self.dispatch.as_ref().map(tracing::dispatcher::set_default);
        let span = dispatch.as_ref().map(|_| enter(&self.span));
        InContext { _span: span, _dispatch: dispatch }
    }
}

/// A thread in a [`Context`]: its span is left, then its subscriber (fields drop in order).
pub(crate) struct InContext<'a> {
    _span: Option<Entered<'a>>,
    _dispatch: Option<tracing::dispatcher::DefaultGuard>,
}
