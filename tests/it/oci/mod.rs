//! OCI registries as a source and a push target, against the real CNCF distribution server:
//! push then pull through `oci://`, htpasswd `Basic` auth and a token realm, the credentials
//! podman and Docker keep, a blob tampered with on the registry's disk, missing credentials,
//! and `sources`. The registry's redirect to its storage (which the distribution server does
//! not make with local storage) is checked against the Hub look-alike. Chunked, resumable
//! pushes through an nginx proxy that caps request bodies: `chunked.rs`.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::support::hub::{Hub, REPO};
use crate::support::oci::{Auth, Registry, PASSWORD, USER};
use crate::support::{gguf_bytes, registered_sandbox, Run, Sandbox};

mod chunked;

/// A sandbox with `tiny` registered and its file in the models directory, and the bytes.
fn seeded(size: usize) -> (Sandbox, Vec<u8>, String) {
    let bytes = gguf_bytes("bert", 384, size, 31);
    let (sb, file, dead) = registered_sandbox(&bytes);
    fs::create_dir_all(sb.models()).unwrap();
    fs::write(sb.models().join(&file), &bytes).unwrap();
    (sb, bytes, dead)
}

/// A second machine: `tiny` registered, nothing downloaded.
fn fresh_node(bytes: &[u8]) -> (Sandbox, String) {
    let (sb, _, dead) = registered_sandbox(bytes);
    (sb, dead)
}

fn with_registry(c: &mut Command, r: &Registry, docker_config: Option<&PathBuf>) {
    c.env("SSL_CERT_FILE", &r.ca_file);
    if let Some(dir) = docker_config {
        c.env("DOCKER_CONFIG", dir);
    }
}

fn push(sb: &Sandbox, r: &Registry, docker_config: Option<&PathBuf>, extra: &[&str]) -> Run {
    let mut c = sb.cmd();
    with_registry(&mut c, r, docker_config);
    Run::of(c.args(["mirror", "push", &r.location("fleet/models"), "tiny"]).args(extra).output().unwrap())
}

fn pull(sb: &Sandbox, r: &Registry, dead: &str, docker_config: Option<&PathBuf>, mirrors: &str) -> Run {
    let mut c = sb.cmd();
    with_registry(&mut c, r, docker_config);
    c.env("HF_ENDPOINT", dead).env("STRATA_MODELS_MIRROR", mirrors);
    Run::of(c.args(["download", "tiny"]).output().unwrap())
}

#[test]
fn push_then_pull_through_basic_auth_with_dockers_credentials() {
    let Some(r) = Registry::start(Auth::Basic) else { return };
    let (sb, bytes, _) = seeded(5_000_000);
    let creds = r.docker_config();

    let dry = push(&sb, &r, Some(&creds), &["--dry-run", "--json"]).ok().json();
    assert_eq!(dry[0]["action"], "would_copy");
    let doc = push(&sb, &r, Some(&creds), &["--json"]).ok().json();
    assert_eq!(doc[0]["action"], "copied");
    assert_eq!(doc[0]["target"], format!("oci://{}/fleet/models:tiny", r.addr));
    let again = push(&sb, &r, Some(&creds), &["--json"]).ok().json();
    assert_eq!(again[0]["action"], "present", "the registry has the digest");

    // What the registry stored: the tag, a ModelPack manifest whose layer is the file.
    let repo = r.dir.path().join("storage/docker/registry/v2/repositories/fleet/models");
    let link = fs::read_to_string(repo.join("_manifests/tags/tiny/current/link")).unwrap();
    let manifest_sha = link.trim().strip_prefix("sha256:").unwrap().to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(r.blob_data(&manifest_sha)).unwrap()).unwrap();
    assert_eq!(manifest["artifactType"], "application/vnd.cncf.model.manifest.v1+json");
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.cncf.model.weight.v1.raw");
    assert_eq!(manifest["layers"][0]["digest"], format!("sha256:{}", crate::support::sha256_hex(&bytes)));
    assert_eq!(manifest["layers"][0]["annotations"]["org.cncf.model.filepath"], "tiny-Q8_0.gguf");
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.cncf.model.config.v1+json");

    // Another node pulls it by digest, in parallel ranges, verified.
    let (node, dead) = fresh_node(&bytes);
    let got = pull(&node, &r, &dead, Some(&creds), &r.location("fleet/models")).ok();
    assert_eq!(fs::read(got.stdout.trim()).unwrap(), bytes);
    let info = Run::of(node.cmd().args(["list", "--json"]).output().unwrap()).ok().json();
    let tiny = info["models"].as_array().unwrap().iter().find(|m| m["name"] == "tiny").unwrap();
    assert!(tiny["installed_from"].as_str().unwrap().contains("OCI registry"), "{tiny}");
}

