//! Shows downloads on stderr, unless `--quiet`: on a terminal, a bar as wide as the terminal
//! (a short form below 60 columns) for each file in flight (the files of a multi-file model
//! are fetched at once); elsewhere (a CI log, a pipe), a start line, a progress
//! line at most every 10 % or 10 s, and no control characters. Speed and time left count this
//! run's bytes only (not those resumed from disk), smoothed. After a verified download, one
//! line says so (`✓ minilm 25.0 MB, SHA-256 verified, 1.2 s`). Notices (waiting for another
//! process, a slow connection, retries, failed sources) go to stderr too, and so do warnings (a
//! share into the Hugging Face cache that failed after a download), even under `--json`. Sizes
//! and speeds are in the decimal
//! units of `list` ([`ByteSize`]).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use strata_model::{ByteSize, Progress, ProgressFn};

/// Below this many columns the bar gives way to a short form.
const NARROW: u16 = 60;
/// Off a terminal, a progress line at least every this many percent…
const LINE_EVERY_PERCENT: u64 = 10;
/// …or this often, whichever comes first…
const LINE_EVERY: Duration = Duration::from_secs(10);
/// …but never two lines closer than this: a download of a few seconds or less is its start
/// and success lines alone, and every progress line has a measured speed.
const LINE_GAP: Duration = Duration::from_secs(1);
/// The speed is sampled at most this often.
const SAMPLE: Duration = Duration::from_millis(250);

/// This run's transfer rate: bytes since the start (resumed bytes excluded), smoothed with an
/// exponential moving average of the rate between samples.
#[derive(Debug)]
struct Rate {
    at: Instant,
    done: u64,
    smoothed: Option<f64>,
}

impl Rate {
    fn new(done: u64) -> Self {
        let now = Instant::now();
        Self { at: now, done, smoothed: None }
    }

    fn update(&mut self, done: u64) {
        let now = Instant::now();
        let dt = now.duration_since(self.at);
        if dt < SAMPLE || done < self.done {
            return;
        }
        let rate = (done - self.done) as f64 / dt.as_secs_f64();
        self.smoothed = Some(match self.smoothed {
            Some(s) => 0.3 * rate + 0.7 * s,
            None => rate,
        });
        self.at = now;
        self.done = done;
    }

    /// Bytes per second, once measured.
    fn per_sec(&self) -> Option<f64> {
        self.smoothed.filter(|r| *r > 0.0)
    }

    fn eta(&self, left: u64) -> Option<Duration> {
        self.per_sec().map(|r| Duration::from_secs_f64(left as f64 / r))
    }
}

fn clock(d: Option<Duration>) -> String {
    match d.map(|d| d.as_secs()) {
        None => "--".into(),
        Some(s) if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        Some(s) if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        Some(s) => format!("{s}s"),
    }
}

fn speed(rate: &Rate) -> String {
    rate.per_sec().map_or_else(|| "--".into(), |r| format!("{}/s", ByteSize(r as u64)))
}

fn style(rate: Arc<Mutex<Rate>>, width: u16) -> ProgressStyle {
    let bytes = |s: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{}", ByteSize(s.pos()));
    };
    let total = |s: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{}", ByteSize(s.len().unwrap_or(0)));
    };
    let r = rate.clone();
    let speed_key = move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{}", speed(&r.lock().unwrap_or_else(|e| e.into_inner())));
    };
    let eta_key = move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
        let left = s.len().unwrap_or(0).saturating_sub(s.pos());
        let _ = write!(w, "{}", clock(rate.lock().unwrap_or_else(|e| e.into_inner()).eta(left)));
    };
    let template = if width < NARROW {
        "{msg:12!} {percent:>3}% {rate}"
    } else {
        "{msg:16!} [{wide_bar}] {size}/{total} {rate} {left}"
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("size", bytes)
        .with_key("total", total)
        .with_key("rate", speed_key)
        .with_key("left", eta_key)
        .progress_chars("=> ")
}

/// The notice of a slow connection, naming at most four addresses:
/// `still connecting to localhost:443 after 3 s ([::1]:443, 127.0.0.1:443)`.
fn connecting(host: &str, waited: Duration, addresses: &[SocketAddr]) -> String {
    const SHOWN: usize = 4;
    let mut list = addresses.iter().take(SHOWN).map(SocketAddr::to_string).collect::<Vec<_>>().join(", ");
    if addresses.len() > SHOWN {
        list += &format!(" and {} more", addresses.len() - SHOWN);
    }
    format!("still connecting to {host} after {} s ({list})", waited.as_secs())
}

