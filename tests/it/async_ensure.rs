//! The async API (feature `tokio`) against the HTTPS Hub look-alike: concurrent calls on a
//! current-thread runtime, futures dropped mid-download, and the cancel flag behind them.

use std::fs;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata_model::{ErrorKind, Progress, ProgressFn, RegistryError};

use crate::support::hub::Faults;
use crate::support::{setup, Setup};

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap()
}

/// A progress callback that records each event's name.
fn recorder() -> (ProgressFn, Arc<Mutex<Vec<&'static str>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let progress: ProgressFn = Arc::new(move |p: &Progress<'_>| {
        let name = match p {
            Progress::WaitingForLock { .. } => "waiting",
            Progress::Started { .. } => "started",
            Progress::Advanced { .. } => "advanced",
            Progress::Retrying { .. } => "retrying",
            Progress::Finished { .. } => "finished",
            Progress::SourceFailed { .. } => "source failed",
            _ => "other",
        };
        sink.lock().unwrap().push(name);
    });
    (progress, seen)
}

fn count(seen: &Mutex<Vec<&'static str>>, name: &str) -> usize {
    seen.lock().unwrap().iter().filter(|n| **n == name).count()
}

/// Polls `done` every 20 ms for up to 30 s, on the runtime's clock (never blocking it).
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Drops `rt`, which waits for its blocking pool's work (a download stopped by a dropped
/// future) to end; returns how long that took.
fn shut_down(rt: tokio::runtime::Runtime) -> Duration {
    let started = Instant::now();
    drop(rt);
    started.elapsed()
}

fn assert_nothing_at(path: &Path) {
    assert!(fs::symlink_metadata(path).is_err(), "{} must not exist", path.display());
}

fn len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

/// What the models directory holds for `s`'s model: the verified file (and no partial), or
/// nothing at the model path and a partial whose recorded bytes are the file's own, so that
/// a resume from it verifies. Returns the bytes the partial holds (0: none).
fn verified_or_resumable(s: &Setup) -> u64 {
    let state = s.sb.models().join(".strata");
    if s.model_path().exists() {
        assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes, "only the verified file at the model path");
        assert!(!s.partial_path().exists(), "a verified model leaves no partial");
        return 0;
    }
    assert_nothing_at(&s.model_path());
    let stray: Vec<_> = fs::read_dir(&state)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(
        stray
            .iter()
            .all(|n| !n.contains(".part.") || n.ends_with(".part.ranges") || n.ends_with(".part.etag")),
        "{stray:?}"
    );
    let Ok(partial) = fs::read(s.partial_path()) else { return 0 };
    let ranges = state.join(format!("{}.part.ranges", s.file));
    match fs::read_to_string(&ranges) {
        Ok(text) => {
            let mut lines = text.lines();
            assert_eq!(lines.next(), Some(format!("v1 {}", s.bytes.len()).as_str()), "{text}");
            assert_eq!(partial.len(), s.bytes.len(), "a parallel partial is preallocated");
            let mut held = 0;
            for line in lines {
                let n: Vec<usize> = line.split_whitespace().map(|x| x.parse().unwrap()).collect();
                let (start, done) = (n[0], n[2]);
                assert_eq!(&partial[start..start + done], &s.bytes[start..start + done], "range {line}");
                held += done as u64;
            }
            held
        }
        Err(_) => {
            assert_eq!(partial[..], s.bytes[..partial.len()], "a sequential partial is a prefix of the file");
            partial.len() as u64
        }
    }
}