#[test]
fn a_token_realm_gives_anonymous_pulls_and_pushes_with_credentials() {
    let Some(r) = Registry::start(Auth::Token) else { return };
    let (sb, bytes, _) = seeded(9_000_000);
    let anonymous = push(&sb, &r, None, &[]).code(5);
    assert!(anonymous.stderr.contains(&format!("{} asks for credentials", r.addr)), "{}", anonymous.stderr);

    // An identity token (what `docker login` keeps for some registries) is exchanged at the
    // realm with the OAuth2 refresh grant.
    let dir = r.dir.path().join("identity");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"identitytoken":"refresh-for-fleet"}}}}}}"#, r.addr),
    )
    .unwrap();
    push(&sb, &r, Some(&dir), &[]).ok();
    let token = r.token.as_ref().unwrap();
    assert!(token
        .requests
        .lock()
        .unwrap()
        .iter()
        .any(|q| q.starts_with("POST ") && q.contains("grant_type=refresh_token")));

    let before = token.count();
    let (node, dead) = fresh_node(&bytes);
    let got = pull(&node, &r, &dead, None, &r.location("fleet/models")).ok();
    assert_eq!(fs::read(got.stdout.trim()).unwrap(), bytes);
    assert_eq!(token.count() - before, 1, "one pull token for every connection of the download");
}

