//! `-v`, `-vv`, `-vvv` and `RUST_LOG`: the library's `tracing` events on stderr, one plain line
//! each (colored only where the rest of stderr is), written through the progress bar so that
//! a bar being drawn is cleared and redrawn around them. Without either, no subscriber is
//! installed and the output is exactly that of the plain command.

use std::ffi::OsString;

use strata_model::config::vars;
use tracing_subscriber::EnvFilter;

use crate::exit::{code, Failure};

/// Installs the subscriber `verbose` (`-v` count) and `rust_log` (the variable, when set and
/// not empty) ask for, if any. A `RUST_LOG` that is not a filter is a configuration error
/// when logs were asked for (`-v`); otherwise (it may be set for other programs, in their own
/// syntax) it is ignored, with a warning unless `quiet`.
pub fn init(verbose: u8, rust_log: Option<OsString>, color: bool, quiet: bool) -> Result<(), Failure> {
    let filter = match rust_log.filter(|v| !v.is_empty()) {
        Some(value) if verbose == 0 => match value.to_str().map(|t| EnvFilter::builder().parse(t)) {
            Some(Ok(filter)) => filter,
            _ => {
                if !quiet {
                    eprintln!(
                        "strata-model: warning: {} is not a filter strata-model can read (such as \
                         strata_model=debug); ignored",
                        vars::RUST_LOG
                    );
                }
                return Ok(());
            }
        },
        Some(value) => {
            let bad = |why: String| {
                Failure::Message(
                    format!(
                        "{}: {why}; give filter directives such as strata_model=debug, or unset it",
                        vars::RUST_LOG
                    ),
                    code::CONFIG,
                )
            };
            let text = value.to_str().ok_or_else(|| bad("not valid UTF-8".into()))?;
            EnvFilter::builder().parse(text).map_err(|e| bad(e.to_string()))?
        }
        None => match verbose {
            0 => return Ok(()),
            1 => EnvFilter::new("strata_model=info"),
            2 => EnvFilter::new("strata_model=debug"),
            _ => EnvFilter::new("strata_model=trace"),
        },
    };
    // Only one subscriber per process: a second one (there is none) would be ignored.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color)
        .with_writer(|| crate::progress::StderrLines)
        .try_init();
    Ok(())
}