/// The target: ten `ensure_async` calls for one model on a current-thread runtime
/// download it once, and a task ticking every 10 ms on that same runtime is never held up.
///
/// The target is no gap over 50 ms; the assertion allows 100 ms, because on a shared 2-core
/// machine the OS alone can hold a runnable thread off the CPU for tens of milliseconds. The
/// bound still means something: a call that blocked the runtime's only thread would hold it
/// for the whole transfer (at least 1.5 s at the Hub's rate cap), and a waiter blocking it
/// would hold it for each 100 ms poll of the lock.
#[test]
fn ten_calls_on_a_current_thread_runtime_download_once_and_never_block_it() {
    let s = setup(4_000_000);
    s.hub.set_faults(Faults { rate: Some(2_000_000), ..Default::default() }); // about 2 s
    let (progress, seen) = recorder();
    let registry = s.registry(s.config().with_connections(Some(1))).with_progress(progress);
    let rt = current_thread();
    let (results, (ticks, longest), elapsed) = rt.block_on(async {
        let done = Arc::new(AtomicBool::new(false));
        let ticker = tokio::spawn({
            let done = done.clone();
            async move {
                let (mut ticks, mut longest, mut last) = (0u32, Duration::ZERO, Instant::now());
                while !done.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    longest = longest.max(last.elapsed());
                    last = Instant::now();
                    ticks += 1;
                }
                (ticks, longest)
            }
        });
        let started = Instant::now();
        let calls: Vec<_> = (0..10).map(|_| tokio::spawn(registry.ensure_async("tiny"))).collect();
        let mut results = Vec::new();
        for call in calls {
            results.push(call.await.unwrap());
        }
        let elapsed = started.elapsed();
        done.store(true, Ordering::Relaxed);
        (results, ticker.await.unwrap(), elapsed)
    });
    eprintln!("10 calls in {elapsed:?}; {ticks} ticks, longest gap {longest:?}");
    for r in &results {
        assert_eq!(r.as_ref().unwrap(), &s.model_path());
    }
    assert!(elapsed >= Duration::from_millis(1500), "the ticker ran during the transfer: {elapsed:?}");
    assert!(u128::from(ticks) >= elapsed.as_millis() / 20, "{ticks} ticks in {elapsed:?}");
    assert!(longest < Duration::from_millis(100), "the runtime was held up for {longest:?}");
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
    assert_eq!(s.hub.cdn_gets().len(), 1, "one transfer for ten calls");
    assert_eq!(s.hub.bytes_sent(), s.bytes.len() as u64, "the file's bytes, once");
    assert_eq!(count(&seen, "finished"), 1, "progress through the same callback");
    assert!(count(&seen, "waiting") >= 1, "the other calls waited for the lock");
}

/// Dropping the future mid-download stops the transfer (the server stops sending), keeps a
/// resumable partial and the lock free, puts nothing at the model path, and the next
/// `ensure` resumes from the byte kept.
#[test]
fn a_dropped_future_stops_the_transfer_and_the_next_ensure_resumes() {
    let s = setup(8_000_000);
    s.hub.set_faults(Faults { rate: Some(1_000_000), ..Default::default() });
    let (progress, seen) = recorder();
    let registry = s.registry(s.config().with_connections(Some(1))).with_progress(progress);
    let rt = current_thread();
    rt.block_on(async {
        tokio::select! {
            r = registry.ensure_async("tiny") => panic!("finished before the drop: {r:?}"),
            () = until("1 MB is on disk", || len(&s.partial_path()) >= 1_000_000) => {}
        }
    }); // the future is dropped here, by `select!`
    let at_drop = s.hub.bytes_sent();
    let stopped_in = shut_down(rt); // waits for the blocking work to end
    assert!(stopped_in < Duration::from_secs(2), "the download went on for {stopped_in:?} after the drop");
    // The server's write of the piece in flight when the client closed the connection, and
    // the next, land in its socket before it hears of the close.
    std::thread::sleep(Duration::from_millis(200));
    let after = s.hub.bytes_sent();
    std::thread::sleep(Duration::from_millis(500)); // at 1 MB/s, 500 kB more if it still ran
    assert_eq!(s.hub.bytes_sent(), after, "the server still sends");
    assert!(after - at_drop < 300_000, "{} bytes sent after the drop", after - at_drop);

    let kept = verified_or_resumable(&s);
    assert!((1_000_000..8_000_000).contains(&kept), "{kept}");
    assert_eq!(len(&s.partial_path()), kept);
    assert_eq!(count(&seen, "source failed") + count(&seen, "retrying"), 0, "{:?}", seen.lock().unwrap());
    let info = registry.info("tiny").unwrap();
    assert_eq!(info.status, "partial");

    s.hub.set_faults(Faults::default());
    s.hub.clear_seen();
    // The lock was released: no wait for it.
    let path = registry.clone().with_lock_timeout(Some(Duration::ZERO)).ensure("tiny").unwrap();
    assert_eq!(fs::read(path).unwrap(), s.bytes);
    let gets = s.hub.cdn_gets();
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0].headers.get("range").map(String::as_str), Some(format!("bytes={kept}-").as_str()));
    assert_eq!(s.hub.bytes_sent(), s.bytes.len() as u64 - kept, "only the missing bytes");
}