#[test]
fn missing_or_wrong_credentials_are_a_clear_error_that_names_the_registry() {
    let Some(r) = Registry::start(Auth::PrivateToken) else { return };
    let (sb, bytes, _) = seeded(300_000);
    push(&sb, &r, Some(&r.docker_config()), &[]).ok();

    let (node, dead) = fresh_node(&bytes);
    let none = pull(&node, &r, &dead, None, &r.location("fleet/models")).code(5);
    let host = r.addr.to_string();
    for want in [
        format!("{host} asks for credentials for {host}/fleet/models"),
        "docker login".into(),
        "REGISTRY_AUTH_FILE".into(),
    ] {
        assert!(none.stderr.contains(&want), "{want} in {}", none.stderr);
    }
    // podman's auth file, with a wrong password: refused, and the password never shown.
    let auth = node.tmp.path().join("auth.json");
    let wrong = base64_of(&format!("{USER}:not-the-{PASSWORD}"));
    fs::write(&auth, format!(r#"{{"auths":{{"{host}":{{"auth":"{wrong}"}}}}}}"#)).unwrap();
    let mut c = node.cmd();
    c.env("SSL_CERT_FILE", &r.ca_file).env("REGISTRY_AUTH_FILE", &auth).env("HF_ENDPOINT", &dead);
    c.env("STRATA_MODELS_MIRROR", r.location("fleet/models"));
    let refused = Run::of(c.args(["download", "tiny"]).output().unwrap()).code(5);
    assert!(refused.stderr.contains("refused the credentials"), "{}", refused.stderr);
    assert!(refused.stderr.contains(&auth.display().to_string()), "names the file: {}", refused.stderr);
    assert!(!refused.stderr.contains(PASSWORD) && !refused.stderr.contains(&wrong), "{}", refused.stderr);
    // A credential helper that is not installed is named.
    let helper = node.tmp.path().join("helper");
    fs::create_dir_all(&helper).unwrap();
    fs::write(helper.join("config.json"), r#"{"credsStore":"desktop"}"#).unwrap();
    let r2 = pull(&node, &r, &dead, Some(&helper), &r.location("fleet/models"));
    assert_ne!(r2.code, 0);
    assert!(
        r2.stderr.contains("docker-credential-desktop") && r2.stderr.contains("not installed"),
        "{}",
        r2.stderr
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn a_blob_tampered_with_on_the_registry_is_refused_and_the_next_source_serves() {
    let Some(r) = Registry::start(Auth::Open) else { return };
    let (sb, bytes, _) = seeded(400_000);
    push(&sb, &r, None, &[]).ok();
    let sha = crate::support::sha256_hex(&bytes);
    let mut evil = bytes.clone();
    evil[200_000] ^= 0xff;
    fs::write(r.blob_data(&sha), &evil).unwrap();

    let (node, dead) = fresh_node(&bytes);
    let good = node.tmp.path().join("mirror");
    fs::create_dir_all(&good).unwrap();
    fs::write(good.join("tiny-Q8_0.gguf"), &bytes).unwrap();
    let mirrors = format!("{},{}", r.location("fleet/models"), good.display());
    let got = pull(&node, &r, &dead, None, &mirrors).ok();
    assert_eq!(fs::read(got.stdout.trim()).unwrap(), bytes);
    assert!(
        got.stderr.contains("OCI registry") && got.stderr.to_lowercase().contains("sha256"),
        "{}",
        got.stderr
    );
}

#[test]
fn sources_says_what_the_registry_is_and_how_it_authenticates() {
    let Some(r) = Registry::start(Auth::Token) else { return };
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.env("SSL_CERT_FILE", &r.ca_file)
        .env("STRATA_MODELS_MIRROR", r.location("fleet/models"))
        .env("STRATA_OFFLINE", "0");
    let out = Run::of(c.args(["sources"]).output().unwrap());
    let text = out.stdout.clone();
    assert!(text.contains(&format!("OCI registry {}/fleet/models", r.addr)), "{text}");
    assert!(text.contains("answers (OCI distribution API, tokens from https://"), "{text}");
    assert!(text.contains("fleet/models is empty so far"), "{text}");
}

/// The registry redirects blob reads to its storage (a signed URL on another host, as S3- or
/// GCS-backed registries do): the redirect is followed, the token is sent to the registry
/// only, and it is asked for once.
#[test]
fn a_redirect_to_storage_is_followed_without_the_credentials() {
    let hub = Hub::start();
    let bytes = gguf_bytes("bert", 384, 3_000_000, 33);
    let (sb, file, dead) = registered_sandbox(&bytes);
    hub.add_file(&file, bytes.clone());
    let mut c = sb.cmd();
    c.env("SSL_CERT_FILE", &hub.ca_file).env("HF_ENDPOINT", &dead);
    c.env("STRATA_MODELS_MIRROR", format!("oci://{}/{REPO}", hub.hub));
    let got = Run::of(c.args(["download", "tiny", "--connections", "3"]).output().unwrap()).ok();
    assert_eq!(fs::read(got.stdout.trim()).unwrap(), bytes);
    let seen = hub.seen();
    let tokens = seen.iter().filter(|s| s.path.starts_with("/token")).count();
    assert_eq!(tokens, 1, "{seen:#?}");
    let blobs: Vec<_> = seen.iter().filter(|s| s.path.starts_with("/v2/")).collect();
    assert!(blobs.iter().any(|s| s.headers.get("authorization").is_some_and(|a| a.starts_with("Bearer "))));
    let storage = hub.cdn_gets();
    assert!(!storage.is_empty());
    assert!(storage.iter().all(|s| !s.headers.contains_key("authorization")), "{storage:#?}");
}

/// A credential helper on PATH, as docker runs it: `get`, the registry on standard input, its
/// JSON answer on standard output. `behaviour`: `ok` (the test user's credentials, after
/// checking the registry it was asked about), `none` (docker-credential-helpers' "not found"),
/// `garbage`, `hang`.
fn credential_helper(dir: &std::path::Path, name: &str, host: &str, behaviour: &str) {
    use std::os::unix::fs::PermissionsExt;
    let body = match behaviour {
        "ok" => format!(
            "read -r server || true\n[ \"$server\" = \"{host}\" ] || {{ echo \"asked about $server\" >&2; exit 1; }}\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n"
        ),
        "none" => "echo 'credentials not found in native keychain'\nexit 1\n".to_string(),
        "garbage" => "echo 'this is not json {'\n".to_string(),
        _ => "exec sleep 600\n".to_string(),
    };
    let path = dir.join(format!("docker-credential-{name}"));
    fs::write(&path, format!("#!/bin/sh\n[ \"$1\" = get ] || exit 2\n{body}")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(unix)]
#[test]
fn credentials_from_a_helper_push_and_pull_and_a_broken_helper_is_named() {
    let Some(r) = Registry::start(Auth::Basic) else { return };
    let (sb, bytes, _) = seeded(300_000);
    let host = r.addr.to_string();
    let bin = sb.tmp.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    for (name, behaviour) in
        [("strata-ok", "ok"), ("strata-none", "none"), ("strata-garbage", "garbage"), ("strata-hang", "hang")]
    {
        credential_helper(&bin, name, &host, behaviour);
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let config = |store: &str| {
        let dir = sb.tmp.path().join(store);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("config.json"), format!(r#"{{"credHelpers":{{"{host}":"{store}"}}}}"#)).unwrap();
        dir
    };
    let push_with = |store: &str| {
        let mut c = sb.cmd();
        with_registry(&mut c, &r, Some(&config(store)));
        c.env("PATH", &path);
        Run::of(c.args(["mirror", "push", &r.location("fleet/models"), "tiny"]).output().unwrap())
    };
    let ok = push_with("strata-ok").ok();
    assert!(ok.stdout.contains("copied"), "{}", ok.stdout);
    assert!(!ok.stdout.contains(PASSWORD) && !ok.stderr.contains(PASSWORD));

    let (node, dead) = fresh_node(&bytes);
    let mut c = node.cmd();
    with_registry(&mut c, &r, Some(&config("strata-ok")));
    c.env("PATH", &path).env("HF_ENDPOINT", &dead).env("STRATA_MODELS_MIRROR", r.location("fleet/models"));
    Run::of(c.args(["download", "tiny"]).output().unwrap()).ok();

    let none = push_with("strata-none");
    assert_ne!(none.code, 0);
    assert!(
        none.stderr.contains("docker-credential-strata-none") && none.stderr.contains("has none"),
        "{}",
        none.stderr
    );
    let garbage = push_with("strata-garbage");
    assert_ne!(garbage.code, 0);
    assert!(
        garbage.stderr.contains("not its JSON answer") && !garbage.stderr.contains("this is not json"),
        "{}",
        garbage.stderr
    );
    let started = std::time::Instant::now();
    let hang = push_with("strata-hang");
    assert_ne!(hang.code, 0);
    assert!(hang.stderr.contains("did not answer within"), "{}", hang.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(120), "a bounded wait");
}
