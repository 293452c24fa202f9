//! Shows downloads on stderr: a progress bar on a terminal, and notices (waiting for another
//! process, retries, failed sources) unless `--quiet`. Sizes and speeds are in the same
//! decimal units as `list` ([`ByteSize`]).

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use strata_model::{ByteSize, Progress, ProgressFn};

fn style() -> ProgressStyle {
    let bytes = |s: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{}", ByteSize(s.pos()));
    };
    let total = |s: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{}", ByteSize(s.len().unwrap_or(0)));
    };
    let speed = |s: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{}/s", ByteSize(s.per_sec() as u64));
    };
    ProgressStyle::with_template("{msg:<20} [{bar:30}] {size}/{total} {speed} ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("size", bytes)
        .with_key("total", total)
        .with_key("speed", speed)
        .progress_chars("=> ")
}

/// The progress callback, or `None` when quiet.
pub fn reporter(quiet: bool) -> Option<ProgressFn> {
    if quiet {
        return None;
    }
    let tty = std::io::stderr().is_terminal();
    let bar: Mutex<Option<ProgressBar>> = Mutex::new(None);
    let style = style();
    Some(Arc::new(move |p: &Progress<'_>| {
        let mut bar = bar.lock().unwrap_or_else(|e| e.into_inner());
        let note = |text: String| match bar.as_ref() {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        };
        match p {
            Progress::WaitingForLock { model, lock } => {
                note(format!("waiting for another process downloading {model} (lock {})", lock.display()))
            }
            Progress::Verifying { model, bytes } => {
                note(format!("verifying the {} file already present for {model}", ByteSize(*bytes)))
            }
            Progress::Started { model, source, resumed_from, total } => {
                if *resumed_from > 0 {
                    note(format!(
                        "resuming {model} at {} of {} from {source}",
                        ByteSize(*resumed_from),
                        ByteSize(*total)
                    ));
                }
                if tty {
                    let b = bar.get_or_insert_with(|| {
                        ProgressBar::with_draw_target(Some(*total), ProgressDrawTarget::stderr())
                            .with_style(style.clone())
                    });
                    b.set_length(*total);
                    b.set_position(*resumed_from);
                    b.set_message(model.to_string());
                }
            }
            Progress::Advanced { done, total, .. } => {
                if let Some(b) = bar.as_ref() {
                    b.set_position(*done);
                    if done == total {
                        b.finish_and_clear();
                    }
                }
            }
            Progress::Retrying { model, source, reason, delay } => {
                note(format!("{model}: {source}: {reason}; retrying in {:.1}s", delay.as_secs_f64()))
            }
            Progress::SourceFailed { model, source, reason } => {
                note(format!("{model}: {source} failed: {reason}; trying the next source"))
            }
            _ => {}
        }
        if bar.as_ref().is_some_and(ProgressBar::is_finished) {
            *bar = None;
        }
    }))
}
