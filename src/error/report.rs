//! [`Report`]: an error rendered on one line with its causes and a hint — what the command
//! line prints.

use std::borrow::Cow;
use std::fmt;

/// An error with its causes, joined by `: `, and a hint after `; ` when there is one.
pub struct Report<'a> {
    error: &'a (dyn std::error::Error + 'static),
    hint: Option<Cow<'static, str>>,
}

impl<'a> Report<'a> {
    /// The report of any error (no hint).
    pub fn new(error: &'a (dyn std::error::Error + 'static)) -> Self {
        Self { error, hint: None }
    }

    /// The report of `error`, ending with `hint`.
    pub(crate) fn with_hint(
        error: &'a (dyn std::error::Error + 'static),
        hint: Option<Cow<'static, str>>,
    ) -> Self {
        Self { error, hint }
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        let mut cause = self.error.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
