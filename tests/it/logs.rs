//! `tracing`: what the library tells a host's subscriber (and only one it installs), at which
//! level, inside which span; that no token or signed query ever reaches it; that a slow or
//! panicking subscriber cannot spoil a download; the warm path's single `trace` event; and the
//! command line's `-v`, `-vv` and `RUST_LOG`.

use std::fs;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_model::config::{CacheDir, CacheTool, Layout};
use strata_model::{Registry, Secret};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use base64::Engine as _;

use crate::support::hub::{Faults, REPO};
use crate::support::shim::{self, Locks};
use crate::support::{gguf_bytes, oci, registered_sandbox, setup, Run, Setup};

const TOKEN: &str = "hf_tracing_secret_token_1234";
/// Big enough for ranges over several connections (more than 4 MiB).
const SIZE: usize = 6_000_000;

/// One event as a subscriber saw it: level, target, message, the other fields (`k=v`).
#[derive(Clone, Debug)]
struct Seen {
    level: Level,
    target: String,
    message: String,
    fields: String,
}

impl Seen {
    fn has(&self, level: Level, message: &str) -> bool {
        self.level == level && self.message.contains(message)
    }
}

#[derive(Default)]
struct Fields(String, String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            self.1 += &format!("{}={value:?} ", field.name());
        }
    }
}

/// Records every event; `sleep` per event (a slow subscriber), `panics` on the first that many.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    sleep: Option<Duration>,
    panics: Arc<Mutex<usize>>,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let meta = event.metadata();
        self.seen.lock().unwrap().push(Seen {
            level: *meta.level(),
            target: meta.target().to_string(),
            message: f.0,
            fields: f.1,
        });
        if let Some(d) = self.sleep {
            std::thread::sleep(d);
        }
        let mut panics = self.panics.lock().unwrap();
        if *panics > 0 {
            *panics -= 1;
            drop(panics);
            panic!("a subscriber that panics (on purpose)");
        }
    }
}

