//! Chunked, resumable pushes to the CNCF registry behind a real nginx reverse proxy that caps
//! request bodies at 8 MiB (`client_max_body_size 8m`): a `413` halves the chunk size, a
//! `PATCH` refused sends the blob in one `PUT`, and a push killed half way resumes where the
//! registry stands — or starts again when the registry has forgotten the upload. Bytes sent are
//! counted in nginx's access log (`$request_length`).

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{fresh_node, pull, seeded, with_registry};
use crate::support::nginx::{Proxy, ProxyRules, Throttle};
use crate::support::oci::{Auth, Registry};
use crate::support::{sha256_hex, Run, Sandbox};

const CAPPED: ProxyRules =
    ProxyRules { max_body: "8m", buffering: false, refuse_patch: false, refuse_status: false };

fn push_to(sb: &Sandbox, r: &Registry, location: &str, extra: &[&str]) -> Run {
    let mut c = sb.cmd();
    with_registry(&mut c, r, None);
    Run::of(c.args(["mirror", "push", location, "tiny"]).args(extra).output().unwrap())
}

fn state_file(sb: &Sandbox) -> std::path::PathBuf {
    sb.models().join(".strata/tiny-Q8_0.gguf.upload")
}

/// The registry holds `bytes` as a blob, and another node pulls them back through `location`.
fn holds_and_serves(r: &Registry, bytes: &[u8], location: &str) {
    assert_eq!(fs::read(r.blob_data(&sha256_hex(bytes))).unwrap(), bytes, "the registry's blob");
    let (node, dead) = fresh_node(bytes);
    let got = pull(&node, r, &dead, None, location).ok();
    assert_eq!(fs::read(got.stdout.trim()).unwrap(), bytes);
}

#[test]
fn a_push_through_a_body_capped_proxy_goes_in_chunks_halved_on_413() {
    let Some(r) = Registry::start(Auth::Open) else { return };
    let Some(p) = Proxy::start(&r, CAPPED) else { return };
    let (sb, bytes, _) = seeded(40_000_000);
    let to = p.location("fleet/models");

    // Under the default chunk size (64 MiB) the 40 MB blob goes in one PUT: the proxy refuses
    // it, and the error says why and what to change.
    let whole = push_to(&sb, &r, &to, &[]);
    assert_ne!(whole.code, 0, "{}", whole.stdout);
    assert!(whole.stderr.contains("413") && whole.stderr.contains("--chunk-size"), "{}", whole.stderr);
    assert!(!whole.stderr.contains("_state"), "upload URLs are shown without their query: {}", whole.stderr);

    let doc = push_to(&sb, &r, &to, &["--chunk-size", "16MiB", "--json"]).ok().json();
    assert_eq!(doc[0]["action"], "copied");
    assert!(doc[0].get("resumed_from_bytes").is_none(), "{doc}");
    let seen = p.requests();
    let patches: Vec<_> = seen.iter().filter(|l| l.method == "PATCH").collect();
    assert!(patches.iter().any(|l| l.status == 413), "a 16 MiB chunk is refused: {seen:?}");
    let accepted: Vec<_> = patches.iter().filter(|l| l.status == 202).collect();
    assert_eq!(accepted.len(), 5, "40 MB in chunks of 8 MiB: {seen:?}");
    assert!(accepted.iter().all(|l| l.length <= (8 << 20) + 4096), "{seen:?}");
    assert!(seen.iter().any(|l| l.method == "PUT" && l.status == 201 && l.length < 4096), "{seen:?}");
    assert!(!state_file(&sb).exists(), "no upload state is left once the blob is complete");
    holds_and_serves(&r, &bytes, &to);
}

#[test]
fn a_registry_path_that_refuses_chunks_gets_the_blob_in_one_put() {
    let Some(r) = Registry::start(Auth::Open) else { return };
    let rules = ProxyRules { max_body: "64m", buffering: true, refuse_patch: true, refuse_status: false };
    let Some(p) = Proxy::start(&r, rules) else { return };
    let (sb, bytes, _) = seeded(6_000_000);
    let to = p.location("fleet/models");
    push_to(&sb, &r, &to, &["--chunk-size", "1MiB"]).ok();
    let seen = p.requests();
    assert_eq!(seen.iter().filter(|l| l.method == "PATCH").map(|l| l.status).collect::<Vec<_>>(), [405]);
    assert!(seen.iter().any(|l| l.method == "PUT" && l.status == 201 && l.length >= 6_000_000), "{seen:?}");
    assert!(!state_file(&sb).exists());
    holds_and_serves(&r, &bytes, &to);
}