/// Futures dropped at random moments (at the first poll, before the first byte, then
/// anywhere in a transfer over four connections, resumed each time) leave only a verified
/// file or a resumable partial whose recorded bytes are the file's; the runtime's shutdown,
/// which waits for the blocking work, shows how soon each stopped; the last call completes
/// from what the others kept.
#[test]
fn futures_dropped_at_random_moments_leave_a_verified_file_or_a_resumable_partial() {
    let s = setup(6 << 20);
    // 400 kB/s per connection, 4 connections: about 4 s for the whole file.
    s.hub.set_faults(Faults { rate: Some(400_000), ..Default::default() });
    let registry = s.registry(s.config().with_connections(Some(4)));
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() | 1;
    eprintln!("seed {seed}");
    let mut x = seed;
    let mut interrupted = 0;
    for round in 0..8 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let after = Duration::from_millis(match round {
            0 => 0, // polled once, then dropped: the work may not have begun
            1 => 2,
            _ => 100 + u64::from(x % 500),
        });
        // Current-thread and multi-thread runtimes in turn.
        let rt = if round % 2 == 0 { current_thread() } else { multi_thread() };
        let outcome = rt.block_on(async { tokio::time::timeout(after, registry.ensure_async("tiny")).await });
        let stopped_in = shut_down(rt);
        assert!(stopped_in < Duration::from_secs(2), "round {round}: stopped after {stopped_in:?}");
        let held = verified_or_resumable(&s);
        eprintln!("round {round}: dropped after {after:?}: {outcome:?}, stopped in {stopped_in:?}, {held} bytes kept");
        if outcome.is_err() && held > 0 {
            interrupted += 1;
        }
    }
    assert!(interrupted >= 3, "{interrupted} drops came mid-transfer");
    s.hub.set_faults(Faults::default());
    let path = registry.ensure("tiny").unwrap();
    assert_eq!(fs::read(path).unwrap(), s.bytes);
    // Resumes: the drops cost what was in flight, not the file again each time.
    assert!(s.hub.bytes_sent() < 2 * s.bytes.len() as u64, "{} bytes sent", s.hub.bytes_sent());
}