impl Recorder {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// The text a `fmt` subscriber writes: everything, span fields included.
#[derive(Clone, Default)]
struct Text(Arc<Mutex<Vec<u8>>>);

impl Write for Text {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Text {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Runs `f` with a scoped subscriber (this thread, and the threads the library starts for it)
/// of `recorder` and a `fmt` layer writing all levels into the returned text.
fn captured<R>(recorder: &Recorder, f: impl FnOnce() -> R) -> (R, String) {
    let text = Text::default();
    let writer = text.clone();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .with_filter(tracing_subscriber::filter::LevelFilter::TRACE),
        )
        .with(recorder.clone());
    let out = tracing::subscriber::with_default(subscriber, f);
    (out, text.text())
}

fn registry(s: &Setup, mirror: &std::path::Path) -> Registry {
    let config = s
        .config()
        .with_hf_token(Some(Secret::new(TOKEN)))
        .with_mirrors([mirror.display().to_string()])
        .with_connections(Some(4));
    s.registry(config)
}

fn assert_no_secret(text: &str, seen: &[Seen]) {
    let all = format!("{text}\n{seen:?}");
    for secret in [TOKEN, "sig=", "Bearer", "authorization", "Authorization"] {
        assert!(!all.contains(secret), "`{secret}` in the events:\n{all}");
    }
}

/// A download with a token, signed URLs, a mirror whose copy is wrong, and a CDN that answers
/// 503 once: the span, `warn` for the failed source and the retry, `debug` for each request
/// (without its query), `info` for the fetch, and no secret anywhere.
#[test]
fn a_download_tells_a_hosts_subscriber_what_happened_and_never_a_secret() {
    let s = setup(SIZE);
    let mirror = s.sb.tmp.path().join("mirror");
    fs::create_dir_all(&mirror).unwrap();
    fs::write(mirror.join(&s.file), &s.bytes[..1000]).unwrap(); // the wrong size: a failed source

    // No subscriber: the library installs none of its own.
    let config = s.config().with_catalog_file(s.sb.models().join("catalog.json"));
    let quiet = s.registry(config.with_models_dir(s.sb.tmp.path().join("quiet")));
    quiet.ensure("tiny").unwrap();
    // (A new thread sees the global subscriber: other tests' scoped ones are their threads'.)
    let global_is_none = std::thread::spawn(|| {
        tracing::dispatcher::get_default(|d| d.is::<tracing::subscriber::NoSubscriber>())
    });
    assert!(global_is_none.join().unwrap(), "the library set a global subscriber");

    s.hub.set_faults(Faults { statuses: vec![(503, Some(0))], ..Default::default() });
    let recorder = Recorder::default();
    let (result, text) = captured(&recorder, || registry(&s, &mirror).ensure("tiny"));
    result.unwrap();
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
    let seen = recorder.seen();
    let show = || format!("{text}\n{seen:#?}");

    assert!(
        seen.iter().any(|e| e.has(Level::WARN, "source failed") && e.fields.contains("mirror directory")),
        "{}",
        show()
    );
    assert!(seen.iter().any(|e| e.has(Level::WARN, "retrying") && e.fields.contains("503")), "{}", show());
    let fetched = seen
        .iter()
        .find(|e| e.has(Level::INFO, "fetched and verified"))
        .unwrap_or_else(|| panic!("{}", show()));
    assert!(
        fetched.fields.contains("Hugging Face") && fetched.fields.contains(&format!("bytes={SIZE}")),
        "{fetched:?}"
    );
    assert!(fetched.target.starts_with("strata_model"), "{fetched:?}");

    let requests: Vec<&Seen> = seen.iter().filter(|e| e.has(Level::DEBUG, "HTTP request")).collect();
    let head =
        requests.iter().find(|e| e.fields.contains("method=HEAD")).unwrap_or_else(|| panic!("{}", show()));
    assert!(head.fields.contains(&format!("host=\"{}\"", s.hub.hub)), "{head:?}");
    assert!(
        head.fields.contains(&format!("path=\"/{REPO}/resolve/")) && head.fields.contains("status=302"),
        "{head:?}"
    );
    let cdn = format!("host=\"{}\"", s.hub.cdn);
    let ranged = requests.iter().filter(|e| e.fields.contains(&cdn) && e.fields.contains("range=\"bytes="));
    assert!(ranged.clone().any(|e| e.fields.contains("status=206")), "{}", show());
    assert!(ranged.clone().any(|e| e.fields.contains("status=503")), "{}", show());
    assert!(requests.iter().all(|e| !e.fields.contains('?')), "a query in a path: {}", show());

    // Every event of the download is inside its span, which ends with what it did.
    assert!(text.contains(&format!("ensure{{model=\"tiny\" file=\"{}\" bytes={SIZE}", s.file)), "{text}");
    assert!(text.contains("outcome=\"fetched\""), "{text}");
    for line in text.lines().filter(|l| l.contains("HTTP request")) {
        assert!(line.contains("ensure{"), "a request outside the span (a connection's thread?): {line}");
    }
    assert_no_secret(&text, &seen);
}

/// A copy found in another tool's cache: `info`, naming the tool and how it was installed.
#[test]
fn a_reuse_is_an_info_event_naming_the_tool() {
    let s = setup(50_000);
    let cache = s.sb.tmp.path().join("hf-cache");
    let blobs = cache.join(format!("models--{}", REPO.replace('/', "--"))).join("blobs");
    fs::create_dir_all(&blobs).unwrap();
    fs::write(blobs.join(crate::support::sha256_hex(&s.bytes)), &s.bytes).unwrap();
    let caches =
        vec![CacheDir { tool: CacheTool::HuggingFace, path: cache, layout: Layout::Hub, from: "test" }];
    let recorder = Recorder::default();
    let (result, text) = captured(&recorder, || s.registry(s.config().with_caches(caches)).ensure("tiny"));
    result.unwrap();
    let seen = recorder.seen();
    let reused = seen.iter().find(|e| e.has(Level::INFO, "reused another tool's copy"));
    assert!(reused.is_some_and(|e| e.fields.contains("hard link")), "{text}");
    assert!(text.contains("outcome=\"reused\""), "{text}");
    assert_eq!(s.hub.requests("hub") + s.hub.requests("cdn"), 0, "nothing was fetched");
}

/// Warm: one `trace` event, no span, nothing at any other level.
#[test]
fn the_warm_path_says_at_most_one_trace_event() {
    let s = setup(50_000);
    let registry = s.registry(s.config());
    registry.ensure("tiny").unwrap();
    let recorder = Recorder::default();
    let (result, text) = captured(&recorder, || registry.ensure("tiny"));
    assert_eq!(result.unwrap(), s.model_path());
    let seen = recorder.seen();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert!(seen[0].has(Level::TRACE, "already verified"), "{seen:#?}");
    assert!(!text.contains("ensure{"), "a span on the warm path: {text}");
}

/// A subscriber that sleeps at every event only slows the download: the file verifies.
#[test]
fn a_slow_subscriber_does_not_spoil_a_download() {
    let s = setup(SIZE);
    s.hub.set_faults(Faults { statuses: vec![(503, Some(0))], ..Default::default() });
    let recorder = Recorder { sleep: Some(Duration::from_millis(20)), ..Default::default() };
    let empty = s.sb.tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let (result, _) = captured(&recorder, || registry(&s, &empty).ensure("tiny"));
    result.unwrap();
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
    assert!(recorder.seen().iter().filter(|e| e.message.contains("HTTP request")).count() >= 3);
}

/// A subscriber that panics in `on_event` (at the first events, on the connections' threads
/// and the caller's): the panics stay in the subscriber, the download ends verified, and a
/// download after it is as usual.
#[test]
fn a_panicking_subscriber_does_not_spoil_a_download() {
    let s = setup(SIZE);
    s.hub.set_faults(Faults {
        statuses: vec![(503, Some(0))],
        drop_at: Some(3_000_000),
        ..Default::default()
    });
    let recorder = Recorder { panics: Arc::new(Mutex::new(1000)), ..Default::default() };
    let empty = s.sb.tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let (result, _) = captured(&recorder, || registry(&s, &empty).ensure("tiny"));
    let path = result.unwrap();
    assert_eq!(fs::read(&path).unwrap(), s.bytes);
    let seen = recorder.seen();
    assert!(seen.len() >= 5 && *recorder.panics.lock().unwrap() == 1000 - seen.len(), "{seen:#?}");
    assert!(seen.iter().any(|e| e.has(Level::INFO, "fetched and verified")), "{seen:#?}");
    // The model verifies from its stamp as usual afterwards.
    assert_eq!(registry(&s, &empty).verify("tiny").unwrap(), path);
}

/// A layer that panics when a span closes (or is entered, or left): a subscriber's bug.
struct PanicsOnSpans;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for PanicsOnSpans {
    fn on_enter(&self, _: &tracing::span::Id, _: Context<'_, S>) {
        panic!("a subscriber that panics on enter (on purpose)");
    }
    fn on_exit(&self, _: &tracing::span::Id, _: Context<'_, S>) {
        panic!("a subscriber that panics on exit (on purpose)");
    }
    fn on_close(&self, _: tracing::span::Id, _: Context<'_, S>) {
        panic!("a subscriber that panics on close (on purpose)");
    }
}

#[test]
fn a_subscriber_that_panics_on_spans_does_not_spoil_the_call() {
    let s = setup(1_000_000);
    let subscriber = tracing_subscriber::registry().with(PanicsOnSpans);
    let registry = s.registry(s.config());
    let result = tracing::subscriber::with_default(subscriber, || registry.ensure("tiny"));
    assert_eq!(fs::read(result.unwrap()).unwrap(), s.bytes, "the call returns its file");
    // Its last use was recorded (after the span closed).
    assert!(s.sb.models().join(".strata").join(format!("{}.used", s.file)).exists());
}

/// The command line: no `-v`, no log line; `-v` info and up, plain (no escapes off a
/// terminal); `-vv` each request, with `HF_TOKEN` set and never shown; `RUST_LOG` instead of
/// them, and a bad one is a configuration error.
#[test]
fn the_command_line_shows_events_with_v_vv_and_rust_log() {
    let s = setup(50_000);
    let quiet = s.run(&["download", "tiny"]).ok();
    assert!(!quiet.stderr.contains("INFO") && !quiet.stderr.contains("DEBUG"), "{}", quiet.stderr);
    fs::remove_file(s.model_path()).unwrap();

    let r = s.run(&["-v", "download", "tiny"]).ok();
    assert_eq!(r.stdout.trim(), s.model_path().display().to_string());
    let info = r.stderr.lines().find(|l| l.contains(" INFO ") && l.contains("fetched and verified"));
    assert!(info.is_some_and(|l| l.contains("ensure{model=\"tiny\"")), "{}", r.stderr);
    assert!(!r.stderr.contains("DEBUG") && !r.stderr.contains('\x1b'), "{}", r.stderr);
    assert!(r.stderr.contains("✓ tiny"), "the usual lines stay: {}", r.stderr);

    fs::remove_file(s.model_path()).unwrap();
    let r = Run::of(s.cmd().env("HF_TOKEN", TOKEN).args(["download", "tiny", "-vv"]).output().unwrap()).ok();
    assert!(
        r.stderr
            .lines()
            .any(|l| l.contains("DEBUG") && l.contains("HTTP request") && l.contains("method=GET")),
        "{}",
        r.stderr
    );
    for secret in [TOKEN, "sig=", "Bearer"] {
        assert!(!r.stderr.contains(secret), "`{secret}`: {}", r.stderr);
    }

    fs::remove_file(s.model_path()).unwrap();
    s.hub.set_faults(Faults { statuses: vec![(503, Some(0))], ..Default::default() });
    let r = Run::of(
        s.cmd().env("RUST_LOG", "strata_model=warn").args(["-vv", "download", "tiny"]).output().unwrap(),
    )
    .ok();
    let logged: Vec<&str> = r.stderr.lines().filter(|l| l.contains("strata_model::")).collect();
    assert!(!logged.is_empty() && logged.iter().all(|l| l.contains(" WARN ")), "{}", r.stderr);

    // A RUST_LOG set for other programs does not stop this one: a warning, and no logs…
    let r = Run::of(s.cmd().env("RUST_LOG", "strata_model=loud").args(["list"]).output().unwrap()).ok();
    assert!(r.stderr.contains("RUST_LOG") && r.stderr.contains("ignored"), "{}", r.stderr);
    // … unless logs were asked for: then it is a configuration error.
    let r =
        Run::of(s.cmd().env("RUST_LOG", "strata_model=loud").args(["-v", "list"]).output().unwrap()).code(8);
    assert!(r.stderr.contains("RUST_LOG") && r.stderr.contains("strata_model=debug"), "{}", r.stderr);
}

/// Through the binary, at `-v`: file locks that do not work (the `LD_PRELOAD` shim's `ENOLCK`)
/// and a mirror that lacks the file (the Hub is tried next) are warnings.
#[test]
fn locks_that_do_not_work_and_a_mirror_without_the_file_are_warnings() {
    let Some(shim) = shim::path() else { return };
    let s = setup(50_000);
    let empty = s.sb.tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let mut c = s.cmd();
    shim::apply(&mut c, &shim, Some(Locks::Fail("enolck")), false);
    let r = Run::of(c.env("STRATA_MODELS_MIRROR", &empty).args(["-v", "download", "tiny"]).output().unwrap())
        .ok();
    let warns: Vec<&str> = r.stderr.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(warns.iter().any(|l| l.contains("file locks do not work here")), "{}", r.stderr);
    assert!(
        warns.iter().any(|l| l.contains("not on this source") && l.contains("mirror directory")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.lines().any(|l| l.contains(" INFO ") && l.contains("outcome=\"fetched\"")),
        "{}",
        r.stderr
    );
}

/// A pull from an OCI registry behind a token realm, with credentials, at `-vv`: each request
/// (the challenged blob, the realm's token, the blob again) is a `debug` line without its
/// query, and no password, `Basic` or `Bearer` credential appears.
#[test]
fn an_oci_pull_logs_each_request_and_no_credential() {
    let Some(r) = oci::Registry::start(oci::Auth::PrivateToken) else { return };
    let bytes = gguf_bytes("bert", 384, 300_000, 31);
    let (sb, file, _) = registered_sandbox(&bytes);
    fs::create_dir_all(sb.models()).unwrap();
    fs::write(sb.models().join(&file), &bytes).unwrap();
    let creds = r.docker_config();
    let mut push = sb.cmd();
    push.env("SSL_CERT_FILE", &r.ca_file).env("DOCKER_CONFIG", &creds);
    Run::of(push.args(["mirror", "push", &r.location("fleet/models"), "tiny"]).output().unwrap()).ok();

    let (node, _, dead) = registered_sandbox(&bytes);
    let mut pull = node.cmd();
    pull.env("SSL_CERT_FILE", &r.ca_file).env("DOCKER_CONFIG", &creds).env("HF_ENDPOINT", &dead);
    pull.env("STRATA_MODELS_MIRROR", r.location("fleet/models"));
    let out = Run::of(pull.args(["-vv", "download", "tiny"]).output().unwrap()).ok();
    let requests: Vec<&str> = out.stderr.lines().filter(|l| l.contains("HTTP request")).collect();
    assert!(requests.iter().any(|l| l.contains("path=\"/token\"")), "{}", out.stderr);
    let blob = |status: &str| {
        requests.iter().any(|l| l.contains("path=\"/v2/fleet/models/blobs/sha256:") && l.contains(status))
    };
    assert!(blob("status=401") && blob("status=200"), "challenged, then served: {}", out.stderr);
    assert!(requests.iter().all(|l| !l.contains('?')), "a query: {}", out.stderr);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", oci::USER, oci::PASSWORD));
    for secret in [oci::PASSWORD, &basic, "Bearer", "Basic "] {
        assert!(!out.stderr.contains(secret), "`{secret}`: {}", out.stderr);
    }
}

/// `ensure_async` carries the caller's subscriber and span to the blocking pool: a scoped
/// subscriber sees its events inside the host's span, and later calls still log (a callsite
/// first hit where no subscriber was would stay switched off for the process).
#[cfg(feature = "tokio")]
#[test]
fn an_async_call_logs_to_the_callers_subscriber_inside_its_span() {
    use tracing::Instrument as _;
    let s = setup(1_000_000);
    let other = gguf_bytes("bert", 384, 500_000, 4);
    let other_file = crate::support::register(&s.sb, "other", &other);
    s.hub.add_file(&other_file, other);
    let registry = s.registry(s.config());
    let recorder = Recorder::default();
    let (results, text) = captured(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let first =
            rt.block_on(registry.ensure_async("tiny").instrument(tracing::info_span!("request", id = 7)));
        let second = registry.ensure("other");
        (first, second)
    });
    results.0.unwrap();
    results.1.unwrap();
    let fetched = recorder.seen().iter().filter(|e| e.has(Level::INFO, "fetched and verified")).count();
    assert_eq!(fetched, 2, "both calls logged: {text}");
    assert!(text.contains("request{id=7}:ensure{model=\"tiny\""), "inside the host's span: {text}");
}
