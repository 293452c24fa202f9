//! What a download is doing, as events for progress bars and logs. The resolver and the
//! transfer engine send them; the command line renders them; the library never prints.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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
        if let Some(f) = self.0 {
            f(&event);
        }
    }
}
