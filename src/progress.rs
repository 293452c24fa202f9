//! What a download is doing, as events for progress bars and logs. The resolver and the
//! transfer engine send them; the command line renders them; the library never prints.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::trace::emit;

/// What the resolver is doing.
#[derive(Debug)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// Another process (or thread) holds the model's lock; waiting for it. Sent when the wait
    /// begins (`waited` zero), then every 30 s while it lasts.
    WaitingForLock {
        /// The model.
        model: &'a str,
        /// The lock file.
        lock: &'a Path,
        /// Who holds it, as it recorded itself (`pid 4242 on node7`), when known.
        holder: Option<&'a str>,
        /// How long this process has waited so far.
        waited: Duration,
    },
    /// OS locks do not work in this directory (`flock` fails, or does not exclude): models
    /// are locked with claim files there, and each process downloads into a partial file of
    /// its own. Sent once per directory and process.
    NoLocks {
        /// The state directory (`<models dir>/.strata`).
        dir: &'a Path,
        /// Why: what `flock` did.
        reason: &'a str,
    },
    /// The partial download kept from an earlier run did not verify: it was discarded and the
    /// download starts again from the first byte, once, in this same call.
    Restarting {
        /// The model.
        model: &'a str,
        /// What was wrong.
        reason: &'a str,
    },
    /// The models directory cannot be written (a read-only image): a file found there with
    /// the right size is hashed once per process and served, since no stamp can be saved.
    ReadOnly {
        /// The model.
        model: &'a str,
        /// The models directory.
        dir: &'a Path,
        /// The file's size.
        bytes: u64,
    },
    /// Hashing a file already on disk that has no valid stamp.
    Verifying {
        /// The model.
        model: &'a str,
        /// Its size.
        bytes: u64,
    },
    /// Hashing another tool's copy of the file (found in its cache) before linking it in.
    VerifyingCopy {
        /// The model.
        model: &'a str,
        /// The copy.
        path: &'a Path,
        /// The tool whose cache it is in.
        tool: &'a str,
        /// Its size.
        bytes: u64,
    },
    /// A transfer started (or resumed): the source answered with the file's bytes.
    Started {
        /// The model.
        model: &'a str,
        /// The source, as it displays itself.
        source: &'a str,
        /// Bytes already on disk.
        resumed_from: u64,
        /// The file's size.
        total: u64,
    },
    /// Bytes arrived.
    Advanced {
        /// The model.
        model: &'a str,
        /// Bytes on disk so far.
        done: u64,
        /// The file's size.
        total: u64,
    },
    /// A transient failure; the transfer resumes after `delay`.
    Retrying {
        /// The model.
        model: &'a str,
        /// The source.
        source: &'a str,
        /// What went wrong.
        reason: &'a str,
        /// How long until the next try.
        delay: Duration,
    },
    /// The file was fetched and verified (size, GGUF magic, SHA-256) and is in place.
    Finished {
        /// The model.
        model: &'a str,
        /// The source that served it.
        source: &'a str,
        /// The file's size.
        bytes: u64,
        /// Bytes fetched in this call (less than `bytes` after a resume).
        fetched: u64,
        /// How long the fetch took, verification included.
        elapsed: Duration,
    },
    /// A new version of the file is being rebuilt from its verified old version (`update`):
    /// the changed chunks were fetched from Xet, the rest is copied from the old file.
    Rebuilding {
        /// The model.
        model: &'a str,
        /// The new file's size.
        bytes: u64,
        /// Bytes fetched from Xet (compressed, as sent).
        fetched: u64,
    },
    /// The new version was rebuilt and verified (its SHA-256 is the catalog's) and is in place.
    Rebuilt {
        /// The model.
        model: &'a str,
        /// The file's size.
        bytes: u64,
        /// Bytes fetched from Xet.
        fetched: u64,
        /// Bytes taken from the old file.
        reused: u64,
        /// How long it took, from the first request.
        elapsed: Duration,
    },
    /// Rebuilding from the old version failed; the whole file is downloaded instead.
    DeltaFailed {
        /// The model.
        model: &'a str,
        /// Why.
        reason: &'a str,
        /// Bytes it fetched before it failed (the whole file comes on top).
        fetched: u64,
    },
    /// Connecting to a host is slow: none of its addresses has answered yet. Sent a few
    /// seconds after the first attempt (then every ten seconds) until one connects or the
    /// connect timeout ends the wait, for the connections of a download's transfers (not for
    /// those of `add`, `push` or `sources`, which have no callback).
    Connecting {
        /// The host and port, as the URL names them (`huggingface.co:443`).
        host: &'a str,
        /// Since the first attempt.
        waited: Duration,
        /// The addresses, in the order they are tried (families interleaved, RFC 8305).
        addresses: &'a [SocketAddr],
    },
    /// A source did not serve the file; the next one is tried.
    SourceFailed {
        /// The model.
        model: &'a str,
        /// The source.
        source: &'a str,
        /// Why.
        reason: &'a str,
    },
    /// The model was downloaded and verified, but sharing it into the Hugging Face cache
    /// after the download (`STRATA_SHARE_HF_CACHE=1`) failed: the download still succeeds,
    /// and nothing of the share was left in the cache. A warning for people to read.
    ShareFailed {
        /// The model.
        model: &'a str,
        /// The Hugging Face cache, when one is known.
        cache: Option<&'a Path>,
        /// Why, with what to change.
        reason: &'a str,
    },
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&Progress<'_>) + Send + Sync>;