/// Starts a 48 MB push in 4 MiB chunks through `rules` and a slow uplink, and kills it (`SIGKILL`)
/// once its saved state says the registry holds half. Returns what the second push needs.
fn killed_at_half(rules: ProxyRules) -> Option<(Registry, Proxy, Throttle, Sandbox, Vec<u8>, u64)> {
    let r = Registry::start(Auth::Open)?;
    let p = Proxy::start(&r, rules)?;
    let slow = Throttle::start(p.addr, 16_000_000);
    let size = 48_000_000u64;
    let (sb, bytes, _) = seeded(size as usize);
    let mut c = sb.cmd();
    with_registry(&mut c, &r, None);
    let to = format!("oci://{}/fleet/models", slow.addr);
    c.args(["mirror", "push", &to, "tiny", "--chunk-size", "4MiB"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let offset = fs::read(state_file(&sb))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["offset"].as_u64())
            .unwrap_or(0);
        if offset >= size / 2 {
            child.kill().unwrap();
            child.wait().unwrap();
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the push ended before half way");
        assert!(Instant::now() < deadline, "no progress past half: {:?}", p.requests());
        std::thread::sleep(Duration::from_millis(10));
    }
    // The connection of the killed push is cut (what it had sent but had not gone through is
    // lost), and nginx has logged the request it ended: only then does the count start.
    slow.wait_idle(deadline);
    let mut logged = p.requests().len();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = p.requests().len();
        if now == logged {
            break;
        }
        logged = now;
    }
    let text = fs::read_to_string(state_file(&sb)).unwrap();
    let saved: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["digest"], format!("sha256:{}", sha256_hex(&bytes)));
    assert_eq!(saved["repository"], "fleet/models");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(state_file(&sb)).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the upload URL is its owner's only: {mode:o}");
    }
    Some((r, p, slow, sb, bytes, size))
}

#[test]
fn a_push_killed_half_way_resumes_where_the_registry_stands() {
    // nginx's default request buffering: a chunk cut by the kill never reaches the registry.
    let rules = ProxyRules { buffering: true, ..CAPPED };
    let Some((r, p, slow, sb, bytes, size)) = killed_at_half(rules) else { return };
    let before = p.requests().len();
    let wire_before = slow.uplinked.load(std::sync::atomic::Ordering::SeqCst);
    let to = format!("oci://{}/fleet/models", slow.addr);
    // The default chunk size (64 MiB): 413 three times, then 8 MiB chunks.
    let doc = push_to(&sb, &r, &to, &["--json"]).ok().json();
    let resumed = doc[0]["resumed_from_bytes"].as_u64().unwrap_or(0);
    assert!(resumed >= size / 2, "{doc}");
    let seen = p.requests();
    let sent: u64 = seen[before..].iter().map(|l| l.length).sum();
    assert!(
        sent as f64 <= 0.55 * size as f64,
        "the second push sent {sent} bytes of {size}: {:?}",
        &seen[before..]
    );
    // On the wire too (TLS included): the first chunk refused with 413 never sent its body.
    let wire = slow.uplinked.load(std::sync::atomic::Ordering::SeqCst) - wire_before;
    assert!(wire as f64 <= 0.55 * size as f64, "{wire} bytes of {size} on the wire");
    assert!(!state_file(&sb).exists());
    holds_and_serves(&r, &bytes, &p.location("fleet/models"));
}

#[test]
fn a_push_the_registry_has_forgotten_starts_again() {
    let Some((r, p, slow, sb, bytes, size)) = killed_at_half(CAPPED) else { return };
    // The registry purges uploads left behind (its `uploadpurging`): as it does, by hand.
    let uploads = r.dir.path().join("storage/docker/registry/v2/repositories/fleet/models/_uploads");
    fs::remove_dir_all(&uploads).unwrap();
    let before = p.requests().len();
    let to = format!("oci://{}/fleet/models", slow.addr);
    let doc = push_to(&sb, &r, &to, &["--chunk-size", "4MiB", "--json"]).ok().json();
    assert!(doc[0].get("resumed_from_bytes").is_none(), "{doc}");
    let sent: u64 = p.requests()[before..].iter().map(|l| l.length).sum();
    assert!(sent >= size, "sent {sent} of {size}");
    assert!(!state_file(&sb).exists());
    holds_and_serves(&r, &bytes, &p.location("fleet/models"));
}