/// The bars being drawn (on a terminal): log lines ([`StderrLines`]) are written with them
/// cleared.
static BARS: std::sync::OnceLock<MultiProgress> = std::sync::OnceLock::new();

/// Writes to stderr without breaking the bars being drawn: they are cleared, the bytes
/// written, the bars drawn again (log events come as one write each, a whole line).
pub struct StderrLines;

impl std::io::Write for StderrLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf).map(|()| buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match BARS.get() {
            Some(bars) => bars.suspend(|| std::io::stderr().write_all(buf)),
            None => std::io::stderr().write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Clears the bars left by a download that ended without finishing them (a file that failed).
pub fn clear() {
    if let Some(bars) = BARS.get() {
        let _ = bars.clear();
    }
}

/// Ends the bar (if any) of `model`'s file in flight.
fn end(in_flight: &mut Vec<Current>, model: &str) {
    if let Some(i) = in_flight.iter().position(|c| c.model == model) {
        if let Some(b) = in_flight.remove(i).bar {
            b.finish_and_clear();
        }
    }
}

/// A line on stderr, above the bars when there are some.
fn line(text: &str) {
    match BARS.get() {
        Some(bars) => bars.suspend(|| eprintln!("{text}")),
        None => eprintln!("{text}"),
    }
}

/// A download in progress (one per file in flight).
struct Current {
    model: String,
    total: u64,
    rate: Arc<Mutex<Rate>>,
    bar: Option<ProgressBar>,
    /// Off a terminal: when the last line was written, and at which step of
    /// [`LINE_EVERY_PERCENT`].
    line_at: Instant,
    line_tenth: u64,
}

/// The progress callback, or `None` when quiet. Under `--json` (stdout holds the document),
/// only warnings are rendered, on stderr.
pub fn reporter(quiet: bool, json: bool) -> Option<ProgressFn> {
    if quiet {
        return None;
    }
    // A bar needs a terminal that can draw one: indicatif draws nothing where TERM is unset
    // or `dumb` (a container's `-t` without TERM), so such a terminal gets a log's lines.
    let tty = std::io::stderr().is_terminal() && !console::is_dumb();
    let bars =
        tty.then(|| BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())));
    let in_flight: Mutex<Vec<Current>> = Mutex::new(Vec::new());
    Some(Arc::new(move |p: &Progress<'_>| {
        if json && !matches!(p, Progress::ShareFailed { .. } | Progress::DeltaFailed { .. }) {
            return;
        }
        let current = &mut *in_flight.lock().unwrap_or_else(|e| e.into_inner());
        match p {
            Progress::WaitingForLock { model, lock, holder, waited } => {
                let who = holder.map_or_else(|| "another process".to_string(), |h| h.to_string());
                let text = if waited.is_zero() {
                    format!("waiting for {who}, which is downloading {model} (lock {})", lock.display())
                } else {
                    format!("still waiting for {who}, which is downloading {model} ({} s so far)", waited.as_secs())
                };
                line(&text)
            }
            Progress::NoLocks { dir, reason } => line(&format!(
                    "file locks do not work in {}: {reason}; models are locked there with claim files, and each \
                     download writes a partial file of its own",
                    dir.display()
                ),
            ),
            Progress::Restarting { model, reason } => line(&format!("{model}: {reason}")),
            Progress::Verifying { model, bytes } => {
                line(&format!("verifying the {} file already present for {model}", ByteSize(*bytes)))
            }
            Progress::ReadOnly { model, dir, bytes } => line(&format!(
                    "{} is read-only: verifying {model} ({}) once for this process, as no stamp can be saved there",
                    dir.display(),
                    ByteSize(*bytes)
                ),
            ),
            Progress::VerifyingCopy { model, path, tool, bytes } => line(&format!(
                    "verifying the copy of {model} found in {tool}: {} ({})",
                    path.display(),
                    ByteSize(*bytes)
                ),
            ),
            Progress::Started { model, source, resumed_from, total } => {
                end(current, model);
                if *resumed_from > 0 {
                    line(&format!("resuming {model} at {} of {} from {source}", ByteSize(*resumed_from), ByteSize(*total)));
                } else if !tty {
                    eprintln!("downloading {model} ({}) from {source}", ByteSize(*total));
                }
                let rate = Arc::new(Mutex::new(Rate::new(*resumed_from)));
                let bar = bars.map(|bars| {
                    let width = console::Term::stderr().size().1;
                    let b = bars.add(ProgressBar::new(*total).with_style(style(rate.clone(), width)));
                    b.set_position(*resumed_from);
                    b.set_message(model.to_string());
                    b
                });
                current.push(Current {
                    model: model.to_string(),
                    total: *total,
                    rate,
                    bar,
                    line_at: Instant::now(),
                    line_tenth: resumed_from * 100 / (*total).max(1) / LINE_EVERY_PERCENT,
                });
            }
            Progress::Advanced { model, done, total } => {
                if let Some(c) = current.iter_mut().find(|c| c.model == *model) {
                    c.rate.lock().unwrap_or_else(|e| e.into_inner()).update(*done);
                    match &c.bar {
                        Some(b) => b.set_position(*done),
                        None => {
                            let tenth = done * 100 / (*total).max(1) / LINE_EVERY_PERCENT;
                            let since = c.line_at.elapsed();
                            let due = (tenth > c.line_tenth && since >= LINE_GAP) || since >= LINE_EVERY;
                            if due && done < total {
                                let rate = c.rate.lock().unwrap_or_else(|e| e.into_inner());
                                eprintln!(
                                    "{}: {:>3}% ({} of {}), {}, {} left",
                                    c.model,
                                    done * 100 / (*total).max(1),
                                    ByteSize(*done),
                                    ByteSize(c.total),
                                    speed(&rate),
                                    clock(rate.eta(total - done))
                                );
                                c.line_at = Instant::now();
                                c.line_tenth = c.line_tenth.max(tenth);
                            }
                        }
                    }
                }
            }
            Progress::Finished { model, bytes, elapsed, .. } => {
                end(current, model);
                line(&format!("✓ {model} {}, SHA-256 verified, {:.1} s", ByteSize(*bytes), elapsed.as_secs_f64()));
            }
            Progress::Rebuilding { model, bytes, fetched } => line(&format!(
                "rebuilding {model} ({}) from the verified old file: {} of changed chunks fetched from Xet",
                ByteSize(*bytes),
                ByteSize(*fetched)
            )),
            Progress::Rebuilt { model, bytes, fetched, reused, elapsed } => line(&format!(
                "✓ {model} {}, rebuilt ({} fetched, {} from the old file), SHA-256 verified, {:.1} s",
                ByteSize(*bytes),
                ByteSize(*fetched),
                ByteSize(*reused),
                elapsed.as_secs_f64()
            )),
            Progress::DeltaFailed { model, reason, .. } => {
                line(&format!("{model}: rebuilding from the old file failed ({reason}); fetching the whole file"))
            }
            Progress::Connecting { host, waited, addresses } => line(&connecting(host, *waited, addresses)),
            Progress::Retrying { model, source, reason, delay } => line(&format!("{model}: {source}: {reason}; retrying in {:.1}s", delay.as_secs_f64()),
            ),
            Progress::SourceFailed { model, source, reason } => {
                end(current, model);
                line(&format!("{model}: {source} failed: {reason}; trying the next source"))
            }
            Progress::ShareFailed { model, cache, reason } => line(&format!(
                    "strata-model: warning: {model} was downloaded, but not shared into the Hugging Face cache{}: {reason}",
                    cache.map(|c| format!(" {}", c.display())).unwrap_or_default()
                ),
            ),
            _ => {}
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_counts_this_runs_bytes_and_smooths() {
        let mut r = Rate::new(400_000_000); // resumed from 400 MB: none of it is speed
        assert_eq!(r.per_sec(), None);
        r.at -= Duration::from_secs(1);
        r.update(404_000_000);
        let first = r.per_sec().unwrap();
        assert!((3.9e6..4.1e6).contains(&first), "{first}");
        r.at -= Duration::from_secs(1);
        r.update(412_000_000); // a burst of 8 MB/s moves the average part of the way
        let second = r.per_sec().unwrap();
        assert!(second > first && second < 8e6, "{second}");
        assert_eq!(clock(r.eta(0)), "0s");
        assert_eq!(clock(Some(Duration::from_secs(3725))), "1h02m");
        assert_eq!(clock(None), "--");
    }

    #[test]
    fn a_slow_connection_names_its_host_and_addresses() {
        let a: Vec<SocketAddr> = ["[::1]:443", "127.0.0.1:443", "[::2]:443", "127.0.0.2:443", "[::3]:443"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(
            connecting("localhost:443", Duration::from_millis(3200), &a[..2]),
            "still connecting to localhost:443 after 3 s ([::1]:443, 127.0.0.1:443)"
        );
        assert_eq!(
            connecting("h:443", Duration::from_secs(13), &a),
            "still connecting to h:443 after 13 s ([::1]:443, 127.0.0.1:443, [::2]:443, 127.0.0.2:443 and 1 more)"
        );
    }
}