/// The flag behind the drop, for blocking callers: the call returns `Cancelled` with the
/// bytes kept, and no other source is tried (a mirror directory that has the file).
#[test]
fn a_cancel_flag_stops_a_blocking_ensure_without_trying_the_next_source() {
    let s = setup(8_000_000);
    s.hub.set_faults(Faults { rate: Some(1_000_000), ..Default::default() });
    let mirror = tempfile::tempdir().unwrap();
    fs::write(mirror.path().join(&s.file), &s.bytes).unwrap();
    let config = s.config().with_connections(Some(1));
    let mut sources = strata_model::sources::from_config(&config).unwrap();
    sources.push(Box::new(strata_model::sources::MirrorDir::new(mirror.path())));
    let stop = Arc::new(AtomicBool::new(false));
    let registry = s.registry(config).with_sources(sources).with_cancel(stop.clone());
    let err = std::thread::scope(|scope| {
        let call = scope.spawn(|| registry.ensure("tiny"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while len(&s.partial_path()) < 1_000_000 {
            assert!(Instant::now() < deadline, "the download did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        let stopped = Instant::now();
        let result = call.join().unwrap();
        assert!(stopped.elapsed() < Duration::from_secs(2), "{:?}", stopped.elapsed());
        result.unwrap_err()
    });
    let kept = verified_or_resumable(&s);
    assert!(
        matches!(&err, RegistryError::Cancelled { partial_kept: Some(n), .. } if *n == kept),
        "{err:?}, {kept} bytes on disk"
    );
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert!(err.to_string().contains("the next call resumes it"), "{err}");
    assert_nothing_at(&s.model_path());
}

/// Outside a tokio runtime (another executor, or none) the future answers `NoRuntime` at
/// its first poll; nothing is read or downloaded.
#[test]
fn polled_outside_a_runtime_the_future_says_so() {
    let s = setup(10_000);
    let registry = s.registry(s.config());
    let calls: Vec<std::pin::Pin<Box<dyn Future<Output = strata_model::Result<std::path::PathBuf>>>>> = vec![
        Box::pin(registry.ensure_async("tiny")),
        Box::pin(registry.ensure_with_quant_async("tiny", "q8_0")),
        Box::pin(registry.ensure_for_engine_async("tiny", &["bert"])),
        Box::pin(strata_model::ModelRegistry::ensure_async("tiny")),
    ];
    for mut call in calls {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let std::task::Poll::Ready(Err(err)) = call.as_mut().poll(&mut cx) else {
            panic!("expected an error at the first poll")
        };
        assert!(matches!(err, RegistryError::NoRuntime { .. }), "{err:?}");
        assert!(err.to_string().contains("needs a tokio runtime"), "{err}");
    }
    assert!(s.hub.seen().is_empty());
}

/// The siblings on a multi-thread runtime: an architecture the engine cannot load is refused
/// before any request; the others fetch, then are warm.
#[test]
fn the_sibling_calls_work_on_a_multi_thread_runtime() {
    let s = setup(100_000);
    let registry = s.registry(s.config());
    let rt = multi_thread();
    rt.block_on(async {
        let err = registry.ensure_for_engine_async("tiny", &["qwen3"]).await.unwrap_err();
        assert!(matches!(err, RegistryError::UnsupportedArch { .. }), "{err:?}");
        assert!(s.hub.seen().is_empty());
        let path = registry.ensure_for_engine_async("tiny", &["bert"]).await.unwrap();
        assert_eq!(fs::read(&path).unwrap(), s.bytes);
        assert_eq!(registry.ensure_with_quant_async("tiny", "q8_0").await.unwrap(), path);
        let unknown = registry.ensure_async("no-such-model").await.unwrap_err();
        assert!(matches!(unknown, RegistryError::UnknownModel { .. }), "{unknown:?}");
    });
    assert_eq!(s.hub.cdn_gets().len(), 1);
}

/// A future dropped while its call waits for another caller's lock stops waiting at once;
/// the holder's download goes on and completes.
#[test]
fn a_dropped_future_waiting_for_the_lock_stops_waiting() {
    let s = setup(4_000_000);
    s.hub.set_faults(Faults { rate: Some(2_000_000), ..Default::default() });
    let (progress, seen) = recorder();
    let registry = s.registry(s.config().with_connections(Some(1))).with_progress(progress);
    std::thread::scope(|scope| {
        let holder = scope.spawn(|| registry.ensure("tiny"));
        let rt = current_thread();
        rt.block_on(async {
            until("the holder's transfer starts", || len(&s.partial_path()) > 0).await;
            tokio::select! {
                r = registry.ensure_async("tiny") => panic!("did not wait: {r:?}"),
                () = until("the call waits", || count(&seen, "waiting") > 0) => {}
            }
        });
        let stopped_in = shut_down(rt);
        assert!(stopped_in < Duration::from_millis(500), "it went on waiting for {stopped_in:?}");
        assert!(s.partial_path().exists(), "the holder goes on");
        assert_eq!(holder.join().unwrap().unwrap(), s.model_path());
    });
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
    assert_eq!(s.hub.cdn_gets().len(), 1);
}