/// Writes an upload state for `tiny` in `sb`, as a killed push leaves one.
fn plant_state(sb: &Sandbox, registry: &str, location: &str, bytes: &[u8]) {
    let state = serde_json::json!({
        "registry": registry, "repository": "fleet/models",
        "digest": format!("sha256:{}", sha256_hex(bytes)), "location": location, "offset": 8 * 1024 * 1024,
    });
    fs::create_dir_all(sb.models().join(".strata")).unwrap();
    fs::write(state_file(sb), serde_json::to_vec(&state).unwrap()).unwrap();
}

/// A saved upload never stops later pushes: one whose status the registry (or a proxy) will
/// not give starts again, one naming another host is not followed, and a blob found already
/// there (a push killed after its last `PUT`) clears it.
#[test]
fn a_saved_upload_that_cannot_be_resumed_never_jams_the_next_push() {
    let Some(r) = Registry::start(Auth::Open) else { return };
    let rules = ProxyRules { refuse_status: true, ..CAPPED };
    let Some(p) = Proxy::start(&r, rules) else { return };
    let (sb, bytes, _) = seeded(20_000_000);
    let to = p.location("fleet/models");
    let host = to.trim_start_matches("oci://").split('/').next().unwrap().to_string();

    // A URL on another host (an edited state file): not followed, the push starts afresh.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let elsewhere =
        format!("https://{}/v2/fleet/models/blobs/uploads/x?_state=s", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    plant_state(&sb, &host, &elsewhere, &bytes);
    // The status GET answered 405 by the proxy: a new upload, not an error forever.
    let same_host =
        format!("https://{host}/v2/fleet/models/blobs/uploads/00000000-0000-0000-0000-000000000000?_state=s");
    for location in [elsewhere.as_str(), same_host.as_str()] {
        plant_state(&sb, &host, location, &bytes);
        let doc = push_to(&sb, &r, &to, &["--chunk-size", "4MiB", "--json"]).ok().json();
        assert_eq!(doc[0]["action"], "copied", "{location}: {doc}");
        assert!(doc[0].get("resumed_from_bytes").is_none(), "{doc}");
        assert!(!state_file(&sb).exists(), "{location}");
        holds_and_serves(&r, &bytes, &to);
        fs::remove_file(r.blob_data(&sha256_hex(&bytes))).unwrap();
    }
    assert!(listener.accept().is_err(), "the other host was contacted");
    let statuses: Vec<u16> = p.requests().iter().filter(|l| l.method == "GET").map(|l| l.status).collect();
    assert!(statuses.contains(&405), "the status GET was asked and refused: {statuses:?}");

    // Already there: present, and the state a push killed after its last PUT left goes.
    push_to(&sb, &r, &to, &["--chunk-size", "4MiB"]).ok();
    plant_state(&sb, &host, &same_host, &bytes);
    let doc = push_to(&sb, &r, &to, &["--chunk-size", "4MiB", "--json"]).ok().json();
    assert_eq!(doc[0]["action"], "present");
    assert!(!state_file(&sb).exists());
}

/// A connection cut in the middle of a chunk (the link breaks once): the push asks the
/// registry where the upload stands and goes on in the same run, sending the blob once and
/// the cut chunk again, not everything from the start.
#[test]
fn a_chunk_cut_by_a_broken_link_is_sent_again_in_the_same_push() {
    let Some(r) = Registry::start(Auth::Open) else { return };
    let Some(p) = Proxy::start(&r, ProxyRules { buffering: true, ..CAPPED }) else { return };
    let link = Throttle::start(p.addr, 2_000_000_000);
    let size = 40_000_000u64;
    let (sb, bytes, _) = seeded(size as usize);
    link.cut_at.store(size / 2, std::sync::atomic::Ordering::SeqCst);
    let to = format!("oci://{}/fleet/models", link.addr);
    let mut c = sb.cmd();
    with_registry(&mut c, &r, None);
    let run =
        Run::of(c.args(["mirror", "push", &to, "tiny", "--chunk-size", "4MiB", "-v"]).output().unwrap());
    let run = run.ok();
    assert_eq!(link.cut_at.load(std::sync::atomic::Ordering::SeqCst), 0, "the link was cut");
    assert!(run.stderr.contains("a chunk failed"), "{}", run.stderr);
    let sent: u64 =
        p.requests().iter().filter(|l| l.method == "PATCH" && l.status == 202).map(|l| l.length).sum();
    assert!(sent < size + size / 4, "sent {sent} for {size}: not from the start again");
    assert!(!state_file(&sb).exists());
    holds_and_serves(&r, &bytes, &p.location("fleet/models"));
}