/// Sends events to an optional callback.
#[derive(Clone, Copy)]
pub(crate) struct Reporter<'a>(pub(crate) Option<&'a ProgressFn>);

impl Reporter<'_> {
    pub(crate) fn send(&self, event: Progress<'_>) {
        event.trace();
        if let Some(f) = self.0 {
            f(&event);
        }
    }
}

/// The target of the events derived from `Progress` ones: what downloads do.
const TARGET: &str = "strata_model::download";

impl Progress<'_> {
    /// Emits the operator's `tracing` event for this one (none for [`Progress::Advanced`]):
    /// what [`Reporter::send`] does first, callback or not.
    pub(crate) fn trace(&self) {
        match *self {
            Progress::Advanced { .. } => {}
            Progress::Finished { model, source, bytes, fetched, elapsed } => emit!(
                target: TARGET,
                INFO,
                model,
                source,
                bytes,
                fetched,
                elapsed_ms = elapsed.as_millis() as u64,
                "fetched and verified"
            ),
            Progress::Started { model, source, resumed_from, total } if resumed_from > 0 => {
                emit!(target: TARGET, INFO, model, source, resumed_from, total, "resuming a partial download")
            }
            Progress::Started { model, source, total, .. } => {
                emit!(target: TARGET, DEBUG, model, source, total, "transfer started")
            }
            Progress::Retrying { model, source, reason, delay } => emit!(
                target: TARGET,
                WARN,
                model,
                source,
                reason,
                delay_ms = delay.as_millis() as u64,
                "retrying after a transient failure"
            ),
            Progress::SourceFailed { model, source, reason } => {
                emit!(target: TARGET, WARN, model, source, reason, "source failed")
            }
            Progress::Rebuilding { model, bytes, fetched } => {
                emit!(target: TARGET, INFO, model, bytes, fetched, "rebuilding from the old version and Xet")
            }
            Progress::Rebuilt { model, bytes, fetched, reused, elapsed } => emit!(
                target: TARGET,
                INFO,
                model,
                bytes,
                fetched,
                reused,
                elapsed_ms = elapsed.as_millis() as u64,
                "rebuilt from the old version and Xet, and verified"
            ),
            Progress::DeltaFailed { model, reason, fetched } => {
                emit!(target: TARGET, WARN, model, reason, fetched, "the Xet delta failed: fetching the whole file")
            }
            Progress::NoLocks { dir, reason } => emit!(
                target: TARGET,
                WARN,
                dir = %dir.display(),
                reason,
                "file locks do not work here: claim files instead, and a partial download per process"
            ),
            Progress::Restarting { model, reason } => {
                let what = "the partial download did not verify: restarting from the first byte";
                emit!(target: TARGET, WARN, model, reason, "{what}")
            }
            Progress::ShareFailed { model, cache, reason } => emit!(
                target: TARGET,
                WARN,
                model,
                cache = cache.map(|c| c.display().to_string()),
                reason,
                "downloaded, but not shared into the Hugging Face cache"
            ),
            Progress::WaitingForLock { model, lock, holder, waited } => emit!(
                target: TARGET,
                INFO,
                model,
                lock = %lock.display(),
                holder,
                waited_ms = waited.as_millis() as u64,
                "waiting for another process downloading the model"
            ),
            Progress::Connecting { host, waited, addresses } => emit!(
                target: TARGET,
                INFO,
                host,
                waited_ms = waited.as_millis() as u64,
                addresses = ?addresses,
                "still connecting"
            ),
            Progress::ReadOnly { model, dir, bytes } => emit!(
                target: TARGET,
                INFO,
                model,
                dir = %dir.display(),
                bytes,
                "read-only models directory: hashing the file once for this process"
            ),
            Progress::Verifying { model, bytes } => {
                emit!(target: TARGET, INFO, model, bytes, "hashing a file already in place (no valid stamp)")
            }
            Progress::VerifyingCopy { model, path, tool, bytes } => emit!(
                target: TARGET,
                DEBUG,
                model,
                path = %path.display(),
                tool,
                bytes,
                "hashing another tool's copy"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata};

    use super::*;

    /// A subscriber that keeps the level of each event.
    #[derive(Clone, Default)]
    struct Levels(Arc<Mutex<Vec<Level>>>);

    impl tracing::Subscriber for Levels {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            self.0.lock().unwrap().push(*event.metadata().level());
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    fn level_of(event: Progress<'_>) -> Option<Level> {
        let levels = Levels::default();
        tracing::subscriber::with_default(levels.clone(), || Reporter(None).send(event));
        let seen = levels.0.lock().unwrap();
        assert!(seen.len() <= 1, "{seen:?}");
        seen.first().copied()
    }

    #[test]
    fn each_event_for_people_has_its_level_for_operators() {
        let (m, s, r, p) = ("minilm", "Hugging Face https://huggingface.co", "HTTP 503", Path::new("/m"));
        let d = Duration::from_secs(1);
        let cases = [
            (Progress::Advanced { model: m, done: 1, total: 2 }, None),
            (Progress::Started { model: m, source: s, resumed_from: 0, total: 2 }, Some(Level::DEBUG)),
            (Progress::Started { model: m, source: s, resumed_from: 1, total: 2 }, Some(Level::INFO)),
            (Progress::Finished { model: m, source: s, bytes: 2, fetched: 2, elapsed: d }, Some(Level::INFO)),
            (Progress::Retrying { model: m, source: s, reason: r, delay: d }, Some(Level::WARN)),
            (Progress::SourceFailed { model: m, source: s, reason: r }, Some(Level::WARN)),
            (Progress::NoLocks { dir: p, reason: r }, Some(Level::WARN)),
            (Progress::Restarting { model: m, reason: r }, Some(Level::WARN)),
            (Progress::ShareFailed { model: m, cache: None, reason: r }, Some(Level::WARN)),
            (Progress::WaitingForLock { model: m, lock: p, holder: None, waited: d }, Some(Level::INFO)),
            (Progress::Connecting { host: "h:443", waited: d, addresses: &[] }, Some(Level::INFO)),
            (Progress::ReadOnly { model: m, dir: p, bytes: 2 }, Some(Level::INFO)),
            (Progress::Verifying { model: m, bytes: 2 }, Some(Level::INFO)),
            (Progress::VerifyingCopy { model: m, path: p, tool: "Ollama", bytes: 2 }, Some(Level::DEBUG)),
        ];
        for (event, level) in cases {
            let shown = format!("{event:?}");
            assert_eq!(level_of(event), level, "{shown}");
        }
    }

    #[test]
    fn a_subscriber_that_panics_loses_its_event_not_the_caller() {
        struct Panics;
        impl tracing::Subscriber for Panics {
            fn enabled(&self, _: &Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &Attributes<'_>) -> Id {
                Id::from_u64(1)
            }
            fn record(&self, _: &Id, _: &Record<'_>) {
                panic!("record")
            }
            fn record_follows_from(&self, _: &Id, _: &Id) {}
            fn event(&self, _: &Event<'_>) {
                panic!("event")
            }
            fn enter(&self, _: &Id) {
                panic!("enter")
            }
            fn exit(&self, _: &Id) {
                panic!("exit")
            }
        }
        let done = tracing::subscriber::with_default(Panics, || {
            let span = crate::trace::ensure_span("m", "f.gguf", 1);
            assert!(!span.is_none());
            let entered = crate::trace::enter(&span);
            Reporter(None).send(Progress::Restarting { model: "m", reason: "r" });
            crate::trace::record("outcome", "fetched");
            drop(entered);
            true
        });
        assert!(done);
    }
}
